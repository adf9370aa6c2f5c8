//! Hot reload of the config file and the mappings, on SIGHUP, on a change of the config file's
//! (or a mapping file's, or a `*_file` credential's) modification time, and on `POST /-/reload`.
//! The new config is parsed and validated in full, and its runtime built, before anything
//! changes; then it is swapped in between scrapes (a collection in flight finishes on the runtime
//! it started with). A bad config is rejected with the same errors as `check-config` and the old
//! one keeps running. Settings the running process cannot change (the listen address, logging,
//! connection cap) are reported as needing a restart rather than silently ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::mapping::MappingSet;
use crate::scrape::Collector;
use crate::util::{file_stamps, FileStamp};

/// Loads and validates the config and mappings, with the command line's overrides applied.
pub type Loader = Box<dyn Fn() -> Result<(Config, MappingSet), String> + Send + Sync>;

/// What a reload changed.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ReloadReport {
    /// Accounts (`cloud/account_id`) added.
    pub accounts_added: Vec<String>,
    /// Accounts removed; their caches, clients and limiters are dropped.
    pub accounts_removed: Vec<String>,
    /// Accounts whose settings changed; they get new clients and caches.
    pub accounts_changed: Vec<String>,
    /// Settings that changed but take effect only after a restart.
    pub restart_needed: Vec<String>,
}

/// The files a config comes from, as last seen.
type Stamp = Vec<FileStamp>;

/// Reloads the config of a running exporter.
pub struct Reloader {
    config_file: PathBuf,
    mappings_dir: Option<PathBuf>,
    load: Loader,
    collector: Collector,
    /// Serialises reloads; holds the files' stamp at the last attempt.
    last_seen: tokio::sync::Mutex<Stamp>,
}

fn stamp(config_file: &Path, mappings_dir: Option<&Path>, credentials: &[PathBuf]) -> Stamp {
    let mut files = vec![config_file.to_path_buf()];
    files.extend_from_slice(credentials);
    if let Some(dir) = mappings_dir {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            names.sort();
            files.extend(names);
        }
    }
    file_stamps(&files)
}

/// The credential files the running config was read from.
fn credential_files(collector: &Collector) -> Vec<PathBuf> {
    collector
        .runtime()
        .config
        .accounts
        .iter()
        .flat_map(|a| a.credential_files.iter().cloned())
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Reloader {
    /// A reloader for a collector whose runtime came from `config_file` (and `mappings_dir`).
    pub fn new(
        config_file: PathBuf,
        mappings_dir: Option<PathBuf>,
        load: Loader,
        collector: Collector,
    ) -> Reloader {
        let seen = stamp(
            &config_file,
            mappings_dir.as_deref(),
            &credential_files(&collector),
        );
        let metrics = &collector.runtime().shared.metrics;
        metrics.config_reload_ok.set(1);
        metrics.config_reload_timestamp.set(unix_now());
        Reloader {
            config_file,
            mappings_dir,
            load,
            collector,
            last_seen: tokio::sync::Mutex::new(seen),
        }
    }

    fn stamp(&self) -> Stamp {
        stamp(
            &self.config_file,
            self.mappings_dir.as_deref(),
            &credential_files(&self.collector),
        )
    }

    /// Load, validate and swap in the config; `trigger` names the cause for logs and metrics
    /// (`sighup`, `file_change`, `http`). On error the running config stays.
    pub async fn reload(&self, trigger: &'static str) -> Result<ReloadReport, Vec<String>> {
        let mut last_seen = self.last_seen.lock().await;
        *last_seen = self.stamp();
        self.reload_and_restamp(trigger, &mut last_seen).await
    }

    /// Reload when a file changed since the last attempt (a bad config is not retried until it
    /// changes again). `None` when nothing changed.
    pub async fn reload_if_changed(&self) -> Option<Result<ReloadReport, Vec<String>>> {
        let mut last_seen = self.last_seen.lock().await;
        let now = self.stamp();
        if now == *last_seen {
            return None;
        }
        *last_seen = now;
        Some(self.reload_and_restamp("file_change", &mut last_seen).await)
    }

    /// Reload; when the new config reads other credential files, watch those from now on.
    async fn reload_and_restamp(
        &self,
        trigger: &'static str,
        last_seen: &mut Stamp,
    ) -> Result<ReloadReport, Vec<String>> {
        let before = credential_files(&self.collector);
        let result = self.reload_locked(trigger).await;
        if credential_files(&self.collector) != before {
            *last_seen = self.stamp();
        }
        result
    }

    async fn reload_locked(&self, trigger: &'static str) -> Result<ReloadReport, Vec<String>> {
        let old = self.collector.runtime();
        let metrics = old.shared.metrics.clone();
        let built = (self.load)().and_then(|(config, mappings)| {
            let report = report(&old.config, &config);
            old.reloaded(Arc::new(config), Arc::new(mappings))
                .map(|(rt, stale)| (rt, stale, report))
        });
        let (rt, stale, report) = match built {
            Ok(x) => x,
            Err(e) => {
                let errors: Vec<String> = e.lines().map(str::to_string).collect();
                metrics.config_reload_ok.set(0);
                metrics
                    .config_reloads
                    .with_label_values(&[trigger, "failure"])
                    .inc();
                error!(trigger, file = %self.config_file.display(), errors = ?errors, "reload rejected; the running configuration stays");
                return Err(errors);
            }
        };
        let rt = Arc::new(rt);
        if !Arc::ptr_eq(&rt.membership, &old.membership) {
            rt.membership.refresh().await;
            rt.membership.spawn_refresher();
        }
        self.collector.replace_runtime(rt);
        stale.drop_now();
        metrics.config_reload_ok.set(1);
        metrics.config_reload_timestamp.set(unix_now());
        metrics
            .config_reloads
            .with_label_values(&[trigger, "success"])
            .inc();
        for setting in &report.restart_needed {
            warn!(trigger, "{setting}");
        }
        info!(
            trigger,
            added = ?report.accounts_added,
            removed = ?report.accounts_removed,
            changed = ?report.accounts_changed,
            "configuration reloaded"
        );
        Ok(report)
    }

    /// Check the files every `server.reload_interval` (re-read from the config in force, so a
    /// reload can change it; zero = off) until the process ends.
    pub fn spawn_watcher(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let every = me.collector.runtime().config.server.reload_interval;
                if every.is_zero() {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                tokio::time::sleep(every).await;
                let _ = me.reload_if_changed().await;
            }
        });
    }
}

/// What changes between two configs.
fn report(old: &Config, new: &Config) -> ReloadReport {
    let name = |a: &crate::config::AccountConfig| format!("{}/{}", a.cloud, a.account_id);
    let find = |list: &[crate::config::AccountConfig], a: &crate::config::AccountConfig| {
        list.iter()
            .find(|o| o.cloud == a.cloud && o.account_id == a.account_id)
            .cloned()
    };
    let mut r = ReloadReport::default();
    for a in &new.accounts {
        match find(&old.accounts, a) {
            None => r.accounts_added.push(name(a)),
            Some(o) if o != *a => r.accounts_changed.push(name(a)),
            Some(_) => {}
        }
    }
    for o in &old.accounts {
        if find(&new.accounts, o).is_none() {
            r.accounts_removed.push(name(o));
        }
    }
    let (o, n) = (&old.server, &new.server);
    if o.listen != n.listen {
        r.restart_needed.push(format!(
            "server.listen changed from {} to {}: the exporter keeps listening on {} until it is restarted",
            o.listen, n.listen, o.listen
        ));
    }
    if o.log_level != n.log_level || o.log_format != n.log_format {
        r.restart_needed.push(
            "server.log_level/log_format changed: logging keeps its settings until the exporter is restarted".into(),
        );
    }
    if o.max_connections != n.max_connections {
        r.restart_needed.push(format!(
            "server.max_connections changed from {} to {}: takes effect after a restart",
            o.max_connections, n.max_connections
        ));
    }
    r
}
