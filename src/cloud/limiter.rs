//! Client-side rate limiters, one token bucket per (cloud, account, API), set at a safe fraction of
//! the documented quota (`cloud-apis.md` §E), so a scrape spends its time waiting here rather
//! than being throttled by the cloud. Waiting never passes the scrape's deadline. An account
//! whose quota differs from the documented one (raised on request, or shared with other tools)
//! names it in `[accounts.api_quotas]`, and its limiter keeps to the same fraction of that.

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
        // DescribeMetricLast doc "Limits": 50 calls/s per API per account.
        (Cloud::Aliyun, "DescribeMetricLast") => 50.0,
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

/// The APIs a cloud's provider calls, by the names its limiters, `[accounts.api_quotas]` and
/// `multicloud_request_total{api}` use.
pub fn apis(cloud: Cloud) -> &'static [&'static str] {
    match cloud {
        Cloud::Aliyun => &[
            "DescribeMetricLast",
            "DescribeMetricMetaList",
            "DescribeRegions",
            "DescribeLoadBalancers",
            "ListLoadBalancers",
            "DescribeCommonBandwidthPackages",
            "ListTagResources",
            "ListBuckets",
        ],
        Cloud::Tencent => &[
            "GetMonitorData",
            "DescribeBaseMetrics",
            "DescribeRegions",
            "DescribeLoadBalancers",
            "DescribeGatewayLoadBalancers",
            "DescribeBandwidthPackages",
            "GetResources",
            "GetService",
        ],
        Cloud::Aws => &[
            "GetMetricData",
            "DescribeRegions",
            "DescribeLoadBalancers",
            "DescribeTags",
            "GetResources",
            "ListBuckets",
            "GetBucketLocation",
            "GetBucketTagging",
            "AssumeRole",
        ],
        Cloud::Huawei => &[
            "BatchListMetricData",
            "KeystoneListProjects",
            "KeystoneListRegions",
            "ListLoadBalancers",
            "ListBuckets",
            "GetBucketTagging",
        ],
    }
}

/// Largest quota `[accounts.api_quotas]` accepts, in calls per second.
pub const MAX_API_QUOTA: f64 = 100_000.0;

/// Smallest quota `[accounts.api_quotas]` accepts, in calls per second: below one call a
/// minute and a half, every call would wait past any scrape's deadline.
pub const MIN_API_QUOTA: f64 = 0.01;

/// A token bucket, kept as the time its next token comes (the generic cell rate algorithm):
/// each caller reserves its own slot and sleeps once until it. Waiters that each polled for a
/// token would all wake at every token and all but one sleep again: at 30 waiters per account,
/// that herd cost more CPU than the calls themselves.
#[derive(Debug)]
pub struct TokenBucket {
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    rate: f64,
    /// Time between tokens.
    interval: Duration,
    /// How far ahead of the next token a burst may reach: (burst - 1) intervals.
    burst_reach: Duration,
    /// When the token after the ones already promised comes.
    next: Instant,
}

impl BucketState {
    fn set_rate(&mut self, rate: f64, burst: f64) {
        // Clamped so the interval is a sane duration whatever the caller asks.
        let rate = rate.clamp(MIN_API_QUOTA * SAFE_FRACTION, MAX_API_QUOTA);
        self.rate = rate;
        self.interval = Duration::from_secs_f64(1.0 / rate);
        self.burst_reach = self.interval.mul_f64((burst - 1.0).max(0.0));
    }
}

impl TokenBucket {
    /// `rate` tokens per second, holding at most `burst` (at least 1).
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        let mut state = BucketState {
            rate,
            interval: Duration::ZERO,
            burst_reach: Duration::ZERO,
            next: Instant::now(),
        };
        state.set_rate(rate, burst);
        TokenBucket {
            burst,
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BucketState> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Tokens per second.
    pub fn rate(&self) -> f64 {
        self.state().rate
    }

    /// Change the rate, keeping the slots already promised.
    pub fn set_rate(&self, rate: f64) {
        self.state().set_rate(rate, self.burst);
    }

    /// Take one token, waiting for it; `false` (and nothing taken) when it would only come
    /// after `deadline`.
    pub async fn acquire(&self, deadline: Instant) -> bool {
        let (slot, now) = {
            let mut state = self.state();
            let now = Instant::now();
            let due = state.next.max(now);
            let slot = due
                .checked_sub(state.burst_reach)
                .map_or(now, |s| s.max(now));
            if slot > deadline {
                return false;
            }
            state.next = due + state.interval;
            (slot, now)
        };
        // A free slot is taken at once: the timer would round it up to its next millisecond.
        if slot > now {
            tokio::time::sleep_until(slot).await;
        }
        true
    }
}

/// All limiters of the process, created on first use.
#[derive(Debug, Default)]
pub struct Limiters {
    buckets: Mutex<HashMap<(Cloud, String, String), Arc<TokenBucket>>>,
}

impl Limiters {
    /// The bucket of (cloud, account, api), at the safe fraction of `quota` (the account's
    /// configured quota of the API, if any) or else of the documented one. A reload that
    /// changed the quota changes the bucket's rate in place, keeping the slots it promised, so
    /// a collection of the old config still running and one of the new share one spacing.
    pub fn get(
        &self,
        cloud: Cloud,
        account: &str,
        api: &str,
        quota: Option<f64>,
    ) -> Arc<TokenBucket> {
        let rate = quota.unwrap_or_else(|| documented_quota(cloud, api)) * SAFE_FRACTION;
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let bucket = map
            .entry((cloud, account.to_string(), api.to_string()))
            // No burst: calls are evenly spaced, so no one-second window of the cloud's quota
            // counter sees more than rate + 1 calls, even when they bunch in transit.
            .or_insert_with(|| Arc::new(TokenBucket::new(rate, 1.0)));
        if bucket.rate() != rate {
            bucket.set_rate(rate);
        }
        bucket.clone()
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

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_get_evenly_spaced_slots_in_turn() {
        let bucket = Arc::new(TokenBucket::new(10.0, 1.0));
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        let waiters: Vec<_> = (0..30)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    assert!(bucket.acquire(far).await);
                    Instant::now() - start
                })
            })
            .collect();
        let mut got = Vec::new();
        for w in waiters {
            got.push(w.await.unwrap());
        }
        got.sort();
        let want: Vec<Duration> = (0..30).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(got, want);
        // A slot past the deadline is not taken: the next caller still gets 3.0 s.
        assert!(!bucket.acquire(start + Duration::from_millis(2950)).await);
        assert!(bucket.acquire(far).await);
        assert_eq!(Instant::now() - start, Duration::from_millis(3000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_configured_quota_sets_the_rate_and_a_changed_one_replaces_the_bucket() {
        let limiters = Limiters::default();
        let documented = limiters.get(Cloud::Aws, "1", "GetMetricData", None);
        assert_eq!(documented.rate(), 40.0);
        let raised = limiters.get(Cloud::Aws, "1", "GetMetricData", Some(1250.0));
        assert_eq!(raised.rate(), 1000.0);
        // One bucket per (cloud, account, API), its rate changed in place.
        assert!(Arc::ptr_eq(&raised, &documented));
        assert_eq!(documented.rate(), 1000.0);
        // Another account keeps its own bucket at the documented rate.
        assert_eq!(
            limiters.get(Cloud::Aws, "2", "GetMetricData", None).rate(),
            40.0
        );
        // 1 call at once, then 1000 more spaced at 1000/s: one second of (paused) time, where
        // the documented rate would take 25.
        let start = Instant::now();
        let far = start + Duration::from_secs(60);
        for _ in 0..1001 {
            assert!(raised.acquire(far).await);
        }
        let waited = Instant::now() - start;
        assert!(
            (Duration::from_millis(999)..=Duration::from_millis(1001)).contains(&waited),
            "{waited:?}"
        );
    }
}
