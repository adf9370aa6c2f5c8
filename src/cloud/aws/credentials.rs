//! Where an AWS account's credentials come from: keys in the config (inline, `${VAR}` or
//! `*_file`), else the standard `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`
//! environment (read when the config is loaded); and, with `role_arn`, STS `AssumeRole` signed
//! with those, the temporary keys cached until five minutes before they expire — the usual way
//! to reach many accounts from one set of keys.

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{AwsProvider, QueryApi};
use crate::cloud::{CloudError, ErrorClass};
use crate::config::{AccountConfig, Secret};
use crate::util::UtcTime;

/// STS AssumeRole.
pub const ASSUME_ROLE: QueryApi = QueryApi {
    service: "sts",
    version: "2011-06-15",
    action: "AssumeRole",
};

/// Session name the exporter assumes roles under (shows in CloudTrail).
pub const SESSION_NAME: &str = "multicloud-exporter";
/// Lifetime asked for assumed credentials.
pub const SESSION_SECONDS: i64 = 3600;
/// Assumed credentials are renewed this long before they expire.
pub const RENEW_BEFORE_S: i64 = 300;
/// A failed AssumeRole is answered from memory this long, so a wrong key or a denied role
/// costs one STS call per half minute, not one per API call.
pub const FAILURE_TTL_S: i64 = 30;

/// Keys to sign with.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Access key ID.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: Secret,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
}

/// An account's credentials: its base keys, and the role to assume with them.
pub struct CredentialSource {
    base: Credentials,
    role: Option<(String, Option<String>)>,
    assumed: Mutex<Option<(Result<Credentials, CloudError>, i64)>>,
}

impl CredentialSource {
    /// The source an account's config describes.
    pub fn from_account(account: &AccountConfig) -> CredentialSource {
        CredentialSource {
            base: Credentials {
                access_key_id: account.access_key_id.clone(),
                secret: account.access_key_secret.clone(),
                session_token: account.security_token.clone(),
            },
            role: account
                .role_arn
                .clone()
                .map(|arn| (arn, account.external_id.clone())),
            assumed: Mutex::new(None),
        }
    }

    /// Credentials valid now: the base keys, or the role's (assumed once per session).
    pub async fn get(&self, p: &AwsProvider, deadline: Instant) -> Result<Credentials, CloudError> {
        let Some((arn, external_id)) = &self.role else {
            return Ok(self.base.clone());
        };
        // One AssumeRole at a time; waiters reuse its answer.
        let mut cached = self.assumed.lock().await;
        let now = p.shared().clock.now_s();
        if let Some((r, valid_until)) = cached.as_ref() {
            if now < *valid_until {
                return r.clone();
            }
        }
        let r = self
            .assume(p, arn, external_id.as_deref(), now, deadline)
            .await;
        let valid_until = match &r {
            Ok((_, expires)) => expires - RENEW_BEFORE_S,
            Err(_) => now + FAILURE_TTL_S,
        };
        let r = r.map(|(c, _)| c);
        *cached = Some((r.clone(), valid_until));
        r
    }

    /// One AssumeRole: the keys and when they expire (Unix s).
    async fn assume(
        &self,
        p: &AwsProvider,
        arn: &str,
        external_id: Option<&str>,
        now: i64,
        deadline: Instant,
    ) -> Result<(Credentials, i64), CloudError> {
        let mut params = vec![
            ("RoleArn".to_string(), arn.to_string()),
            ("RoleSessionName".to_string(), SESSION_NAME.to_string()),
            ("DurationSeconds".to_string(), SESSION_SECONDS.to_string()),
        ];
        if let Some(e) = external_id {
            params.push(("ExternalId".to_string(), e.to_string()));
        }
        let root = p
            .query_as(&self.base, ASSUME_ROLE, "us-east-1", &params, deadline)
            .await?;
        let creds = root.find("Credentials");
        let field = |name: &str| {
            creds
                .and_then(|c| c.text_of(name))
                .filter(|s| !s.is_empty())
        };
        let (Some(ak), Some(sk), Some(token)) = (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        ) else {
            return Err(CloudError {
                http_status: Some(200),
                ..crate::cloud::http::CallSite {
                    cloud: crate::cloud::Cloud::Aws,
                    api: ASSUME_ROLE.action,
                    region: "us-east-1",
                }
                .error(
                    ErrorClass::BadResponse,
                    "AssumeRole answer has no Credentials",
                )
            });
        };
        let expires = field("Expiration")
            .and_then(|e| UtcTime::parse_iso8601(&normalise_time(e)))
            .map(|t| t.to_unix())
            .unwrap_or(now + SESSION_SECONDS);
        Ok((
            Credentials {
                access_key_id: ak.to_string(),
                secret: Secret::new(sk),
                session_token: Some(Secret::new(token)),
            },
            expires,
        ))
    }
}

/// `2025-01-01T01:00:00.123Z` → `2025-01-01T01:00:00Z` (fractions dropped).
fn normalise_time(s: &str) -> String {
    match s.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_times_lose_their_fractions() {
        assert_eq!(
            normalise_time("2025-01-01T01:00:00.123Z"),
            "2025-01-01T01:00:00Z"
        );
        assert_eq!(
            normalise_time("2025-01-01T01:00:00Z"),
            "2025-01-01T01:00:00Z"
        );
    }
}
