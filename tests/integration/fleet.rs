//! The fleet, with real processes: one `multicloud-exporter sim` and several
//! `multicloud-exporter serve` replicas sharing its estate through live membership (a members
//! file; a headless name served by a real dnsmasq), next to one unsharded exporter. Each round
//! checks that the replicas together export exactly the unsharded exporter's series, none twice,
//! and that each replica's cloud calls (the simulator's `/-/calls`, one replica scraped at a
//! time) are its own share: they sum to the unsharded exporter's and match what
//! `multicloud-exporter shard` says each member costs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use multicloud_exporter::sim::estate::Estate;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_multicloud-exporter");
const HEADLESS_NAME: &str = "mce-headless.monitoring.svc.cluster.local";

/// A child process killed when the test ends, its output in a log file shown on failure.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Proc::spawn(Path::new(BIN), name, dir, args, env)
    }

    fn spawn(program: &Path, name: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mce-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    loop {
        let p = free_port("127.0.0.1");
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = client().get(url).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

async fn post(url: &str) {
    client().post(url).send().await.unwrap();
}

/// Wait (up to 90 s in all) until `check` holds; panic with `what` and the logs otherwise.
async fn wait_for<F, Fut>(what: &str, procs: &[&Proc], mut check: F)
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
struct Exporter {
    name: String,
    url: String,
    proc: Proc,
}

struct Fleet {
    dir: PathBuf,
    sim_url: String,
    sim: Proc,
}

impl Fleet {
    async fn start(name: &str) -> Fleet {
        let dir = scratch(name);
        let port = free_port("127.0.0.1");
        let addr = format!("127.0.0.1:{port}");
        let sim = Proc::start("sim", &dir, &["sim", "--web.listen-address", &addr], &[]);
        let sim_url = format!("http://{addr}");
        let calls = format!("{sim_url}/-/calls");
        wait_for("the simulator", &[&sim], || async {
            get(&calls).await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        Fleet { dir, sim_url, sim }
    }

    /// A config for the built-in estate with the given `[cluster]` table.
    fn config(&self, name: &str, cluster: &str) -> PathBuf {
        let mut text = format!(
            "[server]\nscrape_interval = \"60s\"\nscrape_timeout = \"50s\"\nresult_cache_ttl = \"0s\"\n\n[cluster]\n{cluster}\n"
        );
        for a in Estate::builtin().simulator_accounts() {
            let regions: Vec<String> = a.regions.iter().map(|r| format!("{r:?}")).collect();
            let products: Vec<String> = a
                .cloud
                .products()
                .iter()
                .map(|p| format!("{:?}", p.as_str()))
                .collect();
            text.push_str(&format!(
                "\n[[accounts]]\ncloud = {:?}\naccount_id = {:?}\naccess_key_id = {:?}\naccess_key_secret = {:?}\nregions = [{}]\nproducts = [{}]\nendpoint = {:?}\n",
                a.cloud.as_str(),
                a.account_id,
                a.access_key_id,
                a.access_key_secret,
                regions.join(", "),
                products.join(", "),
                self.sim_url
            ));
        }
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn exporter(&self, name: &str, ip: &str, config: &Path, env: &[(&str, &str)]) -> Exporter {
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

    async fn calls(&self) -> BTreeMap<(String, String, String), u64> {
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
    async fn calls_of_scrape(&self, e: &Exporter) -> BTreeMap<(String, String, String), u64> {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        post(&format!("{}/-/reset", self.sim_url)).await;
        scrape(e).await;
        self.calls().await
    }
}

async fn scrape(e: &Exporter) -> String {
    let (status, body) = get(&format!("{}/metrics", e.url)).await.unwrap();
    assert_eq!(status, 200, "{}: {body}\n{}", e.name, e.proc.log());
    body
}

async fn ready(e: &Exporter) -> u16 {
    get(&format!("{}/-/ready", e.url))
        .await
        .map(|(s, _)| s)
        .unwrap_or(0)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A series with its empty labels dropped: Prometheus stores `tag_env=""` as no label at all, and
/// `multicloud_resource_info` carries a label for every tag key its replica saw, so replicas
/// with different resources write the same series with different empty labels.
fn without_empty_labels(series: &str) -> String {
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
fn business(text: &str) -> BTreeMap<String, String> {
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
fn jobs_of(text: &str) -> BTreeSet<String> {
    business(text)
        .into_keys()
        .filter(|s| s.starts_with("multicloud_scrape_success{"))
        .collect()
}

/// Scrape the replicas and the unsharded exporter together until their values come from the
/// same datapoints (a round that straddles the moment the newest complete datapoint moves on is
/// repeated; three in a row cannot straddle it), then check the replicas cover the unsharded
/// exporter's series exactly once. Returns each replica's series.
async fn check_coverage(
    replicas: &[&Exporter],
    single: &Exporter,
) -> Vec<BTreeMap<String, String>> {
    let mut last_diff = String::new();
    for _ in 0..3 {
        let first = scrape(single).await;
        let shards = futures_util::future::join_all(replicas.iter().map(|e| scrape(e))).await;
        let last = scrape(single).await;
        let (before, after) = (business(&first), business(&last));
        if before != after {
            last_diff = "the unsharded exporter's values moved during the round".into();
            continue;
        }
        let per_replica: Vec<BTreeMap<String, String>> =
            shards.iter().map(|t| business(t)).collect();
        let mut union = BTreeMap::new();
        for (i, series) in per_replica.iter().enumerate() {
            for (s, v) in series {
                if let Some(prev) = union.insert(s.clone(), v.clone()) {
                    panic!(
                        "{s} is exported by {} and another replica (values {prev} and {v})",
                        replicas[i].name
                    );
                }
            }
        }
        if union == before {
            return per_replica;
        }
        let missing: Vec<&String> = before
            .keys()
            .filter(|k| !union.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<&String> = union
            .keys()
            .filter(|k| !before.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<&String> = union
            .iter()
            .filter(|(k, v)| before.get(*k).is_some_and(|b| b != *v))
            .map(|(k, _)| k)
            .take(5)
            .collect();
        last_diff = format!(
            "{} series, {} in the union; missing {missing:?}, extra {extra:?}, differing {differ:?}",
            before.len(),
            union.len()
        );
    }
    panic!("the replicas do not cover the unsharded exporter: {last_diff}");
}

type Calls = BTreeMap<(String, String, String), u64>;

fn sum(calls: &[Calls]) -> Calls {
    let mut out = Calls::new();
    for c in calls {
        for (k, n) in c {
            *out.entry(k.clone()).or_insert(0) += n;
        }
    }
    out
}

fn total(c: &Calls) -> u64 {
    c.values().sum()
}

/// One scrape of each replica alone, then of the unsharded exporter (caches warm, as in every
/// scrape after the first): each replica calls only for the accounts of the jobs it reports;
/// with region-level keys their calls add up to the unsharded exporter's, API by API; and each
/// replica's total is what `shard` measured for its member name.
async fn check_calls(
    fleet: &Fleet,
    replicas: &[&Exporter],
    members: &[&str],
    single: &Exporter,
    config: &Path,
    region_level: bool,
) {
    let mut per_replica = Vec::new();
    for e in replicas {
        let calls = fleet.calls_of_scrape(e).await;
        let text = scrape(e).await;
        let accounts: BTreeSet<String> = jobs_of(&text)
            .iter()
            .filter_map(|s| {
                let at = s.find("account_id=\"")? + "account_id=\"".len();
                Some(s[at..].split('"').next()?.to_string())
            })
            .collect();
        for (cloud, account, api) in calls.keys() {
            assert!(
                accounts.contains(account),
                "{} called {cloud} {api} for account {account}, which none of its jobs is in ({accounts:?})",
                e.name
            );
        }
        per_replica.push(calls);
    }
    let single_calls = fleet.calls_of_scrape(single).await;
    assert!(total(&single_calls) > 0);
    if region_level {
        assert_eq!(
            sum(&per_replica),
            single_calls,
            "the replicas' calls do not add up to the unsharded exporter's"
        );
    } else {
        // Product-level keys split a region's products over replicas, so AWS, which packs a
        // region's queries of every product into one GetMetricData call, makes more calls in
        // all; every other cloud's calls are per product and add up exactly.
        let (aws_sum, rest_sum): (Calls, Calls) = sum(&per_replica)
            .into_iter()
            .partition(|((c, _, _), _)| c == "aws");
        let (aws_single, rest_single): (Calls, Calls) = single_calls
            .clone()
            .into_iter()
            .partition(|((c, _, _), _)| c == "aws");
        assert_eq!(
            rest_sum, rest_single,
            "the replicas' calls do not add up to the unsharded exporter's"
        );
        assert!(total(&aws_sum) >= total(&aws_single) && total(&aws_single) > 0);
    }
    let shard = tokio::process::Command::new(BIN)
        .args([
            "shard",
            "--config.file",
            config.to_str().unwrap(),
            "--members",
            &members.join(","),
            "--json",
        ])
        .env_remove("CLUSTER_DISCOVERY")
        .env_remove("POD_IP")
        .env_remove("POD_NAME")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), shard)
        .await
        .expect("shard did not finish within 300 s")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let planned: Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned: BTreeMap<String, u64> = planned["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["calls_per_scrape_total"].as_u64().unwrap(),
            )
        })
        .collect();
    for (i, member) in members.iter().enumerate() {
        assert_eq!(
            planned[*member],
            total(&per_replica[i]),
            "shard says member {member} makes {} calls per scrape; its replica made {}",
            planned[*member],
            total(&per_replica[i])
        );
    }
}

/// Start a replica per (name, listen IP, identity variable, its value) on `config`, and one
/// unsharded exporter; wait until all are ready.
async fn start_fleet(
    fleet: &Fleet,
    config: &Path,
    specs: &[(String, String, &str, String)],
) -> (Vec<Exporter>, Exporter) {
    let replicas: Vec<Exporter> = specs
        .iter()
        .map(|(name, ip, var, value)| fleet.exporter(name, ip, config, &[(var, value)]))
        .collect();
    let single = fleet.exporter("single", "127.0.0.1", &fleet.config("single", ""), &[]);
    let procs: Vec<&Proc> = replicas
        .iter()
        .map(|e| &e.proc)
        .chain([&single.proc, &fleet.sim])
        .collect();
    for e in replicas.iter().chain([&single]) {
        wait_for(&format!("{} ready", e.name), &procs, || async {
            ready(e).await == 200
        })
        .await;
    }
    (replicas, single)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_a_members_file_cover_the_estate_once() {
    let fleet = Fleet::start("file").await;
    let members_file = fleet.dir.join("members");
    std::fs::write(
        &members_file,
        "# the fleet\nexporter-0\nexporter-1\nexporter-2\n",
    )
    .unwrap();
    let sharded = fleet.config(
        "sharded",
        &format!(
            "discovery = \"file\"\nfile = {:?}\nrefresh = \"200ms\"\nshard_by = \"region\"",
            members_file.to_str().unwrap()
        ),
    );
    let specs: Vec<(String, String, &str, String)> = (0..3)
        .map(|i| {
            let name = format!("exporter-{i}");
            (name.clone(), "127.0.0.1".into(), "POD_NAME", name)
        })
        .collect();
    let (replicas, single) = start_fleet(&fleet, &sharded, &specs).await;
    let procs: Vec<&Proc> = replicas
        .iter()
        .map(|e| &e.proc)
        .chain([&single.proc, &fleet.sim])
        .collect();
    let all: Vec<&Exporter> = replicas.iter().collect();
    let shares = check_coverage(&all, &single).await;
    for (e, s) in replicas.iter().zip(&shares) {
        assert!(
            s.keys()
                .any(|k| k.starts_with("multicloud_scrape_success{")),
            "{} owns no job",
            e.name
        );
    }
    let text = scrape(&replicas[0]).await;
    assert_eq!(metric(&text, "multicloud_shard_members"), Some(3.0));
    assert_eq!(
        metric(
            &text,
            "multicloud_shard_info{discovery=\"file\",self=\"exporter-0\"}"
        ),
        Some(1.0)
    );
    check_calls(
        &fleet,
        &all,
        &["exporter-0", "exporter-1", "exporter-2"],
        &single,
        &sharded,
        true,
    )
    .await;

    // Scale down: exporter-2 leaves the file. It stops owning anything and says why; the other
    // two take its jobs.
    std::fs::write(&members_file, "exporter-0\nexporter-1\n").unwrap();
    let gone = &replicas[2];
    wait_for("exporter-2 to leave", &procs, || async {
        ready(gone).await == 503
    })
    .await;
    let (_, why) = get(&format!("{}/-/ready", gone.url)).await.unwrap();
    assert_eq!(
        why,
        "not ready: this replica (exporter-2) is not among the 2 members, so it owns nothing\n"
    );
    for e in &replicas[..2] {
        wait_for("the new membership", &procs, || async {
            metric(&scrape(e).await, "multicloud_shard_members") == Some(2.0)
        })
        .await;
    }
    assert!(
        business(&scrape(gone).await).is_empty(),
        "a replica outside the membership still exports series"
    );
    let remaining: Vec<&Exporter> = replicas[..2].iter().collect();
    check_coverage(&remaining, &single).await;
    let text = scrape(&replicas[0]).await;
    assert_eq!(
        metric(&text, "multicloud_shard_membership_changes_total"),
        Some(1.0)
    );
    check_calls(
        &fleet,
        &remaining,
        &["exporter-0", "exporter-1"],
        &single,
        &sharded,
        true,
    )
    .await;
}

fn dnsmasq() -> Option<PathBuf> {
    ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_headless_dns_cover_the_estate_once() {
    let Some(dnsmasq_bin) = dnsmasq() else {
        if std::env::var_os("CI").is_some() {
            panic!("dnsmasq is missing: .ci/run installs dnsmasq-base; the headless fleet test cannot run");
        }
        eprintln!("skipped: dnsmasq is not installed (apt-get install dnsmasq-base)");
        return;
    };
    let fleet = Fleet::start("dns").await;
    let hosts = fleet.dir.join("members.hosts");
    let ips = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
    let write_hosts = |ips: &[&str]| {
        let text: String = ips
            .iter()
            .map(|ip| format!("{ip} {HEADLESS_NAME}\n"))
            .collect();
        std::fs::write(&hosts, text).unwrap();
    };
    write_hosts(&ips);
    let dns_port = free_udp_port();
    let dns = Proc::spawn(
        &dnsmasq_bin,
        "dnsmasq",
        &fleet.dir,
        &[
            "--keep-in-foreground",
            &format!("--port={dns_port}"),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-negcache",
            "--local-ttl=1",
            "--pid-file=",
            "--user=root",
            "--log-facility=-",
            "--local=/cluster.local/",
            &format!("--addn-hosts={}", hosts.display()),
        ],
        &[],
    );
    let config = fleet.config(
        "headless",
        &format!(
            "discovery = \"headless\"\nservice = \"{HEADLESS_NAME}\"\ndns_server = \"127.0.0.1:{dns_port}\"\nrefresh = \"200ms\""
        ),
    );
    let specs: Vec<(String, String, &str, String)> = ips
        .iter()
        .map(|ip| {
            (
                format!("exporter-{ip}"),
                ip.to_string(),
                "POD_IP",
                ip.to_string(),
            )
        })
        .collect();
    let (replicas, single) = start_fleet(&fleet, &config, &specs).await;
    let procs: Vec<&Proc> = replicas
        .iter()
        .map(|e| &e.proc)
        .chain([&single.proc, &fleet.sim, &dns])
        .collect();
    let all: Vec<&Exporter> = replicas.iter().collect();
    check_coverage(&all, &single).await;
    let text = scrape(&replicas[1]).await;
    assert_eq!(metric(&text, "multicloud_shard_members"), Some(3.0));
    assert_eq!(
        metric(
            &text,
            "multicloud_shard_info{discovery=\"headless\",self=\"127.0.0.12\"}"
        ),
        Some(1.0)
    );
    check_calls(&fleet, &all, &ips, &single, &config, false).await;

    // The DNS answer changes live: 127.0.0.13 is gone.
    write_hosts(&ips[..2]);
    hang_up(dns.child.id());
    let gone = &replicas[2];
    wait_for("127.0.0.13 to leave", &procs, || async {
        ready(gone).await == 503
    })
    .await;
    for e in &replicas[..2] {
        wait_for("the new membership", &procs, || async {
            metric(&scrape(e).await, "multicloud_shard_members") == Some(2.0)
        })
        .await;
    }
    let remaining: Vec<&Exporter> = replicas[..2].iter().collect();
    check_coverage(&remaining, &single).await;

    // The DNS server goes away: the lookups fail, are counted, and the last membership stays —
    // no replica falls back to collecting everything.
    let errors = "multicloud_shard_membership_errors_total{source=\"headless\"}";
    let mut before = Vec::new();
    for e in &replicas[..2] {
        before.push(metric(&scrape(e).await, errors).unwrap());
    }
    drop(procs);
    drop(dns);
    let procs: Vec<&Proc> = replicas
        .iter()
        .map(|e| &e.proc)
        .chain([&single.proc, &fleet.sim])
        .collect();
    for (e, was) in replicas[..2].iter().zip(before) {
        wait_for("failed lookups to be counted", &procs, || async {
            metric(&scrape(e).await, errors).is_some_and(|n| n >= was + 2.0)
        })
        .await;
        assert_eq!(
            metric(&scrape(e).await, "multicloud_shard_members"),
            Some(2.0)
        );
        assert_eq!(ready(e).await, 200);
    }
    check_coverage(&remaining, &single).await;
    assert!(business(&scrape(gone).await).is_empty());
}

/// Send SIGHUP (dnsmasq re-reads its hosts files).
fn hang_up(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}
