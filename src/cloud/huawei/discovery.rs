//! Huawei discovery: regions (IAM `GET /v3/regions`), load balancers (ELB v3
//! `GET /v3/{project_id}/elb/loadbalancers`, shared and dedicated alike, `marker` paging at 2000,
//! tags inline) and buckets (OBS ListBuckets with each bucket's location, account-wide, tags
//! from GetBucketTagging per bucket).

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::time::Instant;

use super::HuaweiProvider;
use crate::cloud::buckets::parse_list_buckets;
use crate::cloud::{CloudError, ErrorClass, Product, Resource};
use crate::util::value_string;

/// Load balancers per page (the API's maximum).
pub const PAGE_LIMIT: usize = 2000;
const MAX_PAGES: usize = 10_000;

/// Every region IAM lists.
pub async fn regions(p: &HuaweiProvider, deadline: Instant) -> Result<Vec<String>, CloudError> {
    let v = p
        .call(
            "KeystoneListRegions",
            "iam",
            "",
            reqwest::Method::GET,
            "/v3/regions",
            &[],
            None,
            deadline,
        )
        .await?;
    let mut out: Vec<String> = v
        .get("regions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("id").map(value_string))
        .filter(|r| !r.is_empty())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The resources of a product in a region.
pub async fn discover(
    p: &HuaweiProvider,
    region: &str,
    product: Product,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    match product {
        Product::Clb => load_balancers(p, region, deadline).await,
        Product::S3 => {
            let all = p.buckets(region, deadline).await?;
            let mut out = crate::cloud::buckets::in_region(&all, region);
            for b in &mut out {
                match bucket_tags(p, region, &b.id, deadline).await {
                    Ok(t) => b.tags = t,
                    Err(e) => {
                        tracing::warn!(bucket = %b.id, error = %e, "GetBucketTagging failed; the bucket is kept without tags")
                    }
                }
            }
            Ok(out)
        }
        _ => Ok(Vec::new()),
    }
}

async fn load_balancers(
    p: &HuaweiProvider,
    region: &str,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let project = p.project_id(region, deadline).await?;
    let path = format!("/v3/{project}/elb/loadbalancers");
    let mut out = Vec::new();
    let mut marker = String::new();
    for _ in 0..MAX_PAGES {
        let mut query = vec![("limit".to_string(), PAGE_LIMIT.to_string())];
        if !marker.is_empty() {
            query.push(("marker".to_string(), marker.clone()));
        }
        let v = p
            .call(
                "ListLoadBalancers",
                "elb",
                region,
                reqwest::Method::GET,
                &path,
                &query,
                None,
                deadline,
            )
            .await?;
        let page = v
            .get("loadbalancers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let count = page.len();
        for lb in &page {
            let Some(id) = lb.get("id").map(value_string).filter(|s| !s.is_empty()) else {
                continue;
            };
            let tags: BTreeMap<String, String> = lb
                .get("tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    Some((
                        value_string(t.get("key")?),
                        t.get("value").map(value_string).unwrap_or_default(),
                    ))
                })
                .collect();
            let mut attributes = BTreeMap::new();
            for key in ["vip_address", "vpc_id"] {
                if let Some(v) = lb.get(key).map(value_string).filter(|s| !s.is_empty()) {
                    attributes.insert(key.to_string(), v);
                }
            }
            out.push(Resource {
                id,
                name: lb.get("name").map(value_string).unwrap_or_default(),
                region: region.to_string(),
                tags,
                attributes,
            });
        }
        let next = v
            .pointer("/page_info/next_marker")
            .map(value_string)
            .filter(|m| !m.is_empty());
        match next {
            Some(m) if count >= PAGE_LIMIT && m != marker => marker = m,
            _ => break,
        }
    }
    Ok(out)
}

/// Every bucket with its location, from OBS ListBuckets (`x-obs-location: true`).
pub async fn list_buckets(
    p: &HuaweiProvider,
    region: &str,
    deadline: Instant,
) -> Result<Vec<(String, String)>, CloudError> {
    let body = p
        .obs_get(
            "ListBuckets",
            region,
            None,
            None,
            &[("x-obs-location".to_string(), "true".to_string())],
            deadline,
        )
        .await?
        .unwrap_or_default();
    let page = parse_list_buckets(&body).map_err(|m| CloudError {
        http_status: Some(200),
        ..crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Huawei,
            api: "ListBuckets",
            region,
        }
        .error(ErrorClass::BadResponse, m)
    })?;
    // OBS lists every bucket at once; a listing that says it is cut short is not a full one.
    if page.truncated {
        return Err(CloudError {
            http_status: Some(200),
            ..crate::cloud::http::CallSite {
                cloud: crate::cloud::Cloud::Huawei,
                api: "ListBuckets",
                region,
            }
            .error(
                ErrorClass::BadResponse,
                "ListBuckets answer is truncated; the bucket list would be incomplete",
            )
        });
    }
    Ok(page.buckets)
}

async fn bucket_tags(
    p: &HuaweiProvider,
    region: &str,
    bucket: &str,
    deadline: Instant,
) -> Result<BTreeMap<String, String>, CloudError> {
    let Some(body) = p
        .obs_get(
            "GetBucketTagging",
            region,
            Some(bucket),
            Some("tagging"),
            &[],
            deadline,
        )
        .await?
    else {
        return Ok(BTreeMap::new());
    };
    crate::cloud::buckets::parse_tagging(&body).map_err(|m| CloudError {
        http_status: Some(200),
        ..crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Huawei,
            api: "GetBucketTagging",
            region,
        }
        .error(ErrorClass::BadResponse, m)
    })
}
