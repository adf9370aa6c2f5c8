//! Shard ownership. The unit of work is the job (account, region, product); its key is
//! `AccountID|Region|Namespace` (product level) or `AccountID|Region` (region level). The owner
//! of a key is the member with the highest FNV-1a 32 hash of `key|member` (rendezvous hashing),
//! so every key has exactly one owner and a membership change moves only the keys it must.
//! [`source`] looks the members up (none, static, members file, headless DNS); [`live`] keeps
//! the membership in force current off the scrape path.

pub mod live;
pub mod source;

pub use live::{LiveMembership, View};

use crate::config::ShardBy;
use crate::util::fnv1a32;

/// The shard key of a job.
pub fn shard_key(shard_by: ShardBy, account_id: &str, region: &str, namespace: &str) -> String {
    match shard_by {
        ShardBy::Product => format!("{account_id}|{region}|{namespace}"),
        ShardBy::Region => format!("{account_id}|{region}"),
    }
}

/// The rendezvous weight of a member for a key: FNV-1a 32 of `key|member`, passed through the
/// MurmurHash3 32-bit finaliser. FNV-1a alone mixes its last bytes poorly, and members differ
/// only there (`10.0.0.1`, `10.0.0.2`): without the finaliser, growing 2 → 3 members moved half
/// again as many keys as rendezvous hashing should.
pub fn weight(key: &str, member: &str) -> u32 {
    let mut h = fnv1a32(format!("{key}|{member}").as_bytes());
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Index of the member owning `key`; ties go to the smaller member name. `None` without members.
pub fn owner<'a>(key: &str, members: &'a [String]) -> Option<&'a str> {
    members
        .iter()
        .max_by(|a, b| {
            weight(key, a)
                .cmp(&weight(key, b))
                .then_with(|| b.as_str().cmp(a.as_str()))
        })
        .map(String::as_str)
}

/// The live membership as this replica sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    /// All members' names.
    pub members: Vec<String>,
    /// This replica's name.
    pub self_name: String,
    /// Key level.
    pub shard_by: ShardBy,
}

impl Membership {
    /// Whether this replica owns the key (never, when it is not a member).
    pub fn owns(&self, key: &str) -> bool {
        owner(key, &self.members) == Some(self.self_name.as_str())
    }

    /// A membership from a listed set of members and this replica's name: the list must name
    /// every member once, and this replica among them (else it would own nothing, silently).
    pub fn from_members(
        members: Vec<String>,
        self_name: &str,
        shard_by: ShardBy,
    ) -> Result<Membership, String> {
        check_members(&members)?;
        if !members.iter().any(|m| m == self_name) {
            return Err(format!(
                "this replica ({self_name:?}) is not among the members {members:?}: it would own nothing"
            ));
        }
        Ok(Membership {
            members,
            self_name: self_name.to_string(),
            shard_by,
        })
    }
}

/// A list of members is usable when it is not empty and names no member twice.
pub fn check_members(members: &[String]) -> Result<(), String> {
    if members.is_empty() {
        return Err("the membership is empty: list at least this replica".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in members {
        if !seen.insert(m.as_str()) {
            return Err(format!("member {m:?} is listed twice"));
        }
    }
    Ok(())
}

/// The members of a members file (`CLUSTER_FILE`): one per line, blank lines and `#` comments
/// ignored, surrounding whitespace trimmed.
pub fn parse_members_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}")).collect()
    }

    /// About 1200 distinct keys of a level.
    fn keys_of(shard_by: ShardBy) -> Vec<String> {
        let accounts = match shard_by {
            ShardBy::Product => 40,
            ShardBy::Region => 240,
        };
        let mut out = std::collections::BTreeSet::new();
        for a in 0..accounts {
            for r in [
                "cn-hangzhou",
                "cn-beijing",
                "cn-shanghai",
                "ap-southeast-1",
                "us-west-1",
            ] {
                for ns in [
                    "acs_slb_dashboard",
                    "acs_alb",
                    "acs_nlb",
                    "acs_gwlb",
                    "acs_bandwidth_package",
                    "acs_oss_dashboard",
                ] {
                    out.insert(shard_key(shard_by, &format!("10000000{a}"), r, ns));
                }
            }
        }
        out.into_iter().collect()
    }

    #[test]
    fn growing_the_membership_moves_about_one_share_of_keys_to_the_new_member() {
        for shard_by in [ShardBy::Product, ShardBy::Region] {
            let ks = keys_of(shard_by);
            for n in 1..16 {
                let before = members(n);
                let after = members(n + 1);
                let mut moved = 0;
                for k in &ks {
                    if owner(k, &before) != owner(k, &after) {
                        moved += 1;
                        assert_eq!(
                            owner(k, &after),
                            Some(after[n].as_str()),
                            "only keys to the new member move"
                        );
                    }
                }
                let expected = ks.len() as f64 / (n + 1) as f64;
                let ratio = moved as f64 / expected;
                assert!(
                    (0.6..1.4).contains(&ratio),
                    "{shard_by:?} n={n}: moved {moved}, expected ~{expected:.0}"
                );
            }
        }
    }

    #[test]
    fn region_level_keys_put_a_whole_region_on_one_member() {
        assert_eq!(
            shard_key(ShardBy::Region, "123", "cn-hangzhou", "acs_alb"),
            shard_key(ShardBy::Region, "123", "cn-hangzhou", "acs_nlb")
        );
        assert_eq!(
            shard_key(ShardBy::Product, "123", "cn-hangzhou", "acs_alb"),
            "123|cn-hangzhou|acs_alb"
        );
    }

    #[test]
    fn every_key_has_one_owner_up_to_sixteen_members_in_both_modes() {
        for shard_by in [ShardBy::Product, ShardBy::Region] {
            let ks: Vec<String> = (0..300)
                .map(|i| {
                    shard_key(
                        shard_by,
                        &format!("acct{}", i % 7),
                        &format!("r{}", i % 11),
                        &format!("ns{}", i % 5),
                    )
                })
                .collect();
            for n in 1..=16 {
                let m = members(n);
                for k in &ks {
                    let owners = m
                        .iter()
                        .filter(|me| {
                            Membership::from_members(m.clone(), me, shard_by)
                                .unwrap()
                                .owns(k)
                        })
                        .count();
                    assert_eq!(owners, 1, "{shard_by:?} key {k} with {n} members");
                }
            }
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_keys() {
        for shard_by in [ShardBy::Product, ShardBy::Region] {
            removing_a_member_moves_only_its_keys_at(shard_by);
        }
    }

    fn removing_a_member_moves_only_its_keys_at(shard_by: ShardBy) {
        let ks = keys_of(shard_by);
        for n in 2..=16 {
            let before = members(n);
            for gone in [0, n / 2, n - 1] {
                let after: Vec<String> = before
                    .iter()
                    .filter(|m| **m != before[gone])
                    .cloned()
                    .collect();
                let mut moved = 0;
                for k in &ks {
                    let (b, a) = (owner(k, &before), owner(k, &after));
                    if b != a {
                        moved += 1;
                        assert_eq!(
                            b,
                            Some(before[gone].as_str()),
                            "only the removed member's keys move"
                        );
                    }
                }
                let expected = ks.len() as f64 / n as f64;
                let ratio = moved as f64 / expected;
                assert!(
                    (0.6..1.4).contains(&ratio),
                    "n={n} gone={gone}: moved {moved}, expected ~{expected:.0}"
                );
            }
        }
    }

    #[test]
    fn members_files_and_lists_are_checked() {
        let text = "# replicas\n10.0.0.1\n\n  10.0.0.2  # second\n10.0.0.3\n";
        let m = parse_members_file(text);
        assert_eq!(m, vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert!(Membership::from_members(m.clone(), "10.0.0.2", ShardBy::Product).is_ok());
        let e = Membership::from_members(m.clone(), "10.0.0.9", ShardBy::Product).unwrap_err();
        assert!(e.contains("not among the members"), "{e}");
        let e = Membership::from_members(parse_members_file("# nobody\n"), "a", ShardBy::Product)
            .unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = Membership::from_members(vec!["a".into(), "a".into()], "a", ShardBy::Product)
            .unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
    }
}
