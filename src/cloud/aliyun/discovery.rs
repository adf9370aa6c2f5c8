//! Aliyun discovery: regions (SLB `DescribeRegions`), load balancers (SLB `DescribeLoadBalancers`,
//! ALB/NLB/GWLB `ListLoadBalancers`), shared bandwidth packages (VPC
//! `DescribeCommonBandwidthPackages`) and OSS buckets (`ListBuckets`, tags through Tag
//! `ListTagResources`). Where the listing carries the tags (every product but OSS) they are
//! taken from it, which saves one Tag call per 50 resources.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::time::Instant;

use super::sign::{oss_v4_authorization, OssV4Request};
use super::{next_token, value_string, AliyunProvider, Api};
use crate::cloud::buckets::{parse_list_buckets, xml_answer_error};
use crate::cloud::http::{self, CallSite};
use crate::cloud::{Cloud, CloudError, ErrorClass, Product, Resource};
use crate::util::UtcTime;

/// SLB DescribeRegions.
pub const SLB_DESCRIBE_REGIONS: Api = Api {
    service: "slb",
    version: "2014-05-15",
    action: "DescribeRegions",
};
/// SLB (CLB) DescribeLoadBalancers.
pub const SLB_DESCRIBE_LOAD_BALANCERS: Api = Api {
    service: "slb",
    version: "2014-05-15",
    action: "DescribeLoadBalancers",
};
/// ALB ListLoadBalancers.
pub const ALB_LIST_LOAD_BALANCERS: Api = Api {
    service: "alb",
    version: "2020-06-16",
    action: "ListLoadBalancers",
};
/// NLB ListLoadBalancers.
pub const NLB_LIST_LOAD_BALANCERS: Api = Api {
    service: "nlb",
    version: "2022-04-30",
    action: "ListLoadBalancers",
};
/// GWLB ListLoadBalancers.
pub const GWLB_LIST_LOAD_BALANCERS: Api = Api {
    service: "gwlb",
    version: "2024-04-15",
    action: "ListLoadBalancers",
};
/// VPC DescribeCommonBandwidthPackages.
pub const VPC_DESCRIBE_COMMON_BANDWIDTH_PACKAGES: Api = Api {
    service: "vpc",
    version: "2016-04-28",
    action: "DescribeCommonBandwidthPackages",
};
/// Tag ListTagResources.
pub const TAG_LIST_TAG_RESOURCES: Api = Api {
    service: "tag",
    version: "2018-08-28",
    action: "ListTagResources",
};

/// Page sizes: the maxima of each API (`cloud-apis.md` A.4, §E).
pub const SLB_PAGE_SIZE: usize = 100;
pub const LIST_MAX_RESULTS: usize = 100;
pub const GWLB_MAX_RESULTS: usize = 1000;
pub const VPC_PAGE_SIZE: usize = 50;
pub const TAG_ARNS_PER_CALL: usize = 50;
pub const TAG_PAGE_SIZE: usize = 1000;
pub const OSS_MAX_KEYS: usize = 1000;
const MAX_PAGES: usize = 10_000;

fn site<'a>(api: &'a str, region: &'a str) -> CallSite<'a> {
    CallSite {
        cloud: Cloud::Aliyun,
        api,
        region,
    }
}

fn param(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The region the account-wide calls (regions, OSS listing) go to.
pub const HOME_REGION: &str = "cn-hangzhou";

/// Every region the account can use.
pub async fn regions(p: &AliyunProvider, deadline: Instant) -> Result<Vec<String>, CloudError> {
    let v = p
        .rpc(
            SLB_DESCRIBE_REGIONS,
            HOME_REGION,
            &[param("RegionId", HOME_REGION)],
            deadline,
        )
        .await?;
    let mut out: Vec<String> = v
        .pointer("/Regions/Region")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("RegionId").map(value_string))
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Resources of one product in one region.
pub async fn discover(
    p: &AliyunProvider,
    region: &str,
    product: Product,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let mut out = match product {
        Product::Clb => {
            page_numbered(
                p,
                SLB_DESCRIBE_LOAD_BALANCERS,
                region,
                SLB_PAGE_SIZE,
                "/LoadBalancers/LoadBalancer",
                "LoadBalancerId",
                "LoadBalancerName",
                deadline,
            )
            .await?
        }
        Product::Bwp => {
            page_numbered(
                p,
                VPC_DESCRIBE_COMMON_BANDWIDTH_PACKAGES,
                region,
                VPC_PAGE_SIZE,
                "/CommonBandwidthPackages/CommonBandwidthPackage",
                "BandwidthPackageId",
                "Name",
                deadline,
            )
            .await?
        }
        Product::Alb => {
            token_paged(
                p,
                ALB_LIST_LOAD_BALANCERS,
                region,
                LIST_MAX_RESULTS,
                deadline,
            )
            .await?
        }
        Product::Nlb => {
            token_paged(
                p,
                NLB_LIST_LOAD_BALANCERS,
                region,
                LIST_MAX_RESULTS,
                deadline,
            )
            .await?
        }
        Product::Gwlb => {
            token_paged(
                p,
                GWLB_LIST_LOAD_BALANCERS,
                region,
                GWLB_MAX_RESULTS,
                deadline,
            )
            .await?
        }
        Product::S3 => buckets_in_region(p, region, deadline).await?,
    };
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

/// Tags as either `Tags.Tag[]{TagKey,TagValue}`, `Tags.Tag[]{Key,Value}` or `Tags[]{Key,Value}`.
fn tags_of(v: &Value) -> BTreeMap<String, String> {
    let list = match v.get("Tags") {
        Some(Value::Array(a)) => a.clone(),
        Some(t) => t
            .get("Tag")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        None => Vec::new(),
    };
    list.iter()
        .filter_map(|t| {
            let k = t.get("TagKey").or_else(|| t.get("Key")).map(value_string)?;
            let v = t
                .get("TagValue")
                .or_else(|| t.get("Value"))
                .map(value_string)
                .unwrap_or_default();
            (!k.is_empty()).then_some((k, v))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn page_numbered(
    p: &AliyunProvider,
    api: Api,
    region: &str,
    page_size: usize,
    list_path: &str,
    id_key: &str,
    name_key: &str,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let mut out = Vec::new();
    for page in 1..=MAX_PAGES {
        let params = [
            param("RegionId", region),
            param("PageNumber", page),
            param("PageSize", page_size),
        ];
        let v = p.rpc(api, region, &params, deadline).await?;
        let rows = v
            .pointer(list_path)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in &rows {
            let id = r.get(id_key).map(value_string).unwrap_or_default();
            if id.is_empty() {
                continue;
            }
            out.push(Resource {
                id,
                name: r.get(name_key).map(value_string).unwrap_or_default(),
                region: region.to_string(),
                tags: tags_of(r),
                attributes: BTreeMap::new(),
            });
        }
        let total = v
            .get("TotalCount")
            .map(value_string)
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        if rows.is_empty() || page * page_size >= total {
            break;
        }
    }
    Ok(out)
}

async fn token_paged(
    p: &AliyunProvider,
    api: Api,
    region: &str,
    max_results: usize,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = vec![param("RegionId", region), param("MaxResults", max_results)];
        if let Some(t) = &token {
            params.push(param("NextToken", t));
        }
        let v = p.rpc(api, region, &params, deadline).await?;
        for r in v
            .get("LoadBalancers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let id = r
                .get("LoadBalancerId")
                .map(value_string)
                .unwrap_or_default();
            if id.is_empty() {
                continue;
            }
            out.push(Resource {
                id,
                name: r
                    .get("LoadBalancerName")
                    .map(value_string)
                    .unwrap_or_default(),
                region: region.to_string(),
                tags: tags_of(&r),
                attributes: BTreeMap::new(),
            });
        }
        token = next_token(site(api.action, region), &v, token.as_deref())?;
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// The buckets of one region, with their tags.
async fn buckets_in_region(
    p: &AliyunProvider,
    region: &str,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    let all = p.buckets(region, deadline).await?;
    let mut out: Vec<Resource> = all
        .iter()
        .filter(|(_, r)| r == region)
        .map(|(name, r)| Resource {
            id: name.clone(),
            name: name.clone(),
            region: r.clone(),
            tags: BTreeMap::new(),
            attributes: BTreeMap::new(),
        })
        .collect();
    if out.is_empty() {
        return Ok(out);
    }
    let arns: Vec<String> = out
        .iter()
        .map(|b| format!("arn:acs:oss:{region}:{}:bucket/{}", p.account_id(), b.id))
        .collect();
    let tags = list_tag_resources(p, region, &arns, deadline).await?;
    for (b, arn) in out.iter_mut().zip(&arns) {
        if let Some(t) = tags.get(arn) {
            b.tags = t.clone();
        }
    }
    Ok(out)
}

/// Tag ListTagResources for up to any number of ARNs (50 per call): ARN → custom tags.
pub async fn list_tag_resources(
    p: &AliyunProvider,
    region: &str,
    arns: &[String],
    deadline: Instant,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, CloudError> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for chunk in arns.chunks(TAG_ARNS_PER_CALL) {
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![param("RegionId", region), param("PageSize", TAG_PAGE_SIZE)];
            for (i, arn) in chunk.iter().enumerate() {
                params.push(param(&format!("ResourceARN.{}", i + 1), arn));
            }
            if let Some(t) = &token {
                params.push(param("NextToken", t));
            }
            let v = p
                .rpc(TAG_LIST_TAG_RESOURCES, region, &params, deadline)
                .await?;
            for r in v
                .get("TagResources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let arn = r.get("ResourceARN").map(value_string).unwrap_or_default();
                let custom: Vec<Value> = r
                    .get("Tags")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter(|t| {
                                t.get("Category")
                                    .map(value_string)
                                    .is_none_or(|c| c.is_empty() || c == "Custom")
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let tags = tags_of(&serde_json::json!({ "Tags": custom }));
                out.entry(arn).or_default().extend(tags);
            }
            token = next_token(
                site(TAG_LIST_TAG_RESOURCES.action, region),
                &v,
                token.as_deref(),
            )?;
            if token.is_none() {
                break;
            }
        }
    }
    Ok(out)
}

/// OSS ListBuckets, all pages: (bucket, region). Account-wide; sent to `region`'s endpoint.
pub async fn list_buckets(
    p: &AliyunProvider,
    region: &str,
    deadline: Instant,
) -> Result<Vec<(String, String)>, CloudError> {
    let mut out = Vec::new();
    let mut marker = String::new();
    for _ in 0..MAX_PAGES {
        let mut query = vec![param("max-keys", OSS_MAX_KEYS)];
        if !marker.is_empty() {
            query.push(param("marker", &marker));
        }
        let body = oss_get(p, "ListBuckets", region, &query, deadline).await?;
        let page = parse_list_buckets(&body).map_err(|m| CloudError {
            class: ErrorClass::BadResponse,
            cloud: Cloud::Aliyun,
            api: "ListBuckets".into(),
            region: region.to_string(),
            http_status: Some(200),
            code: None,
            message: m,
            request_id: None,
        })?;
        out.extend(page.buckets);
        match page.next_marker {
            Some(m) if page.truncated && !m.is_empty() && m != marker => marker = m,
            _ => break,
        }
    }
    Ok(out)
}

/// A signed OSS GET of the service (`/`), with retries and classification; the body on 2xx.
async fn oss_get(
    p: &AliyunProvider,
    api: &'static str,
    region: &str,
    query: &[(String, String)],
    deadline: Instant,
) -> Result<bytes::Bytes, CloudError> {
    let site = CallSite {
        cloud: Cloud::Aliyun,
        api,
        region,
    };
    let shared = p.shared();
    http::call(shared, site, p.account_id(), deadline, || async move {
        let base = p.base_url("oss", region);
        let now = shared.clock.now_s();
        let mut headers = vec![
            ("x-oss-date".to_string(), UtcTime::from_unix(now).basic()),
            (
                "x-oss-content-sha256".to_string(),
                "UNSIGNED-PAYLOAD".to_string(),
            ),
        ];
        let (ak, sk, token) = p.credentials();
        if let Some(t) = token {
            headers.push(("x-oss-security-token".to_string(), t.expose().to_string()));
        }
        let auth = oss_v4_authorization(
            &OssV4Request {
                method: "GET",
                resource_path: "/",
                query,
                headers: &headers,
                region,
                time: now,
            },
            ak,
            sk.expose(),
        );
        let url = format!("{base}/?{}", crate::util::encode_query(query));
        let mut req = shared.client.get(url).header("authorization", auth);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let raw = http::send(shared, site, deadline, req).await?;
        if (200..300).contains(&raw.status) {
            return Ok(raw.body);
        }
        Err(xml_answer_error(
            site,
            raw.status,
            &raw.body,
            |code, status| {
                if code.is_empty() {
                    if status >= 500 {
                        ErrorClass::ServerError
                    } else {
                        ErrorClass::BadResponse
                    }
                } else {
                    super::classify(code, status)
                }
            },
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_in_every_shape() {
        let slb = serde_json::json!({"Tags":{"Tag":[{"TagKey":"CodeName","TagValue":"web"}]}});
        let alb = serde_json::json!({"Tags":[{"Key":"env","Value":"prod"}]});
        assert_eq!(
            tags_of(&slb).get("CodeName").map(String::as_str),
            Some("web")
        );
        assert_eq!(tags_of(&alb).get("env").map(String::as_str), Some("prod"));
        assert!(tags_of(&serde_json::json!({})).is_empty());
    }
}
