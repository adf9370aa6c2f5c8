//! AWS: calls signed with SigV4 in the three shapes the exporter needs — Query (form POST, XML
//! answer: ELB, ELBv2, EC2, STS), JSON 1.0 (CloudWatch `GetMetricData`, what boto3 sends) and
//! REST-XML (S3) — with credentials from config, the standard environment or an assumed role
//! ([`credentials`]), error classification by the API's own code, and the provider operations
//! built on them: regions and resources per product ([`discovery`]) and monitor data
//! ([`cloudwatch`]).

pub mod cloudwatch;
pub mod credentials;
pub mod discovery;
pub mod sign;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::http::{self, CallSite, Shared};
use super::{Cloud, CloudError, ErrorClass};
use crate::cloud::xml::Node;
use crate::config::AccountConfig;
use crate::discovery::TtlCache;
use crate::util::{encode_query, host_of};
use credentials::{CredentialSource, Credentials};

/// A Query API action.
#[derive(Clone, Copy, Debug)]
pub struct QueryApi {
    /// Signing name and endpoint prefix (`elasticloadbalancing`, `ec2`, `sts`).
    pub service: &'static str,
    /// API version (`2015-12-01`).
    pub version: &'static str,
    /// Action (`DescribeLoadBalancers`).
    pub action: &'static str,
}

/// The content type botocore's Query serializer sends.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// A JSON-protocol API: where it is served and how its requests are marked.
#[derive(Clone, Copy, Debug)]
pub struct JsonApi {
    /// Signing name and endpoint prefix.
    pub service: &'static str,
    /// `X-Amz-Target`.
    pub target: &'static str,
    /// The action, for errors and metrics.
    pub action: &'static str,
    /// `application/x-amz-json-1.0` or `-1.1`.
    pub content_type: &'static str,
    /// Whether the service is `awsQueryCompatible` (CloudWatch): its requests carry
    /// `x-amzn-query-mode: true`, so errors come back with the Query API's codes.
    pub query_compatible: bool,
}

/// The AWS provider of one account.
pub struct AwsProvider {
    shared: Shared,
    account_id: String,
    credentials: CredentialSource,
    endpoint: Option<String>,
    endpoints: BTreeMap<String, String>,
    /// The account's buckets with their regions (ListBuckets is global).
    buckets: TtlCache<(), Arc<Vec<(String, String)>>>,
    /// ELBv2 load balancers per region: one listing serves alb, nlb and gwlb.
    elbv2: TtlCache<String, Arc<Vec<discovery::LoadBalancerV2>>>,
    /// Tags of a region's ELBv2 load balancers and buckets: one Tagging API listing serves alb,
    /// nlb, gwlb and s3 (`None` when the API is denied, and each asks its own tag API).
    region_tags: TtlCache<String, Arc<Option<discovery::RegionTags>>>,
}

impl AwsProvider {
    /// The provider of an account.
    pub fn new(
        account: &AccountConfig,
        shared: &Shared,
        discovery_ttl: std::time::Duration,
    ) -> AwsProvider {
        AwsProvider {
            shared: shared.for_account(account),
            account_id: account.account_id.clone(),
            credentials: CredentialSource::from_account(account),
            endpoint: account.endpoint.clone(),
            endpoints: account.endpoints.clone(),
            buckets: TtlCache::new("aws_buckets", 1, discovery_ttl),
            // Shorter than discovery's own TTL cannot help; one entry per region.
            elbv2: TtlCache::new("aws_elbv2", 64, discovery_ttl),
            region_tags: TtlCache::new("aws_region_tags", 64, discovery_ttl),
        }
    }

    /// Base URL of a service in a region.
    pub fn base_url(&self, service: &str, region: &str) -> String {
        if let Some(u) = self.endpoints.get(service).or(self.endpoint.as_ref()) {
            return u.clone();
        }
        format!("https://{service}.{region}.amazonaws.com")
    }

    /// Whether S3 calls go to one configured base URL (path-style) instead of the bucket's
    /// virtual host.
    pub fn s3_path_style(&self) -> bool {
        self.endpoints.contains_key("s3") || self.endpoint.is_some()
    }

    /// The account ID.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Shared state.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The account's buckets as (name, region), listed once per discovery TTL.
    pub async fn buckets(
        &self,
        deadline: Instant,
    ) -> Result<Arc<Vec<(String, String)>>, CloudError> {
        self.buckets
            .get_or_fetch_fresh((), || async {
                discovery::list_buckets(self, deadline).await.map(Arc::new)
            })
            .await
    }

    /// The tags of a region's load balancers and buckets, listed once per discovery TTL;
    /// `None` when the Tagging API is denied.
    pub async fn region_tags(
        &self,
        region: &str,
        deadline: Instant,
    ) -> Result<Arc<Option<discovery::RegionTags>>, CloudError> {
        self.region_tags
            .get_or_fetch_fresh(region.to_string(), || async {
                discovery::region_tags(self, region, deadline)
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// Credentials to sign with (assuming the role first when one is configured).
    pub async fn credentials(&self, deadline: Instant) -> Result<Credentials, CloudError> {
        self.credentials.get(self, deadline).await
    }

    /// Sign and send one request; the raw answer.
    #[allow(clippy::too_many_arguments)]
    async fn send_signed(
        &self,
        site: CallSite<'_>,
        creds: &Credentials,
        service: &str,
        region: &str,
        method: reqwest::Method,
        base: &str,
        path: &str,
        query: &[(String, String)],
        mut headers: Vec<(String, String)>,
        body: bytes::Bytes,
        deadline: Instant,
    ) -> Result<http::RawResponse, CloudError> {
        let time = self.shared.clock.now_s();
        headers.push(("host".into(), host_of(base)));
        headers.push(("x-amz-date".into(), sign::amz_date(time)));
        if let Some(t) = &creds.session_token {
            headers.push(("x-amz-security-token".into(), t.expose().to_string()));
        }
        let payload_hash = crate::cloud::crypto::sha256_hex(&body);
        if service == "s3" {
            headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        }
        let auth = sign::authorization(
            &sign::SigV4Request {
                method: method.as_str(),
                path,
                query,
                headers: &headers,
                payload_hash: &payload_hash,
                region,
                service,
                time,
            },
            &creds.access_key_id,
            creds.secret.expose(),
        );
        let mut url = format!("{base}{path}");
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(query));
        }
        let mut req = self
            .shared
            .client
            .request(method, url)
            .header("authorization", auth)
            .body(body);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        http::send(&self.shared, site, deadline, req).await
    }

    /// A Query API call: the XML answer's root on success.
    pub async fn query(
        &self,
        api: QueryApi,
        region: &str,
        params: &[(String, String)],
        deadline: Instant,
    ) -> Result<Node, CloudError> {
        let creds = self.credentials(deadline).await?;
        self.query_as(&creds, api, region, params, deadline).await
    }

    /// A Query API call signed with given credentials (STS AssumeRole signs with the base ones).
    pub async fn query_as(
        &self,
        creds: &Credentials,
        api: QueryApi,
        region: &str,
        params: &[(String, String)],
        deadline: Instant,
    ) -> Result<Node, CloudError> {
        let site = CallSite {
            cloud: Cloud::Aws,
            api: api.action,
            region,
        };
        let mut form = vec![
            ("Action".to_string(), api.action.to_string()),
            ("Version".to_string(), api.version.to_string()),
        ];
        form.extend(params.iter().cloned());
        // Shared, not copied, by every attempt.
        let body = bytes::Bytes::from(encode_query(&form).into_bytes());
        http::call(&self.shared, site, &self.account_id, deadline, || async {
            let base = self.base_url(api.service, region);
            let raw = self
                .send_signed(
                    site,
                    creds,
                    api.service,
                    region,
                    reqwest::Method::POST,
                    &base,
                    "/",
                    &[],
                    vec![("content-type".into(), FORM_CONTENT_TYPE.into())],
                    body.clone(),
                    deadline,
                )
                .await?;
            parse_xml_answer(site, raw.status, &raw.body)
        })
        .await
    }

    /// A JSON call (CloudWatch JSON 1.0, Tagging JSON 1.1): the answer parsed as `T` on
    /// success.
    pub async fn json<T: DeserializeOwned>(
        &self,
        api: JsonApi,
        region: &str,
        payload: Vec<u8>,
        deadline: Instant,
    ) -> Result<T, CloudError> {
        let site = CallSite {
            cloud: Cloud::Aws,
            api: api.action,
            region,
        };
        let mut headers = vec![
            ("content-type".to_string(), api.content_type.to_string()),
            ("x-amz-target".to_string(), api.target.to_string()),
        ];
        if api.query_compatible {
            headers.push(("x-amzn-query-mode".into(), "true".into()));
        }
        let service = api.service;
        // Shared, not copied, by every attempt.
        let payload = bytes::Bytes::from(payload);
        let creds = self.credentials(deadline).await?;
        http::call(&self.shared, site, &self.account_id, deadline, || async {
            let base = self.base_url(service, region);
            let raw = self
                .send_signed(
                    site,
                    &creds,
                    service,
                    region,
                    reqwest::Method::POST,
                    &base,
                    "/",
                    &[],
                    headers.clone(),
                    payload.clone(),
                    deadline,
                )
                .await?;
            parse_json_answer(site, raw.status, &raw.body)
        })
        .await
    }

    /// A signed S3 GET; the body on 2xx, `None` on 404 (no such tag set, say).
    pub async fn s3_get(
        &self,
        api: &'static str,
        region: &str,
        bucket: Option<&str>,
        query: &[(String, String)],
        deadline: Instant,
    ) -> Result<Option<bytes::Bytes>, CloudError> {
        let site = CallSite {
            cloud: Cloud::Aws,
            api,
            region,
        };
        let creds = self.credentials(deadline).await?;
        http::call(&self.shared, site, &self.account_id, deadline, || async {
            let (base, path) = match bucket {
                // Virtual hosts only for DNS-safe names: a dotted name breaks the wildcard
                // certificate, so it goes path-style as botocore does.
                Some(b) if self.s3_path_style() || !dns_safe_bucket(b) => {
                    (self.base_url("s3", region), format!("/{b}"))
                }
                Some(b) => (
                    format!("https://{b}.s3.{region}.amazonaws.com"),
                    "/".to_string(),
                ),
                None => (self.base_url("s3", region), "/".to_string()),
            };
            let raw = self
                .send_signed(
                    site,
                    &creds,
                    "s3",
                    region,
                    reqwest::Method::GET,
                    &base,
                    &path,
                    query,
                    Vec::new(),
                    bytes::Bytes::new(),
                    deadline,
                )
                .await?;
            if raw.status == 404 {
                return Ok(None);
            }
            if (200..300).contains(&raw.status) {
                return Ok(Some(raw.body));
            }
            Err(xml_error(site, raw.status, &raw.body))
        })
        .await
    }
}

/// Whether a bucket name can be a virtual host (`<bucket>.s3.<region>.amazonaws.com`).
pub fn dns_safe_bucket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Classify an AWS error code (Query `<Code>`, JSON `__type` after `#`, S3 `<Code>`).
pub fn classify(code: &str, status: u16) -> ErrorClass {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "TooManyRequestsException"
        | "RequestThrottled" => ErrorClass::LimitError,
        "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidAccessKeyId"
        | "RequestTimeTooSkewed"
        | "RequestExpired"
        | "AccessDenied"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "AuthFailure"
        | "UnauthorizedOperation" => ErrorClass::AuthError,
        "OptInRequired" | "InvalidRegion" => ErrorClass::RegionSkip,
        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "InternalServiceError" => {
            ErrorClass::ServerError
        }
        _ if status == 429 => ErrorClass::LimitError,
        _ if status >= 500 => ErrorClass::ServerError,
        _ if status == 401 || status == 403 => ErrorClass::AuthError,
        _ => ErrorClass::BadResponse,
    }
}

/// An error message fit for logs: its first line (SigV4 mismatches go on to echo the canonical
/// request, session token included), at most 300 characters.
fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// The classified error of an XML error body (`<ErrorResponse><Error><Code>…` or S3's
/// `<Error><Code>…`).
pub fn xml_error(site: CallSite<'_>, status: u16, body: &[u8]) -> CloudError {
    let root = Node::parse(body).ok();
    let get = |name: &str| {
        root.as_ref()
            .and_then(|r| r.find(name).or_else(|| r.child(name)))
            .map(|n| n.text.clone())
    };
    let code = get("Code");
    let message = first_line(&get("Message").unwrap_or_else(|| format!("HTTP {status}")));
    CloudError {
        http_status: Some(status),
        request_id: get("RequestId"),
        code: code.clone(),
        ..site.error(classify(code.as_deref().unwrap_or(""), status), message)
    }
}

fn parse_xml_answer(site: CallSite<'_>, status: u16, body: &[u8]) -> Result<Node, CloudError> {
    if !(200..300).contains(&status) {
        return Err(xml_error(site, status, body));
    }
    Node::parse(body).map_err(|m| CloudError {
        http_status: Some(status),
        ..site.error(ErrorClass::BadResponse, m)
    })
}

/// A JSON 1.0 answer parsed as `T` (straight from the bytes), or a classified error.
pub fn parse_json_answer<T: DeserializeOwned>(
    site: CallSite<'_>,
    status: u16,
    body: &[u8],
) -> Result<T, CloudError> {
    if (200..300).contains(&status) {
        let not_json = |e: serde_json::Error| CloudError {
            http_status: Some(status),
            ..site.error(
                ErrorClass::BadResponse,
                format!("answer is not valid JSON: {e}"),
            )
        };
        if !crate::cloud::wire::is_json_object(body) {
            // serde would read a struct from an array: an array is no success.
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Err(e) => not_json(e),
                    Ok(_) => CloudError {
                        http_status: Some(status),
                        ..site.error(ErrorClass::BadResponse, "answer is not a JSON object")
                    },
                },
            );
        }
        return serde_json::from_slice::<T>(body).map_err(|e| {
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(e) => not_json(e),
                Ok(_) => site.shape_error(status, e),
            }
        });
    }
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    // An endpoint may answer a JSON request's auth failure in XML (moto does): read it as such.
    let Ok(v) = parsed else {
        return Err(xml_error(site, status, body));
    };
    // `__type` is `GraniteServiceVersion20100801#ThrottlingException` (or bare).
    let code = v
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
    let message = first_line(
        ["message", "Message"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .unwrap_or(""),
    );
    Err(CloudError {
        http_status: Some(status),
        code: code.clone(),
        ..site.error(classify(code.as_deref().unwrap_or(""), status), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: CallSite<'static> = CallSite {
        cloud: Cloud::Aws,
        api: "GetMetricData",
        region: "us-east-1",
    };

    #[test]
    fn errors_are_classified_in_every_shape() {
        // Query (cloud-apis C.2).
        let e = parse_xml_answer(SITE, 400, br#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>2f85f68d</RequestId></ErrorResponse>"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::LimitError);
        assert_eq!(e.code.as_deref(), Some("Throttling"));
        assert_eq!(e.request_id.as_deref(), Some("2f85f68d"));
        // JSON 1.0 (moto).
        let e = parse_json_answer::<Value>(SITE, 400, br#"{"__type": "GraniteServiceVersion20100801#ThrottlingException", "message": "Rate exceeded"}"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::LimitError);
        let e = parse_json_answer::<Value>(SITE, 403, br#"{"__type": "InvalidClientTokenId", "message": "The security token included in the request is invalid."}"#).unwrap_err();
        assert_eq!(e.class, ErrorClass::AuthError);
        // S3.
        let e = xml_error(SITE, 403, b"<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message><RequestId>R</RequestId></Error>");
        assert_eq!(e.class, ErrorClass::AuthError);
        assert_eq!(
            parse_json_answer::<Value>(SITE, 503, b"<html/>")
                .unwrap_err()
                .class,
            ErrorClass::ServerError
        );
        // moto's strict mode answers a JSON request's bad signature in XML.
        let e = parse_json_answer::<Value>(SITE, 403, b"<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><Type>Sender</Type></Error></Errors></ErrorResponse>").unwrap_err();
        assert_eq!(e.class, ErrorClass::AuthError);
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
        // The canonical request AWS echoes (with the token) never reaches the error.
        let e = xml_error(SITE, 403, b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match.\n\nThe Canonical String for this request should have been\nx-amz-security-token:SECRET-TOKEN</Message></Error></ErrorResponse>");
        assert!(!e.message.contains("SECRET-TOKEN"), "{}", e.message);
        assert_eq!(classify("Whatever", 403), ErrorClass::AuthError);
    }

    #[test]
    fn dotted_bucket_names_go_path_style() {
        assert!(dns_safe_bucket("demo-assets"));
        assert!(!dns_safe_bucket("logs.example.com"));
        assert!(!dns_safe_bucket("Upper"));
    }
}
