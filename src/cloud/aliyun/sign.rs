//! Alibaba Cloud request signatures: V3 `ACS3-HMAC-SHA256` for the RPC APIs (CMS, SLB, ALB, NLB,
//! GWLB, VPC, Tag) and OSS V4 `OSS4-HMAC-SHA256` for ListBuckets. Both are pure functions of the
//! request, the credentials, the time and the nonce, so they are tested byte for byte against the
//! published vectors (`cloud-apis.md` A.2 and A.5) and reused by the simulator to verify requests.

use crate::cloud::crypto::{canonical_headers, hmac_sha256};
pub use crate::cloud::crypto::{sha256_hex, EMPTY_SHA256};
pub use crate::util::canonical_query;
use crate::util::{percent_encode, percent_encode_path, UtcTime};

/// Inputs of a V3 signature.
pub struct V3Request<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Canonical URI; `/` for RPC APIs.
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Headers to sign (name in any case, value as sent). Must include host and the x-acs-* headers.
    pub headers: &'a [(String, String)],
    /// hex(sha256(body)).
    pub payload_hash: &'a str,
}

/// The canonical request of V3 (`cloud-apis.md` A.2), and the signed-headers list.
pub fn v3_canonical_request(req: &V3Request<'_>) -> (String, String) {
    let (canonical_headers, signed) = canonical_headers(
        req.headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
    );
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        canonical_headers,
        signed,
        req.payload_hash
    );
    (canonical, signed)
}

/// The V3 signature (hex) over a request, with the signed-headers list.
pub fn v3_signature(req: &V3Request<'_>, secret: &str) -> (String, String) {
    let (canonical, signed) = v3_canonical_request(req);
    let string_to_sign = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(canonical.as_bytes()));
    (
        hex::encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes())),
        signed,
    )
}

/// The `Authorization` header value of V3.
pub fn v3_authorization(req: &V3Request<'_>, access_key_id: &str, secret: &str) -> String {
    let (signature, signed) = v3_signature(req, secret);
    format!(
        "ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={signed},Signature={signature}"
    )
}

/// Inputs of an OSS V4 signature.
pub struct OssV4Request<'a> {
    pub method: &'a str,
    /// `/bucket/key`, or `/` for the service (ListBuckets); not yet encoded.
    pub resource_path: &'a str,
    /// Query parameters, decoded; an empty value is signed as the bare name.
    pub query: &'a [(String, String)],
    /// All headers sent; the signed ones (x-oss-*, content-type, content-md5) are picked here.
    pub headers: &'a [(String, String)],
    /// Region of the scope, e.g. `cn-hangzhou`.
    pub region: &'a str,
    /// Unix seconds of `x-oss-date`.
    pub time: i64,
}

/// The canonical request of OSS V4 (`cloud-apis.md` A.5).
pub fn oss_v4_canonical_request(req: &OssV4Request<'_>) -> String {
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| k.starts_with("x-oss-") || k == "content-type" || k == "content-md5")
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    format!(
        "{}\n{}\n{}\n{}\n\nUNSIGNED-PAYLOAD",
        req.method,
        percent_encode_path(req.resource_path),
        query,
        canonical_headers
    )
}

/// The OSS V4 signature (hex) and its scope.
pub fn oss_v4_signature(req: &OssV4Request<'_>, secret: &str) -> (String, String) {
    let t = UtcTime::from_unix(req.time);
    let date = t.date_basic();
    let scope = format!("{date}/{}/oss/aliyun_v4_request", req.region);
    let string_to_sign = format!(
        "OSS4-HMAC-SHA256\n{}\n{scope}\n{}",
        t.basic(),
        sha256_hex(oss_v4_canonical_request(req).as_bytes())
    );
    let k_date = hmac_sha256(format!("aliyun_v4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, req.region.as_bytes());
    let k_service = hmac_sha256(&k_region, b"oss");
    let k_signing = hmac_sha256(&k_service, b"aliyun_v4_request");
    (
        hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes())),
        scope,
    )
}

/// The `Authorization` header value of OSS V4.
pub fn oss_v4_authorization(req: &OssV4Request<'_>, access_key_id: &str, secret: &str) -> String {
    let (signature, scope) = oss_v4_signature(req, secret);
    format!("OSS4-HMAC-SHA256 Credential={access_key_id}/{scope}, Signature={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Keys of the computed vectors.
    const AK: &str = "LTAI5tTESTKEYID0000";
    const SK: &str = "TestSecretKey0123456789abcdef";

    /// A POST `/` with an empty body, signed: (hex sha256 of the canonical request, Authorization).
    fn v3_post(
        query: &[(String, String)],
        headers: &[(String, String)],
        ak: &str,
        sk: &str,
    ) -> (String, String) {
        let req = V3Request {
            method: "POST",
            path: "/",
            query,
            headers,
            payload_hash: EMPTY_SHA256,
        };
        let (canonical, _) = v3_canonical_request(&req);
        (
            sha256_hex(canonical.as_bytes()),
            v3_authorization(&req, ak, sk),
        )
    }

    /// A4: the official example of the V3 documentation (ECS RunInstances).
    #[test]
    fn v3_matches_official_vector_a4() {
        let query = pairs(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = pairs(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", EMPTY_SHA256),
        ]);
        let (hash, auth) = v3_post(&query, &headers, "YourAccessKeyId", "YourAccessKeySecret");
        assert_eq!(
            hash,
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(auth, "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0");
    }

    type Pairs = Vec<(String, String)>;

    fn a5_request(extra: &[(&str, &str)]) -> (Pairs, Pairs) {
        let query = pairs(&[
            ("Namespace", "acs_slb_dashboard"),
            ("MetricName", "InstanceTrafficRX"),
            ("Period", "60"),
            ("StartTime", "1735689300000"),
            ("EndTime", "1735689600000"),
            ("Length", "1000"),
            (
                "Dimensions",
                r#"[{"instanceId":"lb-bp1abc"},{"instanceId":"lb-bp1def"}]"#,
            ),
        ]);
        let headers = v3_headers(
            "metrics.cn-hangzhou.aliyuncs.com",
            "DescribeMetricLast",
            "2019-01-01",
            extra,
        );
        (query, headers)
    }

    /// A5: CMS DescribeMetricLast as `alibabacloud_cms20190101` sends it (computed by the SDK).
    #[test]
    fn v3_matches_sdk_vector_a5_and_a6() {
        let (query, headers) = a5_request(&[]);
        let (hash, auth) = v3_post(&query, &headers, AK, SK);
        assert_eq!(
            hash,
            "be1bfd7b901db2da79a49e8fdb83641ce8193d07e9240aa9ef5513c53f4f8322"
        );
        assert_eq!(auth, "ACS3-HMAC-SHA256 Credential=LTAI5tTESTKEYID0000,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=e2ffc7c7179fb6b447a0286fe8741988e352ad78333026ac9d1d26d12ffd41e8");
        let (query, headers) = a5_request(&[("accept", "application/json")]);
        let (_, auth) = v3_post(&query, &headers, AK, SK);
        assert!(
            auth.ends_with(
                "Signature=e50e9000505ae0d9d3b8eba2f4ed9e7bab8d277ef17d1df0cedf3cb3627ad329"
            ),
            "{auth}"
        );
    }

    /// A8: the official OSS SDK v2 fixture `test_v4`.
    #[test]
    fn oss_v4_matches_official_vector_a8() {
        let query = pairs(&[
            ("param1", "value1"),
            ("+param1", "value3"),
            ("|param1", "value4"),
            ("+param2", ""),
            ("|param2", ""),
            ("param2", ""),
        ]);
        let headers = pairs(&[
            ("x-oss-head1", "value"),
            ("abc", "value"),
            ("ZAbc", "value"),
            ("XYZ", "value"),
            ("content-type", "text/plain"),
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-oss-date", "20231216T162057Z"),
        ]);
        let req = OssV4Request {
            method: "PUT",
            resource_path: "/bucket/1234+-/123/1.txt",
            query: &query,
            headers: &headers,
            region: "cn-hangzhou",
            time: 1_702_743_657,
        };
        assert_eq!(
            oss_v4_authorization(&req, "ak", "sk"),
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request, Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
        );
    }

    /// A9: ListBuckets through oss2 (computed by the SDK).
    #[test]
    fn oss_v4_matches_sdk_vector_a9() {
        let query = pairs(&[("max-keys", "100")]);
        let headers = pairs(&[
            ("x-oss-date", "20250101T000000Z"),
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ]);
        let req = OssV4Request {
            method: "GET",
            resource_path: "/",
            query: &query,
            headers: &headers,
            region: "cn-hangzhou",
            time: 1_735_689_600,
        };
        assert_eq!(
            sha256_hex(oss_v4_canonical_request(&req).as_bytes()),
            "367a804fe2887585b10973f7c23c09d669b9a1b7f2ea9d384b4b30048c21bcc9"
        );
        assert_eq!(
            oss_v4_authorization(&req, AK, SK),
            "OSS4-HMAC-SHA256 Credential=LTAI5tTESTKEYID0000/20250101/cn-hangzhou/oss/aliyun_v4_request, Signature=d84839d0852837433efa50fb693b433f41a09bf8834096ef5c3a945cd5a6ac0e"
        );
    }

    fn v3_headers(host: &str, action: &str, version: &str, extra: &[(&str, &str)]) -> Pairs {
        let mut h = pairs(&[
            ("host", host),
            ("x-acs-action", action),
            ("x-acs-version", version),
            ("x-acs-date", "2025-01-01T00:00:00Z"),
            ("x-acs-signature-nonce", "0123456789abcdef0123456789abcdef"),
            ("x-acs-content-sha256", EMPTY_SHA256),
        ]);
        h.extend(pairs(extra));
        h
    }

    /// Computed with alibabacloud-openapi-util 0.2.4 `get_authorization` (and cross-checked with
    /// tea-openapi 0.4.6 and `tools/sign_oracle.py`): ARNs with `:`, `/`, space, `*` and `~`.
    #[test]
    fn v3_matches_sdk_vector_for_list_tag_resources() {
        let query = pairs(&[
            ("RegionId", "cn-hangzhou"),
            ("PageSize", "1000"),
            (
                "ResourceARN.1",
                "arn:acs:oss:cn-hangzhou:1234567890123456:bucket/demo-assets",
            ),
            (
                "ResourceARN.2",
                "arn:acs:oss:cn-hangzhou:1234567890123456:bucket/demo logs*~",
            ),
        ]);
        let headers = v3_headers(
            "tag.cn-hangzhou.aliyuncs.com",
            "ListTagResources",
            "2018-08-28",
            &[],
        );
        let (hash, auth) = v3_post(&query, &headers, AK, SK);
        assert_eq!(
            hash,
            "197ce9e8f2cbd5ef22c94eae516a4e3f781ed45f36aa387701eb1c619a612274"
        );
        assert!(
            auth.ends_with(
                "Signature=31bc77f53289fbb6d10ace9f60fc584f2c637d7ef9e6e92bddf3c25ace1e7aff"
            ),
            "{auth}"
        );
    }

    /// Computed with alibabacloud-openapi-util 0.2.4: a paged, filtered DescribeMetricLast with an
    /// STS token and `accept` signed, as this exporter sends it.
    #[test]
    fn v3_matches_sdk_vector_with_security_token() {
        let query = pairs(&[
            ("RegionId", "cn-hangzhou"),
            ("Namespace", "acs_gwlb"),
            ("MetricName", "ActiveConnection"),
            ("Period", "60"),
            ("StartTime", "1735689300000"),
            ("EndTime", "1735689600000"),
            ("Length", "1000"),
            (
                "Dimensions",
                r#"[{"instanceId":"gwlb-1","availableZone":"all"}]"#,
            ),
            ("NextToken", "tok-1000"),
        ]);
        let headers = v3_headers(
            "metrics.cn-hangzhou.aliyuncs.com",
            "DescribeMetricLast",
            "2019-01-01",
            &[
                ("accept", "application/json"),
                ("x-acs-security-token", "STS.TestToken/+=abc"),
            ],
        );
        let (hash, auth) = v3_post(&query, &headers, AK, SK);
        assert_eq!(
            hash,
            "ec2c8b602e2a5debc189b05956af0e27f6b153b698bbd3854f120d50613e2d3d"
        );
        assert_eq!(auth, "ACS3-HMAC-SHA256 Credential=LTAI5tTESTKEYID0000,SignedHeaders=accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=a989238136a30ebde994d6c85a1a7abebd459eeeab17dccc01173263f247ab56");
    }

    /// Computed with oss2 2.19.1 `AuthV4` (and `StsAuth` v4): ListBuckets with a marker that
    /// needs encoding and an STS token, region cn-beijing.
    #[test]
    fn oss_v4_matches_sdk_vector_with_marker_and_token() {
        let query = pairs(&[("max-keys", "1000"), ("marker", "demo assets")]);
        let headers = pairs(&[
            ("x-oss-date", "20250101T000000Z"),
            ("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-oss-security-token", "STS.TestToken/+=abc"),
            ("user-agent", "not signed"),
        ]);
        let req = OssV4Request {
            method: "GET",
            resource_path: "/",
            query: &query,
            headers: &headers,
            region: "cn-beijing",
            time: 1_735_689_600,
        };
        assert_eq!(
            sha256_hex(oss_v4_canonical_request(&req).as_bytes()),
            "ebe0ba68c1d38076061c2fcc01c96f37fbc0f7625b84d6fd0db06c08894383f6"
        );
        assert_eq!(
            oss_v4_authorization(&req, AK, SK),
            "OSS4-HMAC-SHA256 Credential=LTAI5tTESTKEYID0000/20250101/cn-beijing/oss/aliyun_v4_request, Signature=e29eab2d5ab035af967ddcca5f7815a09d6ef133fefd371e8232714ee13acbd3"
        );
    }
}
