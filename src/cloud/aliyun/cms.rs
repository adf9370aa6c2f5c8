//! CloudMonitor (CMS 2019-01-01) monitor data: `DescribeMetricMetaList` for the periods each
//! metric supports, and `DescribeMetricLast` for the newest point of every series. Per metric the
//! cheaper of two shapes is used: dimension-less paging over every instance of the namespace
//! (1440 rows a page, the most `Length` allows), or the resources' dimensions in batches of 50
//! (the per-call limit).

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use super::{next_token, value_string, AliyunProvider, Api, PeriodTable};
use crate::cloud::http::CallSite;
use crate::cloud::period::{choose_period, window};
use crate::cloud::{CallContext, CloudError, ErrorClass, FetchItem, FetchOutcome, Point, Resource};
use crate::mapping::ProductCloudSpec;

/// DescribeMetricLast.
pub const DESCRIBE_METRIC_LAST: Api = Api {
    service: "cms",
    version: "2019-01-01",
    action: "DescribeMetricLast",
};

/// DescribeMetricMetaList.
pub const DESCRIBE_METRIC_META_LIST: Api = Api {
    service: "cms",
    version: "2019-01-01",
    action: "DescribeMetricMetaList",
};

/// Most instances in one call's `Dimensions` (API limit).
pub const MAX_DIMENSIONS: usize = 50;
/// Rows per page asked for (`Length`: API default 1000, maximum 1440; `cloud-apis.md` §E).
pub const PAGE_LENGTH: usize = 1440;
/// Metadata rows per page.
const META_PAGE_SIZE: usize = 1000;
/// Most pages followed for one query, against a cursor that never ends.
const MAX_PAGES: usize = 1000;

/// How one metric's series are fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryShape {
    /// No `Dimensions`: page through every instance of the namespace.
    AllInstances { pages: usize },
    /// `Dimensions` with at most 50 resources per call.
    Batched { calls: usize },
}

impl QueryShape {
    /// Calls this shape costs.
    pub fn calls(&self) -> usize {
        match self {
            QueryShape::AllInstances { pages } => *pages,
            QueryShape::Batched { calls } => *calls,
        }
    }
}

/// The cheaper shape for `resources` resources of `series_per_resource` series each; batched on a
/// tie (it returns only what was asked for).
pub fn query_shape(resources: usize, series_per_resource: f64) -> QueryShape {
    let batched = resources.div_ceil(MAX_DIMENSIONS).max(1);
    let rows_per_batch = (MAX_DIMENSIONS as f64 * series_per_resource.max(1.0)).ceil() as usize;
    let batched_calls = batched * rows_per_batch.div_ceil(PAGE_LENGTH).max(1);
    let rows = (resources as f64 * series_per_resource.max(1.0)).ceil() as usize;
    let pages = rows.div_ceil(PAGE_LENGTH).max(1);
    if pages < batched_calls {
        QueryShape::AllInstances { pages }
    } else {
        QueryShape::Batched {
            calls: batched_calls,
        }
    }
}

/// DescribeMetricMetaList for a namespace, all pages: metric → periods.
pub async fn describe_metric_meta_list(
    p: &AliyunProvider,
    namespace: &str,
    region: &str,
    deadline: Instant,
) -> Result<PeriodTable, CloudError> {
    let mut table = PeriodTable::new();
    let mut page = 1usize;
    let mut received = 0usize;
    loop {
        let params = vec![
            ("Namespace".to_string(), namespace.to_string()),
            ("PageNumber".to_string(), page.to_string()),
            ("PageSize".to_string(), META_PAGE_SIZE.to_string()),
        ];
        let v = p
            .rpc(DESCRIBE_METRIC_META_LIST, region, &params, deadline)
            .await?;
        let rows = v
            .pointer("/Resources/Resource")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for r in &rows {
            let Some(metric) = r.get("MetricName").map(value_string) else {
                continue;
            };
            let mut periods: Vec<u64> = r
                .get("Periods")
                .map(value_string)
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            periods.sort_unstable();
            table.insert(metric, periods);
        }
        let total = v
            .get("TotalCount")
            .map(value_string)
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        // Count what arrived rather than trusting the page size to have been honoured.
        received += rows.len();
        if rows.is_empty() || received >= total || page >= MAX_PAGES {
            break;
        }
        page += 1;
    }
    Ok(table)
}

/// Rows, period of the answer, and calls made by one query.
type QueryResult = Result<(Vec<Value>, u64, u64), CloudError>;
/// (item, resource, dimension labels) of a series.
type SeriesKey = (usize, String, Vec<(String, String)>);

/// One DescribeMetricLast query (all its pages).
struct Query {
    item: usize,
    metric: String,
    period: u64,
    start: i64,
    end: i64,
    dimensions: Option<String>,
}

/// Fetch every item of a job.
pub async fn fetch(
    p: &AliyunProvider,
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
    let periods = match p.period_table(&spec.namespace, region, ctx.deadline).await {
        Ok(t) => Some(t),
        Err(e) => {
            // Without metadata the fallback period still gives data; the failure is reported.
            out.errors.push(e);
            None
        }
    };
    let now_ms = p.shared().clock.now_ms();
    let ids: HashSet<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    let mut queries = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let supported = periods
            .as_ref()
            .and_then(|t| t.get(&item.source.metric))
            .cloned()
            .unwrap_or_default();
        let period = choose_period(
            &supported,
            ctx.scrape_interval_s,
            item.source.period,
            ctx.period_fallback_s,
        );
        let (start, end) = window(now_ms, period, ctx.ingestion_delay_s);
        let default_fan_out =
            if spec.dimension_filter.is_empty() && item.source.dimension_labels.is_empty() {
                1.0
            } else {
                2.0
            };
        let fan_out = p
            .fan_out(&spec.namespace, &item.source.metric)
            .unwrap_or(default_fan_out);
        match query_shape(resources.len(), fan_out) {
            QueryShape::AllInstances { .. } => queries.push(Query {
                item: i,
                metric: item.source.metric.clone(),
                period,
                start,
                end,
                dimensions: None,
            }),
            QueryShape::Batched { .. } => {
                for chunk in resources.chunks(MAX_DIMENSIONS) {
                    let dims: Vec<Value> = chunk
                        .iter()
                        .map(|r| {
                            let mut m = serde_json::Map::new();
                            m.insert(spec.resource_dimension.clone(), Value::String(r.id.clone()));
                            for (k, v) in &spec.dimension_filter {
                                m.insert(k.clone(), Value::String(v.clone()));
                            }
                            Value::Object(m)
                        })
                        .collect();
                    queries.push(Query {
                        item: i,
                        metric: item.source.metric.clone(),
                        period,
                        start,
                        end,
                        dimensions: Some(Value::Array(dims).to_string()),
                    });
                }
            }
        }
    }
    // Each answer is folded into the newest points as it arrives, so no more than
    // `metric_concurrency` answers are held at once, whatever the size of the job.
    let mut results = std::pin::pin!(stream::iter(queries)
        .map(|q| async {
            let r = run_query(p, &spec.namespace, region, &q, ctx.deadline).await;
            (q, r)
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    let mut newest: HashMap<SeriesKey, Point> = HashMap::new();
    while let Some((q, r)) = results.next().await {
        let (rows, period, calls) = match r {
            Ok(x) => x,
            Err(e) => {
                out.calls += 1;
                out.errors.push(e);
                continue;
            }
        };
        out.calls += calls;
        let source = &items[q.item].source;
        let mut matched = 0usize;
        let mut series = HashSet::new();
        for row in &rows {
            let Some(id) = row.get(&spec.resource_dimension).map(value_string) else {
                continue;
            };
            if !ids.contains(id.as_str()) {
                continue;
            }
            let filtered_out = spec
                .dimension_filter
                .iter()
                .any(|(k, v)| row.get(k).map(value_string).as_deref() != Some(v.as_str()));
            if filtered_out {
                matched += 1;
                continue;
            }
            let Some(value) = row.get(&source.statistic).and_then(Value::as_f64) else {
                continue;
            };
            let Some(ts) = row.get("timestamp").and_then(Value::as_i64) else {
                continue;
            };
            // A point whose period has not ended is incomplete (or the period is absurd).
            let period_ms = period.checked_mul(1000).and_then(|p| i64::try_from(p).ok());
            if period_ms.is_none_or(|p| ts.saturating_add(p) > now_ms) {
                continue;
            }
            matched += 1;
            let dims: Vec<(String, String)> = source
                .dimension_labels
                .iter()
                .map(|(label, dim)| {
                    let raw = row.get(dim).map(value_string).unwrap_or_default();
                    (label.clone(), source.dimension_label_value(label, &raw))
                })
                .collect();
            series.insert((id.clone(), dims.clone()));
            let key = (q.item, id.clone(), dims.clone());
            let replace = newest.get(&key).is_none_or(|old| ts > old.timestamp_ms);
            if replace {
                newest.insert(
                    key,
                    Point {
                        item: q.item,
                        resource_id: id,
                        value,
                        period_s: period,
                        timestamp_ms: ts,
                        dimensions: dims,
                    },
                );
            }
        }
        if q.dimensions.is_none() && !resources.is_empty() {
            let per = matched as f64 / resources.len() as f64;
            p.remember_fan_out(&spec.namespace, &source.metric, per.max(1.0));
        }
    }
    let mut points: Vec<Point> = newest.into_values().collect();
    points.sort_by(|a, b| {
        (a.item, &a.resource_id, &a.dimensions).cmp(&(b.item, &b.resource_id, &b.dimensions))
    });
    out.points = points;
    out
}

/// Run one query through all its pages: (rows, period of the answer, calls made).
async fn run_query(
    p: &AliyunProvider,
    namespace: &str,
    region: &str,
    q: &Query,
    deadline: Instant,
) -> QueryResult {
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    let mut period = q.period;
    let mut calls = 0u64;
    loop {
        let mut params = vec![
            ("RegionId".to_string(), region.to_string()),
            ("Namespace".to_string(), namespace.to_string()),
            ("MetricName".to_string(), q.metric.clone()),
            ("Period".to_string(), q.period.to_string()),
            ("StartTime".to_string(), q.start.to_string()),
            ("EndTime".to_string(), q.end.to_string()),
            ("Length".to_string(), PAGE_LENGTH.to_string()),
        ];
        if let Some(d) = &q.dimensions {
            params.push(("Dimensions".to_string(), d.clone()));
        }
        if let Some(t) = &token {
            params.push(("NextToken".to_string(), t.clone()));
        }
        let mut v = p
            .rpc(DESCRIBE_METRIC_LAST, region, &params, deadline)
            .await?;
        calls += 1;
        if let Some(s) = v
            .get("Period")
            .map(value_string)
            .and_then(|s| s.parse().ok())
        {
            period = s;
        }
        // Taken out of the answer, not copied: a page holds up to 1440 rows.
        let page: Vec<Value> = match v.get_mut("Datapoints").map(Value::take) {
            Some(Value::String(s)) if s.is_empty() => Vec::new(),
            Some(Value::String(s)) => serde_json::from_str(&s).map_err(|e| CloudError {
                class: ErrorClass::BadResponse,
                cloud: crate::cloud::Cloud::Aliyun,
                api: DESCRIBE_METRIC_LAST.action.to_string(),
                region: region.to_string(),
                http_status: Some(200),
                code: None,
                message: format!("Datapoints is not a JSON array: {e}"),
                request_id: v.get("RequestId").map(value_string),
            })?,
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        rows.extend(page);
        let site = CallSite {
            cloud: crate::cloud::Cloud::Aliyun,
            api: DESCRIBE_METRIC_LAST.action,
            region,
        };
        token = next_token(site, &v, token.as_deref())?;
        if token.is_none() || calls as usize >= MAX_PAGES {
            break;
        }
    }
    Ok((rows, period, calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheaper_query_shape_is_chosen() {
        assert_eq!(query_shape(1, 1.0), QueryShape::Batched { calls: 1 });
        assert_eq!(query_shape(50, 1.0), QueryShape::Batched { calls: 1 });
        assert_eq!(query_shape(51, 1.0), QueryShape::AllInstances { pages: 1 });
        assert_eq!(
            query_shape(1440, 1.0),
            QueryShape::AllInstances { pages: 1 }
        );
        assert_eq!(
            query_shape(1441, 1.0),
            QueryShape::AllInstances { pages: 2 }
        );
        assert_eq!(query_shape(120, 2.0), QueryShape::AllInstances { pages: 1 });
        // 30 series per resource: batches of 50 need 2 pages each (40 calls for 1000), all
        // instances 21 pages of 1440.
        assert_eq!(query_shape(1000, 30.0).calls(), 21);
        assert_eq!(
            query_shape(100, 30.0),
            QueryShape::AllInstances { pages: 3 }
        );
    }
}
