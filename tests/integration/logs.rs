//! No secret in any log line: the real binary at the `trace` level, in every log format, through
//! good scrapes, refused credentials, the admin API, BasicAuth and a reload — and every line
//! searched for every configured secret.

use std::time::Duration;

use base64::Engine;
use multicloud_exporter::sim::estate::Estate;

use super::procs::*;

const WRONG_SECRET: &str = "NotTheSecret-9f8e7d6c5b4a";
const TOKEN: &str = "StsTokenValue-0a1b2c3d4e5f";
const ADMIN_PASSWORD: &str = "admin-pw-7Hq2";
const SCRAPE_PASSWORD: &str = "scrape-pw-3Kd9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let fleet = Fleet::start("logs").await;
    let admin_hash = bcrypt::hash(ADMIN_PASSWORD, 4).unwrap();
    let scrape_hash = bcrypt::hash(SCRAPE_PASSWORD, 4).unwrap();
    let server = format!(
        "reload_interval = \"0s\"\n\n[server.admin_auth]\nenabled = true\n[server.admin_auth.users]\nalice = \"{admin_hash}\"\n"
    );
    let mut text = fleet.config_text(&server, "", |_| true);
    // One account with a wrong secret (refused: auth_error) and one with an STS token.
    let tencent = Estate::builtin()
        .simulator_accounts()
        .into_iter()
        .find(|a| a.cloud == multicloud_exporter::cloud::Cloud::Tencent)
        .unwrap();
    text = text.replacen(
        &format!("access_key_secret = {:?}", tencent.access_key_secret),
        &format!(
            "access_key_secret = {:?}\nsecurity_token = {TOKEN:?}",
            tencent.access_key_secret
        ),
        1,
    );
    let aliyun = Estate::builtin().simulator_accounts()[1].clone();
    text = text.replacen(
        &format!("access_key_secret = {:?}", aliyun.access_key_secret),
        &format!("access_key_secret = {WRONG_SECRET:?}"),
        1,
    );
    let config = fleet.write("exporter", &text);
    std::fs::write(
        fleet.dir.join("web.yml"),
        format!("basic_auth_users:\n  prometheus: \"{scrape_hash}\"\n"),
    )
    .unwrap();
    let mut logs = String::new();
    for format in ["text", "json", "logfmt"] {
        let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
        let e = fleet.serve_with_web(
            &format!("exporter-{format}"),
            &addr,
            &config,
            &["--log.level", "trace", "--log.format", format],
        );
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let url = format!("http://{addr}");
        wait_for("the exporter", &[&e], || async {
            c.get(format!("{url}/healthz"))
                .basic_auth("prometheus", Some(SCRAPE_PASSWORD))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        for _ in 0..2 {
            let r = c
                .get(format!("{url}/metrics"))
                .basic_auth("prometheus", Some(SCRAPE_PASSWORD))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body = r.text().await.unwrap();
            assert!(body.contains("multicloud_scrape_success{account_id=\"6543210987654321\",cloud_provider=\"aliyun\""));
            for secret in [WRONG_SECRET, TOKEN] {
                assert!(!body.contains(secret));
            }
        }
        let wrong = c
            .get(format!("{url}/metrics"))
            .basic_auth("prometheus", Some("guess"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        for path in ["/api/discovery/status", "/api/cluster"] {
            let r = c
                .get(format!("{url}{path}"))
                .basic_auth("alice", Some(ADMIN_PASSWORD))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body = r.text().await.unwrap();
            assert!(
                !body.contains(WRONG_SECRET) && !body.contains(TOKEN),
                "{body}"
            );
        }
        let r = c
            .post(format!("{url}/-/reload"))
            .basic_auth("alice", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        drop(e);
        logs.push_str(
            &std::fs::read_to_string(fleet.dir.join(format!("exporter-{format}.log"))).unwrap(),
        );
    }
    let once = tokio::process::Command::new(BIN)
        .args([
            "once",
            "--config.file",
            config.to_str().unwrap(),
            "--log.level",
            "trace",
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), once)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the refused account fails its jobs"
    );
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    logs.push_str(&String::from_utf8_lossy(&out.stdout));
    // The run did reach the interesting paths.
    assert!(
        logs.contains("auth_error"),
        "no refused credentials were logged"
    );
    assert!(
        logs.lines().count() > 100,
        "too little was logged to prove anything"
    );
    let basic =
        |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
    let mut secrets: Vec<String> = Estate::builtin()
        .simulator_accounts()
        .into_iter()
        .map(|a| a.access_key_secret)
        .collect();
    secrets.extend(
        [WRONG_SECRET, TOKEN, ADMIN_PASSWORD, SCRAPE_PASSWORD]
            .iter()
            .map(|s| s.to_string()),
    );
    secrets.push(basic("alice", ADMIN_PASSWORD));
    secrets.push(basic("prometheus", SCRAPE_PASSWORD));
    for secret in &secrets {
        for line in logs.lines() {
            assert!(
                !line.contains(secret.as_str()),
                "a secret in the log: {line}"
            );
        }
    }
}
