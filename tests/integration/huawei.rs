//! Huawei against the simulator: exact values and labels for ELB and OBS, the CES batch plan
//! (500 metrics and 3000 datapoints a call), a window the API would shorten, marker paging,
//! throttling recovery and an auth failure.

use super::*;

const DOMAIN: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
/// Newest complete 300 s point at NOW (00:05:00) and newest complete day.
const T300: i64 = 1_735_689_900;
const TDAY: i64 = 1_735_603_200;

fn estate_with(extra: &str) -> Estate {
    Estate::from_toml(&format!(
        r#"regions = []
huawei_regions = ["cn-north-4", "ap-southeast-1"]
[[accounts]]
cloud = "huawei"
account_id = "{DOMAIN}"
access_key_id = "HWSIMDEMOAK0000000001"
access_key_secret = "HwDemoSecretKey0001abcdefghijklmnopqrst"

[[accounts.resources]]
product = "clb"
id = "3ae5b5c6-1c0f-4c3b-9e2a-5a7c0d5b0a11"
name = "web-elb"
region = "cn-north-4"
tags = {{ CodeName = "web" }}

[[accounts.resources]]
product = "s3"
id = "demo-obs-assets"
region = "cn-north-4"
tags = {{ CodeName = "assets" }}
{extra}"#
    ))
    .unwrap()
}

#[tokio::test]
async fn huawei_elb_and_obs_export_exact_values() {
    let h = harness_with(estate_with(""), |_| {}).await;
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    let id = "3ae5b5c6-1c0f-4c3b-9e2a-5a7c0d5b0a11";
    // m4_ncps is NEW connections per second (catalogue §4.1): average, x1.
    let v = raw_value(id, "m4_ncps", "", T60, 60, false);
    assert_eq!(
        value(
            &t,
            "clb_new_connections_per_second",
            &[
                ("cloud_provider", "huawei"),
                ("account_id", DOMAIN),
                ("region", "cn-north-4"),
                ("resource_type", "clb"),
                ("resource_id", id),
                ("code_name", "web"),
            ]
        ),
        Some(v)
    );
    // m7_in_Bps is already bytes per second.
    let v = raw_value(id, "m7_in_Bps", "", T60, 60, false);
    assert_eq!(
        value(&t, "clb_in_bytes_per_second", &[("resource_id", id)]),
        Some(v)
    );
    // OBS: daily capacity, and request counts as sums per 300 s divided by 300.
    let v = raw_value("demo-obs-assets", "capacity_total", "", TDAY, 86400, false);
    assert_eq!(
        value(
            &t,
            "s3_storage_bytes",
            &[
                ("resource_id", "demo-obs-assets"),
                ("storage_class", "all"),
                ("code_name", "assets")
            ]
        ),
        Some(v)
    );
    let sum = raw_value("demo-obs-assets", "get_request_count", "", T300, 300, false) * 300.0;
    assert_eq!(
        value(
            &t,
            "s3_requests_per_second",
            &[("resource_id", "demo-obs-assets"), ("method", "get")]
        ),
        Some(sum / 300.0)
    );
    // The project ID came from IAM, once (one region here).
    assert_eq!(h.sim.state.calls_to("iam.KeystoneListProjects"), 1);
}

fn many_elbs(n: usize) -> Estate {
    estate_with(&format!(
        "\n[[accounts.generate]]\nproduct = \"clb\"\nregion = \"cn-north-4\"\ncount = {n}\nprefix = \"elb-gen\"\n"
    ))
}

/// A clb mapping of `n` Huawei metrics only (`m0`…), to build exact batch plans.
fn clb_mapping(n: usize) -> MappingSet {
    let mut t = String::from("product = \"clb\"\n[cloud.huawei]\nnamespace = \"SYS.ELB\"\nresource_dimension = \"lbaas_instance_id\"\n");
    for i in 0..n {
        t.push_str(&format!(
            "[[metric]]\nname = \"test{i}_connections\"\nhelp = \"Test metric {i}.\"\nunit = \"count\"\n[[metric.huawei]]\nmetric = \"m{i}\"\nstatistic = \"average\"\n"
        ));
    }
    MappingSet::from_files(&[("clb.toml".to_string(), t)]).unwrap()
}

#[tokio::test]
async fn ces_packs_1200_pairs_at_period_300_into_3_calls() {
    // 12 metrics × 100 load balancers (+ the estate's own one) = 1212 pairs; at period 300 the
    // window holds 2 points, so 500 metrics a call: ⌈1212/500⌉ = 3 calls.
    let h = harness_full(
        many_elbs(100),
        SimSettings::default(),
        clb_mapping(12),
        |c| {
            c.server.scrape_interval = Duration::from_secs(300);
            c.accounts[0].products = vec![Product::Clb];
        },
    )
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    assert_eq!(snap.jobs[0].resources.len(), 101);
    assert_eq!(h.sim.state.calls_to("ces.BatchListMetricData"), 3);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "clb_test11_connections"), 101);
    let v = raw_value("elb-gen-00099", "m11", "", T300, 300, false);
    assert_eq!(
        value(
            &t,
            "clb_test11_connections",
            &[("resource_id", "elb-gen-00099")]
        ),
        Some(v)
    );
}

#[tokio::test]
async fn a_window_the_api_would_shorten_is_split_so_every_value_is_exact() {
    // An hour of ingestion delay at period 60 asks 61 points per metric: 49 metrics a call
    // keep metrics × points ≤ 3000 (the API would silently move `from` forward otherwise).
    let h = harness_full(many_elbs(99), SimSettings::default(), clb_mapping(1), |c| {
        c.server.ingestion_delay = Duration::from_secs(3600);
        c.accounts[0].products = vec![Product::Clb];
    })
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    // 100 pairs / 49 a call: the call count is what proves the rule was kept (CES would keep
    // the newest points of an over-long window anyway).
    assert_eq!(h.sim.state.calls_to("ces.BatchListMetricData"), 3);
    let t = text(&h, &snap);
    assert_eq!(series(&t, "clb_test0_connections"), 100);
    for id in ["elb-gen-00000", "elb-gen-00098"] {
        let v = raw_value(id, "m0", "", T60, 60, false);
        assert_eq!(
            value(&t, "clb_test0_connections", &[("resource_id", id)]),
            Some(v),
            "{id}"
        );
    }
}

#[tokio::test]
async fn elb_pages_with_marker_past_2000() {
    let h = harness_full(
        many_elbs(2100),
        SimSettings::default(),
        clb_mapping(1),
        |c| {
            c.accounts[0].products = vec![Product::Clb];
            c.server.metric_concurrency = 8;
        },
    )
    .await;
    let snap = collect(&h).await;
    assert!(snap.jobs[0].success, "{:?}", snap.jobs[0].error);
    assert_eq!(snap.jobs[0].resources.len(), 2101);
    assert_eq!(h.sim.state.calls_to("elb.ListLoadBalancers"), 2);
}

#[tokio::test]
async fn huawei_throttling_recovers_and_a_wrong_secret_is_an_auth_error() {
    let h = harness_with(estate_with(""), |_| {}).await;
    h.sim.state.inject(Fault {
        api: Some("ces.BatchListMetricData".into()),
        kind: FaultKind::Throttle,
        times: 2,
    });
    let snap = collect(&h).await;
    assert!(snap.jobs.iter().all(|j| j.success), "{:?}", snap.jobs);
    let t = text(&h, &snap);
    let hw = ("cloud_provider", "huawei");
    assert_eq!(
        value(
            &t,
            "multicloud_request_retries_total",
            &[hw, ("api", "BatchListMetricData")]
        ),
        Some(2.0)
    );

    let h = harness_with(estate_with(""), |c| {
        c.accounts[0].access_key_secret = config::Secret::new("WrongHuaweiSecret");
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
    }
    let t = text(&h, &snap);
    assert_eq!(value(&t, "multicloud_request_retries_total", &[hw]), None);
    assert!(!t.contains("WrongHuaweiSecret"));
}

#[tokio::test]
async fn an_sts_token_is_signed_on_every_call() {
    // The SDK signer signs X-Security-Token; OBS signs every x-obs-* header it receives,
    // x-obs-security-token included: a token left out of either signature fails the call.
    let h = harness_with(estate_with(""), |c| {
        c.accounts[0].security_token = Some(config::Secret::new("HWSTSTOKENEXAMPLE0001"));
    })
    .await;
    let snap = collect(&h).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    let t = text(&h, &snap);
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                ("resource_id", "demo-obs-assets"),
                ("tag_code_name", "assets")
            ]
        ),
        Some(1.0)
    );
    assert!(!t.contains("HWSTSTOKENEXAMPLE0001"));
}
