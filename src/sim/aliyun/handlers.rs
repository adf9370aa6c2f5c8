//! The simulated Aliyun APIs' answers, with their real shapes, page-size limits and errors.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::catalogue::{self, MetricMeta};
use super::error;
use crate::cloud::Product;
use crate::sim::estate::{Estate, SimAccount, SimResource};
use crate::sim::values;
use crate::sim::{request_id, SimResponse, SimState};

fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn bad(message: &str) -> SimResponse {
    error(400, "InvalidParameter", message)
}

/// Page size in `1..=max`, default `default`.
fn page_size(
    params: &[(String, String)],
    key: &str,
    default: usize,
    max: usize,
) -> Result<usize, SimResponse> {
    match get(params, key) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad(&format!(
                "The parameter {key} must be between 1 and {max}."
            ))),
        },
    }
}

fn token_offset(params: &[(String, String)]) -> Result<usize, SimResponse> {
    match get(params, "NextToken") {
        None | Some("") => Ok(0),
        Some(t) => t
            .strip_prefix("tok-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("The NextToken is invalid.")),
    }
}

fn region_of(estate: &Estate, params: &[(String, String)]) -> Result<String, SimResponse> {
    let Some(r) = get(params, "RegionId") else {
        return Err(error(
            400,
            "MissingRegionId",
            "RegionId is mandatory for this action.",
        ));
    };
    if !estate.regions.iter().any(|x| x == r) {
        return Err(error(
            400,
            "InvalidRegionId",
            "The specified region does not exist.",
        ));
    }
    Ok(r.to_string())
}

/// Route an RPC call.
pub fn dispatch(
    state: &SimState,
    estate: &Estate,
    account: &SimAccount,
    action: &str,
    version: &str,
    params: &[(String, String)],
) -> SimResponse {
    let r = match (action, version) {
        ("DescribeMetricLast", "2019-01-01") => describe_metric_last(state, estate, account, params),
        ("DescribeMetricMetaList", "2019-01-01") => describe_metric_meta_list(params),
        ("DescribeRegions", "2014-05-15") => Ok(describe_regions(estate)),
        ("DescribeLoadBalancers", "2014-05-15") => slb_load_balancers(estate, account, params),
        ("ListLoadBalancers", "2020-06-16") => list_load_balancers(estate, account, params, Product::Alb, 100),
        ("ListLoadBalancers", "2022-04-30") => list_load_balancers(estate, account, params, Product::Nlb, 100),
        ("ListLoadBalancers", "2024-04-15") => list_load_balancers(estate, account, params, Product::Gwlb, 1000),
        ("DescribeCommonBandwidthPackages", "2016-04-28") => bandwidth_packages(estate, account, params),
        ("ListTagResources", "2018-08-28") => list_tag_resources(estate, account, params),
        _ => Err(error(404, "InvalidAction.NotFound", &format!("Specified api {action} ({version}) is not found, please check your url and method."))),
    };
    match r {
        Ok(v) => SimResponse::json(200, &v),
        Err(e) => e,
    }
}

/// Namespace → product.
pub fn namespace_product(ns: &str) -> Option<Product> {
    Some(match ns {
        "acs_slb_dashboard" => Product::Clb,
        "acs_alb" => Product::Alb,
        "acs_nlb" => Product::Nlb,
        "acs_gwlb" => Product::Gwlb,
        "acs_bandwidth_package" => Product::Bwp,
        "acs_oss_dashboard" => Product::S3,
        _ => return None,
    })
}

/// The dimension key holding the resource ID of a metric.
pub fn resource_dimension(meta: &MetricMeta) -> &'static str {
    meta.dimensions
        .iter()
        .find(|d| **d != "userId" && **d != "region" && !meta.fan_out.iter().any(|(k, _)| k == *d))
        .copied()
        .unwrap_or("instanceId")
}

/// Every combination of a metric's fan-out dimensions: (extra-key for values, dimension pairs).
pub fn fan_out_combinations(meta: &MetricMeta) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let mut combos: Vec<Vec<(&'static str, &'static str)>> = vec![Vec::new()];
    for (key, vals) in meta.fan_out {
        let mut next = Vec::new();
        for c in &combos {
            for v in *vals {
                let mut c2 = c.clone();
                c2.push((*key, *v));
                next.push(c2);
            }
        }
        combos = next;
    }
    combos
        .into_iter()
        .map(|c| {
            let extra = c.iter().map(|(_, v)| *v).collect::<Vec<_>>().join("|");
            (extra, c)
        })
        .collect()
}

/// The newest available point time (Unix s) in `(start, end]` for `period`, if any.
pub fn newest_point(
    now_s: i64,
    start_ms: i64,
    end_ms: i64,
    period: u64,
    delay_s: i64,
) -> Option<i64> {
    let p = period as i64;
    // Available once the period has ended and the ingestion delay has passed.
    let latest_available = (now_s - p - delay_s).div_euclid(p) * p;
    let latest_in_window = end_ms.div_euclid(1000).div_euclid(p) * p;
    let t = latest_available.min(latest_in_window);
    (t * 1000 > start_ms).then_some(t)
}

fn describe_metric_last(
    state: &SimState,
    estate: &Estate,
    account: &SimAccount,
    params: &[(String, String)],
) -> Result<Value, SimResponse> {
    let region = region_of(estate, params)?;
    let ns = get(params, "Namespace").ok_or_else(|| bad("Namespace is mandatory."))?;
    let metric = get(params, "MetricName").ok_or_else(|| bad("MetricName is mandatory."))?;
    let length = page_size(params, "Length", 1000, 1440)?;
    let offset = token_offset(params)?;
    let Some(product) = namespace_product(ns) else {
        return Err(error(
            400,
            "ParameterInvalid",
            &format!("The namespace {ns} does not exist."),
        ));
    };
    let Some(meta) = catalogue::find(ns, metric) else {
        return Ok(
            json!({"Code": "200", "Success": true, "RequestId": request_id(), "Period": get(params, "Period").unwrap_or("60"), "Datapoints": "[]"}),
        );
    };
    let period: u64 = match get(params, "Period") {
        None => meta.periods[0],
        Some(p) => match p.parse() {
            Ok(n) if meta.periods.contains(&n) => n,
            _ => {
                return Err(error(
                    400,
                    "ParameterInvalid",
                    &format!(
                        "The period {p} is not supported by {metric}; supported: {:?}.",
                        meta.periods
                    ),
                ))
            }
        },
    };
    let parse_ms = |k: &str| get(params, k).and_then(|s| s.parse::<i64>().ok());
    let now_s = state.clock.now_s();
    let end_ms = parse_ms("EndTime").unwrap_or(now_s * 1000);
    let start_ms = parse_ms("StartTime").unwrap_or(end_ms - 3_600_000);
    let filters: Option<Vec<Map<String, Value>>> = match get(params, "Dimensions") {
        None | Some("") => None,
        Some(d) => {
            let v: Value =
                serde_json::from_str(d).map_err(|_| bad("Dimensions is not valid JSON."))?;
            let list = match v {
                Value::Array(a) => a,
                o @ Value::Object(_) => vec![o],
                _ => return Err(bad("Dimensions must be an object or an array of objects.")),
            };
            if list.len() > 50 {
                return Err(error(
                    400,
                    "ParameterInvalid",
                    "The dimensions size exceed max 50.",
                ));
            }
            Some(
                list.into_iter()
                    .filter_map(|x| x.as_object().cloned())
                    .collect(),
            )
        }
    };
    let dim_key = resource_dimension(meta);
    let percent = meta.unit == "%";
    let mut rows = Vec::new();
    for r in account.resources_in(product, &region) {
        for (extra, combo) in fan_out_combinations(meta) {
            let mut row = Map::new();
            row.insert("userId".into(), json!(account.account_id));
            row.insert(dim_key.into(), json!(r.id));
            if meta.dimensions.contains(&"region") {
                row.insert("region".into(), json!(r.region));
            }
            for (k, v) in &combo {
                row.insert((*k).into(), json!(v));
            }
            if let Some(fs) = &filters {
                let matches = fs.iter().any(|f| {
                    f.iter()
                        .all(|(k, v)| k == "userId" || row.get(k).is_some_and(|x| x == v))
                });
                if !matches {
                    continue;
                }
            }
            let Some(t) = newest_point(
                now_s,
                start_ms,
                end_ms,
                period,
                state.settings.ingestion_delay_s,
            ) else {
                continue;
            };
            let v = values::raw_value(&r.id, metric, &extra, t, period, percent);
            row.insert("timestamp".into(), json!(t * 1000));
            for s in meta.statistics {
                if let Some(x) = values::statistic(v, s, period) {
                    row.insert((*s).into(), json!(x));
                }
            }
            rows.push(Value::Object(row));
        }
    }
    let page: Vec<Value> = rows.iter().skip(offset).take(length).cloned().collect();
    let mut out = json!({
        "Code": "200",
        "Success": true,
        "RequestId": request_id(),
        "Period": period.to_string(),
        "Datapoints": Value::Array(page).to_string(),
    });
    if offset + length < rows.len() {
        out["NextToken"] = json!(format!("tok-{}", offset + length));
    }
    Ok(out)
}

fn describe_metric_meta_list(params: &[(String, String)]) -> Result<Value, SimResponse> {
    let ns = get(params, "Namespace");
    let page = get(params, "PageNumber")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let size = page_size(params, "PageSize", 30, 10_000)?;
    let metric = get(params, "MetricName");
    let all: Vec<&MetricMeta> = catalogue::CATALOGUE
        .iter()
        .filter(|m| ns.is_none_or(|n| n == m.namespace) && metric.is_none_or(|x| x == m.metric))
        .collect();
    let rows: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|m| {
            json!({
                "Description": "",
                "MetricName": m.metric,
                "Namespace": m.namespace,
                "Periods": m.periods.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
                "Statistics": m.statistics.join(","),
                "Dimensions": m.dimensions.join(","),
                "Unit": m.unit,
                "Labels": "[]",
            })
        })
        .collect();
    Ok(json!({
        "Code": "200", "Success": true, "RequestId": request_id(),
        "TotalCount": all.len(),
        "Resources": {"Resource": rows},
    }))
}

fn describe_regions(estate: &Estate) -> Value {
    let regions: Vec<Value> = estate
        .regions
        .iter()
        .map(|r| json!({"RegionId": r, "LocalName": r, "RegionEndpoint": format!("slb.{r}.aliyuncs.com")}))
        .collect();
    json!({"RequestId": request_id(), "Regions": {"Region": regions}})
}

fn tag_list(tags: &BTreeMap<String, String>, key: &str, value: &str) -> Vec<Value> {
    tags.iter()
        .map(|(k, v)| json!({key: k, value: v}))
        .collect()
}

fn slb_load_balancers(
    estate: &Estate,
    account: &SimAccount,
    params: &[(String, String)],
) -> Result<Value, SimResponse> {
    let region = region_of(estate, params)?;
    let size = page_size(params, "PageSize", 10, 100)?;
    let page = get(params, "PageNumber")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let all = account.resources_in(Product::Clb, &region);
    let rows: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            json!({
                "LoadBalancerId": r.id, "LoadBalancerName": r.name, "Address": "47.1.2.3",
                "AddressType": "internet", "NetworkType": "vpc", "LoadBalancerStatus": "active",
                "RegionId": region, "VpcId": "vpc-sim",
                "Tags": {"Tag": tag_list(&r.tags, "TagKey", "TagValue")},
            })
        })
        .collect();
    Ok(json!({
        "RequestId": request_id(), "PageNumber": page, "PageSize": size, "TotalCount": all.len(),
        "LoadBalancers": {"LoadBalancer": rows},
    }))
}

fn list_load_balancers(
    estate: &Estate,
    account: &SimAccount,
    params: &[(String, String)],
    product: Product,
    max: usize,
) -> Result<Value, SimResponse> {
    let region = region_of(estate, params)?;
    let size = page_size(params, "MaxResults", 20, max)?;
    let offset = token_offset(params)?;
    let all = account.resources_in(product, &region);
    let rows: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|r| {
            json!({
                "LoadBalancerId": r.id, "LoadBalancerName": r.name, "LoadBalancerStatus": "Active",
                "VpcId": "vpc-sim", "RegionId": region,
                "Tags": tag_list(&r.tags, "Key", "Value"),
            })
        })
        .collect();
    let next = if offset + size < all.len() {
        format!("tok-{}", offset + size)
    } else {
        String::new()
    };
    Ok(json!({
        "RequestId": request_id(), "MaxResults": size, "NextToken": next, "TotalCount": all.len(),
        "LoadBalancers": rows,
    }))
}

fn bandwidth_packages(
    estate: &Estate,
    account: &SimAccount,
    params: &[(String, String)],
) -> Result<Value, SimResponse> {
    let region = region_of(estate, params)?;
    let size = page_size(params, "PageSize", 10, 50)?;
    let page = get(params, "PageNumber")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let all = account.resources_in(Product::Bwp, &region);
    let rows: Vec<Value> = all
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| {
            json!({
                "BandwidthPackageId": r.id, "Name": r.name, "Bandwidth": "100", "Status": "Available",
                "RegionId": region,
                "PublicIpAddresses": {"PublicIpAddresse": [{"AllocationId": "eip-sim", "IpAddress": "47.1.2.4"}]},
                "Tags": {"Tag": tag_list(&r.tags, "Key", "Value")},
            })
        })
        .collect();
    Ok(json!({
        "RequestId": request_id(), "PageNumber": page, "PageSize": size, "TotalCount": all.len(),
        "CommonBandwidthPackages": {"CommonBandwidthPackage": rows},
    }))
}

fn list_tag_resources(
    estate: &Estate,
    account: &SimAccount,
    params: &[(String, String)],
) -> Result<Value, SimResponse> {
    region_of(estate, params)?;
    let size = page_size(params, "PageSize", 50, 1000)?;
    let offset = token_offset(params)?;
    let arns: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k.starts_with("ResourceARN."))
        .map(|(_, v)| v.as_str())
        .collect();
    if arns.len() > 50 {
        return Err(bad("ResourceARN must not contain more than 50 items."));
    }
    let mut rows = Vec::new();
    for arn in arns {
        let Some(id) = arn.rsplit('/').next() else {
            continue;
        };
        if let Some(r) = account.resources.iter().find(|r| r.id == id) {
            let tags: Vec<Value> = r
                .tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v, "Category": "Custom"}))
                .chain(std::iter::once(
                    json!({"Key": "acs:rm:rgId", "Value": "rg-sim", "Category": "System"}),
                ))
                .collect();
            rows.push(json!({"ResourceARN": arn, "Tags": tags}));
        }
    }
    let page: Vec<Value> = rows.iter().skip(offset).take(size).cloned().collect();
    let next = if offset + size < rows.len() {
        format!("tok-{}", offset + size)
    } else {
        String::new()
    };
    Ok(json!({"RequestId": request_id(), "NextToken": next, "TagResources": page}))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// OSS ListBuckets (GetService): every bucket of the account, `max-keys` ≤ 1000, `marker` paging.
pub fn list_buckets(account: &SimAccount, query: &[(String, String)]) -> SimResponse {
    let max_keys = match get(query, "max-keys").map(|s| s.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        _ => {
            return SimResponse::xml(
                400,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>max-keys must be between 1 and 1000.</Message></Error>".into(),
            )
        }
    };
    let marker = get(query, "marker").unwrap_or("");
    let mut buckets: Vec<&SimResource> = account
        .resources
        .iter()
        .filter(|r| r.product() == Some(Product::S3) && r.id.as_str() > marker)
        .collect();
    buckets.sort_by(|a, b| a.id.cmp(&b.id));
    let truncated = buckets.len() > max_keys;
    buckets.truncate(max_keys);
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult>\n");
    xml.push_str(&format!(
        "  <Prefix></Prefix><Marker>{}</Marker><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(marker)
    ));
    if truncated {
        if let Some(last) = buckets.last() {
            xml.push_str(&format!(
                "<NextMarker>{}</NextMarker>",
                xml_escape(&last.id)
            ));
        }
    }
    xml.push_str(&format!(
        "\n  <Owner><ID>{0}</ID><DisplayName>{0}</DisplayName></Owner>\n  <Buckets>\n",
        account.account_id
    ));
    for b in buckets {
        xml.push_str(&format!(
            "    <Bucket><CreationDate>2024-01-01T00:00:00.000Z</CreationDate><ExtranetEndpoint>oss-{r}.aliyuncs.com</ExtranetEndpoint><IntranetEndpoint>oss-{r}-internal.aliyuncs.com</IntranetEndpoint><Location>oss-{r}</Location><Name>{n}</Name><Region>{r}</Region><StorageClass>Standard</StorageClass></Bucket>\n",
            r = b.region,
            n = xml_escape(&b.id)
        ));
    }
    xml.push_str("  </Buckets>\n</ListAllMyBucketsResult>\n");
    SimResponse::xml(200, xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_point_respects_window_and_ingestion_delay() {
        // now 00:10:30, period 60, delay 30 → newest available 00:09:00 (ended 00:10:00 + 30s).
        let now = 1_735_690_230;
        let t = newest_point(now, 0, now * 1000, 60, 30).unwrap();
        assert_eq!(t, 1_735_690_140);
        // delay 60: 00:09 ends 00:10, available at 00:11 > now → 00:08.
        assert_eq!(
            newest_point(now, 0, now * 1000, 60, 60),
            Some(1_735_690_080)
        );
        // The window's end cuts earlier.
        assert_eq!(
            newest_point(now, 0, 1_735_690_000_000, 60, 30),
            Some(1_735_689_960)
        );
        // Left-open start.
        assert_eq!(
            newest_point(now, 1_735_690_140_000, now * 1000, 60, 30),
            None
        );
    }

    #[test]
    fn every_catalogue_metric_has_a_resource_dimension() {
        for m in catalogue::CATALOGUE {
            assert!(namespace_product(m.namespace).is_some(), "{}", m.namespace);
            assert_ne!(resource_dimension(m), "userId");
        }
    }
}
