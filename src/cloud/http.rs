//! The one HTTP client of the process and the single-attempt call every provider builds on:
//! a per-call timeout inside the scrape's deadline, a cap on the response body, and the
//! request self-metrics. Classification of the answer is the provider's job; this layer only
//! turns transport failures into [`CloudError`]s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::limiter::Limiters;
use super::{Cloud, CloudError, ErrorClass};
use crate::clock::Clock;
use crate::render::SelfMetrics;

/// Process-wide state shared by every provider.
#[derive(Clone)]
pub struct Shared {
    /// The HTTP client (connection pools, TLS).
    pub client: reqwest::Client,
    /// Self-metrics (request counts, durations, throttling).
    pub metrics: Arc<SelfMetrics>,
    /// Rate limiters per (cloud, account, API).
    pub limiters: Arc<Limiters>,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Longest single call.
    pub request_timeout: Duration,
    /// Time source for signatures and windows.
    pub clock: Clock,
    /// Calls per second per API of the account whose provider holds this copy, where its
    /// config names them (`[accounts.api_quotas]`); empty in the process-wide copy.
    pub api_quotas: Arc<BTreeMap<String, f64>>,
}

impl Shared {
    /// Build the shared state.
    pub fn new(
        metrics: Arc<SelfMetrics>,
        max_response_bytes: usize,
        request_timeout: Duration,
        clock: Clock,
    ) -> Result<Shared, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("multicloud-exporter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            // Never follow redirects: a 3xx to another host would carry the signed headers
            // (including an STS token) there. A redirect is a bad_response.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Shared {
            client,
            metrics,
            limiters: Arc::new(Limiters::default()),
            max_response_bytes,
            request_timeout,
            clock,
            api_quotas: Arc::default(),
        })
    }

    /// The copy a provider holds: this state with its account's quotas.
    pub fn for_account(&self, account: &crate::config::AccountConfig) -> Shared {
        Shared {
            api_quotas: Arc::new(account.api_quotas.clone()),
            ..self.clone()
        }
    }
}

impl Shared {
    /// The same metrics, limiters and clock with a new client for other response limits.
    pub fn with_limits(
        &self,
        max_response_bytes: usize,
        request_timeout: Duration,
    ) -> Result<Shared, String> {
        let mut s = Shared::new(
            self.metrics.clone(),
            max_response_bytes,
            request_timeout,
            self.clock,
        )?;
        s.limiters = self.limiters.clone();
        Ok(s)
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status code.
    pub status: u16,
    /// The body, at most `max_response_bytes`.
    pub body: Bytes,
}

/// Identifies a call for errors and metrics.
#[derive(Clone, Copy)]
pub struct CallSite<'a> {
    pub cloud: Cloud,
    pub api: &'a str,
    pub region: &'a str,
}

impl CallSite<'_> {
    /// An error of this call.
    pub fn error(&self, class: ErrorClass, message: impl Into<String>) -> CloudError {
        CloudError {
            class,
            cloud: self.cloud,
            api: self.api.to_string(),
            region: self.region.to_string(),
            http_status: None,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    /// A success answer (HTTP `status`) that is JSON but not of the API's shape.
    pub fn shape_error(&self, status: u16, e: impl std::fmt::Display) -> CloudError {
        CloudError {
            http_status: Some(status),
            ..self.error(
                ErrorClass::BadResponse,
                format!("answer does not have the API's shape: {e}"),
            )
        }
    }
}

/// Send one request and read its body, within `request_timeout` and the deadline.
pub async fn send(
    shared: &Shared,
    site: CallSite<'_>,
    deadline: Instant,
    request: reqwest::RequestBuilder,
) -> Result<RawResponse, CloudError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(site.error(
            ErrorClass::Timeout,
            "scrape deadline passed before the call",
        ));
    }
    let budget = shared.request_timeout.min(deadline - now);
    let max = shared.max_response_bytes;
    let call = async {
        let mut response = request.send().await.map_err(|e| {
            let connect = e.is_connect();
            let message = transport_message(e);
            // A regional host that does not resolve means the product is not offered in that
            // region: skip the job instead of retrying every scrape.
            let class = if connect && message.contains("dns error") {
                ErrorClass::RegionSkip
            } else {
                ErrorClass::ServerError
            };
            site.error(class, format!("transport: {message}"))
        })?;
        let status = response.status().as_u16();
        // Sized from Content-Length when the answer has one (never past the cap), so a large
        // answer is not grown (and copied) by doubling as its chunks arrive.
        let expected = response.content_length().unwrap_or(0);
        let mut body = BytesMut::with_capacity(usize::try_from(expected).unwrap_or(max).min(max));
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max {
                        return Err(site.error(
                            ErrorClass::BadResponse,
                            format!("response body larger than server.max_response_bytes ({max})"),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(site.error(
                        ErrorClass::BadResponse,
                        format!("reading body: {}", transport_message(e)),
                    ))
                }
            }
        }
        Ok(RawResponse {
            status,
            body: body.freeze(),
        })
    };
    match tokio::time::timeout(budget, call).await {
        Ok(r) => r,
        Err(_) => Err(site.error(
            ErrorClass::Timeout,
            format!("no answer within {:.1}s", budget.as_secs_f64()),
        )),
    }
}

/// One API call as every provider makes it: a slot from the (cloud, account, API) rate limiter,
/// the attempt itself, the request self-metrics, and retries with backoff inside the deadline.
/// `attempt` builds one try; it is called again for every retry (fresh timestamp and nonce).
pub async fn call<T, F, Fut>(
    shared: &Shared,
    site: CallSite<'_>,
    account_id: &str,
    deadline: Instant,
    attempt: F,
) -> Result<T, CloudError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let quota = shared.api_quotas.get(site.api).copied();
    let limiter = shared.limiters.get(site.cloud, account_id, site.api, quota);
    super::retry::with_retry(
        deadline,
        |_| {
            let limiter = limiter.clone();
            let attempt = attempt();
            async move {
                if !limiter.acquire(deadline).await {
                    return Err(site.error(
                        ErrorClass::Timeout,
                        "rate limiter: no call slot before the scrape deadline",
                    ));
                }
                let started = std::time::Instant::now();
                let r = attempt.await;
                shared
                    .metrics
                    .observe_request(site.cloud, site.api, &r, started.elapsed());
                r
            }
        },
        |_| shared.metrics.observe_retry(site.cloud, site.api),
    )
    .await
}

/// A transport error without the URL (which may carry signed query parameters).
fn transport_message(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
