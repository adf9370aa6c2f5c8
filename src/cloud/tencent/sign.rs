//! Tencent Cloud request signatures: TC3-HMAC-SHA256 for API 3.0 (monitor, CLB, GWLB, VPC, CVM,
//! Tag) and COS's `q-sign-algorithm=sha1` for the bucket listing. Both are pure functions of the
//! request, the credentials and the time, tested byte for byte against the published examples
//! (`cloud-apis.md` B.1 T1–T3, B.5 T4–T7) and reused by the simulator to verify requests.

use crate::cloud::crypto::{canonical_headers, hmac_sha1, hmac_sha256, sha1_hex, sha256_hex};
use crate::util::{percent_encode, UtcTime};

/// The content type every API 3.0 call is sent and signed with (the SDK default).
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Inputs of a TC3 signature.
pub struct Tc3Request<'a> {
    /// `POST` or `GET`.
    pub method: &'a str,
    /// For GET the exact URL-encoded query string; "" for POST.
    pub canonical_query: &'a str,
    /// Headers to sign, at least `content-type` and `host` (values as sent).
    pub headers: &'a [(String, String)],
    /// The exact body bytes.
    pub payload: &'a [u8],
    /// Service, the host's first label (`monitor`, `clb`).
    pub service: &'a str,
    /// `X-TC-Timestamp`, Unix seconds.
    pub timestamp: i64,
}

/// The canonical request and the signed-headers list (`cloud-apis.md` B.1). Header names and
/// values are lower-cased and trimmed, as the documentation specifies (the value of a signed
/// `x-tc-action` is lower-case in canonical form).
pub fn tc3_canonical_request(req: &Tc3Request<'_>) -> (String, String) {
    let (canonical_headers, signed) = canonical_headers(
        req.headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
            .collect(),
    );
    let canonical = format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        req.method,
        req.canonical_query,
        canonical_headers,
        signed,
        sha256_hex(req.payload)
    );
    (canonical, signed)
}

/// The credential scope `<UTC date>/<service>/tc3_request`.
pub fn tc3_scope(service: &str, timestamp: i64) -> String {
    format!("{}/{service}/tc3_request", utc_date(timestamp))
}

fn utc_date(timestamp: i64) -> String {
    let iso = UtcTime::from_unix(timestamp).iso8601();
    iso.get(..10).unwrap_or("").to_string()
}

/// The TC3 signature (hex) and the signed-headers list.
pub fn tc3_signature(req: &Tc3Request<'_>, secret_key: &str) -> (String, String) {
    let (canonical, signed) = tc3_canonical_request(req);
    let date = utc_date(req.timestamp);
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{}\n{}\n{}",
        req.timestamp,
        tc3_scope(req.service, req.timestamp),
        sha256_hex(canonical.as_bytes())
    );
    let secret_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(&secret_date, req.service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    (
        hex::encode(hmac_sha256(&secret_signing, string_to_sign.as_bytes())),
        signed,
    )
}

/// The `Authorization` header value of TC3.
pub fn tc3_authorization(req: &Tc3Request<'_>, secret_id: &str, secret_key: &str) -> String {
    let (signature, signed) = tc3_signature(req, secret_key);
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{}, SignedHeaders={signed}, Signature={signature}",
        tc3_scope(req.service, req.timestamp)
    )
}

/// Inputs of a COS signature.
pub struct CosRequest<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// The path as sent, not URL-encoded (`/`).
    pub path: &'a str,
    /// Query parameters, decoded; all are signed.
    pub params: &'a [(String, String)],
    /// Headers to sign, decoded (`host`, `x-cos-security-token`).
    pub headers: &'a [(String, String)],
    /// `<start>;<end>` in Unix seconds.
    pub key_time: &'a str,
}

/// The KeyTime the SDK uses: from a minute ago (clock skew) to `expire_s` ahead.
pub fn cos_key_time(now_s: i64, expire_s: i64) -> String {
    format!("{};{}", now_s - 60, now_s + expire_s)
}

fn cos_pairs(pairs: &[(String, String)]) -> (String, String) {
    let mut enc: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (percent_encode(k).to_ascii_lowercase(), percent_encode(v)))
        .collect();
    enc.sort();
    let joined = enc
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let list = enc
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (joined, list)
}

/// The COS signature (hex), with the header and parameter lists (`cloud-apis.md` B.5).
pub fn cos_signature(req: &CosRequest<'_>, secret_key: &str) -> (String, String, String) {
    let (params, param_list) = cos_pairs(req.params);
    let (headers, header_list) = cos_pairs(req.headers);
    let http_string = format!(
        "{}\n{}\n{params}\n{headers}\n",
        req.method.to_ascii_lowercase(),
        req.path
    );
    let string_to_sign = format!(
        "sha1\n{}\n{}\n",
        req.key_time,
        sha1_hex(http_string.as_bytes())
    );
    let sign_key = hex::encode(hmac_sha1(secret_key.as_bytes(), req.key_time.as_bytes()));
    let signature = hex::encode(hmac_sha1(sign_key.as_bytes(), string_to_sign.as_bytes()));
    (signature, header_list, param_list)
}

/// The `Authorization` header value of COS.
pub fn cos_authorization(req: &CosRequest<'_>, secret_id: &str, secret_key: &str) -> String {
    let (signature, header_list, param_list) = cos_signature(req, secret_key);
    format!(
        "q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={kt}&q-key-time={kt}&q-header-list={header_list}&q-url-param-list={param_list}&q-signature={signature}",
        kt = req.key_time
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const TC_ID: &str = "AKIDTESTSECRETID000000000000000000";
    const TC_KEY: &str = "TestSecretKey0123456789ABCDEFGHIJ";

    /// The headers the client signs for a JSON POST to `host`, plus `extra`.
    fn json_headers(host: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut headers = pairs(&[("Content-Type", JSON_CONTENT_TYPE), ("Host", host)]);
        headers.extend(pairs(extra));
        headers
    }

    fn post<'a>(
        headers: &'a [(String, String)],
        service: &'a str,
        timestamp: i64,
        body: &'a str,
    ) -> Tc3Request<'a> {
        Tc3Request {
            method: "POST",
            canonical_query: "",
            headers,
            payload: body.as_bytes(),
            service,
            timestamp,
        }
    }

    /// T1, the official example of "签名方法 v3" (cvm DescribeInstances).
    #[test]
    fn tc3_matches_the_official_example_t1() {
        let body = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let headers = json_headers("cvm.tencentcloudapi.com", &[]);
        let req = post(&headers, "cvm", 1_551_113_065, body);
        let (canonical, signed) = tc3_canonical_request(&req);
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(signed, "content-type;host");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            tc3_authorization(&req, "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        // T1b: the Chinese page's masked key.
        let (sig, _) = tc3_signature(&req, "Gu5t9xGARNpq86cd98joQYCN3*******");
        assert_eq!(
            sig,
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    const T2_BODY: &str = r#"{"Namespace":"QCE/LB_PUBLIC","MetricName":"ClientIntraffic","Period":60,"StartTime":"2025-01-01T07:55:00+08:00","EndTime":"2025-01-01T08:00:00+08:00","Instances":[{"Dimensions":[{"Name":"vip","Value":"1.2.3.4"}]},{"Dimensions":[{"Name":"vip","Value":"5.6.7.8"}]}]}"#;

    /// T2 and T2b, computed with tencentcloud-sdk-python-common 3.1.195.
    #[test]
    fn tc3_matches_the_sdk_vectors_t2() {
        assert_eq!(
            sha256_hex(T2_BODY.as_bytes()),
            "5a4175a0a7aba5a029ffc4684b7246a167b3899bb9d7b992697d807f1d31fd75"
        );
        let headers = json_headers("monitor.tencentcloudapi.com", &[]);
        let req = post(&headers, "monitor", 1_735_689_600, T2_BODY);
        let (canonical, _) = tc3_canonical_request(&req);
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "9673c14b67f093776344ff0bd50f57d1ed0c4db5ec6e46e085e531cfcf1810f5"
        );
        assert_eq!(
            tc3_authorization(&req, TC_ID, TC_KEY),
            "TC3-HMAC-SHA256 Credential=AKIDTESTSECRETID000000000000000000/2025-01-01/monitor/tc3_request, SignedHeaders=content-type;host, Signature=b6d3fb05a7424cafed0931acd8b7053cd6ca40f6de0612b48edc950c18666e22"
        );
        let headers = json_headers(
            "monitor.tencentcloudapi.com",
            &[("X-TC-Action", "GetMonitorData")],
        );
        let req = post(&headers, "monitor", 1_735_689_600, T2_BODY);
        let (sig, signed) = tc3_signature(&req, TC_KEY);
        assert_eq!(signed, "content-type;host;x-tc-action");
        assert_eq!(
            sig,
            "073ccf1fc2699e336532c3a74150776dfa02a55c3f815e06aa65356e2ddec76d"
        );
    }

    /// T3: a GET with the query signed and an empty payload.
    #[test]
    fn tc3_matches_the_sdk_vector_t3_for_get() {
        let headers = pairs(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "clb.tencentcloudapi.com"),
        ]);
        let req = Tc3Request {
            method: "GET",
            canonical_query: "Limit=100&Offset=0",
            headers: &headers,
            payload: b"",
            service: "clb",
            timestamp: 1_735_689_600,
        };
        assert_eq!(
            tc3_authorization(&req, TC_ID, TC_KEY),
            "TC3-HMAC-SHA256 Credential=AKIDTESTSECRETID000000000000000000/2025-01-01/clb/tc3_request, SignedHeaders=content-type;host, Signature=ea41c543de7812aef1cf16e0ea8e6637cf3a200ba140f52276b93c615cf7873e"
        );
    }

    /// T4, the official example "Downloading an object".
    #[test]
    fn cos_matches_the_official_example_t4() {
        let params = pairs(&[
            ("response-content-type", "application/octet-stream"),
            ("response-cache-control", "max-age=600"),
        ]);
        let headers = pairs(&[
            ("Date", "Thu, 16 May 2019 06:55:53 GMT"),
            (
                "Host",
                "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
            ),
        ]);
        let req = CosRequest {
            method: "GET",
            path: "/exampleobject(腾讯云)",
            params: &params,
            headers: &headers,
            key_time: "1557989753;1557996953",
        };
        assert_eq!(
            hex::encode(hmac_sha1(
                b"BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz",
                b"1557989753;1557996953"
            )),
            "937914bf490e9e8c189836aad2052e4feeb35eaf"
        );
        assert_eq!(
            cos_authorization(&req, "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"),
            "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1557989753;1557996953&q-key-time=1557989753;1557996953&q-header-list=date;host&q-url-param-list=response-cache-control;response-content-type&q-signature=01681b8c9d798a678e43b685a9f1bba0f6c0e012"
        );
    }

    /// T5, the official example "Uploading an object".
    #[test]
    fn cos_matches_the_official_example_t5() {
        let headers = pairs(&[
            ("Date", "Thu, 16 May 2019 06:45:51 GMT"),
            (
                "Host",
                "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
            ),
            ("Content-Type", "text/plain"),
            ("Content-Length", "13"),
            ("Content-MD5", "mQ/fVh815F3k6TAUm8m0eg=="),
            ("x-cos-acl", "private"),
            ("x-cos-grant-read", "uin=\"100000000011\""),
        ]);
        let req = CosRequest {
            method: "PUT",
            path: "/exampleobject(腾讯云)",
            params: &[],
            headers: &headers,
            key_time: "1557989151;1557996351",
        };
        let (sig, header_list, param_list) =
            cos_signature(&req, "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz");
        assert_eq!(sig, "3b8851a11a569213c17ba8fa7dcf2abec6935172");
        assert_eq!(
            header_list,
            "content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read"
        );
        assert_eq!(param_list, "");
    }

    /// T6 (host only) and T7 (the SDK's KeyTime rule with the clock at 1735689660).
    #[test]
    fn cos_matches_the_sdk_vectors_t6_t7() {
        let headers = pairs(&[("Host", "service.cos.myqcloud.com")]);
        let mut req = CosRequest {
            method: "GET",
            path: "/",
            params: &[],
            headers: &headers,
            key_time: "1735689600;1735693200",
        };
        assert_eq!(
            cos_authorization(&req, TC_ID, TC_KEY),
            "q-sign-algorithm=sha1&q-ak=AKIDTESTSECRETID000000000000000000&q-sign-time=1735689600;1735693200&q-key-time=1735689600;1735693200&q-header-list=host&q-url-param-list=&q-signature=3d66bc9b1213869d4c00359ad537d1c333b20489"
        );
        let kt = cos_key_time(1_735_689_660, 3600);
        assert_eq!(kt, "1735689600;1735693260");
        req.key_time = &kt;
        let (sig, _, _) = cos_signature(&req, TC_KEY);
        assert_eq!(sig, "e08b3c24822b9b8d131867c186b441e21bacdf8b");
    }

    /// GetMonitorData with an STS token (sent as X-TC-Token, not signed) and CLB
    /// DescribeLoadBalancers, computed with tencentcloud-sdk-python-common 3.1.195 at
    /// X-TC-Timestamp 1735690230 (its Content-Type constant set to the charset form we send).
    #[test]
    fn tc3_matches_sdk_vectors_for_monitor_and_clb_calls() {
        let body = r#"{"Namespace":"QCE/LB_PUBLIC","MetricName":"ClientConnum","Period":60,"StartTime":"2025-01-01T08:06:00+08:00","EndTime":"2025-01-01T08:09:00+08:00","Instances":[{"Dimensions":[{"Name":"vip","Value":"81.70.10.1"}]}]}"#;
        let headers = json_headers("monitor.tencentcloudapi.com", &[]);
        let req = post(&headers, "monitor", 1_735_690_230, body);
        assert_eq!(
            tc3_authorization(&req, TC_ID, TC_KEY),
            "TC3-HMAC-SHA256 Credential=AKIDTESTSECRETID000000000000000000/2025-01-01/monitor/tc3_request, SignedHeaders=content-type;host, Signature=f8c5200935bf91d550e947debd30e7d37c499b8ca9e6f4fb6d3c2070af53b66c"
        );
        let headers = json_headers("clb.tencentcloudapi.com", &[]);
        let req = post(
            &headers,
            "clb",
            1_735_690_230,
            r#"{"Limit":100,"Offset":0}"#,
        );
        assert_eq!(
            tc3_authorization(&req, TC_ID, TC_KEY),
            "TC3-HMAC-SHA256 Credential=AKIDTESTSECRETID000000000000000000/2025-01-01/clb/tc3_request, SignedHeaders=content-type;host, Signature=8c0a5032f8fb9d4770e22b18bfda4c346840eb922bdf8e30b62b605af776c8d4"
        );
    }

    /// GetService with signed parameters and an STS token (cos-python-sdk-v5 1.9.44 CosS3Auth
    /// signs every x-cos-* header), and with a marker; clock frozen at 1735690230, the SDK's
    /// default expiry of 10000 s.
    #[test]
    fn cos_matches_sdk_vectors_for_get_service_pages() {
        let kt = cos_key_time(1_735_690_230, 10_000);
        assert_eq!(kt, "1735690170;1735700230");
        let params = pairs(&[("max-keys", "2000")]);
        let headers = pairs(&[
            ("host", "service.cos.myqcloud.com"),
            ("x-cos-security-token", "TOKENEXAMPLE0001"),
        ]);
        let req = CosRequest {
            method: "GET",
            path: "/",
            params: &params,
            headers: &headers,
            key_time: &kt,
        };
        assert_eq!(
            cos_authorization(&req, TC_ID, TC_KEY),
            "q-sign-algorithm=sha1&q-ak=AKIDTESTSECRETID000000000000000000&q-sign-time=1735690170;1735700230&q-key-time=1735690170;1735700230&q-header-list=host;x-cos-security-token&q-url-param-list=max-keys&q-signature=3f530856d2ae18ff1d8286ed8971be0ef56abd9a"
        );
        let params = pairs(&[("marker", "demo-b-1250000000"), ("max-keys", "2000")]);
        let headers = pairs(&[("host", "service.cos.myqcloud.com")]);
        let req = CosRequest {
            method: "GET",
            path: "/",
            params: &params,
            headers: &headers,
            key_time: &kt,
        };
        let (sig, header_list, param_list) = cos_signature(&req, TC_KEY);
        assert_eq!(sig, "9e9df9e14743f7f8877e86c677422e56ea1b5b96");
        assert_eq!(
            (header_list.as_str(), param_list.as_str()),
            ("host", "marker;max-keys")
        );
    }
}
