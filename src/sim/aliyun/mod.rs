//! The simulated Alibaba Cloud: RPC APIs signed with V3 (`ACS3-HMAC-SHA256`) routed by
//! `x-acs-action` + `x-acs-version`, and OSS ListBuckets signed with OSS V4. Errors use Aliyun's
//! real bodies and codes (`SignatureDoesNotMatch`, `Throttling.User`, `InvalidRegionId`, …).

pub mod catalogue;
mod handlers;

pub use handlers::fan_out_combinations;

use serde_json::json;

use super::{FaultKind, SimRequest, SimResponse, SimState};
use crate::cloud::aliyun::sign::{
    oss_v4_authorization, sha256_hex, v3_signature, OssV4Request, V3Request,
};
use crate::cloud::Cloud;
use crate::util::{parse_query, random_hex, UtcTime};

/// Largest clock skew accepted (Aliyun: 15 minutes).
pub const MAX_SKEW_S: i64 = 15 * 60;

/// The counted API key of an RPC call: `<product>.<Action>`.
pub fn api_key(action: &str, version: &str) -> String {
    let product = match version {
        "2019-01-01" => "cms",
        "2014-05-15" => "slb",
        "2020-06-16" => "alb",
        "2022-04-30" => "nlb",
        "2024-04-15" => "gwlb",
        "2016-04-28" => "vpc",
        "2018-08-28" => "tag",
        _ => "unknown",
    };
    format!("{product}.{action}")
}

/// Aliyun's JSON error body.
pub fn error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::json(
        status,
        &json!({
            "RequestId": random_hex().to_uppercase(),
            "HostId": "simulator.aliyuncs.com",
            "Code": code,
            "Message": message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}"),
        }),
    )
}

fn oss_error(status: u16, code: &str, message: &str) -> SimResponse {
    SimResponse::xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{code}</Code>\n  <Message>{message}</Message>\n  <RequestId>{}</RequestId>\n  <HostId>simulator.aliyuncs.com</HostId>\n</Error>\n",
            random_hex().to_uppercase()
        ),
    )
}

/// Answer one request.
pub async fn handle(state: &SimState, req: &SimRequest) -> SimResponse {
    if let (Some(action), Some(version)) = (req.header("x-acs-action"), req.header("x-acs-version"))
    {
        let api = api_key(action, version);
        state.count(Cloud::Aliyun, req, &api);
        if let Some(r) = fault(state, &api, false).await {
            return r;
        }
        let resp = rpc(state, req, action, version, &api);
        return super::truncate_if_asked(state, &api, resp);
    }
    if req
        .header("authorization")
        .is_some_and(|a| a.starts_with("OSS4-HMAC-SHA256"))
    {
        let api = "oss.ListBuckets";
        state.count(Cloud::Aliyun, req, api);
        if let Some(r) = fault(state, api, true).await {
            return r;
        }
        let resp = oss(state, req);
        return super::truncate_if_asked(state, api, resp);
    }
    error(
        400,
        "MissingParameter",
        "Neither x-acs-action/x-acs-version nor an OSS4-HMAC-SHA256 Authorization was sent.",
    )
}

async fn fault(state: &SimState, api: &str, xml: bool) -> Option<SimResponse> {
    super::injected_fault(state, api, |kind| {
        let body = |status: u16, code: &str, msg: &str| {
            if xml {
                oss_error(status, code, msg)
            } else {
                error(status, code, msg)
            }
        };
        match kind {
            FaultKind::Throttle => body(
                429,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
            FaultKind::Malformed => SimResponse {
                status: 200,
                content_type: "application/json;charset=utf-8",
                body: b"{\"RequestId\": \"x\", \"Datapoints\": <html>oops</html>".to_vec(),
            },
            FaultKind::AuthFailure => body(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            ),
            _ => body(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ),
        }
    })
    .await
}

fn rpc(state: &SimState, req: &SimRequest, action: &str, version: &str, api: &str) -> SimResponse {
    // Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex
    let Some(auth) = req.header("authorization") else {
        return error(
            400,
            "MissingAuthorization",
            "Authorization header is missing.",
        );
    };
    let Some(rest) = auth.strip_prefix("ACS3-HMAC-SHA256 ") else {
        return error(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
        );
    };
    let Some((ak, signed, sig)) = super::authorization_fields(rest) else {
        return error(
            400,
            "IncompleteSignature",
            "The request signature does not conform to Aliyun standards.",
        );
    };
    let estate = state.estate();
    let Some(account) = estate.account_by_key(crate::cloud::Cloud::Aliyun, ak) else {
        return error(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        );
    };
    let headers: Vec<(String, String)> = signed
        .split(';')
        .map(|h| (h.to_string(), req.header(h).unwrap_or("").to_string()))
        .collect();
    for needed in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
    ] {
        if !signed.split(';').any(|h| h == needed) {
            return error(
                400,
                "IncompleteSignature",
                &format!("The header {needed} must be signed."),
            );
        }
    }
    let body_hash = sha256_hex(&req.body);
    if req.header("x-acs-content-sha256") != Some(body_hash.as_str()) {
        return error(
            400,
            "SignatureDoesNotMatch",
            "x-acs-content-sha256 does not match the body.",
        );
    }
    let query = parse_query(&req.raw_query);
    let (expected, _) = v3_signature(
        &V3Request {
            method: &req.method,
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: &body_hash,
        },
        &account.access_key_secret,
    );
    if expected != sig {
        return error(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation.",
        );
    }
    let date_ok = req
        .header("x-acs-date")
        .and_then(UtcTime::parse_iso8601)
        .is_some_and(|t| (t.to_unix() - state.clock.now_s()).abs() <= MAX_SKEW_S);
    if !date_ok {
        return error(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        );
    }
    if !state.fresh_nonce(req.header("x-acs-signature-nonce").unwrap_or("")) {
        return error(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        );
    }
    if !state.within_quota(&account.account_id, api) {
        return error(
            429,
            "Throttling.User",
            "Request was denied due to user flow control.",
        );
    }
    let mut params = query;
    if req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        params.extend(parse_query(&String::from_utf8_lossy(&req.body)));
    }
    handlers::dispatch(state, &estate, account, action, version, &params)
}

fn oss(state: &SimState, req: &SimRequest) -> SimResponse {
    let auth = req.header("authorization").unwrap_or("");
    let rest = auth.trim_start_matches("OSS4-HMAC-SHA256").trim();
    let mut credential = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (Some(credential), Some(_)) = (credential, signature) else {
        return oss_error(400, "InvalidArgument", "Authorization header is invalid.");
    };
    let mut scope = credential.split('/');
    let ak = scope.next().unwrap_or("");
    let _date = scope.next();
    let region = scope.next().unwrap_or("").to_string();
    let estate = state.estate();
    let Some(account) = estate.account_by_key(crate::cloud::Cloud::Aliyun, ak) else {
        return oss_error(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        );
    };
    let Some(time) = req
        .header("x-oss-date")
        .and_then(UtcTime::parse_basic)
        .map(|t| t.to_unix())
    else {
        return oss_error(403, "AccessDenied", "x-oss-date is missing or malformed.");
    };
    if (time - state.clock.now_s()).abs() > MAX_SKEW_S {
        return oss_error(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        );
    }
    let query = parse_query(&req.raw_query);
    let expected = oss_v4_authorization(
        &OssV4Request {
            method: &req.method,
            resource_path: &req.path,
            query: &query,
            headers: &req.headers,
            region: &region,
            time,
        },
        ak,
        &account.access_key_secret,
    );
    let got_sig = auth.rsplit("Signature=").next().unwrap_or("");
    let want_sig = expected.rsplit("Signature=").next().unwrap_or("");
    if got_sig != want_sig {
        return oss_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if !state.within_quota(&account.account_id, "oss.ListBuckets") {
        return oss_error(
            503,
            "Throttling.User",
            "Request was denied due to user flow control.",
        );
    }
    handlers::list_buckets(account, &query)
}
