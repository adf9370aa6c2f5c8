//! TLS, client certificates, BasicAuth and headers from `--web.config.file`, with the real
//! binary and certificates made for the test: plain HTTP and certificate-less clients are
//! refused, a rotated certificate is served to the next connection without a restart, and a
//! real Prometheus scrapes the exporter over TLS with BasicAuth.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use multicloud_exporter::cloud::Cloud;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls_pki_types::{CertificateDer, ServerName};

use super::procs::*;

/// A test PKI: a CA, and server and client certificates it signs.
struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "multicloud-exporter test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca,
        }
    }

    /// Write `<name>.crt` and `<name>.key` (replacing them atomically); the certificate's DER.
    fn issue(&self, name: &str, common_name: &str, client: bool) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        for (ext, text) in [("crt", cert.pem()), ("key", key.serialize_pem())] {
            let aside = self.dir.join(format!("{name}.{ext}.tmp"));
            std::fs::write(&aside, text).unwrap();
            std::fs::rename(&aside, self.dir.join(format!("{name}.{ext}"))).unwrap();
        }
        cert.der().clone()
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    /// An HTTPS client trusting the CA, with the client certificate when `with_cert`.
    fn client(&self, with_cert: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(30))
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.file("ca.crt").as_bytes()).unwrap(),
            );
        if with_cert {
            let pem = format!("{}{}", self.file("client.crt"), self.file("client.key"));
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }

    /// The certificate the server presents to a new connection.
    async fn served_certificate(&self, addr: &str) -> CertificateDer<'static> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.der().to_vec()))
            .unwrap();
        let certs = vec![CertificateDer::from(
            rustls_pki_types::pem::PemObject::from_pem_slice(self.file("client.crt").as_bytes())
                .map(|c: CertificateDer<'static>| c.to_vec())
                .unwrap(),
        )];
        let key =
            rustls_pki_types::pem::PemObject::from_pem_slice(self.file("client.key").as_bytes())
                .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    }
}

fn basic_users() -> (String, String) {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    (format!("basic_auth_users:\n  alice: \"{hash}\"\n"), hash)
}

/// A small config: the Tencent account, load balancers only.
fn small_config(fleet: &Fleet, server: &str) -> PathBuf {
    let text = fleet.config_text(server, "", |a| a.cloud == Cloud::Tencent);
    let text = text.replace(
        "products = [\"clb\", \"gwlb\", \"bwp\", \"s3\"]",
        "products = [\"clb\"]",
    );
    fleet.write("exporter", &text)
}

async fn status(
    client: &reqwest::Client,
    url: &str,
    auth: bool,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = client.get(url);
    if auth {
        req = req.basic_auth("alice", Some("s3cret"));
    }
    req.send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_and_basic_auth_and_a_rotated_certificate() {
    let fleet = Fleet::start("tls").await;
    let pki = Pki::new(&fleet.dir);
    let first = pki.issue("server", "first", false);
    pki.issue("client", "scraper", true);
    let (users, _) = basic_users();
    std::fs::write(
        fleet.dir.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n{users}"
        ),
    )
    .unwrap();
    let config = small_config(&fleet, "");
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let e = fleet.serve_with_web("exporter", &addr, &config, &[]);
    let https = format!("https://localhost:{}", addr.rsplit(':').next().unwrap());
    let good = pki.client(true);
    wait_for("the TLS exporter", &[&e], || async {
        status(&good, &format!("{https}/healthz"), true)
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    // The right certificate and password: the metrics, with the configured header.
    let r = status(&good, &format!("{https}/metrics"), true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    assert!(r.text().await.unwrap().contains("clb_active_connections{"));
    // No password: 401, the probes included (probes_without_auth is off).
    for path in ["/metrics", "/healthz"] {
        let r = status(&good, &format!("{https}{path}"), false)
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Basic realm=\"multicloud-exporter\""
        );
    }
    // No client certificate, or plain HTTP: refused before any HTTP.
    assert!(
        status(&pki.client(false), &format!("{https}/metrics"), true)
            .await
            .is_err()
    );
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(status(&plain, &format!("http://{addr}/metrics"), true)
        .await
        .is_err());
    // Rotation: the next connection gets the new certificate, without a restart.
    assert_eq!(pki.served_certificate(&addr).await, first);
    let second = pki.issue("server", "second", false);
    assert_ne!(first, second);
    assert_eq!(pki.served_certificate(&addr).await, second);
    let r = status(&good, &format!("{https}/metrics"), true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A broken rotation (a key that does not match) closes the door until it is fixed.
    let key = pki.file("server.key");
    pki.issue("spare", "spare", false);
    std::fs::write(
        fleet.dir.join("server.key"),
        format!("{}\n", pki.file("spare.key")),
    )
    .unwrap();
    wait_for("requests to be refused", &[&e], || async {
        // An open keep-alive connection gets 503, a new one is dropped before TLS.
        status(&good, &format!("{https}/metrics"), true)
            .await
            .map_or(true, |r| r.status() == 503)
    })
    .await;
    assert!(status(&pki.client(true), &format!("{https}/metrics"), true)
        .await
        .is_err());
    assert!(
        e.log().contains("web config change does not load"),
        "{}",
        e.log()
    );
    std::fs::write(fleet.dir.join("server.key"), key).unwrap();
    wait_for("the fixed pair to be served", &[&e], || async {
        status(&good, &format!("{https}/metrics"), true)
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(pki.served_certificate(&addr).await, second);
    assert!(!e.log().contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_may_skip_basic_auth_and_client_certificates_may_be_optional() {
    let fleet = Fleet::start("tls-probes").await;
    let pki = Pki::new(&fleet.dir);
    pki.issue("server", "server", false);
    pki.issue("client", "scraper", true);
    let (users, _) = basic_users();
    std::fs::write(
        fleet.dir.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n{users}"),
    )
    .unwrap();
    let config = small_config(&fleet, "probes_without_auth = true");
    let addr = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let e = fleet.serve_with_web("exporter", &addr, &config, &[]);
    let https = format!("https://localhost:{}", addr.rsplit(':').next().unwrap());
    let anonymous = pki.client(false);
    wait_for("the TLS exporter", &[&e], || async {
        status(&anonymous, &format!("{https}/healthz"), false)
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(
        status(&anonymous, &format!("{https}/-/ready"), false)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        status(&anonymous, &format!("{https}/metrics"), false)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        status(&anonymous, &format!("{https}/metrics"), true)
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_over_tls_with_basic_auth() {
    let Some(prometheus) = prometheus_binary() else {
        return;
    };
    let fleet = Fleet::start("tls-prometheus").await;
    let pki = Pki::new(&fleet.dir);
    pki.issue("server", "server", false);
    pki.issue("client", "prometheus", true);
    let (users, _) = basic_users();
    std::fs::write(
        fleet.dir.join("web.yml"),
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n{users}"),
    )
    .unwrap();
    let config = small_config(&fleet, "");
    let port = free_port("127.0.0.1");
    let addr = format!("127.0.0.1:{port}");
    let e = fleet.serve_with_web("exporter", &addr, &config, &[]);
    let d = fleet.dir.display();
    let (prom, prom_addr) = start_prometheus(
        &prometheus,
        &fleet,
        &format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: multicloud\n    scheme: https\n    tls_config:\n      ca_file: {d}/ca.crt\n      cert_file: {d}/client.crt\n      key_file: {d}/client.key\n      server_name: localhost\n    basic_auth:\n      username: alice\n      password: s3cret\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    );
    let query = format!("http://{prom_addr}/api/v1/query?query=up%7Bjob%3D%22multicloud%22%7D");
    wait_for(
        "Prometheus to scrape the exporter with up = 1",
        &[&prom, &e],
        || async {
            let Some((200, body)) = get(&query).await else {
                return false;
            };
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            v["data"]["result"][0]["value"][1] == "1"
        },
    )
    .await;
    let series = format!("http://{prom_addr}/api/v1/query?query=count(clb_active_connections)");
    wait_for(
        "Prometheus to hold the exporter's series",
        &[&prom, &e],
        || async {
            let Some((200, body)) = get(&series).await else {
                return false;
            };
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 0)
        },
    )
    .await;
}
