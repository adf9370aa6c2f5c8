//! Micro-benchmarks of what a scrape does per series or per call, with throughput: writing the
//! exposition (series/s) and signing a monitor call on each cloud (calls/s). The estate
//! benchmark measures the whole scrape; these say which part a change moved.
//!
//! `cargo bench --bench hot_paths` (criterion; `-- --quick` for a short run).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use multicloud_exporter::cloud::{aliyun, aws, huawei, tencent, Cloud, Resource};
use multicloud_exporter::mapping::MappingSet;
use multicloud_exporter::render::{render, JobResult, Sample, SelfMetrics, Snapshot};

/// A snapshot of `series` series of one family, over jobs of 500 resources (as an account's
/// region might hold), every resource with a few tags.
fn snapshot(mappings: &MappingSet, series: usize) -> Snapshot {
    let (family, fam) = mappings
        .families
        .iter()
        .enumerate()
        .find(|(_, f)| f.labels.is_empty())
        .expect("a family without labels of its own");
    let per_job = 500;
    let jobs = series.div_ceil(per_job);
    let jobs = (0..jobs)
        .map(|j| {
            let n = per_job.min(series - j * per_job);
            let resources: Vec<Resource> = (0..n)
                .map(|r| Resource {
                    id: format!("lb-{j:04}{r:05}"),
                    name: format!("service-{r}"),
                    region: "cn-hangzhou".into(),
                    tags: [
                        ("CodeName".to_string(), format!("svc-{r}")),
                        ("env".to_string(), "prod".to_string()),
                    ]
                    .into(),
                    attributes: BTreeMap::new(),
                })
                .collect();
            let samples = (0..n)
                .map(|r| Sample {
                    family,
                    resource: r as u32,
                    extra: Box::new([]),
                    value: (r as f64) * 1.5,
                })
                .collect();
            JobResult {
                cloud: Cloud::Aliyun,
                account_id: format!("1{:015}", j % 8),
                region: format!("region-{}", j / 8),
                product: fam.product,
                success: true,
                duration: Duration::from_millis(120),
                resources: Arc::new(resources),
                samples,
                error: None,
                calls: 3,
                min_period_s: 60,
            }
        })
        .collect();
    Snapshot {
        jobs,
        duration: Duration::from_secs(1),
        smallest_period_s: 60,
    }
}

fn exposition(c: &mut Criterion) {
    let mappings = MappingSet::embedded().expect("embedded mappings");
    let metrics = SelfMetrics::new();
    let mut group = c.benchmark_group("exposition");
    for series in [1_000usize, 10_000] {
        let snap = snapshot(&mappings, series);
        group.throughput(Throughput::Elements(series as u64));
        group.bench_function(format!("render/{series}"), |b| {
            b.iter(|| render(black_box(&snap), &mappings, &metrics).map(|s| s.len()))
        });
    }
    group.finish();
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn signers(c: &mut Criterion) {
    let body = br#"{"Namespace":"QCE/LB_PUBLIC","MetricName":"ClientConnum","Period":60}"#;
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    let aliyun_headers = headers(&[
        ("host", "metrics.cn-hangzhou.aliyuncs.com"),
        ("x-acs-action", "DescribeMetricLast"),
        ("x-acs-date", "2026-12-07T00:00:00Z"),
        ("x-acs-version", "2019-01-01"),
    ]);
    let query = vec![
        ("Namespace".to_string(), "acs_slb_dashboard".to_string()),
        ("MetricName".to_string(), "ActiveConnection".to_string()),
        ("Length".to_string(), "1440".to_string()),
    ];
    group.bench_function("aliyun_acs3", |b| {
        b.iter(|| {
            aliyun::sign::v3_authorization(
                black_box(&aliyun::sign::V3Request {
                    method: "POST",
                    path: "/",
                    query: &query,
                    headers: &aliyun_headers,
                    payload_hash:
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                }),
                "AKID",
                "secret",
            )
        })
    });
    let tencent_headers = headers(&[
        ("content-type", "application/json; charset=utf-8"),
        ("host", "monitor.tencentcloudapi.com"),
        ("x-tc-action", "GetMonitorData"),
    ]);
    group.bench_function("tencent_tc3", |b| {
        b.iter(|| {
            tencent::sign::tc3_authorization(
                black_box(&tencent::sign::Tc3Request {
                    method: "POST",
                    canonical_query: "",
                    headers: &tencent_headers,
                    payload: body,
                    service: "monitor",
                    timestamp: 1_796_601_600,
                }),
                "AKID",
                "secret",
            )
        })
    });
    let aws_headers = headers(&[
        ("content-type", "application/x-amz-json-1.0"),
        ("host", "monitoring.us-east-1.amazonaws.com"),
        ("x-amz-date", "20261207T000000Z"),
        (
            "x-amz-target",
            "GraniteServiceVersion20100801.GetMetricData",
        ),
    ]);
    group.bench_function("aws_sigv4", |b| {
        b.iter(|| {
            aws::sign::authorization(
                black_box(&aws::sign::SigV4Request {
                    method: "POST",
                    path: "/",
                    query: &[],
                    headers: &aws_headers,
                    payload_hash:
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    region: "us-east-1",
                    service: "monitoring",
                    time: 1_796_601_600,
                }),
                "AKID",
                "secret",
            )
        })
    });
    let huawei_headers = headers(&[
        ("content-type", "application/json"),
        ("host", "ces.cn-north-4.myhuaweicloud.com"),
        ("x-sdk-date", "20261207T000000Z"),
    ]);
    group.bench_function("huawei_sdk_hmac_sha256", |b| {
        b.iter(|| {
            huawei::sign::authorization(
                black_box(&huawei::sign::SdkRequest {
                    method: "POST",
                    path: "/V1.0/project/batch-query-metric-data",
                    query: &[],
                    headers: &huawei_headers,
                    body,
                }),
                "20261207T000000Z",
                "AK",
                "SK",
            )
        })
    });
    group.finish();
}

criterion_group!(benches, exposition, signers);
criterion_main!(benches);
