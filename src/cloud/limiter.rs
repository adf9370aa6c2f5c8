//! Client-side rate limiters, one token bucket per (cloud, account, API), set at a safe fraction of
//! the documented quota (`cloud-apis.md` §E), so a scrape spends its time waiting here rather
//! than being throttled by the cloud. Waiting never passes the scrape's deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Cloud;

/// Fraction of a documented quota the limiter allows.
pub const SAFE_FRACTION: f64 = 0.8;

/// The documented per-account quota of an API in calls per second, where one is published.
pub fn documented_quota(cloud: Cloud, api: &str) -> f64 {
    match (cloud, api) {
        // DescribeMetricLast/List doc "Limits": 50 calls/s per API per account.
        (Cloud::Aliyun, "DescribeMetricLast" | "DescribeMetricList") => 50.0,
        // DescribeMetricData doc: 10 calls/s.
        (Cloud::Aliyun, "DescribeMetricData") => 10.0,
        // Tencent GetMonitorData: 50 req/s (current API doc).
        (Cloud::Tencent, "GetMonitorData") => 50.0,
        // CloudWatch quotas page: GetMetricData 50 TPS.
        (Cloud::Aws, "GetMetricData") => 50.0,
        // ELB "Request throttling": Describe* bucket refills at 10/s.
        (Cloud::Aws, "DescribeLoadBalancers" | "DescribeTags") => 10.0,
        // Not published for discovery and metadata APIs: stay modest.
        _ => 20.0,
    }
}

/// A token bucket.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `rate` tokens per second, holding at most `burst`.
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Take one token, waiting for it; `false` when it would only come after `deadline`.
    pub async fn acquire(&self, deadline: Instant) -> bool {
        loop {
            let wait = {
                let mut state = match self.state.lock() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
                state.0 = (state.0 + elapsed * self.rate).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return true;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.rate)
            };
            if Instant::now() + wait > deadline {
                return false;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// All limiters of the process, created on first use.
#[derive(Debug, Default)]
pub struct Limiters {
    buckets: Mutex<HashMap<(Cloud, String, String), Arc<TokenBucket>>>,
}

impl Limiters {
    /// The bucket of (cloud, account, api).
    pub fn get(&self, cloud: Cloud, account: &str, api: &str) -> Arc<TokenBucket> {
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry((cloud, account.to_string(), api.to_string()))
            .or_insert_with(|| {
                // No burst: calls are evenly spaced, so no one-second window of the cloud's
                // quota counter sees more than rate + 1 calls, even when they bunch in transit.
                let rate = documented_quota(cloud, api) * SAFE_FRACTION;
                Arc::new(TokenBucket::new(rate, 1.0))
            })
            .clone()
    }

    /// Drop the buckets of accounts no longer configured.
    pub fn retain_accounts(&self, keep: &dyn Fn(Cloud, &str) -> bool) {
        if let Ok(mut map) = self.buckets.lock() {
            map.retain(|(cloud, account, _), _| keep(*cloud, account));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_calls_at_its_rate_and_respects_the_deadline() {
        let bucket = TokenBucket::new(10.0, 2.0);
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        for _ in 0..12 {
            assert!(bucket.acquire(far).await);
        }
        // 2 from the burst, then 10 more at 10/s.
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_millis(990), "{waited:?}");
        assert!(!bucket.acquire(Instant::now()).await);
    }
}
