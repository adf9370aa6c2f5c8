//! The fleet, with real processes: one `multicloud-exporter sim` and several
//! `multicloud-exporter serve` replicas sharing its estate through live membership (a members
//! file; a headless name served by a real dnsmasq), next to one unsharded exporter. Each round
//! checks that the replicas together export exactly the unsharded exporter's series, none twice,
//! and that each replica's cloud calls (the simulator's `/-/calls`, one replica scraped at a
//! time) are its own share: they sum to the unsharded exporter's and match what
//! `multicloud-exporter shard` says each member costs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::procs::*;

/// Scrape the replicas and the unsharded exporter together until their values come from the
/// same datapoints (a round that straddles the moment the newest complete datapoint moves on is
/// repeated: on a loaded machine a round can take a good part of a minute, so up to ten rounds),
/// then check the replicas cover the unsharded
/// exporter's series exactly once. Returns each replica's series.
async fn check_coverage(
    replicas: &[&Exporter],
    single: &Exporter,
) -> Vec<BTreeMap<String, String>> {
    let mut last_diff = String::new();
    for _ in 0..10 {
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
