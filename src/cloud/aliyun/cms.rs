//! CloudMonitor (CMS 2019-01-01) monitor data: `DescribeMetricMetaList` for the periods each
//! metric supports, and `DescribeMetricLast` for the newest point of every series. Per metric the
//! cheaper of two shapes is used: dimension-less paging over every instance of the namespace
//! (1440 rows a page, the most `Length` allows), or the resources' dimensions in batches of 50
//! (the per-call limit).

use rustc_hash::FxHashMap;
use std::borrow::Cow;

use futures_util::stream::{self, StreamExt};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::{check_next_token, value_string, AliyunProvider, Api, PeriodTable, RpcAnswer};
use crate::cloud::http::CallSite;
use crate::cloud::period::{choose_period, window};
use crate::cloud::wire::{self, Key, Text};
use crate::cloud::{
    CallContext, CloudError, ErrorClass, FetchItem, FetchOutcome, NewestPoints, Resource,
};
use crate::mapping::{ProductCloudSpec, SourceSpec};

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

/// What one query's rows gave (the newest points of the resources asked about, the rows that
/// named a known resource), the period of the answer, and calls made.
type QueryResult = Result<(Vec<RowPoint>, usize, u64, u64), CloudError>;

/// One DescribeMetricLast query (all its pages).
struct Query {
    item: usize,
    metric: String,
    period: u64,
    start: i64,
    end: i64,
    dimensions: Option<String>,
}

/// A DescribeMetricLast answer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricLastAnswer {
    /// The period of the points, as text.
    #[serde(default)]
    pub period: Option<Text>,
    /// The rows: a JSON array written as a string.
    #[serde(default)]
    pub datapoints: Option<DatapointsText>,
    /// Where the next page starts.
    #[serde(default)]
    pub next_token: Option<Text>,
    /// For support tickets.
    #[serde(default)]
    pub request_id: Option<Text>,
    /// `false` when the API reports a failure.
    #[serde(default)]
    pub success: Option<Value>,
}

impl RpcAnswer for MetricLastAnswer {
    fn success(&self) -> Option<&Value> {
        self.success.as_ref()
    }
}

/// The text of `Datapoints`: the API writes the rows' JSON array as a string (an array written
/// as JSON is accepted too, and turned back into text).
#[derive(Debug, Default)]
pub struct DatapointsText(pub String);

impl<'de> Deserialize<'de> for DatapointsText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DatapointsText, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(DatapointsText(s)),
            Value::Null => Ok(DatapointsText::default()),
            other => Ok(DatapointsText(other.to_string())),
        }
    }
}

/// A row cell: a number or text, borrowed from the answer when it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'de> {
    Int(i64),
    Float(f64),
    Text(Cow<'de, str>),
}

impl Cell<'_> {
    /// A number's value; text that holds a number counts.
    fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            Cell::Text(t) => t.trim().parse().ok(),
        }
    }

    /// An integer's value; a whole float or text that holds an integer counts.
    fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            Cell::Float(_) => None,
            Cell::Text(t) => t.trim().parse().ok(),
        }
    }

    /// The cell as text (`80` for the number 80).
    fn text(&self) -> Cow<'_, str> {
        match self {
            Cell::Int(i) => Cow::Owned(i.to_string()),
            Cell::Float(f) => Cow::Owned(f.to_string()),
            Cell::Text(t) => Cow::Borrowed(t),
        }
    }
}

/// A cell as read: `None` for null, and for a list or an object, which no column holds.
struct MaybeCell<'de>(Option<Cell<'de>>);

impl<'de> Deserialize<'de> for MaybeCell<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MaybeCell<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeCell<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MaybeCell<'de>, E> {
                Ok(MaybeCell(Some(Cell::Int(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MaybeCell<'de>, E> {
                let cell = i64::try_from(v).map_or(Cell::Float(v as f64), Cell::Int);
                Ok(MaybeCell(Some(cell)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MaybeCell<'de>, E> {
                Ok(MaybeCell(Some(Cell::Float(v))))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<MaybeCell<'de>, E> {
                Ok(MaybeCell(Some(Cell::Text(Cow::Borrowed(v)))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeCell<'de>, E> {
                Ok(MaybeCell(Some(Cell::Text(Cow::Owned(v.to_owned())))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<MaybeCell<'de>, E> {
                Ok(MaybeCell(Some(Cell::Text(Cow::Owned(v.to_string())))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeCell<'de>, E> {
                Ok(MaybeCell(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeCell<'de>, A::Error> {
                wire::drain_seq(seq).map(|()| MaybeCell(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeCell<'de>, A::Error> {
                wire::drain_map(map).map(|()| MaybeCell(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the rows of a `Datapoints` array, handing `each` the cells of `columns` of every row
/// (`None` where a row lacks one or it is null); other keys are skipped unread. A row is never
/// built as a map.
pub fn read_rows<'de>(
    text: &'de str,
    columns: &[&str],
    each: impl FnMut(&[Option<Cell<'de>>]),
) -> Result<(), serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_seq(&mut de, RowsVisitor { columns, each })?;
    de.end()
}

struct RowsVisitor<'c, F> {
    columns: &'c [&'c str],
    each: F,
}

impl<'de, F: FnMut(&[Option<Cell<'de>>])> Visitor<'de> for RowsVisitor<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut cells: Vec<Option<Cell<'de>>> = vec![None; self.columns.len()];
        loop {
            cells.iter_mut().for_each(|c| *c = None);
            let row = RowSeed {
                columns: self.columns,
                cells: &mut cells,
            };
            match seq.next_element_seed(row)? {
                None => return Ok(()),
                Some(true) => (self.each)(&cells),
                // An entry that is not an object is no row: skipped.
                Some(false) => {}
            }
        }
    }
}

struct RowSeed<'c, 'r, 'de> {
    columns: &'c [&'c str],
    cells: &'r mut [Option<Cell<'de>>],
}

/// Reads one entry of the rows into the cells; `false` when the entry is not an object.
impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_, 'de> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a row object")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        wire::drain_seq(seq).map(|()| false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match column_of(self.columns, &key) {
                Some(i) => self.cells[i] = map.next_value::<MaybeCell<'de>>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }
}

/// Which of `columns` a row key is. Every key of every row is looked up, and most are not a
/// column (or are one of `Average`, `Maximum`, `Minimum`, all of one length): a column is
/// compared in full only when its length and first and last bytes match.
fn column_of(columns: &[&str], key: &str) -> Option<usize> {
    let k = key.as_bytes();
    columns.iter().position(|c| {
        let c = c.as_bytes();
        c.len() == k.len() && c.first() == k.first() && c.last() == k.last() && c == k
    })
}

/// The newest complete point of a row, named by resource index.
#[derive(Debug, Clone, PartialEq)]
struct RowPoint {
    resource: u32,
    timestamp_ms: i64,
    value: f64,
    labels: Vec<(String, String)>,
}

/// Where each cell a query needs sits among the columns read.
struct RowLayout<'a> {
    columns: Vec<&'a str>,
    id: usize,
    filters: Vec<(usize, &'a str)>,
    timestamp: usize,
    statistic: usize,
    labels: Vec<(&'a str, usize)>,
}

impl<'a> RowLayout<'a> {
    fn new(spec: &'a ProductCloudSpec, source: &'a SourceSpec) -> RowLayout<'a> {
        let mut columns: Vec<&'a str> = Vec::new();
        let mut column = |name: &'a str| match columns.iter().position(|c| *c == name) {
            Some(i) => i,
            None => {
                columns.push(name);
                columns.len() - 1
            }
        };
        let id = column(&spec.resource_dimension);
        let filters = spec
            .dimension_filter
            .iter()
            .map(|(k, v)| (column(k), v.as_str()))
            .collect();
        let timestamp = column("timestamp");
        let statistic = column(&source.statistic);
        let labels = source
            .dimension_labels
            .iter()
            .map(|(label, dim)| (label.as_str(), column(dim)))
            .collect();
        RowLayout {
            columns,
            id,
            filters,
            timestamp,
            statistic,
            labels,
        }
    }
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
    let by_id: FxHashMap<&str, u32> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i as u32))
        .collect();
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
    let by_id = &by_id;
    let mut results = std::pin::pin!(stream::iter(queries)
        .map(|q| async move {
            let layout = RowLayout::new(spec, &items[q.item].source);
            let reading = Reading {
                layout: &layout,
                source: &items[q.item].source,
                by_id,
                now_ms,
            };
            let r = run_query(p, &spec.namespace, region, &q, &reading, ctx.deadline).await;
            (q, r)
        })
        .buffer_unordered(ctx.metric_concurrency.max(1)));
    let mut newest = NewestPoints::default();
    while let Some((q, r)) = results.next().await {
        let (points, matched, period, calls) = match r {
            Ok(x) => x,
            Err(e) => {
                out.calls += 1;
                out.errors.push(e);
                continue;
            }
        };
        out.calls += calls;
        for pt in points {
            newest.offer(
                (q.item, pt.resource, pt.labels),
                pt.timestamp_ms,
                pt.value,
                period,
            );
        }
        if q.dimensions.is_none() {
            let per = matched as f64 / resources.len() as f64;
            p.remember_fan_out(&spec.namespace, &items[q.item].source.metric, per.max(1.0));
        }
    }
    out.points = newest.into_points();
    out
}

/// What reading one query's rows needs.
struct Reading<'a> {
    layout: &'a RowLayout<'a>,
    source: &'a SourceSpec,
    by_id: &'a FxHashMap<&'a str, u32>,
    now_ms: i64,
}

impl Reading<'_> {
    /// The points of a page's rows, and how many rows named a resource of the job (those the
    /// filter drops included: they are what the fan-out estimate counts).
    fn read_page(
        &self,
        text: &str,
        period: u64,
        points: &mut Vec<RowPoint>,
    ) -> Result<usize, serde_json::Error> {
        let l = self.layout;
        // A point whose period has not ended is incomplete (or the period is absurd).
        let period_ms = period.checked_mul(1000).and_then(|p| i64::try_from(p).ok());
        let mut matched = 0usize;
        read_rows(text, &l.columns, |row| {
            let Some(id) = row[l.id].as_ref() else {
                return;
            };
            let Some(&resource) = self.by_id.get(id.text().as_ref()) else {
                return;
            };
            let filtered_out = l.filters.iter().any(|(col, want)| {
                row[*col]
                    .as_ref()
                    .is_none_or(|c| c.text().as_ref() != *want)
            });
            if filtered_out {
                matched += 1;
                return;
            }
            let Some(value) = row[l.statistic].as_ref().and_then(Cell::as_f64) else {
                return;
            };
            let Some(ts) = row[l.timestamp].as_ref().and_then(Cell::as_i64) else {
                return;
            };
            if period_ms.is_none_or(|p| ts.saturating_add(p) > self.now_ms) {
                return;
            }
            matched += 1;
            let labels = l
                .labels
                .iter()
                .map(|(label, col)| {
                    let raw = row[*col].as_ref().map(|c| c.text()).unwrap_or_default();
                    (
                        label.to_string(),
                        self.source.dimension_label_value(label, &raw),
                    )
                })
                .collect();
            points.push(RowPoint {
                resource,
                timestamp_ms: ts,
                value,
                labels,
            });
        })?;
        Ok(matched)
    }
}

/// Run one query through all its pages: (points, rows naming a resource, period of the answer,
/// calls made).
async fn run_query(
    p: &AliyunProvider,
    namespace: &str,
    region: &str,
    q: &Query,
    reading: &Reading<'_>,
    deadline: Instant,
) -> QueryResult {
    let site = CallSite {
        cloud: crate::cloud::Cloud::Aliyun,
        api: DESCRIBE_METRIC_LAST.action,
        region,
    };
    let mut points = Vec::new();
    let mut matched = 0usize;
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
        let answer: MetricLastAnswer = p
            .rpc_as(DESCRIBE_METRIC_LAST, region, &params, deadline)
            .await?;
        calls += 1;
        if let Some(s) = answer.period.as_ref().and_then(|t| t.as_str().parse().ok()) {
            period = s;
        }
        let text = answer.datapoints.unwrap_or_default().0;
        let request_id = answer.request_id.map(Text::into_string);
        matched += reading
            .read_page(&text, period, &mut points)
            .map_err(|e| CloudError {
                http_status: Some(200),
                request_id: request_id.clone(),
                ..site.error(
                    ErrorClass::BadResponse,
                    format!("Datapoints is not a JSON array of rows: {e}"),
                )
            })?;
        token = check_next_token(
            site,
            answer.next_token.map(Text::into_string),
            request_id,
            token.as_deref(),
        )?;
        if token.is_none() || calls as usize >= MAX_PAGES {
            break;
        }
    }
    Ok((points, matched, period, calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_by_column_without_building_maps() {
        // The shape of the DescribeMetricLast example (cloud-apis §A): the rows as a string.
        let answer: MetricLastAnswer = serde_json::from_str(
            r#"{"Period":"60","NextToken":"t2","RequestId":"r1","Code":"200","Success":true,
            "Datapoints":"[{\"timestamp\":1735689600000,\"userId\":\"1\",\"instanceId\":\"lb-1\",\"port\":80,\"Maximum\":7,\"Average\":2.5},{\"timestamp\":1735689660000,\"instanceId\":\"lb-\\u0032\",\"Average\":null}]"}"#,
        )
        .unwrap();
        assert_eq!(answer.period.unwrap().as_str(), "60");
        assert_eq!(answer.next_token.unwrap().as_str(), "t2");
        let text = answer.datapoints.unwrap().0;
        let mut rows = Vec::new();
        read_rows(&text, &["instanceId", "Average", "port"], |r| {
            rows.push(r.to_vec())
        })
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    Some(Cell::Text("lb-1".into())),
                    Some(Cell::Float(2.5)),
                    Some(Cell::Int(80)),
                ],
                // An escaped ID is unescaped; null reads as missing.
                vec![Some(Cell::Text("lb-2".into())), None, None],
            ]
        );
        // Entries that are not objects are skipped; a cell that is a list or an object reads
        // as missing; numbers written as text still count.
        let mut rows = Vec::new();
        read_rows(
            r#"[1, "x", null, [2], {"instanceId": ["a"], "Average": "1.5", "timestamp": 6e4}]"#,
            &["instanceId", "Average", "timestamp"],
            |r| rows.push(r.to_vec()),
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], None);
        assert_eq!(rows[0][1].as_ref().and_then(Cell::as_f64), Some(1.5));
        assert_eq!(rows[0][2].as_ref().and_then(Cell::as_i64), Some(60_000));
        assert!(read_rows("{}", &["instanceId"], |_| ()).is_err());
        assert!(read_rows("", &["instanceId"], |_| ()).is_ok());
    }

    #[test]
    fn row_keys_are_matched_to_columns_exactly() {
        let columns = ["instanceId", "Average", "timestamp", "port"];
        assert_eq!(column_of(&columns, "Average"), Some(1));
        assert_eq!(column_of(&columns, "port"), Some(3));
        // Same length and ends, another middle; same length, other ends; a prefix.
        assert_eq!(column_of(&columns, "instanXeId"), None);
        assert_eq!(column_of(&columns, "Avexage"), None);
        assert_eq!(column_of(&columns, "Maximum"), None);
        assert_eq!(column_of(&columns, "por"), None);
        assert_eq!(column_of(&columns, ""), None);
        assert_eq!(column_of(&["", "port"], ""), Some(0));
    }

    #[test]
    fn an_array_is_no_success() {
        let site = CallSite {
            cloud: crate::cloud::Cloud::Aliyun,
            api: "DescribeMetricLast",
            region: "cn-hangzhou",
        };
        let e =
            super::super::parse_rpc_response_as::<MetricLastAnswer>(site, 200, b"[]").unwrap_err();
        assert_eq!(e.class, crate::cloud::ErrorClass::BadResponse);
        let a: MetricLastAnswer =
            super::super::parse_rpc_response_as(site, 200, br#"{"Datapoints":null}"#).unwrap();
        assert!(a.datapoints.unwrap_or_default().0.is_empty());
    }

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
