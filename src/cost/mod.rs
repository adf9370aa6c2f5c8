//! What the configured estate costs in cloud API calls, for `plan` and `shard`. The counts are
//! measured, not estimated: the estate is collected once cold (discovery, metadata) and then
//! again warm, exactly as a replica would, and the calls each collection made are read from the
//! request counters. Estimating instead would mean a second copy of every cloud's batching
//! rules (AWS packs 500 queries across products, Aliyun pages by rows, Tencent by instances),
//! bound to drift from the code that really makes the calls.

pub mod discovery_minimum;
pub mod minimum;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::cluster::owner;
use crate::render::Snapshot;
use crate::scrape::{all_jobs, collect_jobs, Job, JobFilter, Runtime};

/// Calls per cloud and API.
pub type CallCounts = BTreeMap<String, BTreeMap<String, u64>>;

/// Seconds in the month the cost is quoted for (30 days).
const MONTH_S: u64 = 30 * 24 * 3600;

fn total(c: &CallCounts) -> u64 {
    c.values().flat_map(|m| m.values()).sum()
}

fn delta(
    before: &BTreeMap<(String, String), u64>,
    after: &BTreeMap<(String, String), u64>,
) -> CallCounts {
    let mut out = CallCounts::new();
    for ((cloud, api), n) in after {
        let d = n.saturating_sub(
            before
                .get(&(cloud.clone(), api.clone()))
                .copied()
                .unwrap_or(0),
        );
        if d > 0 {
            out.entry(cloud.clone()).or_default().insert(api.clone(), d);
        }
    }
    out
}

/// Collect `jobs` once and return the calls it made and what it collected.
async fn measure(rt: &Arc<Runtime>, jobs: Vec<Job>) -> (CallCounts, Snapshot) {
    let before = rt.shared.metrics.request_counts();
    let started = Instant::now();
    let deadline = started + rt.config.server.scrape_timeout;
    let snap = collect_jobs(rt.clone(), jobs, Vec::new(), deadline, started).await;
    (delta(&before, &rt.shared.metrics.request_counts()), snap)
}

fn failures(snap: &Snapshot) -> Vec<String> {
    snap.jobs
        .iter()
        .filter(|j| !j.success)
        .map(|j| {
            format!(
                "{} {} {} {}: {}",
                j.cloud,
                j.account_id,
                j.region,
                j.product,
                j.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

fn listing_failure(j: &crate::render::JobResult) -> String {
    format!(
        "{} {}: listing regions: {}",
        j.cloud,
        j.account_id,
        j.error.as_ref().map(|e| e.to_string()).unwrap_or_default()
    )
}

/// The cost of the whole estate on one replica.
pub struct EstatePlan {
    /// Every job.
    pub jobs: Vec<Job>,
    /// Calls of the first collection: region lists, discovery, metadata and monitor data.
    pub cold: CallCounts,
    /// Calls of a collection with warm caches: what every scrape costs.
    pub per_scrape: CallCounts,
    /// Jobs that failed (their calls are missing from the counts).
    pub failed: Vec<String>,
}

/// Measure the estate's cost.
pub async fn plan_estate(rt: &Arc<Runtime>) -> EstatePlan {
    let before = rt.shared.metrics.request_counts();
    let deadline = Instant::now() + rt.config.server.scrape_timeout;
    let (jobs, listing_failed) = all_jobs(rt, &JobFilter::default(), deadline).await;
    let listed = delta(&before, &rt.shared.metrics.request_counts());
    let (mut cold, first) = measure(rt, jobs.clone()).await;
    for (cloud, apis) in listed {
        for (api, n) in apis {
            *cold
                .entry(cloud.clone())
                .or_default()
                .entry(api)
                .or_insert(0) += n;
        }
    }
    let (per_scrape, second) = measure(rt, jobs.clone()).await;
    let mut failed = failures(&first);
    failed.extend(failures(&second));
    failed.extend(listing_failed.iter().map(listing_failure));
    failed.sort();
    failed.dedup();
    EstatePlan {
        jobs,
        cold,
        per_scrape,
        failed,
    }
}

/// The refresh calls of a plan (cold minus warm): discovery and metadata, made again at most
/// once per discovery TTL.
fn refresh_calls(p: &EstatePlan) -> CallCounts {
    let mut out = CallCounts::new();
    for (cloud, apis) in &p.cold {
        for (api, n) in apis {
            let warm = p
                .per_scrape
                .get(cloud)
                .and_then(|m| m.get(api))
                .copied()
                .unwrap_or(0);
            if *n > warm {
                out.entry(cloud.clone())
                    .or_default()
                    .insert(api.clone(), n - warm);
            }
        }
    }
    out
}

/// Calls a month: every scrape's calls, plus the refresh calls once per discovery TTL (an upper
/// bound: metadata is cached longer).
fn monthly(p: &EstatePlan, scrape_interval: Duration, discovery_ttl: Duration) -> CallCounts {
    let scrapes = MONTH_S / scrape_interval.as_secs().max(1);
    let refreshes = MONTH_S / discovery_ttl.as_secs().max(1);
    let refresh = refresh_calls(p);
    let mut out = CallCounts::new();
    for (counts, times) in [(&p.per_scrape, scrapes), (&refresh, refreshes)] {
        for (cloud, apis) in counts {
            for (api, n) in apis {
                *out.entry(cloud.clone())
                    .or_default()
                    .entry(api.clone())
                    .or_insert(0) += n * times;
            }
        }
    }
    out
}

fn jobs_by_cloud(jobs: &[Job]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for j in jobs {
        *out.entry(j.cloud.as_str().to_string()).or_insert(0) += 1;
    }
    out
}

/// `plan --json`.
pub fn plan_json(p: &EstatePlan, scrape_interval: Duration, discovery_ttl: Duration) -> Value {
    let month = monthly(p, scrape_interval, discovery_ttl);
    json!({
        "jobs": p.jobs.len(),
        "jobs_by_cloud": jobs_by_cloud(&p.jobs),
        "scrape_interval_s": scrape_interval.as_secs(),
        "discovery_ttl_s": discovery_ttl.as_secs(),
        "calls_per_scrape": p.per_scrape,
        "calls_per_scrape_total": total(&p.per_scrape),
        "refresh_calls": refresh_calls(p),
        "refresh_calls_total": total(&refresh_calls(p)),
        "calls_per_month": month,
        "calls_per_month_total": total(&month),
        "failed": p.failed,
    })
}

/// `plan` as a table.
pub fn plan_text(p: &EstatePlan, scrape_interval: Duration, discovery_ttl: Duration) -> String {
    let refresh = refresh_calls(p);
    let month = monthly(p, scrape_interval, discovery_ttl);
    let by_cloud: Vec<String> = jobs_by_cloud(&p.jobs)
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    let mut out = format!(
        "jobs: {} ({})\nscrape interval {}s: {} scrapes a month; discovery refreshed every {}s: {} times a month\n\n",
        p.jobs.len(),
        by_cloud.join(", "),
        scrape_interval.as_secs(),
        MONTH_S / scrape_interval.as_secs().max(1),
        discovery_ttl.as_secs(),
        MONTH_S / discovery_ttl.as_secs().max(1),
    );
    out.push_str(&format!(
        "{:<8} {:<36} {:>10} {:>10} {:>14}\n",
        "CLOUD", "API", "PER SCRAPE", "REFRESH", "PER MONTH"
    ));
    for (cloud, apis) in &month {
        for (api, m) in apis {
            let get = |c: &CallCounts| c.get(cloud).and_then(|a| a.get(api)).copied().unwrap_or(0);
            out.push_str(&format!(
                "{:<8} {:<36} {:>10} {:>10} {:>14}\n",
                cloud,
                api,
                get(&p.per_scrape),
                get(&refresh),
                m
            ));
        }
    }
    out.push_str(&format!(
        "{:<8} {:<36} {:>10} {:>10} {:>14}\n",
        "total",
        "",
        total(&p.per_scrape),
        total(&refresh),
        total(&month)
    ));
    for f in &p.failed {
        out.push_str(&format!("failed (its calls are missing above): {f}\n"));
    }
    out
}

/// One member's share of the estate.
pub struct MemberShare {
    /// Member name.
    pub name: String,
    /// Whether it is this replica.
    pub is_self: bool,
    /// The jobs it owns.
    pub jobs: Vec<Job>,
    /// The calls each of its scrapes makes (caches warm).
    pub per_scrape: CallCounts,
}

/// Split the estate over `members` and measure each member's calls per scrape: the estate is
/// collected once cold, then each member's jobs once warm, one member after the other.
pub async fn shard_estate(
    rt: &Arc<Runtime>,
    members: &[String],
    self_name: Option<&str>,
) -> (Vec<MemberShare>, Vec<String>) {
    let deadline = Instant::now() + rt.config.server.scrape_timeout;
    let (jobs, listing_failed) = all_jobs(rt, &JobFilter::default(), deadline).await;
    let (_, cold) = measure(rt, jobs.clone()).await;
    let mut failed = failures(&cold);
    failed.extend(listing_failed.iter().map(listing_failure));
    let mut shares = Vec::new();
    for m in members {
        let mine: Vec<Job> = jobs
            .iter()
            .filter(|j| owner(&j.key, members) == Some(m.as_str()))
            .cloned()
            .collect();
        let (per_scrape, snap) = measure(rt, mine.clone()).await;
        failed.extend(failures(&snap));
        shares.push(MemberShare {
            name: m.clone(),
            is_self: self_name == Some(m.as_str()),
            jobs: mine,
            per_scrape,
        });
    }
    failed.sort();
    failed.dedup();
    (shares, failed)
}

fn job_json(j: &Job) -> Value {
    json!({
        "cloud": j.cloud, "account_id": j.account_id, "region": j.region,
        "product": j.product, "key": j.key,
    })
}

/// `shard --json`.
pub fn shard_json(shares: &[MemberShare], failed: &[String], shard_by: &str) -> Value {
    json!({
        "shard_by": shard_by,
        "members": shares.iter().map(|s| json!({
            "name": s.name,
            "self": s.is_self,
            "jobs": s.jobs.iter().map(job_json).collect::<Vec<_>>(),
            "calls_per_scrape": s.per_scrape,
            "calls_per_scrape_total": total(&s.per_scrape),
        })).collect::<Vec<_>>(),
        "failed": failed,
    })
}

/// `shard` as text.
pub fn shard_text(shares: &[MemberShare], failed: &[String], shard_by: &str) -> String {
    let mut out = format!("{} members, shard_by {shard_by}\n", shares.len());
    for s in shares {
        out.push_str(&format!(
            "\nmember {}{}: {} jobs, {} calls per scrape\n",
            s.name,
            if s.is_self { " (self)" } else { "" },
            s.jobs.len(),
            total(&s.per_scrape)
        ));
        for j in &s.jobs {
            out.push_str(&format!(
                "  job   {:<8} {:<34} {:<16} {}\n",
                j.cloud, j.account_id, j.region, j.product
            ));
        }
        for (cloud, apis) in &s.per_scrape {
            for (api, n) in apis {
                out.push_str(&format!("  calls {cloud:<8} {api:<34} {n}\n"));
            }
        }
    }
    for f in failed {
        out.push_str(&format!("failed (its calls are missing above): {f}\n"));
    }
    out
}
