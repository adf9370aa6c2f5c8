//! Micro-benchmarks of what a scrape does per series or per call, with throughput: reading each
//! cloud's monitor answer (series/s), writing the exposition (series/s) and signing a monitor
//! call on each cloud (calls/s). The estate benchmark measures the whole scrape; these say which
//! part a change moved.
//!
//! `cargo bench --bench hot_paths` (criterion; `-- --quick` for a short run).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use multicloud_exporter::cloud::http::CallSite;
use multicloud_exporter::cloud::wire::newest_complete;
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
                    extra: Arc::new([]),
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

/// The site of a monitor call, for the parsers' errors.
fn site(cloud: Cloud, api: &'static str) -> CallSite<'static> {
    CallSite {
        cloud,
        api,
        region: "r",
    }
}

/// Reading a full answer of each cloud's monitor API (the largest one call returns, in the
/// documented shape, three points per series) into the newest point of each series.
fn parsing(c: &mut Criterion) {
    const NOW_MS: i64 = 1_796_601_780_000;
    let t0 = 1_796_601_600i64;
    let mut group = c.benchmark_group("parse");

    // Aliyun DescribeMetricLast: a page of 1440 rows, the rows a JSON array in a string.
    let rows: Vec<serde_json::Value> = (0..1440)
        .map(|i| {
            serde_json::json!({
                "timestamp": (t0 + 60 * (i % 3)) * 1000, "userId": "1234567890123456",
                "instanceId": format!("lb-bp1{i:08}"), "Average": i as f64 * 0.5,
                "Minimum": 0, "Maximum": i,
            })
        })
        .collect();
    let aliyun_body = serde_json::json!({
        "RequestId": "r1", "Code": "200", "Success": true, "Period": "60", "NextToken": "t2",
        "Datapoints": serde_json::Value::Array(rows).to_string(),
    })
    .to_string();
    group.throughput(Throughput::Elements(1440));
    group.bench_function("aliyun_describe_metric_last/1440_rows", |b| {
        b.iter(|| {
            let answer: aliyun::cms::MetricLastAnswer = aliyun::parse_rpc_response_as(
                site(Cloud::Aliyun, "DescribeMetricLast"),
                200,
                black_box(aliyun_body.as_bytes()),
            )
            .expect("answer");
            let text = answer.datapoints.unwrap_or_default().0;
            let mut sum = 0.0;
            aliyun::cms::read_rows(&text, &["instanceId", "timestamp", "Average"], |row| {
                if let Some(aliyun::cms::Cell::Float(v)) = &row[2] {
                    sum += v;
                }
            })
            .expect("rows");
            sum
        })
    });

    // Tencent GetMonitorData: 50 instances (the most a call takes).
    let points: Vec<serde_json::Value> = (0..50)
        .map(|i| {
            serde_json::json!({
                "Dimensions": [{"Name": "vip", "Value": format!("10.0.{}.{}", i / 250, i % 250)}],
                "Timestamps": [t0, t0 + 60, t0 + 120], "Values": [1.5, i, null],
            })
        })
        .collect();
    let tencent_body = serde_json::json!({"Response": {
        "RequestId": "r1", "Period": 60, "MetricName": "ClientConnum",
        "StartTime": "2026-12-07T08:00:00+08:00", "EndTime": "2026-12-07T08:02:00+08:00",
        "DataPoints": points,
    }})
    .to_string();
    group.throughput(Throughput::Elements(50));
    group.bench_function("tencent_get_monitor_data/50_instances", |b| {
        b.iter(|| {
            let answer: tencent::monitor::MonitorData = tencent::parse_response_as(
                site(Cloud::Tencent, "GetMonitorData"),
                200,
                black_box(tencent_body.as_bytes()),
            )
            .expect("answer");
            answer
                .data_points
                .iter()
                .filter_map(|dp| dp.newest_complete(60_000, NOW_MS))
                .count()
        })
    });

    // AWS GetMetricData: 500 queries (the most a call takes).
    let results: Vec<serde_json::Value> = (0..500)
        .map(|i| {
            serde_json::json!({
                "Id": format!("m{i}"), "Label": "ActiveConnectionCount", "StatusCode": "Complete",
                "Timestamps": [t0 + 120, t0 + 60, t0], "Values": [i, 2.0, 1.0],
            })
        })
        .collect();
    let aws_body = serde_json::json!({"MetricDataResults": results, "Messages": []}).to_string();
    group.throughput(Throughput::Elements(500));
    group.bench_function("aws_get_metric_data/500_queries", |b| {
        b.iter(|| {
            let answer: aws::cloudwatch::MetricDataAnswer = aws::parse_json_answer(
                site(Cloud::Aws, "GetMetricData"),
                200,
                black_box(aws_body.as_bytes()),
            )
            .expect("answer");
            answer
                .metric_data_results
                .iter()
                .filter_map(|r| newest_complete(r.points(), 60_000, NOW_MS))
                .count()
        })
    });

    // Huawei batch-query-metric-data: 500 metrics (the most a call takes).
    let metrics: Vec<serde_json::Value> = (0..500)
        .map(|i| {
            serde_json::json!({
                "namespace": "SYS.ELB", "metric_name": "m1_cps", "unit": "count",
                "dimensions": [{"name": "lbaas_instance_id", "value": format!("elb-{i:08}")}],
                "datapoints": [
                    {"timestamp": t0 * 1000, "average": 1.0},
                    {"timestamp": (t0 + 60) * 1000, "average": i},
                    {"timestamp": (t0 + 120) * 1000, "average": 3.5},
                ],
            })
        })
        .collect();
    let huawei_body = serde_json::json!({ "metrics": metrics }).to_string();
    group.throughput(Throughput::Elements(500));
    group.bench_function("huawei_batch_query_metric_data/500_metrics", |b| {
        b.iter(|| {
            let answer: huawei::ces::BatchAnswer = huawei::parse_answer_as(
                site(Cloud::Huawei, "BatchListMetricData"),
                200,
                black_box(huawei_body.as_bytes()),
            )
            .expect("answer");
            answer
                .metrics
                .iter()
                .filter_map(|m| newest_complete(m.points("average"), 60_000, NOW_MS))
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, parsing, exposition, signers);
criterion_main!(benches);
