//! Cloud Eye (CES v1) `batch-query-metric-data`: up to 500 metrics of any resources a call,
//! under a rule of at most 3000 datapoints a response (`metrics × points in the window`; past
//! it the API silently moves `from` forward). So the window is sized to what the newest complete
//! point needs, and a (region, period)'s (metric, resource) pairs are packed into
//! ⌈pairs / min(500, 3000 / points)⌉ calls.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::HuaweiProvider;
use crate::cloud::period::{choose_period, window};
use crate::cloud::{CallContext, CloudError, FetchItem, FetchOutcome, Point, Resource};
use crate::mapping::ProductCloudSpec;
use crate::util::value_string;

/// Most metrics in one call.
pub const MAX_METRICS: usize = 500;
/// Most datapoints one answer holds.
pub const MAX_DATAPOINTS: usize = 3000;
/// CES periods in seconds; `60` is sent as `"1"` (raw data, one point a minute).
pub const PERIODS: &[u64] = &[60, 300, 1200, 3600, 14_400, 86_400];

/// The CES `period` value of a period in seconds.
pub fn period_param(period_s: u64) -> String {
    if period_s <= 60 {
        "1".to_string()
    } else {
        period_s.to_string()
    }
}

/// Metrics per call for windows of `points` points: both rules hold.
pub fn metrics_per_call(points: usize) -> usize {
    (MAX_DATAPOINTS / points.max(1)).clamp(1, MAX_METRICS)
}

/// What a call shares: period, window (`from`, `to` in ms) and filter.
type CallKey = (u64, i64, i64, String);
/// Datapoints of an answer by (metric name, sorted dimension name=value pairs).
type AnswerPoints = HashMap<(String, Vec<String>), Vec<(i64, f64)>>;

/// The sorted `name=value` pairs of a `dimensions` array (answers may reorder them).
fn dimension_key(dims: Option<&Value>) -> Vec<String> {
    let mut key: Vec<String> = dims
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{}={}",
                d.get("name").map(value_string).unwrap_or_default(),
                d.get("value").map(value_string).unwrap_or_default()
            )
        })
        .collect();
    key.sort();
    key
}

/// One (metric, resource) pair of a call.
struct Pair {
    item: usize,
    resource_id: String,
    metric: Value,
    filter: String,
}

/// Fetch every item of a job.
pub async fn fetch(
    p: &HuaweiProvider,
    ctx: &CallContext,
    region: &str,
    spec: &ProductCloudSpec,
    items: &[FetchItem],
    resources: &[Resource],
) -> FetchOutcome {
    let mut out = FetchOutcome::default();
    if items.is_empty() || resources.is_empty() {
        return out;
    }
    let project = match p.project_id(region, ctx.deadline).await {
        Ok(id) => id,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let now_ms = p.shared().clock.now_ms();
    // (period, from, to, filter) → pairs; a call carries one period, window and filter.
    let mut groups: BTreeMap<CallKey, Vec<Pair>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let src = &item.source;
        let period = choose_period(
            PERIODS,
            ctx.scrape_interval_s,
            src.period,
            ctx.period_fallback_s,
        );
        let (start, end) = window(now_ms, period, ctx.ingestion_delay_s);
        let p_ms = (period * 1000) as i64;
        for r in resources {
            let Some(target) = spec.target(r) else {
                continue;
            };
            let dims: Vec<Value> = target
                .dimensions
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            groups
                .entry((period, start + p_ms, end + p_ms, src.statistic.clone()))
                .or_default()
                .push(Pair {
                    item: i,
                    resource_id: r.id.clone(),
                    metric: json!({"namespace": target.namespace, "metric_name": src.metric, "dimensions": dims}),
                    filter: src.statistic.clone(),
                });
        }
    }
    let mut calls: Vec<(CallKey, Vec<Pair>)> = Vec::new();
    for (key, pairs) in groups {
        let points = ((key.2 - key.1) / (key.0 as i64 * 1000)).max(1) as usize;
        let size = metrics_per_call(points);
        let mut it = pairs.into_iter().peekable();
        while it.peek().is_some() {
            calls.push((key.clone(), it.by_ref().take(size).collect()));
        }
    }
    let path = format!("/V1.0/{project}/batch-query-metric-data");
    let results: Vec<(_, Result<Value, CloudError>)> = stream::iter(calls)
        .map(|((period, from, to, filter), pairs)| {
            let path = path.clone();
            async move {
                let body = json!({
                    "metrics": pairs.iter().map(|x| x.metric.clone()).collect::<Vec<_>>(),
                    "from": from,
                    "to": to,
                    "period": period_param(period),
                    "filter": filter,
                });
                let r = p
                    .call(
                        "BatchListMetricData",
                        "ces",
                        region,
                        reqwest::Method::POST,
                        &path,
                        &[],
                        Some(&body),
                        ctx.deadline,
                    )
                    .await;
                ((period, pairs), r)
            }
        })
        .buffer_unordered(ctx.metric_concurrency.max(1))
        .collect()
        .await;
    for ((period, pairs), r) in results {
        out.calls += 1;
        let v = match r {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        // Answers are matched by (metric name, dimension values), not by order.
        let mut by_key: AnswerPoints = HashMap::new();
        for m in v
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = m.get("metric_name").map(value_string).unwrap_or_default();
            let dims = dimension_key(m.get("dimensions"));
            let filter = pairs
                .first()
                .map(|x| x.filter.as_str())
                .unwrap_or("average");
            let points: Vec<(i64, f64)> = m
                .get("datapoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| Some((d.get("timestamp")?.as_i64()?, d.get(filter)?.as_f64()?)))
                .collect();
            by_key.insert((name, dims), points);
        }
        let p_ms = (period * 1000) as i64;
        for pair in &pairs {
            let name = pair
                .metric
                .get("metric_name")
                .map(value_string)
                .unwrap_or_default();
            let dims = dimension_key(pair.metric.get("dimensions"));
            let Some(points) = by_key.get(&(name, dims)) else {
                continue;
            };
            let Some((ts, value)) = points
                .iter()
                .filter(|(t, v)| v.is_finite() && t + p_ms <= now_ms)
                .max_by_key(|(t, _)| *t)
            else {
                continue;
            };
            out.points.push(Point {
                item: pair.item,
                resource_id: pair.resource_id.clone(),
                value: *value,
                period_s: period,
                timestamp_ms: *ts,
                dimensions: Vec::new(),
            });
        }
    }
    out.points
        .sort_by(|a, b| (a.item, &a.resource_id).cmp(&(b.item, &b.resource_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_rules_size_the_batches() {
        // Period 300 with a 3-point window: 500 metrics (1500 datapoints) a call.
        assert_eq!(metrics_per_call(3), 500);
        // 1,200 pairs → 3 calls.
        assert_eq!(1200usize.div_ceil(metrics_per_call(3)), 3);
        // Raw data over 10 minutes: 10 points, 300 metrics a call.
        assert_eq!(metrics_per_call(10), 300);
        assert_eq!(metrics_per_call(5000), 1);
        assert_eq!(period_param(60), "1");
        assert_eq!(period_param(300), "300");
    }
}
