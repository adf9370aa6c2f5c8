//! The admin API's answers, JSON in the shapes the README documents: per job what discovery
//! found and how the last scrape went (`/api/discovery/status`), the cached resources with their
//! tags (`/api/discovery/resources`), and this replica's view of the cluster (`/api/cluster`).
//! They read caches and the last collection only; at most they list the regions of a
//! `regions = ["*"]` account, which is cached too.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::cloud::{Cloud, Product};
use crate::render::Snapshot;
use crate::scrape::{all_jobs, Job, JobFilter, Runtime};

/// How long the admin API may spend listing regions it does not have cached.
const LISTING_BUDGET: Duration = Duration::from_secs(5);

/// A job filter from query parameters `cloud`, `account`, `region`, `product`.
pub fn filter_from_query(query: &str) -> Result<JobFilter, String> {
    let mut f = JobFilter::default();
    for (k, v) in crate::util::parse_query(query) {
        match k.as_str() {
            "cloud" => {
                f.cloud = Some(Cloud::parse(&v).ok_or_else(|| {
                    format!("cloud={v:?} is not a cloud: use aliyun, tencent, aws or huawei")
                })?)
            }
            "account" => f.account = Some(v),
            "region" => f.region = Some(v),
            "product" => {
                f.product = Some(Product::parse(&v).ok_or_else(|| {
                    format!("product={v:?} is not a product: use clb, alb, nlb, gwlb, bwp or s3")
                })?)
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: filter with cloud, account, region, product"
                ))
            }
        }
    }
    Ok(f)
}

fn job_fields(j: &Job) -> Value {
    json!({
        "cloud": j.cloud, "account_id": j.account_id, "region": j.region,
        "product": j.product, "key": j.key,
    })
}

fn discovery_key(rt: &Runtime, j: &Job) -> (String, String, Product) {
    (rt.account_key(j.account), j.region.clone(), j.product)
}

/// `GET /api/discovery/status`.
pub async fn discovery_status(
    rt: &Runtime,
    filter: &JobFilter,
    last: Option<(Duration, std::sync::Arc<Snapshot>)>,
) -> Value {
    let view = rt.membership.current();
    let (jobs, listing_failed) = all_jobs(rt, filter, Instant::now() + LISTING_BUDGET).await;
    let (last_age, snapshot) = match &last {
        Some((age, snap)) => (Some(age.as_secs_f64()), Some(snap.as_ref())),
        None => (None, None),
    };
    let mut out = Vec::new();
    for j in &jobs {
        let mut entry = job_fields(j);
        let owned = view.membership.owns(&j.key);
        entry["owned"] = json!(owned);
        entry["discovery"] = match rt.discovery.peek(&discovery_key(rt, j)) {
            Some((resources, age)) => json!({
                "resources": resources.len(),
                "age_seconds": age.as_secs(),
            }),
            None => Value::Null,
        };
        let result = snapshot.and_then(|s| {
            s.jobs.iter().find(|r| {
                r.cloud == j.cloud
                    && r.account_id == j.account_id
                    && r.region == j.region
                    && r.product == j.product
            })
        });
        entry["last_scrape"] = match result {
            Some(r) if owned => json!({
                "success": r.success,
                "duration_seconds": r.duration.as_secs_f64(),
                "calls": r.calls,
                "error_class": r.error.as_ref().map(|e| e.class.as_str()),
                "error": r.error.as_ref().map(|e| e.to_string()),
                "request_id": r.error.as_ref().and_then(|e| e.request_id.clone()),
            }),
            _ => Value::Null,
        };
        out.push(entry);
    }
    let listing: Vec<Value> = listing_failed
        .iter()
        .map(|f| {
            json!({
                "cloud": f.cloud, "account_id": f.account_id,
                "error_class": f.error.as_ref().map(|e| e.class.as_str()),
                "error": f.error.as_ref().map(|e| e.to_string()),
            })
        })
        .collect();
    json!({
        "self": view.membership.self_name,
        "last_collection_age_seconds": last_age,
        "jobs": out,
        "region_listing_failures": listing,
    })
}

/// `GET /api/discovery/resources`: the resources of the jobs this replica owns, as cached.
pub async fn discovery_resources(rt: &Runtime, filter: &JobFilter) -> Value {
    let view = rt.membership.current();
    let (jobs, _) = all_jobs(rt, filter, Instant::now() + LISTING_BUDGET).await;
    let mut out = Vec::new();
    for j in jobs.iter().filter(|j| view.membership.owns(&j.key)) {
        let Some((resources, _)) = rt.discovery.peek(&discovery_key(rt, j)) else {
            continue;
        };
        for r in resources.iter() {
            out.push(json!({
                "cloud": j.cloud, "account_id": j.account_id, "region": j.region,
                "product": j.product, "resource_id": r.id, "name": r.name,
                "code_name": r.code_name(), "tags": r.tags, "attributes": r.attributes,
            }));
        }
    }
    json!({ "resources": out })
}

/// `GET /api/cluster`.
pub async fn cluster(rt: &Runtime) -> Value {
    let view = rt.membership.current();
    let (jobs, _) = all_jobs(rt, &JobFilter::default(), Instant::now() + LISTING_BUDGET).await;
    let owned: Vec<Value> = jobs
        .iter()
        .filter(|j| view.membership.owns(&j.key))
        .map(job_fields)
        .collect();
    json!({
        "discovery": rt.membership.discovery().as_str(),
        "shard_by": rt.config.cluster.shard_by.as_str(),
        "self": view.membership.self_name,
        "members": view.membership.members,
        "ready": view.not_owning.is_none(),
        "not_owning": view.not_owning,
        "jobs": jobs.len(),
        "owned_jobs": owned,
    })
}
