//! The clouds behind one interface. [`Provider`] is a closed enum (one variant per cloud) whose
//! three operations are all the pipeline needs: list regions, discover the resources of one
//! product in one region, and fetch the newest datapoints of a job's metrics for those resources
//! in the largest batches the cloud allows. Shared machinery lives beside it: the HTTP client with
//! capped bodies and per-call timeouts ([`http`]), retries inside the deadline ([`retry`]), rate
//! limiters per (cloud, account, API) ([`limiter`]) and the error classes ([`CloudError`]).

pub mod aliyun;
pub mod aws;
pub mod buckets;
pub mod crypto;
pub mod http;
pub mod huawei;
pub mod limiter;
pub mod period;
pub mod retry;
pub mod tencent;
pub mod wire;
pub mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::config::AccountConfig;
use crate::mapping::{ProductCloudSpec, SourceSpec};

/// A cloud provider, serialised lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aliyun,
    Tencent,
    Aws,
    Huawei,
}

impl Cloud {
    /// Every cloud, in a stable order.
    pub const ALL: [Cloud; 4] = [Cloud::Aliyun, Cloud::Tencent, Cloud::Aws, Cloud::Huawei];

    /// The lower-case name used in config, mappings and the `cloud_provider` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aliyun => "aliyun",
            Cloud::Tencent => "tencent",
            Cloud::Aws => "aws",
            Cloud::Huawei => "huawei",
        }
    }

    /// Parse the lower-case name.
    pub fn parse(s: &str) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The canonical products the cloud has (Tencent's CLB covers what Aliyun splits into CLB,
    /// ALB and NLB, so Tencent has no `alb` or `nlb`).
    pub fn products(self) -> &'static [Product] {
        match self {
            Cloud::Tencent => &[Product::Clb, Product::Gwlb, Product::Bwp, Product::S3],
            // Huawei: ELB (shared and dedicated) and OBS.
            Cloud::Huawei => &[Product::Clb, Product::S3],
            // AWS has no shared bandwidth package.
            Cloud::Aws => &[
                Product::Clb,
                Product::Alb,
                Product::Nlb,
                Product::Gwlb,
                Product::S3,
            ],
            _ => &Product::ALL,
        }
    }

    /// Whether this build can collect from the cloud.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            Cloud::Aliyun | Cloud::Tencent | Cloud::Aws | Cloud::Huawei
        )
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A canonical product, the same name on every cloud; also the metric name prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Clb,
    Alb,
    Nlb,
    Gwlb,
    Bwp,
    S3,
}

impl Product {
    /// Every product, in a stable order.
    pub const ALL: [Product; 6] = [
        Product::Clb,
        Product::Alb,
        Product::Nlb,
        Product::Gwlb,
        Product::Bwp,
        Product::S3,
    ];

    /// The lower-case name used in config, mapping file names and `resource_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Clb => "clb",
            Product::Alb => "alb",
            Product::Nlb => "nlb",
            Product::Gwlb => "gwlb",
            Product::Bwp => "bwp",
            Product::S3 => "s3",
        }
    }

    /// Parse the lower-case name.
    pub fn parse(s: &str) -> Option<Product> {
        Product::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One discovered resource (a load balancer, a bandwidth package, a bucket).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resource {
    /// The cloud's own ID (`lb-…`, `alb-…`, `cbwp-…`, the bucket name).
    pub id: String,
    /// Display name, "" when the cloud has none.
    pub name: String,
    /// Region the resource lives in.
    pub region: String,
    /// All tags, key → value.
    pub tags: BTreeMap<String, String>,
    /// What discovery learnt that monitor queries need, keyed by the cloud's own names (`vip`,
    /// `vpcId`, `LoadBalancerType`, `appid`); empty on clouds that name resources by ID.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Resource {
    /// The `code_name` label: tag `CodeName`, else `kubernetes.io/service-name`, else `Name`,
    /// as the original exporter did.
    pub fn code_name(&self) -> &str {
        ["CodeName", "kubernetes.io/service-name", "Name"]
            .iter()
            .find_map(|k| self.tags.get(*k))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Rough heap size, for the cache-size self-metric.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.id.len()
            + self.name.len()
            + self.region.len()
            + self
                .tags
                .iter()
                .chain(&self.attributes)
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
    }
}

/// How a failed cloud call is classified: in logs, `multicloud_request_total{status}` and the
/// admin API, with the seed's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Credentials rejected (bad key, bad signature, no permission): never retried.
    AuthError,
    /// Throttled by the cloud: retried with backoff inside the deadline.
    LimitError,
    /// The region is not available to this account or product: the job is skipped.
    RegionSkip,
    /// No answer in time (per-call timeout or the scrape deadline).
    Timeout,
    /// 5xx or the cloud's internal errors: retried with backoff.
    ServerError,
    /// An answer we cannot use (malformed, truncated, too large, unexpected shape).
    BadResponse,
}

impl ErrorClass {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::AuthError => "auth_error",
            ErrorClass::LimitError => "limit_error",
            ErrorClass::RegionSkip => "region_skip",
            ErrorClass::Timeout => "timeout",
            ErrorClass::ServerError => "server_error",
            ErrorClass::BadResponse => "bad_response",
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::LimitError | ErrorClass::ServerError | ErrorClass::Timeout
        )
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed cloud call, with the context an operator needs. Never carries credentials.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloudError {
    /// The class that decides retry and reporting.
    pub class: ErrorClass,
    /// Cloud of the call.
    pub cloud: Cloud,
    /// API name (`DescribeMetricLast`, `ListBuckets`).
    pub api: String,
    /// Region of the call, "" for global calls.
    pub region: String,
    /// HTTP status, when an answer arrived.
    pub http_status: Option<u16>,
    /// The API's own error code (`Throttling.User`).
    pub code: Option<String>,
    /// Human-readable detail (the API's message, or what went wrong locally).
    pub message: String,
    /// The cloud's request id, for support tickets.
    pub request_id: Option<String>,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.cloud, self.api, self.class)?;
        if !self.region.is_empty() {
            write!(f, " region={}", self.region)?;
        }
        if let Some(s) = self.http_status {
            write!(f, " http={s}")?;
        }
        if let Some(c) = &self.code {
            write!(f, " code={c}")?;
        }
        if let Some(r) = &self.request_id {
            write!(f, " request_id={r}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CloudError {}

/// One source metric of a job to fetch: the mapping entry plus where its results go.
#[derive(Clone, Debug)]
pub struct FetchItem {
    /// Index of the family in `MappingSet::families`.
    pub family: usize,
    /// The source entry (metric, statistic, transform, labels).
    pub source: Arc<SourceSpec>,
}

/// A datapoint as a cloud returned it, after choosing the statistic; before unit transforms.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Index into the fetch items the point answers.
    pub item: usize,
    /// Index of the resource the point belongs to in the fetch's resources.
    pub resource: u32,
    /// Value of the mapping's statistic.
    pub value: f64,
    /// Period of the point in seconds, as the cloud reported it.
    pub period_s: u64,
    /// Timestamp of the point (start of its period), Unix ms.
    pub timestamp_ms: i64,
    /// Dimension values the mapping turns into labels (`dimension_labels`).
    pub dimensions: Vec<(String, String)>,
}

/// A series of a fetch: (item, resource index, dimension labels).
pub type SeriesKey = (usize, u32, Vec<(String, String)>);

/// The newest point of each series (item, resource, dimension labels) among those offered:
/// several pages or rows can carry points of one series. The table grows as points arrive and
/// is not sized up front: many jobs fetch at once, most of the time waiting for the limiter,
/// and each holding room for all its series from the start raised the peak RSS.
#[derive(Default)]
pub struct NewestPoints {
    /// Series → (timestamp ms, value, period s) of its newest point so far. Keys are the
    /// job's own indices and the cloud's dimension values, so a fast hash (not one that resists
    /// chosen keys) is enough.
    newest: rustc_hash::FxHashMap<SeriesKey, (i64, f64, u64)>,
}

impl NewestPoints {
    /// Keep the point if it is the newest of its series so far.
    pub fn offer(&mut self, series: SeriesKey, timestamp_ms: i64, value: f64, period_s: u64) {
        let slot = self
            .newest
            .entry(series)
            .or_insert((i64::MIN, value, period_s));
        if timestamp_ms > slot.0 {
            *slot = (timestamp_ms, value, period_s);
        }
    }

    /// The points, ordered by (item, resource, labels).
    pub fn into_points(self) -> Vec<Point> {
        let mut points: Vec<Point> = self
            .newest
            .into_iter()
            .map(
                |((item, resource, dimensions), (timestamp_ms, value, period_s))| Point {
                    item,
                    resource,
                    value,
                    period_s,
                    timestamp_ms,
                    dimensions,
                },
            )
            .collect();
        points.sort_by(|a, b| {
            (a.item, a.resource, &a.dimensions).cmp(&(b.item, b.resource, &b.dimensions))
        });
        points
    }
}

/// What fetching a job's metrics produced: the points that arrived and the calls that failed.
#[derive(Debug, Default)]
pub struct FetchOutcome {
    /// Newest complete point per (item, resource, dimension labels).
    pub points: Vec<Point>,
    /// Errors of failed calls; any error fails the job's success metric.
    pub errors: Vec<CloudError>,
    /// Cloud calls made for the fetch.
    pub calls: u64,
}

/// One job's share of a fetch that spans several products (AWS: one GetMetricData for a region).
pub struct FetchPart<'a> {
    /// Where the product's data lives.
    pub spec: &'a ProductCloudSpec,
    /// Its source metrics.
    pub items: &'a [FetchItem],
    /// Its resources.
    pub resources: &'a [Resource],
}

/// A cloud client for one account: discovery and monitor calls.
pub enum Provider {
    Aliyun(aliyun::AliyunProvider),
    Tencent(tencent::TencentProvider),
    Aws(Box<aws::AwsProvider>),
    Huawei(huawei::HuaweiProvider),
}

/// The per-job context handed to providers.
#[derive(Clone)]
pub struct CallContext {
    /// When the scrape must answer.
    pub deadline: tokio::time::Instant,
    /// Monitor calls in flight per job.
    pub metric_concurrency: usize,
    /// Preferred period (the scrape interval) in seconds.
    pub scrape_interval_s: u64,
    /// Fallback period when the metadata has none.
    pub period_fallback_s: u64,
    /// Ingestion delay to reach back for, in seconds.
    pub ingestion_delay_s: u64,
}

impl Provider {
    /// The provider of an account, sharing the process-wide HTTP machinery.
    pub fn new(
        account: &AccountConfig,
        shared: &http::Shared,
        discovery_ttl: std::time::Duration,
    ) -> Provider {
        match account.cloud {
            Cloud::Tencent => Provider::Tencent(tencent::TencentProvider::new(
                account,
                shared,
                discovery_ttl,
            )),
            Cloud::Aws => Provider::Aws(Box::new(aws::AwsProvider::new(
                account,
                shared,
                discovery_ttl,
            ))),
            Cloud::Huawei => {
                Provider::Huawei(huawei::HuaweiProvider::new(account, shared, discovery_ttl))
            }
            // Config validation admits only supported clouds.
            _ => Provider::Aliyun(aliyun::AliyunProvider::new(account, shared, discovery_ttl)),
        }
    }

    /// Every region the account can use (for `regions = ["*"]`).
    pub async fn regions(&self, ctx: &CallContext) -> Result<Vec<String>, CloudError> {
        match self {
            Provider::Aliyun(p) => aliyun::discovery::regions(p, ctx.deadline).await,
            Provider::Tencent(p) => tencent::discovery::regions(p, ctx.deadline).await,
            Provider::Aws(p) => aws::discovery::regions(p, ctx.deadline).await,
            Provider::Huawei(p) => huawei::discovery::regions(p, ctx.deadline).await,
        }
    }

    /// The resources of one product in one region.
    pub async fn discover(
        &self,
        ctx: &CallContext,
        region: &str,
        product: crate::cloud::Product,
    ) -> Result<Vec<Resource>, CloudError> {
        match self {
            Provider::Aliyun(p) => {
                aliyun::discovery::discover(p, region, product, ctx.deadline).await
            }
            Provider::Tencent(p) => {
                tencent::discovery::discover(p, region, product, ctx.deadline).await
            }
            Provider::Aws(p) => aws::discovery::discover(p, region, product, ctx.deadline).await,
            Provider::Huawei(p) => {
                huawei::discovery::discover(p, region, product, ctx.deadline).await
            }
        }
    }

    /// The newest complete datapoint of each item for each resource.
    pub async fn fetch(
        &self,
        ctx: &CallContext,
        region: &str,
        spec: &ProductCloudSpec,
        items: &[FetchItem],
        resources: &[Resource],
    ) -> FetchOutcome {
        match self {
            Provider::Aliyun(p) => aliyun::cms::fetch(p, ctx, region, spec, items, resources).await,
            Provider::Tencent(p) => {
                tencent::monitor::fetch(p, ctx, region, spec, items, resources).await
            }
            Provider::Aws(p) => {
                aws::cloudwatch::fetch(p, ctx, region, spec, items, resources).await
            }
            Provider::Huawei(p) => huawei::ces::fetch(p, ctx, region, spec, items, resources).await,
        }
    }

    /// Whether one monitor call can carry several products' queries, so a region's jobs are
    /// fetched together ([`Provider::fetch_parts`]).
    pub fn batches_across_products(&self) -> bool {
        matches!(self, Provider::Aws(_))
    }

    /// The newest datapoints of several jobs of one region at once, an outcome per part.
    pub async fn fetch_parts(
        &self,
        ctx: &CallContext,
        region: &str,
        parts: &[FetchPart<'_>],
    ) -> Vec<FetchOutcome> {
        match self {
            Provider::Aws(p) => aws::cloudwatch::fetch_parts(p, ctx, region, parts).await,
            _ => {
                let mut out = Vec::with_capacity(parts.len());
                for part in parts {
                    out.push(
                        self.fetch(ctx, region, part.spec, part.items, part.resources)
                            .await,
                    );
                }
                out
            }
        }
    }

    /// Entries in the provider's metric metadata cache.
    pub fn metadata_cache_len(&self) -> usize {
        match self {
            Provider::Aliyun(p) => p.metadata_cache_len(),
            Provider::Tencent(p) => p.metadata_cache_len(),
            // Periods come from static tables.
            Provider::Aws(_) | Provider::Huawei(_) => 0,
        }
    }
}
