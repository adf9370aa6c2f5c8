//! Huawei Cloud request signatures: `SDK-HMAC-SHA256` (huaweicloudsdkcore's signer, the same
//! as API Gateway's AK/SK signing) for CES, ELB and IAM, and OBS's own `OBS AK:signature`
//! (HMAC-SHA1 over verb, Content-MD5, Content-Type, Date, `x-obs-*` headers and the resource)
//! for the bucket listing. Pure functions, tested byte for byte against vector H1
//! (`cloud-apis.md` D.1) and vectors computed with the official SDKs.

use base64::Engine;

use crate::cloud::crypto::{canonical_headers, hmac_sha1, hmac_sha256, sha256_hex};
use crate::util::percent_encode;

/// Inputs of an `SDK-HMAC-SHA256` signature.
pub struct SdkRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path as sent, decoded (`/V1.0/<project>/batch-query-metric-data`).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Every header sent (names without `_` are signed), including `host` and `x-sdk-date`.
    pub headers: &'a [(String, String)],
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// The canonical URI: each segment RFC 3986-encoded, always ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let mut out: String = path
        .split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical request and the signed-headers list (`cloud-apis.md` D.1).
pub fn canonical_request(req: &SdkRequest<'_>) -> (String, String) {
    let (canonical_headers, signed) = canonical_headers(
        req.headers
            .iter()
            .filter(|(k, _)| !k.contains('_'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
    );
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        crate::util::canonical_query(req.query),
        canonical_headers,
        signed,
        sha256_hex(req.body)
    );
    (canonical, signed)
}

/// The `Authorization` header value; `sdk_date` is the `X-Sdk-Date` sent.
pub fn authorization(req: &SdkRequest<'_>, sdk_date: &str, ak: &str, sk: &str) -> String {
    let (canonical, signed) = canonical_request(req);
    let string_to_sign = format!(
        "SDK-HMAC-SHA256\n{sdk_date}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let signature = hex::encode(hmac_sha256(sk.as_bytes(), string_to_sign.as_bytes()));
    format!("SDK-HMAC-SHA256 Access={ak}, SignedHeaders={signed}, Signature={signature}")
}

/// Inputs of an OBS signature.
pub struct ObsRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// `Content-MD5`, "" when none.
    pub content_md5: &'a str,
    /// `Content-Type`, "" when none.
    pub content_type: &'a str,
    /// `Date` (RFC 1123).
    pub date: &'a str,
    /// `x-obs-*` headers sent.
    pub obs_headers: &'a [(String, String)],
    /// `/` for the service, `/<bucket>/` plus sub-resources (`?tagging`) for a bucket.
    pub resource: &'a str,
}

/// The OBS string to sign.
pub fn obs_string_to_sign(req: &ObsRequest<'_>) -> String {
    let mut headers: Vec<(String, String)> = req
        .obs_headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| k.starts_with("x-obs-"))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    format!(
        "{}\n{}\n{}\n{}\n{canonical_headers}{}",
        req.method, req.content_md5, req.content_type, req.date, req.resource
    )
}

/// The `Authorization` header value of OBS.
pub fn obs_authorization(req: &ObsRequest<'_>, ak: &str, sk: &str) -> String {
    let mac = hmac_sha1(sk.as_bytes(), obs_string_to_sign(req).as_bytes());
    format!(
        "OBS {ak}:{}",
        base64::engine::general_purpose::STANDARD.encode(mac)
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

    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    /// H1, computed with huaweicloudsdkcore 3.1.219.
    #[test]
    fn ces_batch_query_matches_h1() {
        let body = r#"{"metrics":[{"namespace":"SYS.ELB","metric_name":"m7_in_Bps","dimensions":[{"name":"lbaas_instance_id","value":"7d8f1b22-aaaa-bbbb-cccc-0123456789ab"}]}],"from":1735689300000,"to":1735689600000,"period":"1","filter":"average"}"#;
        let headers = pairs(&[
            ("Content-Type", "application/json;charset=UTF-8"),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", "20250101T000000Z"),
            ("Host", "ces.cn-north-4.myhuaweicloud.com"),
        ]);
        let path = format!("/V1.0/{PROJECT}/batch-query-metric-data");
        let req = SdkRequest {
            method: "POST",
            path: &path,
            query: &[],
            headers: &headers,
            body: body.as_bytes(),
        };
        let (canonical, signed) = canonical_request(&req);
        assert_eq!(canonical, format!("POST\n/V1.0/{PROJECT}/batch-query-metric-data/\n\ncontent-type:application/json;charset=UTF-8\nhost:ces.cn-north-4.myhuaweicloud.com\nx-project-id:{PROJECT}\nx-sdk-date:20250101T000000Z\n\ncontent-type;host;x-project-id;x-sdk-date\nadb2e3f084d0d8da9eb5c89e4ba72818511798efe897c50fb0273d0aabd08c54"));
        assert_eq!(signed, "content-type;host;x-project-id;x-sdk-date");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "0a4611b3f1f6494c85db07b6541e0e540d51ee7953692bff583d1eb7dbd5658c"
        );
        assert_eq!(
            authorization(&req, "20250101T000000Z", "HWAKTEST0000000000", "HwSecretKeyTest0123456789abcdefABCDEFGH"),
            "SDK-HMAC-SHA256 Access=HWAKTEST0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=92dce4f1b789a023b2373b6ec343d912622d7299058b379928fe1fd6079d6dad"
        );
    }

    #[test]
    fn canonical_uris_always_end_in_a_slash() {
        assert_eq!(canonical_uri("/v3/projects"), "/v3/projects/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a b/c:d"), "/a%20b/c%3Ad/");
    }

    /// Computed with huaweicloudsdkcore 3.1.219 (its Signer, X-Sdk-Date 20250101T001030Z).
    const AK: &str = "HWAKTESTAK0000000000";
    const SK: &str = "HwTestSecretKey0123456789abcdefghijklmnop";
    const DATE: &str = "20250101T001030Z";

    fn sign(
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &str,
    ) -> String {
        let query = pairs(query);
        let mut headers = pairs(headers);
        headers.push(("X-Sdk-Date".into(), DATE.into()));
        authorization(
            &SdkRequest {
                method,
                path,
                query: &query,
                headers: &headers,
                body: body.as_bytes(),
            },
            DATE,
            AK,
            SK,
        )
    }

    #[test]
    fn sdk_vectors_for_ces_with_and_without_a_token() {
        let body = r#"{"metrics":[{"namespace":"SYS.ELB","metric_name":"m1_cps","dimensions":[{"name":"lbaas_instance_id","value":"3ae5b5c6-1c0f-4c3b-9e2a-5a7c0d5b0a11"}]}],"from":1735689600000,"to":1735690200000,"period":"300","filter":"average"}"#;
        let path = format!("/V1.0/{PROJECT}/batch-query-metric-data");
        let base = [
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Host", "ces.cn-north-4.myhuaweicloud.com"),
        ];
        assert_eq!(
            sign("POST", &path, &[], &base, body),
            "SDK-HMAC-SHA256 Access=HWAKTESTAK0000000000, SignedHeaders=content-type;host;x-sdk-date, Signature=dceb5d915af743b4b289cf6ff2c19a42a3e9c202f10b2ca2761ea5e581abe33c"
        );
        let mut with_token = base.to_vec();
        with_token.push(("X-Security-Token", "HWSTSTOKENEXAMPLE0001"));
        assert_eq!(
            sign("POST", &path, &[], &with_token, body),
            "SDK-HMAC-SHA256 Access=HWAKTESTAK0000000000, SignedHeaders=content-type;host;x-sdk-date;x-security-token, Signature=89bafe3d47d276cbb4107dedecfcdbebf257207b52cec905e2f11115d2bdf0c2"
        );
    }

    #[test]
    fn sdk_vectors_for_gets_with_queries_and_encoded_paths() {
        let elb = [("Host", "elb.cn-north-4.myhuaweicloud.com")];
        let list = format!("/v3/{PROJECT}/elb/loadbalancers");
        assert!(sign("GET", &list, &[("limit", "2000"), ("marker", "3ae5b5c6-1c0f-4c3b-9e2a-5a7c0d5b0a11")], &elb, "")
            .ends_with("SignedHeaders=host;x-sdk-date, Signature=539efa6fa6d9a27a8b22c1521addb06f56ff5caab1caa6c00ee9d6f20e980a3e"));
        assert!(sign(
            "GET",
            "/v3/projects",
            &[("name", "cn-north-4")],
            &[("Host", "iam.myhuaweicloud.com")],
            ""
        )
        .ends_with("Signature=1ada9aeaf271112abec5e2ac8fa15d376632af7d7e3757a22564968326683d52"));
        // The decoded path `a b:c` signs as `a%20b%3Ac/`.
        assert!(
            sign("GET", &format!("{list}/a b:c"), &[], &elb, "").ends_with(
                "Signature=dee56fc373f1bbb9909f3d646ab1238e66fa73a2339a22b031fcd3d8f00f26b1"
            )
        );
    }

    fn obs_get<'a>(resource: &'a str, headers: &'a [(String, String)]) -> ObsRequest<'a> {
        ObsRequest {
            method: "GET",
            content_md5: "",
            content_type: "",
            date: "Wed, 01 Jan 2025 00:10:30 GMT",
            obs_headers: headers,
            resource,
        }
    }

    /// Computed with esdk-obs-python 3.26.6 (signature negotiation off, Date fixed).
    #[test]
    fn obs_vectors_for_list_buckets_and_tagging() {
        assert_eq!(
            obs_authorization(&obs_get("/", &[]), AK, SK),
            "OBS HWAKTESTAK0000000000:YJsRWxFODNiz84tO0m8kfqxuYYc="
        );
        // The SDK's default listing also asks for each bucket's location.
        let location = pairs(&[("x-obs-location", "true")]);
        assert_eq!(
            obs_string_to_sign(&obs_get("/", &location)),
            "GET\n\n\nWed, 01 Jan 2025 00:10:30 GMT\nx-obs-location:true\n/"
        );
        assert_eq!(
            obs_authorization(&obs_get("/", &location), AK, SK),
            "OBS HWAKTESTAK0000000000:JX0GgTvuFafENOUgCsM3e6ePosQ="
        );
        assert_eq!(
            obs_authorization(&obs_get("/demo-assets/?tagging", &[]), AK, SK),
            "OBS HWAKTESTAK0000000000:Ntxhmme9X5vPUvS7TLyD3YFzW9I="
        );
    }
}
