//! The membership in force, kept current off the scrape path. A refresher task looks the
//! source up every `[cluster] refresh`; a scrape only reads the last result, so it never waits
//! on DNS or the file system. A failed lookup keeps the last good membership and counts the
//! failure: falling back to "own everything" would make every replica collect the whole estate.
//! A replica that is not among the members owns nothing and is not ready, and says so once per
//! change.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tracing::{debug, info, warn};

use super::source::{Lookup, Source};
use super::Membership;
use crate::config::{ClusterConfig, MembershipSource, ShardBy};
use crate::render::SelfMetrics;

/// The membership as this replica sees it now.
#[derive(Clone, Debug)]
pub struct View {
    /// The members and this replica's name.
    pub membership: Membership,
    /// Why this replica owns nothing, when it does not (not a member, or no membership known).
    pub not_owning: Option<String>,
}

/// The live membership of a replica.
pub struct LiveMembership {
    source: Source,
    discovery: MembershipSource,
    self_name: String,
    shard_by: ShardBy,
    refresh: Duration,
    view: RwLock<Arc<View>>,
    /// Serialises lookups.
    lookup_state: tokio::sync::Mutex<LookupState>,
    metrics: Arc<SelfMetrics>,
}

#[derive(Default)]
struct LookupState {
    /// A membership has been applied at least once.
    known: bool,
    /// The last lookup failed (failures are logged at warn once, then at debug).
    failing: bool,
}

impl LiveMembership {
    /// The membership a config describes. Fixed sources (none, static) are in force at once;
    /// file and headless ones own nothing until the first [`LiveMembership::refresh`].
    pub fn new(c: &ClusterConfig, metrics: Arc<SelfMetrics>) -> Result<LiveMembership, String> {
        let (source, self_name) = Source::from_config(c)?;
        // Present from the start at 0, so a rate() over it has a series before the first error.
        metrics
            .shard_membership_errors
            .with_label_values(&[c.discovery.as_str()])
            .inc_by(0);
        metrics.shard_info.reset();
        metrics
            .shard_info
            .with_label_values(&[c.discovery.as_str(), &self_name])
            .set(1);
        let pending = View {
            membership: Membership {
                members: Vec::new(),
                self_name: self_name.clone(),
                shard_by: c.shard_by,
            },
            not_owning: Some(format!(
                "the {} membership has not been looked up yet",
                c.discovery.as_str()
            )),
        };
        let live = LiveMembership {
            source,
            discovery: c.discovery,
            self_name,
            shard_by: c.shard_by,
            refresh: c.refresh,
            view: RwLock::new(Arc::new(pending)),
            lookup_state: tokio::sync::Mutex::new(LookupState::default()),
            metrics,
        };
        if let Source::Fixed(members) = &live.source {
            let members = members.clone();
            live.apply(members, &mut LookupState::default());
        }
        Ok(live)
    }

    /// The membership in force.
    pub fn current(&self) -> Arc<View> {
        match self.view.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Where the membership comes from.
    pub fn discovery(&self) -> MembershipSource {
        self.discovery
    }

    /// Look the source up once and apply what it gives; a failure keeps the membership in force.
    pub async fn refresh(&self) {
        if matches!(self.source, Source::Fixed(_)) {
            return;
        }
        let mut state = self.lookup_state.lock().await;
        match self.source.lookup().await {
            Lookup::Members(members) => {
                if state.failing {
                    info!(
                        source = self.discovery.as_str(),
                        "membership lookup works again"
                    );
                }
                state.failing = false;
                self.apply(members, &mut state);
            }
            Lookup::Failed(e) => {
                self.metrics
                    .shard_membership_errors
                    .with_label_values(&[self.discovery.as_str()])
                    .inc();
                let kept = self.current().membership.members.len();
                if state.failing {
                    debug!(source = self.discovery.as_str(), error = %e, kept_members = kept, "membership lookup failed again");
                } else {
                    warn!(source = self.discovery.as_str(), error = %e, kept_members = kept, "membership lookup failed; the last good membership stays in force");
                }
                state.failing = true;
                if !state.known {
                    self.set(View {
                        not_owning: Some(format!(
                            "no membership known yet: the last lookup failed: {e}"
                        )),
                        ..(*self.current()).clone()
                    });
                }
            }
        }
    }

    /// Keep the membership current until the last reference to it is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) {
        if matches!(self.source, Source::Fixed(_)) {
            return;
        }
        let weak: Weak<LiveMembership> = Arc::downgrade(self);
        let every = self.refresh;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(live) = weak.upgrade() else {
                    return;
                };
                live.refresh().await;
            }
        });
    }

    fn apply(&self, members: Vec<String>, state: &mut LookupState) {
        let old = self.current();
        let membership = Membership {
            members,
            self_name: self.self_name.clone(),
            shard_by: self.shard_by,
        };
        let is_member = membership.members.contains(&self.self_name);
        let not_owning = (!is_member).then(|| {
            format!(
                "this replica ({}) is not among the {} members, so it owns nothing",
                self.self_name,
                membership.members.len()
            )
        });
        let changed = old.membership.members != membership.members;
        if changed {
            let added: Vec<&String> = membership
                .members
                .iter()
                .filter(|m| !old.membership.members.contains(m))
                .collect();
            let removed: Vec<&String> = old
                .membership
                .members
                .iter()
                .filter(|m| !membership.members.contains(m))
                .collect();
            if state.known {
                self.metrics.shard_membership_changes.inc();
            }
            info!(
                source = self.discovery.as_str(),
                members = membership.members.len(),
                ?added,
                ?removed,
                "membership changed"
            );
        }
        if not_owning != old.not_owning {
            match &not_owning {
                Some(why) => warn!(
                    source = self.discovery.as_str(),
                    "{why}; not ready until it is listed"
                ),
                None if state.known || old.not_owning.is_some() => {
                    info!(source = self.discovery.as_str(), self_name = %self.self_name, "this replica is a member and owns its share")
                }
                None => {}
            }
        }
        state.known = true;
        if !changed && not_owning == old.not_owning {
            // The view in force stays the same object: its identity marks a membership, and
            // results collected under it stay valid (see `Collector`).
            return;
        }
        self.metrics
            .shard_members
            .set(membership.members.len() as i64);
        self.set(View {
            membership,
            not_owning,
        });
    }

    fn set(&self, view: View) {
        match self.view.write() {
            Ok(mut v) => *v = Arc::new(view),
            Err(p) => *p.into_inner() = Arc::new(view),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_membership(path: &std::path::Path, me: &str) -> (LiveMembership, Arc<SelfMetrics>) {
        let metrics = Arc::new(SelfMetrics::new());
        let c = ClusterConfig {
            discovery: MembershipSource::File,
            file: Some(path.to_path_buf()),
            self_name: Some(me.into()),
            ..ClusterConfig::default()
        };
        (LiveMembership::new(&c, metrics.clone()).unwrap(), metrics)
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_last_good_membership() {
        let dir = std::env::temp_dir().join(format!("mce-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("members");
        let (live, metrics) = file_membership(&path, "b");
        // Before any lookup: nothing owned, and the reason says so.
        let v = live.current();
        assert!(v.membership.members.is_empty());
        assert!(v
            .not_owning
            .as_deref()
            .unwrap()
            .contains("not been looked up"));
        live.refresh().await;
        assert!(live
            .current()
            .not_owning
            .as_deref()
            .unwrap()
            .contains("the last lookup failed"));
        assert_eq!(
            metrics
                .shard_membership_errors
                .with_label_values(&["file"])
                .get(),
            1
        );
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        live.refresh().await;
        let v = live.current();
        assert_eq!(v.membership.members, ["a", "b", "c"]);
        assert_eq!(v.not_owning, None);
        assert_eq!(metrics.shard_members.get(), 3);
        assert_eq!(metrics.shard_membership_changes.get(), 0);
        // The file goes away: the three members stay.
        std::fs::remove_file(&path).unwrap();
        live.refresh().await;
        assert_eq!(live.current().membership.members, ["a", "b", "c"]);
        assert_eq!(live.current().not_owning, None);
        assert_eq!(
            metrics
                .shard_membership_errors
                .with_label_values(&["file"])
                .get(),
            2
        );
        // This replica is dropped from the list: it owns nothing and says why.
        std::fs::write(&path, "a\nc\n").unwrap();
        live.refresh().await;
        let v = live.current();
        assert_eq!(v.membership.members, ["a", "c"]);
        assert_eq!(
            v.not_owning.as_deref(),
            Some("this replica (b) is not among the 2 members, so it owns nothing")
        );
        assert!(!v.membership.owns("1|cn-hangzhou|acs_slb_dashboard"));
        assert_eq!(metrics.shard_membership_changes.get(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fixed_membership_is_in_force_at_once() {
        let metrics = Arc::new(SelfMetrics::new());
        let c = ClusterConfig {
            discovery: MembershipSource::Static,
            workers: 2,
            index: 1,
            ..ClusterConfig::default()
        };
        let live = LiveMembership::new(&c, metrics.clone()).unwrap();
        let v = live.current();
        assert_eq!(v.membership.members, ["0", "1"]);
        assert_eq!(v.not_owning, None);
        assert_eq!(
            metrics.shard_info.with_label_values(&["static", "1"]).get(),
            1
        );
        assert_eq!(metrics.shard_members.get(), 2);
    }
}
