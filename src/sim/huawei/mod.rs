//! The simulated Huawei Cloud: `SDK-HMAC-SHA256`-signed JSON APIs routed by path (IAM regions
//! and projects, ELB v3, CES batch-query-metric-data) with API Gateway's real error body, and
//! OBS signed with `OBS AK:signature` answering XML. CES enforces its two rules as the API does:
//! at most 500 metrics a call, and at most 3000 datapoints a response — past that `from` is
//! silently moved forward.

mod handlers;

use serde_json::json;

use super::{FaultKind, SimRequest, SimResponse, SimState};
use crate::cloud::huawei::sign::{authorization, obs_authorization, ObsRequest, SdkRequest};
use crate::cloud::Cloud;
use crate::util::{fnv1a32, parse_query, percent_decode, UtcTime};

pub use handlers::project_id;

/// Largest clock skew accepted (15 minutes).
pub const MAX_SKEW_S: i64 = 15 * 60;

/// Whether a request is for the simulated Huawei Cloud.
pub fn is_huawei(req: &SimRequest) -> bool {
    req.header("authorization")
        .is_some_and(|a| a.starts_with("SDK-HMAC-SHA256") || a.starts_with("OBS "))
}

/// API Gateway's error body.
pub fn error(status: u16, code: &str, message: &str) -> SimResponse {
    let h = fnv1a32(message.as_bytes());
    SimResponse::json(
        status,
        &json!({"error_msg": message, "error_code": code, "request_id": format!("{h:08x}{}", &super::request_id()[..8])}),
    )
}

fn obs_error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::xml(
        status,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId></Error>", super::request_id()),
    )
}

/// Parse an RFC 1123 date (`Wed, 01 Jan 2025 00:10:30 GMT`) to Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == month)? + 1;
    let iso = format!("{year}-{m:02}-{:02}T{time}Z", day.parse::<u32>().ok()?);
    UtcTime::parse_iso8601(&iso).map(|t| t.to_unix())
}

fn api_of(req: &SimRequest) -> String {
    if req
        .header("authorization")
        .is_some_and(|a| a.starts_with("OBS "))
    {
        let q = parse_query(&req.raw_query);
        return if req.path == "/" {
            "obs.ListBuckets".into()
        } else if q.iter().any(|(k, _)| k == "tagging") {
            "obs.GetBucketTagging".into()
        } else {
            "obs.Unknown".into()
        };
    }
    let p = req.path.as_str();
    if p == "/v3/regions" {
        "iam.KeystoneListRegions".into()
    } else if p == "/v3/projects" {
        "iam.KeystoneListProjects".into()
    } else if p.ends_with("/batch-query-metric-data") {
        "ces.BatchListMetricData".into()
    } else if p.ends_with("/elb/loadbalancers") {
        "elb.ListLoadBalancers".into()
    } else {
        "unknown".into()
    }
}

/// Answer one request.
pub async fn handle(state: &SimState, req: &SimRequest) -> SimResponse {
    let api = api_of(req);
    state.count(Cloud::Huawei, req, &api);
    let obs = api.starts_with("obs.");
    if let Some(r) = super::injected_fault(state, &api, |kind| match (kind, obs) {
        (FaultKind::Throttle, false) => SimResponse::json(429, &json!({"http_code":429,"message":{"details":"Too Many Requests.","code":"ces.0429"},"encoded_authorization_message":null})),
        (FaultKind::Throttle, true) => obs_error(503, "SlowDown", "Please reduce your request rate."),
        (FaultKind::AuthFailure, false) => error(401, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail"),
        (FaultKind::AuthFailure, true) => obs_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."),
        (FaultKind::Malformed, _) => SimResponse { status: 200, content_type: "application/json", body: b"{\"metrics\": [oops".to_vec() },
        (_, false) => error(503, "APIGW.0503", "The service is unavailable."),
        (_, true) => obs_error(503, "ServiceUnavailable", "Service is unavailable."),
    })
    .await
    {
        return r;
    }
    let resp = if obs {
        obs_call(state, req, &api)
    } else {
        sdk_call(state, req, &api)
    };
    super::truncate_if_asked(state, &api, resp)
}

fn sdk_call(state: &SimState, req: &SimRequest, api: &str) -> SimResponse {
    let auth = req.header("authorization").unwrap_or("");
    let rest = auth.trim_start_matches("SDK-HMAC-SHA256").trim();
    let mut access = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Access=") {
            access = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let bad_sig = || {
        error(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: verify aksk signature fail",
        )
    };
    let (Some(ak), Some(signed), Some(sig)) = (access, signed, signature) else {
        return error(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: Authorization header is malformed",
        );
    };
    let estate = state.estate();
    let Some(account) = estate.account_by_key(Cloud::Huawei, ak) else {
        return error(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: ak not exist",
        );
    };
    let Some(date) = req.header("x-sdk-date") else {
        return bad_sig();
    };
    let skew_ok = UtcTime::parse_basic(date)
        .is_some_and(|t| (t.to_unix() - state.clock.now_s()).abs() <= MAX_SKEW_S);
    if !skew_ok {
        return error(
            401,
            "APIGW.0303",
            "Incorrect app authentication information: the request has expired",
        );
    }
    let headers: Vec<(String, String)> = signed
        .split(';')
        .map(|h| (h.to_string(), req.header(h).unwrap_or("").to_string()))
        .collect();
    let query = parse_query(&req.raw_query);
    let expected = authorization(
        &SdkRequest {
            method: &req.method,
            path: &percent_decode(&req.path, false),
            query: &query,
            headers: &headers,
            body: &req.body,
        },
        date,
        ak,
        &account.access_key_secret,
    );
    if expected.rsplit("Signature=").next() != Some(sig) || !signed.split(';').any(|h| h == "host")
    {
        return bad_sig();
    }
    if !state.within_quota(&account.account_id, api) {
        return SimResponse::json(
            429,
            &json!({"http_code":429,"message":{"details":"Too Many Requests.","code":"ces.0429"},"encoded_authorization_message":null}),
        );
    }
    handlers::dispatch(state, &estate, account, req, api, &query)
}

fn obs_call(state: &SimState, req: &SimRequest, api: &str) -> SimResponse {
    let auth = req.header("authorization").unwrap_or("");
    let Some((ak, sig)) = auth.trim_start_matches("OBS ").split_once(':') else {
        return obs_error(403, "AccessDenied", "Authorization header is malformed.");
    };
    let estate = state.estate();
    let Some(account) = estate.account_by_key(Cloud::Huawei, ak) else {
        return obs_error(
            403,
            "InvalidAccessKeyId",
            "The access key Id you provided does not exist in our records.",
        );
    };
    let date = req.header("date").unwrap_or("");
    let skew_ok =
        parse_http_date(date).is_some_and(|t| (t - state.clock.now_s()).abs() <= MAX_SKEW_S);
    if !skew_ok {
        return obs_error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        );
    }
    let query = parse_query(&req.raw_query);
    let sub = query
        .iter()
        .find(|(k, _)| k == "tagging")
        .map(|_| "?tagging")
        .unwrap_or("");
    // Requests reach the simulator path-style: `/bucket?tagging` signs without the bucket's
    // trailing `/` (that belongs to virtual-host requests).
    let resource = if req.path == "/" {
        "/".to_string()
    } else {
        format!("{}{sub}", percent_decode(&req.path, false))
    };
    let obs_headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-obs-"))
        .cloned()
        .collect();
    let expected = obs_authorization(
        &ObsRequest {
            method: &req.method,
            content_md5: req.header("content-md5").unwrap_or(""),
            content_type: req.header("content-type").unwrap_or(""),
            date,
            obs_headers: &obs_headers,
            resource: &resource,
        },
        ak,
        &account.access_key_secret,
    );
    if expected.rsplit(':').next() != Some(sig) {
        return obs_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if !state.within_quota(&account.account_id, api) {
        return obs_error(503, "SlowDown", "Please reduce your request rate.");
    }
    handlers::obs(account, req, &query)
}
