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
use crate::cloud::{CallContext, FetchItem, FetchOutcome, Point, Resource};
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

/// One (metric, resource) pair of a call, by index: its JSON is built only when its call is
/// made, so a job never holds every pair as JSON at once.
struct Pair {
    item: usize,
    resource: usize,
}

/// The `metrics` entry of a pair; `None` for a resource without dimensions (left out when the
/// calls were planned).
fn pair_metric(
    spec: &ProductCloudSpec,
    items: &[FetchItem],
    resources: &[Resource],
    pair: &Pair,
) -> Option<Value> {
    let target = spec.target(&resources[pair.resource])?;
    let dims: Vec<Value> = target
        .dimensions
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    Some(json!({
        "namespace": target.namespace,
        "metric_name": items[pair.item].source.metric,
        "dimensions": dims,
    }))
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
        for (resource, r) in resources.iter().enumerate() {
            if spec.target(r).is_none() {
                continue;
            }
            groups
                .entry((period, start + p_ms, end + p_ms, src.statistic.clone()))
                .or_default()
                .push(Pair { item: i, resource });
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
    // Each answer is folded into the points as it arrives, so no more than
    // `metric_concurrency` answers are held at once, whatever the size of the job.
    let mut results = std::pin::pin!(stream::iter(calls)
        .map(|((period, from, to, filter), pairs)| {
            let path = path.clone();
            async move {
                let body = json!({
                    "metrics": pairs
                        .iter()
                        .filter_map(|x| pair_metric(spec, items, resources, x))
                        .collect::<Vec<_>>(),
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
                ((period, filter, pairs), r)
            }
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    while let Some(((period, filter, pairs), r)) = results.next().await {
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
            let filter = filter.as_str();
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
            let Some(metric) = pair_metric(spec, items, resources, pair) else {
                continue;
            };
            let name = metric
                .get("metric_name")
                .map(value_string)
                .unwrap_or_default();
            let dims = dimension_key(metric.get("dimensions"));
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
                resource_id: resources[pair.resource].id.clone(),
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
