//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for every AWS call the exporter makes:
//! CloudWatch (JSON 1.0), ELB and ELBv2 (Query), S3 (REST, with `x-amz-content-sha256`), STS and
//! EC2 (Query). A pure function of the request, the credentials and the time, tested byte for
//! byte against the aws-sig-v4-test-suite cases and botocore-computed vectors (`cloud-apis.md`
//! C.1, W1–W8), and reused by the simulator to verify requests.

use crate::cloud::crypto::{canonical_headers, hmac_sha256, sha256_hex};
pub use crate::util::canonical_query;
use crate::util::{percent_encode, UtcTime};

/// Inputs of a SigV4 signature.
pub struct SigV4Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path as sent (`/`); each segment is encoded once, never normalised (S3's rule, and
    /// the same as normalising for the `/` every other API uses).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Headers to sign (any case); at least `host` and `x-amz-date`.
    pub headers: &'a [(String, String)],
    /// hex(sha256(body)), or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
    /// Region of the scope (`us-east-1`).
    pub region: &'a str,
    /// Signing name (`monitoring`, `elasticloadbalancing`, `s3`, `sts`, `ec2`, `tagging`).
    pub service: &'a str,
    /// Unix seconds of `x-amz-date`.
    pub time: i64,
}

/// `x-amz-date` of a time: `yyyyMMddTHHmmssZ`.
pub fn amz_date(time: i64) -> String {
    UtcTime::from_unix(time).basic()
}

fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical request and the signed-headers list (`cloud-apis.md` C.1).
pub fn canonical_request(req: &SigV4Request<'_>) -> (String, String) {
    let (canonical_headers, signed) = canonical_headers(
        req.headers
            .iter()
            .map(|(k, v)| {
                let collapsed = v.split_whitespace().collect::<Vec<_>>().join(" ");
                (k.to_ascii_lowercase(), collapsed)
            })
            .collect(),
    );
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path(req.path),
        canonical_query(req.query),
        canonical_headers,
        signed,
        req.payload_hash
    );
    (canonical, signed)
}

/// The credential scope `yyyyMMdd/region/service/aws4_request`.
pub fn scope(time: i64, region: &str, service: &str) -> String {
    let date = amz_date(time);
    format!("{}/{region}/{service}/aws4_request", &date[..8])
}

/// The signature (hex) and the signed-headers list.
pub fn signature(req: &SigV4Request<'_>, secret: &str) -> (String, String) {
    let (canonical, signed) = canonical_request(req);
    let date = amz_date(req.time);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
        scope(req.time, req.region, req.service),
        sha256_hex(canonical.as_bytes())
    );
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), &date.as_bytes()[..8]);
    let k_region = hmac_sha256(&k_date, req.region.as_bytes());
    let k_service = hmac_sha256(&k_region, req.service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    (
        hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes())),
        signed,
    )
}

/// The `Authorization` header value.
pub fn authorization(req: &SigV4Request<'_>, access_key_id: &str, secret: &str) -> String {
    let (sig, signed) = signature(req, secret);
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key_id}/{}, SignedHeaders={signed}, Signature={sig}",
        scope(req.time, req.region, req.service)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::crypto::EMPTY_SHA256;

    const AK: &str = "AKIDEXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2015-08-30T12:36:00Z, the test suite's date.
    const SUITE_TIME: i64 = 1_440_938_160;
    /// 2025-01-01T00:05:30Z, the botocore vectors' date.
    const W_TIME: i64 = 1_735_689_930;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sign(
        method: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &str,
        region: &str,
        service: &str,
        time: i64,
    ) -> (String, String) {
        let query = pairs(query);
        let headers = pairs(headers);
        let hash = sha256_hex(body.as_bytes());
        let req = SigV4Request {
            method,
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: &hash,
            region,
            service,
            time,
        };
        (canonical_request(&req).0, authorization(&req, AK, SK))
    }

    #[test]
    fn suite_get_vanilla_w1() {
        assert_eq!(amz_date(SUITE_TIME), "20150830T123600Z");
        let (canonical, auth) = sign(
            "GET",
            &[],
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            "",
            "us-east-1",
            "service",
            SUITE_TIME,
        );
        assert_eq!(
            canonical,
            format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}")
        );
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    }

    #[test]
    fn suite_post_x_www_form_urlencoded_w2() {
        let (canonical, auth) = sign(
            "POST",
            &[],
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            "Param1=value1",
            "us-east-1",
            "service",
            SUITE_TIME,
        );
        assert!(canonical.ends_with("content-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"));
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
        );
        assert!(auth.ends_with(
            "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        ));
    }

    #[test]
    fn suite_get_vanilla_query_order_key_case_w3() {
        let (_, auth) = sign(
            "GET",
            &[("Param2", "value2"), ("Param1", "value1")],
            &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            "",
            "us-east-1",
            "service",
            SUITE_TIME,
        );
        assert!(auth.ends_with(
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ));
    }

    #[test]
    fn botocore_cloudwatch_query_w4() {
        let body = "Action=GetMetricData&Version=2010-08-01&StartTime=2025-01-01T00%3A00%3A00Z&EndTime=2025-01-01T00%3A05%3A00Z&ScanBy=TimestampAscending&MetricDataQueries.member.1.Id=m0&MetricDataQueries.member.1.ReturnData=true&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS%2FApplicationELB&MetricDataQueries.member.1.MetricStat.Metric.MetricName=RequestCount&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=LoadBalancer&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=app%2Fmy-alb%2F50dc6c495c0c9188&MetricDataQueries.member.1.MetricStat.Period=60&MetricDataQueries.member.1.MetricStat.Stat=Sum";
        let (canonical, auth) = sign(
            "POST",
            &[],
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("Host", "monitoring.us-east-1.amazonaws.com"),
                ("X-Amz-Date", "20250101T000530Z"),
            ],
            body,
            "us-east-1",
            "monitoring",
            W_TIME,
        );
        assert!(
            canonical.ends_with("3345eb745d9ee624b261e8d944bc5213942bd23061c2532f308998fe2d2a6fe7")
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "8f4fd5b0177176011754e22f927679c1c662bde774cbd35416dc1faf767c39ee"
        );
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=fa3096c0a47b1965f581e0f786fe76fb2a1ff8a93b54e5c2b1d5fbcf007b35ca");
    }

    #[test]
    fn botocore_cloudwatch_json_w5() {
        let body = r#"{"StartTime": 1735689600, "EndTime": 1735689900, "ScanBy": "TimestampAscending", "MetricDataQueries": [{"Id": "m0", "ReturnData": true, "MetricStat": {"Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount", "Dimensions": [{"Name": "LoadBalancer", "Value": "app/my-alb/50dc6c495c0c9188"}]}, "Period": 60, "Stat": "Sum"}}]}"#;
        assert_eq!(
            sha256_hex(body.as_bytes()),
            "253b65f4b5872e70ba075d4279155d05bdf57b69747626746d1733baae415e40"
        );
        let (_, auth) = sign(
            "POST",
            &[],
            &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("Host", "monitoring.us-east-1.amazonaws.com"),
                ("X-Amz-Date", "20250101T000530Z"),
                (
                    "X-Amz-Target",
                    "GraniteServiceVersion20100801.GetMetricData",
                ),
                ("x-amzn-query-mode", "true"),
            ],
            body,
            "us-east-1",
            "monitoring",
            W_TIME,
        );
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-amzn-query-mode, Signature=19d2b137dea4ceb45bde49cfc79252a64dc7674ca72bee2cb4641b79dc14c238");
    }

    #[test]
    fn botocore_s3_list_buckets_w6() {
        let (canonical, auth) = sign(
            "GET",
            &[("max-buckets", "1000")],
            &[
                ("Host", "s3.us-east-1.amazonaws.com"),
                ("X-Amz-Content-SHA256", EMPTY_SHA256),
                ("X-Amz-Date", "20250101T000530Z"),
            ],
            "",
            "us-east-1",
            "s3",
            W_TIME,
        );
        assert_eq!(canonical, format!("GET\n/\nmax-buckets=1000\nhost:s3.us-east-1.amazonaws.com\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:20250101T000530Z\n\nhost;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}"));
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=d9b94db68841d4fbcd0948680d90fed54dcd02cf0a5ea69128b0ec8f8ae2d6a5");
    }

    #[test]
    fn botocore_elbv2_and_tagging_w7_w8() {
        let (_, auth) = sign(
            "POST",
            &[],
            &[
                (
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("Host", "elasticloadbalancing.us-east-1.amazonaws.com"),
                ("X-Amz-Date", "20250101T000530Z"),
            ],
            "Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=400",
            "us-east-1",
            "elasticloadbalancing",
            W_TIME,
        );
        assert!(
            auth.ends_with(
                "Signature=ae9c06ad35c9f6742d5f870ede056a3f1318981aca26834e8ca51a50d7a3318c"
            ),
            "{auth}"
        );
        let (_, auth) = sign(
            "POST",
            &[],
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Host", "tagging.us-east-1.amazonaws.com"),
                ("X-Amz-Date", "20250101T000530Z"),
                (
                    "X-Amz-Target",
                    "ResourceGroupsTaggingAPI_20170126.GetResources",
                ),
            ],
            r#"{"ResourceTypeFilters": ["elasticloadbalancing:loadbalancer"], "ResourcesPerPage": 100}"#,
            "us-east-1",
            "tagging",
            W_TIME,
        );
        assert!(auth.ends_with("SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=d6a9de8e5d0d756aad9f948be8f0e441f7d7a093e43cd0cad4334fd4db4857ab"), "{auth}");
    }

    /// Computed with botocore 1.44.8 (SigV4Auth / S3SigV4Auth, clock frozen at
    /// 20250101T001030Z): a session token is sent and signed as X-Amz-Security-Token.
    const T_1030: i64 = 1_735_690_230;
    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLETOKEN";
    const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

    #[test]
    fn botocore_cloudwatch_json_with_a_session_token() {
        let body = r#"{"StartTime":1735689960,"EndTime":1735690140,"ScanBy":"TimestampDescending","MetricDataQueries":[{"Id":"m0","MetricStat":{"Metric":{"Namespace":"AWS/ELB","MetricName":"RequestCount","Dimensions":[{"Name":"LoadBalancerName","Value":"web"}]},"Period":60,"Stat":"Sum"},"ReturnData":true}]}"#;
        let (_, auth) = sign(
            "POST",
            &[],
            &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("Host", "monitoring.eu-west-1.amazonaws.com"),
                ("X-Amz-Date", "20250101T001030Z"),
                ("X-Amz-Security-Token", TOKEN),
                (
                    "X-Amz-Target",
                    "GraniteServiceVersion20100801.GetMetricData",
                ),
                ("x-amzn-query-mode", "true"),
            ],
            body,
            "eu-west-1",
            "monitoring",
            T_1030,
        );
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/eu-west-1/monitoring/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target;x-amzn-query-mode, Signature=0933948b1e1a835a9f6b2dc19167773b99c1dd479beb6b640a28ab3d4e286a38");
    }

    #[test]
    fn botocore_query_calls_sts_elb_ec2() {
        let cases = [
            ("sts.us-east-1.amazonaws.com", "sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fexporter&RoleSessionName=multicloud-exporter&ExternalId=ext-42&DurationSeconds=3600", "13ffacbd751bdc1954e987dd6b39a4251475865b9e87abbad5ff234e0e4e5299"),
            ("elasticloadbalancing.us-east-1.amazonaws.com", "elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2012-06-01&PageSize=400", "2cc6720f2c246cac3ecf3bf037835dd5f097f627efff241bdf1496f6e5157ed2"),
            ("ec2.us-east-1.amazonaws.com", "ec2", "Action=DescribeRegions&Version=2016-11-15", "808f0a0802ec38b43faead0562eee3a7f7390e596c178b8cfae3cb350e43bf83"),
        ];
        for (host, service, body, sig) in cases {
            let (_, auth) = sign(
                "POST",
                &[],
                &[
                    ("Content-Type", FORM),
                    ("Host", host),
                    ("X-Amz-Date", "20250101T001030Z"),
                ],
                body,
                "us-east-1",
                service,
                T_1030,
            );
            assert!(
                auth.ends_with(&format!(
                    "SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
                )),
                "{service}: {auth}"
            );
        }
    }

    #[test]
    fn botocore_s3_list_buckets_with_token_and_continuation() {
        let (canonical, auth) = sign(
            "GET",
            &[("max-buckets", "1000"), ("continuation-token", "abc/def")],
            &[
                ("Host", "s3.us-east-1.amazonaws.com"),
                ("X-Amz-Content-SHA256", EMPTY_SHA256),
                ("X-Amz-Date", "20250101T001030Z"),
                ("X-Amz-Security-Token", TOKEN),
            ],
            "",
            "us-east-1",
            "s3",
            T_1030,
        );
        assert!(canonical.contains("\ncontinuation-token=abc%2Fdef&max-buckets=1000\n"));
        assert_eq!(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=d0386f22c8e5eb12945ae3fd9a1c7f100904d404fb6ea9762852b8667abce5e8");
    }
}
