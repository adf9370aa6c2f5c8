//! The simulated Tencent Cloud: API 3.0 actions signed with TC3-HMAC-SHA256, routed by
//! `X-TC-Action` and the credential scope's service, answering errors as HTTP 200 with
//! `Response.Error` (`AuthFailure.SignatureFailure`, `RequestLimitExceeded`, …); and COS
//! GetService signed with `q-sign`, answering XML errors.

pub mod catalogue;
mod handlers;

use serde_json::{json, Value};

use super::{request_id, FaultKind, SimRequest, SimResponse, SimState};
use crate::cloud::tencent::sign::{cos_signature, tc3_signature, CosRequest, Tc3Request};
use crate::cloud::Cloud;
use crate::util::{parse_query, random_hex};

/// Largest clock skew accepted (Tencent: 5 minutes).
pub const MAX_SKEW_S: i64 = 5 * 60;

/// Whether a request is for the simulated Tencent Cloud.
pub fn is_tencent(req: &SimRequest) -> bool {
    req.header("x-tc-action").is_some()
        || req
            .header("authorization")
            .is_some_and(|a| a.starts_with("q-sign-algorithm="))
}

/// Tencent's error answer: HTTP 200 with `Response.Error`.
pub fn error(code: &str, message: &str) -> SimResponse {
    SimResponse::json(
        200,
        &json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id()}}),
    )
}

/// A successful answer: the fields wrapped in `Response` with a `RequestId`.
pub fn ok(mut fields: Value) -> SimResponse {
    if let Some(o) = fields.as_object_mut() {
        o.insert("RequestId".into(), json!(request_id()));
    }
    SimResponse::json(200, &json!({ "Response": fields }))
}

fn cos_error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::xml(
        status,
        format!(
            "<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n\t<Code>{code}</Code>\n\t<Message>{message}</Message>\n\t<Resource>service.cos.myqcloud.com/</Resource>\n\t<RequestId>{}</RequestId>\n</Error>",
            random_hex()
        ),
    )
}

/// Answer one request.
pub async fn handle(state: &SimState, req: &SimRequest) -> SimResponse {
    if let Some(action) = req.header("x-tc-action") {
        let service = scope_service(req).unwrap_or_default();
        let api = format!("{service}.{action}");
        state.count(Cloud::Tencent, req, &api);
        if let Some(r) = fault(state, &api, false).await {
            return r;
        }
        let resp = api3(state, req, &service, action, &api);
        return super::truncate_if_asked(state, &api, resp);
    }
    let api = "cos.GetService";
    state.count(Cloud::Tencent, req, api);
    if let Some(r) = fault(state, api, true).await {
        return r;
    }
    let resp = cos(state, req);
    super::truncate_if_asked(state, api, resp)
}

async fn fault(state: &SimState, api: &str, xml: bool) -> Option<SimResponse> {
    super::injected_fault(state, api, |kind| match (kind, xml) {
        (FaultKind::Throttle, false) => error(
            "RequestLimitExceeded",
            "Your current request times equals to `50` in a second, which exceeds the frequency limit `50` for a second. Please reduce the frequency of calls.",
        ),
        (FaultKind::Throttle, true) => cos_error(503, "SlowDown", "Please reduce your request rate."),
        (FaultKind::AuthFailure, false) => error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ),
        (FaultKind::AuthFailure, true) => cos_error(
            403,
            "SignatureDoesNotMatch",
            "The Signature you specified does not match.",
        ),
        (FaultKind::Malformed, _) => SimResponse {
            status: 200,
            content_type: "application/json",
            body: b"{\"Response\": {\"DataPoints\": <html>oops</html>".to_vec(),
        },
        (_, false) => error(
            "InternalError",
            "An internal error has occurred. Retry your request, but if the problem persists, contact us.",
        ),
        (_, true) => cos_error(503, "ServiceUnavailable", "Service is unavailable."),
    })
    .await
}

/// The service of the TC3 credential scope (`<id>/<date>/<service>/tc3_request`).
fn scope_service(req: &SimRequest) -> Option<String> {
    let auth = req.header("authorization")?;
    let cred = auth.split("Credential=").nth(1)?.split(',').next()?;
    cred.split('/').nth(2).map(str::to_string)
}

/// The fields of a TC3 `Authorization` header: (credential, signed headers, signature).
fn parse_tc3(auth: &str) -> Option<(&str, &str, &str)> {
    super::authorization_fields(auth.strip_prefix("TC3-HMAC-SHA256 ")?)
}

fn api3(state: &SimState, req: &SimRequest, service: &str, action: &str, api: &str) -> SimResponse {
    let Some((credential, signed, signature)) = req.header("authorization").and_then(parse_tc3)
    else {
        return error(
            "AuthFailure.InvalidAuthorization",
            "Authorization is invalid: expected TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
        );
    };
    let mut scope = credential.split('/');
    let (secret_id, date) = (scope.next().unwrap_or(""), scope.next().unwrap_or(""));
    let estate = state.estate();
    let Some(account) = estate.account_by_key(Cloud::Tencent, secret_id) else {
        return error(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.",
        );
    };
    let Some(timestamp) = req
        .header("x-tc-timestamp")
        .and_then(|t| t.parse::<i64>().ok())
    else {
        return error(
            "MissingParameter",
            "The request is missing a required parameter `Timestamp`.",
        );
    };
    if (timestamp - state.clock.now_s()).abs() > MAX_SKEW_S {
        return error(
            "AuthFailure.SignatureExpire",
            "Signature expired. Timestamp and server time are more than 5 minutes apart.",
        );
    }
    // The scope's service must be the host's (`monitor.tencentcloudapi.com`); a simulator
    // address names no service.
    let host_service = req
        .header("host")
        .and_then(|h| h.strip_suffix(".tencentcloudapi.com"))
        .map(|h| h.split('.').next().unwrap_or(""));
    if host_service.is_some_and(|h| h != service) {
        return error(
            "AuthFailure.SignatureFailure",
            "The credential scope's service does not match the host.",
        );
    }
    if !signed.split(';').any(|h| h == "content-type") || !signed.split(';').any(|h| h == "host") {
        return error(
            "AuthFailure.SignatureFailure",
            "SignedHeaders must include content-type and host.",
        );
    }
    let headers: Vec<(String, String)> = signed
        .split(';')
        .map(|h| (h.to_string(), req.header(h).unwrap_or("").to_string()))
        .collect();
    let (expected, _) = tc3_signature(
        &Tc3Request {
            method: &req.method,
            canonical_query: if req.method == "GET" {
                &req.raw_query
            } else {
                ""
            },
            headers: &headers,
            payload: &req.body,
            service,
            timestamp,
        },
        &account.access_key_secret,
    );
    let date_ok =
        crate::cloud::tencent::sign::tc3_scope(service, timestamp).starts_with(&format!("{date}/"));
    if expected != signature || !date_ok {
        return error(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        );
    }
    if !state.within_quota(&account.account_id, api) {
        return error(
            "RequestLimitExceeded",
            "Your current request times exceeds the frequency limit for a second. Please reduce the frequency of calls.",
        );
    }
    let params: Value = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return error("InvalidParameter", "The request body is not a JSON object."),
        }
    };
    let region = req.header("x-tc-region").unwrap_or("");
    let version = req.header("x-tc-version").unwrap_or("");
    handlers::dispatch(
        state, &estate, account, service, action, version, region, &params,
    )
}

fn cos(state: &SimState, req: &SimRequest) -> SimResponse {
    let auth = req.header("authorization").unwrap_or("");
    let fields: Vec<(String, String)> = parse_query(auth);
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let estate = state.estate();
    let Some(account) = estate.account_by_key(Cloud::Tencent, get("q-ak")) else {
        return cos_error(
            403,
            "InvalidAccessKeyId",
            "The access key Id format you provided is invalid.",
        );
    };
    let key_time = get("q-key-time");
    let now = state.clock.now_s();
    let in_window = key_time
        .split_once(';')
        .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
        .is_some_and(|(a, b)| a <= now && now <= b);
    if !in_window {
        return cos_error(403, "AccessDenied", "Request has expired");
    }
    let query = parse_query(&req.raw_query);
    let pick = |names: &str, from: &[(String, String)]| -> Vec<(String, String)> {
        names
            .split(';')
            .filter(|n| !n.is_empty())
            .map(|n| {
                let v = from
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                (n.to_string(), v)
            })
            .collect()
    };
    let headers = pick(get("q-header-list"), &req.headers);
    let params = pick(get("q-url-param-list"), &query);
    // Every parameter sent must be signed (the SDK signs them all).
    if query
        .iter()
        .any(|(k, _)| !params.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)))
    {
        return cos_error(
            403,
            "SignatureDoesNotMatch",
            "The request parameters are not all signed.",
        );
    }
    let (expected, _, _) = cos_signature(
        &CosRequest {
            method: &req.method,
            path: &req.path,
            params: &params,
            headers: &headers,
            key_time,
        },
        &account.access_key_secret,
    );
    if expected != get("q-signature") || !headers.iter().any(|(k, _)| k == "host") {
        return cos_error(
            403,
            "SignatureDoesNotMatch",
            "The Signature you specified does not match.",
        );
    }
    if !state.within_quota(&account.account_id, "cos.GetService") {
        return cos_error(503, "SlowDown", "Please reduce your request rate.");
    }
    handlers::get_service(account, &query)
}
