//! Command-line definitions. Flags follow the Prometheus exporters' conventions and have the same
//! name in every subcommand that takes them (`--config.file`, `--web.listen-address`,
//! `--log.level`, `--log.format`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Prometheus exporter for the clouds' own monitoring data (Aliyun CloudMonitor, Tencent Cloud
/// Monitor, AWS CloudWatch and Huawei Cloud Eye), across accounts and regions, collected on
/// scrape.
#[derive(Debug, Parser)]
#[command(name = "multicloud-exporter", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Configuration file.
    #[arg(
        long = "config.file",
        env = "MULTICLOUD_CONFIG",
        default_value = "config.toml",
        global = true
    )]
    pub config_file: PathBuf,
    /// Directory of mapping files (*.toml) replacing the built-in mappings.
    #[arg(long = "mappings", global = true)]
    pub mappings: Option<PathBuf>,
    /// Address to listen on (overrides server.listen); `demo` and `sim` take it too.
    #[arg(long = "web.listen-address", global = true)]
    pub listen: Option<String>,
    /// Web config file (the Prometheus exporter-toolkit's YAML: tls_server_config,
    /// basic_auth_users, http_server_config); re-read when it or its certificates change.
    #[arg(long = "web.config.file", global = true)]
    pub web_config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace (overrides server.log_level).
    #[arg(long = "log.level", global = true)]
    pub log_level: Option<String>,
    /// Log format: text, json or logfmt (overrides server.log_format).
    #[arg(long = "log.format", global = true)]
    pub log_format: Option<String>,
}

/// Restricts `once` and `discover`.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only this cloud (aliyun, tencent, aws, huawei).
    #[arg(long)]
    pub cloud: Option<String>,
    /// Only this account ID.
    #[arg(long)]
    pub account: Option<String>,
    /// Only this region.
    #[arg(long)]
    pub region: Option<String>,
    /// Only this product (clb, alb, nlb, gwlb, bwp, s3).
    #[arg(long)]
    pub product: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve /metrics (the default).
    Serve,
    /// Collect once and print the exposition on stdout (exit 2 when a job failed).
    Once {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Validate the configuration and mappings; print every error and exit non-zero if any.
    CheckConfig,
    /// List the resources discovery finds.
    Discover {
        #[command(flatten)]
        filter: FilterArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the cloud simulator alone (default address 127.0.0.1:18080).
    Sim {
        /// Estate file (TOML); the built-in estate when absent.
        #[arg(long)]
        estate: Option<PathBuf>,
        /// Latency added to every call, in milliseconds.
        #[arg(long = "latency-ms", default_value_t = 0)]
        latency_ms: u64,
    },
    /// Show which jobs each replica owns and the API calls each makes per scrape (it collects
    /// the estate once, then each member's share once).
    Shard {
        /// Members to split over, comma-separated (default: the configured membership).
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
        /// Which member is this replica (marked in the output; must be among --members).
        #[arg(long = "self")]
        self_name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the jobs, the API calls per scrape by cloud and API, and the calls per month (it
    /// collects the estate twice: cold, then with warm caches).
    Plan {
        /// Scrape interval to price (default: server.scrape_interval).
        #[arg(long = "scrape-interval")]
        scrape_interval: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read a password on stdin and print its bcrypt hash, for [server.admin_auth.users] and
    /// the web config's basic_auth_users.
    HashPassword {
        /// bcrypt cost (4 to 31; each step doubles the work).
        #[arg(long, default_value_t = 10)]
        cost: u32,
    },
    /// Start the simulator and the exporter against it: the first thing to run.
    Demo {
        /// Address of the simulator (default: a free loopback port).
        #[arg(long = "sim.listen-address", default_value = "127.0.0.1:0")]
        sim_listen: String,
    },
}
