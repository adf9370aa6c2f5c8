//! Alibaba Cloud: RPC calls signed with V3 (`ACS3-HMAC-SHA256`), OSS calls signed with OSS V4,
//! error classification by the API's `Code`, and the provider operations built on them:
//! regions ([`discovery`]), resources per product ([`discovery`]) and monitor data ([`cms`]).

pub mod cms;
pub mod discovery;
pub mod sign;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use super::http::{self, CallSite, Shared};
use super::{Cloud, CloudError, ErrorClass};
use crate::config::{AccountConfig, Secret};
use crate::discovery::TtlCache;
pub use crate::util::{host_of, value_string};
use crate::util::{random_hex, UtcTime};

/// An RPC API: product service, version and action.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    /// Service key for endpoints (`cms`, `slb`, …).
    pub service: &'static str,
    /// API version (`2019-01-01`).
    pub version: &'static str,
    /// Action (`DescribeMetricLast`).
    pub action: &'static str,
}

/// Metric metadata of one namespace: metric → supported periods.
pub type PeriodTable = HashMap<String, Vec<u64>>;

/// The Aliyun provider of one account.
pub struct AliyunProvider {
    shared: Shared,
    account_id: String,
    access_key_id: String,
    secret: Secret,
    security_token: Option<Secret>,
    endpoint: Option<String>,
    endpoints: std::collections::BTreeMap<String, String>,
    /// DescribeMetricMetaList answers per namespace (24 h).
    periods: TtlCache<String, Arc<PeriodTable>>,
    /// Observed series per resource for each (namespace, metric), for the batching choice.
    fan_out: Mutex<HashMap<(String, String), f64>>,
    /// The account's bucket list (ListBuckets is account-wide): one call serves every region.
    buckets: TtlCache<(), Arc<Vec<(String, String)>>>,
}

/// How long period metadata is kept.
pub const METADATA_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl AliyunProvider {
    /// The provider of an account.
    pub fn new(
        account: &AccountConfig,
        shared: &Shared,
        discovery_ttl: std::time::Duration,
    ) -> AliyunProvider {
        AliyunProvider {
            shared: shared.for_account(account),
            account_id: account.account_id.clone(),
            access_key_id: account.access_key_id.clone(),
            secret: account.access_key_secret.clone(),
            security_token: account.security_token.clone(),
            endpoint: account.endpoint.clone(),
            endpoints: account.endpoints.clone(),
            periods: TtlCache::new("aliyun_metadata", 256, METADATA_TTL),
            fan_out: Mutex::new(HashMap::new()),
            buckets: TtlCache::new("aliyun_buckets", 1, discovery_ttl),
        }
    }

    /// Base URL of a service in a region.
    pub fn base_url(&self, service: &str, region: &str) -> String {
        if let Some(u) = self.endpoints.get(service).or(self.endpoint.as_ref()) {
            return u.clone();
        }
        // The SDKs' "regional" endpoint rule: every product has `<product>.<region>.aliyuncs.com`
        // (SLB, VPC and Tag also have central hosts, but only for the regions in the SDK's
        // map; the regional host works everywhere).
        match service {
            "cms" => format!("https://metrics.{region}.aliyuncs.com"),
            "oss" => format!("https://oss-{region}.aliyuncs.com"),
            other => format!("https://{other}.{region}.aliyuncs.com"),
        }
    }

    /// Call an RPC API once per attempt, with the limiter, retries and classification.
    pub async fn rpc(
        &self,
        api: Api,
        region: &str,
        params: &[(String, String)],
        deadline: Instant,
    ) -> Result<Value, CloudError> {
        self.rpc_with(api, region, params, deadline, parse_rpc_response)
            .await
    }

    /// Call an RPC API whose success answer is parsed straight into `T`.
    pub async fn rpc_as<T: RpcAnswer>(
        &self,
        api: Api,
        region: &str,
        params: &[(String, String)],
        deadline: Instant,
    ) -> Result<T, CloudError> {
        self.rpc_with(api, region, params, deadline, parse_rpc_response_as::<T>)
            .await
    }

    /// Call an RPC API, its answer read by `parse`.
    async fn rpc_with<T>(
        &self,
        api: Api,
        region: &str,
        params: &[(String, String)],
        deadline: Instant,
        parse: fn(CallSite<'_>, u16, &[u8]) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let site = CallSite {
            cloud: Cloud::Aliyun,
            api: api.action,
            region,
        };
        http::call(&self.shared, site, &self.account_id, deadline, || async {
            let raw = self.rpc_once(api, site, region, params, deadline).await?;
            parse(site, raw.status, &raw.body)
        })
        .await
    }

    async fn rpc_once(
        &self,
        api: Api,
        site: CallSite<'_>,
        region: &str,
        params: &[(String, String)],
        deadline: Instant,
    ) -> Result<http::RawResponse, CloudError> {
        let base = self.base_url(api.service, region);
        let host = host_of(&base);
        let now = UtcTime::from_unix(self.shared.clock.now_s());
        let mut headers = vec![
            ("host".to_string(), host),
            ("x-acs-action".to_string(), api.action.to_string()),
            ("x-acs-version".to_string(), api.version.to_string()),
            ("x-acs-date".to_string(), now.iso8601()),
            ("x-acs-signature-nonce".to_string(), random_hex()),
            (
                "x-acs-content-sha256".to_string(),
                sign::EMPTY_SHA256.to_string(),
            ),
            ("accept".to_string(), "application/json".to_string()),
        ];
        if let Some(t) = &self.security_token {
            headers.push(("x-acs-security-token".to_string(), t.expose().to_string()));
        }
        let auth = sign::v3_authorization(
            &sign::V3Request {
                method: "POST",
                path: "/",
                query: params,
                headers: &headers,
                payload_hash: sign::EMPTY_SHA256,
            },
            &self.access_key_id,
            self.secret.expose(),
        );
        let url = format!("{base}/?{}", sign::canonical_query(params));
        let mut req = self.shared.client.post(url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req = req.header("authorization", auth);
        http::send(&self.shared, site, deadline, req).await
    }

    /// The period table of a namespace, from cache or DescribeMetricMetaList.
    pub async fn period_table(
        &self,
        namespace: &str,
        region: &str,
        deadline: Instant,
    ) -> Result<Arc<PeriodTable>, CloudError> {
        self.periods
            .get_or_fetch(namespace.to_string(), || async {
                cms::describe_metric_meta_list(self, namespace, region, deadline)
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// The account's buckets as (name, region), listed once per discovery TTL.
    pub async fn buckets(
        &self,
        region: &str,
        deadline: Instant,
    ) -> Result<Arc<Vec<(String, String)>>, CloudError> {
        self.buckets
            .get_or_fetch_fresh((), || async {
                discovery::list_buckets(self, region, deadline)
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// The account ID.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Shared state.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Credentials for the OSS signer.
    pub(crate) fn credentials(&self) -> (&str, &Secret, Option<&Secret>) {
        (
            &self.access_key_id,
            &self.secret,
            self.security_token.as_ref(),
        )
    }

    /// Remembered series per resource of a metric (1 until observed).
    pub(crate) fn fan_out(&self, namespace: &str, metric: &str) -> Option<f64> {
        self.fan_out
            .lock()
            .ok()?
            .get(&(namespace.to_string(), metric.to_string()))
            .copied()
    }

    /// Remember series per resource of a metric.
    pub(crate) fn remember_fan_out(&self, namespace: &str, metric: &str, v: f64) {
        if let Ok(mut m) = self.fan_out.lock() {
            m.insert((namespace.to_string(), metric.to_string()), v);
        }
    }

    /// Entries in the metadata cache, for self-metrics.
    pub fn metadata_cache_len(&self) -> usize {
        self.periods.len()
    }
}

fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| v.get(*n))
}

/// Classify an Aliyun error `Code` (and status) into an error class.
pub fn classify(code: &str, status: u16) -> ErrorClass {
    // Some answers carry an HTTP-like number as their code (`"Code": "500"`).
    if let Ok(n) = code.parse::<u16>() {
        return match n {
            429 => ErrorClass::LimitError,
            401 | 403 => ErrorClass::AuthError,
            500..=599 => ErrorClass::ServerError,
            _ if status >= 500 => ErrorClass::ServerError,
            _ => ErrorClass::BadResponse,
        };
    }
    if code.starts_with("Throttling") || code == "QpsLimitExceeded" || status == 429 {
        ErrorClass::LimitError
    } else if code == "ServiceUnavailable" || code.starts_with("InternalError") || status >= 500 {
        ErrorClass::ServerError
    } else if code == "SignatureDoesNotMatch"
        || code.starts_with("InvalidAccessKeyId")
        || code.starts_with("InvalidSecurityToken")
        || code == "IncompleteSignature"
        || code.starts_with("InvalidTimeStamp")
        || code == "SignatureNonceUsed"
        || code.starts_with("Forbidden")
        || code == "NoPermission"
        || code == "AccessForbidden"
        || code == "AccessDenied"
        || code == "InvalidAccessKeySecret"
        || code == "RequestTimeTooSkewed"
    {
        ErrorClass::AuthError
    } else if code == "InvalidRegionId"
        || code.starts_with("UnsupportedRegion")
        || code == "InvalidRegion"
    {
        ErrorClass::RegionSkip
    } else {
        ErrorClass::BadResponse
    }
}

/// An RPC answer parsed straight into its shape. It keeps the `Success` field, so a failure
/// reported with a 2xx status is still seen, in one pass over the bytes.
pub trait RpcAnswer: DeserializeOwned {
    /// The answer's `Success` field, when it has one.
    fn success(&self) -> Option<&Value>;
}

/// A success answer parsed straight from its bytes as `T`; anything else as
/// [`parse_rpc_response`].
pub fn parse_rpc_response_as<T: RpcAnswer>(
    site: CallSite<'_>,
    status: u16,
    body: &[u8],
) -> Result<T, CloudError> {
    if (200..300).contains(&status) && crate::cloud::wire::is_json_object(body) {
        if let Ok(answer) = serde_json::from_slice::<T>(body) {
            if answer.success() != Some(&Value::Bool(false)) {
                return Ok(answer);
            }
        }
    }
    let v = parse_rpc_response(site, status, body)?;
    T::deserialize(v).map_err(|e| site.shape_error(status, e))
}

/// Turn an RPC answer into JSON or a classified error.
pub fn parse_rpc_response(
    site: CallSite<'_>,
    status: u16,
    body: &[u8],
) -> Result<Value, CloudError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let ok_status = (200..300).contains(&status);
    match parsed {
        Ok(v) if ok_status && v.is_object() => {
            // Some APIs answer 200 with Success=false and a Code.
            if v.get("Success") == Some(&Value::Bool(false)) {
                let code = field(&v, &["Code", "code"])
                    .map(value_string)
                    .unwrap_or_default();
                if !code.is_empty() && code != "200" {
                    return Err(api_error(site, status, &v, &code));
                }
            }
            Ok(v)
        }
        Ok(v) if !ok_status => {
            let code = field(&v, &["Code", "code"])
                .map(value_string)
                .unwrap_or_default();
            Err(api_error(site, status, &v, &code))
        }
        Ok(_) => Err(CloudError {
            http_status: Some(status),
            ..site.error(ErrorClass::BadResponse, "answer is not a JSON object")
        }),
        Err(e) => {
            let class = if status >= 500 || status == 429 {
                if status == 429 {
                    ErrorClass::LimitError
                } else {
                    ErrorClass::ServerError
                }
            } else {
                ErrorClass::BadResponse
            };
            Err(CloudError {
                http_status: Some(status),
                ..site.error(class, format!("answer is not valid JSON: {e}"))
            })
        }
    }
}

fn api_error(site: CallSite<'_>, status: u16, v: &Value, code: &str) -> CloudError {
    let message = field(v, &["Message", "message"])
        .map(value_string)
        .unwrap_or_default();
    // SignatureDoesNotMatch echoes the server's string to sign: keep only the first sentence.
    let message = message
        .split(" server string to sign")
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect::<String>();
    CloudError {
        http_status: Some(status),
        code: Some(code.to_string()),
        request_id: field(v, &["RequestId", "requestId"]).map(value_string),
        ..site.error(classify(code, status), message)
    }
}

/// The next page cursor of an answer: `None` when the listing is complete. A cursor equal to the
/// one just sent would loop for ever, so it is an error.
pub fn next_token(
    site: CallSite<'_>,
    v: &Value,
    sent: Option<&str>,
) -> Result<Option<String>, CloudError> {
    check_next_token(
        site,
        v.get("NextToken").map(value_string),
        v.get("RequestId").map(value_string),
        sent,
    )
}

/// [`next_token`] of an answer's `NextToken` and `RequestId`.
pub fn check_next_token(
    site: CallSite<'_>,
    next: Option<String>,
    request_id: Option<String>,
    sent: Option<&str>,
) -> Result<Option<String>, CloudError> {
    let next = next.filter(|t| !t.is_empty());
    if next.is_some() && next.as_deref() == sent {
        return Err(CloudError {
            http_status: Some(200),
            request_id,
            ..site.error(
                ErrorClass::BadResponse,
                "NextToken repeats the token sent; stopping instead of looping",
            )
        });
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: CallSite<'static> = CallSite {
        cloud: Cloud::Aliyun,
        api: "DescribeMetricLast",
        region: "cn-hangzhou",
    };

    #[test]
    fn errors_are_classified_by_code() {
        let cases = [
            ("Throttling.User", 429, ErrorClass::LimitError),
            ("Throttling.Api", 400, ErrorClass::LimitError),
            ("ServiceUnavailable", 503, ErrorClass::ServerError),
            ("InternalError", 500, ErrorClass::ServerError),
            ("SignatureDoesNotMatch", 400, ErrorClass::AuthError),
            ("InvalidAccessKeyId.NotFound", 404, ErrorClass::AuthError),
            ("Forbidden.RAM", 403, ErrorClass::AuthError),
            ("InvalidTimeStamp.Expired", 400, ErrorClass::AuthError),
            ("InvalidRegionId", 400, ErrorClass::RegionSkip),
            ("ParameterInvalid", 400, ErrorClass::BadResponse),
            ("500", 200, ErrorClass::ServerError),
            ("429", 200, ErrorClass::LimitError),
            ("403", 200, ErrorClass::AuthError),
            ("RequestTimeTooSkewed", 403, ErrorClass::AuthError),
        ];
        for (code, status, class) in cases {
            assert_eq!(classify(code, status), class, "{code}");
        }
    }

    #[test]
    fn error_body_gives_code_message_and_request_id() {
        let body = br#"{"RequestId":"R1","HostId":"metrics.cn-hangzhou.aliyuncs.com","Code":"Throttling.User","Message":"Request was denied due to user flow control."}"#;
        let e = parse_rpc_response(SITE, 429, body).unwrap_err();
        assert_eq!(e.class, ErrorClass::LimitError);
        assert_eq!(e.code.as_deref(), Some("Throttling.User"));
        assert_eq!(e.request_id.as_deref(), Some("R1"));
        assert_eq!(e.http_status, Some(429));
        let e = parse_rpc_response(SITE, 502, b"<html>bad gateway</html>").unwrap_err();
        assert_eq!(e.class, ErrorClass::ServerError);
        let e = parse_rpc_response(SITE, 200, b"{\"Datapoints\":").unwrap_err();
        assert_eq!(e.class, ErrorClass::BadResponse);
    }

    #[test]
    fn default_endpoints_are_regional() {
        let account = crate::config::for_simulator("http://x", &[], "127.0.0.1:0".parse().unwrap());
        let mut a = crate::config::AccountConfig {
            cloud: Cloud::Aliyun,
            account_id: "1".into(),
            access_key_id: "a".into(),
            access_key_secret: Secret::new("s"),
            security_token: None,
            regions: vec![],
            products: vec![],
            endpoint: None,
            endpoints: Default::default(),
            monitor_batch_size: None,
            role_arn: None,
            external_id: None,
            project_ids: Default::default(),
            api_quotas: Default::default(),
            credential_files: Vec::new(),
        };
        let shared = Shared::new(
            Arc::new(crate::render::SelfMetrics::new()),
            1024,
            std::time::Duration::from_secs(1),
            crate::clock::Clock::System,
        )
        .unwrap();
        let p = AliyunProvider::new(&a, &shared, std::time::Duration::from_secs(1));
        assert_eq!(
            p.base_url("cms", "cn-beijing"),
            "https://metrics.cn-beijing.aliyuncs.com"
        );
        assert_eq!(
            p.base_url("slb", "ap-southeast-1"),
            "https://slb.ap-southeast-1.aliyuncs.com"
        );
        assert_eq!(
            p.base_url("oss", "cn-hangzhou"),
            "https://oss-cn-hangzhou.aliyuncs.com"
        );
        a.endpoints
            .insert("cms".into(), "http://127.0.0.1:1".into());
        a.endpoint = Some("http://127.0.0.1:2".into());
        let p = AliyunProvider::new(&a, &shared, std::time::Duration::from_secs(1));
        assert_eq!(p.base_url("cms", "cn-beijing"), "http://127.0.0.1:1");
        assert_eq!(p.base_url("alb", "cn-beijing"), "http://127.0.0.1:2");
        drop(account);
    }

    #[test]
    fn host_keeps_the_port() {
        assert_eq!(host_of("http://127.0.0.1:18080"), "127.0.0.1:18080");
        assert_eq!(
            host_of("https://metrics.cn-hangzhou.aliyuncs.com"),
            "metrics.cn-hangzhou.aliyuncs.com"
        );
    }
}
