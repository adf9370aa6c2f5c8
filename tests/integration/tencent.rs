//! Tencent end to end: exact values and labels for every product with the unit conversions,
//! public and private load balancers, COS through ap-guangzhou, paging, batch splitting after a
//! too-large rejection, throttling recovery, AuthFailure, and the calls a scrape costs.

use super::*;

use multicloud_exporter::cloud::Provider;

/// Newest complete 300 s point at NOW (00:05:00) and newest complete day (2024-12-31).
const T300: i64 = 1_735_689_900;
const TDAY: i64 = 1_735_603_200;

const UIN: (&str, &str) = ("account_id", "100012345678");

/// Client metrics of a Tencent load balancer mapping (one GetMonitorData per metric).
const CLB_METRICS: u64 = 17;

fn tencent_only(c: &mut Config) {
    c.accounts.retain(|a| a.cloud == Cloud::Tencent);
}

/// An estate of one Tencent account with `n` generated public load balancers.
fn many_clbs(n: usize) -> Estate {
    Estate::from_toml(&format!(
        r#"regions = []
tencent_regions = ["ap-guangzhou"]
[[accounts]]
cloud = "tencent"
account_id = "100099990000"
access_key_id = "AKIDBIGESTATE000000000000000000001"
access_key_secret = "big-estate-secret"
[[accounts.generate]]
product = "clb"
region = "ap-guangzhou"
count = {n}
prefix = "lb-gen"
"#
    ))
    .unwrap()
}

#[tokio::test]
async fn tencent_products_export_exact_values_in_base_units() {
    let h = harness_with(Estate::builtin(), tencent_only).await;
    let snap = collect(&h).await;
    assert_eq!(snap.jobs.len(), 8);
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    // Public CLB, named by its VIP in QCE/LB_PUBLIC; resource_id is the load balancer's ID.
    let v = raw_value("lb-gzdemo01", "ClientConnum", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "clb_active_connections",
            &[
                UIN,
                ("cloud_provider", "tencent"),
                ("region", "ap-guangzhou"),
                ("resource_type", "clb"),
                ("resource_id", "lb-gzdemo01"),
                ("code_name", "web"),
            ]
        ),
        Some(v)
    );
    // Mbps -> bytes per second (x125000).
    let mbps = raw_value("lb-gzdemo01", "ClientIntraffic", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "clb_in_bytes_per_second",
            &[("resource_id", "lb-gzdemo01")]
        ),
        Some(mbps * 125_000.0)
    );
    // Two private CLBs share VIP 10.0.0.10 in different VPCs: QCE/LB_PRIVATE by vip + vpcId
    // keeps them apart.
    for id in ["lb-gzdemo02", "lb-gzdemo03"] {
        let v = raw_value(id, "ClientNewConn", "", T60, 60, false);
        assert_eq!(
            value(&t, "clb_new_connections_per_second", &[("resource_id", id)]),
            Some(v),
            "{id}"
        );
    }
    // Percent -> ratio.
    let pct = raw_value("lb-gzdemo02", "IntrafficVipRatio", "", T60, 60, true);
    assert_eq!(
        value(
            &t,
            "clb_in_bandwidth_utilization_ratio",
            &[("resource_id", "lb-gzdemo02")]
        ),
        Some(pct / 100.0)
    );
    assert_eq!(series(&t, "clb_active_connections"), 4);
    // The VIP is a label of the resource, not its ID.
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                ("resource_id", "lb-gzdemo03"),
                ("vip", "10.0.0.10"),
                ("vpc_id", "vpc-gzbilling"),
                ("load_balancer_type", "INTERNAL"),
                ("name", "billing-internal"),
                ("tag_code_name", "billing"),
            ]
        ),
        Some(1.0)
    );
    // GWLB: bytes per 60 s period -> bytes per second.
    let bytes = raw_value("gwlb-gzdemo01", "InTraffic", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "gwlb_in_bytes_per_second",
            &[("resource_id", "gwlb-gzdemo01")]
        ),
        Some(bytes / 60.0)
    );
    // BWP: Mbps and percent; tags from Tag GetResources.
    let mbps = raw_value("bwp-gzdemo01", "OutTraffic", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "bwp_out_bytes_per_second",
            &[("resource_id", "bwp-gzdemo01"), ("code_name", "egress")]
        ),
        Some(mbps * 125_000.0)
    );
    let pct = raw_value("bwp-gzdemo01", "IntrafficBwpRatio", "", T60, 60, true);
    assert_eq!(
        value(
            &t,
            "bwp_in_bandwidth_utilization_ratio",
            &[("resource_id", "bwp-gzdemo01")]
        ),
        Some(pct / 100.0)
    );
    // COS storage: daily, MB -> bytes (x1048576).
    let mb = raw_value(
        "demo-assets-1250000000",
        "StdStorage",
        "",
        TDAY,
        86400,
        false,
    );
    assert_eq!(
        value(
            &t,
            "s3_storage_bytes",
            &[
                ("resource_id", "demo-assets-1250000000"),
                ("storage_class", "standard"),
                ("code_name", "assets"),
            ]
        ),
        Some(mb * 1_048_576.0)
    );
    // COS requests: sums per 300 s (the period where the cloud computes a sum) / 300.
    let n = raw_value(
        "demo-assets-1250000000",
        "TotalRequests",
        "",
        T300,
        300,
        false,
    );
    assert_eq!(
        value(
            &t,
            "s3_requests_per_second",
            &[("resource_id", "demo-assets-1250000000"), ("method", "all")]
        ),
        Some(n / 300.0)
    );
    // A bucket in ap-shanghai: its metrics come from the ap-guangzhou monitor.
    let n = raw_value("demo-logs-1250000000", "5xxResponse", "", T300, 300, false);
    assert_eq!(
        value(
            &t,
            "s3_http_responses_per_second",
            &[
                ("resource_id", "demo-logs-1250000000"),
                ("region", "ap-shanghai"),
                ("code_class", "5xx"),
            ]
        ),
        Some(n / 300.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                ("resource_id", "demo-logs-1250000000"),
                ("appid", "1250000000")
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn tencent_warm_scrape_costs_one_call_per_metric_and_namespace() {
    let h = harness_with(Estate::builtin(), tencent_only).await;
    collect(&h).await;
    h.sim.state.reset_calls();
    collect(&h).await;
    // Discovery and metadata are cached; every monitor call carries all instances of a
    // namespace (≤ 50): 17 CLB metrics × 3 namespaces (public and private in ap-guangzhou,
    // public in ap-shanghai), 2 GWLB, 6 BWP, 18 COS × 2 bucket regions.
    let calls = h.sim.state.calls();
    assert_eq!(
        calls.get("monitor.GetMonitorData"),
        Some(&(CLB_METRICS * 3 + 2 + 6 + 18 * 2)),
        "{calls:?}"
    );
    assert_eq!(h.sim.state.total_calls(), CLB_METRICS * 3 + 2 + 6 + 18 * 2);
}

#[tokio::test]
async fn tencent_discovery_pages_and_monitor_calls_batch_fifty_instances() {
    let h = harness_with(many_clbs(250), |_| {}).await;
    let snap = collect(&h).await;
    assert!(snap.jobs.iter().all(|j| j.success), "{:?}", snap.jobs);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "clb_active_connections"), 250);
    let v = raw_value("lb-gen-00249", "ClientConcurConn", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "clb_concurrent_connections",
            &[("resource_id", "lb-gen-00249")]
        ),
        Some(v)
    );
    // 250 load balancers: Offset/Limit pages of 100; 50 instances per GetMonitorData.
    assert_eq!(h.sim.state.calls_to("clb.DescribeLoadBalancers"), 3);
    assert_eq!(
        h.sim.state.calls_to("monitor.GetMonitorData"),
        CLB_METRICS * 5
    );
    assert_eq!(h.sim.state.calls_to("monitor.DescribeBaseMetrics"), 1);
}

#[tokio::test]
async fn a_batch_rejected_as_too_large_is_split_and_the_working_size_remembered() {
    // This cloud accepts 10 instances per call (the older documented limit), not 50.
    let settings = SimSettings {
        tencent_max_instances: 10,
        ..SimSettings::default()
    };
    let h = harness_full(
        many_clbs(30),
        settings,
        MappingSet::embedded().unwrap(),
        |_| {},
    )
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs.iter().all(|j| j.success), "{:?}", snap.jobs);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "clb_active_connections"), 30);
    let v = raw_value("lb-gen-00017", "ClientOutpkg", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "clb_out_packets_per_second",
            &[("resource_id", "lb-gen-00017")]
        ),
        Some(v)
    );
    let splits = value(
        &t,
        "multicloud_batch_splits_total",
        &[("cloud_provider", "tencent")],
    );
    assert!(splits.is_some_and(|n| n >= 1.0), "{splits:?}");
    let Provider::Tencent(p) = &*h.rt.providers[0] else {
        panic!("not a Tencent provider")
    };
    assert_eq!(p.batch_limit.size(), 10);
    // The next scrape costs exactly what a 10-instance limit allows: 3 calls per metric.
    h.sim.state.reset_calls();
    let snap = collect(&h).await;
    assert!(snap.jobs.iter().all(|j| j.success));
    assert_eq!(
        h.sim.state.calls_to("monitor.GetMonitorData"),
        CLB_METRICS * 3
    );
    assert_eq!(
        value(
            &text(&h, &snap),
            "multicloud_batch_splits_total",
            &[("cloud_provider", "tencent")]
        ),
        splits
    );
}

#[tokio::test]
async fn tencent_throttling_is_retried_and_recovers() {
    let h = harness_with(Estate::builtin(), tencent_only).await;
    h.sim.state.inject(Fault {
        api: Some("monitor.GetMonitorData".into()),
        kind: FaultKind::Throttle,
        times: 2,
    });
    h.sim.state.inject(Fault {
        api: Some("clb.DescribeLoadBalancers".into()),
        kind: FaultKind::ServerError,
        times: 1,
    });
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    let tc = ("cloud_provider", "tencent");
    assert_eq!(
        value(
            &t,
            "multicloud_rate_limit_total",
            &[tc, ("api", "GetMonitorData")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_request_retries_total",
            &[tc, ("api", "GetMonitorData")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_request_total",
            &[
                tc,
                ("api", "DescribeLoadBalancers"),
                ("status", "server_error")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(series(&t, "clb_active_connections"), 4);
}

#[tokio::test]
async fn tencent_auth_failure_fails_the_jobs_without_retries_or_leaks() {
    let h = harness_with(Estate::builtin(), |c| {
        tencent_only(c);
        c.accounts[0].access_key_secret = config::Secret::new("WrongTencentSecretKey0000000000");
    })
    .await;
    let snap = collect(&h).await;
    assert_eq!(snap.jobs.len(), 8);
    for j in &snap.jobs {
        assert!(!j.success);
        let e = j.error.as_ref().unwrap();
        assert_eq!(
            e.class,
            multicloud_exporter::cloud::ErrorClass::AuthError,
            "{e}"
        );
        let want = if j.product == Product::S3 {
            "SignatureDoesNotMatch"
        } else {
            "AuthFailure.SignatureFailure"
        };
        assert_eq!(e.code.as_deref(), Some(want));
    }
    // One call per job and region, never repeated.
    for api in [
        "clb.DescribeLoadBalancers",
        "gwlb.DescribeGatewayLoadBalancers",
        "vpc.DescribeBandwidthPackages",
    ] {
        assert_eq!(h.sim.state.calls_to(api), 2, "{api}");
    }
    assert_eq!(h.sim.state.calls_to("monitor.GetMonitorData"), 0);
    let t = text(&h, &snap);
    assert_eq!(
        value(
            &t,
            "multicloud_scrape_success",
            &[UIN, ("product", "clb"), ("region", "ap-guangzhou")]
        ),
        Some(0.0)
    );
    assert!(!t.contains("WrongTencentSecretKey"));
    assert!(!t.contains("DemoTencentSecretKey"));
}

#[tokio::test]
async fn a_unit_the_metadata_contradicts_is_reported() {
    // A mapping that believes ClientIntraffic is in MB while the cloud says Mbps.
    let files: Vec<(String, String)> = multicloud_exporter::mapping::EMBEDDED
        .iter()
        .map(|(n, t)| {
            let t = t.replace(
                "metric = \"ClientIntraffic\"\nstatistic = \"max\"\nhelp_note = \"peak of the six 10-second values\"\nscale = 125000\nsource_unit = \"Mbps\"",
                "metric = \"ClientIntraffic\"\nstatistic = \"max\"\nhelp_note = \"peak of the six 10-second values\"\nscale = 125000\nsource_unit = \"MB\"",
            );
            (n.to_string(), t)
        })
        .collect();
    let mappings = MappingSet::from_files(&files).unwrap();
    let h = harness_full(
        Estate::builtin(),
        SimSettings::default(),
        mappings,
        tencent_only,
    )
    .await;
    let snap = collect(&h).await;
    let t = text(&h, &snap);
    assert_eq!(
        value(
            &t,
            "multicloud_mapping_unit_mismatch",
            &[
                ("metric", "ClientIntraffic"),
                ("namespace", "QCE/LB_PUBLIC"),
                ("mapping_unit", "MB"),
                ("cloud_unit", "Mbps"),
            ]
        ),
        Some(1.0)
    );
    assert_eq!(series(&t, "multicloud_mapping_unit_mismatch"), 2);
}

#[tokio::test]
async fn tencent_all_regions_come_from_cvm_describe_regions() {
    let h = harness_with(Estate::builtin(), |c| {
        tencent_only(c);
        c.accounts[0].regions = vec!["*".into()];
        c.accounts[0].products = vec![Product::Clb];
    })
    .await;
    let snap = collect(&h).await;
    let regions: Vec<&str> = snap.jobs.iter().map(|j| j.region.as_str()).collect();
    assert_eq!(regions, vec!["ap-beijing", "ap-guangzhou", "ap-shanghai"]);
    assert!(snap.jobs.iter().all(|j| j.success));
    assert_eq!(h.sim.state.calls_to("cvm.DescribeRegions"), 1);
    let resources: Vec<usize> = snap.jobs.iter().map(|j| j.resources.len()).collect();
    assert_eq!(resources, vec![0, 3, 1]);
    collect(&h).await;
    assert_eq!(h.sim.state.calls_to("cvm.DescribeRegions"), 1);
}

#[tokio::test]
async fn a_failing_tag_api_keeps_the_resources_without_tags() {
    let h = harness_with(Estate::builtin(), |c| {
        tencent_only(c);
        c.accounts[0].products = vec![Product::Bwp];
        c.accounts[0].regions = vec!["ap-guangzhou".into()];
    })
    .await;
    h.sim.state.inject(Fault {
        api: Some("tag.GetResources".into()),
        kind: FaultKind::AuthFailure,
        times: 1,
    });
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    let t = text(&h, &snap);
    // Metrics still flow; only code_name is empty.
    let mbps = raw_value("bwp-gzdemo01", "InTraffic", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "bwp_in_bytes_per_second",
            &[("resource_id", "bwp-gzdemo01"), ("code_name", "")]
        ),
        Some(mbps * 125_000.0)
    );
}

#[tokio::test]
async fn a_mapped_metric_the_cloud_does_not_list_is_not_queried() {
    // The spelling trap of catalogue §5.6: `Inpkg` for `InPkg`.
    let files: Vec<(String, String)> = multicloud_exporter::mapping::EMBEDDED
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                t.replace("metric = \"InPkg\"", "metric = \"Inpkg\""),
            )
        })
        .collect();
    let mappings = MappingSet::from_files(&files).unwrap();
    let h = harness_full(Estate::builtin(), SimSettings::default(), mappings, |c| {
        tencent_only(c);
        c.accounts[0].products = vec![Product::Bwp];
        c.accounts[0].regions = vec!["ap-guangzhou".into()];
    })
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    // Six BWP metrics mapped, five queried.
    assert_eq!(h.sim.state.calls_to("monitor.GetMonitorData"), 5);
    assert_eq!(series(&text(&h, &snap), "bwp_in_packets_per_second"), 0);
}
