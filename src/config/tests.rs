//! Every error path of the config, and the shipped `config.toml`.

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "AK" => Some("LTAIkey".into()),
        "SK" => Some("s3cr3t-value".into()),
        "CLUSTER_WORKERS" | "CLUSTER_INDEX" => None,
        _ => None,
    }
}

fn ok(text: &str) -> Config {
    match parse(text, "test.toml", None, &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    errors_with(text, &env)
}

fn errors_with(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    match parse(text, "test.toml", None, lookup) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.errors,
    }
}

const ACCOUNT: &str = r#"
[[accounts]]
cloud = "aliyun"
account_id = "123"
access_key_id = "${AK}"
access_key_secret = "${SK}"
regions = ["cn-hangzhou"]
products = ["clb"]
"#;

#[test]
fn the_shipped_config_parses() {
    let text = include_str!("../../config.toml");
    let c = ok(text);
    assert_eq!(c.accounts.len(), 4);
    assert_eq!(c.server.listen.port(), 9101);
    assert_eq!(c.server.scrape_interval, Duration::from_secs(60));
    assert_eq!(c.accounts[0].products.len(), 6);
    assert_eq!(c.accounts[1].cloud, Cloud::Tencent);
    assert_eq!(c.accounts[1].products.len(), 4);
    assert_eq!(c.accounts[2].cloud, Cloud::Aws);
    assert_eq!(c.accounts[2].products.len(), 5);
    assert_eq!(c.accounts[3].cloud, Cloud::Huawei);
}

#[test]
fn tencent_accounts_take_their_products_services_and_batch_size() {
    let base = "[[accounts]]\ncloud = \"tencent\"\naccount_id = \"100012345678\"\naccess_key_id = \"AKID1\"\naccess_key_secret = \"k\"\nregions = [\"ap-guangzhou\"]\n";
    let c = ok(&format!(
        "{base}products = [\"clb\", \"s3\"]\nmonitor_batch_size = 10\n[accounts.endpoints]\nmonitor = \"http://127.0.0.1:1\"\n"
    ));
    assert_eq!(c.accounts[0].monitor_batch_size, Some(10));
    assert_eq!(c.accounts[0].endpoints["monitor"], "http://127.0.0.1:1");
    let e = errors(&format!(
        "{base}products = [\"alb\"]\nmonitor_batch_size = 0\n[accounts.endpoints]\ncms = \"http://x\"\n"
    ));
    assert_eq!(
        e,
        vec![
            "accounts[0].products[0]: \"alb\" does not exist on tencent: use \"clb\", \"gwlb\", \"bwp\", \"s3\"",
            "accounts[0].endpoints.cms: unknown service: use one of monitor, clb, gwlb, vpc, cvm, tag, cos",
            "accounts[0].monitor_batch_size: must be a whole number from 1 to 1000 (instances per GetMonitorData call; the documented limit is 50)",
        ]
    );
    let e = errors("[[accounts]]\ncloud = \"aliyun\"\naccount_id = \"1\"\naccess_key_id = \"a\"\naccess_key_secret = \"k\"\nregions = [\"cn-hangzhou\"]\nproducts = [\"clb\"]\nmonitor_batch_size = 10\n");
    assert_eq!(
        e,
        vec!["accounts[0].monitor_batch_size: applies to tencent accounts only (GetMonitorData instances per call): remove it"]
    );
}

#[test]
fn defaults_and_env_expansion() {
    let c = ok(ACCOUNT);
    assert_eq!(c.server.scrape_timeout, Duration::from_secs(50));
    assert_eq!(c.server.region_concurrency, 3);
    assert_eq!(c.server.product_concurrency, 2);
    assert_eq!(c.server.metric_concurrency, 5);
    assert_eq!(c.server.max_response_bytes, 16 << 20);
    assert_eq!(c.server.result_cache_ttl, None);
    assert_eq!(c.accounts[0].access_key_id, "LTAIkey");
    assert_eq!(c.accounts[0].access_key_secret.expose(), "s3cr3t-value");
    assert_eq!(c.cluster.workers, 1);
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = ok(ACCOUNT);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cr3t-value"), "{dbg}");
    assert!(dbg.contains("***"));
}

#[test]
fn every_error_is_reported_with_its_path() {
    let e = errors(
        r#"
[server]
listen = "nonsense"
scrape_interval = "1 minute"
scrape_timeout = "0s"
region_concurrency = 0
metric_concurrency = "five"
log_format = "xml"
bogus = 1

[[accounts]]
cloud = "gcp"
account_id = ""
access_key_id = "a"
regions = []
products = ["clb", "elb", "clb"]
endpoint = "ftp://x"

[[accounts]]
cloud = "aliyun"
account_id = "1"
access_key_id = "a"
access_key_secret = "b"
access_key_secret_file = "/nonexistent"
regions = ["*", "cn-hangzhou", "CN_BAD"]
products = []
typo = true
[accounts.endpoints]
cms = "http://127.0.0.1:1"
ecs = "http://127.0.0.1:1"
"#,
    );
    let want = [
        "server.listen: \"nonsense\" is not an address",
        "server.scrape_interval: \"1 minute\" has an unknown unit",
        "server.scrape_timeout: must be longer than zero",
        "server.region_concurrency: 0 is out of range: use 1 to 64",
        "server.metric_concurrency: must be a whole number, not a string",
        "server.log_format: \"xml\" is not a log format",
        "server.bogus: unknown key",
        "accounts[0].cloud: \"gcp\" is not a cloud",
        "accounts[0].account_id: must not be empty",
        "accounts[0].access_key_secret: is required",
        "accounts[0].regions: must not be empty",
        "accounts[0].products[1]: \"elb\" is not a product",
        "accounts[0].products[2]: \"clb\" is listed twice",
        "accounts[0].endpoint: \"ftp://x\" is not a base URL",
        "accounts[1].access_key_secret: set either access_key_secret or access_key_secret_file, not both",
        "accounts[1].regions[2]: \"CN_BAD\" is not a region ID",
        "accounts[1].regions: \"*\" already means every region",
        "accounts[1].products: must list at least one",
        "accounts[1].typo: unknown key",
        "accounts[1].endpoints.ecs: unknown service",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn missing_pieces_are_named() {
    let e = errors("[server]\n");
    assert_eq!(e, vec!["accounts: at least one [[accounts]] table is required (see the commented example config.toml)"]);
    let e = errors("[[accounts]]\n");
    for w in [
        "accounts[0].cloud: is required",
        "accounts[0].account_id: is required",
        "accounts[0].access_key_id: is required",
        "accounts[0].access_key_secret: is required",
        "accounts[0].regions: is required",
        "accounts[0].products: must list",
    ] {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
}

#[test]
fn unknown_cloud_and_duplicate_account() {
    let text = format!("{ACCOUNT}{ACCOUNT}[[accounts]]\ncloud = \"gcp\"\naccount_id = \"9\"\naccess_key_id = \"a\"\naccess_key_secret = \"b\"\nregions = [\"us-central1\"]\nproducts = [\"clb\"]\n");
    let e = errors(&text);
    assert!(
        e.iter().any(|x| x.starts_with(
            "accounts[1].account_id: aliyun account \"123\" is already configured as accounts[0]"
        )),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|x| x.starts_with("accounts[2].cloud: \"gcp\" is not a cloud")),
        "{e:#?}"
    );
}

#[test]
fn unset_variable_and_bad_toml() {
    let e = errors(&ACCOUNT.replace("${SK}", "${NOPE}"));
    assert_eq!(e, vec!["accounts[0].access_key_secret: environment variable NOPE is not set (export it, or write ${NOPE:-default})"]);
    let e = errors("[server\nlisten = 1");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("not valid TOML"), "{e:?}");
    assert!(e[0].contains("line 1"), "{e:?}");
}

#[test]
fn scrape_timeout_must_fit_the_interval() {
    let e = errors(&format!(
        "[server]\nscrape_interval = \"30s\"\nscrape_timeout = \"40s\"\n{ACCOUNT}"
    ));
    assert_eq!(e, vec!["server.scrape_timeout: 40s is longer than scrape_interval (30s); Prometheus requires scrape_timeout <= scrape_interval"]);
}

#[test]
fn secrets_from_files() {
    let dir = std::env::temp_dir().join(format!("mce-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sk"), "file-secret\n").unwrap();
    std::fs::write(dir.join("empty"), "\n").unwrap();
    let text = ACCOUNT.replace(
        "access_key_secret = \"${SK}\"",
        "access_key_secret_file = \"sk\"",
    );
    let c = parse(&text, "t", Some(&dir), &env).unwrap();
    assert_eq!(c.accounts[0].access_key_secret.expose(), "file-secret");
    let text = ACCOUNT.replace(
        "access_key_secret = \"${SK}\"",
        "access_key_secret_file = \"empty\"",
    );
    let e = parse(&text, "t", Some(&dir), &env).unwrap_err().errors;
    assert!(
        e[0].starts_with("accounts[0].access_key_secret_file: file ") && e[0].ends_with("is empty"),
        "{e:?}"
    );
}

#[test]
fn cluster_from_file_and_environment() {
    let c = ok(&format!(
        "[cluster]\nshard_by = \"region\"\nworkers = 3\nindex = 2\n{ACCOUNT}"
    ));
    assert_eq!(
        (c.cluster.shard_by, c.cluster.workers, c.cluster.index),
        (ShardBy::Region, 3, 2)
    );
    let lookup = |k: &str| match k {
        "EXPORT_SHARD_TOTAL" => Some("4".to_string()),
        "CLUSTER_INDEX" => Some("3".to_string()),
        _ => env(k),
    };
    let c = parse(ACCOUNT, "t", None, &lookup).unwrap();
    assert_eq!((c.cluster.workers, c.cluster.index), (4, 3));
    let lookup = |k: &str| match k {
        "CLUSTER_WORKERS" => Some("2".to_string()),
        "CLUSTER_INDEX" => Some("2".to_string()),
        _ => env(k),
    };
    let e = errors_with(ACCOUNT, &lookup);
    assert_eq!(
        e,
        vec!["cluster.index: 2 is not below workers (2); replicas are numbered 0..workers-1"]
    );
    let e = errors(&format!("[cluster]\nshard_by = \"zone\"\n{ACCOUNT}"));
    assert!(e[0].starts_with("cluster.shard_by: \"zone\" is not a shard level"));
}

#[test]
fn membership_sources_from_file_and_environment() {
    let c = ok(ACCOUNT);
    assert_eq!(c.cluster.discovery, MembershipSource::None);
    assert_eq!(c.cluster.refresh, Duration::from_secs(15));
    let c = ok(&format!("[cluster]\nworkers = 3\nindex = 1\n{ACCOUNT}"));
    assert_eq!(c.cluster.discovery, MembershipSource::Static);
    // File membership: the file from the config, self from POD_NAME, else HOSTNAME.
    let text = format!(
        "[cluster]\ndiscovery = \"file\"\nfile = \"/etc/mce/members\"\nrefresh = \"5s\"\n{ACCOUNT}"
    );
    let lookup = |k: &str| match k {
        "HOSTNAME" => Some("host-b".to_string()),
        _ => env(k),
    };
    let c = parse(&text, "t", None, &lookup).unwrap();
    assert_eq!(c.cluster.discovery, MembershipSource::File);
    assert_eq!(c.cluster.file, Some(PathBuf::from("/etc/mce/members")));
    assert_eq!(c.cluster.self_name.as_deref(), Some("host-b"));
    assert_eq!(c.cluster.refresh, Duration::from_secs(5));
    let lookup = |k: &str| match k {
        "HOSTNAME" => Some("host-b".to_string()),
        "POD_NAME" => Some("exporter-1".to_string()),
        "CLUSTER_FILE" => Some("/run/members".to_string()),
        _ => env(k),
    };
    let c = parse(&text, "t", None, &lookup).unwrap();
    assert_eq!(c.cluster.self_name.as_deref(), Some("exporter-1"));
    assert_eq!(c.cluster.file, Some(PathBuf::from("/run/members")));
    // Headless from the environment alone, as the Helm chart sets it.
    let lookup = |k: &str| match k {
        "CLUSTER_DISCOVERY" => Some("headless".to_string()),
        "CLUSTER_SVC" => Some("mce-headless.monitoring.svc.cluster.local".to_string()),
        "POD_IP" => Some("10.244.1.7".to_string()),
        "CLUSTER_DNS_SERVER" => Some("127.0.0.1:5353".to_string()),
        _ => env(k),
    };
    let c = parse(&text, "t", None, &lookup).unwrap();
    assert_eq!(c.cluster.discovery, MembershipSource::Headless);
    assert_eq!(
        c.cluster.service.as_deref(),
        Some("mce-headless.monitoring.svc.cluster.local")
    );
    assert_eq!(c.cluster.self_name.as_deref(), Some("10.244.1.7"));
    assert_eq!(
        c.cluster.dns_server,
        Some("127.0.0.1:5353".parse().unwrap())
    );
}

#[test]
fn membership_errors_name_the_key_and_the_fix() {
    let e = errors(&format!("[cluster]\ndiscovery = \"dns\"\n{ACCOUNT}"));
    assert_eq!(
        e,
        vec!["cluster.discovery: \"dns\" is not a membership source: use \"headless\", \"file\", \"static\" or \"none\""]
    );
    let e = errors(&format!("[cluster]\ndiscovery = \"headless\"\n{ACCOUNT}"));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("cluster.service: headless membership needs the headless Service's DNS name: set CLUSTER_SVC"), "{e:?}");
    let e = errors(&format!("[cluster]\ndiscovery = \"file\"\n{ACCOUNT}"));
    assert_eq!(
        e,
        vec!["cluster.file: file membership needs the members file: set CLUSTER_FILE or [cluster] file"]
    );
    let e = errors(&format!(
        "[cluster]\ndiscovery = \"file\"\nfile = \"/m\"\nworkers = 3\n{ACCOUNT}"
    ));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "cluster.workers: applies to static membership only, but discovery is \"file\""
        ),
        "{e:?}"
    );
    let lookup = |k: &str| match k {
        "CLUSTER_DISCOVERY" => Some("headless".to_string()),
        "CLUSTER_SVC" => Some("svc".to_string()),
        "POD_IP" => Some("pod-0".to_string()),
        _ => env(k),
    };
    let e = errors_with(
        &format!("[cluster]\ndns_server = \"localhost\"\nrefresh = \"0s\"\n{ACCOUNT}"),
        &lookup,
    );
    assert_eq!(
        e,
        vec![
            "cluster.dns_server: \"localhost\" is not an address: write IP:PORT, e.g. \"10.96.0.10:53\"",
            "cluster.refresh: must be longer than zero",
            "environment POD_IP: \"pod-0\" is not an IP address: set it from the pod's status.podIP",
        ]
    );
}

#[test]
fn admin_auth_is_closed_unless_given_users_with_bcrypt_hashes() {
    let c = ok(ACCOUNT);
    assert!(!c.server.admin_auth.enabled);
    assert_eq!(c.server.reload_interval, Duration::from_secs(30));
    let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
    let c = ok(&format!(
        "[server]\nreload_interval = \"0s\"\n[server.admin_auth]\nenabled = true\n[server.admin_auth.users]\nalice = \"{hash}\"\n{ACCOUNT}"
    ));
    assert!(c.server.admin_auth.enabled);
    assert_eq!(c.server.admin_auth.users["alice"], hash);
    assert_eq!(c.server.reload_interval, Duration::ZERO);
    let e = errors(&format!("[server.admin_auth]\nenabled = true\n{ACCOUNT}"));
    assert_eq!(
        e,
        vec!["server.admin_auth.users: the admin API is enabled without users, which would leave it open to anyone: add [server.admin_auth.users] NAME = \"<bcrypt hash>\", or set enabled = false"]
    );
    let e = errors(&format!(
        "[server.admin_auth]\nenabled = \"yes\"\n[server.admin_auth.users]\nbob = \"hunter2\"\n{ACCOUNT}"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0], "server.admin_auth.enabled: must be true or false");
    assert!(
        e[1].starts_with("server.admin_auth.users.bob: must be a bcrypt hash"),
        "{e:?}"
    );
    assert!(!e[1].contains("hunter2"), "the password is echoed: {e:?}");
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
    assert!(parse_duration("60").is_err());
    assert!(parse_duration("x1s").is_err());
}

#[test]
fn aws_keys_come_from_config_or_the_environment_and_roles_are_checked() {
    let base = "[[accounts]]\ncloud = \"aws\"\naccount_id = \"123456789012\"\nregions = [\"us-east-1\"]\nproducts = [\"alb\", \"s3\"]\n";
    let lookup = |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIAENV".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("env-secret".to_string()),
        "AWS_SESSION_TOKEN" => Some("env-token".to_string()),
        _ => None,
    };
    let c = match parse(
        &format!("{base}role_arn = \"arn:aws:iam::123456789012:role/exporter\"\nexternal_id = \"ext-42\"\n"),
        "test.toml",
        None,
        &lookup,
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let a = &c.accounts[0];
    assert_eq!(a.access_key_id, "AKIAENV");
    assert_eq!(a.access_key_secret.expose(), "env-secret");
    assert_eq!(
        a.security_token.as_ref().map(|s| s.expose()),
        Some("env-token")
    );
    assert_eq!(
        a.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/exporter")
    );
    assert_eq!(a.external_id.as_deref(), Some("ext-42"));
    // Neither config keys nor environment.
    let e = errors(base);
    assert!(
        e[0].starts_with("accounts[0].access_key_id: is required"),
        "{e:#?}"
    );
    // bwp does not exist on AWS; role_arn must be a role ARN; external_id needs role_arn.
    let e = errors(
        &format!("{base}access_key_id = \"a\"\naccess_key_secret = \"b\"\nexternal_id = \"x\"\n")
            .replace("\"s3\"", "\"bwp\""),
    );
    assert_eq!(
        e,
        vec![
            "accounts[0].external_id: is only used with role_arn: set role_arn or remove external_id",
            "accounts[0].products[1]: \"bwp\" does not exist on aws: use \"clb\", \"alb\", \"nlb\", \"gwlb\", \"s3\"",
        ]
    );
    let e = errors(&format!(
        "{base}access_key_id = \"a\"\naccess_key_secret = \"b\"\nrole_arn = \"exporter\"\n"
    ));
    assert!(e[0].contains("is not a role ARN"), "{e:#?}");
}

#[test]
fn api_quotas_name_apis_of_the_accounts_cloud_with_a_rate() {
    let base = "[[accounts]]\ncloud = \"aws\"\naccount_id = \"123456789012\"\naccess_key_id = \"AKIA1\"\naccess_key_secret = \"k\"\nregions = [\"us-east-1\"]\nproducts = [\"alb\"]\n";
    let c = ok(&format!(
        "{base}[accounts.api_quotas]\nGetMetricData = 400\nDescribeLoadBalancers = 2.5\n"
    ));
    assert_eq!(c.accounts[0].api_quotas["GetMetricData"], 400.0);
    assert_eq!(c.accounts[0].api_quotas["DescribeLoadBalancers"], 2.5);
    let e = errors(&format!(
        "{base}[accounts.api_quotas]\nDescribeMetricLast = 100\nGetMetricData = 0\nListBuckets = \"fast\"\nDescribeTags = 1e-20\n"
    ));
    assert_eq!(
        e,
        vec![
            "accounts[0].api_quotas.DescribeMetricLast: aws has no API \"DescribeMetricLast\" here: use one of GetMetricData, DescribeRegions, DescribeLoadBalancers, DescribeTags, GetResources, ListBuckets, GetBucketLocation, GetBucketTagging, AssumeRole",
            "accounts[0].api_quotas.DescribeTags: must be the account's quota of the API in calls per second, a number from 0.01 to 100000 (e.g. 100)",
            "accounts[0].api_quotas.GetMetricData: must be the account's quota of the API in calls per second, a number from 0.01 to 100000 (e.g. 100)",
            "accounts[0].api_quotas.ListBuckets: must be the account's quota of the API in calls per second, a number from 0.01 to 100000 (e.g. 100)",
        ]
    );
}
