//! AWS against moto, an independent AWS emulator, with its signature checking on: the estate is
//! built through moto's own API (`tests/moto/setup.py`, boto3), CloudWatch holds constant
//! datapoints, and the exporter must print exactly those values with the right labels and
//! `code_name`; a wrong secret must give `auth_error`; AssumeRole through moto's STS must work.
//!
//! Needs `MOTO_VENV` (a virtualenv with `moto[server]==5.2.5` and boto3; `.ci/run` makes one).
//! Without it the tests skip with a message, unless `CI` is set, where they fail.

use super::*;

use std::process::{Child, Command, Stdio};

use multicloud_exporter::config::AccountConfig;

/// A moto server on a free port, killed on drop.
struct Moto {
    child: Child,
    url: String,
    setup: serde_json::Value,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_venv() -> Option<std::path::PathBuf> {
    match std::env::var_os("MOTO_VENV") {
        Some(v) => Some(v.into()),
        None if std::env::var_os("CI").is_some() => {
            panic!("MOTO_VENV is not set: .ci/run creates the moto virtualenv and exports it")
        }
        None => {
            eprintln!(
                "skipped: MOTO_VENV is not set (a virtualenv with moto[server]==5.2.5 and boto3)"
            );
            None
        }
    }
}

/// Start moto with signature checking after three bootstrap calls, and build the estate.
async fn start_moto() -> Option<Moto> {
    let venv = moto_venv()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let url = format!("http://127.0.0.1:{port}");
    let mut moto = Moto {
        child,
        url: url.clone(),
        setup: serde_json::Value::Null,
    };
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if client
            .get(format!("{url}/moto-api/data.json"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "moto_server did not answer on {url}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/moto/setup.py");
    let out = Command::new(venv.join("bin/python"))
        .args([script, &url])
        .output()
        .expect("run tests/moto/setup.py");
    assert!(
        out.status.success(),
        "setup.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    moto.setup = serde_json::from_slice(&out.stdout).expect("setup.py prints JSON");
    Some(moto)
}

fn account(moto: &Moto, secret: &str) -> AccountConfig {
    AccountConfig {
        cloud: Cloud::Aws,
        account_id: moto.setup["account_id"].as_str().unwrap().to_string(),
        access_key_id: moto.setup["access_key_id"].as_str().unwrap().to_string(),
        access_key_secret: config::Secret::new(secret),
        security_token: None,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        products: Cloud::Aws.products().to_vec(),
        endpoint: Some(moto.url.clone()),
        endpoints: Default::default(),
        monitor_batch_size: None,
        role_arn: None,
        external_id: None,
        project_ids: Default::default(),
        api_quotas: Default::default(),
        credential_files: Vec::new(),
    }
}

fn runtime(account: AccountConfig) -> Arc<Runtime> {
    let mut c = config::for_simulator("http://unused", &[], "127.0.0.1:0".parse().unwrap());
    c.accounts = vec![account];
    multicloud_exporter::app::build_runtime(c, MappingSet::embedded().unwrap(), Clock::System)
        .unwrap()
}

async fn scrape(rt: &Arc<Runtime>) -> (Snapshot, String) {
    let snap = scrape::collect(
        rt.clone(),
        &JobFilter::default(),
        Instant::now() + Duration::from_secs(60),
    )
    .await;
    let t = render(&snap, &rt.mappings, &rt.shared.metrics).unwrap();
    (snap, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_values_labels_auth_and_assume_role() {
    let Some(moto) = start_moto().await else {
        return;
    };
    let secret = moto.setup["secret_access_key"]
        .as_str()
        .unwrap()
        .to_string();
    let alb = moto.setup["alb_arn"].as_str().unwrap().to_string();
    let nlb = moto.setup["nlb_arn"].as_str().unwrap().to_string();

    let rt = runtime(account(&moto, &secret));
    let (snap, t) = scrape(&rt).await;
    for j in &snap.jobs {
        assert!(j.success, "{} {}: {:?}", j.region, j.product, j.error);
    }
    // Tags of ELBv2 load balancers and buckets come from moto's Tagging API, one listing per
    // region with any (us-east-1, eu-west-1); only the classic load balancer asks DescribeTags.
    let requests = |api: &str| rt.shared.metrics.request_count(Cloud::Aws, api, "ok");
    assert_eq!(requests("GetResources"), 2);
    assert_eq!(requests("GetBucketTagging"), 0);
    assert_eq!(requests("DescribeTags"), 1);
    let us = ("region", "us-east-1");
    // ALB: RequestCount Sum 120 per minute -> 2/s; NewConnectionCount 30 -> 0.5/s;
    // TargetResponseTime Average 0.25 s.
    for (family, want) in [
        ("alb_requests_per_second", 2.0),
        ("alb_new_connections_per_second", 0.5),
        ("alb_upstream_response_time_seconds", 0.25),
    ] {
        assert_eq!(
            value(
                &t,
                family,
                &[
                    ("cloud_provider", "aws"),
                    ("account_id", "123456789012"),
                    us,
                    ("resource_type", "alb"),
                    ("resource_id", alb.as_str()),
                    ("code_name", "shop"),
                ]
            ),
            Some(want),
            "{family}\n{t}"
        );
    }
    // NLB: ActiveFlowCount Average 42; code_name from kubernetes.io/service-name.
    assert_eq!(
        value(
            &t,
            "nlb_concurrent_connections",
            &[("resource_id", nlb.as_str()), ("code_name", "iot/mqtt")]
        ),
        Some(42.0)
    );
    // Classic ELB: RequestCount 300 per minute -> 5/s, Latency 0.125 s; code_name from Name.
    assert_eq!(
        value(
            &t,
            "clb_requests_per_second",
            &[("resource_id", "legacy-web"), ("code_name", "legacy")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &t,
            "clb_upstream_response_time_seconds",
            &[("resource_id", "legacy-web")]
        ),
        Some(0.125)
    );
    // S3: daily storage in each bucket's own region; objects.
    assert_eq!(
        value(
            &t,
            "s3_storage_bytes",
            &[
                ("resource_id", "demo-assets"),
                us,
                ("storage_class", "standard"),
                ("code_name", "assets"),
            ]
        ),
        Some(1_048_576.0)
    );
    assert_eq!(
        value(
            &t,
            "s3_storage_bytes",
            &[("resource_id", "demo-logs"), ("region", "eu-west-1")]
        ),
        Some(2048.0)
    );
    assert_eq!(
        value(&t, "s3_objects", &[("resource_id", "demo-assets")]),
        Some(7.0)
    );
    assert_eq!(
        value(
            &t,
            "multicloud_resource_info",
            &[
                ("resource_id", alb.as_str()),
                ("tag_env", "prod"),
                ("name", "shop-alb")
            ]
        ),
        Some(1.0)
    );

    // A wrong secret: moto checks the signature; auth_error, success 0, no retries.
    let rt = runtime(account(&moto, "WrongSecretForMoto"));
    let (snap, t) = scrape(&rt).await;
    assert!(!snap.jobs.is_empty());
    for j in &snap.jobs {
        assert!(!j.success, "{} {}", j.region, j.product);
        let e = j.error.as_ref().unwrap();
        assert_eq!(
            e.class,
            multicloud_exporter::cloud::ErrorClass::AuthError,
            "{e}"
        );
    }
    assert_eq!(
        value(&t, "multicloud_scrape_success", &[("product", "alb"), us]),
        Some(0.0)
    );
    assert!(!t.contains("WrongSecretForMoto"));

    // AssumeRole through moto's STS: the role's temporary keys sign every call.
    let mut a = account(&moto, &secret);
    a.role_arn = Some(moto.setup["role_arn"].as_str().unwrap().to_string());
    a.external_id = Some("ext-42".into());
    let rt = runtime(a);
    let (snap, t) = scrape(&rt).await;
    for j in &snap.jobs {
        assert!(
            j.success,
            "assumed role: {} {}: {:?}",
            j.region, j.product, j.error
        );
    }
    assert_eq!(
        value(&t, "alb_requests_per_second", &[("code_name", "shop")]),
        Some(2.0)
    );
    assert_eq!(
        rt.shared
            .metrics
            .request_count(Cloud::Aws, "AssumeRole", "ok"),
        1
    );
}
