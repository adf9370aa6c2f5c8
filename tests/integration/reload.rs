//! Hot reload and the admin API, with the real binary: a config edited step by step (an account
//! added, a region dropped, an unknown key, admin without users, a fix) and applied through
//! SIGHUP, `POST /-/reload` and the file's modification time. After every good reload the
//! exporter exports exactly what a freshly started exporter exports for the same file; after a
//! bad one it keeps serving the previous config and says so in its reload metrics.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use multicloud_exporter::cloud::Cloud;
use multicloud_exporter::config::SimulatorAccount;
use multicloud_exporter::sim::estate::Estate;
use serde_json::Value;

use super::procs::*;
use multicloud_exporter::scrape::{self, JobFilter};
use tokio::time::Instant;

const ALIYUN: &str = "1234567890123456";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `POST /-/reload` (or any admin call) with an optional Authorization header.
async fn admin(method: &str, url: &str, auth: Option<&str>) -> (u16, Option<String>, String) {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut req = match method {
        "POST" => c.post(url),
        _ => c.get(url),
    };
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, r.text().await.unwrap())
}

/// Whether the exporter exports what a fresh exporter on `config_text` exports (three tries, as
/// a round may straddle the moment the newest datapoint moves on).
async fn same_as_fresh(fleet: &Fleet, e: &Exporter, config_text: &str, step: &str) {
    let path = fleet.write(&format!("fresh-{step}"), config_text);
    let fresh = fleet.exporter(&format!("fresh-{step}"), "127.0.0.1", &path, &[]);
    wait_for(
        &format!("fresh exporter for {step}"),
        &[&fresh.proc],
        || async { ready(&fresh).await == 200 },
    )
    .await;
    let mut diff = String::new();
    for _ in 0..3 {
        let before = business(&scrape(&fresh).await);
        let got = business(&scrape(e).await);
        let after = business(&scrape(&fresh).await);
        if before != after {
            continue;
        }
        if got == before {
            return;
        }
        let missing: Vec<&String> = before
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(3)
            .collect();
        let extra: Vec<&String> = got
            .keys()
            .filter(|k| !before.contains_key(*k))
            .take(3)
            .collect();
        diff = format!("missing {missing:?}, extra {extra:?}");
    }
    panic!(
        "{step}: the reloaded exporter differs from a fresh one: {diff}\n{}",
        e.proc.log()
    );
}

fn reloads(text: &str, trigger: &str, result: &str) -> f64 {
    metric(
        text,
        &format!("multicloud_config_reloads_total{{result=\"{result}\",trigger=\"{trigger}\"}}"),
    )
    .unwrap_or(0.0)
}

fn write(path: &Path, text: &str) {
    // Replace the file as configuration management does: write aside, then rename over it.
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_apply_good_configs_and_keep_serving_through_bad_ones() {
    let fleet = Fleet::start("reload").await;
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let users = format!("[server.admin_auth.users]\nalice = \"{hash}\"\n");
    let server = |reload_interval: &str| {
        format!("reload_interval = \"{reload_interval}\"\n\n[server.admin_auth]\nenabled = true\n{users}")
    };
    let aliyun = |a: &mut SimulatorAccount| a.account_id == ALIYUN;
    let with_tencent =
        |a: &mut SimulatorAccount| a.account_id == ALIYUN || a.cloud == Cloud::Tencent;
    let v1 = fleet.config_text(&server("0s"), "", aliyun);
    let path = fleet.write("exporter", &v1);
    let e = fleet.exporter("exporter", "127.0.0.1", &path, &[]);
    wait_for("the exporter", &[&e.proc], || async {
        ready(&e).await == 200
    })
    .await;
    same_as_fresh(&fleet, &e, &v1, "start").await;
    let t = scrape(&e).await;
    assert_eq!(
        metric(&t, "multicloud_config_last_reload_successful"),
        Some(1.0)
    );
    let started = metric(
        &t,
        "multicloud_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();

    // The admin API: closed without or with wrong credentials, JSON with the right ones.
    let reload_url = format!("{}/-/reload", e.url);
    let (status, challenge, _) = admin("POST", &reload_url, None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some("Basic realm=\"multicloud-exporter admin\""))
    );
    let (status, _, _) = admin("POST", &reload_url, Some(&basic("alice", "wrong"))).await;
    assert_eq!(status, 401);
    let (status, _, _) = admin(
        "GET",
        &format!("{}/api/cluster", e.url),
        Some(&basic("mallory", "s3cret")),
    )
    .await;
    assert_eq!(status, 401);
    let alice = basic("alice", "s3cret");
    let (status, _, body) = admin("GET", &format!("{}/api/cluster", e.url), Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    let cluster: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cluster["discovery"], "none");
    assert_eq!(cluster["members"], serde_json::json!(["0"]));
    assert_eq!(cluster["self"], "0");
    assert_eq!(cluster["ready"], true);
    let jobs = cluster["jobs"].as_u64().unwrap();
    assert_eq!(cluster["owned_jobs"].as_array().unwrap().len() as u64, jobs);
    let (status, _, body) = admin(
        "GET",
        &format!("{}/api/discovery/status", e.url),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let st: Value = serde_json::from_str(&body).unwrap();
    let st_jobs = st["jobs"].as_array().unwrap();
    assert_eq!(st_jobs.len() as u64, jobs);
    for j in st_jobs {
        assert_eq!(j["cloud"], "aliyun");
        assert_eq!(j["account_id"], ALIYUN);
        assert_eq!(j["owned"], true);
        assert_eq!(j["last_scrape"]["success"], true, "{j}");
        assert_eq!(j["last_scrape"]["error_class"], Value::Null);
        let resources = j["discovery"]["resources"].as_u64().unwrap();
        let discovered = metric(
            &t,
            &format!(
                "multicloud_discovered_resources{{account_id=\"{ALIYUN}\",cloud_provider=\"aliyun\",product=\"{}\",region=\"{}\"}}",
                j["product"].as_str().unwrap(),
                j["region"].as_str().unwrap()
            ),
        );
        assert_eq!(Some(resources as f64), discovered, "{j}");
    }
    let (status, _, body) = admin(
        "GET",
        &format!("{}/api/discovery/resources?product=clb", e.url),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let res: Value = serde_json::from_str(&body).unwrap();
    let listed = res["resources"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        t.lines()
            .filter(|l| l.starts_with("multicloud_resource_info{")
                && l.contains("resource_type=\"clb\""))
            .count()
    );
    assert!(listed
        .iter()
        .all(|r| r["product"] == "clb" && r["tags"].is_object()));
    assert!(
        !body.contains("DemoSecretKey"),
        "a secret in the admin API: {body}"
    );
    let (status, _, body) = admin(
        "GET",
        &format!("{}/api/discovery/resources?product=elb", e.url),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // SIGHUP: the Tencent account is added.
    let v2 = fleet.config_text(&server("0s"), "", with_tencent);
    write(&path, &v2);
    hang_up(e.proc.child.id());
    wait_for("the SIGHUP reload", &[&e.proc], || async {
        reloads(&scrape(&e).await, "sighup", "success") == 1.0
    })
    .await;
    same_as_fresh(&fleet, &e, &v2, "sighup").await;

    // POST /-/reload: the Aliyun account loses a region.
    let one_region = |a: &mut SimulatorAccount| {
        if a.account_id == ALIYUN {
            a.regions.truncate(1);
        }
        a.account_id == ALIYUN || a.cloud == Cloud::Tencent
    };
    let v3 = fleet.config_text(&server("0s"), "", one_region);
    write(&path, &v3);
    let (status, _, body) = admin("POST", &reload_url, Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "success");
    assert_eq!(
        report["accounts_changed"],
        serde_json::json!([format!("aliyun/{ALIYUN}")])
    );
    assert_eq!(report["accounts_added"], serde_json::json!([]));
    same_as_fresh(&fleet, &e, &v3, "http").await;
    let good = metric(
        &scrape(&e).await,
        "multicloud_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();
    assert!(good > started, "{good} {started}");

    // A bad config: rejected with the key and the fix, the running one stays.
    write(&path, &format!("bogus = 1\n{v3}"));
    let (status, _, body) = admin("POST", &reload_url, Some(&alice)).await;
    assert_eq!(status, 400, "{body}");
    let rejected: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rejected["status"], "error");
    let errors = rejected["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("bogus: unknown key (allowed here: server, cluster, accounts)")),
        "{errors:?}"
    );
    let t = scrape(&e).await;
    assert_eq!(
        metric(&t, "multicloud_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &t,
            "multicloud_config_last_reload_success_timestamp_seconds"
        ),
        Some(good)
    );
    assert_eq!(reloads(&t, "http", "failure"), 1.0);
    same_as_fresh(&fleet, &e, &v3, "after-bad").await;

    // Admin enabled without users: never an open door, on reload as at start.
    let open = v3.replace(&users, "");
    write(&path, &open);
    let (status, _, body) = admin("POST", &reload_url, Some(&alice)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("server.admin_auth.users: the admin API is enabled without users"),
        "{body}"
    );
    let start = tokio::process::Command::new(BIN)
        .args([
            "serve",
            "--config.file",
            path.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), start)
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.admin_auth.users: the admin API is enabled without users"),
        "{stderr}"
    );

    // The file watcher: turned on by a reload, then an edit alone is applied.
    let v4 = fleet.config_text(&server("200ms"), "", one_region);
    write(&path, &v4);
    let (status, _, body) = admin("POST", &reload_url, Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    let v5 = fleet.config_text(&server("200ms"), "", aliyun);
    write(&path, &v5);
    wait_for("the file-change reload", &[&e.proc], || async {
        reloads(&scrape(&e).await, "file_change", "success") == 1.0
    })
    .await;
    same_as_fresh(&fleet, &e, &v5, "file").await;

    // The watcher off again first, so the next edit is applied by the POST below, not by the
    // watcher before it (which would leave the POST nothing to report); a check already
    // sleeping finds nothing new, as the POST restamps the files.
    let v5_off = fleet.config_text(&server("0s"), "", aliyun);
    write(&path, &v5_off);
    let (status, _, body) = admin("POST", &reload_url, Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(400)).await;

    // A setting that needs a restart is reported. (The listen address here comes from
    // --web.listen-address, which wins over the file, so changing it in the file changes nothing.)
    let v6 = fleet.config_text(&server("0s"), "", aliyun).replace(
        "[server]\n",
        "[server]\nlisten = \"127.0.0.1:1\"\nmax_connections = 10\n",
    );
    write(&path, &v6);
    let (status, _, body) = admin("POST", &reload_url, Some(&alice)).await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let restart = report["restart_needed"].as_array().unwrap();
    assert_eq!(restart.len(), 1, "{restart:?}");
    assert!(
        restart[0].as_str().unwrap()
            == "server.max_connections changed from 1024 to 10: takes effect after a restart",
        "{restart:?}"
    );
    assert_eq!(ready(&e).await, 200);
    assert!(!e.proc.log().contains("DemoSecretKey"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_in_flight_during_a_reload_finishes_on_its_config() {
    let fleet = Fleet::start_with("inflight", &["--latency-ms", "150"]).await;
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let server = format!(
        "reload_interval = \"0s\"\n\n[server.admin_auth]\nenabled = true\n[server.admin_auth.users]\nalice = \"{hash}\"\n"
    );
    let both = fleet.config_text(&server, "", |a| {
        a.account_id == ALIYUN || a.cloud == Cloud::Tencent
    });
    let path = fleet.write("exporter", &both);
    let e = fleet.exporter("exporter", "127.0.0.1", &path, &[]);
    wait_for("the exporter", &[&e.proc], || async {
        ready(&e).await == 200
    })
    .await;
    let scrape_url = format!("{}/metrics", e.url);
    let in_flight = tokio::spawn(async move {
        let r = get(&scrape_url).await;
        (r, std::time::Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    write(
        &path,
        &fleet.config_text(&server, "", |a| a.account_id == ALIYUN),
    );
    let (status, _, body) = admin(
        "POST",
        &format!("{}/-/reload", e.url),
        Some(&basic("alice", "s3cret")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let reloaded_at = std::time::Instant::now();
    let (answer, finished_at) = in_flight.await.unwrap();
    let (status, old) = answer.unwrap();
    assert!(
        finished_at > reloaded_at,
        "the scrape was over before the reload: nothing was proven"
    );
    assert_eq!(status, 200);
    // The scrape that started before the reload has every job of the old config, all good.
    let jobs: Vec<&str> = old
        .lines()
        .filter(|l| l.starts_with("multicloud_scrape_success{"))
        .collect();
    assert!(
        jobs.iter()
            .any(|l| l.contains("cloud_provider=\"tencent\"")),
        "{jobs:?}"
    );
    assert!(jobs.iter().all(|l| l.ends_with(" 1")), "{jobs:?}");
    // The next one is on the new config.
    let new = business(&scrape(&e).await);
    assert!(!new.keys().any(|k| k.contains("cloud_provider=\"tencent\"")));
    assert!(new.keys().any(|k| k.contains("cloud_provider=\"aliyun\"")));
}

#[tokio::test]
async fn a_reload_keeps_the_caches_of_unchanged_accounts_only() {
    use std::sync::Arc;
    let h = super::harness().await;
    super::collect(&h).await;
    let jobs_of =
        |a: &multicloud_exporter::config::AccountConfig| a.regions.len() * a.products.len();
    let old = &h.rt.config.accounts;
    assert_eq!(h.rt.discovery.len(), old.iter().map(jobs_of).sum::<usize>());
    let mut config = (*h.rt.config).clone();
    let removed = config.accounts.remove(1);
    config.accounts[0].regions.truncate(1);
    let changed = &old[0];
    let (new, stale) =
        h.rt.reloaded(Arc::new(config), h.rt.mappings.clone())
            .unwrap();
    // Nothing shared changes before the new runtime is in force.
    assert_eq!(h.rt.discovery.len(), old.iter().map(jobs_of).sum::<usize>());
    stale.drop_now();
    // The changed account starts afresh, the others keep their clients and caches.
    assert!(!Arc::ptr_eq(&new.providers[0], &h.rt.providers[0]));
    for i in 1..new.providers.len() {
        assert!(Arc::ptr_eq(&new.providers[i], &h.rt.providers[i + 1]));
    }
    assert_eq!(
        new.discovery.len(),
        old.iter().map(jobs_of).sum::<usize>() - jobs_of(changed) - jobs_of(&removed)
    );
    assert!(Arc::ptr_eq(&new.membership, &h.rt.membership));
    // Collecting on the new runtime discovers only the changed account's jobs again.
    h.sim.state.reset_calls();
    let snap = scrape::collect(
        Arc::new(new),
        &JobFilter::default(),
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    assert!(snap.jobs.iter().all(|j| j.success));
    assert_eq!(h.sim.state.calls_to("slb.DescribeLoadBalancers"), 1);
    assert_eq!(h.sim.state.calls_to("clb.DescribeLoadBalancers"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_credential_file_reloads_the_account() {
    // As a Kubernetes Secret mounted as files: the account's secret comes from a file, first a
    // wrong one (the cloud refuses it), then the right one written over it.
    let fleet = Fleet::start("reload-credentials").await;
    let account = Estate::builtin()
        .simulator_accounts()
        .into_iter()
        .find(|a| a.account_id == ALIYUN)
        .unwrap();
    let secret_file = fleet.dir.join("access_key_secret");
    write(&secret_file, "not-the-secret\n");
    let text = fleet
        .config_text("reload_interval = \"1s\"", "", |a| a.account_id == ALIYUN)
        .replace(
            &format!("access_key_secret = {:?}", account.access_key_secret),
            &format!(
                "access_key_secret_file = {:?}",
                secret_file.display().to_string()
            ),
        );
    assert!(text.contains("access_key_secret_file"), "{text}");
    let path = fleet.write("exporter", &text);
    let e = fleet.exporter("exporter", "127.0.0.1", &path, &[]);
    wait_for("the exporter", &[&e.proc], || async {
        ready(&e).await == 200
    })
    .await;
    let t = scrape(&e).await;
    assert!(
        t.lines()
            .filter(|l| l.starts_with("multicloud_scrape_success{"))
            .all(|l| l.ends_with(" 0")),
        "{t}"
    );
    assert!(t.contains("status=\"auth_error\""), "{t}");

    write(&secret_file, &format!("{}\n", account.access_key_secret));
    wait_for("the rotated secret to be reloaded", &[&e.proc], || async {
        let t = scrape(&e).await;
        reloads(&t, "file_change", "success") == 1.0
    })
    .await;
    let t = scrape(&e).await;
    let jobs: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("multicloud_scrape_success{"))
        .collect();
    assert!(!jobs.is_empty());
    assert!(jobs.iter().all(|l| l.ends_with(" 1")), "{t}");
}
