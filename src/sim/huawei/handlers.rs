//! The simulated Huawei APIs' answers: IAM regions and projects, ELB v3 load balancers
//! (`marker` paging), CES batch-query-metric-data (500 metrics; 3000 datapoints, past which
//! `from` is silently moved forward; values from [`crate::sim::values`] with the filter), and
//! OBS ListBuckets and GetBucketTagging.

use serde_json::{json, Value};

use super::{error, obs_error};
use crate::cloud::Product;
use crate::sim::estate::{Estate, SimAccount, SimResource};
use crate::sim::{values, SimRequest, SimResponse, SimState};
use crate::util::fnv1a32;

/// Most metrics in one CES call.
pub const MAX_METRICS: usize = 500;
/// Most datapoints in one CES answer.
pub const MAX_DATAPOINTS: i64 = 3000;

/// The simulated project ID of an account's region (32 hex digits, deterministic).
pub fn project_id(account_id: &str, region: &str) -> String {
    let a = fnv1a32(format!("{account_id}|{region}").as_bytes());
    let b = fnv1a32(format!("{region}|{account_id}").as_bytes());
    format!(
        "{a:08x}{b:08x}{:08x}{:08x}",
        a.rotate_left(7),
        b.rotate_left(11)
    )
}

/// The region whose project ID is `pid`.
fn region_of<'a>(estate: &'a Estate, account: &SimAccount, pid: &str) -> Option<&'a str> {
    estate
        .huawei_regions
        .iter()
        .find(|r| project_id(&account.account_id, r) == pid)
        .map(String::as_str)
}

/// Route a signed JSON call by path.
pub fn dispatch(
    state: &SimState,
    estate: &Estate,
    account: &SimAccount,
    req: &SimRequest,
    api: &str,
    query: &[(String, String)],
) -> SimResponse {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match api {
        "iam.KeystoneListRegions" => SimResponse::json(
            200,
            &json!({"regions": estate.huawei_regions.iter().map(|r| json!({"id": r, "type": "public", "locales": {"en-us": r}})).collect::<Vec<_>>()}),
        ),
        "iam.KeystoneListProjects" => {
            let projects: Vec<Value> = estate
                .huawei_regions
                .iter()
                .filter(|r| get("name").is_none_or(|n| n == r.as_str()))
                .map(|r| json!({"id": project_id(&account.account_id, r), "name": r, "domain_id": account.account_id, "enabled": true}))
                .collect();
            SimResponse::json(200, &json!({"projects": projects}))
        }
        "elb.ListLoadBalancers" | "ces.BatchListMetricData" => {
            let pid = req.path.split('/').nth(2).unwrap_or("");
            let Some(region) = region_of(estate, account, pid) else {
                return error(
                    404,
                    "APIGW.0101",
                    "The API does not exist or has not been published in the environment.",
                );
            };
            if api == "elb.ListLoadBalancers" {
                load_balancers(account, region, get("limit"), get("marker"))
            } else {
                batch_query(state, account, region, &req.body)
            }
        }
        _ => error(
            404,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment.",
        ),
    }
}

fn load_balancers(
    account: &SimAccount,
    region: &str,
    limit: Option<&str>,
    marker: Option<&str>,
) -> SimResponse {
    let limit = match limit.map(str::parse::<usize>) {
        None => 2000,
        Some(Ok(n @ 0..=2000)) => n.max(1),
        _ => return error(400, "ELB.8902", "limit must be between 0 and 2000."),
    };
    let all = account.resources_in(Product::Clb, region);
    let start = match marker {
        None | Some("") => 0,
        Some(m) => match all.iter().position(|r| r.id == m) {
            Some(i) => i + 1,
            None => return error(400, "ELB.8902", "marker does not exist."),
        },
    };
    let page: Vec<&&SimResource> = all.iter().skip(start).take(limit).collect();
    let rows: Vec<Value> = page
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "vip_address": r.vip(),
                "vpc_id": r.vpc(),
                "provisioning_status": "ACTIVE",
                "operating_status": "ONLINE",
                "tags": r.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                "created_at": "2024-06-01T10:00:00Z",
            })
        })
        .collect();
    let next = if start + page.len() < all.len() {
        page.last().map(|r| json!(r.id)).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    SimResponse::json(
        200,
        &json!({"loadbalancers": rows, "page_info": {"next_marker": next, "current_count": rows.len()}, "request_id": crate::sim::request_id()}),
    )
}

fn batch_query(state: &SimState, account: &SimAccount, region: &str, body: &[u8]) -> SimResponse {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(400, "ces.0014", "The request body is not JSON.");
    };
    let metrics = v
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if metrics.is_empty() || metrics.len() > MAX_METRICS {
        return error(400, "ces.0014", "metrics must hold 1 to 500 items.");
    }
    let (Some(mut from), Some(to)) = (
        v.get("from").and_then(Value::as_i64),
        v.get("to").and_then(Value::as_i64),
    ) else {
        return error(400, "ces.0014", "from and to are required.");
    };
    if from >= to {
        return error(400, "ces.0014", "from must be earlier than to.");
    }
    let period = v.get("period").and_then(Value::as_str).unwrap_or("");
    let period_s: u64 = match period {
        "1" => 60,
        "300" | "1200" | "3600" | "14400" | "86400" => period.parse().unwrap_or(300),
        _ => {
            return error(
                400,
                "ces.0014",
                "period must be 1, 300, 1200, 3600, 14400 or 86400.",
            )
        }
    };
    let filter = v.get("filter").and_then(Value::as_str).unwrap_or("");
    let stat = match filter {
        "average" => "Average",
        "max" => "Maximum",
        "min" => "Minimum",
        "sum" => "Sum",
        _ => {
            return error(
                400,
                "ces.0014",
                "filter must be average, max, min, sum or variance.",
            )
        }
    };
    let interval = period_s as i64 * 1000;
    // The 3000-datapoint rule: the API keeps the newest part of the window, silently.
    let allowed = (MAX_DATAPOINTS / metrics.len() as i64).max(1);
    if metrics.len() as i64 * ((to - from) / interval) > MAX_DATAPOINTS {
        from = to - allowed * interval;
    }
    let now_ms = state.clock.now_ms();
    let mut out = Vec::new();
    for m in &metrics {
        let ns = m.get("namespace").and_then(Value::as_str).unwrap_or("");
        let name = m.get("metric_name").and_then(Value::as_str).unwrap_or("");
        let dims = m.get("dimensions").cloned().unwrap_or(json!([]));
        let dim_value = dims
            .pointer("/0/value")
            .and_then(Value::as_str)
            .unwrap_or("");
        let product = match ns {
            "SYS.ELB" => Some(Product::Clb),
            "SYS.OBS" => Some(Product::S3),
            _ => None,
        };
        let resource = product.and_then(|p| {
            account
                .resources
                .iter()
                .find(|r| r.product() == Some(p) && r.region == region && r.id == dim_value)
        });
        let mut points = Vec::new();
        if let Some(r) = resource {
            let mut t = from.div_euclid(interval) * interval;
            if t < from {
                t += interval;
            }
            while t < to {
                if t + interval + state.settings.ingestion_delay_s * 1000 <= now_ms {
                    let raw = values::raw_value(&r.id, name, "", t / 1000, period_s, false);
                    if let Some(x) = values::statistic(raw, stat, period_s) {
                        points.push(json!({filter: x, "timestamp": t, "unit": "count"}));
                    }
                }
                t += interval;
            }
        }
        out.push(json!({"namespace": ns, "metric_name": name, "dimensions": dims, "datapoints": points, "unit": "count"}));
    }
    SimResponse::json(200, &json!({"metrics": out}))
}

/// OBS ListBuckets (with locations) and GetBucketTagging.
pub fn obs(account: &SimAccount, req: &SimRequest, query: &[(String, String)]) -> SimResponse {
    let mut buckets: Vec<&SimResource> = account
        .resources
        .iter()
        .filter(|r| r.product() == Some(Product::S3))
        .collect();
    buckets.sort_by(|a, b| a.id.cmp(&b.id));
    if req.path == "/" {
        let with_location = req.header("x-obs-location") == Some("true");
        let rows: String = buckets
            .iter()
            .map(|b| {
                let loc = if with_location { format!("<Location>{}</Location>", b.region) } else { String::new() };
                format!("<Bucket><Name>{}</Name><CreationDate>2024-06-01T10:00:00.000Z</CreationDate>{loc}<BucketType>OBJECT</BucketType></Bucket>", b.id)
            })
            .collect();
        return SimResponse::xml(200, format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><ListAllMyBucketsResult xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><Owner><ID>{}</ID></Owner><Buckets>{rows}</Buckets></ListAllMyBucketsResult>", account.account_id));
    }
    let name = req.path.trim_start_matches('/').trim_end_matches('/');
    let Some(b) = buckets.iter().find(|b| b.id == name) else {
        return obs_error(404, "NoSuchBucket", "The specified bucket does not exist.");
    };
    if query.iter().any(|(k, _)| k == "tagging") {
        if b.tags.is_empty() {
            return obs_error(404, "NoSuchTagSet", "The TagSet does not exist.");
        }
        let tags: String = b
            .tags
            .iter()
            .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
            .collect();
        return SimResponse::xml(200, format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><Tagging xmlns=\"http://obs.myhwclouds.com/doc/2015-06-30/\"><TagSet>{tags}</TagSet></Tagging>"));
    }
    obs_error(
        400,
        "NotImplemented",
        "The simulator serves ListBuckets and GetBucketTagging.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::sim::SimSettings;

    /// 2025-01-01T00:10:30Z.
    const NOW: i64 = 1_735_690_230;

    #[test]
    fn http_dates_round_trip() {
        let d = crate::cloud::huawei::httpdate(NOW);
        assert_eq!(super::super::parse_http_date(&d), Some(NOW));
        assert_eq!(super::super::parse_http_date("yesterday"), None);
    }

    #[test]
    fn more_than_3000_datapoints_moves_from_forward_silently() {
        let estate = Estate::from_toml(
            r#"regions = []
huawei_regions = ["cn-north-4"]
[[accounts]]
cloud = "huawei"
account_id = "d1"
access_key_id = "ak"
access_key_secret = "sk"
[[accounts.generate]]
product = "clb"
region = "cn-north-4"
count = 100
prefix = "elb"
"#,
        )
        .unwrap();
        let state = SimState::new(estate.clone(), Clock::Fixed(NOW), SimSettings::default());
        let account = &estate.accounts[0];
        let metrics: Vec<Value> = account
            .resources
            .iter()
            .map(|r| json!({"namespace": "SYS.ELB", "metric_name": "m1_cps", "dimensions": [{"name": "lbaas_instance_id", "value": r.id}]}))
            .collect();
        // 100 metrics × 60 points = 6000 > 3000: only the newest 30 minutes are answered.
        let to = (NOW / 60 - 1) * 60_000;
        let body = json!({"metrics": metrics, "from": to - 60 * 60_000, "to": to, "period": "1", "filter": "average"});
        let r = batch_query(&state, account, "cn-north-4", body.to_string().as_bytes());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let points = v
            .pointer("/metrics/0/datapoints")
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(points.len(), 30);
        let oldest = points
            .iter()
            .filter_map(|p| p["timestamp"].as_i64())
            .min()
            .unwrap();
        assert_eq!(oldest, to - 30 * 60_000);
        // Within the rule the whole window is answered.
        let body = json!({"metrics": &metrics[..50], "from": to - 60 * 60_000, "to": to, "period": "1", "filter": "average"});
        let r = batch_query(&state, account, "cn-north-4", body.to_string().as_bytes());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v.pointer("/metrics/0/datapoints")
                .and_then(Value::as_array)
                .unwrap()
                .len(),
            60
        );
    }
}
