//! Tencent discovery: regions (CVM `DescribeRegions`), load balancers (CLB
//! `DescribeLoadBalancers`, GWLB `DescribeGatewayLoadBalancers`), bandwidth packages (VPC
//! `DescribeBandwidthPackages`), all paged with `Offset`/`Limit` 100, and buckets (COS
//! `GetService`, account-wide). Load balancers carry their tags; packages and buckets get theirs
//! from Tag `GetResources`. What monitor queries need (VIP, VPC, network type, APPID) is kept in
//! the resource's attributes under the monitor's dimension names.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::sign::{cos_authorization, cos_key_time, CosRequest};
use super::{host_of, value_string, Api, TencentProvider};
use crate::cloud::buckets::{parse_list_buckets, xml_answer_error};
use crate::cloud::http::{self, CallSite};
use crate::cloud::{Cloud, CloudError, ErrorClass, Product, Resource};

/// CVM DescribeRegions.
pub const DESCRIBE_REGIONS: Api = Api {
    service: "cvm",
    version: "2017-03-12",
    action: "DescribeRegions",
};
/// CLB DescribeLoadBalancers.
pub const DESCRIBE_LOAD_BALANCERS: Api = Api {
    service: "clb",
    version: "2018-03-17",
    action: "DescribeLoadBalancers",
};
/// GWLB DescribeGatewayLoadBalancers.
pub const DESCRIBE_GATEWAY_LOAD_BALANCERS: Api = Api {
    service: "gwlb",
    version: "2024-09-06",
    action: "DescribeGatewayLoadBalancers",
};
/// VPC DescribeBandwidthPackages.
pub const DESCRIBE_BANDWIDTH_PACKAGES: Api = Api {
    service: "vpc",
    version: "2017-03-12",
    action: "DescribeBandwidthPackages",
};
/// Tag GetResources.
pub const GET_RESOURCES: Api = Api {
    service: "tag",
    version: "2018-08-13",
    action: "GetResources",
};

/// `Limit` of the listing APIs (their maximum).
pub const PAGE_LIMIT: usize = 100;
/// Resources per GetResources call (`ResourceList.N`, N in 0..=9).
pub const TAG_BATCH: usize = 10;
/// Buckets per GetService page (its maximum).
pub const COS_MAX_KEYS: usize = 2000;
/// Most pages followed, against a listing that never ends.
const MAX_PAGES: usize = 10_000;

fn site<'a>(api: &'a str, region: &'a str) -> CallSite<'a> {
    CallSite {
        cloud: Cloud::Tencent,
        api,
        region,
    }
}

/// Every region of the account that is available.
pub async fn regions(p: &TencentProvider, deadline: Instant) -> Result<Vec<String>, CloudError> {
    let v = p
        .call(DESCRIBE_REGIONS, "ap-guangzhou", &json!({}), deadline)
        .await?;
    let mut out: Vec<String> = v
        .get("RegionSet")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("RegionState").map(value_string).as_deref() != Some("UNAVAILABLE"))
        .filter_map(|r| r.get("Region").map(value_string))
        .filter(|r| !r.is_empty())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The resources of a product in a region.
pub async fn discover(
    p: &TencentProvider,
    region: &str,
    product: Product,
    deadline: Instant,
) -> Result<Vec<Resource>, CloudError> {
    match product {
        Product::Clb => {
            let rows = offset_paged(
                p,
                DESCRIBE_LOAD_BALANCERS,
                region,
                "LoadBalancerSet",
                deadline,
            )
            .await?;
            Ok(rows
                .iter()
                .filter_map(|r| load_balancer(r, region))
                .collect())
        }
        Product::Gwlb => {
            let rows = offset_paged(
                p,
                DESCRIBE_GATEWAY_LOAD_BALANCERS,
                region,
                "LoadBalancerSet",
                deadline,
            )
            .await?;
            Ok(rows
                .iter()
                .filter_map(|r| gateway_load_balancer(r, region))
                .collect())
        }
        Product::Bwp => {
            let rows = offset_paged(
                p,
                DESCRIBE_BANDWIDTH_PACKAGES,
                region,
                "BandwidthPackageSet",
                deadline,
            )
            .await?;
            let mut out: Vec<Resource> = rows
                .iter()
                .filter_map(|r| {
                    let id = r.get("BandwidthPackageId").map(value_string)?;
                    Some(resource(
                        id,
                        r.get("BandwidthPackageName").map(value_string),
                        region,
                        BTreeMap::new(),
                    ))
                })
                .collect();
            let account = p.account_id().to_string();
            add_tags(
                p,
                region,
                &mut out,
                |r| format!("qcs::vpc:{region}:uin/{account}:bandwidthPackage/{}", r.id),
                deadline,
            )
            .await;
            Ok(out)
        }
        Product::S3 => {
            let all = p.buckets(deadline).await?;
            let mut out: Vec<Resource> = all
                .iter()
                .filter(|(_, r)| r == region)
                .map(|(name, _)| {
                    let mut attributes = BTreeMap::new();
                    // Bucket names end in `-<APPID>`; the monitor names a bucket by both.
                    if let Some((_, appid)) = name.rsplit_once('-') {
                        attributes.insert("appid".to_string(), appid.to_string());
                    }
                    Resource {
                        id: name.clone(),
                        name: name.clone(),
                        region: region.to_string(),
                        tags: BTreeMap::new(),
                        attributes,
                    }
                })
                .collect();
            add_tags(
                p,
                region,
                &mut out,
                |r| {
                    let appid = r.attributes.get("appid").map(String::as_str).unwrap_or("");
                    format!("qcs::cos:{region}:uid/{appid}:bucket/{}", r.id)
                },
                deadline,
            )
            .await;
            Ok(out)
        }
        // Tencent's CLB covers application and network load balancing: no separate products.
        Product::Alb | Product::Nlb => Ok(Vec::new()),
    }
}

fn resource(
    id: String,
    name: Option<String>,
    region: &str,
    attributes: BTreeMap<String, String>,
) -> Resource {
    Resource {
        id,
        name: name.unwrap_or_default(),
        region: region.to_string(),
        tags: BTreeMap::new(),
        attributes,
    }
}

/// Tags as the listing APIs write them (`[{"TagKey": …, "TagValue": …}]`).
pub fn tags_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                value_string(t.get("TagKey")?),
                t.get("TagValue").map(value_string).unwrap_or_default(),
            ))
        })
        .collect()
}

fn first_string(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_array)
        .and_then(|a| a.first())
        .map(value_string)
        .filter(|s| !s.is_empty())
}

/// A CLB: named in the monitor by its VIP (public: `QCE/LB_PUBLIC`) or VIP and VPC (private:
/// `QCE/LB_PRIVATE`). Several VIPs: the first (IPv4) one; IPv6-only: `AddressIPv6`.
pub fn load_balancer(v: &Value, region: &str) -> Option<Resource> {
    let id = v.get("LoadBalancerId").map(value_string)?;
    let mut attributes = BTreeMap::new();
    let vip = first_string(v.get("LoadBalancerVips")).or_else(|| {
        v.get("AddressIPv6")
            .map(value_string)
            .filter(|s| !s.is_empty())
    });
    if let Some(vip) = vip {
        attributes.insert("vip".to_string(), vip);
    }
    for (key, field) in [("vpcId", "VpcId"), ("LoadBalancerType", "LoadBalancerType")] {
        if let Some(s) = v.get(field).map(value_string).filter(|s| !s.is_empty()) {
            attributes.insert(key.to_string(), s);
        }
    }
    let mut r = resource(
        id,
        v.get("LoadBalancerName").map(value_string),
        region,
        attributes,
    );
    r.tags = tags_of(v.get("Tags"));
    Some(r)
}

/// A gateway load balancer, with its VIP, VPC and target group.
pub fn gateway_load_balancer(v: &Value, region: &str) -> Option<Resource> {
    let id = v.get("LoadBalancerId").map(value_string)?;
    let mut attributes = BTreeMap::new();
    if let Some(vip) = first_string(v.get("Vips")) {
        attributes.insert("vip".to_string(), vip);
    }
    for (key, field) in [("vpcId", "VpcId"), ("targetGroupId", "TargetGroupId")] {
        if let Some(s) = v.get(field).map(value_string).filter(|s| !s.is_empty()) {
            attributes.insert(key.to_string(), s);
        }
    }
    let mut r = resource(
        id,
        v.get("LoadBalancerName").map(value_string),
        region,
        attributes,
    );
    r.tags = tags_of(v.get("Tags"));
    Some(r)
}

/// Every row of an `Offset`/`Limit` listing: pages of 100 until `TotalCount` rows arrived.
async fn offset_paged(
    p: &TencentProvider,
    api: Api,
    region: &str,
    list: &str,
    deadline: Instant,
) -> Result<Vec<Value>, CloudError> {
    let mut rows = Vec::new();
    for _ in 0..MAX_PAGES {
        let v = p
            .call(
                api,
                region,
                &json!({ "Offset": rows.len(), "Limit": PAGE_LIMIT }),
                deadline,
            )
            .await?;
        let got = v
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = v.get("TotalCount").and_then(Value::as_u64).unwrap_or(0) as usize;
        let empty = got.is_empty();
        rows.extend(got);
        // Count what arrived rather than trusting the page size to have been honoured.
        if empty || rows.len() >= total {
            break;
        }
    }
    Ok(rows)
}

/// Fill the tags of `resources` from Tag GetResources, 10 six-segment names a call. Tags are
/// secondary: when the Tag API fails (no `tag:GetResources` permission, say) the resources are
/// kept without tags and the failure is logged.
async fn add_tags(
    p: &TencentProvider,
    region: &str,
    resources: &mut [Resource],
    six_segment: impl Fn(&Resource) -> String,
    deadline: Instant,
) {
    let names: Vec<String> = resources.iter().map(&six_segment).collect();
    match resource_tags(p, region, &names, deadline).await {
        Ok(mut tags) => {
            for r in resources.iter_mut() {
                if let Some(t) = tags.remove(&r.id) {
                    r.tags = t;
                }
            }
        }
        Err(e) => tracing::warn!(
            account = p.account_id(),
            region,
            error = %e,
            "Tag GetResources failed; resources are kept without their tags"
        ),
    }
}

/// Tags by resource ID (the six-segment name's tail, so the account segment's form does not
/// matter).
async fn resource_tags(
    p: &TencentProvider,
    region: &str,
    names: &[String],
    deadline: Instant,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, CloudError> {
    let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for chunk in names.chunks(TAG_BATCH) {
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let mut body = json!({ "ResourceList": chunk });
            if !token.is_empty() {
                body["PaginationToken"] = Value::String(token.clone());
            }
            let v = p.call(GET_RESOURCES, region, &body, deadline).await?;
            for m in v
                .get("ResourceTagMappingList")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = m.get("Resource").map(value_string) {
                    let id = name.rsplit('/').next().unwrap_or("").to_string();
                    tags.entry(id).or_default().extend(tags_of(m.get("Tags")));
                }
            }
            let next = v
                .get("PaginationToken")
                .map(value_string)
                .unwrap_or_default();
            if next.is_empty() || next == token {
                break;
            }
            token = next;
        }
    }
    Ok(tags)
}

/// Every bucket of the account as (name, region), from COS GetService (all pages).
pub async fn list_buckets(
    p: &TencentProvider,
    deadline: Instant,
) -> Result<Vec<(String, String)>, CloudError> {
    let mut out = Vec::new();
    let mut marker = String::new();
    for _ in 0..MAX_PAGES {
        let mut params = vec![("max-keys".to_string(), COS_MAX_KEYS.to_string())];
        if !marker.is_empty() {
            params.push(("marker".to_string(), marker.clone()));
        }
        let body = cos_get(p, &params, deadline).await?;
        let page = parse_list_buckets(&body).map_err(|m| CloudError {
            http_status: Some(200),
            ..site("GetService", "").error(ErrorClass::BadResponse, m)
        })?;
        out.extend(page.buckets);
        match page.next_marker {
            Some(m) if page.truncated && !m.is_empty() && m != marker => marker = m,
            _ => break,
        }
    }
    Ok(out)
}

/// Classify a COS XML error code.
pub fn classify_cos(code: &str, status: u16) -> ErrorClass {
    match code {
        "SlowDown" | "RequestLimitExceeded" => ErrorClass::LimitError,
        "AccessDenied"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId"
        | "RequestTimeTooSkewed"
        | "ExpiredToken"
        | "InvalidToken"
        | "InvalidSecretId" => ErrorClass::AuthError,
        _ if status == 429 => ErrorClass::LimitError,
        _ if status >= 500 => ErrorClass::ServerError,
        _ if status == 401 || status == 403 => ErrorClass::AuthError,
        _ => ErrorClass::BadResponse,
    }
}

/// A signed GET of the COS service (`/`); the body on 2xx.
async fn cos_get(
    p: &TencentProvider,
    params: &[(String, String)],
    deadline: Instant,
) -> Result<bytes::Bytes, CloudError> {
    let site = site("GetService", "");
    let shared = p.shared();
    http::call(shared, site, p.account_id(), deadline, || async move {
        let base = p.base_url("cos");
        let (secret_id, secret_key, token) = p.credentials();
        let mut headers = vec![("host".to_string(), host_of(&base))];
        if let Some(t) = token {
            headers.push(("x-cos-security-token".to_string(), t.expose().to_string()));
        }
        let key_time = cos_key_time(shared.clock.now_s(), 3600);
        let auth = cos_authorization(
            &CosRequest {
                method: "GET",
                path: "/",
                params,
                headers: &headers,
                key_time: &key_time,
            },
            secret_id,
            secret_key.expose(),
        );
        let url = format!("{base}/?{}", crate::util::encode_query(params));
        let mut req = shared.client.get(url).header("authorization", auth);
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        let raw = http::send(shared, site, deadline, req).await?;
        if (200..300).contains(&raw.status) {
            return Ok(raw.body);
        }
        Err(xml_answer_error(site, raw.status, &raw.body, classify_cos))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_load_balancers_keep_their_monitor_names() {
        let v = json!({"LoadBalancerId":"lb-pub","LoadBalancerName":"web","LoadBalancerType":"OPEN",
            "LoadBalancerVips":["81.70.10.1"],"VpcId":"vpc-1","Tags":[{"TagKey":"CodeName","TagValue":"web"}]});
        let r = load_balancer(&v, "ap-guangzhou").unwrap();
        assert_eq!(r.id, "lb-pub");
        assert_eq!(r.code_name(), "web");
        assert_eq!(r.attributes["vip"], "81.70.10.1");
        assert_eq!(r.attributes["LoadBalancerType"], "OPEN");
        let v6 = json!({"LoadBalancerId":"lb-v6","LoadBalancerVips":[],"AddressIPv6":"2402:4e00::1","LoadBalancerType":"OPEN"});
        assert_eq!(
            load_balancer(&v6, "ap-guangzhou").unwrap().attributes["vip"],
            "2402:4e00::1"
        );
    }

    #[test]
    fn cos_errors_are_classified_by_code() {
        assert_eq!(
            classify_cos("SignatureDoesNotMatch", 403),
            ErrorClass::AuthError
        );
        assert_eq!(classify_cos("SlowDown", 503), ErrorClass::LimitError);
        assert_eq!(classify_cos("InternalError", 500), ErrorClass::ServerError);
        assert_eq!(
            classify_cos("InvalidArgument", 400),
            ErrorClass::BadResponse
        );
    }
}
