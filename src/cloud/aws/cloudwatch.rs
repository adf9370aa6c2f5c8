//! CloudWatch `GetMetricData` over JSON 1.0 (what boto3 sends): unlike the other clouds, one
//! call carries up to 500 queries across metrics *and* resources, so a job's every (metric,
//! resource) pair with the same period and window goes into as few calls as 500 allows, each
//! followed through `NextToken`. The period is the scrape interval in whole minutes
//! (CloudWatch accepts any multiple of 60) unless the mapping pins one; the statistic is the
//! mapping's.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use tokio::time::Instant;
use tracing::debug;

use super::AwsProvider;
use crate::cloud::period::window;
use crate::cloud::wire::{self, newest_complete, Number, Text};
use crate::cloud::{
    CallContext, CloudError, ErrorClass, FetchItem, FetchOutcome, FetchPart, Point, Resource,
};
use crate::mapping::{MonitorTarget, ProductCloudSpec};

/// GetMetricData (JSON 1.0).
pub const GET_METRIC_DATA: super::JsonApi = super::JsonApi {
    service: "monitoring",
    target: "GraniteServiceVersion20100801.GetMetricData",
    action: "GetMetricData",
    content_type: "application/x-amz-json-1.0",
    query_compatible: true,
};
/// Most queries in one call (`MetricDataQueries`, cloud-apis C.3).
pub const MAX_QUERIES: usize = 500;
/// The period of a metric: a pinned one (daily storage), else the scrape interval rounded to
/// the nearest multiple of 60 (standard resolution accepts any), within 60 s and a day.
pub fn period_for(pinned: Option<u64>, interval_s: u64) -> u64 {
    let p = pinned.unwrap_or_else(|| (interval_s + 30) / 60 * 60);
    p.clamp(60, 86_400)
}
/// Most pages followed for one call.
const MAX_PAGES: usize = 100;

/// One (metric, resource) query of a call, by index: its JSON is built only when its call is
/// made, so a region of 100,000 queries never holds them all as JSON at once.
struct Query {
    part: usize,
    item: usize,
    resource: usize,
}

/// Queries sharing a period and a window (one call's worth, up to 500).
type Group = ((u64, i64, i64), Vec<Query>);
/// What one call returned: per query (by its index in the call) the newest complete point, the
/// queries the cloud refused (index and error: `StatusCode` Forbidden or InternalError), and
/// calls made; or the error and calls made.
type CallResult =
    Result<(Vec<Option<(i64, f64)>>, Vec<(usize, CloudError)>, u64), (CloudError, u64)>;

/// The namespace and dimensions of every resource of every part, worked out once per fetch
/// (`None`: a resource without them, not queried).
type Targets = Vec<Vec<Option<MonitorTarget>>>;

/// Fetch every item of a job for every resource.
pub async fn fetch(
    p: &AwsProvider,
    ctx: &CallContext,
    region: &str,
    spec: &ProductCloudSpec,
    items: &[FetchItem],
    resources: &[Resource],
) -> FetchOutcome {
    let part = FetchPart {
        spec,
        items,
        resources,
    };
    fetch_parts(p, ctx, region, &[part])
        .await
        .pop()
        .unwrap_or_default()
}

/// Fetch several jobs of one region together: their queries share calls of up to 500 whatever
/// the product (namespace), so a region costs ⌈queries/500⌉ calls per period and window. An
/// outcome per part; a failed call fails every part that had a query in it, and its calls count
/// for the first of them.
pub async fn fetch_parts(
    p: &AwsProvider,
    ctx: &CallContext,
    region: &str,
    parts: &[FetchPart<'_>],
) -> Vec<FetchOutcome> {
    let mut out: Vec<FetchOutcome> = parts.iter().map(|_| FetchOutcome::default()).collect();
    let now_ms = p.shared().clock.now_ms();
    let targets: Targets = parts
        .iter()
        .map(|part| {
            part.resources
                .iter()
                .map(|r| {
                    let t = part.spec.target(r);
                    if t.is_none() {
                        debug!(resource = %r.id, "no CloudWatch dimensions discovered; not queried");
                    }
                    t
                })
                .collect()
        })
        .collect();
    let mut groups: BTreeMap<(u64, i64, i64), Vec<Query>> = BTreeMap::new();
    for (part_idx, part) in parts.iter().enumerate() {
        for (i, item) in part.items.iter().enumerate() {
            let src = &item.source;
            let period = period_for(src.period, ctx.scrape_interval_s);
            let (start, end) = window(now_ms, period, ctx.ingestion_delay_s);
            for (resource, target) in targets[part_idx].iter().enumerate() {
                if target.is_none() {
                    continue;
                }
                groups.entry((period, start, end)).or_default().push(Query {
                    part: part_idx,
                    item: i,
                    resource,
                });
            }
        }
    }
    let calls: Vec<Group> = groups
        .into_iter()
        .flat_map(|(key, queries)| {
            let mut chunks = Vec::new();
            let mut it = queries.into_iter().peekable();
            while it.peek().is_some() {
                chunks.push((key, it.by_ref().take(MAX_QUERIES).collect::<Vec<_>>()));
            }
            chunks
        })
        .collect();
    // Each answer is folded into the points as it arrives, so no more than
    // `metric_concurrency` answers are held at once, whatever the size of the region.
    let targets = &targets;
    let mut results = std::pin::pin!(stream::iter(calls)
        .map(|g| async move {
            let r = run_call(p, region, parts, targets, &g, now_ms, ctx.deadline).await;
            (g, r)
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    while let Some((((period, _, _), queries), r)) = results.next().await {
        let first_part = queries.first().map(|q| q.part).unwrap_or(0);
        let newest = match r {
            Ok((newest, refused, calls)) => {
                out[first_part].calls += calls;
                for (n, e) in refused {
                    let part = queries.get(n).map_or(first_part, |q| q.part);
                    out[part].errors.push(e);
                }
                newest
            }
            Err((e, calls)) => {
                out[first_part].calls += calls;
                let involved: std::collections::BTreeSet<usize> =
                    queries.iter().map(|q| q.part).collect();
                for part in involved {
                    out[part].errors.push(e.clone());
                }
                continue;
            }
        };
        for (q, point) in queries.iter().zip(newest) {
            let Some((ts, value)) = point else {
                continue;
            };
            out[q.part].points.push(Point {
                item: q.item,
                resource: q.resource as u32,
                value,
                period_s: period,
                timestamp_ms: ts,
                dimensions: Vec::new(),
            });
        }
    }
    for o in &mut out {
        o.points.sort_by_key(|p| (p.item, p.resource));
    }
    out
}

/// A GetMetricData request, serialised straight from borrowed parts: as `serde_json::Value`
/// trees, the 500 queries of each call in flight were most of the heap of a large estate.
/// Keys in the order `serde_json` writes a `Value`'s (sorted), so the bytes are unchanged.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricDataRequest<'a> {
    end_time: i64,
    metric_data_queries: &'a [MetricDataQuery<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<&'a str>,
    scan_by: &'static str,
    start_time: i64,
}

/// One `MetricDataQuery`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataQuery<'a> {
    id: QueryId,
    metric_stat: MetricStat<'a>,
    return_data: bool,
}

/// A query's `Id`, `m<n>`: written straight into the request, never built as a string.
struct QueryId(usize);

impl Serialize for QueryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("m{}", self.0))
    }
}

/// Its `MetricStat`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStat<'a> {
    metric: MetricName<'a>,
    period: u64,
    stat: &'a str,
}

/// Its `Metric`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricName<'a> {
    dimensions: Dimensions<'a>,
    metric_name: &'a str,
    namespace: &'a str,
}

/// A query's `Dimensions`: the resource's, then the metric's fixed ones (S3 `StorageType`),
/// written straight from both rather than collected into a list per query.
struct Dimensions<'a> {
    resource: &'a [(String, String)],
    fixed: &'a BTreeMap<String, String>,
}

impl Serialize for Dimensions<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let all = self.resource.iter().map(|(k, v)| (k, v)).chain(self.fixed);
        s.collect_seq(all.map(|(k, v)| Dimension { name: k, value: v }))
    }
}

/// One `Dimension`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Dimension<'a> {
    name: &'a str,
    value: &'a str,
}

/// A GetMetricData answer (JSON 1.0).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataAnswer {
    /// One per query that has a result on this page.
    #[serde(default, deserialize_with = "wire::objects")]
    pub metric_data_results: Vec<MetricDataResult>,
    /// Where the next page starts.
    #[serde(default)]
    pub next_token: Option<String>,
    /// Messages about the whole call.
    #[serde(default, deserialize_with = "wire::objects")]
    pub messages: Vec<MessageData>,
}

/// One query's result.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataResult {
    /// The index of the query its `Id` names (`m<n>`; `None` for any other `Id`), read
    /// without keeping the text: a large scrape has tens of thousands of them.
    #[serde(default, rename = "Id", deserialize_with = "query_of_id")]
    pub query: Option<usize>,
    /// `Complete`, `PartialData`, `Forbidden` or `InternalError`.
    #[serde(default)]
    pub status_code: Status,
    /// Epoch seconds or ISO 8601, newest first (`TimestampDescending`).
    #[serde(default, deserialize_with = "wire::list")]
    pub timestamps: SmallVec<[TimestampMs; wire::WINDOW_POINTS]>,
    /// A value per timestamp.
    #[serde(default, deserialize_with = "wire::list")]
    pub values: SmallVec<[Number; wire::WINDOW_POINTS]>,
    /// Why a query was refused.
    #[serde(default, deserialize_with = "wire::objects")]
    pub messages: Vec<MessageData>,
}

impl MetricDataResult {
    /// Its points, (timestamp ms, value), leaving out those without a time or a value.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.timestamps
            .iter()
            .zip(&self.values)
            .filter_map(|(t, v)| Some((t.0?, v.0?)))
    }
}

/// A result's `StatusCode`: only a refusal is told apart from data (`Complete`, `PartialData`,
/// or a status this exporter does not know, which is treated as data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Status {
    /// Datapoints (or nothing to say).
    #[default]
    Data,
    /// `Forbidden`: the query was refused for want of permission.
    Forbidden,
    /// `InternalError`: the cloud failed the query.
    InternalError,
}

impl Status {
    /// For a refusal: the code as the cloud writes it, and its error class.
    fn refusal(self) -> Option<(&'static str, ErrorClass)> {
        match self {
            Status::Data => None,
            Status::Forbidden => Some(("Forbidden", ErrorClass::AuthError)),
            Status::InternalError => Some(("InternalError", ErrorClass::ServerError)),
        }
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        wire::read_str(d, |s| match s {
            Some("Forbidden") => Status::Forbidden,
            Some("InternalError") => Status::InternalError,
            _ => Status::Data,
        })
    }
}

/// The query index of a result's `Id`.
fn query_of_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    wire::read_str(d, |s| s.and_then(query_index))
}

/// A `MessageData`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageData {
    /// Its code.
    #[serde(default)]
    pub code: Text,
    /// Its text.
    #[serde(default)]
    pub value: Text,
}

/// A timestamp in ms: epoch seconds (a number, as JSON 1.0 sends it) or ISO 8601; `None` when
/// neither (null, other text, a boolean, a list or an object).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimestampMs(pub Option<i64>);

impl<'de> Deserialize<'de> for TimestampMs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TimestampMs, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TimestampMs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("epoch seconds or an ISO 8601 time")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TimestampMs, E> {
                Ok(TimestampMs(Some((v * 1000.0) as i64)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TimestampMs, E> {
                Ok(TimestampMs(
                    i64::try_from(v).ok().and_then(|s| s.checked_mul(1000)),
                ))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TimestampMs, E> {
                Ok(TimestampMs(v.checked_mul(1000)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TimestampMs, E> {
                // Fractions of a second are dropped.
                let whole = match s.split_once('.') {
                    Some((head, _)) => format!("{head}Z"),
                    None => s.to_string(),
                };
                Ok(TimestampMs(
                    crate::util::UtcTime::parse_iso8601(&whole).map(|t| t.to_unix() * 1000),
                ))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<TimestampMs, E> {
                Ok(TimestampMs(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<TimestampMs, E> {
                Ok(TimestampMs(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<TimestampMs, A::Error> {
                wire::drain_seq(seq).map(|()| TimestampMs(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TimestampMs, A::Error> {
                wire::drain_map(map).map(|()| TimestampMs(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// One GetMetricData call (all its pages): the newest complete point per query (`m<n>`, n =
/// its index in the group), the queries refused, and calls made.
async fn run_call(
    p: &AwsProvider,
    region: &str,
    parts: &[FetchPart<'_>],
    targets: &Targets,
    group: &Group,
    now_ms: i64,
    deadline: Instant,
) -> CallResult {
    let ((period, start, end), queries) = group;
    let p_ms = (*period * 1000) as i64;
    let queries: Vec<MetricDataQuery<'_>> = queries
        .iter()
        .enumerate()
        .filter_map(|(n, q)| query_of(&parts[q.part], targets, q, *period, n))
        .collect();
    let mut newest: Vec<Option<(i64, f64)>> = vec![None; group.1.len()];
    let mut refused: Vec<(usize, CloudError)> = Vec::new();
    let mut calls = 0u64;
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        // The window is (start, end]: StartTime is inclusive, EndTime exclusive.
        let request = GetMetricDataRequest {
            end_time: (end + p_ms) / 1000,
            metric_data_queries: &queries,
            next_token: token.as_deref(),
            scan_by: "TimestampDescending",
            start_time: (start + p_ms) / 1000,
        };
        let payload = serde_json::to_vec(&request).map_err(|e| {
            let site = crate::cloud::http::CallSite {
                cloud: crate::cloud::Cloud::Aws,
                api: "GetMetricData",
                region,
            };
            (
                site.error(
                    ErrorClass::BadResponse,
                    format!("encoding the request: {e}"),
                ),
                calls,
            )
        })?;
        calls += 1;
        let answer: MetricDataAnswer = p
            .json(GET_METRIC_DATA, region, payload, deadline)
            .await
            .map_err(|e| (e, calls))?;
        for r in &answer.metric_data_results {
            let n = r.query;
            // Complete and PartialData carry datapoints (PartialData continues on the next
            // page); Forbidden and InternalError fail the query, not the call. A refusal whose
            // `Id` names no query of this call is still reported (against the call's first
            // job), not dropped.
            if let Some(problem) = refused_query(r, region) {
                refused.push((n.unwrap_or(usize::MAX), problem));
            }
            let Some(slot) = n.and_then(|n| newest.get_mut(n)) else {
                continue;
            };
            let points = r.points().chain(*slot);
            *slot = newest_complete(points, p_ms, now_ms);
        }
        for m in &answer.messages {
            debug!(
                code = m.code.as_str(),
                message = m.value.as_str(),
                "GetMetricData message"
            );
        }
        let next = answer.next_token.filter(|t| !t.is_empty());
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok((newest, refused, calls))
}

/// The index of a query from its `Id` (`m<n>`).
fn query_index(id: &str) -> Option<usize> {
    id.strip_prefix('m')?.parse().ok()
}

/// One query, `Id` `m<n>` (n = its index in the call); `None` for a resource without
/// dimensions (left out when the calls were planned).
fn query_of<'a>(
    part: &FetchPart<'a>,
    targets: &'a Targets,
    q: &Query,
    period: u64,
    n: usize,
) -> Option<MetricDataQuery<'a>> {
    let src: &'a crate::mapping::SourceSpec = &part.items[q.item].source;
    let target = targets[q.part][q.resource].as_ref()?;
    let dimensions = Dimensions {
        resource: &target.dimensions,
        fixed: &src.query_dimensions,
    };
    Some(MetricDataQuery {
        id: QueryId(n),
        metric_stat: MetricStat {
            metric: MetricName {
                dimensions,
                metric_name: &src.metric,
                namespace: &target.namespace,
            },
            period,
            stat: &src.statistic,
        },
        return_data: true,
    })
}

/// The error of a result whose `StatusCode` says the cloud did not answer the query.
fn refused_query(r: &MetricDataResult, region: &str) -> Option<CloudError> {
    let (status, class) = r.status_code.refusal()?;
    let detail = r
        .messages
        .first()
        .map(|m| m.value.as_str())
        .unwrap_or("no message");
    Some(CloudError {
        code: Some(status.to_string()),
        http_status: Some(200),
        ..crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Aws,
            api: "GetMetricData",
            region,
        }
        .error(
            class,
            format!(
                "query {} answered {status}: {detail}",
                r.query.map_or("?".to_string(), |n| format!("m{n}"))
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_is_written_as_boto3_writes_it() {
        let resource = [(
            "LoadBalancer".to_string(),
            "app/web/50dc6c495c0c9188".to_string(),
        )];
        let fixed = BTreeMap::new();
        let queries = [MetricDataQuery {
            id: QueryId(0),
            metric_stat: MetricStat {
                metric: MetricName {
                    dimensions: Dimensions {
                        resource: &resource,
                        fixed: &fixed,
                    },
                    metric_name: "ActiveConnectionCount",
                    namespace: "AWS/ApplicationELB",
                },
                period: 60,
                stat: "Sum",
            },
            return_data: true,
        }];
        let request = GetMetricDataRequest {
            end_time: 1_735_689_720,
            metric_data_queries: &queries,
            next_token: Some("t1"),
            scan_by: "TimestampDescending",
            start_time: 1_735_689_660,
        };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            json!({
                "StartTime": 1_735_689_660,
                "EndTime": 1_735_689_720,
                "ScanBy": "TimestampDescending",
                "NextToken": "t1",
                "MetricDataQueries": [{
                    "Id": "m0",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ApplicationELB",
                            "MetricName": "ActiveConnectionCount",
                            "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/50dc6c495c0c9188"}],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": true,
                }],
            })
            .to_string()
        );
    }

    #[test]
    fn periods_follow_the_scrape_interval_in_minutes() {
        assert_eq!(period_for(None, 60), 60);
        assert_eq!(period_for(None, 120), 120);
        assert_eq!(period_for(None, 15), 60);
        assert_eq!(period_for(None, 100), 120);
        assert_eq!(period_for(Some(86_400), 60), 86_400);
    }

    #[test]
    fn refused_queries_become_errors() {
        let r: MetricDataResult = serde_json::from_value(json!({"Id": "m3", "StatusCode": "Forbidden", "Messages": [{"Code": "Forbidden", "Value": "not allowed"}]})).unwrap();
        let e = refused_query(&r, "us-east-1").unwrap();
        assert_eq!(e.class, ErrorClass::AuthError);
        assert!(e.message.contains("m3") && e.message.contains("not allowed"));
        let r: MetricDataResult =
            serde_json::from_value(json!({"Id": "x9", "StatusCode": "InternalError"})).unwrap();
        let e = refused_query(&r, "us-east-1").unwrap();
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.code.as_deref(), Some("InternalError"));
        assert!(e
            .message
            .contains("query ? answered InternalError: no message"));
        for status in ["PartialData", "Complete", "SomethingNew"] {
            let r: MetricDataResult =
                serde_json::from_value(json!({"Id": "m0", "StatusCode": status})).unwrap();
            assert!(refused_query(&r, "us-east-1").is_none());
        }
    }

    #[test]
    fn odd_values_lose_their_point_not_the_answer() {
        let site = crate::cloud::http::CallSite {
            cloud: crate::cloud::Cloud::Aws,
            api: "GetMetricData",
            region: "us-east-1",
        };
        let body = br#"{"MetricDataResults":[
            {"Id":"m0","StatusCode":"Complete","Timestamps":null,"Values":null},
            7,
            {"Id":"m1","StatusCode":"Complete","Timestamps":[true,1735689600,1735689540],
             "Values":[9,"x",2.5],"Messages":null}],"Messages":null}"#;
        let a: MetricDataAnswer = super::super::parse_json_answer(site, 200, body).unwrap();
        assert_eq!(a.metric_data_results.len(), 2);
        assert_eq!(a.metric_data_results[0].points().count(), 0);
        assert_eq!(
            a.metric_data_results[1].points().collect::<Vec<_>>(),
            [(1_735_689_540_000, 2.5)]
        );
        let e =
            super::super::parse_json_answer::<MetricDataAnswer>(site, 200, b" [ ]").unwrap_err();
        assert_eq!(e.class, ErrorClass::BadResponse);
        assert!(e.message.contains("not a JSON object"), "{}", e.message);
    }

    #[test]
    fn timestamps_come_as_numbers_or_iso() {
        let t: Vec<TimestampMs> = serde_json::from_str(
            r#"[1735689660, 1735689660.0, "2025-01-01T00:01:00Z", "2025-01-01T00:01:00.000Z", "x"]"#,
        )
        .unwrap();
        let ms = Some(1_735_689_660_000);
        assert_eq!(
            t,
            [
                TimestampMs(ms),
                TimestampMs(ms),
                TimestampMs(ms),
                TimestampMs(ms),
                TimestampMs(None)
            ]
        );
        assert_eq!(query_index("m42"), Some(42));
        assert_eq!(query_index("x42"), None);
    }
}
