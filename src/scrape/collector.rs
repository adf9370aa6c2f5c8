//! Single-flight and the result cache in front of [`super::collect`]. Concurrent scrapes share
//! one collection in flight (it runs in its own task, so a scraper that hangs up does not cancel
//! it for the others); a finished collection is reused for `server.result_cache_ttl` (default:
//! the smallest period in use), so an HA pair of Prometheus servers costs what one costs.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;
use tracing::Instrument;

use super::{collect, JobFilter, Runtime};
use crate::cluster::View;
use crate::render::Snapshot;

type InFlight = Shared<BoxFuture<'static, Arc<Snapshot>>>;

/// A finished collection: when it started, the runtime (config and mappings) and membership it
/// was made under, its result. It is reused only while both are still the ones in force.
type LastCollection = (Instant, Arc<Runtime>, Arc<View>, Arc<Snapshot>);

/// How a scrape was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrapeSource {
    /// This scrape started the collection.
    Collected,
    /// This scrape joined a collection in flight.
    Joined,
    /// This scrape reused a recent result.
    Cached,
}

impl ScrapeSource {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeSource::Collected => "collected",
            ScrapeSource::Joined => "joined",
            ScrapeSource::Cached => "cached",
        }
    }
}

struct Inner {
    runtime: RwLock<Arc<Runtime>>,
    /// The collection in flight: its generation, its runtime, its result to come.
    in_flight: Mutex<Option<(u64, Arc<Runtime>, InFlight)>>,
    /// The last collection.
    last: Mutex<Option<LastCollection>>,
    generation: Mutex<u64>,
}

/// The collection entry point of `/metrics`.
#[derive(Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Collector {
    /// A collector over a runtime.
    pub fn new(runtime: Arc<Runtime>) -> Collector {
        Collector {
            inner: Arc::new(Inner {
                runtime: RwLock::new(runtime),
                in_flight: Mutex::new(None),
                last: Mutex::new(None),
                generation: Mutex::new(0),
            }),
        }
    }

    /// The current runtime.
    pub fn runtime(&self) -> Arc<Runtime> {
        match self.inner.runtime.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Swap in a new runtime; the next collection uses it, one in flight finishes on the old.
    pub fn replace_runtime(&self, runtime: Arc<Runtime>) {
        match self.inner.runtime.write() {
            Ok(mut r) => *r = runtime,
            Err(p) => *p.into_inner() = runtime,
        }
        *lock(&self.inner.last) = None;
    }

    /// The last finished collection and how long ago it started (for the admin API).
    pub fn last_collection(&self) -> Option<(Duration, Arc<Snapshot>)> {
        lock(&self.inner.last)
            .as_ref()
            .map(|(at, _, _, snap)| (at.elapsed(), snap.clone()))
    }

    fn cache_ttl(rt: &Runtime, snapshot: &Snapshot) -> Duration {
        match rt.config.server.result_cache_ttl {
            Some(t) => t,
            None => default_result_cache_ttl(snapshot.smallest_period_s),
        }
    }

    /// A snapshot for a scrape with this deadline, and the runtime it was collected with (whose
    /// mappings render it).
    pub async fn snapshot(&self, deadline: Instant) -> (Arc<Snapshot>, ScrapeSource, Arc<Runtime>) {
        let rt = self.runtime();
        let view = rt.membership.current();
        // A result collected under another config or membership covers another estate or share:
        // it is not reused.
        let current = |made_rt: &Arc<Runtime>, made_under: &Arc<View>| {
            Arc::ptr_eq(made_rt, &rt) && Arc::ptr_eq(made_under, &view)
        };
        if let Some((at, made_rt, made_under, snap)) = lock(&self.inner.last).clone() {
            if current(&made_rt, &made_under) && at.elapsed() < Self::cache_ttl(&rt, &snap) {
                rt.shared
                    .metrics
                    .scrapes
                    .with_label_values(&["cached"])
                    .inc();
                return (snap, ScrapeSource::Cached, rt);
            }
        }
        let (fut, source) = {
            let mut slot = lock(&self.inner.in_flight);
            match slot.as_ref() {
                Some((_, slot_rt, f)) if Arc::ptr_eq(slot_rt, &rt) => {
                    (f.clone(), ScrapeSource::Joined)
                }
                // Nothing in flight, or a collection of a replaced config: a new one.
                _ => {
                    let generation = {
                        let mut g = lock(&self.inner.generation);
                        *g += 1;
                        *g
                    };
                    let inner = self.inner.clone();
                    let rt2 = rt.clone();
                    let rt2_for_last = rt.clone();
                    let made_under = view.clone();
                    let handle = tokio::spawn(async move {
                        // Frees the slot however the task ends, a panic included.
                        let _clear = ClearSlot {
                            inner: inner.clone(),
                            generation,
                        };
                        let span = tracing::info_span!("collection", generation);
                        let started = Instant::now();
                        let snap = Arc::new(
                            collect(rt2, &JobFilter::default(), deadline)
                                .instrument(span)
                                .await,
                        );
                        let previous = lock(&inner.last).replace((
                            started,
                            rt2_for_last,
                            made_under,
                            snap.clone(),
                        ));
                        // The answers and points of this collection, and the result it
                        // replaces, are freed: their pages go back to the system.
                        drop(previous);
                        crate::memory::release_free_pages();
                        snap
                    });
                    let fut: InFlight = async move {
                        match handle.await {
                            Ok(s) => s,
                            Err(_) => Arc::new(Snapshot::default()),
                        }
                    }
                    .boxed()
                    .shared();
                    *slot = Some((generation, rt.clone(), fut.clone()));
                    (fut, ScrapeSource::Collected)
                }
            }
        };
        rt.shared
            .metrics
            .scrapes
            .with_label_values(&[source.as_str()])
            .inc();
        if source == ScrapeSource::Collected {
            // The collection itself stops at this scrape's deadline.
            return (fut.await, source, rt);
        }
        // A joiner may have a shorter deadline than the collection it joined: it waits only
        // until its own, then answers with the previous result (or nothing) rather than late.
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(snap) => (snap, source, rt),
            Err(_) => {
                let previous = lock(&self.inner.last)
                    .clone()
                    .filter(|(_, made_rt, made_under, _)| current(made_rt, made_under))
                    .map(|(_, _, _, s)| s);
                (previous.unwrap_or_default(), source, rt)
            }
        }
    }
}

/// The default reuse time of a collection: the smallest period in use, less a guard of a quarter
/// of it (at most 5 s). Ages are counted from the collection's start, so a single Prometheus
/// scraping once per period always gets a fresh collection, while the second server of an HA
/// pair, scraping at another offset within the period, reuses the first one's.
pub fn default_result_cache_ttl(smallest_period_s: u64) -> Duration {
    let period = Duration::from_secs(smallest_period_s);
    period - (period / 4).min(Duration::from_secs(5))
}

/// Clears the in-flight slot of its generation when dropped.
struct ClearSlot {
    inner: Arc<Inner>,
    generation: u64,
}

impl Drop for ClearSlot {
    fn drop(&mut self) {
        let mut slot = lock(&self.inner.in_flight);
        if slot.as_ref().is_some_and(|(g, _, _)| *g == self.generation) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cache_time_stays_below_the_period() {
        assert_eq!(default_result_cache_ttl(60), Duration::from_secs(55));
        assert_eq!(default_result_cache_ttl(300), Duration::from_secs(295));
        assert_eq!(default_result_cache_ttl(10), Duration::from_millis(7500));
        assert_eq!(default_result_cache_ttl(0), Duration::ZERO);
    }
}
