//! CloudWatch `GetMetricData` over JSON 1.0 (what boto3 sends): unlike the other clouds, one
//! call carries up to 500 queries across metrics *and* resources, so a job's every (metric,
//! resource) pair with the same period and window goes into as few calls as 500 allows, each
//! followed through `NextToken`. The period is the scrape interval in whole minutes
//! (CloudWatch accepts any multiple of 60) unless the mapping pins one; the statistic is the
//! mapping's.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::debug;

use super::AwsProvider;
use crate::cloud::period::window;
use crate::cloud::{
    CallContext, CloudError, ErrorClass, FetchItem, FetchOutcome, FetchPart, Point, Resource,
};
use crate::mapping::ProductCloudSpec;

/// The JSON 1.0 target of GetMetricData.
pub const GET_METRIC_DATA_TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";
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
/// What one call returned: datapoints per query Id, the queries the cloud refused (Id and
/// error: `StatusCode` Forbidden or InternalError), and calls made; or the error and calls made.
type CallResult = Result<
    (
        HashMap<String, Vec<(i64, f64)>>,
        Vec<(String, CloudError)>,
        u64,
    ),
    (CloudError, u64),
>;

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
    let mut groups: BTreeMap<(u64, i64, i64), Vec<Query>> = BTreeMap::new();
    for (part_idx, part) in parts.iter().enumerate() {
        for (i, item) in part.items.iter().enumerate() {
            let src = &item.source;
            let period = period_for(src.period, ctx.scrape_interval_s);
            let (start, end) = window(now_ms, period, ctx.ingestion_delay_s);
            for (resource, r) in part.resources.iter().enumerate() {
                if part.spec.target(r).is_none() {
                    debug!(resource = %r.id, "no CloudWatch dimensions discovered; not queried");
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
    let mut results = std::pin::pin!(stream::iter(calls)
        .map(|g| async {
            let r = run_call(p, region, parts, &g, ctx.deadline).await;
            (g, r)
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    while let Some((((period, _, _), queries), r)) = results.next().await {
        let first_part = queries.first().map(|q| q.part).unwrap_or(0);
        let series = match r {
            Ok((series, refused, calls)) => {
                out[first_part].calls += calls;
                for (id, e) in refused {
                    let n: Option<usize> = id.strip_prefix('m').and_then(|n| n.parse().ok());
                    let part = n
                        .and_then(|n| queries.get(n))
                        .map_or(first_part, |q| q.part);
                    out[part].errors.push(e);
                }
                series
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
        let period_ms = (period * 1000) as i64;
        for (n, q) in queries.iter().enumerate() {
            let Some(points) = series.get(&format!("m{n}")) else {
                continue;
            };
            // Newest point whose period has ended.
            let Some((ts, value)) = points
                .iter()
                .filter(|(t, v)| v.is_finite() && t + period_ms <= now_ms)
                .max_by_key(|(t, _)| *t)
            else {
                continue;
            };
            out[q.part].points.push(Point {
                item: q.item,
                resource_id: parts[q.part].resources[q.resource].id.clone(),
                value: *value,
                period_s: period,
                timestamp_ms: *ts,
                dimensions: Vec::new(),
            });
        }
    }
    for o in &mut out {
        o.points
            .sort_by(|a, b| (a.item, &a.resource_id).cmp(&(b.item, &b.resource_id)));
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
    id: String,
    metric_stat: MetricStat<'a>,
    return_data: bool,
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
    dimensions: Vec<Dimension<'a>>,
    metric_name: &'a str,
    namespace: String,
}

/// One `Dimension`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Dimension<'a> {
    name: std::borrow::Cow<'a, str>,
    value: std::borrow::Cow<'a, str>,
}

/// One GetMetricData call (all its pages): datapoints per query Id (`m<n>`, n = index in the
/// group), and calls made.
async fn run_call(
    p: &AwsProvider,
    region: &str,
    parts: &[FetchPart<'_>],
    group: &Group,
    deadline: Instant,
) -> CallResult {
    let ((period, start, end), queries) = group;
    let p_ms = (*period * 1000) as i64;
    let queries: Vec<MetricDataQuery<'_>> = queries
        .iter()
        .enumerate()
        .filter_map(|(n, q)| query_of(&parts[q.part], q, *period, n))
        .collect();
    let mut series: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    let mut refused: Vec<(String, CloudError)> = Vec::new();
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
        let v = p
            .json(
                "monitoring",
                GET_METRIC_DATA_TARGET,
                "GetMetricData",
                region,
                payload,
                deadline,
            )
            .await
            .map_err(|e| (e, calls))?;
        for r in v
            .get("MetricDataResults")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = r.get("Id").and_then(Value::as_str) else {
                continue;
            };
            // Complete and PartialData carry datapoints (PartialData continues on the next
            // page); Forbidden and InternalError fail the query, not the call.
            if let Some(problem) = refused_query(r, region) {
                refused.push((id.to_string(), problem));
            }
            let ts = r.get("Timestamps").and_then(Value::as_array);
            let vals = r.get("Values").and_then(Value::as_array);
            let (Some(ts), Some(vals)) = (ts, vals) else {
                continue;
            };
            let entry = series.entry(id.to_string()).or_default();
            for (t, v) in ts.iter().zip(vals) {
                if let (Some(t), Some(v)) = (timestamp_ms(t), v.as_f64()) {
                    entry.push((t, v));
                }
            }
        }
        for m in v
            .get("Messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            debug!(message = %m, "GetMetricData message");
        }
        let next = v
            .get("NextToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok((series, refused, calls))
}

/// One query, `Id` `m<n>` (n = its index in the call); `None` for a resource without
/// dimensions (left out when the calls were planned).
fn query_of<'a>(
    part: &FetchPart<'a>,
    q: &Query,
    period: u64,
    n: usize,
) -> Option<MetricDataQuery<'a>> {
    let src: &'a crate::mapping::SourceSpec = &part.items[q.item].source;
    let target = part.spec.target(&part.resources[q.resource])?;
    let dimensions = target
        .dimensions
        .into_iter()
        .map(|(k, v)| Dimension {
            name: k.into(),
            value: v.into(),
        })
        .chain(src.query_dimensions.iter().map(|(k, v)| Dimension {
            name: k.as_str().into(),
            value: v.as_str().into(),
        }))
        .collect();
    Some(MetricDataQuery {
        id: format!("m{n}"),
        metric_stat: MetricStat {
            metric: MetricName {
                dimensions,
                metric_name: &src.metric,
                namespace: target.namespace,
            },
            period,
            stat: &src.statistic,
        },
        return_data: true,
    })
}

/// The error of a result whose `StatusCode` says the cloud did not answer the query.
fn refused_query(r: &Value, region: &str) -> Option<CloudError> {
    let status = r.get("StatusCode").and_then(Value::as_str)?;
    let class = match status {
        "Forbidden" => ErrorClass::AuthError,
        "InternalError" => ErrorClass::ServerError,
        _ => return None,
    };
    let detail = r
        .pointer("/Messages/0/Value")
        .and_then(Value::as_str)
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
                r.get("Id").and_then(Value::as_str).unwrap_or("?")
            ),
        )
    })
}

/// A JSON timestamp: epoch seconds (a number, as JSON 1.0 sends it) or ISO 8601.
fn timestamp_ms(v: &Value) -> Option<i64> {
    if let Some(s) = v.as_f64() {
        return Some((s * 1000.0) as i64);
    }
    let s = v.as_str()?;
    let trimmed = match s.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => s.to_string(),
    };
    crate::util::UtcTime::parse_iso8601(&trimmed).map(|t| t.to_unix() * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_is_written_as_boto3_writes_it() {
        let queries = [MetricDataQuery {
            id: "m0".into(),
            metric_stat: MetricStat {
                metric: MetricName {
                    dimensions: vec![Dimension {
                        name: "LoadBalancer".into(),
                        value: "app/web/50dc6c495c0c9188".into(),
                    }],
                    metric_name: "ActiveConnectionCount",
                    namespace: "AWS/ApplicationELB".into(),
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
        let r = json!({"Id": "m3", "StatusCode": "Forbidden", "Messages": [{"Code": "Forbidden", "Value": "not allowed"}]});
        let e = refused_query(&r, "us-east-1").unwrap();
        assert_eq!(e.class, ErrorClass::AuthError);
        assert!(e.message.contains("m3") && e.message.contains("not allowed"));
        assert!(refused_query(
            &json!({"Id": "m0", "StatusCode": "PartialData"}),
            "us-east-1"
        )
        .is_none());
        assert!(
            refused_query(&json!({"Id": "m0", "StatusCode": "Complete"}), "us-east-1").is_none()
        );
    }

    #[test]
    fn timestamps_come_as_numbers_or_iso() {
        assert_eq!(timestamp_ms(&json!(1735689660)), Some(1_735_689_660_000));
        assert_eq!(timestamp_ms(&json!(1735689660.0)), Some(1_735_689_660_000));
        assert_eq!(
            timestamp_ms(&json!("2025-01-01T00:01:00Z")),
            Some(1_735_689_660_000)
        );
    }
}
