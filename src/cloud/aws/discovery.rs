//! AWS discovery: regions (EC2 `DescribeRegions`), ELBv2 load balancers (`DescribeLoadBalancers`
//! 2015-12-01, one listing per region split by `Type` into alb, nlb and gwlb) and classic ELBs
//! (2012-06-01), both paged with `Marker` at 400, and buckets (S3 `ListBuckets`, global, with
//! each bucket's region). The CloudWatch dimension of an ELBv2 load balancer (the ARN's part
//! after `:loadbalancer/`) is kept in the resource's attributes as `LoadBalancer`.
//!
//! Tags of ELBv2 load balancers and buckets come from one Resource Groups Tagging API listing
//! per region (`GetResources`, 100 a page): far fewer calls than `DescribeTags` (20 a call) and
//! S3 `GetBucketTagging` (one a bucket). An account whose policy denies `tag:GetResources` falls
//! back to those per-product APIs. Classic load balancers keep `DescribeTags`: the Tagging API
//! resource type they are filed under is not settled (cloud-apis §E does not say; moto files
//! them as `elb:loadbalancer`, not `elasticloadbalancing:loadbalancer`), and a load balancer
//! missing from the listing would silently lose its tags.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use tokio::time::Instant;

use super::{AwsProvider, QueryApi};
use crate::cloud::wire::{self, Text};
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

/// Resource Groups Tagging API GetResources (JSON 1.1).
pub const GET_RESOURCES: super::JsonApi = super::JsonApi {
    service: "tagging",
    target: "ResourceGroupsTaggingAPI_20170126.GetResources",
    action: "GetResources",
    content_type: "application/x-amz-json-1.1",
    query_compatible: false,
};
/// Resources per GetResources page (the API's maximum, cloud-apis §E).
pub const TAGGING_PAGE: usize = 100;
/// The resource types one tagging listing asks for: load balancers of every kind and buckets.
const TAGGED_TYPES: [&str; 2] = ["elasticloadbalancing:loadbalancer", "s3"];

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
            if out.is_empty() {
                return Ok(out);
            }
            if let Some(tags) = p.region_tags(region, deadline).await?.as_ref() {
                for b in &mut out {
                    b.tags = tags.buckets.get(&b.id).cloned().unwrap_or_default();
                }
                return Ok(out);
            }
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

/// The tags of a region's ELBv2 load balancers and buckets, from the Tagging API.
#[derive(Debug, Default, PartialEq)]
pub struct RegionTags {
    /// By the ARN's part after `:loadbalancer/`: `app/<name>/<id>` (ELBv2; a classic load
    /// balancer's name, if the listing holds one, is filed too but not read).
    pub load_balancers: HashMap<String, BTreeMap<String, String>>,
    /// By bucket name.
    pub buckets: HashMap<String, BTreeMap<String, String>>,
}

impl RegionTags {
    /// Files one resource's tags (those with a key) under its key; ARNs of other types are
    /// ignored.
    fn add(&mut self, mapping: ResourceTagMapping) {
        let tags = mapping
            .tags
            .into_iter()
            .filter(|t| !t.key.as_str().is_empty())
            .map(|t| (t.key.into_string(), t.value.into_string()))
            .collect();
        // arn:<partition>:<service>:<region>:<account>:<resource>
        let mut parts = mapping.resource_arn.as_str().splitn(6, ':');
        let service = parts.nth(2).unwrap_or("");
        let resource = parts.nth(2).unwrap_or("");
        match service {
            "elasticloadbalancing" => {
                if let Some(key) = resource.strip_prefix("loadbalancer/") {
                    self.load_balancers.insert(key.to_string(), tags);
                }
            }
            "s3" if !resource.is_empty() && !resource.contains('/') => {
                self.buckets.insert(resource.to_string(), tags);
            }
            _ => {}
        }
    }
}

/// A GetResources request.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetResourcesRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pagination_token: Option<&'a str>,
    resource_type_filters: &'a [&'a str],
    resources_per_page: usize,
}

/// A GetResources answer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcesAnswer {
    /// Empty or absent on the last page.
    #[serde(default)]
    pub pagination_token: Option<String>,
    /// The tagged (or once tagged) resources of this page.
    #[serde(default, deserialize_with = "wire::objects")]
    pub resource_tag_mapping_list: Vec<ResourceTagMapping>,
}

/// One resource and its tags.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceTagMapping {
    /// Its ARN.
    #[serde(rename = "ResourceARN", default)]
    pub resource_arn: Text,
    /// Its tags.
    #[serde(default, deserialize_with = "wire::objects")]
    pub tags: Vec<TagPair>,
}

/// A `{"Key", "Value"}` tag.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagPair {
    /// Tag key.
    #[serde(default)]
    pub key: Text,
    /// Tag value.
    #[serde(default)]
    pub value: Text,
}

/// One Tagging API listing of a region's load balancers and buckets (every page); `None` when
/// the API is denied (an auth error), so ELBv2 and S3 fall back to their own tag APIs.
pub async fn region_tags(
    p: &AwsProvider,
    region: &str,
    deadline: Instant,
) -> Result<Option<RegionTags>, CloudError> {
    let mut out = RegionTags::default();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let request = GetResourcesRequest {
            pagination_token: token.as_deref(),
            resource_type_filters: &TAGGED_TYPES,
            resources_per_page: TAGGING_PAGE,
        };
        let payload = serde_json::to_vec(&request)
            .map_err(|e| bad("GetResources", region, format!("encoding the request: {e}")))?;
        let answer: GetResourcesAnswer = match p
            .json(GET_RESOURCES, region, payload, deadline)
            .await
        {
            Ok(a) => a,
            Err(e) if e.class == ErrorClass::AuthError && token.is_none() => {
                tracing::warn!(region, error = %e, "the Tagging API is denied; tags come from DescribeTags and GetBucketTagging instead");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        for m in answer.resource_tag_mapping_list {
            out.add(m);
        }
        let next = answer.pagination_token.filter(|t| !t.is_empty());
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok(Some(out))
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
    if out.is_empty() {
        return Ok(out);
    }
    if let Some(tags) = p.region_tags(region, deadline).await?.as_ref() {
        for lb in &mut out {
            let key = load_balancer_dimension(&lb.resource.id).unwrap_or("");
            lb.resource.tags = tags.load_balancers.get(key).cloned().unwrap_or_default();
        }
        return Ok(out);
    }
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
    fn tagging_arns_are_filed_by_load_balancer_key_or_bucket_name() {
        let answer: GetResourcesAnswer = serde_json::from_str(
            r#"{"PaginationToken":"","ResourceTagMappingList":[
              {"ResourceARN":"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188","Tags":[{"Key":"env","Value":"prod"}]},
              {"ResourceARN":"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/legacy","Tags":[{"Key":"team","Value":"a"},{"Key":"","Value":"x"}]},
              {"ResourceARN":"arn:aws-cn:s3:::logs","Tags":[{"Key":"CodeName","Value":"logs"}]},
              {"ResourceARN":"arn:aws:s3:::logs/key","Tags":[]},
              {"ResourceARN":"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1","Tags":[]},
              "odd"]}"#,
        )
        .unwrap();
        let mut tags = RegionTags::default();
        for m in answer.resource_tag_mapping_list {
            tags.add(m);
        }
        let lb = |k: &str| tags.load_balancers.get(k).map(|t| t.len());
        assert_eq!(lb("app/web/50dc6c495c0c9188"), Some(1));
        assert_eq!(lb("legacy"), Some(1));
        assert_eq!(tags.load_balancers.len(), 2);
        assert_eq!(tags.buckets.len(), 1);
        assert_eq!(tags.buckets["logs"]["CodeName"], "logs");
    }

    #[test]
    fn a_tagging_request_is_written_as_boto3_writes_it() {
        let r = GetResourcesRequest {
            pagination_token: None,
            resource_type_filters: &["elasticloadbalancing:loadbalancer"],
            resources_per_page: 100,
        };
        // The body of the W8 signature vector (cloud-apis C.1).
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"ResourceTypeFilters": ["elasticloadbalancing:loadbalancer"], "ResourcesPerPage": 100})
        );
    }

    #[test]
    fn the_load_balancer_dimension_is_the_arn_tail() {
        assert_eq!(
            load_balancer_dimension("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/my-alb/f0e54ee5cbc89a39"),
            Some("app/my-alb/f0e54ee5cbc89a39")
        );
        assert_eq!(load_balancer_dimension("arn:aws:s3:::bucket"), None);
    }
}
