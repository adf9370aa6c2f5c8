//! The scrape pipeline: plan the jobs (account × region × product) this replica owns, discover
//! their resources through the TTL cache, fetch monitor data in the largest batches the cloud
//! allows, and map points to samples — all under the scrape's deadline. Jobs that do not finish
//! in time report `multicloud_scrape_success 0`; one failing job never fails the others.
//! [`Collector`] puts single-flight and the short result cache in front of it.

mod collector;

pub use collector::{Collector, ScrapeSource};

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::time::Instant;
use tracing::{debug, info_span, warn, Instrument};

use crate::cloud::http::Shared;
use crate::cloud::{
    CallContext, Cloud, CloudError, ErrorClass, FetchItem, FetchOutcome, FetchPart, Product,
    Provider, Resource,
};
use crate::cluster::{shard_key, LiveMembership};
use crate::config::Config;
use crate::discovery::{DiscoveryCache, TtlCache};
use crate::mapping::MappingSet;
use crate::render::{JobResult, Sample, Snapshot};
use crate::server::auth::BasicAuth;

/// Long-lived state built from one config: what a collection needs.
pub struct Runtime {
    /// The validated config.
    pub config: Arc<Config>,
    /// The mappings.
    pub mappings: Arc<MappingSet>,
    /// One provider per account, same order as `config.accounts`; a reload keeps the provider
    /// (and its metadata caches and credentials) of an account whose settings did not change.
    pub providers: Vec<Arc<Provider>>,
    /// Discovered resources per (account, region, product).
    pub discovery: Arc<DiscoveryCache>,
    /// Region lists of accounts with `regions = ["*"]`, by [`Runtime::account_key`].
    pub regions: Arc<TtlCache<String, Arc<Vec<String>>>>,
    /// Per account (same order as `config.accounts`), the epoch its cache entries are filed
    /// under: kept by a reload when the account is unchanged, new otherwise, so entries made
    /// with old settings (even by a collection still finishing on the old runtime) are never
    /// served to the new one.
    pub account_epochs: Vec<u64>,
    /// HTTP client, limiters, self-metrics, clock.
    pub shared: Shared,
    /// Shard membership, kept current off the scrape path.
    pub membership: Arc<LiveMembership>,
    /// BasicAuth of the admin API; `None` when the admin API is off.
    pub admin: Option<Arc<BasicAuth>>,
}

/// Epochs of account cache entries, unique in the process.
static NEXT_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn new_epoch() -> u64 {
    NEXT_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What a reload made obsolete in the caches and limiters the old and new runtimes share:
/// dropped once the new runtime is in force ([`Stale::drop_now`]), not before, so a reload that
/// fails or is abandoned changes nothing.
pub struct Stale {
    discovery: Arc<DiscoveryCache>,
    regions: Arc<TtlCache<String, Arc<Vec<String>>>>,
    limiters: Arc<crate::cloud::limiter::Limiters>,
    keys: HashSet<String>,
    configured: HashSet<(Cloud, String)>,
}

impl Stale {
    /// Drop the cache entries of removed and changed accounts and the limiters of removed ones.
    pub fn drop_now(self) {
        self.discovery
            .retain(|(account, _, _)| self.keys.contains(account));
        self.regions.retain(|account| self.keys.contains(account));
        let configured = &self.configured;
        self.limiters
            .retain_accounts(&|cloud, account| configured.contains(&(cloud, account.to_string())));
    }
}

fn admin_of(config: &Config) -> Option<Arc<BasicAuth>> {
    let a = &config.server.admin_auth;
    a.enabled.then(|| Arc::new(BasicAuth::new(a.users.clone())))
}

impl Runtime {
    /// Build the runtime of a config; fails when its membership source cannot be set up.
    pub fn new(
        config: Arc<Config>,
        mappings: Arc<MappingSet>,
        shared: Shared,
    ) -> Result<Runtime, String> {
        let providers = config
            .accounts
            .iter()
            .map(|a| Arc::new(Provider::new(a, &shared, config.server.discovery_ttl)))
            .collect();
        let ttl = config.server.discovery_ttl;
        let membership = Arc::new(LiveMembership::new(
            &config.cluster,
            shared.metrics.clone(),
        )?);
        let account_epochs = config.accounts.iter().map(|_| new_epoch()).collect();
        Ok(Runtime {
            membership,
            account_epochs,
            admin: admin_of(&config),
            discovery: Arc::new(TtlCache::new("discovery", 100_000, ttl)),
            regions: Arc::new(TtlCache::new("regions", 10_000, ttl)),
            providers,
            config,
            mappings,
            shared,
        })
    }

    /// The runtime of a reloaded config, keeping what is still valid: the HTTP client and the
    /// limiters, the provider and cached resources of every account whose settings are
    /// unchanged (when the discovery TTL and HTTP limits are unchanged too), and the membership
    /// when `[cluster]` is unchanged. An account that is new or changed (credentials, endpoints,
    /// regions…) starts afresh. Nothing shared is changed here: the entries made obsolete are
    /// dropped by the returned [`Stale`] once the new runtime is in force.
    pub fn reloaded(
        &self,
        config: Arc<Config>,
        mappings: Arc<MappingSet>,
    ) -> Result<(Runtime, Stale), String> {
        let (old, new) = (&self.config.server, &config.server);
        let same_http = old.request_timeout == new.request_timeout
            && old.max_response_bytes == new.max_response_bytes;
        let shared = if same_http {
            self.shared.clone()
        } else {
            self.shared
                .with_limits(new.max_response_bytes, new.request_timeout)?
        };
        let kept_ttl = old.discovery_ttl == new.discovery_ttl && same_http;
        let previous = |a: &crate::config::AccountConfig| {
            self.config
                .accounts
                .iter()
                .position(|o| o == a)
                .filter(|_| kept_ttl)
        };
        let providers = config
            .accounts
            .iter()
            .map(|a| match previous(a) {
                Some(i) => self.providers[i].clone(),
                None => Arc::new(Provider::new(a, &shared, new.discovery_ttl)),
            })
            .collect();
        let account_epochs: Vec<u64> = config
            .accounts
            .iter()
            .map(|a| match previous(a) {
                Some(i) => self.account_epochs[i],
                None => new_epoch(),
            })
            .collect();
        let (discovery, regions) = if kept_ttl {
            (self.discovery.clone(), self.regions.clone())
        } else {
            let ttl = new.discovery_ttl;
            (
                Arc::new(TtlCache::new("discovery", 100_000, ttl)),
                Arc::new(TtlCache::new("regions", 10_000, ttl)),
            )
        };
        let admin = if old.admin_auth == new.admin_auth {
            self.admin.clone()
        } else {
            admin_of(&config)
        };
        // The last step that can fail.
        let membership = if self.config.cluster == config.cluster {
            self.membership.clone()
        } else {
            Arc::new(LiveMembership::new(
                &config.cluster,
                shared.metrics.clone(),
            )?)
        };
        let keys = config
            .accounts
            .iter()
            .zip(&account_epochs)
            .map(|(a, e)| epoch_key(a.cloud, &a.account_id, *e))
            .collect();
        let stale = Stale {
            discovery: discovery.clone(),
            regions: regions.clone(),
            limiters: shared.limiters.clone(),
            keys,
            configured: config
                .accounts
                .iter()
                .map(|a| (a.cloud, a.account_id.clone()))
                .collect(),
        };
        let rt = Runtime {
            membership,
            account_epochs,
            admin,
            discovery,
            regions,
            providers,
            config,
            mappings,
            shared,
        };
        Ok((rt, stale))
    }

    /// The key of an account's entries in the caches that outlive a reload.
    pub fn account_key(&self, account: usize) -> String {
        let a = &self.config.accounts[account];
        epoch_key(a.cloud, &a.account_id, self.account_epochs[account])
    }

    fn call_context(&self, deadline: Instant) -> CallContext {
        let s = &self.config.server;
        CallContext {
            deadline,
            metric_concurrency: s.metric_concurrency,
            scrape_interval_s: s.scrape_interval.as_secs().max(1),
            period_fallback_s: s.period_fallback.as_secs().max(1),
            ingestion_delay_s: s.ingestion_delay.as_secs(),
        }
    }
}

/// `cloud|account_id#epoch`.
fn epoch_key(cloud: Cloud, account_id: &str, epoch: u64) -> String {
    format!("{cloud}|{account_id}#{epoch}")
}

/// Restricts a collection (CLI `once`/`discover` flags); empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub cloud: Option<Cloud>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub product: Option<Product>,
}

/// One unit of work.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Job {
    /// Index of the account in the config.
    pub account: usize,
    /// Cloud.
    pub cloud: Cloud,
    /// Account ID.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// Product.
    pub product: Product,
    /// Shard key.
    pub key: String,
}

impl Job {
    fn failed(&self, error: CloudError, duration: Duration) -> JobResult {
        JobResult {
            cloud: self.cloud,
            account_id: self.account_id.clone(),
            region: self.region.clone(),
            product: self.product,
            success: false,
            duration,
            resources: Arc::new(Vec::new()),
            samples: Vec::new(),
            error: Some(error),
            calls: 0,
            min_period_s: 0,
        }
    }
}

/// The jobs this replica owns under the membership in force, and results for accounts whose
/// region list failed.
pub async fn plan(
    rt: &Runtime,
    filter: &JobFilter,
    deadline: Instant,
) -> (Vec<Job>, Vec<JobResult>) {
    let view = rt.membership.current();
    let (jobs, failed) = all_jobs(rt, filter, deadline).await;
    let owned = jobs
        .into_iter()
        .filter(|j| view.membership.owns(&j.key))
        .collect();
    // Every replica lists an account's regions (one call per discovery TTL), but a failed
    // listing is reported by one replica only, the owner of the account's region-list key, so
    // the replicas' series never overlap.
    let failed = failed
        .into_iter()
        .filter(|f| view.membership.owns(&region_list_key(&f.account_id)))
        .collect();
    (owned, failed)
}

/// The shard key of an account's region listing (`regions = ["*"]`).
pub fn region_list_key(account_id: &str) -> String {
    format!("{account_id}|*")
}

/// Every job of the configured estate, whoever owns it, and results for accounts whose region
/// list failed.
pub async fn all_jobs(
    rt: &Runtime,
    filter: &JobFilter,
    deadline: Instant,
) -> (Vec<Job>, Vec<JobResult>) {
    let mut jobs = Vec::new();
    let mut failed = Vec::new();
    for (i, account) in rt.config.accounts.iter().enumerate() {
        if filter.cloud.is_some_and(|c| c != account.cloud)
            || filter
                .account
                .as_ref()
                .is_some_and(|a| a != &account.account_id)
        {
            continue;
        }
        let regions: Vec<String> = if account.all_regions() {
            let provider = &rt.providers[i];
            let ctx = rt.call_context(deadline);
            match rt
                .regions
                .get_or_fetch(rt.account_key(i), || async {
                    provider.regions(&ctx).await.map(Arc::new)
                })
                .await
            {
                Ok(r) => r.to_vec(),
                Err(e) => {
                    for product in &account.products {
                        let job = Job {
                            account: i,
                            cloud: account.cloud,
                            account_id: account.account_id.clone(),
                            region: "*".into(),
                            product: *product,
                            key: String::new(),
                        };
                        failed.push(job.failed(e.clone(), Duration::ZERO));
                    }
                    continue;
                }
            }
        } else {
            account.regions.clone()
        };
        for region in regions {
            if filter.region.as_ref().is_some_and(|r| r != &region) {
                continue;
            }
            for product in &account.products {
                if filter.product.is_some_and(|p| p != *product) {
                    continue;
                }
                let namespace = rt
                    .mappings
                    .products
                    .get(&(*product, account.cloud))
                    .map(|s| s.namespace.clone())
                    .unwrap_or_else(|| product.as_str().to_string());
                let key = shard_key(
                    rt.config.cluster.shard_by,
                    &account.account_id,
                    &region,
                    &namespace,
                );
                jobs.push(Job {
                    account: i,
                    cloud: account.cloud,
                    account_id: account.account_id.clone(),
                    region: region.clone(),
                    product: *product,
                    key,
                });
            }
        }
    }
    jobs.sort();
    (jobs, failed)
}

/// Discover (through the cache) the resources of a job.
pub async fn discover_job(
    rt: &Runtime,
    job: &Job,
    deadline: Instant,
) -> Result<crate::discovery::Cached<Arc<Vec<Resource>>>, CloudError> {
    let provider = &rt.providers[job.account];
    let ctx = rt.call_context(deadline);
    let key = (rt.account_key(job.account), job.region.clone(), job.product);
    rt.discovery
        .get_or_fetch_cached(key, || async {
            match provider.discover(&ctx, &job.region, job.product).await {
                Ok(r) => Ok(Arc::new(r)),
                // A region where the product does not exist has nothing to collect.
                Err(e) if e.class == ErrorClass::RegionSkip => {
                    debug!(cloud = %job.cloud, account = %job.account_id, region = %job.region, product = %job.product, "region skipped: {e}");
                    Ok(Arc::new(Vec::new()))
                }
                Err(e) => Err(e),
            }
        })
        .await
}

/// A job's discovered resources as the cache serves them.
type CachedResources = crate::discovery::Cached<Arc<Vec<Resource>>>;

/// The fetch items of a job: every source of its product's families on its cloud.
fn fetch_items(rt: &Runtime, job: &Job) -> Vec<FetchItem> {
    let mut items = Vec::new();
    for (idx, fam) in rt.mappings.families.iter().enumerate() {
        if fam.product != job.product {
            continue;
        }
        for src in fam.sources.get(&job.cloud).into_iter().flatten() {
            items.push(FetchItem {
                family: idx,
                source: src.clone(),
            });
        }
    }
    items
}

/// Run one job to its result.
pub async fn run_job(rt: &Runtime, job: &Job, deadline: Instant) -> JobResult {
    let started = Instant::now();
    let cached = match discover_job(rt, job, deadline).await {
        Ok(c) => c,
        Err(e) => {
            return job.failed(e, started.elapsed());
        }
    };
    let items = fetch_items(rt, job);
    let outcome = match rt.mappings.products.get(&(job.product, job.cloud)) {
        Some(spec) => {
            let ctx = rt.call_context(deadline);
            rt.providers[job.account]
                .fetch(&ctx, &job.region, spec, &items, &cached.value)
                .await
        }
        None => FetchOutcome::default(),
    };
    job_result(rt, job, cached, &items, outcome, started)
}

/// Run the jobs of one (account, region) together, for a cloud whose monitor API batches across
/// products (AWS GetMetricData: 500 queries a call whatever the namespace): discovery per job,
/// then one fetch for all of them, then a result per job.
pub async fn run_region(rt: &Runtime, jobs: Vec<Job>, deadline: Instant) -> Vec<JobResult> {
    let started = Instant::now();
    let Some(first) = jobs.first() else {
        return Vec::new();
    };
    let (account, region) = (first.account, first.region.clone());
    let discovered: Vec<(Job, Result<CachedResources, CloudError>)> = stream::iter(jobs)
        .map(|job| async move {
            let r = discover_job(rt, &job, deadline).await;
            (job, r)
        })
        .buffer_unordered(rt.config.server.product_concurrency.max(1))
        .collect()
        .await;
    let mut results = Vec::new();
    let mut ready = Vec::new();
    for (job, r) in discovered {
        match r {
            Ok(cached) => {
                let items = fetch_items(rt, &job);
                ready.push((job, cached, items));
            }
            Err(e) => results.push(job.failed(e, started.elapsed())),
        }
    }
    let parts: Vec<FetchPart<'_>> = ready
        .iter()
        .filter_map(|(job, cached, items)| {
            Some(FetchPart {
                spec: rt.mappings.products.get(&(job.product, job.cloud))?,
                items,
                resources: &cached.value,
            })
        })
        .collect();
    // The region answers as a whole, so its calls end a little before the scrape deadline:
    // a call that hangs then fails alone, and the jobs of the calls that finished still report.
    let ctx = rt.call_context(region_deadline(deadline));
    let mut outcomes = rt.providers[account]
        .fetch_parts(&ctx, &region, &parts)
        .await
        .into_iter();
    for (job, cached, items) in &ready {
        let outcome = if rt.mappings.products.contains_key(&(job.product, job.cloud)) {
            outcomes.next().unwrap_or_default()
        } else {
            FetchOutcome::default()
        };
        results.push(job_result(rt, job, cached.clone(), items, outcome, started));
    }
    results
}

/// The deadline of a region's batched calls: a tenth of the time left (at most a second) before
/// the scrape's, so the region's results are assembled before the scrape answers.
fn region_deadline(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - (left / 10).min(Duration::from_secs(1))
}

/// Map a job's fetched points to samples and its result.
fn job_result(
    rt: &Runtime,
    job: &Job,
    cached: CachedResources,
    items: &[FetchItem],
    outcome: FetchOutcome,
    started: Instant,
) -> JobResult {
    let resources = cached.value.clone();
    let mut first_error = cached.refresh_error.clone();
    if let Some(e) = &first_error {
        debug!(error = %e, "discovery refresh failed; serving the previous resources");
    }
    // A point makes at most one sample: sized once, not grown by doubling.
    let mut samples = Vec::with_capacity(outcome.points.len());
    let mut min_period_s = 0;
    let calls = outcome.calls;
    if let Some(e) = outcome.errors.first() {
        debug!(failed_calls = outcome.errors.len(), error = %e, "monitor calls failed");
        first_error.get_or_insert_with(|| e.clone());
    }
    // An item that names all its family's own labels itself (or whose family has none) gives
    // every sample the same values: made once per item, shared.
    let shared_extra: Vec<Option<Arc<[Box<str>]>>> = items
        .iter()
        .map(|item| {
            let labels = &rt.mappings.families[item.family].labels;
            let own = |l: &String| item.source.labels.get(l).map(|v| Box::from(v.as_str()));
            labels.iter().map(own).collect()
        })
        .collect();
    for p in outcome.points {
        if min_period_s == 0 || p.period_s < min_period_s {
            min_period_s = p.period_s;
        }
        let item = &items[p.item];
        let fam = &rt.mappings.families[item.family];
        // The fetch was given these resources: its points name them by index.
        let resource = p.resource;
        if resource as usize >= resources.len() {
            continue;
        }
        // The common labels come from the job and the resource when the exposition is
        // written; a sample keeps only what is its own.
        let extra: Arc<[Box<str>]> = if let Some(shared) = &shared_extra[p.item] {
            shared.clone()
        } else {
            fam.labels
                .iter()
                .map(|l| {
                    item.source
                        .labels
                        .get(l)
                        .map(String::as_str)
                        .or_else(|| {
                            p.dimensions
                                .iter()
                                .find(|(k, _)| k == l)
                                .map(|(_, v)| v.as_str())
                        })
                        .unwrap_or_default()
                        .into()
                })
                .collect()
        };
        samples.push(Sample {
            family: item.family,
            resource,
            extra,
            value: item.source.transform(p.value, p.period_s),
        });
    }
    // One series per (family, labels): the first of duplicates is kept (the sort is stable),
    // never exported twice.
    samples.sort_by(|a, b| (a.family, a.resource, &a.extra).cmp(&(b.family, b.resource, &b.extra)));
    samples.dedup_by(|later, first| {
        (later.family, later.resource, &later.extra) == (first.family, first.resource, &first.extra)
    });
    JobResult {
        cloud: job.cloud,
        account_id: job.account_id.clone(),
        region: job.region.clone(),
        product: job.product,
        success: first_error.is_none(),
        duration: started.elapsed(),
        resources,
        samples,
        error: first_error,
        calls,
        min_period_s,
    }
}

/// Run every owned job under the deadline; unfinished jobs are reported as failed.
pub async fn collect(rt: Arc<Runtime>, filter: &JobFilter, deadline: Instant) -> Snapshot {
    let started = Instant::now();
    rt.shared
        .metrics
        .scrape_timeout
        .set(deadline.saturating_duration_since(started).as_secs_f64());
    let (jobs, failed) = plan(&rt, filter, deadline).await;
    rt.shared.metrics.shard_owned_keys.set(jobs.len() as i64);
    collect_jobs(rt, jobs, failed, deadline, started).await
}

/// Run the given jobs under the deadline (`failed` are results already known); unfinished jobs
/// are reported as failed.
pub async fn collect_jobs(
    rt: Arc<Runtime>,
    jobs: Vec<Job>,
    mut failed: Vec<JobResult>,
    deadline: Instant,
    started: Instant,
) -> Snapshot {
    let done: Arc<Mutex<Vec<JobResult>>> = Arc::new(Mutex::new(Vec::new()));
    let mut by_account: BTreeMap<usize, BTreeMap<String, Vec<Job>>> = BTreeMap::new();
    for j in &jobs {
        by_account
            .entry(j.account)
            .or_default()
            .entry(j.region.clone())
            .or_default()
            .push(j.clone());
    }
    let s = &rt.config.server;
    let (region_conc, product_conc) = (s.region_concurrency, s.product_concurrency);
    let work = futures_util::future::join_all(by_account.into_values().map(|regions| {
        let rt = rt.clone();
        let done = done.clone();
        async move {
            stream::iter(regions.into_values())
                .map(|region_jobs| {
                    let rt = rt.clone();
                    let done = done.clone();
                    async move {
                        let batched = region_jobs
                            .first()
                            .is_some_and(|j| rt.providers[j.account].batches_across_products());
                        if batched {
                            let span = info_span!(
                                "region",
                                account = %region_jobs[0].account_id,
                                region = %region_jobs[0].region
                            );
                            let results = run_region(&rt, region_jobs, deadline)
                                .instrument(span)
                                .await;
                            if let Ok(mut d) = done.lock() {
                                d.extend(results);
                            }
                            return Vec::new();
                        }
                        stream::iter(region_jobs)
                            .map(|job| {
                                let rt = rt.clone();
                                let done = done.clone();
                                async move {
                                    let span = info_span!(
                                        "job",
                                        cloud = %job.cloud,
                                        account = %job.account_id,
                                        region = %job.region,
                                        product = %job.product
                                    );
                                    let r = run_job(&rt, &job, deadline).instrument(span).await;
                                    if let Ok(mut d) = done.lock() {
                                        d.push(r);
                                    }
                                }
                            })
                            .buffer_unordered(product_conc)
                            .collect::<Vec<()>>()
                            .await
                    }
                })
                .buffer_unordered(region_conc)
                .collect::<Vec<_>>()
                .await
        }
    }));
    let timed_out = tokio::time::timeout_at(deadline, work).await.is_err();
    // Taken, not copied (the unfinished jobs were cancelled with `work`).
    let mut results = match done.lock() {
        Ok(mut d) => std::mem::take(&mut *d),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    if timed_out {
        let finished: HashSet<(String, String, Product)> = results
            .iter()
            .map(|r| (r.account_id.clone(), r.region.clone(), r.product))
            .collect();
        let mut unfinished = 0;
        for j in &jobs {
            if !finished.contains(&(j.account_id.clone(), j.region.clone(), j.product)) {
                unfinished += 1;
                let e = CloudError {
                    class: ErrorClass::Timeout,
                    cloud: j.cloud,
                    api: "scrape".into(),
                    region: j.region.clone(),
                    http_status: None,
                    code: None,
                    message: "the scrape deadline passed before the job finished".into(),
                    request_id: None,
                };
                results.push(j.failed(e, started.elapsed()));
            }
        }
        warn!(
            unfinished,
            jobs = jobs.len(),
            "scrape deadline passed; answering with the jobs that finished"
        );
    }
    results.append(&mut failed);
    log_failures(&results);
    results.sort_by(|a, b| {
        (a.cloud, &a.account_id, &a.region, a.product).cmp(&(
            b.cloud,
            &b.account_id,
            &b.region,
            b.product,
        ))
    });
    let smallest_period_s = results
        .iter()
        .map(|r| r.min_period_s)
        .filter(|p| *p > 0)
        .min()
        .unwrap_or(0);
    let duration = started.elapsed();
    rt.shared
        .metrics
        .collection_duration
        .observe(duration.as_secs_f64());
    update_cache_metrics(&rt, &results);
    Snapshot {
        jobs: results,
        duration,
        smallest_period_s,
    }
}

/// Each failed job once per scrape, with its error class, the API, the cloud's error code and
/// request id (for the cloud's support). Auth errors are the exception: one line per account,
/// with the number of jobs, since an expired key fails every job of the account at once and a
/// line per region and product would bury everything else.
fn log_failures(results: &[JobResult]) {
    let mut auth: BTreeMap<(Cloud, String), (usize, &CloudError)> = BTreeMap::new();
    for r in results {
        let Some(e) = &r.error else {
            continue;
        };
        if e.class == ErrorClass::AuthError {
            auth.entry((r.cloud, r.account_id.clone()))
                .or_insert((0, e))
                .0 += 1;
            continue;
        }
        warn!(
            cloud = %r.cloud,
            account = %r.account_id,
            region = %r.region,
            product = %r.product,
            class = %e.class,
            api = %e.api,
            code = e.code.as_deref().unwrap_or(""),
            request_id = e.request_id.as_deref().unwrap_or(""),
            error = %e,
            "job failed"
        );
    }
    for ((cloud, account), (jobs, first)) in auth {
        warn!(
            %cloud,
            %account,
            class = %first.class,
            jobs,
            api = %first.api,
            code = first.code.as_deref().unwrap_or(""),
            request_id = first.request_id.as_deref().unwrap_or(""),
            error = %first,
            "jobs failed: the account's credentials were refused"
        );
    }
}

fn update_cache_metrics(rt: &Runtime, results: &[JobResult]) {
    let m = &rt.shared.metrics;
    m.cache_entries
        .with_label_values(&["discovery"])
        .set(rt.discovery.len() as i64);
    m.cache_entries
        .with_label_values(&["regions"])
        .set(rt.regions.len() as i64);
    let metadata: usize = rt.providers.iter().map(|p| p.metadata_cache_len()).sum();
    m.cache_entries
        .with_label_values(&["metadata"])
        .set(metadata as i64);
    let bytes: usize = results
        .iter()
        .flat_map(|r| r.resources.iter())
        .map(Resource::approx_bytes)
        .sum();
    m.cache_bytes
        .with_label_values(&["discovery"])
        .set(bytes as i64);
}
