//! Cloud Eye (CES v1) `batch-query-metric-data`: up to 500 metrics of any resources a call,
//! under a rule of at most 3000 datapoints a response (`metrics × points in the window`; past
//! it the API silently moves `from` forward). So the window is sized to what the newest complete
//! point needs, and a (region, period)'s (metric, resource) pairs are packed into
//! ⌈pairs / min(500, 3000 / points)⌉ calls.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::HuaweiProvider;
use crate::cloud::period::{choose_period, window};
use crate::cloud::wire::{self, newest_complete, Number, Text};
use crate::cloud::{CallContext, FetchItem, FetchOutcome, Point, Resource};
use crate::mapping::{MonitorTarget, ProductCloudSpec};

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

/// One (metric, resource) pair of a call, by index: its JSON is built only when its call is
/// made, so a job never holds every pair as JSON at once.
struct Pair {
    item: usize,
    resource: usize,
}

/// A `batch-query-metric-data` request, serialised straight from borrowed parts, keys in the
/// order `serde_json` writes a `Value`'s (sorted).
#[derive(Serialize)]
struct BatchRequest<'a> {
    filter: &'a str,
    from: i64,
    metrics: Vec<MetricQuery<'a>>,
    period: String,
    to: i64,
}

/// One `metrics` entry of a request.
#[derive(Serialize)]
struct MetricQuery<'a> {
    dimensions: Vec<RequestDimension<'a>>,
    metric_name: &'a str,
    namespace: &'a str,
}

/// One dimension of a request.
#[derive(Serialize)]
struct RequestDimension<'a> {
    name: &'a str,
    value: &'a str,
}

/// A `batch-query-metric-data` answer.
#[derive(Debug, Default, Deserialize)]
pub struct BatchAnswer {
    /// One per metric asked for, in any order.
    #[serde(default, deserialize_with = "wire::objects")]
    pub metrics: Vec<MetricData>,
}

/// One metric's datapoints.
#[derive(Debug, Default, Deserialize)]
pub struct MetricData {
    /// The metric's name.
    #[serde(default)]
    pub metric_name: Text,
    /// Its dimensions (an answer may reorder them).
    #[serde(default, deserialize_with = "wire::objects")]
    pub dimensions: SmallVec<[AnswerDimension; 2]>,
    /// Its points.
    #[serde(default, deserialize_with = "wire::objects")]
    pub datapoints: SmallVec<[Datapoint; wire::WINDOW_POINTS]>,
}

/// One `{"name", "value"}` dimension of an answer.
#[derive(Debug, Default, Deserialize)]
pub struct AnswerDimension {
    /// Dimension name.
    #[serde(default)]
    pub name: Text,
    /// Dimension value.
    #[serde(default)]
    pub value: Text,
}

/// One datapoint: its time and the statistic the call's `filter` asked for.
#[derive(Debug, Default, Deserialize)]
pub struct Datapoint {
    /// Unix ms.
    #[serde(default)]
    pub timestamp: Number,
    /// `filter=average`.
    #[serde(default)]
    pub average: Number,
    /// `filter=max`.
    #[serde(default)]
    pub max: Number,
    /// `filter=min`.
    #[serde(default)]
    pub min: Number,
    /// `filter=sum`.
    #[serde(default)]
    pub sum: Number,
    /// `filter=variance`.
    #[serde(default)]
    pub variance: Number,
}

impl Datapoint {
    /// The value of a `filter` statistic.
    pub fn statistic(&self, filter: &str) -> Option<f64> {
        match filter {
            "average" => self.average.0,
            "max" => self.max.0,
            "min" => self.min.0,
            "sum" => self.sum.0,
            "variance" => self.variance.0,
            _ => None,
        }
    }
}

impl MetricData {
    /// Its points of a `filter` statistic, (timestamp ms, value), leaving out those without a
    /// time or that value.
    pub fn points<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = (i64, f64)> + 'a {
        self.datapoints
            .iter()
            .filter_map(move |d| Some((d.timestamp.0? as i64, d.statistic(filter)?)))
    }
}

/// A metric name and its sorted (name, value) dimensions: how an answer is matched to what was
/// asked, whatever order it comes back in.
type MatchKey<'a> = (&'a str, Vec<(&'a str, &'a str)>);

/// The match key of a metric and its dimensions.
fn match_key<'a>(metric: &'a str, dims: impl Iterator<Item = (&'a str, &'a str)>) -> MatchKey<'a> {
    let mut key = ("", Vec::new());
    set_match_key(&mut key, metric, dims);
    key
}

/// Make `key` the match key of a metric and its dimensions, reusing its list.
fn set_match_key<'a>(
    key: &mut MatchKey<'a>,
    metric: &'a str,
    dims: impl Iterator<Item = (&'a str, &'a str)>,
) {
    key.0 = metric;
    key.1.clear();
    key.1.extend(dims);
    key.1.sort_unstable();
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
    // Each resource's namespace and dimensions, worked out once for every metric.
    let targets: Vec<Option<MonitorTarget>> = resources.iter().map(|r| spec.target(r)).collect();
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
        for (resource, target) in targets.iter().enumerate() {
            if target.is_none() {
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
    let targets = &targets;
    // The namespace, metric and dimensions of a pair, borrowed from the targets and items.
    let query_of = |pair: &Pair| -> Option<MetricQuery<'_>> {
        let target = targets[pair.resource].as_ref()?;
        Some(MetricQuery {
            dimensions: target
                .dimensions
                .iter()
                .map(|(name, value)| RequestDimension { name, value })
                .collect(),
            metric_name: &items[pair.item].source.metric,
            namespace: &target.namespace,
        })
    };
    // Each answer is folded into the points as it arrives, so no more than
    // `metric_concurrency` answers are held at once, whatever the size of the job.
    let mut results = std::pin::pin!(stream::iter(calls)
        .map(|((period, from, to, filter), pairs)| {
            let path = &path;
            async move {
                // The request's parts are borrowed only while it is written.
                let payload = serde_json::to_vec(&BatchRequest {
                    filter: &filter,
                    from,
                    metrics: pairs.iter().filter_map(query_of).collect(),
                    period: period_param(period),
                    to,
                });
                let r = match payload {
                    Ok(payload) => {
                        p.post_as::<BatchAnswer>(
                            "BatchListMetricData",
                            "ces",
                            region,
                            path,
                            payload,
                            ctx.deadline,
                        )
                        .await
                    }
                    Err(e) => Err(crate::cloud::http::CallSite {
                        cloud: crate::cloud::Cloud::Huawei,
                        api: "BatchListMetricData",
                        region,
                    }
                    .error(
                        crate::cloud::ErrorClass::BadResponse,
                        format!("encoding the request: {e}"),
                    )),
                };
                ((period, filter, pairs), r)
            }
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    while let Some(((period, filter, pairs), r)) = results.next().await {
        out.calls += 1;
        let answer = match r {
            Ok(a) => a,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        // Answers are matched by (metric name, dimension values), not by order. Two items of
        // one metric (feeding two families) share its answer.
        let mut asked: FxHashMap<MatchKey<'_>, Vec<&Pair>> = FxHashMap::default();
        for pair in &pairs {
            let Some(target) = targets[pair.resource].as_ref() else {
                continue;
            };
            let dims = target
                .dimensions
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()));
            asked
                .entry(match_key(&items[pair.item].source.metric, dims))
                .or_default()
                .push(pair);
        }
        let p_ms = (period * 1000) as i64;
        // One key reused for every metric of the answer.
        let mut probe: MatchKey<'_> = ("", Vec::new());
        for m in &answer.metrics {
            let dims = m
                .dimensions
                .iter()
                .map(|d| (d.name.as_str(), d.value.as_str()));
            set_match_key(&mut probe, m.metric_name.as_str(), dims);
            let Some(asking) = asked.get(&probe) else {
                continue;
            };
            let Some((ts, value)) = newest_complete(m.points(&filter), p_ms, now_ms) else {
                continue;
            };
            for pair in asking {
                out.points.push(Point {
                    item: pair.item,
                    resource: pair.resource as u32,
                    value,
                    period_s: period,
                    timestamp_ms: ts,
                    dimensions: Vec::new(),
                });
            }
        }
    }
    out.points.sort_by_key(|p| (p.item, p.resource));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_values_lose_their_point_not_the_answer() {
        let site = crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Huawei,
            api: "BatchListMetricData",
            region: "cn-north-4",
        };
        let body = br#"{"metrics":[
            {"metric_name":"m_in","dimensions":null,"datapoints":null},
            "x",
            {"metric_name":"m_out","dimensions":[{"name":"lbaas_instance_id","value":"e1"},[]],
             "datapoints":[{"timestamp":"1735689600000","average":"4"},{"timestamp":null,"average":5},
               {"timestamp":1735689660000,"average":{"v":1}},7]}]}"#;
        let a: BatchAnswer = super::super::parse_answer_as(site, 200, body).unwrap();
        assert_eq!(a.metrics.len(), 2);
        assert_eq!(a.metrics[1].dimensions.len(), 1);
        assert_eq!(
            a.metrics[1].points("average").collect::<Vec<_>>(),
            [(1_735_689_600_000, 4.0)]
        );
        let e = super::super::parse_answer_as::<BatchAnswer>(site, 200, b"[]").unwrap_err();
        assert_eq!(e.class, crate::cloud::ErrorClass::BadResponse);
    }

    #[test]
    fn a_request_is_written_as_a_json_value_writes_it() {
        let request = BatchRequest {
            filter: "average",
            from: 1_735_689_600_000,
            metrics: vec![MetricQuery {
                dimensions: vec![RequestDimension {
                    name: "lbaas_instance_id",
                    value: "elb-1",
                }],
                metric_name: "m1_cps",
                namespace: "SYS.ELB",
            }],
            period: period_param(60),
            to: 1_735_689_780_000,
        };
        let tree = serde_json::json!({
            "metrics": [{
                "namespace": "SYS.ELB",
                "metric_name": "m1_cps",
                "dimensions": [{"name": "lbaas_instance_id", "value": "elb-1"}],
            }],
            "from": 1_735_689_600_000i64,
            "to": 1_735_689_780_000i64,
            "period": "1",
            "filter": "average",
        });
        assert_eq!(serde_json::to_string(&request).unwrap(), tree.to_string());
    }

    #[test]
    fn answers_match_what_was_asked_whatever_their_dimension_order() {
        // The shape of the CES batch-query-metric-data example, dimensions reordered.
        let answer: BatchAnswer = serde_json::from_str(
            r#"{"metrics":[{"namespace":"SYS.ELB","metric_name":"m1_cps","unit":"count",
            "dimensions":[{"name":"b","value":"2"},{"name":"a","value":"1"}],
            "datapoints":[{"timestamp":1735689600000,"average":4},{"timestamp":1735689660000,"max":9}]}]}"#,
        )
        .unwrap();
        let m = &answer.metrics[0];
        let asked = match_key("m1_cps", [("a", "1"), ("b", "2")].into_iter());
        let got = match_key(
            m.metric_name.as_str(),
            m.dimensions
                .iter()
                .map(|d| (d.name.as_str(), d.value.as_str())),
        );
        assert_eq!(asked, got);
        assert_eq!(m.datapoints[0].statistic("average"), Some(4.0));
        assert_eq!(
            m.points("average").collect::<Vec<_>>(),
            [(1_735_689_600_000, 4.0)]
        );
        assert_eq!(m.datapoints[1].statistic("average"), None);
        assert_eq!(m.datapoints[1].statistic("max"), Some(9.0));
    }

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
