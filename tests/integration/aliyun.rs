//! Aliyun end to end, and the cloud-independent behaviour (deadlines, single-flight, caches,
//! sharding, the golden file) exercised through the demo estate.

use super::*;

use multicloud_exporter::config::ShardBy;

#[tokio::test]
async fn demo_estate_exports_exact_values_for_all_six_products() {
    let h = harness().await;
    let snap = collect(&h).await;
    let t = text(&h, &snap);
    for j in &snap.jobs {
        assert!(
            j.success,
            "{} {} {}: {:?}",
            j.account_id, j.region, j.product, j.error
        );
    }
    let acct = ("account_id", "1234567890123456");
    // CLB: Average, no transform.
    let v = raw_value(
        "lb-bp1demo0001",
        "InstanceActiveConnection",
        "",
        T60,
        60,
        false,
    );
    assert_eq!(
        value(
            &t,
            "clb_active_connections",
            &[
                acct,
                ("resource_id", "lb-bp1demo0001"),
                ("code_name", "web"),
                ("region", "cn-hangzhou"),
                ("resource_type", "clb"),
                ("cloud_provider", "aliyun")
            ]
        ),
        Some(v)
    );
    // CLB traffic: bit/s -> bytes/s.
    let v = raw_value("lb-bp1demo0002", "InstanceTrafficRX", "", T60, 60, false) / 8.0;
    assert_eq!(
        value(
            &t,
            "clb_in_bytes_per_second",
            &[("resource_id", "lb-bp1demo0002")]
        ),
        Some(v)
    );
    // ALB: Value statistic, static labels.
    let v = raw_value(
        "alb-demo0001",
        "LoadBalancerHTTPCodeUpstream5XX",
        "",
        T60,
        60,
        false,
    );
    assert_eq!(
        value(
            &t,
            "alb_http_responses_per_second",
            &[
                ("resource_id", "alb-demo0001"),
                ("code_class", "5xx"),
                ("source", "backend")
            ]
        ),
        Some(v)
    );
    // NLB.
    let v = raw_value("nlb-demo0001", "InstanceNewConnection", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "nlb_new_connections_per_second",
            &[("resource_id", "nlb-demo0001")]
        ),
        Some(v)
    );
    // GWLB: only the availableZone="all" series.
    let v = raw_value("gwlb-demo0001", "ActiveConnection", "all", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "gwlb_active_connections",
            &[("resource_id", "gwlb-demo0001")]
        ),
        Some(v)
    );
    assert_eq!(
        t.lines()
            .filter(|l| l.starts_with("gwlb_active_connections{") && l.contains("aliyun"))
            .count(),
        1
    );
    // BWP: percent -> ratio.
    let v = raw_value(
        "cbwp-demo0001",
        "in_bandwidth_utilization",
        "",
        T60,
        60,
        true,
    ) / 100.0;
    assert_eq!(
        value(
            &t,
            "bwp_in_bandwidth_utilization_ratio",
            &[("resource_id", "cbwp-demo0001")]
        ),
        Some(v)
    );
    // OSS: per-period counts / 60, and hourly storage per class.
    let v = raw_value("demo-assets", "TotalRequestCount", "", T60, 60, false) / 60.0;
    assert_eq!(
        value(
            &t,
            "s3_requests_per_second",
            &[("resource_id", "demo-assets"), ("method", "all")]
        ),
        Some(v)
    );
    let v = raw_value(
        "demo-assets",
        "MeteringStorageUtilization",
        "IA",
        T3600,
        3600,
        false,
    );
    assert_eq!(
        value(
            &t,
            "s3_storage_bytes",
            &[
                ("resource_id", "demo-assets"),
                ("storage_class", "infrequent_access")
            ]
        ),
        Some(v)
    );
    // Tags: code_name and resource_info.
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                acct,
                ("cloud_provider", "aliyun"),
                ("code_name", "web"),
                ("name", "web-frontend"),
                ("region", "cn-hangzhou"),
                ("resource_id", "lb-bp1demo0001"),
                ("resource_type", "clb"),
                ("tag_code_name", "web"),
                ("tag_env", "prod"),
                ("tag_kubernetes_io_service_name", "default/web"),
                ("vip", ""),
            ]
        ),
        Some(1.0),
        "{t}"
    );
    // Bucket tags came through ListTagResources (system tags dropped).
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                ("resource_id", "demo-assets"),
                ("resource_type", "s3"),
                ("tag_code_name", "assets"),
                ("tag_env", "prod"),
            ]
        ),
        Some(1.0)
    );
    // The golden file holds every value of the demo estate.
    let golden_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/demo.prom");
    let got = stable(&t);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden_path, &got).unwrap();
    }
    let want = std::fs::read_to_string(golden_path).unwrap();
    if got != want {
        for (i, (a, b)) in got.lines().zip(want.lines()).enumerate() {
            if a != b {
                panic!("golden mismatch at line {}:\n got: {a}\nwant: {b}\n(rerun with UPDATE_GOLDEN=1 after checking the change)", i + 1);
            }
        }
        panic!(
            "golden mismatch: {} lines vs {} lines",
            got.lines().count(),
            want.lines().count()
        );
    }
}

#[tokio::test]
async fn warm_scrape_costs_exactly_the_minimum_calls() {
    let h = harness().await;
    collect(&h).await;
    h.sim.state.reset_calls();
    let snap = collect(&h).await;
    // Minimum per job with N ≤ 50 resources: one monitor call per source metric and namespace
    // (Tencent CLBs: public and private); for AWS one GetMetricData per region and period for
    // every product together (≤ 500 queries); nothing for products without resources; discovery
    // and metadata are cached.
    let mut expected = std::collections::BTreeMap::<Cloud, u64>::new();
    for j in &snap.jobs {
        if j.resources.is_empty() {
            continue;
        }
        let sources: usize =
            h.rt.mappings
                .families_for(j.product, j.cloud)
                .iter()
                .map(|f| f.sources[&j.cloud].len())
                .sum();
        let spec = &h.rt.mappings.products[&(j.product, j.cloud)];
        let namespaces: BTreeSet<String> = j
            .resources
            .iter()
            .filter_map(|r| spec.target(r))
            .map(|t| t.namespace)
            .collect();
        if j.cloud == Cloud::Aws {
            // Counted per region below: one call per period and window for all products.
            continue;
        }
        if j.cloud == Cloud::Huawei {
            // One CES call per (period, filter) of the job (≤ 500 metrics, ≤ 3000 points).
            let groups: BTreeSet<(u64, String)> =
                h.rt.mappings
                    .families_for(j.product, j.cloud)
                    .iter()
                    .flat_map(|f| {
                        f.sources[&j.cloud]
                            .iter()
                            .map(|s| (s.period.unwrap_or(60), s.statistic.clone()))
                    })
                    .collect();
            *expected.entry(j.cloud).or_default() += groups.len() as u64;
            continue;
        }
        *expected.entry(j.cloud).or_default() += (sources * namespaces.len()) as u64;
    }
    let mut aws_periods: BTreeSet<(String, u64)> = BTreeSet::new();
    for j in snap
        .jobs
        .iter()
        .filter(|j| j.cloud == Cloud::Aws && !j.resources.is_empty())
    {
        for f in h.rt.mappings.families_for(j.product, j.cloud) {
            for s in &f.sources[&j.cloud] {
                aws_periods.insert((j.region.clone(), s.period.unwrap_or(60)));
            }
        }
    }
    expected.insert(Cloud::Aws, aws_periods.len() as u64);
    let calls = h.sim.state.calls();
    assert_eq!(
        h.sim.state.total_calls(),
        expected.values().sum::<u64>(),
        "{calls:?}"
    );
    assert_eq!(
        h.sim.state.calls_to("cms.DescribeMetricLast"),
        expected[&Cloud::Aliyun]
    );
    // Tencent: 17 CLB metrics × 3 namespaces (public and private in ap-guangzhou, public in
    // ap-shanghai), 2 GWLB, 6 BWP, 18 COS × 2 regions.
    assert_eq!(expected[&Cloud::Tencent], 17 * 3 + 2 + 6 + 18 * 2);
    assert_eq!(
        h.sim.state.calls_to("monitor.GetMonitorData"),
        expected[&Cloud::Tencent]
    );
}

#[tokio::test]
async fn discovery_and_monitor_calls_page_through_a_large_region() {
    let estate = Estate::from_toml(
        r#"regions = ["cn-hangzhou"]
[[accounts]]
account_id = "100"
access_key_id = "LTAIbig"
access_key_secret = "big-secret"
[[accounts.generate]]
product = "clb"
region = "cn-hangzhou"
count = 1500
prefix = "lb-gen"
"#,
    )
    .unwrap();
    let h = harness_with(estate, |c| {
        c.accounts[0].products = vec![Product::Clb];
        c.server.metric_concurrency = 8;
    })
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "clb_active_connections"), 1500);
    let v = raw_value(
        "lb-gen-01499",
        "InstanceActiveConnection",
        "",
        T60,
        60,
        false,
    );
    assert_eq!(
        value(
            &t,
            "clb_active_connections",
            &[("resource_id", "lb-gen-01499")]
        ),
        Some(v)
    );
    // 1500 load balancers: 15 pages of 100; every metric: all instances in 2 pages of 1440.
    assert_eq!(h.sim.state.calls_to("slb.DescribeLoadBalancers"), 15);
    let sources: usize =
        h.rt.mappings
            .families_for(Product::Clb, multicloud_exporter::cloud::Cloud::Aliyun)
            .iter()
            .map(|f| f.sources[&multicloud_exporter::cloud::Cloud::Aliyun].len())
            .sum();
    assert_eq!(
        h.sim.state.calls_to("cms.DescribeMetricLast"),
        2 * sources as u64
    );
}

#[tokio::test]
async fn throttling_is_retried_and_recovers() {
    let h = harness_with(Estate::builtin(), |c| c.accounts.truncate(1)).await;
    h.sim.state.inject(Fault {
        api: Some("cms.DescribeMetricLast".into()),
        kind: FaultKind::Throttle,
        times: 3,
    });
    h.sim.state.inject(Fault {
        api: Some("slb.DescribeLoadBalancers".into()),
        kind: FaultKind::ServerError,
        times: 1,
    });
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    assert_eq!(
        value(
            &t,
            "multicloud_rate_limit_total",
            &[("api", "DescribeMetricLast")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_request_total",
            &[("api", "DescribeMetricLast"), ("status", "limit_error")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_request_total",
            &[("api", "DescribeLoadBalancers"), ("status", "server_error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_request_retries_total",
            &[("api", "DescribeMetricLast")]
        ),
        Some(3.0)
    );
    assert_eq!(series(&t, "clb_active_connections"), 3);
}

#[tokio::test]
async fn wrong_secret_is_an_auth_error_without_retries() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].access_key_secret = config::Secret::new("S3CR3T-zz9-wrong");
    })
    .await;
    let snap = collect(&h).await;
    let jobs = snap.jobs.len() as u64;
    assert_eq!(jobs, 12);
    assert!(snap.jobs.iter().all(|j| !j.success));
    assert!(snap
        .jobs
        .iter()
        .all(|j| j.error.as_ref().unwrap().class
            == multicloud_exporter::cloud::ErrorClass::AuthError));
    // One call per job (its discovery), none retried.
    assert_eq!(h.sim.state.total_calls(), jobs);
    let t = text(&h, &snap);
    assert!(!t.contains("S3CR3T"));
    for j in &snap.jobs {
        let e = j.error.as_ref().unwrap();
        assert!(!format!("{e} {e:?}").contains("S3CR3T"), "{e:?}");
        // The simulator answered with Aliyun's real error code.
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
    }
    assert!(!format!("{:?}", h.rt.config).contains("S3CR3T"));
    assert_eq!(series(&t, "multicloud_scrape_success"), 12);
    assert!(t.contains(r#"multicloud_scrape_success{account_id="1234567890123456",cloud_provider="aliyun",product="clb",region="cn-hangzhou"} 0"#));
}

#[tokio::test]
async fn a_passed_deadline_gives_partial_output_not_an_error() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].regions = vec!["cn-hangzhou".into()];
        c.accounts[0].products = vec![Product::Clb, Product::Bwp];
    })
    .await;
    h.sim.state.inject(Fault {
        api: Some("vpc.DescribeCommonBandwidthPackages".into()),
        kind: FaultKind::Hang,
        times: 10,
    });
    let addr = serve(h.rt.clone()).await;
    let (status, body) = get(addr, "/metrics", Some("4")).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"multicloud_scrape_success{account_id="1234567890123456",cloud_provider="aliyun",product="bwp",region="cn-hangzhou"} 0"#), "{body}");
    assert!(body.contains(r#"multicloud_scrape_success{account_id="1234567890123456",cloud_provider="aliyun",product="clb",region="cn-hangzhou"} 1"#), "{body}");
    assert_eq!(series(&body, "clb_active_connections"), 2);
    assert_eq!(series(&body, "bwp_in_bytes_per_second"), 0);
}

#[tokio::test]
async fn concurrent_scrapes_share_one_collection() {
    // What one scrape costs.
    let one = harness().await;
    collect(&one).await;
    let single = one.sim.state.total_calls();

    let h = harness().await;
    // Keep the collection in flight long enough for the second scrape to arrive during it.
    h.sim.state.inject(Fault {
        api: Some("slb.DescribeLoadBalancers".into()),
        kind: FaultKind::Latency(Duration::from_millis(500)),
        times: 1,
    });
    let addr = serve(h.rt.clone()).await;
    let (a, b) = tokio::join!(get(addr, "/metrics", None), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        get(addr, "/metrics", None).await
    });
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(h.sim.state.total_calls(), single);
    assert_eq!(stable(&a.1), stable(&b.1));
    let (_, third) = get(addr, "/metrics", None).await;
    // Within the result cache time (55 s for the 60 s period) a later scrape costs nothing.
    assert_eq!(h.sim.state.total_calls(), single);
    assert_eq!(
        value(&third, "multicloud_scrapes_total", &[("result", "cached")]),
        Some(1.0)
    );
    assert_eq!(
        value(&third, "multicloud_scrapes_total", &[("result", "joined")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &third,
            "multicloud_scrapes_total",
            &[("result", "collected")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_deleted_resource_disappears_after_the_discovery_ttl() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].products = vec![Product::Clb];
        c.server.discovery_ttl = Duration::from_secs(3);
        c.server.result_cache_ttl = Some(Duration::ZERO);
    })
    .await;
    let t = text(&h, &collect(&h).await);
    assert!(value(
        &t,
        "clb_active_connections",
        &[("resource_id", "lb-bp1demo0002")]
    )
    .is_some());
    assert!(h.sim.state.remove_resource("lb-bp1demo0002"));
    // Still cached.
    let t = text(&h, &collect(&h).await);
    assert!(t.contains("resource_id=\"lb-bp1demo0002\""));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let t = text(&h, &collect(&h).await);
    assert!(!t.contains("resource_id=\"lb-bp1demo0002\""), "{t}");
    assert_eq!(series(&t, "clb_active_connections"), 2);
}

#[tokio::test]
async fn health_readiness_and_landing_never_call_a_cloud() {
    let h = harness().await;
    let addr = serve(h.rt.clone()).await;
    assert_eq!(get(addr, "/healthz", None).await, (200, "ok\n".to_string()));
    assert_eq!(get(addr, "/-/ready", None).await.0, 200);
    assert!(get(addr, "/", None).await.1.contains("/metrics"));
    assert_eq!(get(addr, "/nope", None).await.0, 404);
    assert_eq!(h.sim.state.total_calls(), 0);
}

#[tokio::test]
async fn malformed_and_truncated_answers_fail_only_their_job() {
    let h = harness_with(Estate::builtin(), |c| c.accounts.truncate(1)).await;
    h.sim.state.inject(Fault {
        api: Some("alb.ListLoadBalancers".into()),
        kind: FaultKind::Malformed,
        times: 10,
    });
    h.sim.state.inject(Fault {
        api: Some("nlb.ListLoadBalancers".into()),
        kind: FaultKind::Truncated,
        times: 10,
    });
    h.sim.state.inject(Fault {
        api: Some("oss.ListBuckets".into()),
        kind: FaultKind::Truncated,
        times: 10,
    });
    let snap = collect(&h).await;
    for j in &snap.jobs {
        let broken = matches!(j.product, Product::Alb | Product::Nlb | Product::S3);
        assert_eq!(j.success, !broken, "{} {}", j.region, j.product);
        if broken {
            assert_eq!(
                j.error.as_ref().unwrap().class,
                multicloud_exporter::cloud::ErrorClass::BadResponse
            );
        }
    }
}

#[tokio::test]
async fn golden_exposition_passes_promtool() {
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/demo.prom");
    let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(golden).unwrap())
        .output()
    else {
        if std::env::var_os("CI").is_some() {
            panic!("promtool is required when CI is set (Debian package prometheus)");
        }
        eprintln!("skipped: promtool not installed (apt-get install prometheus)");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn all_regions_come_from_describe_regions() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].regions = vec!["*".into()];
        c.accounts[0].products = vec![Product::Clb];
    })
    .await;
    let snap = collect(&h).await;
    let regions: Vec<&str> = snap.jobs.iter().map(|j| j.region.as_str()).collect();
    assert_eq!(regions, vec!["cn-beijing", "cn-hangzhou", "cn-shanghai"]);
    assert!(snap.jobs.iter().all(|j| j.success));
    assert_eq!(h.sim.state.calls_to("slb.DescribeRegions"), 1);
    // Cached: a second collection does not list regions again.
    collect(&h).await;
    assert_eq!(h.sim.state.calls_to("slb.DescribeRegions"), 1);
}

#[tokio::test]
async fn static_shards_split_the_jobs_exactly_once() {
    for shard_by in [ShardBy::Product, ShardBy::Region] {
        let mut owned: Vec<(String, String, Product)> = Vec::new();
        let mut total_calls = 0;
        for index in 0..3 {
            let h = harness_with(Estate::builtin(), |c| {
                c.cluster.workers = 3;
                c.cluster.index = index;
                c.cluster.shard_by = shard_by;
            })
            .await;
            let snap = collect(&h).await;
            assert!(snap.jobs.iter().all(|j| j.success));
            owned.extend(
                snap.jobs
                    .iter()
                    .map(|j| (j.account_id.clone(), j.region.clone(), j.product)),
            );
            total_calls += monitor_calls(&h.sim, shard_by);
        }
        owned.sort();
        let before = owned.len();
        owned.dedup();
        assert_eq!(before, owned.len(), "a job owned twice");
        assert_eq!(owned.len(), 40, "every job owned once");
        // Together the shards make the monitor calls of one unsharded replica. (AWS batches a
        // region's products into one GetMetricData: product-level shards split that batch, so
        // it counts only when whole regions are sharded.)
        let whole = harness().await;
        collect(&whole).await;
        assert_eq!(
            total_calls,
            monitor_calls(&whole.sim, shard_by),
            "{shard_by:?}"
        );
    }
}

fn monitor_calls(sim: &Simulator, shard_by: ShardBy) -> u64 {
    let aws = if shard_by == ShardBy::Region {
        sim.state.calls_to("monitoring.GetMetricData")
    } else {
        0
    };
    sim.state.calls_to("cms.DescribeMetricLast")
        + sim.state.calls_to("monitor.GetMonitorData")
        + sim.state.calls_to("ces.BatchListMetricData")
        + aws
}

#[tokio::test]
async fn buckets_are_listed_once_per_account_for_all_regions() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].products = vec![Product::S3];
    })
    .await;
    let snap = collect(&h).await;
    assert_eq!(snap.jobs.len(), 2);
    assert!(snap
        .jobs
        .iter()
        .all(|j| j.success && j.resources.len() == 1));
    assert_eq!(h.sim.state.calls_to("oss.ListBuckets"), 1);
    // One ListTagResources per region with buckets.
    assert_eq!(h.sim.state.calls_to("tag.ListTagResources"), 2);
}

#[tokio::test]
async fn a_joiner_answers_by_its_own_deadline() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].regions = vec!["cn-hangzhou".into()];
        c.accounts[0].products = vec![Product::Clb];
    })
    .await;
    h.sim.state.inject(Fault {
        api: Some("slb.DescribeLoadBalancers".into()),
        kind: FaultKind::Latency(Duration::from_secs(3)),
        times: 1,
    });
    let addr = serve(h.rt.clone()).await;
    let (slow, quick) = tokio::join!(get(addr, "/metrics", Some("20")), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        get(addr, "/metrics", Some("1")).await
    });
    assert_eq!((slow.0, quick.0), (200, 200));
    // The collection finished after the joiner's deadline: the joiner got no cloud series,
    // the scraper that started it got them all.
    assert_eq!(series(&quick.1, "clb_active_connections"), 0);
    assert_eq!(series(&slow.1, "clb_active_connections"), 2);
}

/// Run the built binary with arguments, off the async runtime.
async fn run_binary(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_multicloud-exporter"))
            .args(&args)
            .env_remove("MULTICLOUD_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn write_temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("mce-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn check_config_lists_every_error_and_fails() {
    let bad = write_temp(
        "bad.toml",
        "[server]\nscrape_interval = \"soon\"\n[[accounts]]\ncloud = \"aliyun\"\naccount_id = \"1\"\naccess_key_id = \"a\"\naccess_key_secret = \"b\"\nregions = []\nproducts = [\"elb\"]\n",
    );
    let (code, _, err) = run_binary(vec!["check-config".into(), "--config.file".into(), bad]).await;
    assert_eq!(code, 1);
    assert!(err.contains("3 configuration errors"), "{err}");
    for path in [
        "server.scrape_interval:",
        "accounts[0].regions:",
        "accounts[0].products[0]:",
    ] {
        assert!(err.contains(path), "{path} missing in {err}");
    }
    let (code, out, _) = run_binary(vec![
        "check-config".into(),
        "--config.file".into(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml").into(),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("OK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_and_discover_run_against_the_simulator() {
    let state = Arc::new(SimState::new(
        Estate::builtin(),
        Clock::System,
        SimSettings::default(),
    ));
    let sim = Simulator::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), state).unwrap();
    let cfg = write_temp(
        "sim.toml",
        &format!(
            "[[accounts]]\ncloud = \"aliyun\"\naccount_id = \"1234567890123456\"\naccess_key_id = \"LTAI5tDEMOKEYID0001\"\naccess_key_secret = \"DemoSecretKey0001abcdefghijklmn\"\nregions = [\"cn-hangzhou\", \"cn-beijing\"]\nproducts = [\"clb\", \"s3\"]\nendpoint = \"{}\"\n",
            sim.url()
        ),
    );
    let (code, out, err) = run_binary(vec![
        "once".into(),
        "--config.file".into(),
        cfg.clone(),
        "--region".into(),
        "cn-hangzhou".into(),
        "--product".into(),
        "clb".into(),
        "--log.level".into(),
        "warn".into(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(series(&out, "multicloud_scrape_success"), 1);
    assert!(out.contains(r#"multicloud_scrape_success{account_id="1234567890123456",cloud_provider="aliyun",product="clb",region="cn-hangzhou"} 1"#), "{out}");
    assert_eq!(series(&out, "clb_active_connections"), 2);
    assert_eq!(series(&out, "s3_storage_bytes"), 0);

    let (code, out, err) = run_binary(vec![
        "discover".into(),
        "--config.file".into(),
        cfg,
        "--json".into(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: BTreeSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["resource_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            "demo-assets",
            "demo-logs",
            "lb-2zedemo0003",
            "lb-bp1demo0001",
            "lb-bp1demo0002"
        ])
    );
}

/// The README's metrics table, as the mappings define it.
fn metrics_table(set: &MappingSet) -> String {
    let clouds = [Cloud::Aliyun, Cloud::Tencent, Cloud::Aws];
    let mut out = String::from("| Family | Meaning | Aliyun source (statistic) | Tencent source (statistic) | AWS source (statistic) |\n|---|---|---|---|---|\n");
    for f in &set.families {
        let meaning = f.help.split(" Source: ").next().unwrap_or("");
        let cells: Vec<String> = clouds
            .iter()
            .map(|c| match f.sources.get(c) {
                None => "—".to_string(),
                Some(list) => list
                    .iter()
                    .map(|s| {
                        let labels: Vec<String> =
                            s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        let l = if labels.is_empty() {
                            String::new()
                        } else {
                            format!("{{{}}}", labels.join(","))
                        };
                        format!("{}{l} ({})", s.metric, s.statistic)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect();
        out.push_str(&format!(
            "| `{}` | {meaning} | {} |\n",
            f.name,
            cells.join(" | ")
        ));
    }
    out
}

#[test]
fn readme_documents_every_metric_family() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (start, end) = (
        "<!-- metrics-table:start -->\n",
        "<!-- metrics-table:end -->",
    );
    let a = readme
        .find(start)
        .expect("README lacks the metrics-table markers")
        + start.len();
    let b = readme.find(end).unwrap();
    let want = metrics_table(&MappingSet::embedded().unwrap());
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(path, format!("{}{want}{}", &readme[..a], &readme[b..])).unwrap();
    } else {
        assert_eq!(
            &readme[a..b],
            want,
            "README metrics table is stale: rerun with UPDATE_README=1"
        );
    }
    for m in [
        "multicloud_scrape_success",
        "multicloud_scrape_duration_seconds",
        "multicloud_discovered_resources",
        "multicloud_resource_info",
        "multicloud_request_total",
        "multicloud_request_retries_total",
        "multicloud_rate_limit_total",
        "multicloud_scrapes_total",
        "multicloud_cache_entries",
        "multicloud_build_info",
        "multicloud_batch_splits_total",
        "multicloud_mapping_unit_mismatch",
        "multicloud_shard_members",
        "multicloud_shard_owned_keys",
        "multicloud_shard_membership_changes_total",
        "multicloud_shard_membership_errors_total",
        "multicloud_shard_info",
        "multicloud_config_last_reload_successful",
        "multicloud_config_last_reload_success_timestamp_seconds",
        "multicloud_config_reloads_total",
        "multicloud_scrape_timeout_seconds",
    ] {
        assert!(readme.contains(m), "README lacks {m}");
    }
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_accepts_it() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].products = vec![Product::Bwp];
    })
    .await;
    let addr = serve(h.rt.clone()).await;
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let body = r.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    assert_eq!(series(&text, "bwp_in_bytes_per_second"), 2);
}

#[tokio::test]
async fn an_answer_over_the_size_cap_fails_as_bad_response() {
    let h = harness_with(Estate::builtin(), |c| {
        c.accounts.truncate(1);
        c.accounts[0].regions = vec!["cn-hangzhou".into()];
        c.accounts[0].products = vec![Product::Clb];
        c.server.max_response_bytes = 256;
    })
    .await;
    let snap = collect(&h).await;
    let e = snap.jobs[0].error.as_ref().unwrap();
    assert_eq!(e.class, multicloud_exporter::cloud::ErrorClass::BadResponse);
    assert!(e.message.contains("max_response_bytes (256)"), "{e}");
    // Not retried: one discovery call.
    assert_eq!(h.sim.state.total_calls(), 1);
}

/// The exposition of the demo estate with one throttled call (so the throttling counter has a
/// series): every family the exporter can export.
async fn every_family() -> String {
    let h = harness().await;
    h.sim.state.inject(Fault {
        api: Some("cms.DescribeMetricLast".into()),
        kind: FaultKind::Throttle,
        times: 1,
    });
    text(&h, &collect(&h).await)
}

/// The metric names a PromQL expression uses: identifiers outside `{…}` and the label lists
/// of `by`, `without`, `on`, `ignoring` and `group_*`, that are not functions (followed by `(`)
/// or aggregation operators, and hold an underscore (keywords and durations do not).
fn metric_names(expr: &str) -> Vec<String> {
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const OPERATORS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let next_non_space = |from: usize| (from..chars.len()).find(|&k| !chars[k].is_whitespace());
    let mut out = Vec::new();
    let (mut i, mut braces) = (0, 0);
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            braces += 1;
        } else if c == '}' {
            braces -= 1;
        } else if c == '"' {
            // A string (a label value, count_values' label): skipped whole.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
        } else if braces == 0 && (c.is_ascii_alphabetic() || c == '_') {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = next_non_space(i);
            let followed_by_paren = next.is_some_and(|k| chars[k] == '(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if let Some(k) = next.filter(|_| followed_by_paren) {
                    i = k;
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                }
                continue;
            }
            if !followed_by_paren && !OPERATORS.contains(&word.as_str()) && word.contains('_') {
                out.push(word);
            }
            continue;
        }
        i += 1;
    }
    out
}

fn assert_exported(what: &str, exposition: &str, names: &std::collections::BTreeSet<String>) {
    for name in names {
        let base = name.trim_end_matches("_bucket");
        assert!(
            exposition.contains(&format!("# TYPE {name} "))
                || exposition.contains(&format!("# TYPE {base} histogram")),
            "{what} uses {name}, which the exporter does not export"
        );
    }
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names("sum by (cloud_provider, api) (rate(multicloud_request_total{status!=\"ok\"}[5m])) > 0.8 * on (instance) group_left max(up_time_x)"),
        vec!["multicloud_request_total", "up_time_x"]
    );
    assert_eq!(
        metric_names(
            "count by (job) (count_values by (job) (\"members\", multicloud_shard_members)) > 1"
        ),
        vec!["multicloud_shard_members"]
    );
    assert_eq!(
        metric_names("histogram_quantile(0.9, sum by (le) (rate(multicloud_request_duration_seconds_bucket[5m])))"),
        vec!["multicloud_request_duration_seconds_bucket"]
    );
}

#[tokio::test]
async fn every_metric_the_alerts_and_dashboards_use_is_exported() {
    let t = every_family().await;
    let root = env!("CARGO_MANIFEST_DIR");
    let rules: serde_json::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(format!("{root}/packaging/alerts.yml")).unwrap(),
    )
    .unwrap();
    let mut names = std::collections::BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            names.extend(metric_names(rule["expr"].as_str().unwrap()));
        }
    }
    assert!(names.len() >= 8, "{names:?}");
    assert_exported("alerts.yml", &t, &names);
    let mut boards = 0;
    for entry in std::fs::read_dir(format!("{root}/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        boards += 1;
        let board: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut names = std::collections::BTreeSet::new();
        for panel in board["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                names.extend(metric_names(target["expr"].as_str().unwrap()));
            }
        }
        assert!(!names.is_empty(), "{}", path.display());
        assert_exported(&path.display().to_string(), &t, &names);
    }
    assert_eq!(boards, 4);
}
