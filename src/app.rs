//! Wiring: builds the long-lived state from a config and runs each subcommand. The binary's
//! `main` only parses the command line and calls [`run`].

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tracing::{error, info};

use crate::cli::{Cli, Command, FilterArgs, GlobalArgs};
use crate::clock::Clock;
use crate::cloud::http::Shared;
use crate::cloud::{Cloud, Product};
use crate::config::{self, Config, LogFormat};
use crate::mapping::MappingSet;
use crate::reload::{Loader, Reloader};
use crate::render::{render, SelfMetrics};
use crate::scrape::{self, Collector, JobFilter, Runtime};
use crate::server::web::WebConfig;
use crate::server::{self, ServerState};
use crate::sim::estate::Estate;
use crate::sim::{SimSettings, SimState, Simulator};
use crate::{cluster, cost};

/// Build the runtime of a config.
pub fn build_runtime(
    config: Config,
    mappings: MappingSet,
    clock: Clock,
) -> Result<Arc<Runtime>, String> {
    let metrics = Arc::new(SelfMetrics::new());
    metrics.config_reload_ok.set(1);
    let shared = Shared::new(
        metrics,
        config.server.max_response_bytes,
        config.server.request_timeout,
        clock,
    )?;
    Ok(Arc::new(Runtime::new(
        Arc::new(config),
        Arc::new(mappings),
        shared,
    )?))
}

fn load_mappings(g: &GlobalArgs) -> Result<MappingSet, String> {
    match &g.mappings {
        Some(dir) => MappingSet::from_dir(dir).map_err(|e| e.to_string()),
        None => MappingSet::embedded().map_err(|e| e.to_string()),
    }
}

fn apply_flags(config: &mut Config, g: &GlobalArgs) -> Result<(), String> {
    if let Some(l) = &g.listen {
        config.server.listen =
            config::parse_listen(l).map_err(|e| format!("--web.listen-address: {e}"))?;
    }
    if let Some(l) = &g.log_level {
        config.server.log_level = l.clone();
    }
    if let Some(f) = &g.log_format {
        config.server.log_format = match f.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            "logfmt" => LogFormat::Logfmt,
            other => {
                return Err(format!(
                    "--log.format: {other:?} is not a log format: use text, json or logfmt"
                ))
            }
        };
    }
    Ok(())
}

fn init_logging(level: &str, format: LogFormat) {
    crate::logging::init(level, format);
}

fn filter_of(f: &FilterArgs) -> Result<JobFilter, String> {
    Ok(JobFilter {
        cloud: match &f.cloud {
            None => None,
            Some(c) => Some(Cloud::parse(c).ok_or_else(|| {
                format!("--cloud: {c:?} is not a cloud (aliyun, tencent, aws, huawei)")
            })?),
        },
        account: f.account.clone(),
        region: f.region.clone(),
        product: match &f.product {
            None => None,
            Some(p) => Some(Product::parse(p).ok_or_else(|| {
                format!("--product: {p:?} is not a product (clb, alb, nlb, gwlb, bwp, s3)")
            })?),
        },
    })
}

/// Run the command line.
pub async fn run(cli: Cli) -> ExitCode {
    match run_inner(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load_all(g: &GlobalArgs) -> Result<(Config, MappingSet), String> {
    let mut errors = Vec::new();
    let config = match config::load(&g.config_file) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let mappings = match load_mappings(g) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    match (config, mappings) {
        (Some(mut c), Some(m)) => {
            apply_flags(&mut c, g)?;
            Ok((c, m))
        }
        _ => Err(errors.join("\n")),
    }
}

async fn run_inner(cli: Cli) -> Result<ExitCode, String> {
    let g = cli.global.clone();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let (config, mappings) = load_all(&g)?;
            init_logging(&config.server.log_level, config.server.log_format);
            let rt = build_runtime(config, mappings, Clock::System)?;
            let reload_flags = g.clone();
            let load: Loader = Box::new(move || load_all(&reload_flags));
            let web = web_config(&g)?;
            serve(
                rt,
                Some((g.config_file.clone(), g.mappings.clone(), load)),
                web,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig => {
            let (config, mappings) = load_all(&g)?;
            let (_, self_name) = cluster::source::Source::from_config(&config.cluster)
                .map_err(|e| format!("{}: {e}", g.config_file.display()))?;
            if let Some(w) = web_config(&g)? {
                let tls = if w.current()?.tls.is_some() {
                    "TLS"
                } else {
                    "plain HTTP"
                };
                println!(
                    "{}: OK — {tls}",
                    g.web_config
                        .as_deref()
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                );
            }
            let jobs: usize = config
                .accounts
                .iter()
                .map(|a| {
                    if a.all_regions() {
                        0
                    } else {
                        a.regions.len() * a.products.len()
                    }
                })
                .sum();
            println!(
                "{}: OK — {} account(s), {} job(s) with listed regions (\"*\" regions are resolved at runtime), {} metric families; membership {} (this replica: {self_name})",
                g.config_file.display(),
                config.accounts.len(),
                jobs,
                mappings.families.len(),
                config.cluster.discovery.as_str(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Once { filter } => {
            let (config, mappings) = load_all(&g)?;
            init_logging(&config.server.log_level, config.server.log_format);
            let filter = filter_of(&filter)?;
            let timeout = config.server.scrape_timeout;
            let rt = build_runtime(config, mappings, Clock::System)?;
            rt.membership.refresh().await;
            let snap = scrape::collect(rt.clone(), &filter, Instant::now() + timeout).await;
            let text = render(&snap, &rt.mappings, &rt.shared.metrics)?;
            print!("{text}");
            Ok(if snap.jobs.iter().all(|j| j.success) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Discover { filter, json } => {
            let (config, mappings) = load_all(&g)?;
            init_logging(&config.server.log_level, config.server.log_format);
            let filter = filter_of(&filter)?;
            let timeout = config.server.scrape_timeout;
            let rt = build_runtime(config, mappings, Clock::System)?;
            rt.membership.refresh().await;
            discover(&rt, &filter, Instant::now() + timeout, json).await
        }
        Command::Plan {
            scrape_interval,
            json,
        } => {
            let (config, mappings) = load_all(&g)?;
            init_logging(&config.server.log_level, config.server.log_format);
            let interval = match scrape_interval {
                Some(s) => {
                    config::parse_duration(&s).map_err(|e| format!("--scrape-interval: {e}"))?
                }
                None => config.server.scrape_interval,
            };
            let ttl = config.server.discovery_ttl;
            // The estate's whole cost, whoever owns what: no membership needed.
            let mut config = config;
            config.cluster.discovery = config::MembershipSource::None;
            let rt = build_runtime(config, mappings, Clock::System)?;
            let plan = cost::plan_estate(&rt).await;
            if json {
                println!("{}", pretty(&cost::plan_json(&plan, interval, ttl))?);
            } else {
                print!("{}", cost::plan_text(&plan, interval, ttl));
            }
            Ok(exit_code(plan.failed.is_empty()))
        }
        Command::Shard {
            members,
            self_name,
            json,
        } => {
            let (mut config, mappings) = load_all(&g)?;
            if members.is_some() {
                // Members given: the configured membership source is not consulted.
                config.cluster.discovery = config::MembershipSource::None;
            }
            init_logging(&config.server.log_level, config.server.log_format);
            let shard_by = config.cluster.shard_by.as_str();
            let rt = build_runtime(config, mappings, Clock::System)?;
            let (members, me) = match members {
                Some(m) => {
                    cluster::check_members(&m).map_err(|e| format!("--members: {e}"))?;
                    if let Some(s) = &self_name {
                        if !m.contains(s) {
                            return Err(format!("--self: {s:?} is not among --members {m:?}"));
                        }
                    }
                    (m, self_name)
                }
                None => {
                    rt.membership.refresh().await;
                    let view = rt.membership.current();
                    if view.membership.members.is_empty() {
                        return Err(format!(
                            "no membership to split over: {}; give --members a,b,c",
                            view.not_owning.clone().unwrap_or_default()
                        ));
                    }
                    let members = view.membership.members.clone();
                    if let Some(s) = &self_name {
                        if !members.contains(s) {
                            return Err(format!(
                                "--self: {s:?} is not among the configured members {members:?}"
                            ));
                        }
                    }
                    let me = self_name.or(Some(view.membership.self_name.clone()));
                    (members, me)
                }
            };
            let (shares, failed) = cost::shard_estate(&rt, &members, me.as_deref()).await;
            if json {
                println!("{}", pretty(&cost::shard_json(&shares, &failed, shard_by))?);
            } else {
                print!("{}", cost::shard_text(&shares, &failed, shard_by));
            }
            Ok(exit_code(failed.is_empty()))
        }
        Command::HashPassword { cost } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password from stdin: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err("no password on stdin: pipe it in, e.g. `read -rs P; printf %s \"$P\" | multicloud-exporter hash-password`".into());
            }
            let hash = bcrypt::hash(password, cost).map_err(|e| format!("--cost {cost}: {e}"))?;
            println!("{hash}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim { estate, latency_ms } => {
            init_logging(g.log_level.as_deref().unwrap_or("info"), LogFormat::Text);
            let estate = match estate {
                Some(p) => Estate::from_file(&p)?,
                None => Estate::builtin(),
            };
            let addr = config::parse_listen(g.listen.as_deref().unwrap_or("127.0.0.1:18080"))?;
            let settings = SimSettings {
                latency: Duration::from_millis(latency_ms),
                ..SimSettings::default()
            };
            let state = Arc::new(SimState::new(estate, Clock::System, settings));
            let sim = Simulator::start(addr, state)
                .await
                .map_err(|e| format!("simulator: cannot listen on {addr}: {e}"))?;
            print_sim_accounts(&sim);
            server::shutdown_signal().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { sim_listen } => {
            init_logging(g.log_level.as_deref().unwrap_or("info"), LogFormat::Text);
            let sim_addr = config::parse_listen(&sim_listen)?;
            let state = Arc::new(SimState::new(
                Estate::builtin(),
                Clock::System,
                SimSettings::default(),
            ));
            let listen = config::parse_listen(g.listen.as_deref().unwrap_or(":9101"))?;
            let mut sim = Simulator::start(sim_addr, state.clone())
                .await
                .map_err(|e| format!("simulator: cannot listen on {sim_addr}: {e}"))?;
            if sim_addr.port() == 0 && sim.addr.port() == listen.port() {
                // The system gave the simulator the port the exporter is to listen on (it was
                // free a moment ago): take another while this one is held, then let it go.
                let other = Simulator::start(sim_addr, state)
                    .await
                    .map_err(|e| format!("simulator: cannot listen on {sim_addr}: {e}"))?;
                std::mem::replace(&mut sim, other).stop().await;
            }
            let config = demo_config(&sim, listen);
            let mappings = load_mappings(&g)?;
            let rt = build_runtime(config, mappings, Clock::System)?;
            info!(simulator = %sim.url(), "demo: simulator started with the built-in estate");
            let web = web_config(&g)?;
            serve(rt, None, web).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn web_config(g: &GlobalArgs) -> Result<Option<WebConfig>, String> {
    g.web_config.as_deref().map(WebConfig::load).transpose()
}

fn pretty(v: &serde_json::Value) -> Result<String, String> {
    serde_json::to_string_pretty(v).map_err(|e| e.to_string())
}

fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// The config `demo` uses: every account of the simulator's estate, each with the regions its
/// resources are in, every product, pointed at the simulator.
pub fn demo_config(sim: &Simulator, listen: SocketAddr) -> Config {
    let accounts = sim.state.estate().simulator_accounts();
    config::for_simulator(&sim.url(), &accounts, listen)
}

fn print_sim_accounts(sim: &Simulator) {
    println!("simulator listening on {}", sim.url());
    for a in &sim.state.estate().accounts {
        println!(
            "  account {} access_key_id {} ({} resources)",
            a.account_id,
            a.access_key_id,
            a.resources.len()
        );
    }
    println!("point an account at it with: endpoint = \"{}\"", sim.url());
}

/// Where a served config comes from, for reloads: the config file, the mappings directory and
/// how to load them.
pub type ReloadSource = (std::path::PathBuf, Option<std::path::PathBuf>, Loader);

/// Serve `/metrics` until SIGTERM/SIGINT; with a reload source, reload on SIGHUP, on a change
/// of the files and on `POST /-/reload`.
pub async fn serve(
    rt: Arc<Runtime>,
    reload: Option<ReloadSource>,
    web: Option<WebConfig>,
) -> Result<(), String> {
    // SIGHUP's default action ends the process: take it over before anything slow (binding,
    // the first membership lookup), so a reload sent during the start is kept for later.
    let hangups = match &reload {
        Some(_) => Some(hangup_signals()?),
        None => None,
    };
    let addr = rt.config.server.listen;
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen on {addr}: {e} (choose another with --web.listen-address)")
    })?;
    let max_connections = rt.config.server.max_connections;
    // The first lookup before serving, so a healthy replica owns its share from the first
    // scrape; later lookups run in the background, never on a scrape.
    rt.membership.refresh().await;
    rt.membership.spawn_refresher();
    let view = rt.membership.current();
    info!(%addr, accounts = rt.config.accounts.len(), discovery = rt.membership.discovery().as_str(), members = view.membership.members.len(), self_name = %view.membership.self_name, "serving /metrics");
    let collector = Collector::new(rt);
    let reloader = reload.map(|(config_file, mappings_dir, load)| {
        let reloader = Arc::new(Reloader::new(
            config_file,
            mappings_dir,
            load,
            collector.clone(),
        ));
        reloader.spawn_watcher();
        if let Some(hangups) = hangups {
            spawn_sighup_reloads(reloader.clone(), hangups);
        }
        reloader
    });
    let state = ServerState::with_reloader(collector, reloader, web.map(Arc::new));
    server::run(listener, state, max_connections, server::shutdown_signal())
        .await
        .map_err(|e| format!("server: {e}"))
}

fn hangup_signals() -> Result<tokio::signal::unix::Signal, String> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).map_err(|e| format!("cannot listen for SIGHUP: {e}"))
}

/// Reload on every SIGHUP.
fn spawn_sighup_reloads(reloader: Arc<Reloader>, mut hangups: tokio::signal::unix::Signal) {
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let _ = reloader.reload("sighup").await;
        }
    });
}

async fn discover(
    rt: &Runtime,
    filter: &JobFilter,
    deadline: Instant,
    json: bool,
) -> Result<ExitCode, String> {
    let (jobs, failed) = scrape::plan(rt, filter, deadline).await;
    let mut rows = Vec::new();
    let mut ok = failed.is_empty();
    for f in &failed {
        error!(account = %f.account_id, error = ?f.error.as_ref().map(|e| e.to_string()), "listing regions failed");
    }
    for job in &jobs {
        match scrape::discover_job(rt, job, deadline).await {
            Ok(c) => {
                for r in c.value.iter() {
                    rows.push(serde_json::json!({
                        "cloud": job.cloud, "account_id": job.account_id, "region": job.region,
                        "product": job.product, "resource_id": r.id, "name": r.name,
                        "code_name": r.code_name(), "tags": r.tags,
                    }));
                }
            }
            Err(e) => {
                ok = false;
                eprintln!(
                    "{} {} {} {}: {e}",
                    job.cloud, job.account_id, job.region, job.product
                );
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{:<8} {:<18} {:<16} {:<6} {:<28} {:<20} CODE_NAME",
            "CLOUD", "ACCOUNT", "REGION", "TYPE", "RESOURCE_ID", "NAME"
        );
        for r in &rows {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            println!(
                "{:<8} {:<18} {:<16} {:<6} {:<28} {:<20} {}",
                s("cloud"),
                s("account_id"),
                s("region"),
                s("product"),
                s("resource_id"),
                s("name"),
                s("code_name")
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
