//! The estate benchmark: what a scrape costs as the estate grows, as ratios to its physical
//! limits. The simulator runs in this process with a latency model; the exporter is the real
//! binary (`serve`, the same code as every `/metrics`) in a child process, so its memory and CPU
//! are measured alone from `/proc`.
//!
//! For each size (exported business series) it reports API calls per scrape ÷ the minimum the
//! clouds' batch limits allow (`cost::minimum` for monitor calls, plus
//! `cost::discovery_minimum` for the discovery and metadata of a cold scrape; computed from the
//! estate and the mappings, not from the exporter), warm and cold; scrape wall time ÷ the latency bound; peak RSS, RSS growth
//! over repeated warm scrapes, CPU per warm scrape, bytes of exposition; an HA pair's calls ÷ one
//! scraper's; and, on one size, the spread of calls over N sharded replicas.
//!
//! `cargo bench --bench estate` runs the full sizes (100 … 100,000 series);
//! `cargo bench --bench estate -- --quick` a smoke run of the small ones. Options:
//! `--sizes 100,1000`, `--latency-ms 20` (or `aliyun=20,tencent=30,…`), `--jitter-ms 0`,
//! `--scrapes N` (warm scrapes for the RSS growth), `--shard-size N` (0 skips sharding),
//! `--quota QPS` (every account's monitor API quota in the exporter's `api_quotas`, and every
//! API's in the simulator, never below its default; so long runs of warm scrapes are bound by
//! latency, not by the documented quota),
//! `--wrap "valgrind --tool=massif"` (run the exporter under a profiler). Writes
//! `target/estate.json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use multicloud_exporter::clock::Clock;
use multicloud_exporter::cloud::limiter::{
    documented_quota, MAX_API_QUOTA, MIN_API_QUOTA, SAFE_FRACTION,
};
use multicloud_exporter::cloud::{Cloud, Product};
use multicloud_exporter::cost::discovery_minimum::discovery_minimum;
use multicloud_exporter::cost::minimum::{self, estate_demands, minimum_calls};
use multicloud_exporter::mapping::MappingSet;
use multicloud_exporter::sim::estate::Estate;
use multicloud_exporter::sim::synthetic::{Layout, Slot};
use multicloud_exporter::sim::{SimSettings, SimState, Simulator};
use serde_json::{json, Value};

/// The exporter's defaults the latency bound is computed with (`config.toml`).
const REGION_CONCURRENCY: u64 = 3;
const PRODUCT_CONCURRENCY: u64 = 2;
const METRIC_CONCURRENCY: u64 = 5;
const SCRAPE_INTERVAL_S: u64 = 60;
const INGESTION_DELAY_S: u64 = 120;
/// The monitor API of each cloud: as the simulator counts it, and as the limiter names it.
fn monitor_api(cloud: Cloud) -> (&'static str, &'static str) {
    let counted = minimum::monitor_api(cloud);
    (
        counted,
        counted
            .split_once('.')
            .map_or(counted, |(_, action)| action),
    )
}

struct Options {
    sizes: Vec<u64>,
    latency: BTreeMap<Cloud, Duration>,
    jitter: Duration,
    scrapes: usize,
    /// Series of the sharding measurement (0: skipped).
    shard_size: u64,
    /// A command the exporter runs under (a profiler), split on whitespace.
    wrap: Vec<String>,
    /// Every account's monitor API quota (calls/s) in place of the documented one.
    quota: Option<f64>,
    quick: bool,
}

fn fail(msg: String) -> ! {
    eprintln!("estate: {msg}");
    std::process::exit(2)
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes = match value("--sizes") {
        Some(s) => s
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| fail(format!("--sizes: {n:?} is not a number")))
            })
            .collect(),
        None if quick => vec![100, 1_000],
        None => vec![100, 1_000, 10_000, 100_000],
    };
    let mut latency: BTreeMap<Cloud, Duration> = Cloud::ALL
        .iter()
        .map(|c| (*c, Duration::from_millis(20)))
        .collect();
    if let Some(l) = value("--latency-ms") {
        for part in l.split(',') {
            let (cloud, ms) = match part.split_once('=') {
                Some((c, ms)) => (
                    Some(
                        Cloud::parse(c.trim())
                            .unwrap_or_else(|| fail(format!("--latency-ms: unknown cloud {c:?}"))),
                    ),
                    ms,
                ),
                None => (None, part),
            };
            let ms: u64 = ms
                .trim()
                .parse()
                .unwrap_or_else(|_| fail(format!("--latency-ms: {ms:?} is not a number")));
            for c in Cloud::ALL {
                if cloud.is_none_or(|x| x == c) {
                    latency.insert(c, Duration::from_millis(ms));
                }
            }
        }
    }
    let jitter = Duration::from_millis(
        value("--jitter-ms")
            .map(|j| {
                j.parse()
                    .unwrap_or_else(|_| fail(format!("--jitter-ms: {j:?}")))
            })
            .unwrap_or(0),
    );
    let scrapes = value("--scrapes")
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| fail(format!("--scrapes: {s:?}")))
        })
        .unwrap_or(if quick { 2 } else { 100 });
    let shard_size = value("--shard-size")
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| fail(format!("--shard-size: {s:?}")))
        })
        .unwrap_or(if quick { 1_000 } else { 10_000 });
    let quota = value("--quota").map(|q| match q.parse::<f64>() {
        Ok(n) if (MIN_API_QUOTA..=MAX_API_QUOTA).contains(&n) => n,
        _ => fail(format!(
            "--quota: {q:?} is not a number of calls per second from {MIN_API_QUOTA} to {MAX_API_QUOTA}"
        )),
    });
    let wrap = value("--wrap")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Options {
        sizes,
        latency,
        jitter,
        scrapes,
        shard_size,
        wrap,
        quota,
        quick,
    }
}

/// The layout of a size: one account in one region for the smallest, else four accounts per
/// cloud in two regions each (over 100 jobs, so sharding has something to spread; the quota
/// limiters are per account, so more accounts scrape faster).
fn layout_for(size: u64) -> Layout {
    if size < 1_000 {
        Layout {
            accounts_per_cloud: 1,
            regions_per_account: 1,
        }
    } else {
        Layout {
            accounts_per_cloud: 4,
            regions_per_account: 2,
        }
    }
}

/// Resources per slot for about `size` series: one resource at a time, round-robin over the
/// slots in an order that alternates clouds and products, until the series reach the size.
fn fill(layout: Layout, size: u64, series_of: &BTreeMap<(Cloud, Product), u64>) -> Estate {
    let mut slots = layout.slots();
    // Clouds alternate fastest, so a small estate still covers every cloud.
    slots.sort_by_key(|s| (s.account, s.product, s.region, s.cloud));
    let mut counts: BTreeMap<Slot, usize> = BTreeMap::new();
    let mut total = 0u64;
    'outer: loop {
        for s in &slots {
            let per = series_of.get(&(s.cloud, s.product)).copied().unwrap_or(0);
            if per == 0 {
                continue;
            }
            *counts.entry(s.clone()).or_insert(0) += 1;
            total += per;
            if total >= size {
                break 'outer;
            }
        }
        if series_of.values().all(|v| *v == 0) {
            break;
        }
    }
    layout.estate(|s| counts.get(s).copied().unwrap_or(0))
}

/// The exporter's config for an estate served at `sim_url`.
fn config_text(estate: &Estate, sim_url: &str, quota: Option<f64>) -> String {
    let mut text = format!(
        "[server]\nscrape_interval = \"{SCRAPE_INTERVAL_S}s\"\nscrape_timeout = \"60s\"\nresult_cache_ttl = \"0s\"\nlog_level = \"warn\"\n"
    );
    for a in estate.simulator_accounts() {
        if a.regions.is_empty() {
            continue;
        }
        text.push_str(&a.config_toml(sim_url));
        if let Some(q) = quota {
            text.push_str(&format!(
                "[accounts.api_quotas]\n{} = {q}\n",
                monitor_api(a.cloud).1
            ));
        }
    }
    text
}

/// A running exporter.
struct Exporter {
    child: Child,
    url: String,
}

impl Drop for Exporter {
    /// SIGTERM first, to the exporter's whole process group (a profiler it runs under and the
    /// exporter itself), so both end cleanly and the profiler writes what it has; SIGKILL
    /// after 30 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(format!("no free port: {e}")))
}

async fn start_exporter(dir: &Path, name: &str, config: &str, wrap: &[String]) -> Exporter {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
    let port = free_port();
    let log = std::fs::File::create(dir.join(format!("{name}.log")))
        .unwrap_or_else(|e| fail(format!("log file: {e}")));
    let binary = env!("CARGO_BIN_EXE_multicloud-exporter");
    let mut cmd = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    cmd.args(["serve", "--config.file"])
        .arg(&path)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        // Its own process group, so stopping it stops a profiler's child too.
        .process_group(0);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| fail(format!("starting the exporter: {e}")));
    let e = Exporter {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{}/-/ready", e.url)).send().await {
            if r.status().is_success() {
                return e;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fail(format!(
        "exporter {name} did not become ready; see {}",
        dir.join(format!("{name}.log")).display()
    ))
}

/// One scrape: the body and its wall time.
async fn scrape(client: &reqwest::Client, e: &Exporter) -> (String, Duration) {
    let started = Instant::now();
    let body = client
        .get(format!("{}/metrics", e.url))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "60")
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let body = match body {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(err) => fail(format!("scrape failed: {err}")),
    };
    (body, started.elapsed())
}

/// The business series (no self-metrics) of an exposition, and failed jobs.
fn business_series(text: &str) -> (u64, u64) {
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("multicloud_") && !l.is_empty())
        .count() as u64;
    let failed = text
        .lines()
        .filter(|l| l.starts_with("multicloud_scrape_success{") && l.ends_with(" 0"))
        .count() as u64;
    (series, failed)
}

/// A label's value in an exposition line.
fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

/// Series per resource of every (cloud, product), from one scrape of a one-resource-per-slot
/// estate.
fn series_per_resource(text: &str, estate: &Estate) -> BTreeMap<(Cloud, Product), u64> {
    let mut series: BTreeMap<(Cloud, Product), u64> = BTreeMap::new();
    for l in text.lines() {
        if l.starts_with('#') || l.starts_with("multicloud_") {
            continue;
        }
        let (Some(c), Some(p)) = (label(l, "cloud_provider"), label(l, "resource_type")) else {
            continue;
        };
        if let (Some(c), Some(p)) = (Cloud::parse(c), Product::parse(p)) {
            *series.entry((c, p)).or_insert(0) += 1;
        }
    }
    let mut resources: BTreeMap<(Cloud, Product), u64> = BTreeMap::new();
    for a in &estate.accounts {
        for r in &a.resources {
            if let Some(p) = r.product() {
                *resources.entry((a.cloud, p)).or_insert(0) += 1;
            }
        }
    }
    series
        .into_iter()
        .map(|(k, n)| (k, n / resources.get(&k).copied().unwrap_or(1).max(1)))
        .collect()
}

/// Calls per cloud served since the last reset, and per (cloud, account) of the monitor API.
fn calls(sim: &SimState) -> (BTreeMap<Cloud, u64>, BTreeMap<(Cloud, String), u64>) {
    let mut per_cloud = BTreeMap::new();
    let mut monitor = BTreeMap::new();
    for (cloud, accounts) in sim.calls_by_account() {
        let Some(c) = Cloud::parse(&cloud) else {
            continue;
        };
        for (account, apis) in accounts {
            for (api, n) in apis {
                *per_cloud.entry(c).or_insert(0) += n;
                if api == monitor_api(c).0 {
                    *monitor.entry((c, account.clone())).or_insert(0) += n;
                }
            }
        }
    }
    (per_cloud, monitor)
}

/// One line per size: for each cloud, `served/minimum = ratio` read from the keys given.
fn print_per_cloud(results: &[Value], title: &str, [served, minimum, ratio]: [&str; 3]) {
    println!("\n{title}, per cloud:");
    for r in results {
        let parts: Vec<String> = Cloud::ALL
            .iter()
            .map(|c| {
                let p = &r["per_cloud"][c.as_str()];
                format!(
                    "{c} {}/{} = {:.2}",
                    p[served],
                    p[minimum],
                    p[ratio].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!("{:>8}  {}", u(&r["size"]), parts.join("   "));
    }
}

/// Calls served per cloud and API (`<service>.<Action>`), over every account.
fn calls_by_api(sim: &SimState) -> BTreeMap<Cloud, BTreeMap<String, u64>> {
    let mut out: BTreeMap<Cloud, BTreeMap<String, u64>> = BTreeMap::new();
    for (cloud, accounts) in sim.calls_by_account() {
        let Some(c) = Cloud::parse(&cloud) else {
            continue;
        };
        for (_, apis) in accounts {
            for (api, n) in apis {
                *out.entry(c).or_default().entry(api).or_insert(0) += n;
            }
        }
    }
    out
}

/// The latency bound of a warm scrape: accounts run side by side; in each, calls overlap at most
/// `regions × product_concurrency × metric_concurrency` at a time (AWS: one batched fetch per
/// region), and the client-side limiter spaces an account's monitor calls at its rate.
fn latency_bound(
    monitor: &BTreeMap<(Cloud, String), u64>,
    regions: u64,
    latency: &BTreeMap<Cloud, Duration>,
    quota: Option<f64>,
) -> Duration {
    let mut bound = Duration::ZERO;
    for ((cloud, _), n) in monitor {
        let l = latency.get(cloud).copied().unwrap_or_default();
        let products = if *cloud == Cloud::Aws {
            1
        } else {
            PRODUCT_CONCURRENCY
        };
        let concurrency = regions.min(REGION_CONCURRENCY) * products * METRIC_CONCURRENCY;
        let waves = l * n.div_ceil(concurrency) as u32;
        let rate = quota.unwrap_or_else(|| documented_quota(*cloud, monitor_api(*cloud).1))
            * SAFE_FRACTION;
        let spaced = Duration::from_secs_f64(n.saturating_sub(1) as f64 / rate) + l;
        bound = bound.max(waves.max(spaced));
    }
    bound
}

/// (RSS, peak RSS) of a process in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) of a process.
fn cpu_time(pid: u32, ticks_per_s: f64) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    Duration::from_secs_f64((ticks(11) + ticks(12)) / ticks_per_s)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        if a == 0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        a as f64 / b as f64
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

async fn start_sim(estate: Estate, o: &Options) -> Simulator {
    let settings = SimSettings {
        latency_by_cloud: o.latency.clone(),
        latency_jitter: o.jitter,
        // The benchmark measures the exporter's pacing, not the simulator's quota: the limiter
        // keeps each account under 80 % of its quota anyway.
        // A raised quota applies to every API here, but never lowers the default one, so
        // discovery is not throttled by a small --quota.
        qps_limit: o.quota.map_or(SimSettings::default().qps_limit, |q| {
            (q.ceil() as usize).max(SimSettings::default().qps_limit)
        }),
        ..SimSettings::default()
    };
    let state = Arc::new(SimState::new(estate, Clock::System, settings));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(format!("simulator: {e}")));
    Simulator::serve(listener, state).unwrap_or_else(|e| fail(format!("simulator: {e}")))
}

/// One size's measurements.
async fn measure_size(
    size: u64,
    series_of: &BTreeMap<(Cloud, Product), u64>,
    mappings: &MappingSet,
    o: &Options,
    dir: &Path,
    ticks: f64,
) -> Value {
    let layout = layout_for(size);
    let estate = fill(layout, size, series_of);
    let demands = estate_demands(&estate, mappings, SCRAPE_INTERVAL_S, INGESTION_DELAY_S);
    let minimum = minimum_calls(&demands);
    let discovery = discovery_minimum(&estate, mappings);
    let sim = start_sim(estate.clone(), o).await;
    let config = config_text(&estate, &sim.url(), o.quota);
    let e = start_exporter(dir, &format!("size-{size}"), &config, &o.wrap).await;
    let pid = e.child.id();
    let client = reqwest::Client::new();

    sim.state.reset_calls();
    let (text, cold_wall) = scrape(&client, &e).await;
    let (cold_calls, _) = calls(&sim.state);
    let cold_by_api = calls_by_api(&sim.state);
    let (series, failed_cold) = business_series(&text);

    sim.state.reset_calls();
    let cpu_before = cpu_time(pid, ticks);
    let (text, warm_wall) = scrape(&client, &e).await;
    let warm_cpu_one = cpu_time(pid, ticks).saturating_sub(cpu_before);
    let (warm_calls, monitor) = calls(&sim.state);
    let (_, failed_warm) = business_series(&text);
    let bytes = text.len() as u64;
    let bound = latency_bound(
        &monitor,
        layout.regions_per_account as u64,
        &o.latency,
        o.quota,
    );

    // HA pair: two scrapers at the same moment.
    sim.state.reset_calls();
    let (a, b) = tokio::join!(scrape(&client, &e), scrape(&client, &e));
    let pair_calls = sim.state.total_calls();
    let pair_same = a.0.len() == b.0.len();

    // RSS growth over repeated warm scrapes (after one more to settle allocator pools).
    scrape(&client, &e).await;
    let (rss_settled, _) = memory(pid);
    let cpu_start = cpu_time(pid, ticks);
    let loop_started = Instant::now();
    // RSS after 1, 2, 5, 10, 20, 50, … scrapes and the last: warming (pools, arenas) levels off
    // early, a leak keeps climbing.
    let mut rss_after: Vec<(usize, u64)> = Vec::new();
    for n in 1..=o.scrapes {
        scrape(&client, &e).await;
        let decade = 10usize.pow(n.ilog10());
        if [1, 2, 5].contains(&(n / decade)) && n % decade == 0 || n == o.scrapes {
            rss_after.push((n, memory(pid).0));
        }
    }
    let loop_wall = loop_started.elapsed();
    let cpu_per_scrape = (cpu_time(pid, ticks).saturating_sub(cpu_start)) / o.scrapes.max(1) as u32;
    let (rss_end, peak) = memory(pid);

    let warm_total: u64 = warm_calls.values().sum();
    let min_total: u64 = minimum.values().sum();
    let monitor_total: u64 = monitor.values().sum();
    let per_cloud: BTreeMap<String, Value> = Cloud::ALL
        .iter()
        .map(|c| {
            let (api, _) = monitor_api(*c);
            let served: u64 = monitor
                .iter()
                .filter(|((x, _), _)| x == c)
                .map(|(_, n)| *n)
                .sum();
            let min = minimum.get(c).copied().unwrap_or(0);
            let cold = cold_calls.get(c).copied().unwrap_or(0);
            let cold_min = min + discovery.get(c).copied().unwrap_or(0);
            (
                c.as_str().to_string(),
                json!({
                    "api": api,
                    "warm_calls": warm_calls.get(c).copied().unwrap_or(0),
                    "warm_monitor_calls": served,
                    "minimum": min,
                    "ratio": ratio(served, min),
                    "cold_calls": cold,
                    "cold_minimum": cold_min,
                    "cold_ratio": ratio(cold, cold_min),
                    "cold_calls_by_api": cold_by_api.get(c).cloned().unwrap_or_default(),
                }),
            )
        })
        .collect();
    json!({
        "size": size,
        "series": series,
        "accounts_per_cloud": layout.accounts_per_cloud,
        "regions_per_account": layout.regions_per_account,
        "failed_jobs_cold": failed_cold,
        "failed_jobs_warm": failed_warm,
        "cold_calls": cold_calls.values().sum::<u64>(),
        "warm_calls": warm_total,
        "warm_monitor_calls": monitor_total,
        "minimum_calls": min_total,
        "cold_minimum_calls": min_total + discovery.values().sum::<u64>(),
        "cold_calls_ratio": ratio(
            cold_calls.values().sum::<u64>(),
            min_total + discovery.values().sum::<u64>(),
        ),
        "warm_calls_ratio": ratio(warm_total, min_total),
        "per_cloud": per_cloud,
        "cold_wall_s": cold_wall.as_secs_f64(),
        "warm_wall_s": warm_wall.as_secs_f64(),
        "latency_bound_s": bound.as_secs_f64(),
        "wall_ratio": if bound.is_zero() { 0.0 } else { warm_wall.as_secs_f64() / bound.as_secs_f64() },
        "ha_pair_calls": pair_calls,
        "ha_pair_ratio": ratio(pair_calls, warm_total),
        "ha_pair_same_answer": pair_same,
        "peak_rss_bytes": peak,
        "rss_growth_bytes": rss_end as i64 - rss_settled as i64,
        "rss_after_scrapes": rss_after
            .iter()
            .map(|(n, rss)| json!({"scrapes": n, "rss_growth_bytes": *rss as i64 - rss_settled as i64}))
            .collect::<Vec<_>>(),
        "growth_scrapes": o.scrapes,
        "growth_wall_s": loop_wall.as_secs_f64(),
        "cpu_first_warm_s": warm_cpu_one.as_secs_f64(),
        "cpu_per_warm_scrape_s": cpu_per_scrape.as_secs_f64(),
        "exposition_bytes": bytes,
    })
}

/// Calls of each of N replicas over one warm scrape each, measured as `multicloud-exporter shard`
/// does: the estate collected once cold in this process, then each member's jobs (rendezvous
/// ownership over the member names, as every replica computes it) once warm.
async fn measure_sharding(
    size: u64,
    series_of: &BTreeMap<(Cloud, Product), u64>,
    mappings: &MappingSet,
    o: &Options,
) -> Value {
    let layout = layout_for(size);
    let estate = fill(layout, size, series_of);
    let sim = start_sim(estate.clone(), o).await;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let config = multicloud_exporter::config::for_simulator(
        &sim.url(),
        &estate.simulator_accounts(),
        listen,
    );
    let rt = multicloud_exporter::app::build_runtime(config, mappings.clone(), Clock::System)
        .unwrap_or_else(|e| fail(format!("runtime: {e}")));
    let mut rows = Vec::new();
    let mut jobs = 0;
    for n in [1usize, 2, 4, 8] {
        let members: Vec<String> = (0..n).map(|i| format!("multicloud-exporter-{i}")).collect();
        let (shares, failed) = multicloud_exporter::cost::shard_estate(&rt, &members, None).await;
        if !failed.is_empty() {
            eprintln!(
                "estate: sharding: {} jobs failed: {:?}",
                failed.len(),
                failed
            );
        }
        jobs = shares.iter().map(|s| s.jobs.len()).sum();
        let per_replica: Vec<u64> = shares
            .iter()
            .map(|s| s.per_scrape.values().flat_map(|m| m.values()).sum())
            .collect();
        let total: u64 = per_replica.iter().sum();
        let max = per_replica.iter().copied().max().unwrap_or(0);
        let spread = if total == 0 {
            0.0
        } else {
            max as f64 / (total as f64 / n as f64)
        };
        rows.push(
            json!({"replicas": n, "calls": per_replica, "total": total, "max_over_mean": spread}),
        );
    }
    json!({"size": size, "jobs": jobs, "rows": rows})
}

/// A JSON count as a number (Value's Display ignores widths).
fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn print_table(results: &[Value], sharding: &Value, o: &Options) {
    let latency: Vec<String> = o
        .latency
        .iter()
        .map(|(c, l)| format!("{c}={}ms", l.as_millis()))
        .collect();
    println!(
        "\nestate benchmark: latency {} (jitter {} ms), result cache off, warm scrapes for RSS growth: {}",
        latency.join(" "),
        o.jitter.as_millis(),
        o.scrapes
    );
    println!(
        "{:>8} {:>8} {:>6} {:>7} {:>6} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>6} {:>8} {:>9} {:>9} {:>10}",
        "size", "series", "failed", "cold", "cold/", "warm", "minimum", "warm/", "HA", "wall s", "bound s", "wall/", "peak", "RSS grow", "CPU/scr", "bytes"
    );
    println!(
        "{:>8} {:>8} {:>6} {:>7} {:>6} {:>7} {:>9} {:>7} {:>7} {:>8} {:>8} {:>6} {:>8} {:>9} {:>9} {:>10}",
        "", "", "jobs", "calls", "min", "calls", "calls", "min", "pair", "warm", "", "bound", "RSS MiB", "MiB", "ms", ""
    );
    for r in results {
        println!(
            "{:>8} {:>8} {:>6} {:>7} {:>6.2} {:>7} {:>9} {:>7.2} {:>7.2} {:>8.2} {:>8.2} {:>6.2} {:>8.1} {:>9.2} {:>9.1} {:>10}",
            u(&r["size"]),
            u(&r["series"]),
            u(&r["failed_jobs_warm"]),
            u(&r["cold_calls"]),
            r["cold_calls_ratio"].as_f64().unwrap_or(0.0),
            u(&r["warm_calls"]),
            u(&r["minimum_calls"]),
            r["warm_calls_ratio"].as_f64().unwrap_or(0.0),
            r["ha_pair_ratio"].as_f64().unwrap_or(0.0),
            r["warm_wall_s"].as_f64().unwrap_or(0.0),
            r["latency_bound_s"].as_f64().unwrap_or(0.0),
            r["wall_ratio"].as_f64().unwrap_or(0.0),
            mib(r["peak_rss_bytes"].as_u64().unwrap_or(0)),
            r["rss_growth_bytes"].as_i64().unwrap_or(0) as f64 / (1024.0 * 1024.0),
            r["cpu_per_warm_scrape_s"].as_f64().unwrap_or(0.0) * 1000.0,
            u(&r["exposition_bytes"]),
        );
    }
    println!("\nRSS growth (MiB) after N warm scrapes:");
    for r in results {
        let points: Vec<String> = r["rss_after_scrapes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}: {:.2}",
                    u(&p["scrapes"]),
                    p["rss_growth_bytes"].as_i64().unwrap_or(0) as f64 / (1024.0 * 1024.0)
                )
            })
            .collect();
        println!("{:>8}  {}", u(&r["size"]), points.join("   "));
    }
    print_per_cloud(
        results,
        "warm monitor calls ÷ minimum",
        ["warm_monitor_calls", "minimum", "ratio"],
    );
    print_per_cloud(
        results,
        "cold calls (discovery, metadata, monitor) ÷ cold minimum",
        ["cold_calls", "cold_minimum", "cold_ratio"],
    );
    println!(
        "\nsharding ({} series, {} jobs): max calls per replica ÷ (total ÷ N)",
        sharding["size"], sharding["jobs"]
    );
    for row in sharding["rows"].as_array().into_iter().flatten() {
        println!(
            "  N = {}: {:.2}  (calls {})",
            row["replicas"],
            row["max_over_mean"].as_f64().unwrap_or(0.0),
            row["calls"]
        );
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn main() {
    // `cargo bench` passes `--bench`; any libtest filter is ignored.
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("runtime: {e}")));
    runtime.block_on(async {
        let dir = std::env::temp_dir().join(format!("mce-estate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(format!("{}: {e}", dir.display())));
        let mappings = MappingSet::embedded().unwrap_or_else(|e| fail(format!("mappings: {e:?}")));

        // Calibration: one resource in every slot of one account and region.
        let unit = Layout {
            accounts_per_cloud: 1,
            regions_per_account: 1,
        };
        let unit_estate = unit.estate(|_| 1);
        let sim = start_sim(unit_estate.clone(), &o).await;
        let e = start_exporter(&dir, "calibration", &config_text(&unit_estate, &sim.url(), None), &[]).await;
        let (text, _) = scrape(&reqwest::Client::new(), &e).await;
        let series_of = series_per_resource(&text, &unit_estate);
        drop(e);
        drop(sim);

        let ticks = clock_ticks();
        let mut results = Vec::new();
        for size in &o.sizes {
            eprintln!("estate: measuring {size} series");
            results.push(measure_size(*size, &series_of, &mappings, &o, &dir, ticks).await);
        }
        let sharding = if o.shard_size > 0 {
            eprintln!("estate: sharding at {} series", o.shard_size);
            measure_sharding(o.shard_size, &series_of, &mappings, &o).await
        } else {
            json!({"size": 0, "jobs": 0, "rows": []})
        };
        print_table(&results, &sharding, &o);
        let report = json!({
            "quick": o.quick,
            "latency_ms": o.latency.iter().map(|(c, l)| (c.as_str().to_string(), l.as_millis() as u64)).collect::<BTreeMap<_, _>>(),
            "jitter_ms": o.jitter.as_millis() as u64,
            "monitor_quota": o.quota,
            "series_per_resource": series_of.iter().map(|((c, p), n)| (format!("{c}/{p}"), *n)).collect::<BTreeMap<_, _>>(),
            "sizes": results,
            "sharding": sharding,
        });
        let path = target_dir().join("estate.json");
        match std::fs::File::create(&path).and_then(|mut f| {
            f.write_all(serde_json::to_string_pretty(&report).unwrap_or_default().as_bytes())
        }) {
            Ok(()) => println!("\nwritten: {}", path.display()),
            Err(e) => eprintln!("estate: {}: {e}", path.display()),
        }
        // A run whose jobs failed measured something else: say so with the exit status.
        let failed: u64 = results
            .iter()
            .map(|r| r["failed_jobs_cold"].as_u64().unwrap_or(0) + r["failed_jobs_warm"].as_u64().unwrap_or(0))
            .sum();
        if failed > 0 {
            fail(format!("{failed} jobs failed; the exporter logs are in {}", dir.display()));
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
