//! TTL caches over discovery and metadata. Each entry is stamped with its fetch time; a missing
//! or expired entry is fetched once however many jobs ask at the same time (one lock per key);
//! when a refresh fails and an older value exists, the older value is served along with the
//! error, so a flaky discovery API neither empties the output nor hides the failure. Failures
//! themselves are never cached: the next scrape tries again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{CloudError, Product, Resource};

#[derive(Clone)]
struct Entry<V> {
    value: V,
    fetched: Instant,
}

/// A value and, when it is an older copy served because the refresh failed, that failure.
#[derive(Clone, Debug)]
pub struct Cached<V> {
    /// The value.
    pub value: V,
    /// Age of the value at the time of the answer.
    pub age: Duration,
    /// Set when the refresh failed and an older value was served.
    pub refresh_error: Option<CloudError>,
}

/// A TTL cache with one fetch in flight per key.
pub struct TtlCache<K, V> {
    name: &'static str,
    ttl: Duration,
    entries: quick_cache::sync::Cache<K, Entry<V>>,
    locks: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// A cache of at most `capacity` entries, each fresh for `ttl`.
    pub fn new(name: &'static str, capacity: usize, ttl: Duration) -> TtlCache<K, V> {
        TtlCache {
            name,
            ttl,
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Name for self-metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.entries.clear();
    }

    fn lock_for(&self, key: &K) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        locks.entry(key.clone()).or_default().clone()
    }

    /// The cached value or a fresh one; errors only when nothing at all can be served.
    pub async fn get_or_fetch_cached<F, Fut>(
        &self,
        key: K,
        fetch: F,
    ) -> Result<Cached<V>, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, CloudError>>,
    {
        if let Some(e) = self.entries.get(&key) {
            if e.fetched.elapsed() < self.ttl {
                return Ok(Cached {
                    age: e.fetched.elapsed(),
                    value: e.value,
                    refresh_error: None,
                });
            }
        }
        let lock = self.lock_for(&key);
        let _guard = lock.lock().await;
        // Another task may have refreshed it while this one waited.
        let old = self.entries.get(&key);
        if let Some(e) = &old {
            if e.fetched.elapsed() < self.ttl {
                return Ok(Cached {
                    age: e.fetched.elapsed(),
                    value: e.value.clone(),
                    refresh_error: None,
                });
            }
        }
        match fetch().await {
            Ok(value) => {
                self.entries.insert(
                    key,
                    Entry {
                        value: value.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(Cached {
                    value,
                    age: Duration::ZERO,
                    refresh_error: None,
                })
            }
            Err(err) => match old {
                Some(e) => Ok(Cached {
                    age: e.fetched.elapsed(),
                    value: e.value,
                    refresh_error: Some(err),
                }),
                None => Err(err),
            },
        }
    }

    /// Like [`TtlCache::get_or_fetch_cached`], keeping only the value.
    pub async fn get_or_fetch<F, Fut>(&self, key: K, fetch: F) -> Result<V, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, CloudError>>,
    {
        self.get_or_fetch_cached(key, fetch).await.map(|c| c.value)
    }

    /// Like [`TtlCache::get_or_fetch`], but a failed refresh is an error even when a stale value
    /// exists: for a cache that feeds another cache (an account-wide bucket list feeding the
    /// per-region discovery), which then keeps its own stale value *with* the error instead of
    /// storing the stale list as fresh.
    pub async fn get_or_fetch_fresh<F, Fut>(&self, key: K, fetch: F) -> Result<V, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, CloudError>>,
    {
        let c = self.get_or_fetch_cached(key, fetch).await?;
        match c.refresh_error {
            Some(e) => Err(e),
            None => Ok(c.value),
        }
    }

    /// The cached value of a key and its age, without fetching (for the admin API).
    pub fn peek(&self, key: &K) -> Option<(V, Duration)> {
        self.entries
            .get(key)
            .map(|e| (e.value.clone(), e.fetched.elapsed()))
    }

    /// Drop entries whose key fails `keep`.
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        self.entries.retain(|k, _| keep(k));
        if let Ok(mut l) = self.locks.lock() {
            l.retain(|k, _| keep(k));
        }
    }
}

/// Key of the discovery cache: (account index key, region, product).
pub type DiscoveryKey = (String, String, Product);

/// The discovery cache: resources per (account, region, product).
pub type DiscoveryCache = TtlCache<DiscoveryKey, Arc<Vec<Resource>>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Cloud, ErrorClass};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err() -> CloudError {
        CloudError {
            class: ErrorClass::ServerError,
            cloud: Cloud::Aliyun,
            api: "X".into(),
            region: String::new(),
            http_status: None,
            code: None,
            message: String::new(),
            request_id: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_entries_are_reused_and_expired_ones_refetched() {
        let cache: TtlCache<u32, u32> = TtlCache::new("t", 10, Duration::from_secs(60));
        let calls = AtomicU32::new(0);
        let fetch = || async { Ok::<_, CloudError>(calls.fetch_add(1, Ordering::SeqCst) + 1) };
        assert_eq!(cache.get_or_fetch(1, fetch).await.unwrap(), 1);
        assert_eq!(cache.get_or_fetch(1, fetch).await.unwrap(), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(cache.get_or_fetch(1, fetch).await.unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refresh_serves_the_old_value_with_the_error_and_is_not_cached() {
        let cache: TtlCache<u32, u32> = TtlCache::new("t", 10, Duration::from_secs(60));
        cache.get_or_fetch(1, || async { Ok(7) }).await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        let c = cache
            .get_or_fetch_cached(1, || async { Err(err()) })
            .await
            .unwrap();
        assert_eq!(c.value, 7);
        assert!(c.refresh_error.is_some());
        assert_eq!(cache.get_or_fetch(1, || async { Ok(8) }).await.unwrap(), 8);
        assert!(cache
            .get_or_fetch(2, || async { Err(err()) })
            .await
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_fetch_once() {
        let cache: Arc<TtlCache<u32, u32>> =
            Arc::new(TtlCache::new("t", 10, Duration::from_secs(60)));
        let calls = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(1, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(5)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 5);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
