//! BasicAuth for the admin API, as the Prometheus exporter-toolkit does it: users with bcrypt
//! hashes. bcrypt is slow on purpose, so a verified (user, password) is remembered by its
//! SHA-256 (never the password itself) and later requests with it cost a hash, not a bcrypt
//! round. An unknown user is checked against a dummy hash of the users' highest cost, so the
//! answer takes as long as for a known one and does not tell which user names exist. At most two
//! bcrypt rounds run at once: a flood of wrong passwords queues instead of taking every core.
//! The hash comparison inside bcrypt is constant-time.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;

use crate::cloud::crypto::sha256;

/// A bcrypt hash at cost 10, for the format checks of the tests.
#[cfg(test)]
const COST_10_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// bcrypt rounds allowed at once.
const CONCURRENT_ROUNDS: usize = 2;

/// Whether `h` is a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, 60 characters).
pub fn is_bcrypt_hash(h: &str) -> bool {
    h.len() == 60
        && ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| h.starts_with(p))
        && h.parse::<bcrypt::HashParts>().is_ok()
}

/// The users allowed in, and the credentials already verified.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// A hash of a random password at the users' highest cost, made on first need.
    dummy: Arc<OnceLock<String>>,
    rounds: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// BasicAuth over user name → bcrypt hash.
    pub fn new(users: BTreeMap<String, String>) -> BasicAuth {
        BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
            dummy: Arc::new(OnceLock::new()),
            rounds: tokio::sync::Semaphore::new(CONCURRENT_ROUNDS),
        }
    }

    fn highest_cost(&self) -> u32 {
        self.users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST)
    }

    /// Whether an `Authorization` header value carries a known user's password. Runs bcrypt on
    /// a blocking thread.
    pub async fn allows(&self, authorization: Option<&str>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let known_hash = self.users.get(&user).cloned();
        let known = known_hash.is_some();
        let mut material = Vec::with_capacity(user.len() + password.len() + 2);
        material.extend_from_slice(user.as_bytes());
        material.push(0);
        material.extend_from_slice(password.as_bytes());
        material.push(0);
        material.extend_from_slice(known_hash.as_deref().unwrap_or("").as_bytes());
        let fingerprint: [u8; 32] = sha256(&material);
        if known && self.remembered(&fingerprint) {
            return true;
        }
        let Ok(_round) = self.rounds.acquire().await else {
            return false;
        };
        let dummy = self.dummy.clone();
        let cost = self.highest_cost();
        let ok = tokio::task::spawn_blocking(move || {
            let hash = match known_hash {
                Some(h) => h,
                None => dummy
                    .get_or_init(|| {
                        bcrypt::hash(crate::util::random_hex(), cost).unwrap_or_default()
                    })
                    .clone(),
            };
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if ok && known {
            if let Ok(mut v) = self.verified.lock() {
                v.insert(fingerprint);
            }
        }
        ok && known
    }

    fn remembered(&self, fingerprint: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .map(|v| v.contains(fingerprint))
            .unwrap_or(false)
    }
}

/// (user, password) of a `Basic` authorization.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[tokio::test]
    async fn only_a_known_user_with_the_right_password_gets_in() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        assert!(is_bcrypt_hash(&hash));
        assert!(is_bcrypt_hash(COST_10_HASH));
        assert!(!is_bcrypt_hash("s3cret"));
        let auth = BasicAuth::new(BTreeMap::from([("alice".to_string(), hash)]));
        assert!(auth.allows(Some(&basic("alice", "s3cret"))).await);
        // Remembered: the second time needs no bcrypt round, and gives the same answer.
        assert!(auth.allows(Some(&basic("alice", "s3cret"))).await);
        assert!(!auth.allows(Some(&basic("alice", "wrong"))).await);
        assert!(!auth.allows(Some(&basic("bob", "s3cret"))).await);
        assert!(!auth.allows(None).await);
        assert!(!auth.allows(Some("Bearer abc")).await);
        assert!(!auth.allows(Some("Basic !!!")).await);
        assert_eq!(
            parse_basic(&basic("a", "b:c")),
            Some(("a".into(), "b:c".into()))
        );
    }
}
