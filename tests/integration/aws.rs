//! AWS against the simulator: exact values and labels for every product, GetMetricData batching
//! (500 queries a call across metrics and resources), Marker paging, throttling recovery,
//! a wrong secret, and AssumeRole.

use super::*;

use multicloud_exporter::sim::aws::elbv2_dimension_of;

const ACCOUNT: &str = "123456789012";
/// Newest complete day at NOW.
const TDAY: i64 = 1_735_603_200;

/// The built-in estate's AWS account alone.
fn estate() -> Estate {
    let mut e = Estate::builtin();
    e.accounts.retain(|a| a.cloud == Cloud::Aws);
    e
}

#[tokio::test]
async fn aws_products_export_exact_values_and_labels() {
    let h = harness_with(estate(), |_| {}).await;
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    // ALB RequestCount: Sum per 60 s divided by 60 = the raw value.
    let arn = format!(
        "arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/{}",
        elbv2_dimension_of("alb", "shop-alb")
    );
    let v = raw_value("shop-alb", "RequestCount", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "alb_requests_per_second",
            &[
                ("cloud_provider", "aws"),
                ("account_id", ACCOUNT),
                ("region", "us-east-1"),
                ("resource_type", "alb"),
                ("resource_id", arn.as_str()),
                ("code_name", "shop"),
            ]
        ),
        Some(v)
    );
    // code_name falls back to kubernetes.io/service-name, then Name.
    let v = raw_value("mqtt-nlb", "ActiveFlowCount", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "nlb_concurrent_connections",
            &[("code_name", "iot/mqtt")]
        ),
        Some(v)
    );
    let v = raw_value("legacy-web", "Latency", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "clb_upstream_response_time_seconds",
            &[("resource_id", "legacy-web"), ("code_name", "legacy")]
        ),
        Some(v)
    );
    // S3 daily storage per class, in the bucket's own region.
    let v = raw_value(
        "demo-aws-logs",
        "BucketSizeBytes",
        "StandardStorage",
        TDAY,
        86400,
        false,
    );
    assert_eq!(
        value(
            &t,
            "s3_storage_bytes",
            &[
                ("resource_id", "demo-aws-logs"),
                ("region", "eu-west-1"),
                ("storage_class", "standard"),
            ]
        ),
        Some(v)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                ("resource_id", "demo-aws-assets"),
                ("tag_code_name", "assets")
            ]
        ),
        Some(1.0)
    );
}

/// One AWS account with `n` generated ALBs in us-east-1.
fn many_albs(n: usize) -> Estate {
    Estate::from_toml(&format!(
        r#"regions = []
aws_regions = ["us-east-1"]
[[accounts]]
cloud = "aws"
account_id = "210987654321"
access_key_id = "AKIASIMBIG0000000001"
access_key_secret = "big-aws-secret"
[[accounts.generate]]
product = "alb"
region = "us-east-1"
count = {n}
prefix = "alb-gen"
"#
    ))
    .unwrap()
}

fn alb_sources(h: &Harness) -> usize {
    h.rt.mappings
        .families_for(Product::Alb, Cloud::Aws)
        .iter()
        .map(|f| f.sources[&Cloud::Aws].len())
        .sum()
}

#[tokio::test]
async fn get_metric_data_batches_500_queries_across_metrics_and_resources() {
    let h = harness_with(many_albs(450), |c| {
        c.accounts[0].products = vec![Product::Alb]
    })
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "alb_requests_per_second"), 450);
    let v = raw_value("alb-gen-00449", "NewConnectionCount", "", T60, 60, false);
    let dim = elbv2_dimension_of("alb", "alb-gen-00449");
    let arn = format!("arn:aws:elasticloadbalancing:us-east-1:210987654321:loadbalancer/{dim}");
    assert_eq!(
        value(
            &t,
            "alb_new_connections_per_second",
            &[("resource_id", arn.as_str())]
        ),
        Some(v)
    );
    // Discovery: 400 a page (2 pages); tags from the Tagging API, 100 a page (5 calls), none
    // from DescribeTags.
    assert_eq!(
        h.sim
            .state
            .calls_to("elasticloadbalancing.DescribeLoadBalancers"),
        2
    );
    assert_eq!(h.sim.state.calls_to("tagging.GetResources"), 5);
    assert_eq!(h.sim.state.calls_to("elasticloadbalancing.DescribeTags"), 0);
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[("resource_id", arn.as_str()), ("code_name", "alb-gen")]
        ),
        Some(1.0)
    );
    // Monitor: every (metric, load balancer) pair of one period and window, 500 a call.
    let queries = alb_sources(&h) * 450;
    assert_eq!(
        h.sim.state.calls_to("monitoring.GetMetricData"),
        queries.div_ceil(500) as u64
    );
}

#[tokio::test]
async fn a_denied_tagging_api_falls_back_to_describe_tags() {
    let h = harness_with(many_albs(45), |c| {
        c.accounts[0].products = vec![Product::Alb]
    })
    .await;
    h.sim.state.inject(Fault {
        api: Some("tagging.GetResources".into()),
        kind: FaultKind::AuthFailure,
        times: 1,
    });
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    let t = text(&h, &snap);
    // One denied listing, then 20 ARNs a DescribeTags call: 3 calls, and every tag arrives.
    assert_eq!(h.sim.state.calls_to("tagging.GetResources"), 1);
    assert_eq!(h.sim.state.calls_to("elasticloadbalancing.DescribeTags"), 3);
    let dim = elbv2_dimension_of("alb", "alb-gen-00044");
    let arn = format!("arn:aws:elasticloadbalancing:us-east-1:210987654321:loadbalancer/{dim}");
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[("resource_id", arn.as_str()), ("code_name", "alb-gen")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn aws_throttling_is_retried_and_recovers() {
    let h = harness_with(estate(), |_| {}).await;
    h.sim.state.inject(Fault {
        api: Some("monitoring.GetMetricData".into()),
        kind: FaultKind::Throttle,
        times: 2,
    });
    h.sim.state.inject(Fault {
        api: Some("elasticloadbalancing.DescribeLoadBalancers".into()),
        kind: FaultKind::ServerError,
        times: 1,
    });
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    let aws = ("cloud_provider", "aws");
    assert_eq!(
        value(
            &t,
            "multicloud_rate_limit_total",
            &[aws, ("api", "GetMetricData")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_request_retries_total",
            &[aws, ("api", "GetMetricData")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_wrong_aws_secret_is_an_auth_error_without_retries() {
    let h = harness_with(estate(), |c| {
        c.accounts[0].access_key_secret = config::Secret::new("WrongAwsSecret");
    })
    .await;
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(!j.success);
        let e = j.error.as_ref().unwrap();
        assert_eq!(
            e.class,
            multicloud_exporter::cloud::ErrorClass::AuthError,
            "{e}"
        );
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
    }
    assert_eq!(h.sim.state.calls_to("monitoring.GetMetricData"), 0);
    let t = text(&h, &snap);
    assert!(!t.contains("WrongAwsSecret"));
    assert_eq!(
        value(
            &t,
            "multicloud_request_retries_total",
            &[("cloud_provider", "aws")]
        ),
        None
    );
}

#[tokio::test]
async fn assume_role_keys_are_used_and_cached() {
    let h = harness_with(estate(), |c| {
        c.accounts[0].role_arn = Some(format!("arn:aws:iam::{ACCOUNT}:role/exporter"));
        c.accounts[0].external_id = Some("ext-42".into());
    })
    .await;
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    collect(&h).await;
    // One AssumeRole serves every call of both scrapes (the keys live an hour).
    assert_eq!(h.sim.state.calls_to("sts.AssumeRole"), 1);
    let v = raw_value("shop-alb", "RequestCount", "", T60, 60, false);
    assert_eq!(
        value(
            &text(&h, &snap),
            "alb_requests_per_second",
            &[("code_name", "shop")]
        ),
        Some(v)
    );
}

#[tokio::test]
async fn a_region_costs_one_get_metric_data_per_period_for_all_products() {
    let h = harness_with(estate(), |_| {}).await;
    collect(&h).await;
    h.sim.state.reset_calls();
    let snap = collect(&h).await;
    assert!(snap.jobs.iter().all(|j| j.success));
    // us-east-1: alb, nlb, gwlb, clb and the S3 request metrics share the 60 s call; S3
    // storage is daily: 2 calls. eu-west-1 has one bucket: the same 2. Discovery is cached.
    assert_eq!(h.sim.state.calls_to("monitoring.GetMetricData"), 4);
    assert_eq!(h.sim.state.total_calls(), 4);
    // Every product still reports its own values and success.
    let t = text(&h, &snap);
    let sum = raw_value("fw-gwlb", "ProcessedBytes", "", T60, 60, false) * 60.0;
    assert_eq!(
        value(
            &t,
            "gwlb_processed_bytes_per_second",
            &[("cloud_provider", "aws")]
        ),
        Some(sum / 60.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_scrape_success",
            &[
                ("cloud_provider", "aws"),
                ("product", "gwlb"),
                ("region", "us-east-1")
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_refused_region_call_fails_every_product_in_it() {
    let h = harness_with(estate(), |c| {
        c.accounts[0].regions = vec!["us-east-1".into()];
    })
    .await;
    h.sim.state.inject(Fault {
        api: Some("monitoring.GetMetricData".into()),
        kind: FaultKind::AuthFailure,
        times: 10,
    });
    let snap = collect(&h).await;
    assert_eq!(snap.jobs.len(), 5);
    for j in &snap.jobs {
        assert!(!j.success, "{}", j.product);
        assert_eq!(
            j.error.as_ref().and_then(|e| e.code.as_deref()),
            Some("SignatureDoesNotMatch"),
            "{}",
            j.product
        );
    }
}

#[tokio::test]
async fn get_metric_data_pages_are_followed_through_next_token() {
    // Pages of at most 200 datapoints; each query has 3 points in the window (66 a page).
    let settings = SimSettings {
        aws_page_datapoints: 200,
        ..SimSettings::default()
    };
    let h = harness_full(
        many_albs(20),
        settings,
        MappingSet::embedded().unwrap(),
        |c| c.accounts[0].products = vec![Product::Alb],
    )
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "alb_requests_per_second"), 20);
    let v = raw_value("alb-gen-00019", "RequestCount", "", T60, 60, false);
    let dim = elbv2_dimension_of("alb", "alb-gen-00019");
    let arn = format!("arn:aws:elasticloadbalancing:us-east-1:210987654321:loadbalancer/{dim}");
    assert_eq!(
        value(
            &t,
            "alb_requests_per_second",
            &[("resource_id", arn.as_str())]
        ),
        Some(v)
    );
    let queries = alb_sources(&h) * 20;
    assert!(queries <= 500);
    assert_eq!(
        h.sim.state.calls_to("monitoring.GetMetricData"),
        queries.div_ceil(66) as u64
    );
}

#[tokio::test]
async fn aws_all_regions_come_from_ec2_describe_regions() {
    let h = harness_with(estate(), |c| {
        c.accounts[0].regions = vec!["*".into()];
        c.accounts[0].products = vec![Product::S3];
    })
    .await;
    let snap = collect(&h).await;
    let regions: Vec<&str> = snap.jobs.iter().map(|j| j.region.as_str()).collect();
    assert_eq!(regions, vec!["eu-west-1", "us-east-1"]);
    assert!(snap.jobs.iter().all(|j| j.success));
    assert_eq!(h.sim.state.calls_to("ec2.DescribeRegions"), 1);
    // The bucket list is global: one ListBuckets for both regions.
    assert_eq!(h.sim.state.calls_to("s3.ListBuckets"), 1);
    collect(&h).await;
    assert_eq!(h.sim.state.calls_to("ec2.DescribeRegions"), 1);
}

#[tokio::test]
async fn a_denied_role_costs_one_assume_role_not_one_per_call() {
    // The role belongs to an account the simulator does not know: STS answers AccessDenied.
    let h = harness_with(estate(), |c| {
        c.accounts[0].role_arn = Some("arn:aws:iam::999999999999:role/nope".into());
    })
    .await;
    let snap = collect(&h).await;
    assert!(!snap.jobs.is_empty());
    for j in &snap.jobs {
        assert!(!j.success);
        assert_eq!(
            j.error.as_ref().and_then(|e| e.code.as_deref()),
            Some("AccessDenied"),
            "{}",
            j.product
        );
    }
    assert_eq!(h.sim.state.calls_to("sts.AssumeRole"), 1);
    assert_eq!(h.sim.state.total_calls(), 1);
}

#[tokio::test]
async fn a_hanging_region_call_fails_alone_and_keeps_the_region_report() {
    let h = harness_with(estate(), |c| {
        c.accounts[0].regions = vec!["us-east-1".into()];
        c.accounts[0].products = vec![Product::Alb];
    })
    .await;
    // Discovery first (cached), then the monitor call hangs.
    collect(&h).await;
    h.sim.state.inject(Fault {
        api: Some("monitoring.GetMetricData".into()),
        kind: FaultKind::Hang,
        times: 1,
    });
    let snap = scrape::collect(
        h.rt.clone(),
        &JobFilter::default(),
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    let job = &snap.jobs[0];
    assert!(!job.success);
    let e = job.error.as_ref().unwrap();
    assert_eq!(
        e.class,
        multicloud_exporter::cloud::ErrorClass::Timeout,
        "{e}"
    );
    // The job fails with its own call's timeout, and its discovered resources are still
    // reported, not replaced by a bare "scrape deadline passed".
    assert_eq!(e.api, "GetMetricData", "{e}");
    assert_eq!(job.resources.len(), 1);
}
