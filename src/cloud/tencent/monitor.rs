//! Cloud Monitor (`monitor` 2018-07-24) data: `DescribeBaseMetrics` for the periods, statistic
//! per period and unit of each metric, and `GetMonitorData`, one metric per call with the
//! resources' dimensions in batches as large as the API accepts (50 instances documented, fewer
//! when a window holds many points: at most 7200 datapoints a call). A batch the API rejects as
//! too large is split and the size that works is remembered ([`super::BatchLimit`]).

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use smallvec::SmallVec;
use tokio::time::Instant;
use tracing::debug;

use super::{is_batch_too_large, value_string, Api, ApiAnswer, TencentProvider};
use crate::cloud::period::{choose_period, window};
use crate::cloud::wire::{self, newest_complete, NameValue, Number, Text};
use crate::cloud::{CallContext, CloudError, FetchItem, FetchOutcome, NewestPoints, Resource};
use crate::mapping::ProductCloudSpec;
use crate::util::UtcTime;

/// GetMonitorData.
pub const GET_MONITOR_DATA: Api = Api {
    service: "monitor",
    version: "2018-07-24",
    action: "GetMonitorData",
};

/// DescribeBaseMetrics.
pub const DESCRIBE_BASE_METRICS: Api = Api {
    service: "monitor",
    version: "2018-07-24",
    action: "DescribeBaseMetrics",
};

/// Most datapoints one GetMonitorData call may return (current documentation; older: 1440).
pub const MAX_DATAPOINTS: usize = 7200;

/// What DescribeBaseMetrics says about one metric.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricMeta {
    /// Supported periods, ascending.
    pub periods: Vec<u64>,
    /// The statistic the cloud computes at each period (`[60, ["max"]]`).
    pub stat_types: Vec<(u64, Vec<String>)>,
    /// Unit as the cloud writes it (`Mbps`, `MB`, `%`).
    pub unit: String,
}

impl MetricMeta {
    /// The periods at which the cloud computes `statistic`; all periods for `default` or when
    /// the metadata gives no statistics. None when it gives statistics and `statistic` is not
    /// among them: then only a pinned period or the fallback is left, never a period where a
    /// `sum` mapping would read a `max`.
    pub fn periods_for(&self, statistic: &str) -> Vec<u64> {
        if statistic == "default" || self.stat_types.is_empty() {
            return self.periods.clone();
        }
        self.stat_types
            .iter()
            .filter(|(_, types)| types.iter().any(|t| t == statistic))
            .map(|(p, _)| *p)
            .collect()
    }
}

/// Metadata of a namespace: metric → what the cloud says about it.
pub type MetricTable = HashMap<String, MetricMeta>;

/// DescribeBaseMetrics for a namespace.
pub async fn describe_base_metrics(
    p: &TencentProvider,
    namespace: &str,
    region: &str,
    deadline: Instant,
) -> Result<MetricTable, CloudError> {
    let v = p
        .call(
            DESCRIBE_BASE_METRICS,
            region,
            &json!({ "Namespace": namespace }),
            deadline,
        )
        .await?;
    Ok(parse_metric_set(&v))
}

/// The `MetricSet` of a DescribeBaseMetrics answer.
pub fn parse_metric_set(v: &Value) -> MetricTable {
    let mut table = MetricTable::new();
    for m in v
        .get("MetricSet")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = m.get("MetricName").map(value_string) else {
            continue;
        };
        let mut periods: Vec<u64> = m
            .get("Period")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| value_string(p).parse().ok())
            .collect();
        periods.sort_unstable();
        periods.dedup();
        let stat_types = m
            .get("Periods")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|ps| {
                // `Period` is a string here, unlike the list above.
                let period = value_string(ps.get("Period")?).parse().ok()?;
                let types = ps
                    .get("StatType")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(value_string)
                    .collect();
                Some((period, types))
            })
            .collect();
        let unit = m.get("Unit").map(value_string).unwrap_or_default();
        table.insert(
            name,
            MetricMeta {
                periods,
                stat_types,
                unit,
            },
        );
    }
    table
}

/// API 3.0 times: ISO 8601 in China Standard Time, as the SDK examples send them.
pub fn api_time(unix_s: i64) -> String {
    let local = UtcTime::from_unix(unix_s + 8 * 3600).iso8601();
    format!("{}+08:00", local.trim_end_matches('Z'))
}

/// One instance of a query: its dimensions, and the index of the resource they name.
type Instance = (Vec<(String, String)>, u32);

/// One GetMonitorData query before batching limits are applied.
struct Query {
    item: usize,
    namespace: String,
    metric: String,
    period: u64,
    start_s: i64,
    end_s: i64,
    /// Index of the namespace's instances in the job's list (shared by the namespace's
    /// queries, not copied per metric).
    instances: usize,
}

/// A GetMonitorData answer's `Response`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MonitorData {
    /// The period the cloud answered with.
    #[serde(default)]
    pub period: Option<Text>,
    /// One per instance that has data.
    #[serde(default, deserialize_with = "wire::objects")]
    pub data_points: Vec<DataPoint>,
    /// Present when the call failed.
    #[serde(default)]
    pub error: Option<serde::de::IgnoredAny>,
}

impl ApiAnswer for MonitorData {
    fn has_error(&self) -> bool {
        self.error.is_some()
    }
}

/// One instance's points.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataPoint {
    /// The instance's dimensions, as asked for (or only its ID dimension).
    #[serde(default, deserialize_with = "wire::objects")]
    pub dimensions: SmallVec<[NameValue; 2]>,
    /// Seconds since the epoch, start of each point's period.
    #[serde(default, deserialize_with = "wire::list")]
    pub timestamps: SmallVec<[Number; wire::WINDOW_POINTS]>,
    /// A value per timestamp; null where there is none.
    #[serde(default, deserialize_with = "wire::list")]
    pub values: SmallVec<[Number; wire::WINDOW_POINTS]>,
}

impl DataPoint {
    /// The value of a dimension.
    fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|d| d.name.as_str() == name)
            .map(|d| d.value.as_str())
    }

    /// The newest point whose period has ended: (timestamp ms, value).
    pub fn newest_complete(&self, period_ms: i64, now_ms: i64) -> Option<(i64, f64)> {
        let points = self
            .timestamps
            .iter()
            .zip(&self.values)
            .filter_map(|(t, v)| Some(((t.0? * 1000.0) as i64, v.0?)));
        newest_complete(points, period_ms, now_ms)
    }
}

/// What one query returned: the DataPoints of the batches that succeeded, the period of the
/// answer, the calls made, and the error that stopped it, if any.
struct QueryResult {
    data_points: Vec<DataPoint>,
    period: u64,
    calls: u64,
    error: Option<CloudError>,
}
/// A namespace's dimension names, and the resource named by each instance's values.
type DimensionLookup<'a> = (Vec<&'a str>, FxHashMap<Vec<&'a str>, u32>);

/// Fetch every item of a job.
pub async fn fetch(
    p: &TencentProvider,
    ctx: &CallContext,
    region: &str,
    spec: &ProductCloudSpec,
    items: &[FetchItem],
    resources: &[Resource],
) -> FetchOutcome {
    let mut out = FetchOutcome::default();
    if resources.is_empty() || items.is_empty() {
        return out;
    }
    let monitor_region = spec.monitor_region.as_deref().unwrap_or(region);
    let mut by_namespace: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
    for (index, r) in resources.iter().enumerate() {
        match spec.target(r) {
            Some(t) => by_namespace
                .entry(t.namespace)
                .or_default()
                .push((t.dimensions, index as u32)),
            None => debug!(resource = %r.id, "no monitor dimensions discovered; not queried"),
        }
    }
    let now_ms = p.shared().clock.now_ms();
    let namespaces: Vec<(String, Vec<Instance>)> = by_namespace.into_iter().collect();
    let mut queries = Vec::new();
    for (ns, (namespace, _)) in namespaces.iter().enumerate() {
        let table = match p
            .metric_table(namespace, monitor_region, ctx.deadline)
            .await
        {
            Ok(t) => Some(t),
            Err(e) => {
                // Without metadata the fallback period still gives data; the failure is reported.
                out.errors.push(e);
                None
            }
        };
        for (i, item) in items.iter().enumerate() {
            let src = &item.source;
            let meta = table.as_ref().and_then(|t| t.get(&src.metric));
            if table.is_some() && meta.is_none() {
                // The cloud does not know the metric (a misspelt mapping, `Inpkg` vs `InPkg`):
                // asking would fail every scrape.
                p.report_unknown_metric(namespace, &src.metric);
                continue;
            }
            if let (Some(m), Some(want)) = (meta, &src.source_unit) {
                // Exact: `Mbps` and `MBps` are eight times apart.
                if !m.unit.trim().is_empty() && m.unit.trim() != want.trim() {
                    p.report_unit_mismatch(namespace, &src.metric, want, &m.unit);
                }
            }
            let supported = meta
                .map(|m| m.periods_for(&src.statistic))
                .unwrap_or_default();
            let period = choose_period(
                &supported,
                ctx.scrape_interval_s,
                src.period,
                ctx.period_fallback_s,
            );
            let (start, end) = window(now_ms, period, ctx.ingestion_delay_s);
            queries.push(Query {
                item: i,
                namespace: namespace.clone(),
                metric: src.metric.clone(),
                period,
                // The window is (start, end]: the first point asked for starts one period later.
                start_s: start / 1000 + period as i64,
                end_s: end / 1000,
                instances: ns,
            });
        }
    }
    // Each answer is folded into the newest points as it arrives, so no more than
    // `metric_concurrency` answers are held at once, whatever the size of the job.
    let mut results = std::pin::pin!(stream::iter(queries)
        .map(|q| async {
            let r = run_query(
                p,
                monitor_region,
                &q,
                &namespaces[q.instances].1,
                ctx.deadline,
            )
            .await;
            (q, r)
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    let by_id: FxHashMap<&str, u32> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i as u32))
        .collect();
    // Per namespace, once (not per metric): its dimension names, and which resource each
    // instance's dimension values name.
    let lookups: Vec<DimensionLookup<'_>> = namespaces
        .iter()
        .map(|(_, instances)| {
            let names: Vec<&str> = instances
                .first()
                .map(|(d, _)| d.iter().map(|(k, _)| k.as_str()).collect())
                .unwrap_or_default();
            let by_dims: FxHashMap<Vec<&str>, u32> = instances
                .iter()
                .map(|(d, index)| (d.iter().map(|(_, v)| v.as_str()).collect(), *index))
                .collect();
            (names, by_dims)
        })
        .collect();
    let mut newest = NewestPoints::default();
    while let Some((q, r)) = results.next().await {
        out.calls += r.calls;
        // Batches that succeeded count even when a later one failed.
        out.errors.extend(r.error);
        let period = r.period;
        let source = &items[q.item].source;
        let (names, by_dims) = &lookups[q.instances];
        let period_ms = (period.min(366 * 86_400) * 1000) as i64;
        let mut key: Vec<&str> = Vec::with_capacity(names.len());
        for dp in &r.data_points {
            key.clear();
            for n in names {
                match dp.dimension(n) {
                    Some(v) => key.push(v),
                    None => break,
                }
            }
            // An answer that echoes only the ID dimension (a COS `bucket` without `appid`)
            // still names its resource.
            let resource = (key.len() == names.len())
                .then(|| by_dims.get(&key).copied())
                .flatten()
                .or_else(|| {
                    dp.dimension(&spec.resource_dimension)
                        .and_then(|v| by_id.get(v).copied())
                });
            let Some(resource) = resource else {
                continue;
            };
            let Some((ts_ms, value)) = dp.newest_complete(period_ms, now_ms) else {
                continue;
            };
            let labels: Vec<(String, String)> = source
                .dimension_labels
                .iter()
                .map(|(label, dim)| {
                    let raw = dp.dimension(dim).unwrap_or_default();
                    (label.clone(), source.dimension_label_value(label, raw))
                })
                .collect();
            newest.offer((q.item, resource, labels), ts_ms, value, period);
        }
    }
    out.points = newest.into_points();
    out
}

/// Run one query in as few calls as the batch limits allow: chunks of the learnt batch size
/// (and of what fits in 7200 datapoints). A chunk rejected as too large is always cut smaller,
/// so the loop ends; a single instance rejected the same way was not about size.
async fn run_query(
    p: &TencentProvider,
    region: &str,
    q: &Query,
    instances: &[Instance],
    deadline: Instant,
) -> QueryResult {
    let points_per_instance =
        (((q.end_s - q.start_s) / q.period.max(1) as i64) + 1).max(1) as usize;
    let by_points = (MAX_DATAPOINTS / points_per_instance).max(1);
    let mut out = QueryResult {
        data_points: Vec::new(),
        period: q.period,
        calls: 0,
        error: None,
    };
    let mut pending: Vec<&[Instance]> = vec![instances];
    while let Some(batch) = pending.pop() {
        let size = p.batch_limit.size().min(by_points);
        if batch.len() > size {
            pending.extend(batch.chunks(size).rev());
            continue;
        }
        let body = match serde_json::to_vec(&request_body(q, batch)) {
            Ok(b) => b,
            Err(e) => {
                let site = crate::cloud::http::CallSite {
                    cloud: crate::cloud::Cloud::Tencent,
                    api: GET_MONITOR_DATA.action,
                    region,
                };
                out.error = Some(site.error(
                    crate::cloud::ErrorClass::BadResponse,
                    format!("encoding the request: {e}"),
                ));
                break;
            }
        };
        out.calls += 1;
        match p
            .call_as::<MonitorData>(GET_MONITOR_DATA, region, body, deadline)
            .await
        {
            Ok(answer) => {
                p.batch_limit.worked(batch.len());
                if let Some(n) = answer.period.and_then(|t| t.as_str().parse().ok()) {
                    out.period = n;
                }
                out.data_points.extend(answer.data_points);
            }
            Err(e) if is_batch_too_large(&e) && batch.len() > 1 => {
                p.batch_limit.rejected(batch.len());
                p.shared()
                    .metrics
                    .batch_splits
                    .with_label_values(&["tencent", GET_MONITOR_DATA.action])
                    .inc();
                let smaller = p.batch_limit.size().min(batch.len() - 1).max(1);
                debug!(
                    instances = batch.len(),
                    next = smaller,
                    "GetMonitorData batch too large; splitting"
                );
                pending.extend(batch.chunks(smaller).rev());
            }
            Err(e) => {
                if is_batch_too_large(&e) {
                    p.batch_limit.reset();
                }
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// A GetMonitorData request, serialised straight from borrowed parts, keys in the order
/// `serde_json` writes a `Value`'s (sorted).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MonitorDataRequest<'a> {
    end_time: String,
    instances: RequestInstances<'a>,
    metric_name: &'a str,
    namespace: &'a str,
    period: u64,
    start_time: String,
}

/// The instances of a request, written straight from the job's list (`[{"Dimensions": [{"Name",
/// "Value"}, …]}, …]`) rather than copied into a list per instance first.
struct RequestInstances<'a>(&'a [Instance]);

/// One instance of a request.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RequestInstance<'a> {
    dimensions: Dimensions<'a>,
}

/// One dimension of an instance.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RequestDimension<'a> {
    name: &'a str,
    value: &'a str,
}

impl Serialize for RequestInstances<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(dims, _)| RequestInstance {
            dimensions: Dimensions(dims),
        }))
    }
}

/// An instance's dimension list.
struct Dimensions<'a>(&'a [(String, String)]);

impl Serialize for Dimensions<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .iter()
                .map(|(name, value)| RequestDimension { name, value }),
        )
    }
}

/// The GetMonitorData body of one batch.
fn request_body<'a>(q: &'a Query, batch: &'a [Instance]) -> MonitorDataRequest<'a> {
    MonitorDataRequest {
        end_time: api_time(q.end_s),
        instances: RequestInstances(batch),
        metric_name: &q.metric,
        namespace: &q.namespace,
        period: q.period,
        start_time: api_time(q.start_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_set_gives_periods_stat_types_and_units() {
        // The official DescribeBaseMetrics example (tccli examples.json).
        let v: Value = serde_json::from_str(r#"{"RequestId":"15e8eb48","MetricSet":[{"Namespace":"QCE/CVM","MetricName":"AccOuttraffic",
 "MetricCName":"外网出流量","MetricEName":"the out traffic","Unit":"MB","UnitCname":"","Period":[10,60,300,3600,86400],
 "Periods":[{"Period":"10","StatType":["sum"]},{"Period":"60","StatType":["sum"]},{"Period":"300","StatType":["sum"]},
            {"Period":"3600","StatType":["sum"]},{"Period":"86400","StatType":["sum"]}],
 "Dimensions":[{"Dimensions":["InstanceId"]}],"Meaning":{"En":"","Zh":"外网网卡的平均每秒出流量"}}]}"#).unwrap();
        let t = parse_metric_set(&v);
        let m = &t["AccOuttraffic"];
        assert_eq!(m.periods, vec![10, 60, 300, 3600, 86400]);
        assert_eq!(m.unit, "MB");
        assert_eq!(m.stat_types[1], (60, vec!["sum".to_string()]));
    }

    #[test]
    fn periods_follow_the_statistic_the_cloud_computes() {
        let m = MetricMeta {
            periods: vec![60, 300, 3600],
            stat_types: vec![
                (60, vec!["max".into()]),
                (300, vec!["sum".into()]),
                (3600, vec!["sum".into()]),
            ],
            unit: "Count".into(),
        };
        assert_eq!(m.periods_for("sum"), vec![300, 3600]);
        assert_eq!(m.periods_for("max"), vec![60]);
        assert_eq!(m.periods_for("avg"), Vec::<u64>::new());
        assert_eq!(m.periods_for("default"), vec![60, 300, 3600]);
    }

    #[test]
    fn api_times_are_china_standard_time() {
        assert_eq!(api_time(1_735_689_600), "2025-01-01T08:00:00+08:00");
    }

    #[test]
    fn an_answer_is_read_into_its_shape() {
        // The shape of the official GetMonitorData example (tccli examples.json), with a gap.
        let body = br#"{"Response":{"Period":60,"MetricName":"ClientConnum","RequestId":"r1",
          "StartTime":"2026-12-07T10:00:00+08:00","EndTime":"2026-12-07T10:03:00+08:00",
          "DataPoints":[{"Dimensions":[{"Name":"vip","Value":"1.2.3.4"}],
            "Timestamps":[1765072800,1765072860,1765072920],"Values":[3,null,5.5]}]}}"#;
        let site = crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Tencent,
            api: "GetMonitorData",
            region: "ap-guangzhou",
        };
        let a: MonitorData = super::super::parse_response_as(site, 200, body).unwrap();
        assert_eq!(a.period.unwrap().as_str(), "60");
        let dp = &a.data_points[0];
        assert_eq!(dp.dimension("vip"), Some("1.2.3.4"));
        assert_eq!(
            dp.newest_complete(60_000, 1_765_072_980_000),
            Some((1_765_072_920_000, 5.5))
        );
        assert_eq!(
            dp.newest_complete(60_000, 1_765_072_979_999),
            Some((1_765_072_800_000, 3.0))
        );
    }

    #[test]
    fn odd_values_lose_their_point_not_the_answer() {
        let site = crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Tencent,
            api: "GetMonitorData",
            region: "ap-guangzhou",
        };
        let body = br#"{"Response":{"Period":60,"RequestId":"r1","DataPoints":[
            {"Dimensions":null,"Timestamps":null,"Values":null},
            "not an instance",
            {"Dimensions":[{"Name":"vip","Value":"1.2.3.4"},7],
             "Timestamps":[1765072800,"1765072860",{"t":1}],"Values":[3,"4.5",6]}]}}"#;
        let a: MonitorData = super::super::parse_response_as(site, 200, body).unwrap();
        assert_eq!(a.data_points.len(), 2);
        assert!(a.data_points[0].newest_complete(60_000, i64::MAX).is_none());
        let dp = &a.data_points[1];
        assert_eq!(dp.dimension("vip"), Some("1.2.3.4"));
        // The third timestamp is unreadable: its point is lost, the second one is newest.
        assert_eq!(
            dp.newest_complete(60_000, 1_765_073_000_000),
            Some((1_765_072_860_000, 4.5))
        );
        // A 200 whose body is an array is no success.
        let e = super::super::parse_response_as::<MonitorData>(site, 200, b"[]").unwrap_err();
        assert_eq!(e.class, crate::cloud::ErrorClass::BadResponse);
    }

    #[test]
    fn a_request_is_written_as_a_json_value_writes_it() {
        let q = Query {
            item: 0,
            namespace: "QCE/LB_PUBLIC".into(),
            metric: "ClientConnum".into(),
            period: 60,
            start_s: 1_735_689_600,
            end_s: 1_735_689_720,
            instances: 0,
        };
        let dim = |n: &str, v: &str| (n.to_string(), v.to_string());
        let batch = vec![
            (vec![dim("vip", "1.2.3.4")], 0),
            (vec![dim("vip", "5.6.7.8"), dim("port", "\"80\"")], 1),
        ];
        let typed = serde_json::to_string(&request_body(&q, &batch)).unwrap();
        let tree = json!({
            "Namespace": "QCE/LB_PUBLIC",
            "MetricName": "ClientConnum",
            "Period": 60,
            "StartTime": "2025-01-01T08:00:00+08:00",
            "EndTime": "2025-01-01T08:02:00+08:00",
            "Instances": [
                {"Dimensions": [{"Name": "vip", "Value": "1.2.3.4"}]},
                {"Dimensions": [
                    {"Name": "vip", "Value": "5.6.7.8"},
                    {"Name": "port", "Value": "\"80\""},
                ]},
            ],
        });
        assert_eq!(typed, tree.to_string());
    }
}
