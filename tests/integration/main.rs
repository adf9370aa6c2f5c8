//! End-to-end tests against the in-process simulator: exact values for every product of every
//! simulated cloud, paging, batching, throttling and recovery, deadlines, auth failures,
//! single-flight, discovery TTL and the API-call count of a scrape. The clock is pinned so
//! values and signatures are exact. One binary; a module per cloud, the harness here.

mod aliyun;
mod aws;
mod chart;
mod cost;
mod estate;
mod fleet;
mod huawei;
mod logs;
mod membership;
mod moto;
mod procs;
mod prometheus;
mod reload;
mod tencent;
mod tls;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use multicloud_exporter::clock::Clock;
use multicloud_exporter::cloud::{Cloud, Product};
use multicloud_exporter::config::{self, Config};
use multicloud_exporter::mapping::MappingSet;
use multicloud_exporter::render::{render, Snapshot};
use multicloud_exporter::scrape::{self, Collector, JobFilter, Runtime};
use multicloud_exporter::server::{self, ServerState};
use multicloud_exporter::sim::estate::Estate;
use multicloud_exporter::sim::values::raw_value;
use multicloud_exporter::sim::{Fault, FaultKind, SimSettings, SimState, Simulator};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// 2025-01-01T00:10:30Z. With period 60 and the simulator's 30 s ingestion delay the newest
/// complete point is 00:09:00; with period 3600 it is 2024-12-31T23:00:00.
const NOW: i64 = 1_735_690_230;
const T60: i64 = 1_735_690_140;
const T3600: i64 = 1_735_686_000;

struct Harness {
    sim: Simulator,
    rt: Arc<Runtime>,
}

async fn start_sim_with(estate: Estate, settings: SimSettings) -> Simulator {
    let state = Arc::new(SimState::new(estate, Clock::Fixed(NOW), settings));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Simulator::serve(listener, state).unwrap()
}

fn config_for(sim: &Simulator) -> Config {
    let accounts = sim.state.estate().simulator_accounts();
    config::for_simulator(&sim.url(), &accounts, "127.0.0.1:0".parse().unwrap())
}

async fn harness_with(estate: Estate, tweak: impl FnOnce(&mut Config)) -> Harness {
    harness_full(
        estate,
        SimSettings::default(),
        MappingSet::embedded().unwrap(),
        tweak,
    )
    .await
}

async fn harness_full(
    estate: Estate,
    settings: SimSettings,
    mappings: MappingSet,
    tweak: impl FnOnce(&mut Config),
) -> Harness {
    let sim = start_sim_with(estate, settings).await;
    let mut config = config_for(&sim);
    tweak(&mut config);
    let rt = multicloud_exporter::app::build_runtime(config, mappings, Clock::Fixed(NOW)).unwrap();
    Harness { sim, rt }
}

async fn harness() -> Harness {
    harness_with(Estate::builtin(), |_| {}).await
}

async fn collect(h: &Harness) -> Snapshot {
    scrape::collect(
        h.rt.clone(),
        &JobFilter::default(),
        Instant::now() + Duration::from_secs(30),
    )
    .await
}

fn text(h: &Harness, s: &Snapshot) -> String {
    render(s, &h.rt.mappings, &h.rt.shared.metrics).unwrap()
}

/// The value of the series of `family` whose label set contains every `labels` pair.
fn value(text: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn series(text: &str, family: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .count()
}

/// Lines of the exposition that do not vary between runs (cloud families, per-job success,
/// discovered counts, resource info).
fn stable(text: &str) -> String {
    let volatile = [
        "multicloud_scrape_duration_seconds",
        "multicloud_scrape_timeout_seconds",
        "multicloud_request",
        "multicloud_collection",
        "multicloud_cache",
        "multicloud_rate_limit",
        "multicloud_build_info",
        "multicloud_scrapes_total",
        "multicloud_shard",
        "multicloud_config",
    ];
    let mut out = String::new();
    for l in text.lines() {
        let name = l
            .trim_start_matches("# HELP ")
            .trim_start_matches("# TYPE ");
        if !volatile.iter().any(|v| name.starts_with(v)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

async fn serve(rt: Arc<Runtime>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ServerState::new(Collector::new(rt));
    tokio::spawn(server::run(listener, state, 64, std::future::pending()));
    addr
}

async fn get(addr: SocketAddr, path: &str, timeout_header: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(t) = timeout_header {
        req = req.header("X-Prometheus-Scrape-Timeout-Seconds", t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}
