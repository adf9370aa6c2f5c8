//! A real Prometheus (`/usr/bin/prometheus`, Debian's 2.42) scrapes two targets at the
//! interval the exporter's periods are chosen for (60 s):
//! - `demo`, the `demo` command: `up` is 1, every `multicloud_scrape_success` is 1, and a
//!   business series read back through Prometheus' HTTP API has the simulator's value for the
//!   datapoint the exporter must have chosen at the scrape's time;
//! - `slow`, an exporter whose simulator answers Tencent's GetMonitorData after 60 s, scraped
//!   with a 10 s `scrape_timeout`: the exporter honours the scrape-timeout header, so `up` stays 1,
//!   the Tencent jobs report `multicloud_scrape_success 0` and every other job 1.
//!
//! Under `CI` a missing prometheus fails the test; elsewhere it skips with the reason.

use serde_json::Value;

use super::procs::{
    free_port, get, post_json, prometheus_binary, start_prometheus, wait_for, Fleet, Proc,
};
use multicloud_exporter::sim::values::raw_value;

/// The result vector of an instant query.
async fn query(prom: &str, promql: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("http://{prom}/api/v1/query"),
        &[("query", promql)],
    )
    .unwrap();
    let Some((200, body)) = get(url.as_str()).await else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn sample_value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// The newest `(timestamp, value)` of a range-vector series.
fn last_sample(series: &Value) -> (f64, f64) {
    let last = series["values"].as_array().unwrap().last().unwrap();
    (
        last[0].as_f64().unwrap(),
        last[1].as_str().unwrap().parse().unwrap(),
    )
}

/// The timestamp (Unix seconds) of the datapoint the exporter exports for a 60 s metric when it
/// collects at `now_s`: its query window ends at the start of the newest ended period
/// (`cloud::period::window`), and the simulator publishes a point 30 s after its period ends.
fn exported_point(now_s: f64) -> i64 {
    let now = now_s.floor() as i64;
    let aligned = now.div_euclid(60) * 60;
    if now - aligned >= 30 {
        aligned - 60
    } else {
        aligned - 120
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_gets_exact_values_and_partial_results_inside_its_timeout() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    // The slowed estate: Tencent's monitor API answers after 60 s.
    let fleet = Fleet::start("prometheus-demo").await;
    post_json(
        &format!("{}/-/faults", fleet.sim_url),
        r#"{"kind": "latency", "ms": 60000, "api": "monitor.GetMonitorData", "times": 1000000}"#,
    )
    .await;
    let slow_config = fleet.config("slow", "");
    let slow = fleet.exporter("slow", "127.0.0.1", &slow_config, &[]);

    let demo_port = free_port("127.0.0.1");
    let demo = Proc::start(
        "demo",
        &fleet.dir,
        &[
            "demo",
            "--web.listen-address",
            &format!("127.0.0.1:{demo_port}"),
        ],
        &[],
    );
    let demo_health = format!("http://127.0.0.1:{demo_port}/healthz");
    wait_for("the demo", &[&demo], || async {
        get(&demo_health).await.is_some_and(|(s, _)| s == 200)
    })
    .await;

    let slow_target = slow.url.trim_start_matches("http://");
    let (prom_proc, prom) = start_prometheus(
        &prometheus,
        &fleet,
        &format!(
            "global:\n  scrape_interval: 60s\n  scrape_timeout: 50s\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['127.0.0.1:{demo_port}']\n  - job_name: slow\n    scrape_timeout: 10s\n    static_configs:\n      - targets: ['{slow_target}']\n"
        ),
    );
    // Prometheus spreads first scrapes over the interval: up to 60 s.
    for job in ["demo", "slow"] {
        wait_for(
            &format!("Prometheus' first scrape of {job}"),
            &[&prom_proc, &demo, &slow.proc],
            || async {
                !query(&prom, &format!("up{{job=\"{job}\"}}"))
                    .await
                    .is_empty()
            },
        )
        .await;
    }

    // The demo: up, every job succeeded, an exact value.
    let up = query(&prom, "up{job=\"demo\"}").await;
    assert_eq!(sample_value(&up[0]), 1.0, "{up:?}\n{}", demo.log());
    let success = query(&prom, "multicloud_scrape_success{job=\"demo\"}").await;
    assert!(success.len() >= 20, "{success:?}");
    for s in &success {
        assert_eq!(sample_value(s), 1.0, "{s}");
    }
    // A range selector returns each sample with its own timestamp (the scrape's start); an
    // instant query's timestamp is the evaluation time, which can fall in a later minute.
    let series = query(
        &prom,
        "clb_active_connections{job=\"demo\",cloud_provider=\"aliyun\",resource_id=\"lb-bp1demo0001\"}[3m]",
    )
    .await;
    assert_eq!(series.len(), 1, "{series:?}");
    let (scraped_at, got) = last_sample(&series[0]);
    // The scrape collected within its duration after that timestamp.
    let durations = query(&prom, "scrape_duration_seconds{job=\"demo\"}[3m]").await;
    let took = durations[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0].as_f64() == Some(scraped_at))
        .map_or(50.0, |p| p[1].as_str().unwrap().parse().unwrap());
    let candidates: Vec<f64> = [
        exported_point(scraped_at),
        exported_point(scraped_at + took),
    ]
    .into_iter()
    .map(|t| {
        raw_value(
            "lb-bp1demo0001",
            "InstanceActiveConnection",
            "",
            t,
            60,
            false,
        )
    })
    .collect();
    assert!(
        candidates.contains(&got),
        "clb_active_connections = {got}, the simulator's value for the chosen point is one of {candidates:?}"
    );

    // The slowed exporter: answered inside 10 s with what finished.
    let up = query(&prom, "up{job=\"slow\"}").await;
    assert_eq!(sample_value(&up[0]), 1.0, "{up:?}\n{}", slow.proc.log());
    let took = sample_value(&query(&prom, "scrape_duration_seconds{job=\"slow\"}").await[0]);
    assert!(took < 10.0, "scrape took {took} s");
    let timeout = query(&prom, "multicloud_scrape_timeout_seconds{job=\"slow\"}").await;
    let timeout = sample_value(&timeout[0]);
    assert!(timeout > 5.0 && timeout < 10.0, "deadline {timeout} s");
    // Every other cloud's jobs finished. No Tencent job with resources did: it asks
    // GetMonitorData (or waits behind the jobs that do, for a product slot), and the built-in
    // estate has 5 such jobs; a Tencent job that finished discovered nothing to ask about.
    let key = |s: &Value| {
        ["account_id", "cloud_provider", "product", "region"]
            .map(|l| s["metric"][l].as_str().unwrap().to_string())
    };
    let success = query(&prom, "multicloud_scrape_success{job=\"slow\"}").await;
    let resources: std::collections::BTreeMap<_, _> =
        query(&prom, "multicloud_discovered_resources{job=\"slow\"}")
            .await
            .iter()
            .map(|s| (key(s), sample_value(s)))
            .collect();
    let mut tencent_failed = 0;
    for s in &success {
        let k = key(s);
        match (k[1].as_str(), sample_value(s)) {
            ("tencent", 0.0) => tencent_failed += 1,
            ("tencent", _) => assert_eq!(resources[&k], 0.0, "{s}"),
            (_, v) => assert_eq!(v, 1.0, "{s}\n{}", slow.proc.log()),
        }
    }
    assert!(tencent_failed >= 5, "{success:?}");
    assert!(success.len() >= 20, "{success:?}");
}
