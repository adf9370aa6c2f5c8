//! AWS discovery: regions (EC2 `DescribeRegions`), ELBv2 load balancers (`DescribeLoadBalancers`
//! 2015-12-01, one listing per region split by `Type` into alb, nlb and gwlb) and classic ELBs
//! (2012-06-01), both paged with `Marker` at 400 and tagged through `DescribeTags` (20 per call),
//! and buckets (S3 `ListBuckets`, global, with each bucket's region and tags). The CloudWatch
//! dimension of an ELBv2 load balancer (the ARN's part after `:loadbalancer/`) is kept in the
//! resource's attributes as `LoadBalancer`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::{AwsProvider, QueryApi};
use crate::cloud::xml::Node;
use crate::cloud::{CloudError, ErrorClass, Product, Resource};

/// EC2 DescribeRegions.
pub const DESCRIBE_REGIONS: QueryApi = QueryApi {
    service: "ec2",
    version: "2016-11-15",
    action: "DescribeRegions",
};
/// ELBv2 DescribeLoadBalancers.
pub const DESCRIBE_LOAD_BALANCERS_V2: QueryApi = QueryApi {
    service: "elasticloadbalancing",
    version: "2015-12-01",
    action: "DescribeLoadBalancers",
};
/// ELBv2 DescribeTags.
pub const DESCRIBE_TAGS_V2: QueryApi = QueryApi {
    service: "elasticloadbalancing",
    version: "2015-12-01",
    action: "DescribeTags",
};
/// Classic ELB DescribeLoadBalancers.
pub const DESCRIBE_LOAD_BALANCERS_CLASSIC: QueryApi = QueryApi {
    service: "elasticloadbalancing",
    version: "2012-06-01",
    action: "DescribeLoadBalancers",
};
/// Classic ELB DescribeTags.
pub const DESCRIBE_TAGS_CLASSIC: QueryApi = QueryApi {
    service: "elasticloadbalancing",
    version: "2012-06-01",
    action: "DescribeTags",
};

/// Load balancers per page (the APIs' maximum).
pub const PAGE_SIZE: usize = 400;
/// Resources per DescribeTags call (the APIs' maximum).
pub const TAG_BATCH: usize = 20;
/// Buckets per ListBuckets page.
pub const MAX_BUCKETS: usize = 1000;
/// Region of the global bucket listing.
pub const S3_LISTING_REGION: &str = "us-east-1";
const MAX_PAGES: usize = 10_000;

/// One ELBv2 load balancer as listed, with its tags.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadBalancerV2 {
    /// `application`, `network` or `gateway`.
    pub kind: String,
    /// The resource, ID = ARN.
    pub resource: Resource,
}

fn bad(api: &str, region: &str, m: String) -> CloudError {
    CloudError {
        http_status: Some(200),
        ..crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Aws,
            api,
            region,
        }
        .error(ErrorClass::BadResponse, m)
    }
}

/// Every region enabled for the account.
pub async fn regions(p: &AwsProvider, deadline: Instant) -> Result<Vec<String>, CloudError> {
    let root = p
        .query(DESCRIBE_REGIONS, S3_LISTING_REGION, &[], deadline)
        .await?;
    let mut out: Vec<String> = root
        .child("regionInfo")
        .into_iter()
        .flat_map(|n| n.all("item"))
        .filter_map(|i| i.text_of("regionName"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The resources of a product in a region.
pub async fn discover(
    p: &AwsProvider,
    region: &str,
    product: Product,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let kind = match product {
        Product::Alb => "application",
        Product::Nlb => "network",
        Product::Gwlb => "gateway",
        Product::Clb => return classic_load_balancers(p, region, deadline).await,
        Product::S3 => {
            let all = p.buckets(deadline).await?;
            let mut out = crate::cloud::buckets::in_region(&all, region);
            for b in &mut out {
                // A bucket policy may deny GetBucketTagging: that bucket goes untagged.
                match bucket_tags(p, region, &b.id, deadline).await {
                    Ok(t) => b.tags = t,
                    Err(e) => {
                        tracing::warn!(bucket = %b.id, error = %e, "GetBucketTagging failed; the bucket is kept without tags")
                    }
                }
            }
            return Ok(out);
        }
        Product::Bwp => return Ok(Vec::new()),
    };
    let all = p
        .elbv2
        .get_or_fetch_fresh(region.to_string(), || async {
            elbv2_load_balancers(p, region, deadline)
                .await
                .map(Arc::new)
        })
        .await?;
    Ok(all
        .iter()
        .filter(|lb| lb.kind == kind)
        .map(|lb| lb.resource.clone())
        .collect())
}

/// Pages of a Marker-paged listing: the `member`s under `…Result/<list>`.
async fn marker_paged(
    p: &AwsProvider,
    api: QueryApi,
    region: &str,
    list: &str,
    deadline: Instant,
) -> Result<Vec<Node>, CloudError> {
    let mut rows = Vec::new();
    let mut marker = String::new();
    for _ in 0..MAX_PAGES {
        let mut params = vec![("PageSize".to_string(), PAGE_SIZE.to_string())];
        if !marker.is_empty() {
            params.push(("Marker".to_string(), marker.clone()));
        }
        let root = p.query(api, region, &params, deadline).await?;
        let Some(result) = root.child(&format!("{}Result", api.action)) else {
            return Err(bad(
                api.action,
                region,
                format!("answer has no {}Result", api.action),
            ));
        };
        if let Some(l) = result.child(list) {
            rows.extend(l.all("member").cloned());
        }
        match result.text_of("NextMarker").filter(|m| !m.is_empty()) {
            Some(m) if m != marker => marker = m.to_string(),
            _ => break,
        }
    }
    Ok(rows)
}

/// Tags of up to 20 resources per DescribeTags call, keyed by `key_field`'s value.
async fn describe_tags(
    p: &AwsProvider,
    api: QueryApi,
    region: &str,
    param: &str,
    key_field: &str,
    keys: &[String],
    deadline: Instant,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, CloudError> {
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(TAG_BATCH) {
        let params: Vec<(String, String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("{param}.member.{}", i + 1), k.clone()))
            .collect();
        let root = p.query(api, region, &params, deadline).await?;
        for d in root
            .path(&["DescribeTagsResult", "TagDescriptions"])
            .into_iter()
            .flat_map(|n| n.all("member"))
        {
            let Some(key) = d.text_of(key_field) else {
                continue;
            };
            let tags: BTreeMap<String, String> = d
                .child("Tags")
                .into_iter()
                .flat_map(|t| t.all("member"))
                .filter_map(|t| {
                    Some((
                        t.text_of("Key")?.to_string(),
                        t.text_of("Value").unwrap_or("").to_string(),
                    ))
                })
                .collect();
            out.insert(key.to_string(), tags);
        }
    }
    Ok(out)
}

/// The CloudWatch `LoadBalancer` dimension of an ELBv2 ARN: its part after `:loadbalancer/`.
pub fn load_balancer_dimension(arn: &str) -> Option<&str> {
    arn.split_once(":loadbalancer/").map(|(_, d)| d)
}

async fn elbv2_load_balancers(
    p: &AwsProvider,
    region: &str,
    deadline: Instant,
) -> Result<Vec<LoadBalancerV2>, CloudError> {
    let rows = marker_paged(
        p,
        DESCRIBE_LOAD_BALANCERS_V2,
        region,
        "LoadBalancers",
        deadline,
    )
    .await?;
    let mut out: Vec<LoadBalancerV2> = rows
        .iter()
        .filter_map(|m| {
            let arn = m.text_of("LoadBalancerArn")?.to_string();
            let mut attributes = BTreeMap::new();
            attributes.insert(
                "LoadBalancer".to_string(),
                load_balancer_dimension(&arn)?.to_string(),
            );
            for (key, field) in [("scheme", "Scheme"), ("vpcId", "VpcId")] {
                if let Some(v) = m.text_of(field).filter(|v| !v.is_empty()) {
                    attributes.insert(key.to_string(), v.to_string());
                }
            }
            Some(LoadBalancerV2 {
                kind: m.text_of("Type").unwrap_or("application").to_string(),
                resource: Resource {
                    id: arn,
                    name: m.text_of("LoadBalancerName").unwrap_or("").to_string(),
                    region: region.to_string(),
                    tags: BTreeMap::new(),
                    attributes,
                },
            })
        })
        .collect();
    let arns: Vec<String> = out.iter().map(|lb| lb.resource.id.clone()).collect();
    let mut tags = describe_tags(
        p,
        DESCRIBE_TAGS_V2,
        region,
        "ResourceArns",
        "ResourceArn",
        &arns,
        deadline,
    )
    .await?;
    for lb in &mut out {
        lb.resource.tags = tags.remove(&lb.resource.id).unwrap_or_default();
    }
    Ok(out)
}

async fn classic_load_balancers(
    p: &AwsProvider,
    region: &str,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let rows = marker_paged(
        p,
        DESCRIBE_LOAD_BALANCERS_CLASSIC,
        region,
        "LoadBalancerDescriptions",
        deadline,
    )
    .await?;
    let mut out: Vec<Resource> = rows
        .iter()
        .filter_map(|m| {
            let name = m.text_of("LoadBalancerName")?.to_string();
            let mut attributes = BTreeMap::new();
            for (key, field) in [("scheme", "Scheme"), ("vpcId", "VPCId")] {
                if let Some(v) = m.text_of(field).filter(|v| !v.is_empty()) {
                    attributes.insert(key.to_string(), v.to_string());
                }
            }
            Some(Resource {
                id: name.clone(),
                name,
                region: region.to_string(),
                tags: BTreeMap::new(),
                attributes,
            })
        })
        .collect();
    let names: Vec<String> = out.iter().map(|r| r.id.clone()).collect();
    let mut tags = describe_tags(
        p,
        DESCRIBE_TAGS_CLASSIC,
        region,
        "LoadBalancerNames",
        "LoadBalancerName",
        &names,
        deadline,
    )
    .await?;
    for r in &mut out {
        r.tags = tags.remove(&r.id).unwrap_or_default();
    }
    Ok(out)
}

/// Every bucket of the account with its region: ListBuckets pages, then each bucket's region
/// (`BucketRegion` when the listing gives it, else GetBucketLocation).
pub async fn list_buckets(
    p: &AwsProvider,
    deadline: Instant,
) -> Result<Vec<(String, String)>, CloudError> {
    let mut out = Vec::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let mut query = vec![("max-buckets".to_string(), MAX_BUCKETS.to_string())];
        if !token.is_empty() {
            query.push(("continuation-token".to_string(), token.clone()));
        }
        let body = p
            .s3_get("ListBuckets", S3_LISTING_REGION, None, &query, deadline)
            .await?
            .unwrap_or_default();
        let root = Node::parse(&body).map_err(|m| bad("ListBuckets", S3_LISTING_REGION, m))?;
        for b in root
            .child("Buckets")
            .into_iter()
            .flat_map(|n| n.all("Bucket"))
        {
            let Some(name) = b.text_of("Name").filter(|n| !n.is_empty()) else {
                continue;
            };
            let region = match b.text_of("BucketRegion").filter(|r| !r.is_empty()) {
                Some(r) => r.to_string(),
                None => bucket_region(p, name, deadline).await?,
            };
            out.push((name.to_string(), region));
        }
        match root.text_of("ContinuationToken").filter(|t| !t.is_empty()) {
            Some(t) if t != token => token = t.to_string(),
            _ => break,
        }
    }
    Ok(out)
}

/// GetBucketLocation: an empty constraint means us-east-1, `EU` the old name of eu-west-1.
async fn bucket_region(
    p: &AwsProvider,
    bucket: &str,
    deadline: Instant,
) -> Result<String, CloudError> {
    let body = p
        .s3_get(
            "GetBucketLocation",
            S3_LISTING_REGION,
            Some(bucket),
            &[("location".to_string(), String::new())],
            deadline,
        )
        .await?
        .unwrap_or_default();
    let root = Node::parse(&body).map_err(|m| bad("GetBucketLocation", S3_LISTING_REGION, m))?;
    Ok(match root.text.as_str() {
        "" => "us-east-1".to_string(),
        "EU" => "eu-west-1".to_string(),
        r => r.to_string(),
    })
}

/// GetBucketTagging in the bucket's region; a bucket without tags answers 404 `NoSuchTagSet`.
async fn bucket_tags(
    p: &AwsProvider,
    region: &str,
    bucket: &str,
    deadline: Instant,
) -> Result<BTreeMap<String, String>, CloudError> {
    let Some(body) = p
        .s3_get(
            "GetBucketTagging",
            region,
            Some(bucket),
            &[("tagging".to_string(), String::new())],
            deadline,
        )
        .await?
    else {
        return Ok(BTreeMap::new());
    };
    crate::cloud::buckets::parse_tagging(&body).map_err(|m| bad("GetBucketTagging", region, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_balancer_dimension_is_the_arn_tail() {
        assert_eq!(
            load_balancer_dimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/f0e54ee5cbc89a39"),
            Some("app/my-alb/f0e54ee5cbc89a39")
        );
        assert_eq!(load_balancer_dimension("arn:aws:s3:::bucket"), None);
    }
}
