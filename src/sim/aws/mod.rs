//! The simulated AWS: SigV4-signed calls routed by the credential scope's service (as AWS and
//! moto do) and then by `X-Amz-Target` (CloudWatch JSON 1.0), `Action` + `Version` (Query: ELB,
//! ELBv2, EC2, STS) or the path (S3). Errors carry AWS's real shapes: Query XML
//! `<ErrorResponse>`, JSON `__type`, S3 `<Error>`. STS AssumeRole issues temporary keys the
//! simulator then accepts for the role's account.

mod handlers;

pub use handlers::{elbv2_arn, elbv2_dimension};

/// The CloudWatch `LoadBalancer` dimension the simulator gives an ELBv2 load balancer of
/// `product` named `name` (for tests computing expected ARNs).
pub fn elbv2_dimension_of(product: &str, name: &str) -> String {
    let r = crate::sim::estate::SimResource {
        product: product.to_string(),
        id: name.to_string(),
        name: String::new(),
        region: String::new(),
        tags: Default::default(),
        vip: None,
        vpc_id: None,
        internal: false,
    };
    elbv2_dimension(&r).unwrap_or_default()
}

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use super::{FaultKind, SimRequest, SimResponse, SimState};
use crate::cloud::aws::sign::{signature, SigV4Request};
use crate::cloud::Cloud;
use crate::sim::estate::SimAccount;
use crate::util::{parse_query, UtcTime};

/// Largest clock skew accepted (AWS: 15 minutes).
pub const MAX_SKEW_S: i64 = 15 * 60;

/// Temporary keys issued by AssumeRole: access key → (account ID, secret, session token).
#[derive(Default)]
pub struct TemporaryKeys(Mutex<HashMap<String, (String, String, String)>>);

impl TemporaryKeys {
    fn insert(&self, ak: String, account: String, secret: String, token: String) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(ak, (account, secret, token));
        }
    }

    fn get(&self, ak: &str) -> Option<(String, String, String)> {
        self.0.lock().ok()?.get(ak).cloned()
    }

    /// The account a temporary key was issued for.
    pub fn account_of(&self, ak: &str) -> Option<String> {
        self.get(ak).map(|(account, _, _)| account)
    }
}

/// Whether a request is for the simulated AWS.
pub fn is_aws(req: &SimRequest) -> bool {
    req.header("authorization")
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256"))
}

/// How the API answers errors.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Query,
    /// CloudWatch's JSON 1.0 (`__type` with the Granite prefix).
    Json,
    /// The Tagging API's JSON 1.1 (bare `__type`).
    Json11,
    S3,
}

fn shape_of(service: &str) -> Shape {
    match service {
        "monitoring" => Shape::Json,
        "tagging" => Shape::Json11,
        "s3" => Shape::S3,
        _ => Shape::Query,
    }
}

/// The throttling error of each shape.
fn throttled(shape: Shape) -> SimResponse {
    match shape {
        Shape::S3 => error(shape, 503, "SlowDown", "Please reduce your request rate."),
        Shape::Json => error(shape, 400, "ThrottlingException", "Rate exceeded"),
        Shape::Json11 => error(shape, 400, "ThrottledException", "Rate exceeded"),
        Shape::Query => error(shape, 400, "Throttling", "Rate exceeded"),
    }
}

fn error(shape: Shape, status: u16, code: &str, message: &str) -> SimResponse {
    let id = super::request_id();
    match shape {
        Shape::Json => SimResponse::json(
            status,
            &json!({"__type": format!("GraniteServiceVersion20100801#{code}"), "message": message}),
        ),
        Shape::Json11 => SimResponse::json(status, &json!({"__type": code, "Message": message})),
        Shape::Query => SimResponse::xml(
            status,
            format!("<ErrorResponse xmlns=\"http://webservices.amazon.com/AWSFault/2005-15-09\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>"),
        ),
        Shape::S3 => SimResponse::xml(
            status,
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{id}</RequestId></Error>"),
        ),
    }
}

/// The counted API of a request: `<service>.<Action>`.
fn api_of(service: &str, req: &SimRequest, form: &[(String, String)]) -> String {
    let action = match service {
        "monitoring" | "tagging" => req
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_string(),
        "s3" => {
            let q = parse_query(&req.raw_query);
            let has = |k: &str| q.iter().any(|(n, _)| n == k);
            if req.path == "/" {
                "ListBuckets".into()
            } else if has("location") {
                "GetBucketLocation".into()
            } else if has("tagging") {
                "GetBucketTagging".into()
            } else {
                "Unknown".into()
            }
        }
        _ => {
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            match (get("Action"), get("Version")) {
                (Some(a), Some("2012-06-01")) => format!("{a}Classic"),
                (Some(a), _) => a.to_string(),
                _ => "Unknown".into(),
            }
        }
    };
    format!("{service}.{action}")
}

/// Answer one request.
pub async fn handle(state: &SimState, req: &SimRequest) -> SimResponse {
    let auth = req.header("authorization").unwrap_or("");
    let Some((credential, signed, sig)) =
        super::authorization_fields(auth.trim_start_matches("AWS4-HMAC-SHA256").trim())
    else {
        return error(
            Shape::Query,
            400,
            "IncompleteSignature",
            "Authorization header requires Credential, SignedHeaders and Signature.",
        );
    };
    let mut scope = credential.split('/');
    let ak = scope.next().unwrap_or("");
    let _date = scope.next();
    let region = scope.next().unwrap_or("").to_string();
    let service = scope.next().unwrap_or("").to_string();
    let shape = shape_of(&service);
    let form = if req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        parse_query(&String::from_utf8_lossy(&req.body))
    } else {
        Vec::new()
    };
    let api = api_of(&service, req, &form);
    state.count(Cloud::Aws, req, &api);
    if let Some(r) = fault(state, &api, shape).await {
        return r;
    }
    let resp = verify_and_dispatch(
        state, req, ak, signed, sig, &region, &service, shape, &api, &form,
    );
    super::truncate_if_asked(state, &api, resp)
}

async fn fault(state: &SimState, api: &str, shape: Shape) -> Option<SimResponse> {
    super::injected_fault(state, api, |kind| match kind {
        FaultKind::Throttle => throttled(shape),
        FaultKind::AuthFailure => error(
            shape,
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ),
        FaultKind::Malformed => SimResponse {
            status: 200,
            content_type: "text/xml",
            body: b"<DescribeLoadBalancersResponse><oops".to_vec(),
        },
        _ => error(shape, 503, "ServiceUnavailable", "Service is unavailable."),
    })
    .await
}

#[allow(clippy::too_many_arguments)]
fn verify_and_dispatch(
    state: &SimState,
    req: &SimRequest,
    ak: &str,
    signed: &str,
    sig: &str,
    region: &str,
    service: &str,
    shape: Shape,
    api: &str,
    form: &[(String, String)],
) -> SimResponse {
    let estate = state.estate();
    // Long-term keys of an account, or temporary ones AssumeRole issued.
    let temporary = state.aws_temporary_keys.get(ak);
    let (account, secret): (Option<&SimAccount>, String) = match &temporary {
        Some((account_id, secret, _)) => (
            estate
                .accounts
                .iter()
                .find(|a| a.cloud == Cloud::Aws && &a.account_id == account_id),
            secret.clone(),
        ),
        None => {
            let a = estate.account_by_key(Cloud::Aws, ak);
            (
                a,
                a.map(|a| a.access_key_secret.clone()).unwrap_or_default(),
            )
        }
    };
    let Some(account) = account else {
        return if shape == Shape::S3 {
            error(
                shape,
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        } else {
            error(
                shape,
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        };
    };
    let time = req
        .header("x-amz-date")
        .and_then(UtcTime::parse_basic)
        .map(|t| t.to_unix());
    let Some(time) = time else {
        return error(
            shape,
            400,
            "IncompleteSignature",
            "X-Amz-Date is missing or malformed.",
        );
    };
    if (time - state.clock.now_s()).abs() > MAX_SKEW_S {
        return error(
            shape,
            403,
            if shape == Shape::S3 {
                "RequestTimeTooSkewed"
            } else {
                "SignatureDoesNotMatch"
            },
            "Signature expired: the request time is too far from the server time.",
        );
    }
    if let Some((_, _, token)) = &temporary {
        if req.header("x-amz-security-token") != Some(token.as_str()) {
            return error(
                shape,
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            );
        }
    }
    let body_hash = crate::cloud::crypto::sha256_hex(&req.body);
    if shape == Shape::S3 && req.header("x-amz-content-sha256") != Some(body_hash.as_str()) {
        return error(
            shape,
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
    }
    let headers: Vec<(String, String)> = signed
        .split(';')
        .map(|h| (h.to_string(), req.header(h).unwrap_or("").to_string()))
        .collect();
    let query = parse_query(&req.raw_query);
    let (expected, _) = signature(
        &SigV4Request {
            method: &req.method,
            path: &crate::util::percent_decode(&req.path, false),
            query: &query,
            headers: &headers,
            payload_hash: &body_hash,
            region,
            service,
            time,
        },
        &secret,
    );
    if expected != sig || !signed.split(';').any(|h| h == "host") {
        return error(
            shape,
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if !state.within_quota(&account.account_id, api) {
        return throttled(shape);
    }
    if shape != Shape::S3
        && service != "sts"
        && service != "ec2"
        && !estate.aws_regions.iter().any(|r| r == region)
    {
        return error(
            shape,
            400,
            "InvalidRegion",
            &format!("The region {region} is not enabled for this account."),
        );
    }
    let r = match service {
        "monitoring" => handlers::get_metric_data(state, account, region, &req.body),
        "elasticloadbalancing" => handlers::elb(account, region, form),
        "tagging" => handlers::get_resources(account, region, &req.body),
        "ec2" => handlers::describe_regions(&estate),
        "sts" => handlers::assume_role(state, &estate, form),
        "s3" => handlers::s3(account, req),
        _ => Err((
            404,
            "UnknownOperationException".to_string(),
            format!("Unknown service {service}."),
        )),
    };
    match r {
        Ok(resp) => resp,
        Err((status, code, message)) => error(shape, status, &code, &message),
    }
}
