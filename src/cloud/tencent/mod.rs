//! Tencent Cloud: API 3.0 calls signed with TC3-HMAC-SHA256 (JSON POST, errors as HTTP 200
//! with `Response.Error`), the COS bucket listing signed with `q-sign`, error classification by
//! the API's `Code`, and the provider operations built on them: regions and resources per
//! product ([`discovery`]) and monitor data ([`monitor`]).

pub mod discovery;
pub mod monitor;
pub mod sign;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::http::{self, CallSite, Shared};
use super::{Cloud, CloudError, ErrorClass};
use crate::config::{AccountConfig, Secret};
use crate::discovery::TtlCache;
pub use crate::util::{host_of, value_string};

/// An API 3.0 action: service (the host's first label), version and action.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    /// Service (`monitor`, `clb`, …), also the credential scope's service.
    pub service: &'static str,
    /// API version (`2018-07-24`).
    pub version: &'static str,
    /// Action (`GetMonitorData`).
    pub action: &'static str,
}

/// GetMonitorData instances per call, as documented today (older documents said 10).
pub const DOCUMENTED_BATCH_SIZE: usize = 50;

/// What the calls so far taught about the largest batch GetMonitorData accepts: the largest
/// size that worked and the smallest that was rejected as too large. The size to use is the
/// configured one until a rejection, then a bisection between the two, so the limit is found
/// in a few calls and every call still carries real work.
#[derive(Debug)]
pub struct BatchLimit {
    configured: usize,
    largest_ok: AtomicUsize,
    smallest_rejected: AtomicUsize,
}

impl BatchLimit {
    /// A limit starting at `configured` instances per call.
    pub fn new(configured: usize) -> BatchLimit {
        BatchLimit {
            configured: configured.max(1),
            largest_ok: AtomicUsize::new(0),
            smallest_rejected: AtomicUsize::new(usize::MAX),
        }
    }

    /// Instances to put in the next call.
    pub fn size(&self) -> usize {
        let ok = self.largest_ok.load(Ordering::Relaxed);
        let rejected = self.smallest_rejected.load(Ordering::Relaxed);
        if rejected == usize::MAX {
            return self.configured.max(ok);
        }
        if ok == 0 {
            return (rejected / 2).max(1);
        }
        if rejected > ok + 1 {
            (ok + rejected) / 2
        } else {
            ok
        }
    }

    /// A call with `n` instances worked.
    pub fn worked(&self, n: usize) {
        self.largest_ok.fetch_max(n, Ordering::Relaxed);
    }

    /// A call with `n` (more than one) instances was rejected as too large. A size that once
    /// worked but now fails is no longer trusted.
    pub fn rejected(&self, n: usize) {
        self.smallest_rejected.fetch_min(n, Ordering::Relaxed);
        let _ = self
            .largest_ok
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |ok| {
                (ok >= n).then(|| n - 1)
            });
    }

    /// A single instance got the "too large" error too: it was not about batch size, so
    /// everything learnt is forgotten and the configured size stands again.
    pub fn reset(&self) {
        self.largest_ok.store(0, Ordering::Relaxed);
        self.smallest_rejected.store(usize::MAX, Ordering::Relaxed);
    }
}

/// The Tencent provider of one account.
pub struct TencentProvider {
    shared: Shared,
    account_id: String,
    secret_id: String,
    secret_key: Secret,
    token: Option<Secret>,
    endpoint: Option<String>,
    endpoints: BTreeMap<String, String>,
    /// DescribeBaseMetrics answers per namespace (24 h).
    base_metrics: TtlCache<String, Arc<monitor::MetricTable>>,
    /// The account's buckets (GetService lists every region at once).
    buckets: TtlCache<(), Arc<Vec<(String, String)>>>,
    /// What GetMonitorData accepts per call.
    pub batch_limit: BatchLimit,
    /// (namespace, metric) pairs whose mapping problem was already logged.
    warned: Mutex<HashSet<(String, String)>>,
}

impl TencentProvider {
    /// The provider of an account.
    pub fn new(
        account: &AccountConfig,
        shared: &Shared,
        discovery_ttl: std::time::Duration,
    ) -> TencentProvider {
        TencentProvider {
            shared: shared.for_account(account),
            account_id: account.account_id.clone(),
            secret_id: account.access_key_id.clone(),
            secret_key: account.access_key_secret.clone(),
            token: account.security_token.clone(),
            endpoint: account.endpoint.clone(),
            endpoints: account.endpoints.clone(),
            base_metrics: TtlCache::new("tencent_metadata", 256, super::aliyun::METADATA_TTL),
            buckets: TtlCache::new("tencent_buckets", 1, discovery_ttl),
            batch_limit: BatchLimit::new(
                account.monitor_batch_size.unwrap_or(DOCUMENTED_BATCH_SIZE),
            ),
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// Base URL of a service. API 3.0 hosts are global (the region travels in `X-TC-Region`);
    /// `cos` is the bucket listing host.
    pub fn base_url(&self, service: &str) -> String {
        if let Some(u) = self.endpoints.get(service).or(self.endpoint.as_ref()) {
            return u.clone();
        }
        match service {
            "cos" => "https://service.cos.myqcloud.com".to_string(),
            other => format!("https://{other}.tencentcloudapi.com"),
        }
    }

    /// The account ID (UIN).
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Shared state.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Credentials for the COS signer.
    pub(crate) fn credentials(&self) -> (&str, &Secret, Option<&Secret>) {
        (&self.secret_id, &self.secret_key, self.token.as_ref())
    }

    /// Call an API 3.0 action with the limiter, retries and classification; the `Response`
    /// object on success.
    pub async fn call(
        &self,
        api: Api,
        region: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, CloudError> {
        self.call_as(api, region, body.to_string().into_bytes(), deadline)
            .await
    }

    /// Call an API 3.0 action with a serialised body; the `Response` object parsed straight
    /// into `T` on success.
    pub async fn call_as<T: ApiAnswer>(
        &self,
        api: Api,
        region: &str,
        payload: Vec<u8>,
        deadline: Instant,
    ) -> Result<T, CloudError> {
        let site = CallSite {
            cloud: Cloud::Tencent,
            api: api.action,
            region,
        };
        // Shared, not copied, by every attempt.
        let payload = bytes::Bytes::from(payload);
        http::call(&self.shared, site, &self.account_id, deadline, || {
            self.call_once(api, site, region, &payload, deadline)
        })
        .await
    }

    async fn call_once<T: ApiAnswer>(
        &self,
        api: Api,
        site: CallSite<'_>,
        region: &str,
        payload: &bytes::Bytes,
        deadline: Instant,
    ) -> Result<T, CloudError> {
        let base = self.base_url(api.service);
        let timestamp = self.shared.clock.now_s();
        let signed = vec![
            (
                "content-type".to_string(),
                sign::JSON_CONTENT_TYPE.to_string(),
            ),
            ("host".to_string(), host_of(&base)),
        ];
        let auth = sign::tc3_authorization(
            &sign::Tc3Request {
                method: "POST",
                canonical_query: "",
                headers: &signed,
                payload,
                service: api.service,
                timestamp,
            },
            &self.secret_id,
            self.secret_key.expose(),
        );
        let mut req = self
            .shared
            .client
            .post(format!("{base}/"))
            .header("authorization", auth)
            .header("content-type", sign::JSON_CONTENT_TYPE)
            .header("x-tc-action", api.action)
            .header("x-tc-version", api.version)
            .header("x-tc-timestamp", timestamp.to_string())
            .body(payload.clone());
        if !region.is_empty() {
            req = req.header("x-tc-region", region);
        }
        if let Some(t) = &self.token {
            req = req.header("x-tc-token", t.expose());
        }
        let raw = http::send(&self.shared, site, deadline, req).await?;
        parse_response_as(site, raw.status, &raw.body)
    }

    /// The metric metadata of a namespace, from cache or DescribeBaseMetrics.
    pub async fn metric_table(
        &self,
        namespace: &str,
        region: &str,
        deadline: Instant,
    ) -> Result<Arc<monitor::MetricTable>, CloudError> {
        self.base_metrics
            .get_or_fetch(namespace.to_string(), || async {
                monitor::describe_base_metrics(self, namespace, region, deadline)
                    .await
                    .map(Arc::new)
            })
            .await
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

    /// Entries in the metadata cache, for self-metrics.
    pub fn metadata_cache_len(&self) -> usize {
        self.base_metrics.len()
    }

    /// Report, once per metric, a unit in the metadata that differs from the mapping's.
    pub(crate) fn report_unit_mismatch(
        &self,
        namespace: &str,
        metric: &str,
        mapping_unit: &str,
        cloud_unit: &str,
    ) {
        self.shared
            .metrics
            .unit_mismatches
            .with_label_values(&["tencent", namespace, metric, mapping_unit, cloud_unit])
            .set(1);
        if self.first_warning(namespace, metric) {
            tracing::warn!(
                namespace,
                metric,
                mapping_unit,
                cloud_unit,
                "the cloud reports another unit than the mapping converts from; fix source_unit and scale in the mapping"
            );
        }
    }

    /// Report, once per metric, a mapped metric DescribeBaseMetrics does not list; it is not
    /// queried.
    pub(crate) fn report_unknown_metric(&self, namespace: &str, metric: &str) {
        if self.first_warning(namespace, metric) {
            tracing::warn!(
                namespace,
                metric,
                "DescribeBaseMetrics does not list this mapped metric; it is not queried (check the mapping's spelling)"
            );
        }
    }

    fn first_warning(&self, namespace: &str, metric: &str) -> bool {
        self.warned
            .lock()
            .map(|mut w| w.insert((namespace.to_string(), metric.to_string())))
            .unwrap_or(false)
    }
}

/// Classify an API 3.0 error `Code` (`cloud-apis.md` B.1 common and monitor codes).
pub fn classify(code: &str) -> ErrorClass {
    if code.starts_with("RequestLimitExceeded") {
        ErrorClass::LimitError
    } else if code.starts_with("AuthFailure")
        || code.starts_with("UnauthorizedOperation")
        || code == "FailedOperation.AccessSTSFail"
    {
        ErrorClass::AuthError
    } else if code.starts_with("InternalError")
        || code.starts_with("ResourceUnavailable")
        || code == "FailedOperation.DataQueryFailed"
        || code == "FailedOperation.DbQueryFailed"
    {
        ErrorClass::ServerError
    } else if code.starts_with("UnsupportedRegion") || code == "InvalidParameterValue.InvalidRegion"
    {
        ErrorClass::RegionSkip
    } else {
        ErrorClass::BadResponse
    }
}

/// Whether an error says a GetMonitorData call carried too many instances. The limit's own
/// error is not documented; `LimitExceeded` ("over a quota") and the legacy
/// `OperationDenied.ExceedLimit` (-507) are what a too-large request gets.
pub fn is_batch_too_large(e: &CloudError) -> bool {
    matches!(
        e.code.as_deref(),
        Some("LimitExceeded" | "OperationDenied.ExceedLimit")
    )
}

/// An answer's `Response` parsed straight into its shape. It keeps whether `Error` is there, so
/// an error reported with HTTP 200 is still seen, in one pass over the bytes.
pub trait ApiAnswer: DeserializeOwned {
    /// Whether the `Response` carries an `Error`.
    fn has_error(&self) -> bool;
}

impl ApiAnswer for Value {
    fn has_error(&self) -> bool {
        !self.is_object() || self.get("Error").is_some()
    }
}

/// An answer's `Response`, parsed as `T`.
#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(rename = "Response")]
    response: T,
}

/// Turn an API 3.0 answer into its `Response` parsed as `T`, or a classified error. A success
/// is parsed straight from the bytes; anything else goes through [`parse_response`].
pub fn parse_response_as<T: ApiAnswer>(
    site: CallSite<'_>,
    status: u16,
    body: &[u8],
) -> Result<T, CloudError> {
    if status == 200 && crate::cloud::wire::is_json_object(body) {
        if let Ok(Envelope { response }) = serde_json::from_slice::<Envelope<T>>(body) {
            if !response.has_error() {
                return Ok(response);
            }
        }
    }
    let v = parse_response(site, status, body)?;
    T::deserialize(v).map_err(|e| site.shape_error(status, e))
}

/// Turn an API 3.0 answer into its `Response` object or a classified error.
pub fn parse_response(site: CallSite<'_>, status: u16, body: &[u8]) -> Result<Value, CloudError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let response = match &parsed {
        Ok(v) => v.get("Response"),
        Err(_) => None,
    };
    if let Some(err) = response.and_then(|r| r.get("Error")) {
        let code = err.get("Code").map(value_string).unwrap_or_default();
        let message: String = err
            .get("Message")
            .map(value_string)
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        let class = match status {
            429 => ErrorClass::LimitError,
            s if s >= 500 => ErrorClass::ServerError,
            _ => classify(&code),
        };
        return Err(CloudError {
            http_status: Some(status),
            code: Some(code),
            request_id: response.and_then(|r| r.get("RequestId")).map(value_string),
            ..site.error(class, message)
        });
    }
    match (status, response) {
        (200, Some(r)) if r.is_object() => match parsed {
            // Taken out of the answer, not copied.
            Ok(Value::Object(mut m)) => Ok(m.remove("Response").unwrap_or_default()),
            _ => Ok(Value::Null),
        },
        (200, _) => Err(CloudError {
            http_status: Some(200),
            ..site.error(
                ErrorClass::BadResponse,
                match parsed {
                    Err(e) => format!("answer is not valid JSON: {e}"),
                    Ok(_) => "answer has no Response object".to_string(),
                },
            )
        }),
        (s, _) => Err(CloudError {
            http_status: Some(s),
            ..site.error(
                match s {
                    429 => ErrorClass::LimitError,
                    500.. => ErrorClass::ServerError,
                    _ => ErrorClass::BadResponse,
                },
                format!("HTTP {s} without an API error body"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: CallSite<'static> = CallSite {
        cloud: Cloud::Tencent,
        api: "GetMonitorData",
        region: "ap-guangzhou",
    };

    #[test]
    fn errors_are_classified_by_code() {
        let cases = [
            ("RequestLimitExceeded", ErrorClass::LimitError),
            (
                "RequestLimitExceeded.UinLimitExceeded",
                ErrorClass::LimitError,
            ),
            ("AuthFailure.SignatureFailure", ErrorClass::AuthError),
            ("AuthFailure.SignatureExpire", ErrorClass::AuthError),
            ("UnauthorizedOperation.CamNoAuth", ErrorClass::AuthError),
            ("InternalError", ErrorClass::ServerError),
            ("FailedOperation.DbQueryFailed", ErrorClass::ServerError),
            ("UnsupportedRegion", ErrorClass::RegionSkip),
            ("InvalidParameterValue", ErrorClass::BadResponse),
            ("LimitExceeded", ErrorClass::BadResponse),
        ];
        for (code, class) in cases {
            assert_eq!(classify(code), class, "{code}");
        }
    }

    #[test]
    fn errors_arrive_as_http_200_with_response_error() {
        let body = br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"ed93f3cb"}}"#;
        let e = parse_response(SITE, 200, body).unwrap_err();
        assert_eq!(e.class, ErrorClass::AuthError);
        assert_eq!(e.code.as_deref(), Some("AuthFailure.SignatureFailure"));
        assert_eq!(e.request_id.as_deref(), Some("ed93f3cb"));
        let ok =
            parse_response(SITE, 200, br#"{"Response":{"Period":60,"RequestId":"r"}}"#).unwrap();
        assert_eq!(ok["Period"], 60);
        assert_eq!(
            parse_response(SITE, 502, b"<html/>").unwrap_err().class,
            ErrorClass::ServerError
        );
        assert_eq!(
            parse_response(SITE, 200, b"{\"Response\":")
                .unwrap_err()
                .class,
            ErrorClass::BadResponse
        );
    }

    #[test]
    fn batch_limit_bisects_to_the_largest_accepted_size() {
        // The cloud accepts at most 10 instances per call.
        let limit = BatchLimit::new(50);
        let mut tried = Vec::new();
        for _ in 0..12 {
            let n = limit.size();
            tried.push(n);
            if n <= 10 {
                limit.worked(n);
            } else {
                limit.rejected(n);
            }
        }
        assert_eq!(tried[..6], [50, 25, 12, 6, 9, 10]);
        assert_eq!(limit.size(), 10);
        // The cloud lowers its limit to 8: the size that worked before is dropped.
        limit.rejected(10);
        assert_eq!(limit.size(), 9);
        limit.rejected(9);
        assert_eq!(limit.size(), 8);
        limit.reset();
        assert_eq!(limit.size(), 50);
        // Without rejections the configured size stands.
        let limit = BatchLimit::new(50);
        limit.worked(50);
        assert_eq!(limit.size(), 50);
    }
}
