//! The fewest discovery and metadata calls a cold scrape (nothing cached) can make for an
//! estate, from the documented page sizes and batch limits alone (`reference/cloud-apis.md` §E,
//! and where §E is silent the API's own model, named beside each constant). Added to the warm
//! minimum of [`super::minimum`] it is the cold minimum the benchmark divides by. Like that
//! module it shares nothing with the code that makes the calls.
//!
//! What a cold scrape must learn, per account:
//! - every job (region × product) lists its resources: one page at least, even when the region
//!   has none, and as many as the page size needs;
//! - tags, where the listing does not carry them, through the cheapest batch the cloud offers;
//! - metric metadata (Aliyun `DescribeMetricMetaList`, Tencent `DescribeBaseMetrics`) once per
//!   namespace that has resources to query; AWS and Huawei periods are static;
//! - Huawei's project IDs, which one IAM listing gives for every region.

use std::collections::{BTreeMap, BTreeSet};

use crate::cloud::{Cloud, Product};
use crate::mapping::MappingSet;
use crate::sim::estate::{Estate, SimAccount};

/// Aliyun SLB `DescribeLoadBalancers`: `PageSize` 1–100.
pub const ALIYUN_SLB_PAGE: u64 = 100;
/// Aliyun ALB and NLB `ListLoadBalancers`: `MaxResults` 1–100.
pub const ALIYUN_LIST_PAGE: u64 = 100;
/// Aliyun GWLB `ListLoadBalancers`: `MaxResults` 1–1000.
pub const ALIYUN_GWLB_PAGE: u64 = 1000;
/// Aliyun VPC `DescribeCommonBandwidthPackages`: `PageSize` ≤ 50.
pub const ALIYUN_BWP_PAGE: u64 = 50;
/// Aliyun Tag `ListTagResources`: `ResourceARN.N` ≤ 50 (OSS buckets; the other listings carry
/// their tags).
pub const ALIYUN_TAG_BATCH: u64 = 50;
/// Aliyun OSS `ListBuckets`: `max-keys` ≤ 1000.
pub const ALIYUN_OSS_PAGE: u64 = 1000;
/// Tencent CLB, GWLB and VPC listings: `Limit` ≤ 100.
pub const TENCENT_PAGE: u64 = 100;
/// Tencent Tag `GetResources`: `ResourceList.N`, at most 10 names a call (tccli tag api.json).
pub const TENCENT_TAG_BATCH: u64 = 10;
/// Tencent COS `GetService`: `max-keys` ≤ 2000.
pub const TENCENT_COS_PAGE: u64 = 2000;
/// AWS ELB (v2 and classic) `DescribeLoadBalancers`: `PageSize` ≤ 400.
pub const AWS_ELB_PAGE: u64 = 400;
/// AWS S3 `ListBuckets`: `max-buckets` ≤ 10,000.
pub const AWS_S3_PAGE: u64 = 10_000;
/// AWS classic ELB `DescribeTags`: ≤ 20 load balancers a call. Classic load balancers are not
/// counted through the Tagging API: the resource type they are listed under there is not
/// settled (cloud-apis §E).
pub const AWS_ELB_TAG_BATCH: u64 = 20;
/// AWS Resource Groups Tagging `GetResources`: `ResourcesPerPage` ≤ 100. One listing gives the
/// tags of a region's ELBv2 load balancers and buckets, where ELBv2's `DescribeTags` takes 20
/// a call and S3 has only `GetBucketTagging`, one a bucket. It lists every tagged load
/// balancer (classic ones too) and bucket, and only tagged ones, but a region with anything to
/// tag needs one call to learn that.
pub const AWS_TAGGING_PAGE: u64 = 100;
/// Huawei ELB v3 list load balancers: `limit` ≤ 2000.
pub const HUAWEI_ELB_PAGE: u64 = 2000;

/// Pages of `n` items at `size` a page; a listing costs one call even when empty.
fn pages(n: u64, size: u64) -> u64 {
    n.div_ceil(size).max(1)
}

/// Batches of `n` items at `size` a call; nothing to ask costs nothing.
fn batches(n: u64, size: u64) -> u64 {
    n.div_ceil(size)
}

/// The fewest discovery and metadata calls of a cold scrape, per cloud, with every account
/// covering the regions its resources are in and every product of its cloud (as the
/// benchmark's and `plan`'s configs do).
pub fn discovery_minimum(estate: &Estate, mappings: &MappingSet) -> BTreeMap<Cloud, u64> {
    let mut out = BTreeMap::new();
    for account in &estate.accounts {
        *out.entry(account.cloud).or_insert(0) += account_minimum(account, mappings);
    }
    out
}

/// The discovery and metadata minimum of one account.
fn account_minimum(account: &SimAccount, mappings: &MappingSet) -> u64 {
    let regions = account.regions();
    if regions.is_empty() {
        // An account without resources has no jobs (the benchmark leaves it out of the config).
        return 0;
    }
    let count = |product: Product, region: &str| -> u64 {
        account.resources_in(product, region).len() as u64
    };
    let buckets = account
        .resources
        .iter()
        .filter(|r| r.product() == Some(Product::S3))
        .count() as u64;
    let metadata = namespaces_with_resources(account, mappings);
    let mut calls = 0;
    match account.cloud {
        Cloud::Aliyun => {
            for region in &regions {
                calls += pages(count(Product::Clb, region), ALIYUN_SLB_PAGE)
                    + pages(count(Product::Alb, region), ALIYUN_LIST_PAGE)
                    + pages(count(Product::Nlb, region), ALIYUN_LIST_PAGE)
                    + pages(count(Product::Gwlb, region), ALIYUN_GWLB_PAGE)
                    + pages(count(Product::Bwp, region), ALIYUN_BWP_PAGE)
                    + batches(count(Product::S3, region), ALIYUN_TAG_BATCH);
            }
            calls += pages(buckets, ALIYUN_OSS_PAGE) + metadata;
        }
        Cloud::Tencent => {
            for region in &regions {
                let bwp = count(Product::Bwp, region);
                calls += pages(count(Product::Clb, region), TENCENT_PAGE)
                    + pages(count(Product::Gwlb, region), TENCENT_PAGE)
                    + pages(bwp, TENCENT_PAGE)
                    + batches(bwp, TENCENT_TAG_BATCH)
                    + batches(count(Product::S3, region), TENCENT_TAG_BATCH);
            }
            calls += pages(buckets, TENCENT_COS_PAGE) + metadata;
        }
        Cloud::Aws => {
            for region in &regions {
                // One ELBv2 listing holds application, network and gateway load balancers.
                let v2 = count(Product::Alb, region)
                    + count(Product::Nlb, region)
                    + count(Product::Gwlb, region);
                let classic = count(Product::Clb, region);
                let to_tag = v2 + count(Product::S3, region);
                let tagged = account
                    .resources
                    .iter()
                    .filter(|r| r.region == *region && !r.tags.is_empty())
                    .filter(|r| r.product().is_some_and(|p| p != Product::Bwp))
                    .count() as u64;
                calls += pages(v2, AWS_ELB_PAGE)
                    + pages(classic, AWS_ELB_PAGE)
                    + batches(classic, AWS_ELB_TAG_BATCH);
                if to_tag > 0 {
                    calls += pages(tagged, AWS_TAGGING_PAGE);
                }
            }
            calls += pages(buckets, AWS_S3_PAGE);
        }
        Cloud::Huawei => {
            for region in &regions {
                calls += pages(count(Product::Clb, region), HUAWEI_ELB_PAGE);
            }
            // One project listing for every region; OBS ListBuckets answers every bucket at
            // once, and OBS has no batch tag API, so a bucket's tags cost a GetBucketTagging
            // each.
            calls += 1 + 1 + buckets;
        }
    }
    calls
}

/// Metadata calls of an account: one per namespace (Aliyun, Tencent) with resources to query.
fn namespaces_with_resources(account: &SimAccount, mappings: &MappingSet) -> u64 {
    if !matches!(account.cloud, Cloud::Aliyun | Cloud::Tencent) {
        return 0;
    }
    let mut namespaces = BTreeSet::new();
    for r in &account.resources {
        let Some(spec) = r
            .product()
            .and_then(|p| mappings.products.get(&(p, account.cloud)))
        else {
            continue;
        };
        let lb_type = if r.internal { "INTERNAL" } else { "OPEN" };
        // Tencent load balancers are monitored in the namespace of their network type.
        let namespace = spec
            .variants
            .iter()
            .find(|v| {
                v.when
                    .iter()
                    .all(|(k, want)| k == "LoadBalancerType" && want == lb_type)
            })
            .map_or(&spec.namespace, |v| &v.namespace);
        namespaces.insert(namespace.as_str());
    }
    namespaces.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::estate::SimResource;

    fn resources(product: &str, region: &str, n: usize) -> Vec<SimResource> {
        (0..n)
            .map(|i| SimResource {
                product: product.into(),
                id: format!("{product}-{region}-{i}"),
                name: String::new(),
                region: region.into(),
                // Three in four are tagged.
                tags: if i % 4 == 3 {
                    BTreeMap::new()
                } else {
                    BTreeMap::from([("CodeName".to_string(), "x".to_string())])
                },
                vip: None,
                vpc_id: None,
                internal: i % 2 == 1,
            })
            .collect()
    }

    fn account(cloud: Cloud, parts: &[(&str, &str, usize)]) -> SimAccount {
        SimAccount {
            cloud,
            account_id: "1".into(),
            access_key_id: "AK".into(),
            access_key_secret: "SK".into(),
            resources: parts
                .iter()
                .flat_map(|(p, r, n)| resources(p, r, *n))
                .collect(),
        }
    }

    #[test]
    fn each_cloud_lists_and_tags_at_its_documented_page_sizes() {
        let m = MappingSet::embedded().unwrap();
        // Aliyun, one region: SLB 250 → 3 pages; ALB, NLB, GWLB empty → 1 each; 120 packages
        // → 3 pages of 50; 60 buckets → ListBuckets 1 and 2 Tag calls; metadata for the
        // three namespaces with resources (SLB, bandwidth packages, OSS).
        let a = account(
            Cloud::Aliyun,
            &[("clb", "r1", 250), ("bwp", "r1", 120), ("s3", "r1", 60)],
        );
        assert_eq!(account_minimum(&a, &m), 3 + 1 + 1 + 1 + 3 + 2 + 1 + 3);
        // Tencent, two regions: per region CLB, GWLB and VPC one page each, package tags by
        // 10 (r1: 25 → 3), bucket tags by 10 (r2: 11 → 2); GetService once; metadata for
        // public and private load balancers, packages and COS.
        let t = account(
            Cloud::Tencent,
            &[("clb", "r1", 4), ("bwp", "r1", 25), ("s3", "r2", 11)],
        );
        assert_eq!(account_minimum(&t, &m), (3 + 3) + (3 + 2) + 1 + 4);
        // AWS, one region: 401 ELBv2 → 2 pages; classic 1 page; ListBuckets 1; the tags of
        // 150 + 151 + 113 tagged load balancers and buckets → 5 pages of the Tagging API.
        let w = account(
            Cloud::Aws,
            &[("alb", "r1", 200), ("nlb", "r1", 201), ("s3", "r1", 150)],
        );
        assert_eq!(account_minimum(&w, &m), 2 + 1 + 1 + 5);
        // Classic load balancers are tagged 20 a DescribeTags call; with no ELBv2 load
        // balancer or bucket in the region, the Tagging API is not asked.
        let untagged = SimAccount {
            resources: resources("clb", "r1", 3)
                .into_iter()
                .map(|r| SimResource {
                    tags: BTreeMap::new(),
                    ..r
                })
                .collect(),
            ..account(Cloud::Aws, &[])
        };
        assert_eq!(account_minimum(&untagged, &m), 1 + 1 + 1 + 1);
        // A region whose one bucket is untagged still takes one tagging call.
        let bucket = SimAccount {
            resources: resources("s3", "r1", 4)[3..].to_vec(),
            ..account(Cloud::Aws, &[])
        };
        assert!(bucket.resources[0].tags.is_empty());
        assert_eq!(account_minimum(&bucket, &m), 1 + 1 + 1 + 1);
        // Huawei, two regions: an ELB page each, one project listing, ListBuckets once and
        // a tagging call per bucket.
        let h = account(Cloud::Huawei, &[("clb", "r1", 3), ("s3", "r2", 7)]);
        assert_eq!(account_minimum(&h, &m), 2 + 1 + 1 + 7);
        // An account without resources is not scraped.
        assert_eq!(account_minimum(&account(Cloud::Aws, &[]), &m), 0);
    }
}
