//! The simulated Tencent APIs' answers, with their real shapes, `Offset`/`Limit` paging, the
//! GetMonitorData limits (instances per call, 7200 datapoints) and errors.

use serde_json::{json, Value};

use super::catalogue;
use super::{error, ok};
use crate::cloud::Product;
use crate::sim::estate::{Estate, SimAccount, SimResource};
use crate::sim::values;
use crate::sim::{SimResponse, SimState};
use crate::util::UtcTime;

/// Region whose monitor serves COS metrics (COS documentation).
pub const COS_MONITOR_REGION: &str = "ap-guangzhou";
/// Most datapoints one GetMonitorData call may return.
pub const MAX_DATAPOINTS: usize = 7200;

/// Route an API 3.0 call.
#[allow(clippy::too_many_arguments)]
pub fn dispatch(
    state: &SimState,
    estate: &Estate,
    account: &SimAccount,
    service: &str,
    action: &str,
    version: &str,
    region: &str,
    params: &Value,
) -> SimResponse {
    let regional = !matches!((service, action), ("cvm", "DescribeRegions") | ("tag", _));
    if regional && !estate.tencent_regions.iter().any(|r| r == region) {
        return error(
            "UnsupportedRegion",
            &format!("The region `{region}` is not supported by this action."),
        );
    }
    let r = match (service, action, version) {
        ("monitor", "GetMonitorData", "2018-07-24") => {
            get_monitor_data(state, account, region, params)
        }
        ("monitor", "DescribeBaseMetrics", "2018-07-24") => Ok(describe_base_metrics(params)),
        ("cvm", "DescribeRegions", "2017-03-12") => Ok(describe_regions(estate)),
        ("clb", "DescribeLoadBalancers", "2018-03-17") => {
            listing(account, region, Product::Clb, params, "LoadBalancerSet", clb_row)
        }
        ("gwlb", "DescribeGatewayLoadBalancers", "2024-09-06") => {
            listing(account, region, Product::Gwlb, params, "LoadBalancerSet", gwlb_row)
        }
        ("vpc", "DescribeBandwidthPackages", "2017-03-12") => listing(
            account,
            region,
            Product::Bwp,
            params,
            "BandwidthPackageSet",
            bwp_row,
        ),
        ("tag", "GetResources", "2018-08-13") => get_resources(account, params),
        _ => Err(error(
            "InvalidAction",
            &format!("The action `{action}` of version `{version}` is not found for service `{service}`."),
        )),
    };
    match r {
        Ok(v) => ok(v),
        Err(e) => e,
    }
}

fn invalid(message: &str) -> SimResponse {
    error("InvalidParameterValue", message)
}

fn tags(r: &SimResource) -> Value {
    r.tags
        .iter()
        .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
        .collect()
}

fn clb_row(r: &SimResource) -> Value {
    json!({
        "LoadBalancerId": r.id,
        "LoadBalancerName": r.name,
        "LoadBalancerType": if r.internal { "INTERNAL" } else { "OPEN" },
        "Forward": 1,
        "LoadBalancerVips": [r.vip()],
        "Status": 1,
        "CreateTime": "2024-06-01 10:00:00",
        "VpcId": r.vpc(),
        "ProjectId": 0,
        "AddressIPVersion": "ipv4",
        "Tags": tags(r),
    })
}

fn gwlb_row(r: &SimResource) -> Value {
    json!({
        "LoadBalancerId": r.id,
        "LoadBalancerName": r.name,
        "VpcId": r.vpc(),
        "SubnetId": "subnet-default",
        "Vips": [r.vip()],
        "Status": 1,
        "TargetGroupId": format!("lbtg-{}", r.id.trim_start_matches("gwlb-")),
        "Tags": tags(r),
        "CreateTime": "2024-06-01 10:00:00",
        "ChargeType": "POSTPAID_BY_HOUR",
        "Isolation": 0,
    })
}

fn bwp_row(r: &SimResource) -> Value {
    json!({
        "BandwidthPackageId": r.id,
        "NetworkType": "BGP",
        "ChargeType": "TOP5_POSTPAID_BY_MONTH",
        "BandwidthPackageName": r.name,
        "CreatedTime": "2024-06-01T10:00:00Z",
        "Status": "CREATED",
        "ResourceSet": [],
        "Bandwidth": -1,
        "Egress": "center_egress1",
    })
}

/// An `Offset`/`Limit` listing (Limit 1..=100, default 20).
fn listing(
    account: &SimAccount,
    region: &str,
    product: Product,
    params: &Value,
    set: &str,
    row: fn(&SimResource) -> Value,
) -> Result<Value, SimResponse> {
    let limit = match params.get("Limit") {
        None => 20,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => return Err(invalid("The value of `Limit` must be between 1 and 100.")),
        },
    };
    let offset = match params.get("Offset") {
        None => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| invalid("The value of `Offset` must be a non-negative integer."))?
            as usize,
    };
    let all = account.resources_in(product, region);
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| row(r))
        .collect();
    Ok(json!({ "TotalCount": all.len(), set: page }))
}

fn describe_regions(estate: &Estate) -> Value {
    let set: Vec<Value> = estate
        .tencent_regions
        .iter()
        .map(|r| json!({"Region": r, "RegionName": r, "RegionState": "AVAILABLE"}))
        .collect();
    json!({"TotalCount": set.len(), "RegionSet": set})
}

fn describe_base_metrics(params: &Value) -> Value {
    let ns = params
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let wanted = params.get("MetricName").and_then(Value::as_str);
    let set: Vec<Value> = catalogue::namespace(ns)
        .iter()
        .filter(|m| wanted.is_none_or(|w| w == m.metric))
        .map(|m| {
            json!({
                "Namespace": m.namespace,
                "MetricName": m.metric,
                "Unit": m.unit,
                "UnitCname": m.unit,
                "Period": m.periods.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
                "Periods": m.periods.iter().map(|(p, s)| json!({"Period": p.to_string(), "StatType": [s]})).collect::<Vec<_>>(),
                "Meaning": {"En": "", "Zh": ""},
                "Dimensions": [{"Dimensions": []}],
                "MetricCName": m.metric,
                "MetricEName": m.metric,
            })
        })
        .collect();
    json!({ "MetricSet": set })
}

/// Tag GetResources over a `ResourceList` of at most 10 six-segment names.
fn get_resources(account: &SimAccount, params: &Value) -> Result<Value, SimResponse> {
    let list: Vec<&str> = params
        .get("ResourceList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if list.len() > 10 {
        return Err(invalid("`ResourceList` holds at most 10 resources."));
    }
    let mut out = Vec::new();
    for name in list {
        // qcs::<service>:<region>:<uin/… or uid/…>:<prefix>/<id>
        let segments: Vec<&str> = name.split(':').collect();
        let (Some(service), Some(region), Some(last)) =
            (segments.get(2), segments.get(3), segments.last())
        else {
            continue;
        };
        let product = match (*service, last.split('/').next()) {
            ("vpc", Some("bandwidthPackage")) => Product::Bwp,
            ("cos", Some("bucket")) => Product::S3,
            ("clb", Some("clb")) => Product::Clb,
            _ => continue,
        };
        let id = last.rsplit('/').next().unwrap_or("");
        if let Some(r) = account
            .resources
            .iter()
            .find(|r| r.product() == Some(product) && r.id == id && r.region == *region)
        {
            let t: Vec<Value> = r
                .tags
                .iter()
                .map(|(k, v)| json!({"TagKey": k, "TagValue": v, "Category": "Custom"}))
                .collect();
            out.push(json!({"Resource": name, "Tags": t}));
        }
    }
    Ok(json!({"PaginationToken": "", "ResourceTagMappingList": out}))
}

/// Parse an API 3.0 time (`2025-01-01T08:06:00+08:00`, or `Z`) to Unix seconds.
pub fn parse_api_time(s: &str) -> Option<i64> {
    let (local, offset_s) = if let Some(l) = s.strip_suffix('Z') {
        (l, 0)
    } else {
        let (l, off) = s.split_at(s.len().checked_sub(6)?);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let h: i64 = off.get(1..3)?.parse().ok()?;
        let m: i64 = off.get(4..6)?.parse().ok()?;
        (l, sign * (h * 3600 + m * 60))
    };
    Some(UtcTime::parse_iso8601(&format!("{local}Z"))?.to_unix() - offset_s)
}

/// The resource an instance's dimensions name in a namespace, and whether the dimension set is
/// the one the namespace uses.
fn instance_resource<'a>(
    account: &'a SimAccount,
    region: &str,
    ns: &str,
    dims: &[(String, String)],
) -> Option<&'a SimResource> {
    let get = |k: &str| dims.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let exactly = |keys: &[&str]| dims.len() == keys.len() && keys.iter().all(|k| get(k).is_some());
    let in_product = |p: Product| {
        account
            .resources
            .iter()
            .filter(move |r| r.product() == Some(p))
    };
    match ns {
        "QCE/LB_PUBLIC" if exactly(&["vip"]) => in_product(Product::Clb)
            .find(|r| !r.internal && r.region == region && Some(r.vip().as_str()) == get("vip")),
        "QCE/LB_PRIVATE" if exactly(&["vip", "vpcId"]) => in_product(Product::Clb).find(|r| {
            r.internal
                && r.region == region
                && Some(r.vip().as_str()) == get("vip")
                && Some(r.vpc().as_str()) == get("vpcId")
        }),
        "QCE/GWLB" if exactly(&["gwLoadBalancerId"]) => in_product(Product::Gwlb)
            .find(|r| r.region == region && Some(r.id.as_str()) == get("gwLoadBalancerId")),
        "QCE/BWP" if exactly(&["bandwidthPackageId"]) => in_product(Product::Bwp)
            .find(|r| r.region == region && Some(r.id.as_str()) == get("bandwidthPackageId")),
        // COS answers only in ap-guangzhou, for buckets of every region; `bucket` alone works.
        "QCE/COS"
            if region == COS_MONITOR_REGION
                && (exactly(&["bucket"]) || exactly(&["appid", "bucket"])) =>
        {
            in_product(Product::S3).find(|r| {
                Some(r.id.as_str()) == get("bucket")
                    && get("appid").is_none_or(|a| r.id.ends_with(&format!("-{a}")))
            })
        }
        _ => None,
    }
}

fn get_monitor_data(
    state: &SimState,
    account: &SimAccount,
    region: &str,
    params: &Value,
) -> Result<Value, SimResponse> {
    let s = |k: &str| params.get(k).and_then(Value::as_str);
    let ns = s("Namespace").ok_or_else(|| {
        error(
            "MissingParameter",
            "The request is missing a required parameter `Namespace`.",
        )
    })?;
    let metric = s("MetricName").ok_or_else(|| {
        error(
            "MissingParameter",
            "The request is missing a required parameter `MetricName`.",
        )
    })?;
    let instances = params
        .get("Instances")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            error(
                "MissingParameter",
                "The request is missing a required parameter `Instances`.",
            )
        })?;
    let limit = state.settings.tencent_max_instances;
    if instances.len() > limit {
        return Err(error(
            "LimitExceeded",
            &format!("The number of instances in one request exceeds the limit of {limit}."),
        ));
    }
    let Some(meta) = catalogue::find(ns, metric) else {
        return Err(invalid(&format!(
            "The metric `{metric}` does not exist in namespace `{ns}`."
        )));
    };
    let period = params.get("Period").and_then(Value::as_u64).unwrap_or(300);
    if !meta.supports(period) {
        return Err(invalid(&format!(
            "The period {period} is not supported by `{metric}`; supported: {:?}.",
            meta.periods.iter().map(|(p, _)| *p).collect::<Vec<_>>()
        )));
    }
    let now = state.clock.now_s();
    let p = period as i64;
    let end = match s("EndTime") {
        None => now,
        Some(t) => {
            parse_api_time(t).ok_or_else(|| invalid("`EndTime` is not an ISO 8601 time."))?
        }
    };
    let start = match s("StartTime") {
        None => end - 3600,
        Some(t) => {
            parse_api_time(t).ok_or_else(|| invalid("`StartTime` is not an ISO 8601 time."))?
        }
    };
    if start > end {
        return Err(invalid("`StartTime` is later than `EndTime`."));
    }
    let first = start.div_euclid(p) * p + if start.rem_euclid(p) == 0 { 0 } else { p };
    let points = if end >= first {
        ((end - first) / p + 1) as usize
    } else {
        0
    };
    if points.saturating_mul(instances.len()) > MAX_DATAPOINTS {
        return Err(invalid(&format!(
            "The request asks for {} datapoints; at most {MAX_DATAPOINTS} per request.",
            points * instances.len()
        )));
    }
    // Available once the period has ended and the ingestion delay has passed.
    let available = now - p - state.settings.ingestion_delay_s;
    let percent = meta.unit == "%";
    let mut data_points = Vec::new();
    for inst in instances {
        let dims: Vec<(String, String)> = inst
            .get("Dimensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    d.get("Name")?.as_str()?.to_string(),
                    d.get("Value")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let mut timestamps = Vec::new();
        let mut vals = Vec::new();
        if let Some(r) = instance_resource(account, region, ns, &dims) {
            let mut t = first;
            while t <= end && t <= available {
                timestamps.push(json!(t));
                vals.push(json!(values::raw_value(
                    &r.id, metric, "", t, period, percent
                )));
                t += p;
            }
        }
        // Dimensions come back in another order than sent, as the real API does.
        let mut echoed: Vec<Value> = dims
            .iter()
            .map(|(k, v)| json!({"Name": k, "Value": v}))
            .collect();
        echoed.reverse();
        data_points.push(json!({"Dimensions": echoed, "Timestamps": timestamps, "Values": vals}));
    }
    let fmt = |t: i64| crate::cloud::tencent::monitor::api_time(t);
    Ok(json!({
        "Period": period,
        "MetricName": metric,
        "DataPoints": data_points,
        "StartTime": fmt(first),
        "EndTime": fmt(end.div_euclid(p) * p),
        "Msg": "",
    }))
}

/// COS GetService: the account's buckets by name, paged with `marker`/`max-keys` (≤ 2000).
pub fn get_service(account: &SimAccount, query: &[(String, String)]) -> SimResponse {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let max_keys = match get("max-keys") {
        None | Some("") => 2000,
        Some(v) => match v.parse::<usize>() {
            Ok(n @ 1..=2000) => n,
            _ => {
                return SimResponse::xml(
                    400,
                    "<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>InvalidArgument</Code><Message>max-keys must be between 1 and 2000</Message></Error>".into(),
                )
            }
        },
    };
    let marker = get("marker").unwrap_or("");
    let mut buckets: Vec<&SimResource> = account
        .resources
        .iter()
        .filter(|r| r.product() == Some(Product::S3) && r.id.as_str() > marker)
        .collect();
    buckets.sort_by(|a, b| a.id.cmp(&b.id));
    let truncated = buckets.len() > max_keys;
    buckets.truncate(max_keys);
    let next = if truncated {
        buckets.last().map(|b| b.id.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    let mut xml = format!(
        "<?xml version='1.0' encoding='utf-8' ?>\n<ListAllMyBucketsResult><Owner><ID>qcs::cam::uin/{id}:uin/{id}</ID><DisplayName>{id}</DisplayName></Owner><Buckets>",
        id = account.account_id
    );
    for b in &buckets {
        xml.push_str(&format!(
            "<Bucket><Name>{}</Name><Location>{}</Location><CreationDate>2024-06-01T10:00:00Z</CreationDate><BucketType>cos</BucketType></Bucket>",
            b.id, b.region
        ));
    }
    xml.push_str(&format!(
        "</Buckets><Marker>{marker}</Marker><NextMarker>{next}</NextMarker><IsTruncated>{truncated}</IsTruncated><MaxKeys>{max_keys}</MaxKeys></ListAllMyBucketsResult>"
    ));
    SimResponse::xml(200, xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_times_parse_with_their_offset() {
        assert_eq!(
            parse_api_time("2025-01-01T08:00:00+08:00"),
            Some(1_735_689_600)
        );
        assert_eq!(parse_api_time("2025-01-01T00:00:00Z"), Some(1_735_689_600));
        assert_eq!(
            parse_api_time("2024-12-31T19:00:00-05:00"),
            Some(1_735_689_600)
        );
        assert_eq!(parse_api_time("yesterday"), None);
    }
}
