//! Where the list of replicas comes from: a fixed list (none, static), a members file, or the
//! addresses DNS gives for a Kubernetes headless Service. A lookup either gives a usable list,
//! sorted (order carries no meaning), or says why not; the caller keeps the last good list on
//! failure. The members file is read at every lookup rather than on a modification-time
//! change: it is small, and an edit within the file system's timestamp resolution, or a file
//! restored to its old size and time after a bad edit, would otherwise go unseen.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use super::parse_members_file;
use crate::config::{ClusterConfig, MembershipSource};

/// How long one DNS lookup may take before it counts as failed.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// A membership source, ready to look up.
pub enum Source {
    /// The members never change.
    Fixed(Vec<String>),
    /// One member per line of a file.
    File(PathBuf),
    /// The A and AAAA records of a name, of this replica's address family: a dual-stack pod
    /// has an address of each, but `POD_IP` names only one, and counting both as members would
    /// leave the other family's share to no replica.
    Headless {
        /// The name asked for.
        service: String,
        /// The resolver, without a cache: every lookup asks the server.
        resolver: Box<TokioResolver>,
        /// Keep IPv4 addresses (else IPv6), as `POD_IP` is.
        ipv4: bool,
    },
}

/// What a lookup found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// The members, validated (not empty, no duplicates) and sorted.
    Members(Vec<String>),
    /// Why no list could be had.
    Failed(String),
}

impl Source {
    /// The source a config asks for, and this replica's member name in it.
    pub fn from_config(c: &ClusterConfig) -> Result<(Source, String), String> {
        match c.discovery {
            MembershipSource::None | MembershipSource::Static => Ok((
                Source::Fixed((0..c.workers).map(|i| i.to_string()).collect()),
                c.index.to_string(),
            )),
            MembershipSource::File => {
                let path = c.file.clone().ok_or(
                    "cluster.file: file membership needs the members file: set CLUSTER_FILE or [cluster] file",
                )?;
                let self_name = match &c.self_name {
                    Some(s) => s.clone(),
                    None => host_name().ok_or_else(|| {
                        format!(
                            "cluster: file membership needs this replica's name as {} lists it: set POD_NAME (or HOSTNAME)",
                            path.display()
                        )
                    })?,
                };
                Ok((Source::File(path), self_name))
            }
            MembershipSource::Headless => {
                let service = c.service.clone().ok_or(
                    "cluster.service: headless membership needs the headless Service's DNS name: set CLUSTER_SVC or [cluster] service",
                )?;
                let self_name = c.self_name.clone().ok_or(
                    "cluster: headless membership needs this replica's address: set POD_IP (in Kubernetes, from the pod's status.podIP through the downward API)",
                )?;
                let ipv4 = self_name
                    .parse::<IpAddr>()
                    .map(|a| a.is_ipv4())
                    .map_err(|_| format!("environment POD_IP: {self_name:?} is not an IP address: set it from the pod's status.podIP"))?;
                let resolver = resolver(c.dns_server)?;
                Ok((
                    Source::Headless {
                        service,
                        resolver: Box::new(resolver),
                        ipv4,
                    },
                    self_name,
                ))
            }
        }
    }

    /// Look the members up.
    pub async fn lookup(&self) -> Lookup {
        match self {
            Source::Fixed(m) => Lookup::Members(m.clone()),
            Source::File(path) => read_file(path),
            Source::Headless {
                service,
                resolver,
                ipv4,
            } => resolve(resolver, service, *ipv4).await,
        }
    }
}

fn read_file(path: &std::path::Path) -> Lookup {
    let failed = |e: String| {
        Lookup::Failed(format!(
            "members file {} (CLUSTER_FILE or cluster.file): {e}",
            path.display()
        ))
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return failed(e.to_string()),
    };
    let mut members = parse_members_file(&text);
    if let Err(e) = super::check_members(&members) {
        return failed(e);
    }
    members.sort();
    Lookup::Members(members)
}

async fn resolve(resolver: &TokioResolver, service: &str, ipv4: bool) -> Lookup {
    let failed = |e: String| {
        Lookup::Failed(format!(
            "DNS lookup of {service} (CLUSTER_SVC or cluster.service; server from cluster.dns_server or the system): {e}"
        ))
    };
    let answer = match tokio::time::timeout(DNS_TIMEOUT, resolver.lookup_ip(service)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return failed(e.to_string()),
        Err(_) => return failed(format!("no answer within {}s", DNS_TIMEOUT.as_secs())),
    };
    let mut ips: Vec<IpAddr> = answer.iter().filter(|a| a.is_ipv4() == ipv4).collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        let family = if ipv4 { "IPv4" } else { "IPv6" };
        return failed(format!("no {family} addresses (the family of POD_IP)"));
    }
    Lookup::Members(ips.iter().map(IpAddr::to_string).collect())
}

/// A resolver without a cache (membership polling must see changes at once): the system's
/// (`/etc/resolv.conf`) or, with `dns_server`, that server alone over UDP and TCP.
fn resolver(dns_server: Option<std::net::SocketAddr>) -> Result<TokioResolver, String> {
    let mut builder = match dns_server {
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("cluster: cannot read the system DNS configuration: {e}; set [cluster] dns_server = \"IP:PORT\""))?,
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
    };
    builder.options_mut().cache_size = 0;
    builder.options_mut().timeout = Duration::from_secs(2);
    builder.options_mut().attempts = 2;
    builder
        .build()
        .map_err(|e| format!("cluster: cannot build the DNS resolver: {e}"))
}

/// The kernel's host name, for a host whose environment has neither POD_NAME nor HOSTNAME
/// (systemd services get no HOSTNAME).
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_config(path: &std::path::Path, self_name: Option<&str>) -> ClusterConfig {
        ClusterConfig {
            discovery: MembershipSource::File,
            file: Some(path.to_path_buf()),
            self_name: self_name.map(str::to_string),
            ..ClusterConfig::default()
        }
    }

    #[tokio::test]
    async fn a_members_file_is_read_at_every_lookup_and_checked() {
        let dir = std::env::temp_dir().join(format!("mce-members-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("members");
        std::fs::write(&path, "# replicas\nexporter-1 # rack b\n\n exporter-0\n").unwrap();
        let (source, me) = Source::from_config(&file_config(&path, Some("exporter-1"))).unwrap();
        assert_eq!(me, "exporter-1");
        assert_eq!(
            source.lookup().await,
            Lookup::Members(vec!["exporter-0".into(), "exporter-1".into()])
        );
        std::fs::write(&path, "exporter-0\nexporter-1\nexporter-2\n").unwrap();
        assert_eq!(
            source.lookup().await,
            Lookup::Members(vec![
                "exporter-0".into(),
                "exporter-1".into(),
                "exporter-2".into()
            ])
        );
        std::fs::write(&path, "exporter-0\nexporter-0\n").unwrap();
        let bad = source.lookup().await;
        assert!(
            matches!(&bad, Lookup::Failed(e) if e.ends_with("member \"exporter-0\" is listed twice")),
            "{bad:?}"
        );
        std::fs::write(&path, "# nobody\n\n").unwrap();
        let empty = source.lookup().await;
        assert!(
            matches!(&empty, Lookup::Failed(e) if e.contains("the membership is empty")),
            "{empty:?}"
        );
        std::fs::remove_file(&path).unwrap();
        let gone = source.lookup().await;
        assert!(
            matches!(&gone, Lookup::Failed(e) if e.starts_with(&format!("members file {} (CLUSTER_FILE or cluster.file): ", path.display()))),
            "{gone:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_source_needs_its_settings() {
        let headless = ClusterConfig {
            discovery: MembershipSource::Headless,
            service: Some("mce-headless.monitoring.svc.cluster.local".into()),
            dns_server: Some("127.0.0.1:53".parse().unwrap()),
            ..ClusterConfig::default()
        };
        let e = Source::from_config(&headless).err().unwrap();
        assert!(e.contains("set POD_IP"), "{e}");
        let v6 = ClusterConfig {
            self_name: Some("fd00::7".into()),
            ..headless.clone()
        };
        assert!(matches!(
            Source::from_config(&v6).unwrap().0,
            Source::Headless { ipv4: false, .. }
        ));
        let no_service = ClusterConfig {
            service: None,
            self_name: Some("10.0.0.1".into()),
            ..headless.clone()
        };
        let e = Source::from_config(&no_service).err().unwrap();
        assert!(e.starts_with("cluster.service: "), "{e}");
        let no_file = ClusterConfig {
            file: None,
            ..file_config(std::path::Path::new("/x"), Some("a"))
        };
        let e = Source::from_config(&no_file).err().unwrap();
        assert!(e.starts_with("cluster.file: "), "{e}");
        let fixed = ClusterConfig {
            discovery: MembershipSource::Static,
            workers: 3,
            index: 2,
            ..ClusterConfig::default()
        };
        let (source, me) = Source::from_config(&fixed).unwrap();
        assert_eq!(me, "2");
        assert!(matches!(source, Source::Fixed(m) if m == ["0", "1", "2"]));
    }
}
