//! The web config file (`--web.config.file`) in the Prometheus exporter-toolkit's YAML schema,
//! so the snippets operators already have for node_exporter and friends work here:
//! `tls_server_config` (certificate, key, minimum and maximum TLS version, client certificates
//! verified against `client_ca_file`), `basic_auth_users` (bcrypt hashes) and
//! `http_server_config.headers`. Relative paths are relative to the file's directory. The file
//! and the files it names are checked at every connection and request and re-read when one
//! changed, so a rotated certificate is served and a removed user refused without a restart. A
//! change that does not load fails closed, as the exporter-toolkit does: connections are
//! refused (and the error logged) until the files load again, rather than served with settings
//! the operator meant to replace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderName, HeaderValue};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tracing::{error, info};

use super::auth::{is_bcrypt_hash, BasicAuth};
use crate::util::{file_stamps, FileStamp};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    headers: Option<BTreeMap<String, String>>,
    http2: Option<bool>,
}

/// The response headers the exporter-toolkit allows to be set.
const ALLOWED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// The settings a web config gives.
#[derive(Default)]
pub struct WebSettings {
    /// TLS, when `tls_server_config` is set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// BasicAuth of every route (the admin routes have their own users).
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Headers added to every answer.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The files a web config was loaded from, as last seen.
type Stamp = Vec<FileStamp>;

/// A web config file kept current.
pub struct WebConfig {
    path: PathBuf,
    /// The files' stamp when last loaded, and what loading them gave.
    state: Mutex<(Stamp, Result<Arc<WebSettings>, String>)>,
}

impl WebConfig {
    /// Load a web config file; an error names the file, the key and the fix.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let before = file_stamps(&[path.to_path_buf()]);
        let (settings, files) = load(path)?;
        let seen = restamp(before, &files);
        Ok(WebConfig {
            path: path.to_path_buf(),
            state: Mutex::new((seen, Ok(Arc::new(settings)))),
        })
    }

    /// The settings in force, re-read first when the web config or a file it names changed;
    /// an error while the files do not load.
    pub fn current(&self) -> Result<Arc<WebSettings>, String> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let files: Vec<PathBuf> = state.0.iter().map(|(p, _, _)| p.clone()).collect();
        // Stamped before reading, so a change made while loading is seen next time.
        let before = file_stamps(&files);
        if before != state.0 {
            match load(&self.path) {
                Ok((settings, files)) => {
                    info!(file = %self.path.display(), "web config or certificate changed; reloaded");
                    *state = (restamp(before, &files), Ok(Arc::new(settings)));
                }
                Err(e) => {
                    error!(error = %e, "web config change does not load: connections are refused until it is fixed");
                    *state = (before, Err(e));
                }
            }
        }
        state.1.clone()
    }
}

/// The stamp of `files`, taking the values stamped before loading for the files known then.
fn restamp(before: Stamp, files: &[PathBuf]) -> Stamp {
    let after = file_stamps(files);
    after
        .into_iter()
        .map(|entry| {
            before
                .iter()
                .find(|(p, _, _)| *p == entry.0)
                .cloned()
                .unwrap_or(entry)
        })
        .collect()
}

/// Parse and check a web config; also returns every file it depends on.
fn load(path: &Path) -> Result<(WebSettings, Vec<PathBuf>), String> {
    let at = |key: &str, msg: &str| format!("{}: {key}: {msg}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the web config: {e}", path.display()))?;
    let raw: RawWebConfig = if text.trim().is_empty() {
        RawWebConfig::default()
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| {
            format!(
                "{}: {e} (the exporter-toolkit web config: tls_server_config, http_server_config, basic_auth_users)",
                path.display()
            )
        })?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mut files = vec![path.to_path_buf()];
    let mut settings = WebSettings::default();
    if let Some(users) = raw.basic_auth_users {
        for (user, hash) in &users {
            if !is_bcrypt_hash(hash) {
                return Err(at(
                    &format!("basic_auth_users.{user}"),
                    "must be a bcrypt hash, not a password: make one with `multicloud-exporter hash-password`",
                ));
            }
        }
        if !users.is_empty() {
            settings.basic_auth = Some(Arc::new(BasicAuth::new(users)));
        }
    }
    if let Some(http) = raw.http_server_config {
        let _ = http.http2;
        for (name, value) in http.headers.unwrap_or_default() {
            let Some(allowed) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(&name))
            else {
                return Err(at(
                    &format!("http_server_config.headers.{name}"),
                    &format!(
                        "is not a header that may be set: use {}",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            let value = HeaderValue::from_str(&value).map_err(|_| {
                at(
                    &format!("http_server_config.headers.{name}"),
                    "is not a valid header value",
                )
            })?;
            let name = HeaderName::from_bytes(allowed.as_bytes()).map_err(|_| {
                at(
                    &format!("http_server_config.headers.{allowed}"),
                    "is not a header name",
                )
            })?;
            settings.headers.push((name, value));
        }
    }
    let tls_configured = raw.tls_server_config.as_ref().is_some_and(|t| {
        t.cert_file.is_some() || t.cert.is_some() || t.key_file.is_some() || t.key.is_some()
    });
    if let Some(tls) = raw.tls_server_config.filter(|_| tls_configured) {
        for (key, set) in [
            ("cipher_suites", tls.cipher_suites.is_some()),
            ("curve_preferences", tls.curve_preferences.is_some()),
            (
                "prefer_server_cipher_suites",
                tls.prefer_server_cipher_suites.is_some(),
            ),
            ("client_allowed_sans", tls.client_allowed_sans.is_some()),
        ] {
            if set {
                return Err(at(
                    &format!("tls_server_config.{key}"),
                    "is not supported here (the TLS library chooses only modern, safe suites and curves): remove it",
                ));
            }
        }
        // Each PEM comes from a file (watched for changes) or inline.
        let mut pem = |file: &Option<String>,
                       inline: &Option<String>,
                       key: &str,
                       what: &str|
         -> Result<Vec<u8>, String> {
            match (file, inline) {
                (Some(_), Some(_)) => Err(at(
                    &format!("tls_server_config.{key}"),
                    &format!("give {key}_file or {key}, not both"),
                )),
                (Some(f), None) => {
                    let p = resolve(f);
                    let bytes = std::fs::read(&p).map_err(|e| {
                        at(
                            &format!("tls_server_config.{key}_file"),
                            &format!("{}: {e}", p.display()),
                        )
                    })?;
                    files.push(p);
                    Ok(bytes)
                }
                (None, Some(text)) => Ok(text.clone().into_bytes()),
                (None, None) => Err(at(
                    &format!("tls_server_config.{key}_file"),
                    &format!("is required: {what} (PEM)"),
                )),
            }
        };
        let cert_pem = pem(&tls.cert_file, &tls.cert, "cert", "the server certificate")?;
        let key_pem = pem(&tls.key_file, &tls.key, "key", "the server's private key")?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| at("tls_server_config.cert_file", &e.to_string()))?;
        if certs.is_empty() {
            return Err(at(
                "tls_server_config.cert_file",
                "holds no PEM certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| at("tls_server_config.key_file", &e.to_string()))?;
        let versions = protocol_versions(tls.min_version.as_deref(), tls.max_version.as_deref())
            .map_err(|e| at("tls_server_config.min_version/max_version", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| at("tls_server_config", &e.to_string()))?;
        let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
        let has_ca = tls.client_ca_file.is_some() || tls.client_ca.is_some();
        let builder = match auth_type {
            "NoClientCert" if has_ca => {
                return Err(at(
                    "tls_server_config.client_ca_file",
                    "is set but client_auth_type is NoClientCert, so no client certificate would be checked: set client_auth_type: RequireAndVerifyClientCert (or VerifyClientCertIfGiven), or remove the CA",
                ))
            }
            "NoClientCert" => builder.with_no_client_auth(),
            "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
                let ca_pem = pem(
                    &tls.client_ca_file,
                    &tls.client_ca,
                    "client_ca",
                    &format!("with client_auth_type {auth_type}, the CA that signs client certificates"),
                )?;
                let mut roots = RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(&ca_pem) {
                    let ca = ca.map_err(|e| at("tls_server_config.client_ca_file", &e.to_string()))?;
                    roots
                        .add(ca)
                        .map_err(|e| at("tls_server_config.client_ca_file", &e.to_string()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth_type == "VerifyClientCertIfGiven" {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| at("tls_server_config.client_ca_file", &e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            other => {
                return Err(at(
                    "tls_server_config.client_auth_type",
                    &format!("{other:?} is not supported (it would accept certificates nobody verified): use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
                ))
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            at(
                "tls_server_config",
                &format!("the certificate and key do not go together: {e}"),
            )
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        settings.tls = Some(Arc::new(config));
    }
    Ok((settings, files))
}

fn protocol_versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let rank = |v: &str| match v {
        "TLS12" => Ok(2),
        "TLS13" => Ok(3),
        "TLS10" | "TLS11" => Err(format!(
            "{v} is not supported (it is broken): use TLS12 or TLS13"
        )),
        other => Err(format!(
            "{other:?} is not a TLS version: use TLS12 or TLS13"
        )),
    };
    let lo = min.map(rank).transpose()?.unwrap_or(2);
    let hi = max.map(rank).transpose()?.unwrap_or(3);
    if lo > hi {
        return Err("min_version is above max_version".into());
    }
    let mut out = Vec::new();
    if lo <= 2 && hi >= 2 {
        out.push(&rustls::version::TLS12);
    }
    if hi >= 3 {
        out.push(&rustls::version::TLS13);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mce-web-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn err(name: &str, yaml: &str) -> String {
        let d = dir(name);
        let p = d.join("web.yml");
        std::fs::write(&p, yaml).unwrap();
        let e = WebConfig::load(&p).err().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
        e
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_fix() {
        let e = err(
            "unknown",
            "tls_server_config:\n  cert_file: a\n  certfile: b\n",
        );
        assert!(
            e.contains("web.yml: tls_server_config: unknown field `certfile`"),
            "{e}"
        );
        let e = err("nokey", "tls_server_config:\n  cert: x\n");
        assert!(
            e.ends_with("tls_server_config.key_file: is required: the server's private key (PEM)"),
            "{e}"
        );
        let e = err("old", "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n");
        assert!(e.ends_with("tls_server_config.cipher_suites: is not supported here (the TLS library chooses only modern, safe suites and curves): remove it"), "{e}");
        let e = err("users", "basic_auth_users:\n  alice: hunter2\n");
        assert!(e.ends_with("basic_auth_users.alice: must be a bcrypt hash, not a password: make one with `multicloud-exporter hash-password`"), "{e}");
        assert!(!e.contains("hunter2"));
        let e = err(
            "header",
            "http_server_config:\n  headers:\n    Set-Cookie: a=b\n",
        );
        assert!(
            e.contains("http_server_config.headers.Set-Cookie: is not a header that may be set"),
            "{e}"
        );
        assert_eq!(protocol_versions(Some("TLS13"), None).unwrap().len(), 1);
        assert_eq!(protocol_versions(None, None).unwrap().len(), 2);
        assert!(protocol_versions(Some("TLS10"), None)
            .unwrap_err()
            .contains("not supported"));
        assert!(protocol_versions(Some("TLS13"), Some("TLS12")).is_err());
    }

    #[test]
    fn an_empty_file_means_plain_http_without_auth() {
        let d = dir("empty");
        let p = d.join("web.yml");
        std::fs::write(&p, "").unwrap();
        let w = WebConfig::load(&p).unwrap();
        let s = w.current().unwrap();
        assert!(s.tls.is_none() && s.basic_auth.is_none() && s.headers.is_empty());
        // An empty tls_server_config is plain HTTP too, as in the exporter-toolkit.
        std::fs::write(&p, "tls_server_config: {}\n").unwrap();
        assert!(WebConfig::load(&p)
            .unwrap()
            .current()
            .unwrap()
            .tls
            .is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
