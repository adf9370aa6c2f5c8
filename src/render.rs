//! Rendering: a finished collection ([`Snapshot`]) is written in the text format straight from
//! its jobs and samples, byte for byte as the `prometheus` crate's encoder would write it but
//! without building a registry of copies, merged with the long-lived self-metrics registry
//! ([`SelfMetrics`]). It is written in chunks, so `/metrics` streams it instead of holding it
//! whole. Output is deterministic: families sorted by name, series by labels.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rustc_hash::FxHashMap;

use crate::cloud::{Cloud, CloudError, ErrorClass, Product, Resource};
use crate::mapping::{MappingSet, COMMON_LABELS};

/// One exported value of a cloud family. Its common labels are the job's and its resource's
/// ([`JobResult::label`]), so a sample owns only its family's own label values: at 100,000
/// series, owned copies of every label would be most of the process's memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Index of the family in [`MappingSet::families`].
    pub family: usize,
    /// Index of the resource in the job's [`JobResult::resources`].
    pub resource: u32,
    /// Values of the family's own labels, in the family's order (most families have none);
    /// shared by the samples of one item when the item names them all itself.
    pub extra: Arc<[Box<str>]>,
    /// The value in base units.
    pub value: f64,
}

/// What one job produced.
#[derive(Clone, Debug)]
pub struct JobResult {
    /// Cloud of the job.
    pub cloud: Cloud,
    /// Account of the job.
    pub account_id: String,
    /// Region of the job.
    pub region: String,
    /// Product of the job.
    pub product: Product,
    /// Every call of the job succeeded.
    pub success: bool,
    /// Wall time of the job.
    pub duration: Duration,
    /// The resources exported (from the latest discovery).
    pub resources: Arc<Vec<Resource>>,
    /// The samples.
    pub samples: Vec<Sample>,
    /// The first error of the job, if any.
    pub error: Option<CloudError>,
    /// Monitor calls the job made.
    pub calls: u64,
    /// Smallest period of the job's points, seconds (0 when none).
    pub min_period_s: u64,
}

impl JobResult {
    /// Label value `i` (0–3) of every sample of this job: its cloud, account, region and product.
    fn label_of_job(&self, i: usize) -> &str {
        match i {
            0 => self.cloud.as_str(),
            1 => &self.account_id,
            2 => &self.region,
            _ => self.product.as_str(),
        }
    }

    /// Label value `i` of a sample of this job: [`COMMON_LABELS`] in order, then the family's
    /// own labels.
    pub fn label<'a>(&'a self, sample: &'a Sample, i: usize) -> &'a str {
        let resource = self.resources.get(sample.resource as usize);
        match i {
            0..=3 => self.label_of_job(i),
            4 => resource.map_or("", |r| r.id.as_str()),
            5 => resource.map_or("", Resource::code_name),
            n => sample.extra.get(n - COMMON_LABELS.len()).map_or("", |v| v),
        }
    }
}

/// The result of one collection.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Per job, sorted by (cloud, account, region, product).
    pub jobs: Vec<JobResult>,
    /// Wall time of the collection.
    pub duration: Duration,
    /// Smallest period of any exported point, seconds (0 when none).
    pub smallest_period_s: u64,
}

/// Self-metrics that live as long as the process.
pub struct SelfMetrics {
    /// The registry rendered with every scrape.
    pub registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    rate_limits: IntCounterVec,
    retries: IntCounterVec,
    /// Duration of collections.
    pub collection_duration: Histogram,
    /// The time the last collection was given (its scrape's deadline less the start).
    pub scrape_timeout: Gauge,
    /// Entries per cache.
    pub cache_entries: IntGaugeVec,
    /// Approximate bytes per cache.
    pub cache_bytes: IntGaugeVec,
    /// Members in the shard membership.
    pub shard_members: IntGauge,
    /// Shard keys this replica owns.
    pub shard_owned_keys: IntGauge,
    /// Changes of the membership seen since start.
    pub shard_membership_changes: IntCounter,
    /// Failed membership lookups by source (file, headless).
    pub shard_membership_errors: IntCounterVec,
    /// 1 for this replica's membership source and name.
    pub shard_info: IntGaugeVec,
    /// 1 when the last config load succeeded.
    pub config_reload_ok: IntGauge,
    /// Unix time of the last successful config load.
    pub config_reload_timestamp: Gauge,
    /// Reload attempts by trigger and result.
    pub config_reloads: IntCounterVec,
    /// Scrapes by how they were answered (`collected`, `joined`, `cached`).
    pub scrapes: IntCounterVec,
    /// Monitor calls rejected as too large and split.
    pub batch_splits: IntCounterVec,
    /// Mapped metrics whose unit in the cloud's metadata differs from the mapping's.
    pub unit_mismatches: IntGaugeVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    match r {
        Ok(v) => v,
        // Names and label sets below are constants checked by the unit test.
        Err(e) => unreachable!("self-metric definition: {e}"),
    }
}

impl SelfMetrics {
    /// Create and register every self-metric.
    pub fn new() -> SelfMetrics {
        let registry = Registry::new();
        let requests = must(IntCounterVec::new(
            Opts::new(
                "multicloud_request_total",
                "Cloud API calls by cloud, API and outcome (ok or the error class).",
            ),
            &["cloud_provider", "api", "status"],
        ));
        let request_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "multicloud_request_duration_seconds",
                "Duration of cloud API calls.",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["cloud_provider", "api"],
        ));
        let rate_limits = must(IntCounterVec::new(
            Opts::new(
                "multicloud_rate_limit_total",
                "Cloud API calls answered with a throttling error.",
            ),
            &["cloud_provider", "api"],
        ));
        let retries = must(IntCounterVec::new(
            Opts::new(
                "multicloud_request_retries_total",
                "Cloud API calls repeated after a throttling, 5xx or timeout error.",
            ),
            &["cloud_provider", "api"],
        ));
        let collection_duration = must(Histogram::with_opts(
            HistogramOpts::new(
                "multicloud_collection_duration_seconds",
                "Duration of whole collections (all owned jobs).",
            )
            .buckets(vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0]),
        ));
        let cache_entries = must(IntGaugeVec::new(
            Opts::new("multicloud_cache_entries", "Entries held per cache."),
            &["cache"],
        ));
        let cache_bytes = must(IntGaugeVec::new(
            Opts::new(
                "multicloud_cache_size_bytes",
                "Approximate memory held per cache.",
            ),
            &["cache"],
        ));
        let shard_members = must(IntGauge::new(
            "multicloud_shard_members",
            "Replicas in the shard membership.",
        ));
        let shard_owned_keys = must(IntGauge::new(
            "multicloud_shard_owned_keys",
            "Shard keys (jobs) this replica owns.",
        ));
        let shard_membership_changes = must(IntCounter::new(
            "multicloud_shard_membership_changes_total",
            "Times the list of replicas changed after the first lookup; each change moves only the keys of the members that came or went.",
        ));
        let shard_membership_errors = must(IntCounterVec::new(
            Opts::new(
                "multicloud_shard_membership_errors_total",
                "Failed membership lookups (the members file unreadable, empty or with a duplicate; DNS failing or empty). The last good membership stays in force.",
            ),
            &["source"],
        ));
        let shard_info = must(IntGaugeVec::new(
            Opts::new(
                "multicloud_shard_info",
                "Where this replica's membership comes from (discovery: none, static, file, headless) and its own member name; the value is always 1.",
            ),
            &["discovery", "self"],
        ));
        let config_reload_ok = must(IntGauge::new(
            "multicloud_config_last_reload_successful",
            "1 when the last configuration load succeeded.",
        ));
        let scrape_timeout = must(Gauge::new(
            "multicloud_scrape_timeout_seconds",
            "Time the last collection was given: the scrape's timeout (Prometheus' header, capped by server.scrape_timeout) less the answer margin. Jobs still running then report multicloud_scrape_success 0.",
        ));
        let config_reload_timestamp = must(Gauge::new(
            "multicloud_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (the start counts as one).",
        ));
        let config_reloads = must(IntCounterVec::new(
            Opts::new(
                "multicloud_config_reloads_total",
                "Configuration reloads by trigger (sighup, file_change, http) and result (success, failure: the running configuration stayed).",
            ),
            &["trigger", "result"],
        ));
        let scrapes = must(IntCounterVec::new(
            Opts::new(
                "multicloud_scrapes_total",
                "Scrapes of /metrics by how they were answered: collected (started a collection), joined (shared one in flight), cached (reused a result younger than server.result_cache_ttl).",
            ),
            &["result"],
        ));
        let batch_splits = must(IntCounterVec::new(
            Opts::new(
                "multicloud_batch_splits_total",
                "Monitor calls the cloud rejected as too large, whose instances were split into smaller calls; the size that works is remembered.",
            ),
            &["cloud_provider", "api"],
        ));
        let unit_mismatches = must(IntGaugeVec::new(
            Opts::new(
                "multicloud_mapping_unit_mismatch",
                "1 for a mapped metric whose unit in the cloud's metadata differs from the source_unit its mapping converts from: its values are suspect until the mapping is fixed.",
            ),
            &["cloud_provider", "namespace", "metric", "mapping_unit", "cloud_unit"],
        ));
        let build_info = must(IntGaugeVec::new(
            Opts::new(
                "multicloud_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(rate_limits.clone()),
            Box::new(retries.clone()),
            Box::new(collection_duration.clone()),
            Box::new(scrape_timeout.clone()),
            Box::new(cache_entries.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(shard_members.clone()),
            Box::new(shard_owned_keys.clone()),
            Box::new(shard_membership_changes.clone()),
            Box::new(shard_membership_errors.clone()),
            Box::new(shard_info.clone()),
            Box::new(config_reload_ok.clone()),
            Box::new(config_reload_timestamp.clone()),
            Box::new(config_reloads.clone()),
            Box::new(scrapes.clone()),
            Box::new(batch_splits.clone()),
            Box::new(unit_mismatches.clone()),
            Box::new(build_info),
        ] {
            must(registry.register(c));
        }
        SelfMetrics {
            registry,
            requests,
            request_duration,
            rate_limits,
            retries,
            collection_duration,
            scrape_timeout,
            cache_entries,
            cache_bytes,
            shard_members,
            shard_owned_keys,
            shard_membership_changes,
            shard_membership_errors,
            shard_info,
            config_reload_ok,
            config_reload_timestamp,
            config_reloads,
            scrapes,
            batch_splits,
            unit_mismatches,
        }
    }

    /// Count a call's outcome and duration.
    pub fn observe_request<T>(
        &self,
        cloud: Cloud,
        api: &str,
        result: &Result<T, CloudError>,
        took: Duration,
    ) {
        let status = match result {
            Ok(_) => "ok",
            Err(e) => e.class.as_str(),
        };
        self.requests
            .with_label_values(&[cloud.as_str(), api, status])
            .inc();
        self.request_duration
            .with_label_values(&[cloud.as_str(), api])
            .observe(took.as_secs_f64());
        if let Err(e) = result {
            if e.class == ErrorClass::LimitError {
                self.rate_limits
                    .with_label_values(&[cloud.as_str(), api])
                    .inc();
            }
        }
    }

    /// Cloud API calls made so far (every attempt, whatever its outcome), per cloud and API.
    pub fn request_counts(&self) -> BTreeMap<(String, String), u64> {
        use prometheus::core::Collector;
        let mut out = BTreeMap::new();
        for family in self.requests.collect() {
            for m in family.get_metric() {
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.get_name() == name)
                        .map(|l| l.get_value().to_string())
                        .unwrap_or_default()
                };
                *out.entry((label("cloud_provider"), label("api")))
                    .or_insert(0) += m.get_counter().get_value() as u64;
            }
        }
        out
    }

    /// Count a call that is about to be repeated.
    pub fn observe_retry(&self, cloud: Cloud, api: &str) {
        self.retries.with_label_values(&[cloud.as_str(), api]).inc();
    }

    /// Calls counted so far for (cloud, api, status).
    pub fn request_count(&self, cloud: Cloud, api: &str, status: &str) -> u64 {
        self.requests
            .with_label_values(&[cloud.as_str(), api, status])
            .get()
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        SelfMetrics::new()
    }
}

/// Label-name form of a tag key: `tag_` + the key in snake_case (`CodeName` → `tag_code_name`,
/// `kubernetes.io/service-name` → `tag_kubernetes_io_service_name`), as promtool's lint asks.
pub fn tag_label(key: &str) -> String {
    snake_label("tag_", key)
}

/// Label-name form of a resource attribute: the key in snake_case (`vpcId` → `vpc_id`).
pub fn attribute_label(key: &str) -> String {
    snake_label("", key)
}

fn snake_label(prefix: &str, key: &str) -> String {
    let mut out = String::from(prefix);
    let mut prev: Option<char> = None;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
        prev = Some(c);
    }
    while out.ends_with('_') && out.len() > prefix.len() + 1 {
        out.pop();
    }
    out
}

/// A series of a family written straight from the snapshot: its label values by index (in the
/// family's label-name definition order) and its value.
trait Row {
    fn label(&self, i: usize) -> &str;
    fn value(&self) -> f64;
}

/// A cloud series: a sample and the job whose labels it shares. Kept small (there is one per
/// exported series while the exposition is written): sorting compares [`Ranks`], and writing
/// copies the resource's [`CommonLabelText`], so neither needs its label values here.
#[derive(Clone, Copy)]
struct Series<'a> {
    job: &'a JobResult,
    sample: &'a Sample,
    /// Index of the job in the snapshot, for its [`Ranks`] and [`CommonLabelText`].
    job_index: u32,
}

impl Row for Series<'_> {
    fn label(&self, i: usize) -> &str {
        self.job.label(self.sample, i)
    }
    fn value(&self) -> f64 {
        self.sample.value
    }
}

/// A job-health series: the job's four labels and a value.
struct JobRow<'a> {
    job: &'a JobResult,
    value: f64,
}

impl Row for JobRow<'_> {
    fn label(&self, i: usize) -> &str {
        self.job.label_of_job(i)
    }
    fn value(&self) -> f64 {
        self.value
    }
}

/// A resource-info series: every label value, the value always 1.
struct InfoRow<'a>(Vec<&'a str>);

impl Row for InfoRow<'_> {
    fn label(&self, i: usize) -> &str {
        self.0.get(i).copied().unwrap_or("")
    }
    fn value(&self) -> f64 {
        1.0
    }
}

/// A gauge family ready to write: what the registry's encoder writes, without a registry (it
/// would copy every label name and value of every series twice, which at 100,000 series is
/// most of the process's memory and CPU).
struct GaugeFamily<'a, R> {
    name: &'a str,
    help: &'a str,
    /// Label names in definition order.
    labels: Vec<&'a str>,
    /// Label indices in name order (how the encoder writes and sorts them).
    order: Vec<usize>,
    series: Vec<R>,
}

impl<'a, R: Row> GaugeFamily<'a, R> {
    /// The family with its series sorted as the encoder sorts them (by label values in
    /// label-name order) and duplicates dropped (the first is kept: the sort is stable).
    fn new(name: &'a str, help: &'a str, labels: Vec<&'a str>, mut series: Vec<R>) -> Self {
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|i| labels[*i]);
        series.sort_by(|a, b| {
            order
                .iter()
                .map(|i| a.label(*i).cmp(b.label(*i)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        series.dedup_by(|a, b| order.iter().all(|i| a.label(*i) == b.label(*i)));
        GaugeFamily {
            name,
            help,
            labels,
            order,
            series,
        }
    }

    /// Write the family in the text format; nothing for a family without series (as the
    /// registry gathers it).
    fn write(&self, sink: &mut Sink<'_>) {
        self.write_with(sink, |out, row| {
            let mut separator = '{';
            for i in &self.order {
                out.push(separator);
                write_label(out, self.labels[*i], row.label(*i));
                separator = ',';
            }
            out.push('}');
        });
    }

    /// Write the family with `labels` writing each series' `{…}`.
    fn write_with(&self, sink: &mut Sink<'_>, mut labels: impl FnMut(&mut String, &R)) {
        if self.series.is_empty() {
            return;
        }
        let out = &mut sink.buf;
        out.push_str("# HELP ");
        out.push_str(self.name);
        out.push(' ');
        escape_into(out, self.help, false);
        out.push_str("\n# TYPE ");
        out.push_str(self.name);
        out.push_str(" gauge\n");
        for row in &self.series {
            let out = &mut sink.buf;
            out.push_str(self.name);
            labels(out, row);
            out.push(' ');
            write_value(out, row.value());
            out.push('\n');
            sink.flush_if_full();
        }
    }
}

impl GaugeFamily<'_, Series<'_>> {
    /// Write a cloud family, copying each series' common labels from their pre-written pairs.
    fn write_cloud(&self, common: &CommonLabelText, sink: &mut Sink<'_>) {
        self.write_with(sink, |out, s| {
            let job = s.job_index as usize;
            let mut separator = '{';
            for &i in &self.order {
                out.push(separator);
                separator = ',';
                match i {
                    0..=5 => out.push_str(common.pair(job, s.sample.resource, i)),
                    i => write_label(out, self.labels[i], s.label(i)),
                }
            }
            out.push('}');
        });
    }
}

/// `name="value"`, the value escaped.
fn write_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value, true);
    out.push('"');
}

/// The common labels of a snapshot's series written once per exposition as a series carries
/// them (`name="escaped value"`), per job: its four, and each resource's `resource_id` and
/// `code_name`. A resource has several series (one per metric, more with ports or code
/// classes) and a job many resources, so a series copies its pairs instead of writing and
/// escaping six labels again.
struct CommonLabelText(Vec<JobLabelText>);

/// One job's pre-written common labels.
struct JobLabelText {
    /// The pairs of its labels 0–3 ([`COMMON_LABELS`] order), one after another.
    job: String,
    /// Where each of them starts, and where the last ends.
    job_at: [u32; 5],
    /// The `resource_id` and `code_name` pairs of its resources, one after another, then
    /// those of a resource index out of range (empty values, as [`JobResult::label`] has them).
    resources: String,
    /// Per resource (the out-of-range one last): where its `resource_id` pair starts, where
    /// its `code_name` pair starts, and where that ends.
    resource_at: Vec<[u32; 3]>,
}

impl CommonLabelText {
    fn of(snapshot: &Snapshot) -> CommonLabelText {
        let jobs = snapshot.jobs.iter().map(|job| {
            let mut text = String::new();
            let mut job_at = [0u32; 5];
            for i in 0..4 {
                write_label(&mut text, COMMON_LABELS[i], job.label_of_job(i));
                job_at[i + 1] = text.len() as u32;
            }
            let pairs = job.resources.iter().map(|r| (r.id.as_str(), r.code_name()));
            let mut resources = String::new();
            let mut resource_at = Vec::with_capacity(job.resources.len() + 1);
            for (id, code_name) in pairs.chain([("", "")]) {
                let start = resources.len() as u32;
                write_label(&mut resources, COMMON_LABELS[4], id);
                let middle = resources.len() as u32;
                write_label(&mut resources, COMMON_LABELS[5], code_name);
                resource_at.push([start, middle, resources.len() as u32]);
            }
            JobLabelText {
                job: text,
                job_at,
                resources,
                resource_at,
            }
        });
        CommonLabelText(jobs.collect())
    }

    /// The pair of common label `i` (0–5) of a job's resource.
    fn pair(&self, job: usize, resource: u32, i: usize) -> &str {
        let j = &self.0[job];
        let (text, at, k) = if i < 4 {
            (&j.job, &j.job_at[..], i)
        } else {
            let last = &j.resource_at[j.resource_at.len() - 1];
            let at = j.resource_at.get(resource as usize).unwrap_or(last);
            (&j.resources, &at[..], i - 4)
        };
        &text[at[k] as usize..at[k + 1] as usize]
    }
}

/// `\`, newline and (in label values) `"` escaped as the text format requires.
fn escape_into(out: &mut String, v: &str, quotes: bool) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'"')) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A value as the registry's encoder writes it: Rust's shortest round-trip form, and
/// `+Inf`, `-Inf`, `NaN`.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        // Whole numbers (counts, bytes) are most values: written as the integer they are,
        // which is what `{v}` writes for them, without the float formatter.
        let n = v as i64;
        if n < 0 {
            out.push('-');
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        out.extend(digits[at..].iter().map(|d| char::from(*d)));
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

/// Where the exposition goes: a buffer handed on in chunks of about `chunk` bytes, so a
/// streamed answer never holds the whole text.
struct Sink<'e> {
    buf: String,
    chunk: usize,
    emit: &'e mut dyn FnMut(String),
}

impl Sink<'_> {
    fn flush_if_full(&mut self) {
        if self.buf.len() >= self.chunk {
            let next = String::with_capacity(self.chunk.min(1 << 20) + 512);
            let full = std::mem::replace(&mut self.buf, next);
            (self.emit)(full);
        }
    }

    fn finish(mut self) {
        if !self.buf.is_empty() {
            (self.emit)(std::mem::take(&mut self.buf));
        }
    }
}

/// Where each common label value of the snapshot stands in the order of all values of its label:
/// the four job labels among the jobs, `resource_id` and `code_name` among all resources. Worked
/// out once per exposition, so each family sorts on integers instead of comparing strings at
/// every step; equal values have equal ranks, so the order (and which duplicates meet) is the
/// order of the strings.
struct Ranks {
    /// Per job: the ranks of its labels 0–3 ([`COMMON_LABELS`] order).
    jobs: Vec<[u32; 4]>,
    /// Per job, per resource: the ranks of its labels 4 and 5.
    resources: Vec<Vec<[u32; 2]>>,
}

/// The rank of each value among the distinct values, in string order.
fn dense_ranks(values: &[&str]) -> Vec<u32> {
    let mut by_value: Vec<u32> = (0..values.len() as u32).collect();
    by_value.sort_unstable_by(|a, b| values[*a as usize].cmp(values[*b as usize]));
    let mut ranks = vec![0; values.len()];
    let mut rank = 0;
    let mut previous: Option<&str> = None;
    for i in by_value {
        let v = values[i as usize];
        if previous.is_some_and(|p| p != v) {
            rank += 1;
        }
        previous = Some(v);
        ranks[i as usize] = rank;
    }
    ranks
}

impl Ranks {
    fn of(snapshot: &Snapshot) -> Ranks {
        let jobs = &snapshot.jobs;
        let per_label: [Vec<u32>; 4] = std::array::from_fn(|i| {
            let values: Vec<&str> = jobs.iter().map(|j| j.label_of_job(i)).collect();
            dense_ranks(&values)
        });
        let job_ranks = (0..jobs.len())
            .map(|job| std::array::from_fn(|i| per_label[i][job]))
            .collect();
        let all: Vec<&Resource> = jobs.iter().flat_map(|j| j.resources.iter()).collect();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        let code_names: Vec<&str> = all.iter().map(|r| r.code_name()).collect();
        let (id_ranks, code_name_ranks) = (dense_ranks(&ids), dense_ranks(&code_names));
        let mut at = 0;
        let resources = jobs
            .iter()
            .map(|j| {
                let n = j.resources.len();
                let r = (at..at + n)
                    .map(|k| [id_ranks[k], code_name_ranks[k]])
                    .collect();
                at += n;
                r
            })
            .collect();
        Ranks {
            jobs: job_ranks,
            resources,
        }
    }
}

/// A cloud family's series, not yet sorted: a family is sorted when it is written, so only
/// one family's sorted copy exists at a time.
struct CloudSeries<'a> {
    family: &'a crate::mapping::FamilySpec,
    series: Vec<Series<'a>>,
}

impl<'a> CloudSeries<'a> {
    /// The family, sorted by label values in label-name order (as the encoder sorts), with
    /// duplicates dropped (the first is kept).
    fn build(self, ranks: &Ranks) -> GaugeFamily<'a, Series<'a>> {
        let mut labels: Vec<&str> = COMMON_LABELS.to_vec();
        labels.extend(self.family.labels.iter().map(String::as_str));
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by_key(|i| labels[*i]);
        // The family's own labels take few values (ports, code classes): ranked here.
        let own = labels.len() - COMMON_LABELS.len();
        let own_ranks: Vec<BTreeMap<&str, u32>> = (0..own)
            .map(|k| {
                let values: BTreeSet<&str> = self
                    .series
                    .iter()
                    .map(|s| s.label(COMMON_LABELS.len() + k))
                    .collect();
                values.into_iter().zip(0..).collect()
            })
            .collect();
        let width = order.len();
        let mut keys: Vec<u32> = Vec::with_capacity(self.series.len() * width);
        for s in &self.series {
            for i in &order {
                keys.push(match *i {
                    i @ 0..=3 => ranks.jobs[s.job_index as usize][i],
                    i @ (4 | 5) => ranks.resources[s.job_index as usize]
                        .get(s.sample.resource as usize)
                        .map_or(0, |r| r[i - 4]),
                    i => {
                        let own = &own_ranks[i - COMMON_LABELS.len()];
                        own.get(s.label(i)).copied().unwrap_or(0)
                    }
                });
            }
        }
        let key = |n: usize| &keys[n * width..(n + 1) * width];
        let mut by_key: Vec<usize> = (0..self.series.len()).collect();
        // Stable, so of equal series the first is kept.
        by_key.sort_by(|a, b| key(*a).cmp(key(*b)));
        let mut series = Vec::with_capacity(self.series.len());
        let mut previous: Option<&[u32]> = None;
        for n in by_key {
            if previous == Some(key(n)) {
                continue;
            }
            previous = Some(key(n));
            series.push(self.series[n]);
        }
        GaugeFamily {
            name: &self.family.name,
            help: &self.family.help,
            labels,
            order,
            series,
        }
    }
}

/// The cloud families of a snapshot, by family index.
fn cloud_families<'a>(snapshot: &'a Snapshot, mappings: &'a MappingSet) -> Vec<CloudSeries<'a>> {
    // Counted first, so each family's list is allocated once at its size.
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for s in snapshot.jobs.iter().flat_map(|j| &j.samples) {
        *counts.entry(s.family).or_default() += 1;
    }
    let mut by_family: BTreeMap<usize, Vec<Series<'a>>> = counts
        .into_iter()
        .map(|(family, n)| (family, Vec::with_capacity(n)))
        .collect();
    for (job_index, job) in (0u32..).zip(&snapshot.jobs) {
        for s in &job.samples {
            by_family.entry(s.family).or_default().push(Series {
                job,
                sample: s,
                job_index,
            });
        }
    }
    by_family
        .into_iter()
        .filter_map(|(idx, series)| {
            Some(CloudSeries {
                family: mappings.families.get(idx)?,
                series,
            })
        })
        .collect()
}

const JOB_LABELS: [&str; 4] = ["cloud_provider", "account_id", "region", "product"];

/// The per-job health families: success, duration and discovered resources.
fn job_families(snapshot: &Snapshot) -> Vec<GaugeFamily<'_, JobRow<'_>>> {
    let rows = |value: fn(&JobResult) -> f64| -> Vec<JobRow<'_>> {
        snapshot
            .jobs
            .iter()
            .map(|job| JobRow {
                job,
                value: value(job),
            })
            .collect()
    };
    vec![
        GaugeFamily::new(
            "multicloud_scrape_success",
            "1 when every cloud call of the job (account, region, product) succeeded in this scrape, 0 when any failed or the scrape deadline passed first.",
            JOB_LABELS.to_vec(),
            rows(|j| if j.success { 1.0 } else { 0.0 }),
        ),
        GaugeFamily::new(
            "multicloud_scrape_duration_seconds",
            "Wall time of the job (account, region, product) in this scrape.",
            JOB_LABELS.to_vec(),
            rows(|j| j.duration.as_secs_f64()),
        ),
        GaugeFamily::new(
            "multicloud_discovered_resources",
            "Resources found by the latest discovery of the job (account, region, product).",
            JOB_LABELS.to_vec(),
            rows(|j| j.resources.len() as f64),
        ),
    ]
}

/// The labels of the resource-info family beyond the common ones and `name`: the attribute
/// labels (never shadowing the fixed ones) and the union of the tag labels (one schema for the
/// family), with the label of every attribute and tag key seen, worked out once per key
/// rather than once per resource.
struct InfoLabels<'a> {
    attribute_labels: Vec<String>,
    tag_labels: Vec<String>,
    label_of_attribute: FxHashMap<&'a str, String>,
    label_of_tag: FxHashMap<&'a str, String>,
}

impl<'a> InfoLabels<'a> {
    fn of(snapshot: &'a Snapshot) -> InfoLabels<'a> {
        let mut label_of_attribute: FxHashMap<&str, String> = FxHashMap::default();
        let mut label_of_tag: FxHashMap<&str, String> = FxHashMap::default();
        for r in snapshot.jobs.iter().flat_map(|j| j.resources.iter()) {
            for k in r.attributes.keys() {
                if !label_of_attribute.contains_key(k.as_str()) {
                    label_of_attribute.insert(k, attribute_label(k));
                }
            }
            for k in r.tags.keys() {
                if !label_of_tag.contains_key(k.as_str()) {
                    label_of_tag.insert(k, tag_label(k));
                }
            }
        }
        let attribute_labels: BTreeSet<&String> = label_of_attribute
            .values()
            .filter(|k| !COMMON_LABELS.contains(&k.as_str()) && *k != "name")
            .collect();
        let tag_labels: BTreeSet<&String> = label_of_tag.values().collect();
        InfoLabels {
            attribute_labels: attribute_labels.into_iter().cloned().collect(),
            tag_labels: tag_labels.into_iter().cloned().collect(),
            label_of_attribute,
            label_of_tag,
        }
    }

    /// The values of `labels` (in label order) from a resource's keyed values; several keys
    /// may sanitise to one label, and then the first key in order wins.
    fn values_into(
        out: &mut Vec<&'a str>,
        labels: &[String],
        label_of: &FxHashMap<&'a str, String>,
        keyed: &'a BTreeMap<String, String>,
    ) {
        let mut by_label: Vec<(&str, &str)> = keyed
            .iter()
            .filter_map(|(k, v)| Some((label_of.get(k.as_str())?.as_str(), v.as_str())))
            .collect();
        // Stable, so of the keys that give one label the first in key order comes first, and
        // is the one kept.
        by_label.sort_by_key(|(label, _)| *label);
        by_label.dedup_by_key(|(label, _)| *label);
        // Both in label order: one walk, not a search of the resource's labels per label of
        // the family (which has the union of every resource's tag labels).
        let mut have = by_label.iter().peekable();
        out.extend(labels.iter().map(|l| {
            while have.next_if(|(label, _)| *label < l.as_str()).is_some() {}
            match have.peek() {
                Some((label, v)) if label == l => *v,
                _ => "",
            }
        }));
    }
}

/// The name of the resource-info family.
const INFO_FAMILY: &str = "multicloud_resource_info";

/// The resource-info family: every discovered resource with its name, attributes and tags.
fn info_family<'a>(
    snapshot: &'a Snapshot,
    info: &'a InfoLabels<'a>,
) -> GaugeFamily<'a, InfoRow<'a>> {
    let mut labels: Vec<&str> = COMMON_LABELS.to_vec();
    labels.push("name");
    labels.extend(info.attribute_labels.iter().map(String::as_str));
    labels.extend(info.tag_labels.iter().map(String::as_str));
    let resources: usize = snapshot.jobs.iter().map(|j| j.resources.len()).sum();
    let mut rows = Vec::with_capacity(resources);
    for job in &snapshot.jobs {
        for r in job.resources.iter() {
            let mut values: Vec<&str> = Vec::with_capacity(labels.len());
            values.extend([
                job.cloud.as_str(),
                job.account_id.as_str(),
                job.region.as_str(),
                job.product.as_str(),
                r.id.as_str(),
                r.code_name(),
                r.name.as_str(),
            ]);
            InfoLabels::values_into(
                &mut values,
                &info.attribute_labels,
                &info.label_of_attribute,
                &r.attributes,
            );
            InfoLabels::values_into(&mut values, &info.tag_labels, &info.label_of_tag, &r.tags);
            rows.push(InfoRow(values));
        }
    }
    GaugeFamily::new(
        INFO_FAMILY,
        "Every discovered resource, with its name, what discovery learnt that names it in the monitor (vip, vpc_id, appid, …) and all its tags as tag_<key> labels; the value is always 1.",
        labels,
        rows,
    )
}

/// The self-metrics in the text format, one text per family name.
pub fn self_metric_texts(self_metrics: &SelfMetrics) -> Result<BTreeMap<String, String>, String> {
    let encoder = TextEncoder::new();
    let mut texts = BTreeMap::new();
    for mf in self_metrics.registry.gather() {
        let mut buf = Vec::new();
        encoder
            .encode(std::slice::from_ref(&mf), &mut buf)
            .map_err(|e| format!("encoding: {e}"))?;
        let text = String::from_utf8(buf).map_err(|e| format!("encoding: {e}"))?;
        texts.insert(mf.get_name().to_string(), text);
    }
    Ok(texts)
}

/// Write the exposition of a snapshot (cloud families, job health, resource info) and the
/// self-metrics' texts, families in name order, handing it to `emit` in chunks of about
/// `chunk` bytes.
pub fn write_exposition(
    snapshot: &Snapshot,
    mappings: &MappingSet,
    self_metric_texts: &BTreeMap<String, String>,
    chunk: usize,
    emit: &mut dyn FnMut(String),
) {
    // The large families (cloud series, resource info) are sorted or built only when their
    // turn comes, and freed once written: the peak is the largest family, not all of them.
    enum Part<'a> {
        Text(&'a str),
        Cloud(CloudSeries<'a>),
        Job(GaugeFamily<'a, JobRow<'a>>),
        Info,
    }
    let info_labels = InfoLabels::of(snapshot);
    let ranks = Ranks::of(snapshot);
    let common = CommonLabelText::of(snapshot);
    let mut parts: BTreeMap<&str, Part<'_>> = BTreeMap::new();
    for fam in cloud_families(snapshot, mappings) {
        parts.insert(&fam.family.name, Part::Cloud(fam));
    }
    for fam in job_families(snapshot) {
        parts.insert(fam.name, Part::Job(fam));
    }
    parts.insert(INFO_FAMILY, Part::Info);
    // Cloud family names begin with their product (`clb_`), the others with `multicloud_`:
    // they never meet, and if they did the self-metric would win (one name, one family).
    for (name, text) in self_metric_texts {
        parts.insert(name.as_str(), Part::Text(text));
    }
    let mut sink = Sink {
        buf: String::with_capacity(chunk.min(1 << 20) + 512),
        chunk,
        emit,
    };
    for part in parts.into_values() {
        match part {
            Part::Text(text) => {
                sink.buf.push_str(text);
                sink.flush_if_full();
            }
            Part::Cloud(series) => series.build(&ranks).write_cloud(&common, &mut sink),
            Part::Job(fam) => fam.write(&mut sink),
            Part::Info => info_family(snapshot, &info_labels).write(&mut sink),
        }
    }
    sink.finish();
}

/// Size of the last whole exposition, to reserve the next one in one allocation instead of
/// growing (and copying) it by doubling.
static LAST_EXPOSITION_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// The whole exposition as one text (for callers that need it at once; `/metrics` streams it
/// with [`write_exposition`]).
pub fn render(
    snapshot: &Snapshot,
    mappings: &MappingSet,
    self_metrics: &SelfMetrics,
) -> Result<String, String> {
    use std::sync::atomic::Ordering;
    let texts = self_metric_texts(self_metrics)?;
    let mut out =
        String::with_capacity(LAST_EXPOSITION_BYTES.load(Ordering::Relaxed) * 11 / 10 + 4096);
    write_exposition(snapshot, mappings, &texts, 1 << 18, &mut |chunk| {
        out.push_str(&chunk)
    });
    LAST_EXPOSITION_BYTES.store(out.len(), Ordering::Relaxed);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::GaugeVec;

    #[test]
    fn values_are_written_as_rust_formats_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            7.0,
            10.0,
            12345678.0,
            -3.0,
            999_999_999_999_999.0,
            1e15,
            -1e15,
            1e21,
            2.5e-7,
            0.1,
            -123.456,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut out = String::new();
            write_value(&mut out, v);
            assert_eq!(out, format!("{v}"), "{v:e}");
        }
        let mut out = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            write_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf -Inf ");
    }

    /// What the `prometheus` crate's encoder writes for a gauge family.
    fn encoded(g: GaugeVec) -> String {
        let registry = Registry::new();
        registry.register(Box::new(g)).unwrap();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// What `write` writes into a sink of small chunks.
    fn written_by(write: impl FnOnce(&mut Sink<'_>)) -> String {
        let mut got = String::new();
        let mut emit = |chunk: String| got.push_str(&chunk);
        let mut sink = Sink {
            buf: String::new(),
            chunk: 100,
            emit: &mut emit,
        };
        write(&mut sink);
        sink.finish();
        got
    }

    /// What [`GaugeFamily::write`] writes.
    fn written<R: Row>(family: &GaugeFamily<'_, R>) -> String {
        written_by(|sink| family.write(sink))
    }

    #[test]
    fn self_metrics_register_and_render() {
        let m = SelfMetrics::new();
        m.observe_request::<()>(
            Cloud::Aliyun,
            "DescribeMetricLast",
            &Ok(()),
            Duration::from_millis(5),
        );
        let text = render(&Snapshot::default(), &MappingSet::default(), &m).unwrap();
        assert!(text.contains("multicloud_request_total{api=\"DescribeMetricLast\",cloud_provider=\"aliyun\",status=\"ok\"} 1"));
        assert!(text.contains("multicloud_build_info{version="));
    }

    /// Every family with labels of its own (they sort before, among and after the common
    /// labels: `code_class`, `method`, `source`, …) and one without, so label order, the runs
    /// of common labels copied from a resource's text, and sorting all matter.
    #[test]
    fn cloud_families_are_written_as_the_registry_encodes_them() {
        let mappings = MappingSet::embedded().unwrap();
        let mut own_labels: BTreeSet<&str> = BTreeSet::new();
        let mut plain_checked = false;
        for (idx, fam) in mappings.families.iter().enumerate() {
            let new_label = fam.labels.iter().any(|l| !own_labels.contains(l.as_str()));
            let first_plain = fam.labels.is_empty() && !plain_checked;
            if new_label || first_plain {
                check_cloud_family(&mappings, idx);
                own_labels.extend(fam.labels.iter().map(String::as_str));
                plain_checked |= first_plain;
            }
        }
        for l in [
            "code_class",
            "method",
            "source",
            "storage_class",
            "target_group",
        ] {
            assert!(own_labels.contains(l), "{l} is covered");
        }
    }

    fn check_cloud_family(mappings: &MappingSet, idx: usize) {
        let fam = &mappings.families[idx];
        let resource = |id: &str, code_name: &str| Resource {
            id: id.into(),
            name: String::new(),
            region: "r".into(),
            tags: [("CodeName".to_string(), code_name.to_string())].into(),
            attributes: BTreeMap::new(),
        };
        let sample = |resource: u32, seed: &str, value: f64| Sample {
            family: idx,
            resource,
            extra: (0..fam.labels.len())
                .map(|i| format!("{seed}{}", (i * 7) % 3).into())
                .collect(),
            value,
        };
        let job = |account: &str, resources: Vec<Resource>, samples: Vec<Sample>| JobResult {
            cloud: Cloud::Aliyun,
            account_id: account.into(),
            region: "r".into(),
            product: fam.product,
            success: true,
            duration: Duration::ZERO,
            resources: Arc::new(resources),
            samples,
            error: None,
            calls: 0,
            min_period_s: 0,
        };
        let snapshot = Snapshot {
            jobs: vec![
                job(
                    "2",
                    vec![
                        resource("lb-z", "b"),
                        resource("lb-a", "q\"uote\\back\nline"),
                    ],
                    vec![
                        sample(0, "z", 1.0),
                        sample(1, "b", 2.5e-7),
                        sample(0, "q\"uote", 0.1),
                        // A duplicate series: the first is kept.
                        sample(0, "z", 9.0),
                        // A resource index out of range: empty resource_id and code_name.
                        sample(7, "o", 4.0),
                    ],
                ),
                job(
                    "1",
                    vec![resource("lb-m", "a")],
                    vec![sample(0, "m", 12345678.0), sample(0, "b2", -3.0)],
                ),
            ],
            ..Snapshot::default()
        };
        let mut names: Vec<&str> = COMMON_LABELS.to_vec();
        names.extend(fam.labels.iter().map(String::as_str));
        let g = GaugeVec::new(Opts::new(fam.name.clone(), fam.help.clone()), &names).unwrap();
        for job in &snapshot.jobs {
            for s in job.samples.iter().rev() {
                let values: Vec<&str> = (0..names.len()).map(|i| job.label(s, i)).collect();
                g.get_metric_with_label_values(&values)
                    .unwrap()
                    .set(s.value);
            }
        }
        let want = encoded(g);
        let mut families = cloud_families(&snapshot, mappings);
        assert_eq!(families.len(), 1);
        let family = families.remove(0).build(&Ranks::of(&snapshot));
        assert_eq!(family.name, fam.name);
        let distinct = if fam.labels.is_empty() { 4 } else { 6 };
        assert_eq!(
            family.series.len(),
            distinct,
            "{}: duplicates dropped",
            fam.name
        );
        let got = written(&family);
        assert_eq!(got, want, "{}", fam.name);
        assert!(got.contains("} 1\n"), "the first of the duplicates is kept");
        assert!(
            got.contains("resource_id=\"\""),
            "out of range: empty resource_id"
        );
        let common = CommonLabelText::of(&snapshot);
        assert_eq!(
            written_by(|sink| family.write_cloud(&common, sink)),
            want,
            "{}: copied common labels",
            fam.name
        );
    }

    #[test]
    fn the_resource_info_family_is_written_as_the_registry_encodes_it() {
        let resource = |id: &str, name: &str, tags: &[(&str, &str)]| Resource {
            id: id.into(),
            name: name.into(),
            region: "r".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attributes: [("vpcId".to_string(), format!("vpc-{id}"))].into(),
        };
        let job = |account: &str, resources: Vec<Resource>| JobResult {
            cloud: Cloud::Aliyun,
            account_id: account.into(),
            region: "r".into(),
            product: Product::Clb,
            success: true,
            duration: Duration::ZERO,
            resources: Arc::new(resources),
            samples: Vec::new(),
            error: None,
            calls: 0,
            min_period_s: 0,
        };
        let snapshot = Snapshot {
            jobs: vec![
                job(
                    "2",
                    vec![
                        resource("lb-z", "web", &[("CodeName", "b"), ("env", "prod")]),
                        resource("lb-a", "web", &[("CodeName", "b")]),
                        resource("lb-q", "api", &[("team", "x\"y")]),
                    ],
                ),
                job(
                    "1",
                    vec![
                        resource("lb-m", "", &[("CodeName", "a")]),
                        resource("lb-b", "db", &[("CodeName", "a"), ("env", "dev")]),
                    ],
                ),
            ],
            ..Snapshot::default()
        };
        let info = InfoLabels::of(&snapshot);
        let family = info_family(&snapshot, &info);
        assert_eq!(family.series.len(), 5);
        let g = GaugeVec::new(Opts::new(family.name, family.help), &family.labels).unwrap();
        for row in family.series.iter().rev() {
            g.get_metric_with_label_values(&row.0).unwrap().set(1.0);
        }
        let want = encoded(g);
        let got = written(&family);
        assert_eq!(got, want);
    }

    #[test]
    fn info_values_are_found_by_label_and_the_first_key_of_a_label_wins() {
        let keyed: BTreeMap<String, String> = [
            ("env", "3"),
            ("Env", "2"),
            ("ENV", "1"),
            ("team", "t"),
            ("zone", "not a label of the family"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let label_of: FxHashMap<&str, String> =
            keyed.keys().map(|k| (k.as_str(), tag_label(k))).collect();
        let labels: Vec<String> = ["tag_a", "tag_env", "tag_owner", "tag_team", "tag_zz"]
            .iter()
            .map(|l| l.to_string())
            .collect();
        let mut out = vec!["before"];
        InfoLabels::values_into(&mut out, &labels, &label_of, &keyed);
        assert_eq!(out, ["before", "", "1", "", "t", ""]);
    }

    #[test]
    fn tag_keys_become_label_names() {
        assert_eq!(tag_label("CodeName"), "tag_code_name");
        assert_eq!(tag_label("env"), "tag_env");
        assert_eq!(tag_label("HTTPPort"), "tag_httpport");
        assert_eq!(
            tag_label("kubernetes.io/service-name"),
            "tag_kubernetes_io_service_name"
        );
        assert_eq!(attribute_label("vpcId"), "vpc_id");
        assert_eq!(attribute_label("LoadBalancerType"), "load_balancer_type");
        assert_eq!(attribute_label("vip"), "vip");
    }
}
