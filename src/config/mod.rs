//! The configuration file (`config.toml`): read as TOML, `${VAR}` expanded in string values,
//! then checked in one pass that reports **every** problem with its path and the fix
//! (`accounts[1].regions: must not be empty (…)`). Unknown keys are errors. The result is a
//! validated [`Config`]; runtime objects (providers, caches) are built from it elsewhere.

pub mod env;
mod reader;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cloud::{Cloud, Product};
use reader::Reader;

/// A credential. Its `Debug` and `Display` print `***`, so it cannot leak through logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server and collection settings (`[server]`).
    pub server: ServerConfig,
    /// Sharding settings (`[cluster]` and `CLUSTER_*`).
    pub cluster: ClusterConfig,
    /// The cloud accounts (`[[accounts]]`).
    pub accounts: Vec<AccountConfig>,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs per line.
    Logfmt,
}

/// `[server]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Address to listen on (`listen`, default `0.0.0.0:9101`).
    pub listen: SocketAddr,
    /// The Prometheus scrape interval in use; chooses the period (`scrape_interval`, 60s).
    pub scrape_interval: Duration,
    /// Upper bound of a scrape; the scrape-timeout header lowers it (`scrape_timeout`, 50s).
    pub scrape_timeout: Duration,
    /// How long discovered resources are reused (`discovery_ttl`, 1h).
    pub discovery_ttl: Duration,
    /// Period when the metadata has none for a metric (`period_fallback`, 60s).
    pub period_fallback: Duration,
    /// How far back beyond one period the query window reaches for late data (`ingestion_delay`, 120s).
    pub ingestion_delay: Duration,
    /// Longest single cloud call (`request_timeout`, 10s).
    pub request_timeout: Duration,
    /// Reuse of a collection by later scrapes (`result_cache_ttl`); `None` = the smallest period
    /// in use less a guard (see `scrape::collector`); `Some(0)` = off.
    pub result_cache_ttl: Option<Duration>,
    /// Regions collected at once per account (`region_concurrency`, 3).
    pub region_concurrency: usize,
    /// Products collected at once per region (`product_concurrency`, 2).
    pub product_concurrency: usize,
    /// Monitor calls in flight per job (`metric_concurrency`, 5).
    pub metric_concurrency: usize,
    /// Largest cloud response body accepted (`max_response_bytes`, 16 MiB).
    pub max_response_bytes: usize,
    /// Concurrent HTTP connections served; more wait (`max_connections`, 1024).
    pub max_connections: usize,
    /// Log level filter (`log_level`, "info").
    pub log_level: String,
    /// Log format (`log_format`, "text", "json" or "logfmt").
    pub log_format: LogFormat,
    /// How often the config file's modification time is checked for a reload
    /// (`reload_interval`, 30s; zero = off).
    pub reload_interval: Duration,
    /// The admin API (`[server.admin_auth]`).
    pub admin_auth: AdminAuth,
    /// Serve `/healthz` and `/-/ready` without the web config's BasicAuth, for Kubernetes
    /// probes (`probes_without_auth`, false).
    pub probes_without_auth: bool,
}

/// `[server.admin_auth]`: the admin API (`/api/*`, `POST /-/reload`) and its BasicAuth users.
/// Enabled without users is a config error: an admin API is never open by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdminAuth {
    /// Whether the admin API is served (`enabled`, false).
    pub enabled: bool,
    /// User name to bcrypt hash (`[server.admin_auth.users]`).
    pub users: BTreeMap<String, String>,
}

/// What a shard key covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardBy {
    /// `AccountID|Region|Namespace`: each (account, region, product) job on its own.
    Product,
    /// `AccountID|Region`: a whole region on one replica.
    Region,
}

impl ShardBy {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardBy::Product => "product",
            ShardBy::Region => "region",
        }
    }
}

/// Where the list of replicas comes from (`[cluster] discovery`, `CLUSTER_DISCOVERY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipSource {
    /// One replica owns everything.
    None,
    /// `workers` replicas numbered `0..workers`, this one `index`.
    Static,
    /// The lines of `CLUSTER_FILE`; this replica is `POD_NAME` (else the host name).
    File,
    /// The addresses DNS gives for `CLUSTER_SVC` (a Kubernetes headless Service); this replica
    /// is `POD_IP`.
    Headless,
}

impl MembershipSource {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipSource::None => "none",
            MembershipSource::Static => "static",
            MembershipSource::File => "file",
            MembershipSource::Headless => "headless",
        }
    }
}

/// `[cluster]`, overridden by the environment: `CLUSTER_DISCOVERY`, `CLUSTER_SVC`,
/// `CLUSTER_FILE`, `CLUSTER_DNS_SERVER`, `CLUSTER_WORKERS`/`CLUSTER_INDEX` (or the original's
/// `EXPORT_SHARD_TOTAL`/`EXPORT_SHARD_INDEX`), and this replica's name from `POD_IP` (headless)
/// or `POD_NAME`/`HOSTNAME` (file).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// Key level (`shard_by`, "product").
    pub shard_by: ShardBy,
    /// Where the members come from; `static` when `workers` > 1 is given alone, else `none`.
    pub discovery: MembershipSource,
    /// Number of replicas (static), 1 when unsharded.
    pub workers: usize,
    /// This replica's index (static), 0-based, below `workers`.
    pub index: usize,
    /// DNS name of the headless Service (headless).
    pub service: Option<String>,
    /// Members file (file).
    pub file: Option<PathBuf>,
    /// DNS server to ask instead of the system resolver (headless), `IP:PORT`.
    pub dns_server: Option<SocketAddr>,
    /// How often the membership is looked up again (default 15 s).
    pub refresh: Duration,
    /// This replica's member name as the environment gives it (`POD_IP` for headless,
    /// `POD_NAME` else `HOSTNAME` for file); `None` when unset.
    pub self_name: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            shard_by: ShardBy::Product,
            discovery: MembershipSource::None,
            workers: 1,
            index: 0,
            service: None,
            file: None,
            dns_server: None,
            refresh: Duration::from_secs(15),
            self_name: None,
        }
    }
}

/// One `[[accounts]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountConfig {
    /// Which cloud.
    pub cloud: Cloud,
    /// The account (Aliyun UID, Tencent UIN, AWS account, Huawei domain).
    pub account_id: String,
    /// Access key ID.
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: Secret,
    /// STS token, for temporary credentials.
    pub security_token: Option<Secret>,
    /// Region IDs; `["*"]` = every region the cloud lists.
    pub regions: Vec<String>,
    /// Products to collect.
    pub products: Vec<Product>,
    /// One base URL for every service of the account (simulator, proxy).
    pub endpoint: Option<String>,
    /// Base URL per service (`cms`, `slb`, …), winning over `endpoint`.
    pub endpoints: BTreeMap<String, String>,
    /// Instances per monitor call (Tencent GetMonitorData); `None` = the documented limit.
    pub monitor_batch_size: Option<usize>,
    /// AWS: the role to assume with the keys above (STS AssumeRole).
    pub role_arn: Option<String>,
    /// AWS: the external ID the role's trust policy asks for.
    pub external_id: Option<String>,
    /// Huawei: project ID per region (else looked up through IAM once).
    pub project_ids: BTreeMap<String, String>,
    /// The account's quota per API in calls per second, where it differs from the documented
    /// one (`[accounts.api_quotas]`); the limiter keeps to the same safe fraction of it.
    pub api_quotas: BTreeMap<String, f64>,
    /// The `*_file` credential files this account was read from: a change of one (a rotated
    /// Kubernetes Secret) reloads the config, as a change of the config file does.
    pub credential_files: Vec<std::path::PathBuf>,
}

impl AccountConfig {
    /// Whether `regions` asks for every region.
    pub fn all_regions(&self) -> bool {
        self.regions.iter().any(|r| r == "*")
    }
}

/// Every problem of a config file, reported together.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file, or `<inline>`.
    pub file: String,
    /// `path: problem (fix)`, one per problem.
    pub errors: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{}: {n} configuration error{}:",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Services an Aliyun account may name in `[accounts.endpoints]`.
pub const ALIYUN_SERVICES: &[&str] = &["cms", "slb", "alb", "nlb", "gwlb", "vpc", "tag", "oss"];
/// Services a Tencent account may name in `[accounts.endpoints]` (`cos` is the bucket listing).
pub const TENCENT_SERVICES: &[&str] = &["monitor", "clb", "gwlb", "vpc", "cvm", "tag", "cos"];
/// Services an AWS account may name in `[accounts.endpoints]` (the signing names).
pub const AWS_SERVICES: &[&str] = &["monitoring", "elasticloadbalancing", "s3", "ec2", "sts"];
/// Services a Huawei account may name in `[accounts.endpoints]`.
pub const HUAWEI_SERVICES: &[&str] = &["ces", "elb", "iam", "obs"];

/// The services a cloud's account may name in `[accounts.endpoints]`.
pub fn services_of(cloud: Cloud) -> &'static [&'static str] {
    match cloud {
        Cloud::Aliyun => ALIYUN_SERVICES,
        Cloud::Tencent => TENCENT_SERVICES,
        Cloud::Aws => AWS_SERVICES,
        Cloud::Huawei => HUAWEI_SERVICES,
    }
}

/// Largest `monitor_batch_size` accepted (the API splits larger batches anyway).
pub const MAX_MONITOR_BATCH_SIZE: usize = 1000;

/// Load and validate a config file, reading the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        errors: vec![format!(
            "cannot read the file: {e} (pass --config.file or set MULTICLOUD_CONFIG)"
        )],
    })?;
    parse(&text, &path.display().to_string(), path.parent(), &|k| {
        std::env::var(k).ok()
    })
}

/// Parse and validate config text. `base` resolves relative `*_file` paths; `lookup` reads
/// environment variables (injected so tests need not touch the process environment).
pub fn parse(
    text: &str,
    file: &str,
    base: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let fail = |errors: Vec<String>| ConfigError {
        file: file.to_string(),
        errors,
    };
    let root: toml::Table = toml::from_str(text).map_err(|e| {
        fail(vec![
            format!("not valid TOML: {}", e.message().trim_end())
                + &e.span()
                    .map(|s| format!(" (at line {})", text[..s.start].lines().count().max(1)))
                    .unwrap_or_default(),
        ])
    })?;
    let mut root = toml::Value::Table(root);
    let mut errors = Vec::new();
    expand_strings(&mut root, "", lookup, &mut errors);
    let toml::Value::Table(root) = root else {
        unreachable!("the root was built as a table just above")
    };
    let config = read_config(&mut Reader::new(&mut errors), &root, base, lookup);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(fail(errors))
    }
}

fn expand_strings(
    v: &mut toml::Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
) {
    match v {
        toml::Value::String(s) => match env::expand(s, lookup) {
            Ok(x) => *s = x,
            Err(e) => errors.push(format!("{path}: {e}")),
        },
        toml::Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                expand_strings(x, &format!("{path}[{i}]"), lookup, errors);
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_strings(x, &p, lookup, errors);
            }
        }
        _ => {}
    }
}

fn read_config(
    r: &mut Reader<'_>,
    root: &toml::Table,
    base: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Config {
    r.allow_only("", root, &["server", "cluster", "accounts"]);
    let empty = toml::Table::new();
    let server_t = r.table("", root, "server").unwrap_or(&empty);
    let server = read_server(r, server_t);
    let cluster_t = r.table("", root, "cluster").unwrap_or(&empty);
    let cluster = read_cluster(r, cluster_t, lookup);
    let mut accounts = Vec::new();
    match root.get("accounts") {
        None => r.error(
            "accounts",
            "at least one [[accounts]] table is required (see the commented example config.toml)",
        ),
        Some(toml::Value::Array(list)) => {
            if list.is_empty() {
                r.error("accounts", "at least one [[accounts]] table is required");
            }
            for (i, v) in list.iter().enumerate() {
                let path = format!("accounts[{i}]");
                match v {
                    toml::Value::Table(t) => {
                        if let Some(a) = read_account(r, &path, t, base, lookup) {
                            accounts.push(a);
                        }
                    }
                    _ => r.error(&path, "must be a table: write [[accounts]]"),
                }
            }
        }
        Some(_) => r.error("accounts", "must be an array of tables: write [[accounts]]"),
    }
    let mut seen = BTreeMap::new();
    for (i, a) in accounts.iter().enumerate() {
        if let Some(j) = seen.insert((a.cloud, a.account_id.clone()), i) {
            r.error(
                &format!("accounts[{i}].account_id"),
                &format!(
                    "{} account {:?} is already configured as accounts[{j}]; merge their regions and products",
                    a.cloud, a.account_id
                ),
            );
        }
    }
    Config {
        server,
        cluster,
        accounts,
    }
}

fn read_server(r: &mut Reader<'_>, t: &toml::Table) -> ServerConfig {
    let p = "server";
    r.allow_only(
        p,
        t,
        &[
            "listen",
            "scrape_interval",
            "scrape_timeout",
            "discovery_ttl",
            "period_fallback",
            "ingestion_delay",
            "request_timeout",
            "result_cache_ttl",
            "region_concurrency",
            "product_concurrency",
            "metric_concurrency",
            "max_response_bytes",
            "max_connections",
            "log_level",
            "log_format",
            "reload_interval",
            "admin_auth",
            "probes_without_auth",
        ],
    );
    let listen_s = r
        .string(p, t, "listen")
        .unwrap_or_else(|| "0.0.0.0:9101".into());
    let listen = match parse_listen(&listen_s) {
        Ok(a) => a,
        Err(e) => {
            r.error("server.listen", &e);
            SocketAddr::from(([0, 0, 0, 0], 9101))
        }
    };
    let d = |r: &mut Reader<'_>, key: &str, default: u64| {
        r.duration(p, t, key, false)
            .unwrap_or(Duration::from_secs(default))
    };
    let scrape_interval = d(r, "scrape_interval", 60);
    let scrape_timeout = d(r, "scrape_timeout", 50);
    let discovery_ttl = d(r, "discovery_ttl", 3600);
    let period_fallback = d(r, "period_fallback", 60);
    let ingestion_delay = r
        .duration(p, t, "ingestion_delay", true)
        .unwrap_or(Duration::from_secs(120));
    let request_timeout = d(r, "request_timeout", 10);
    let result_cache_ttl = r.duration(p, t, "result_cache_ttl", true);
    let c = |r: &mut Reader<'_>, key: &str, default: usize, max: usize| {
        r.count(p, t, key, 1, max).unwrap_or(default)
    };
    let region_concurrency = c(r, "region_concurrency", 3, 64);
    let product_concurrency = c(r, "product_concurrency", 2, 64);
    let metric_concurrency = c(r, "metric_concurrency", 5, 256);
    let max_response_bytes = c(r, "max_response_bytes", 16 << 20, 1 << 30);
    let max_connections = c(r, "max_connections", 1024, 65_536);
    let log_level = r.string(p, t, "log_level").unwrap_or_else(|| "info".into());
    let log_format = match r.string(p, t, "log_format").as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some("logfmt") => LogFormat::Logfmt,
        Some(other) => {
            r.error(
                "server.log_format",
                &format!("{other:?} is not a log format: use \"text\", \"json\" or \"logfmt\""),
            );
            LogFormat::Text
        }
    };
    let reload_interval = r
        .duration(p, t, "reload_interval", true)
        .unwrap_or(Duration::from_secs(30));
    let admin_auth = read_admin_auth(r, t);
    let probes_without_auth = r.boolean(p, t, "probes_without_auth").unwrap_or(false);
    if scrape_timeout > scrape_interval {
        r.error(
            "server.scrape_timeout",
            &format!(
                "{}s is longer than scrape_interval ({}s); Prometheus requires scrape_timeout <= scrape_interval",
                scrape_timeout.as_secs(),
                scrape_interval.as_secs()
            ),
        );
    }
    ServerConfig {
        listen,
        scrape_interval,
        scrape_timeout,
        discovery_ttl,
        period_fallback,
        ingestion_delay,
        request_timeout,
        result_cache_ttl,
        region_concurrency,
        product_concurrency,
        metric_concurrency,
        max_response_bytes,
        max_connections,
        log_level,
        log_format,
        reload_interval,
        admin_auth,
        probes_without_auth,
    }
}

fn read_admin_auth(r: &mut Reader<'_>, server: &toml::Table) -> AdminAuth {
    let p = "server.admin_auth";
    let empty = toml::Table::new();
    let t = r.table("server", server, "admin_auth").unwrap_or(&empty);
    r.allow_only(p, t, &["enabled", "users"]);
    let enabled = r.boolean(p, t, "enabled").unwrap_or(false);
    let mut users = BTreeMap::new();
    let users_t = r.table(p, t, "users").unwrap_or(&empty);
    for (name, hash) in users_t {
        let at = format!("server.admin_auth.users.{name}");
        match hash {
            toml::Value::String(h) if crate::server::auth::is_bcrypt_hash(h) => {
                users.insert(name.clone(), h.clone());
            }
            _ => r.error(
                &at,
                "must be a bcrypt hash (\"$2y$…\", 60 characters), not a password: make one with `htpasswd -nbBC 10 USER PASSWORD` and keep the part after the colon",
            ),
        }
    }
    if enabled && users_t.is_empty() {
        r.error(
            "server.admin_auth.users",
            "the admin API is enabled without users, which would leave it open to anyone: add [server.admin_auth.users] NAME = \"<bcrypt hash>\", or set enabled = false",
        );
    }
    AdminAuth { enabled, users }
}

/// Parse a listen address; `:9101` means every interface.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse().map_err(|_| {
        format!("{s:?} is not an address: write HOST:PORT, e.g. \"0.0.0.0:9101\" or \":9101\"")
    })
}

fn read_cluster(
    r: &mut Reader<'_>,
    t: &toml::Table,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> ClusterConfig {
    let p = "cluster";
    r.allow_only(
        p,
        t,
        &[
            "shard_by",
            "discovery",
            "workers",
            "index",
            "service",
            "file",
            "dns_server",
            "refresh",
        ],
    );
    let shard_by = match r.string(p, t, "shard_by").as_deref() {
        None | Some("product") => ShardBy::Product,
        Some("region") => ShardBy::Region,
        Some(other) => {
            r.error(
                "cluster.shard_by",
                &format!("{other:?} is not a shard level: use \"product\" or \"region\""),
            );
            ShardBy::Product
        }
    };
    // A set, non-empty environment variable wins over the file.
    let env = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut workers = r.count(p, t, "workers", 1, 10_000).unwrap_or(1);
    let mut index = r.count(p, t, "index", 0, 9_999).unwrap_or(0);
    let env_num = |r: &mut Reader<'_>, names: &[&str]| -> Option<usize> {
        for name in names {
            if let Some(v) = env(name) {
                match v.trim().parse::<usize>() {
                    Ok(n) => return Some(n),
                    Err(_) => r.error(
                        &format!("environment {name}"),
                        &format!("{v:?} is not a whole number"),
                    ),
                }
            }
        }
        None
    };
    let workers_at = if env("CLUSTER_WORKERS").is_some() {
        "environment CLUSTER_WORKERS"
    } else if env("EXPORT_SHARD_TOTAL").is_some() {
        "environment EXPORT_SHARD_TOTAL"
    } else {
        "cluster.workers"
    };
    let workers_given = t.contains_key("workers") || workers_at != "cluster.workers";
    if let Some(w) = env_num(r, &["CLUSTER_WORKERS", "EXPORT_SHARD_TOTAL"]) {
        workers = w;
    }
    if let Some(i) = env_num(r, &["CLUSTER_INDEX", "EXPORT_SHARD_INDEX"]) {
        index = i;
    }
    if workers == 0 {
        r.error("cluster.workers", "must be at least 1");
        workers = 1;
    }
    if index >= workers {
        r.error(
            "cluster.index",
            &format!(
                "{index} is not below workers ({workers}); replicas are numbered 0..workers-1"
            ),
        );
        index = 0;
    }
    let (discovery_at, discovery_text) = match env("CLUSTER_DISCOVERY") {
        Some(v) => ("environment CLUSTER_DISCOVERY".to_string(), Some(v)),
        None => ("cluster.discovery".to_string(), r.string(p, t, "discovery")),
    };
    let discovery = match discovery_text.as_deref().map(str::trim) {
        None if workers > 1 => MembershipSource::Static,
        None => MembershipSource::None,
        Some("none") => MembershipSource::None,
        Some("static") => MembershipSource::Static,
        Some("file") => MembershipSource::File,
        Some("headless") => MembershipSource::Headless,
        Some(other) => {
            r.error(
                &discovery_at,
                &format!(
                    "{other:?} is not a membership source: use \"headless\", \"file\", \"static\" or \"none\""
                ),
            );
            MembershipSource::None
        }
    };
    if workers_given && workers > 1 && discovery != MembershipSource::Static {
        r.error(
            workers_at,
            &format!(
                "applies to static membership only, but discovery is {:?}: remove workers/index (or CLUSTER_WORKERS/CLUSTER_INDEX) or use discovery = \"static\"",
                discovery.as_str()
            ),
        );
    }
    let service = env("CLUSTER_SVC").or_else(|| r.string(p, t, "service"));
    let file = env("CLUSTER_FILE")
        .or_else(|| r.string(p, t, "file"))
        .map(PathBuf::from);
    let (dns_at, dns_text) = match env("CLUSTER_DNS_SERVER") {
        Some(v) => ("environment CLUSTER_DNS_SERVER".to_string(), Some(v)),
        None => (
            "cluster.dns_server".to_string(),
            r.string(p, t, "dns_server"),
        ),
    };
    let dns_server = dns_text.and_then(|s| match s.trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            r.error(
                &dns_at,
                &format!("{s:?} is not an address: write IP:PORT, e.g. \"10.96.0.10:53\""),
            );
            None
        }
    });
    let refresh = r
        .duration(p, t, "refresh", false)
        .unwrap_or(Duration::from_secs(15));
    let mut self_name = None;
    match discovery {
        MembershipSource::Headless => {
            if service.is_none() {
                r.error(
                    "cluster.service",
                    "headless membership needs the headless Service's DNS name: set CLUSTER_SVC or [cluster] service, e.g. \"multicloud-exporter-headless.monitoring.svc.cluster.local\"",
                );
            }
            if let Some(ip) = env("POD_IP") {
                match ip.trim().parse::<std::net::IpAddr>() {
                    Ok(a) => self_name = Some(a.to_string()),
                    Err(_) => r.error(
                        "environment POD_IP",
                        &format!("{ip:?} is not an IP address: set it from the pod's status.podIP"),
                    ),
                }
            }
        }
        MembershipSource::File => {
            if file.is_none() {
                r.error(
                    "cluster.file",
                    "file membership needs the members file: set CLUSTER_FILE or [cluster] file",
                );
            }
            self_name = env("POD_NAME")
                .or_else(|| env("HOSTNAME"))
                .map(|s| s.trim().to_string());
        }
        MembershipSource::None | MembershipSource::Static => {}
    }
    ClusterConfig {
        shard_by,
        discovery,
        workers,
        index,
        service,
        file,
        dns_server,
        refresh,
        self_name,
    }
}

fn read_account(
    r: &mut Reader<'_>,
    p: &str,
    t: &toml::Table,
    base: Option<&Path>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<AccountConfig> {
    r.allow_only(
        p,
        t,
        &[
            "cloud",
            "account_id",
            "access_key_id",
            "access_key_id_file",
            "access_key_secret",
            "access_key_secret_file",
            "security_token",
            "security_token_file",
            "regions",
            "products",
            "endpoint",
            "endpoints",
            "monitor_batch_size",
            "role_arn",
            "external_id",
            "project_ids",
            "api_quotas",
        ],
    );
    let cloud = match r.string(p, t, "cloud") {
        None => {
            if !t.contains_key("cloud") {
                r.error(
                    &format!("{p}.cloud"),
                    "is required: one of \"aliyun\", \"tencent\", \"aws\", \"huawei\"",
                );
            }
            None
        }
        Some(s) => match Cloud::parse(&s) {
            Some(c) if c.is_supported() => Some(c),
            Some(c) => {
                r.error(
                    &format!("{p}.cloud"),
                    &format!("{c:?} is not supported by this build yet (supported: \"aliyun\", \"tencent\", \"aws\", \"huawei\")")
                        .replace(&format!("{c:?}"), &format!("\"{c}\"")),
                );
                None
            }
            None => {
                r.error(
                    &format!("{p}.cloud"),
                    &format!(
                        "{s:?} is not a cloud: use \"aliyun\", \"tencent\", \"aws\" or \"huawei\""
                    ),
                );
                None
            }
        },
    };
    let account_id = r.required_string(p, t, "account_id", "the account's numeric ID");
    // AWS keys may come from the standard environment instead (read here, once).
    let aws = cloud == Some(Cloud::Aws);
    r.take_files_read();
    let mut access_key_id = r.secret_or_file(p, t, "access_key_id", !aws, base);
    let mut access_key_secret = r.secret_or_file(p, t, "access_key_secret", !aws, base);
    let mut security_token = r.secret_or_file(p, t, "security_token", false, base);
    let credential_files = r.take_files_read();
    if aws && access_key_id.is_none() && access_key_secret.is_none() {
        access_key_id = lookup("AWS_ACCESS_KEY_ID")
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        access_key_secret = lookup("AWS_SECRET_ACCESS_KEY")
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        if security_token.is_none() {
            security_token = lookup("AWS_SESSION_TOKEN")
                .filter(|s| !s.is_empty())
                .map(Secret::new);
        }
        if access_key_id.is_none() || access_key_secret.is_none() {
            r.error(
                &format!("{p}.access_key_id"),
                "is required: set access_key_id and access_key_secret (or their _file forms), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            );
        }
    } else if aws && (access_key_id.is_none() || access_key_secret.is_none()) {
        r.error(
            &format!("{p}.access_key_secret"),
            "access_key_id and access_key_secret go together: set both, or neither to use the AWS_* environment",
        );
    }
    let role_arn = r.string(p, t, "role_arn");
    let external_id = r.string(p, t, "external_id");
    if !aws && (role_arn.is_some() || external_id.is_some()) {
        r.error(
            &format!("{p}.role_arn"),
            "role_arn and external_id apply to aws accounts only: remove them",
        );
    }
    if let Some(arn) = &role_arn {
        if !arn.starts_with("arn:aws") || !arn.contains(":role/") {
            r.error(
                &format!("{p}.role_arn"),
                &format!("{arn:?} is not a role ARN: write arn:aws:iam::<account>:role/<name>"),
            );
        }
    }
    if external_id.is_some() && role_arn.is_none() {
        r.error(
            &format!("{p}.external_id"),
            "is only used with role_arn: set role_arn or remove external_id",
        );
    }
    let regions = r.string_list(p, t, "regions").unwrap_or_default();
    if t.contains_key("regions") && regions.is_empty() {
        r.error(
            &format!("{p}.regions"),
            "must not be empty (list region IDs such as \"cn-hangzhou\", or \"*\" for every region)",
        );
    } else if !t.contains_key("regions") {
        r.error(
            &format!("{p}.regions"),
            "is required (list region IDs such as \"cn-hangzhou\", or \"*\" for every region)",
        );
    }
    for (i, reg) in regions.iter().enumerate() {
        let ok = reg == "*"
            || (!reg.is_empty()
                && reg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        if !ok {
            r.error(
                &format!("{p}.regions[{i}]"),
                &format!("{reg:?} is not a region ID (lower-case letters, digits and '-', e.g. \"cn-hangzhou\")"),
            );
        }
    }
    if regions.len() > 1 && regions.iter().any(|x| x == "*") {
        r.error(
            &format!("{p}.regions"),
            "\"*\" already means every region: use it alone",
        );
    }
    let mut products = Vec::new();
    let names = r.string_list(p, t, "products").unwrap_or_default();
    if names.is_empty() {
        r.error(
            &format!("{p}.products"),
            "must list at least one of \"clb\", \"alb\", \"nlb\", \"gwlb\", \"bwp\", \"s3\"",
        );
    }
    for (i, n) in names.iter().enumerate() {
        match Product::parse(n) {
            Some(prod) if products.contains(&prod) => r.error(
                &format!("{p}.products[{i}]"),
                &format!("{n:?} is listed twice"),
            ),
            Some(prod) if cloud.is_some_and(|c| !c.products().contains(&prod)) => {
                let c = cloud.unwrap_or(Cloud::Aliyun);
                let have: Vec<String> = c.products().iter().map(|x| format!("{:?}", x.as_str())).collect();
                r.error(
                    &format!("{p}.products[{i}]"),
                    &format!("{n:?} does not exist on {c}: use {}", have.join(", ")),
                )
            }
            Some(prod) => products.push(prod),
            None => r.error(
                &format!("{p}.products[{i}]"),
                &format!("{n:?} is not a product: use \"clb\", \"alb\", \"nlb\", \"gwlb\", \"bwp\" or \"s3\""),
            ),
        }
    }
    let endpoint = r.string(p, t, "endpoint");
    if let Some(e) = &endpoint {
        check_url(r, &format!("{p}.endpoint"), e);
    }
    let mut endpoints = BTreeMap::new();
    let services = cloud.map(services_of).unwrap_or(&[]);
    if let Some(et) = r.table(p, t, "endpoints") {
        let ep = format!("{p}.endpoints");
        for (k, v) in et {
            let path = format!("{ep}.{k}");
            if cloud.is_some() && !services.contains(&k.as_str()) {
                r.error(
                    &path,
                    &format!("unknown service: use one of {}", services.join(", ")),
                );
                continue;
            }
            match v {
                toml::Value::String(s) => {
                    check_url(r, &path, s);
                    endpoints.insert(k.clone(), s.trim_end_matches('/').to_string());
                }
                _ => r.error(
                    &path,
                    "must be a string URL such as \"http://127.0.0.1:18080\"",
                ),
            }
        }
    }
    let mut project_ids = BTreeMap::new();
    if let Some(pt) = r.table(p, t, "project_ids") {
        if cloud.is_some_and(|c| c != Cloud::Huawei) {
            r.error(
                &format!("{p}.project_ids"),
                "applies to huawei accounts only: remove it",
            );
        }
        for (region, v) in pt {
            match v {
                toml::Value::String(id) if !id.is_empty() => {
                    project_ids.insert(region.clone(), id.clone());
                }
                _ => r.error(
                    &format!("{p}.project_ids.{region}"),
                    "must be the region's project ID (a non-empty string from IAM > Projects)",
                ),
            }
        }
    }
    let api_quotas = read_api_quotas(r, p, t, cloud);
    let monitor_batch_size = match t.get("monitor_batch_size") {
        None => None,
        Some(toml::Value::Integer(n))
            if (1..=MAX_MONITOR_BATCH_SIZE as i64).contains(n) && cloud == Some(Cloud::Tencent) =>
        {
            Some(*n as usize)
        }
        Some(toml::Value::Integer(_)) if cloud != Some(Cloud::Tencent) => {
            r.error(
                &format!("{p}.monitor_batch_size"),
                "applies to tencent accounts only (GetMonitorData instances per call): remove it",
            );
            None
        }
        Some(_) => {
            r.error(
                &format!("{p}.monitor_batch_size"),
                &format!("must be a whole number from 1 to {MAX_MONITOR_BATCH_SIZE} (instances per GetMonitorData call; the documented limit is 50)"),
            );
            None
        }
    };
    Some(AccountConfig {
        credential_files,
        cloud: cloud?,
        account_id: account_id?,
        access_key_id: access_key_id?.expose().to_string(),
        access_key_secret: access_key_secret?,
        security_token,
        regions,
        products,
        endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        endpoints,
        monitor_batch_size,
        role_arn,
        external_id,
        project_ids,
        api_quotas,
    })
}

/// `[accounts.api_quotas]`: API name to calls per second, each an API the cloud's provider calls.
fn read_api_quotas(
    r: &mut Reader<'_>,
    p: &str,
    t: &toml::Table,
    cloud: Option<Cloud>,
) -> BTreeMap<String, f64> {
    use crate::cloud::limiter::{apis, MAX_API_QUOTA, MIN_API_QUOTA};
    let mut quotas = BTreeMap::new();
    let Some(qt) = r.table(p, t, "api_quotas") else {
        return quotas;
    };
    for (api, v) in qt {
        let path = format!("{p}.api_quotas.{api}");
        if let Some(c) = cloud {
            if !apis(c).contains(&api.as_str()) {
                r.error(
                    &path,
                    &format!(
                        "{c} has no API {api:?} here: use one of {}",
                        apis(c).join(", ")
                    ),
                );
                continue;
            }
        }
        let n = match v {
            toml::Value::Integer(n) => *n as f64,
            toml::Value::Float(f) => *f,
            _ => f64::NAN,
        };
        if (MIN_API_QUOTA..=MAX_API_QUOTA).contains(&n) {
            quotas.insert(api.clone(), n);
        } else {
            r.error(
                &path,
                &format!("must be the account's quota of the API in calls per second, a number from {MIN_API_QUOTA} to {MAX_API_QUOTA} (e.g. 100)"),
            );
        }
    }
    quotas
}

fn check_url(r: &mut Reader<'_>, path: &str, url: &str) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {}
        _ => r.error(
            path,
            &format!("{url:?} is not a base URL: write http(s)://HOST[:PORT], e.g. \"http://127.0.0.1:18080\""),
        ),
    }
}

/// Parse a duration such as `60s`, `500ms`, `5m`, `1h`, `1d`, or `0s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. \"60s\", \"5m\", \"1h\""))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write e.g. \"60s\", \"5m\", \"1h\""))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "{s:?} has an unknown unit {unit:?}: use ms, s, m, h or d"
            ))
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// An account of the simulator's estate, as the exporter's config names it.
#[derive(Clone, Debug)]
pub struct SimulatorAccount {
    /// Cloud.
    pub cloud: Cloud,
    /// Account ID.
    pub account_id: String,
    /// Access key ID.
    pub access_key_id: String,
    /// Secret.
    pub access_key_secret: String,
    /// Regions to collect.
    pub regions: Vec<String>,
}

impl SimulatorAccount {
    /// The account as an `[[accounts]]` table of `config.toml`, every product of its cloud,
    /// served at `endpoint`.
    pub fn config_toml(&self, endpoint: &str) -> String {
        fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
            items
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        format!(
            "\n[[accounts]]\ncloud = {:?}\naccount_id = {:?}\naccess_key_id = {:?}\naccess_key_secret = {:?}\nregions = [{}]\nproducts = [{}]\nendpoint = {:?}\n",
            self.cloud.as_str(),
            self.account_id,
            self.access_key_id,
            self.access_key_secret,
            list(self.regions.iter().map(String::as_str)),
            list(self.cloud.products().iter().map(|p| p.as_str())),
            endpoint
        )
    }
}

/// The config the `demo` subcommand and tests use, pointing every account at a simulator.
pub fn for_simulator(base_url: &str, accounts: &[SimulatorAccount], listen: SocketAddr) -> Config {
    Config {
        server: ServerConfig {
            listen,
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(50),
            discovery_ttl: Duration::from_secs(3600),
            period_fallback: Duration::from_secs(60),
            ingestion_delay: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
            result_cache_ttl: None,
            region_concurrency: 3,
            product_concurrency: 2,
            metric_concurrency: 5,
            max_response_bytes: 16 << 20,
            max_connections: 1024,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            reload_interval: Duration::ZERO,
            admin_auth: AdminAuth::default(),
            probes_without_auth: false,
        },
        cluster: ClusterConfig::default(),
        accounts: accounts
            .iter()
            .map(|a| AccountConfig {
                cloud: a.cloud,
                account_id: a.account_id.clone(),
                access_key_id: a.access_key_id.clone(),
                access_key_secret: Secret::new(a.access_key_secret.clone()),
                security_token: None,
                regions: a.regions.clone(),
                products: a.cloud.products().to_vec(),
                endpoint: Some(base_url.trim_end_matches('/').to_string()),
                endpoints: BTreeMap::new(),
                monitor_batch_size: None,
                role_arn: None,
                external_id: None,
                project_ids: BTreeMap::new(),
                api_quotas: BTreeMap::new(),
                credential_files: Vec::new(),
            })
            .collect(),
    }
}

/// Path of the default config file.
pub fn default_path() -> PathBuf {
    PathBuf::from("config.toml")
}

#[cfg(test)]
mod tests;
