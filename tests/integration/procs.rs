//! Real processes for the tests that run the built binary: the simulator and exporters as
//! child processes killed when the test ends, their logs shown when a wait times out, and the
//! exposition helpers to compare what they export.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use multicloud_exporter::config::SimulatorAccount;
use multicloud_exporter::sim::estate::Estate;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_multicloud-exporter");
pub const HEADLESS_NAME: &str = "mce-headless.monitoring.svc.cluster.local";

/// A child process killed when the test ends, its output in a log file shown on failure.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Proc {
    pub(crate) fn start(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Proc::spawn(Path::new(BIN), name, dir, args, env)
    }

    pub(crate) fn spawn(
        program: &Path,
        name: &str,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .env_remove("CLUSTER_DISCOVERY")
            .env_remove("CLUSTER_WORKERS")
            .env_remove("CLUSTER_INDEX")
            .env_remove("POD_IP")
            .env_remove("POD_NAME");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mce-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn free_udp_port() -> u16 {
    loop {
        let p = free_port("127.0.0.1");
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub(crate) async fn get(url: &str) -> Option<(u16, String)> {
    let r = client().get(url).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

pub(crate) async fn post(url: &str) {
    client().post(url).send().await.unwrap();
}

/// POST a JSON body (the simulator's `/-/faults`); panics unless it is accepted.
pub(crate) async fn post_json(url: &str, body: &str) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
}

/// Wait (up to 90 s in all) until `check` holds; panic with `what` and the logs otherwise.
pub(crate) async fn wait_for<F, Fut>(what: &str, procs: &[&Proc], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polling = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(90), polling)
        .await
        .is_err()
    {
        let logs: Vec<String> = procs.iter().map(|p| p.log()).collect();
        panic!("timed out waiting for {what}\n{}", logs.join("\n----\n"));
    }
}

/// An exporter replica (or the unsharded exporter) and its address.
pub(crate) struct Exporter {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) proc: Proc,
}

pub(crate) struct Fleet {
    pub(crate) dir: PathBuf,
    pub(crate) sim_url: String,
    pub(crate) sim: Proc,
}

impl Fleet {
    pub(crate) async fn start(name: &str) -> Fleet {
        Fleet::start_with(name, &[]).await
    }

    /// A fleet whose simulator takes extra arguments (`--latency-ms N`).
    pub(crate) async fn start_with(name: &str, sim_args: &[&str]) -> Fleet {
        let dir = scratch(name);
        let port = free_port("127.0.0.1");
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["sim", "--web.listen-address", &addr];
        args.extend_from_slice(sim_args);
        let sim = Proc::start("sim", &dir, &args, &[]);
        let sim_url = format!("http://{addr}");
        let calls = format!("{sim_url}/-/calls");
        wait_for("the simulator", &[&sim], || async {
            get(&calls).await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        Fleet { dir, sim_url, sim }
    }

    /// A config for the built-in estate with the given `[cluster]` table.
    pub(crate) fn config(&self, name: &str, cluster: &str) -> PathBuf {
        let text = self.config_text("", cluster, |_| true);
        self.write(name, &text)
    }

    /// Write a config file.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A config for the accounts of the built-in estate that `keep` keeps (their regions may be
    /// changed), with `server` lines added to `[server]` and the given `[cluster]` table.
    pub(crate) fn config_text(
        &self,
        server: &str,
        cluster: &str,
        keep: impl Fn(&mut SimulatorAccount) -> bool,
    ) -> String {
        let mut text = format!(
            "[server]\nscrape_interval = \"60s\"\nscrape_timeout = \"50s\"\nresult_cache_ttl = \"0s\"\n{server}\n\n[cluster]\n{cluster}\n"
        );
        for mut a in Estate::builtin().simulator_accounts() {
            if !keep(&mut a) {
                continue;
            }
            text.push_str(&a.config_toml(&self.sim_url));
        }
        text
    }

    /// `serve` on `addr` with `config`, the fleet's `web.yml` and `extra` arguments.
    pub(crate) fn serve_with_web(
        &self,
        name: &str,
        addr: &str,
        config: &Path,
        extra: &[&str],
    ) -> Proc {
        let web = self.dir.join("web.yml");
        let mut args = vec![
            "serve",
            "--config.file",
            config.to_str().unwrap(),
            "--web.listen-address",
            addr,
            "--web.config.file",
            web.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Proc::start(name, &self.dir, &args, &[])
    }

    pub(crate) fn exporter(
        &self,
        name: &str,
        ip: &str,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Exporter {
        let addr = format!("{ip}:{}", free_port(ip));
        let proc = Proc::start(
            name,
            &self.dir,
            &[
                "serve",
                "--config.file",
                config.to_str().unwrap(),
                "--web.listen-address",
                &addr,
            ],
            env,
        );
        Exporter {
            name: name.into(),
            url: format!("http://{addr}"),
            proc,
        }
    }

    pub(crate) async fn calls(&self) -> BTreeMap<(String, String, String), u64> {
        let (_, body) = get(&format!("{}/-/calls", self.sim_url)).await.unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut out = BTreeMap::new();
        for (cloud, accounts) in v.as_object().unwrap() {
            for (account, apis) in accounts.as_object().unwrap() {
                for (api, n) in apis.as_object().unwrap() {
                    out.insert(
                        (cloud.clone(), account.clone(), api.clone()),
                        n.as_u64().unwrap(),
                    );
                }
            }
        }
        out
    }

    /// The cloud calls one scrape of `e` makes, alone. It starts a second after the previous
    /// one ended, so the simulator's per-second quota window holds none of the previous calls
    /// (each replica paces its own calls below the quota, but two back to back could pass it).
    pub(crate) async fn calls_of_scrape(
        &self,
        e: &Exporter,
    ) -> BTreeMap<(String, String, String), u64> {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        post(&format!("{}/-/reset", self.sim_url)).await;
        scrape(e).await;
        self.calls().await
    }
}

pub(crate) async fn scrape(e: &Exporter) -> String {
    let (status, body) = get(&format!("{}/metrics", e.url)).await.unwrap();
    assert_eq!(status, 200, "{}: {body}\n{}", e.name, e.proc.log());
    body
}

pub(crate) async fn ready(e: &Exporter) -> u16 {
    get(&format!("{}/-/ready", e.url))
        .await
        .map(|(s, _)| s)
        .unwrap_or(0)
}

pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A series with its empty labels dropped: Prometheus stores `tag_env=""` as no label at all, and
/// `multicloud_resource_info` carries a label for every tag key its replica saw, so replicas
/// with different resources write the same series with different empty labels.
pub(crate) fn without_empty_labels(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_string();
    };
    let mut kept = Vec::new();
    let mut chars = rest.trim_end_matches('}').chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        chars.next(); // the opening quote
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    value.push(c);
                    value.extend(chars.next());
                }
                '"' => break,
                _ => value.push(c),
            }
        }
        chars.next_if_eq(&',');
        if !value.is_empty() {
            kept.push(format!("{key}=\"{value}\""));
        }
    }
    format!("{name}{{{}}}", kept.join(","))
}

/// The series an exporter shares out: every cloud family, and per job its success, its
/// resource count and its resources' info. Series name with labels → value.
pub(crate) fn business(text: &str) -> BTreeMap<String, String> {
    let per_job = [
        "multicloud_scrape_success{",
        "multicloud_discovered_resources{",
        "multicloud_resource_info{",
    ];
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|l| !l.starts_with("multicloud_") || per_job.iter().any(|p| l.starts_with(p)))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((without_empty_labels(series), value.to_string()))
        })
        .collect()
}

/// The jobs (cloud, account, region, product) whose success an exposition reports.
pub(crate) fn jobs_of(text: &str) -> BTreeSet<String> {
    business(text)
        .into_keys()
        .filter(|s| s.starts_with("multicloud_scrape_success{"))
        .collect()
}

/// Send SIGHUP (dnsmasq re-reads its hosts files; the exporter reloads its config).
pub(crate) fn hang_up(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The Prometheus binary (Debian's `prometheus`), or `None` with the reason printed where a test
/// may skip; under `CI` a missing one fails the test.
pub(crate) fn prometheus_binary() -> Option<PathBuf> {
    let found = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("prometheus is missing: .ci/run installs the Debian package `prometheus`");
        }
        eprintln!("skipped: no prometheus binary (apt-get install prometheus)");
    }
    found
}

/// Prometheus started with `config` (its YAML) in the fleet's directory, on a free port; returns
/// the process and its `host:port`.
pub(crate) fn start_prometheus(prometheus: &Path, fleet: &Fleet, config: &str) -> (Proc, String) {
    let config_path = fleet.dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let proc = Proc::spawn(
        prometheus,
        "prometheus",
        &fleet.dir,
        &[
            &format!("--config.file={}", config_path.display()),
            &format!("--storage.tsdb.path={}", fleet.dir.join("tsdb").display()),
            &format!("--web.listen-address={addr}"),
        ],
        &[],
    );
    (proc, addr)
}
