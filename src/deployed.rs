//! What the hosts actually hold and serve, read over SSH in one round per host: the CA files
//! regboot manages (certs.d for every reference, the OS trust store's anchors) and the
//! certificate chain each registry host serves (its service task's, with `deploy: swarm`; a
//! TLS handshake through an SSH tunnel), plus
//! the chain served on the registry hostname (and VIP) as a client host reaches it.
//! `certs check -i` reports it; `rotate --ca` derives its stage from it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use futures::future::join_all;
use time::{Duration, OffsetDateTime};

use crate::engine::fleet::{self, Node};
use crate::engine::limit;
use crate::engine::probe::{HostState, ProbeRequest};
use crate::facts::Facts;
use crate::inventory::{Deploy, Host, Inventory, Role};
use crate::modules::{CaFile, REGISTRY, registry_front};
use crate::pki::check::{self, CheckRow};
use crate::pki::state::{CA_CERT, REGISTRY_CERT};
use crate::pki::{StateDir, inspect, rotation};
use crate::registry_http;

/// One host's certificates.
#[derive(Debug, Clone)]
pub struct HostCerts {
    pub host: String,
    /// Why the host could not be read (then the rest is empty).
    pub error: Option<String>,
    /// Where the current CA belongs on this host: `ca.crt` in every certs.d reference and
    /// the trust store anchor (when the OS family is known).
    pub ca_paths: Vec<String>,
    /// Where a rotation's extra CA (next or previous) would be, in the same order.
    pub extra_paths: Vec<(crate::pki::rotation::CaRole, String)>,
    /// Every regboot CA file present: path -> SHA-256 fingerprint of its certificate
    /// (`None`: not a readable certificate).
    pub ca_files: BTreeMap<String, Option<String>>,
    /// The chain the registry on this host serves on 127.0.0.1 (registry hosts only).
    pub served: Option<Result<Vec<String>, String>>,
}

impl HostCerts {
    /// Whether every CA path holds the certificate with this fingerprint.
    pub fn missing_at(&self, fingerprint: &str, paths: &[String]) -> Vec<String> {
        paths
            .iter()
            .filter(|p| self.ca_files.get(*p).and_then(Option::as_deref) != Some(fingerprint))
            .cloned()
            .collect()
    }
}

/// A name clients use for the registry, as one host reaches it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `hostname:port` or `vip:port`.
    pub name: String,
    /// The host the handshake went through.
    pub via: String,
    pub served: Result<Vec<String>, String>,
}

#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub hosts: Vec<HostCerts>,
    pub endpoints: Vec<Endpoint>,
    /// Every readable CA file's certificate, by SHA-256 fingerprint (what the metrics report
    /// for each copy).
    pub ca_certs: BTreeMap<String, inspect::CertInfo>,
}

impl Survey {
    pub fn unreachable(&self) -> Vec<&HostCerts> {
        self.hosts.iter().filter(|h| h.error.is_some()).collect()
    }
}

fn fingerprint(pem: &[u8]) -> Option<String> {
    inspect::cert_info(&String::from_utf8_lossy(pem))
        .ok()
        .map(|i| i.fingerprint_sha256)
}

/// What the probe must read for a survey: every CA file any module may place.
pub(crate) fn request(inv: &Inventory) -> ProbeRequest {
    let mut content: Vec<String> = REGISTRY
        .iter()
        .flat_map(|m| m.ca_files(inv, None))
        .map(|f| f.path)
        .collect();
    if inv.registry.deploy == Deploy::Swarm {
        content.push(registry_front::BACKEND.into());
    }
    ProbeRequest {
        content,
        ..ProbeRequest::default()
    }
}

/// Where a registry host's registry serves: the registry port, or with `deploy: swarm` the
/// slot of the service task its front passes to (so `certs check` reads what the task serves).
fn served_port(inv: &Inventory, state: &HostState) -> u16 {
    match inv.registry.deploy {
        Deploy::Container => inv.registry.port,
        Deploy::Swarm => registry_front::current_port(
            state
                .files
                .get(registry_front::BACKEND)
                .and_then(Option::as_ref)
                .and_then(|f| f.content.as_deref())
                .map(String::from_utf8_lossy)
                .as_deref(),
        ),
    }
}

/// The CA copies apply places on `host`, as its steps' modules say.
pub(crate) fn ca_files(inv: &Inventory, host: &Host, facts: &Facts) -> Vec<CaFile> {
    crate::playbooks::apply_steps().ca_files(inv, host, Some(facts))
}

/// Connect to the hosts inside `limit`, survey them, close (`certs check -i`).
pub async fn survey_hosts(inv: &Inventory, limit: Option<&str>, forks: usize) -> Result<Survey> {
    let hosts = limit::select(inv, limit)?;
    let mut nodes = fleet::connect(&hosts, forks).await;
    fleet::probe(&mut nodes, |_| request(inv)).await;
    let survey = survey(inv, &nodes).await;
    fleet::close(&mut nodes).await;
    Ok(survey)
}

/// What `nodes` (probed with [`request`]) hold, and what the registry hosts among them and
/// the names clients use serve.
pub(crate) async fn survey(inv: &Inventory, nodes: &[Node<'_>]) -> Survey {
    let port = inv.registry.port;
    let hostname = inv.registry.hostname.as_str();
    let hosts = join_all(nodes.iter().map(|n| async move {
        let (Some(remote), Some(state), None) = (&n.remote, &n.state, &n.error) else {
            return unread(&n.host.name, n.error.clone().unwrap_or_default());
        };
        let served = if n.host.has_role(Role::Registry) {
            let port = served_port(inv, state);
            Some(
                registry_http::served_chain(&remote.session, "127.0.0.1", port, hostname)
                    .await
                    .map_err(|e| format!("{e:#}")),
            )
        } else {
            None
        };
        host_certs(inv, n.host, state, served)
    }))
    .await;
    // The names clients use, as a client host reaches them (an agent if there is one, its
    // /etc/hosts resolving the hostname).
    let reachable = || nodes.iter().filter(|n| n.alive());
    let via = reachable()
        .find(|n| n.host.has_role(Role::Agent))
        .or_else(|| reachable().next());
    let mut endpoints = Vec::new();
    if let Some(via) = via {
        let remote = via.remote.as_ref().expect("alive nodes are connected");
        let mut names = vec![hostname.to_string()];
        if let Some(ha) = &inv.ha {
            names.push(ha.vip.to_string());
        }
        for name in names {
            let served = registry_http::served_chain(&remote.session, &name, port, hostname)
                .await
                .map_err(|e| format!("{e:#}"));
            endpoints.push(Endpoint {
                name: format!("{name}:{port}"),
                via: via.host.name.clone(),
                served,
            });
        }
    }
    let ca_certs = nodes
        .iter()
        .filter_map(|n| n.state.as_ref())
        .flat_map(|s| s.files.values().flatten())
        .filter_map(|f| f.content.as_deref())
        .filter_map(|pem| inspect::cert_info(&String::from_utf8_lossy(pem)).ok())
        .map(|info| (info.fingerprint_sha256.clone(), info))
        .collect();
    Survey {
        hosts,
        endpoints,
        ca_certs,
    }
}

fn unread(name: &str, error: String) -> HostCerts {
    HostCerts {
        host: name.to_string(),
        error: Some(error),
        ca_paths: Vec::new(),
        extra_paths: Vec::new(),
        ca_files: BTreeMap::new(),
        served: None,
    }
}

/// A host's CA files, as the modules that place them say.
fn host_certs(
    inv: &Inventory,
    host: &Host,
    state: &HostState,
    served: Option<Result<Vec<String>, String>>,
) -> HostCerts {
    let mut certs = HostCerts {
        error: None,
        served,
        ..unread(&host.name, String::new())
    };
    for file in ca_files(inv, host, &state.facts) {
        match file.role {
            None => certs.ca_paths.push(file.path),
            Some(role) => certs.extra_paths.push((role, file.path)),
        }
    }
    // Every file probed is a CA copy, but for the front's backend file (`served_port`).
    for (path, file) in state
        .files
        .iter()
        .filter(|(p, _)| *p != registry_front::BACKEND)
    {
        if let Some(f) = file {
            let fp = f.content.as_deref().and_then(fingerprint);
            certs.ca_files.insert(path.clone(), fp);
        }
    }
    certs
}

/// The `certs check` rows for what is deployed: the certificate each registry host (and each
/// client-facing name) serves, which must be the state directory's `registry.crt`, and per
/// host its CA files, which must include the current CA everywhere it belongs.
pub fn check_rows(
    survey: &Survey,
    state: &StateDir,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Result<Vec<CheckRow>> {
    let leaf_pem = state.read(REGISTRY_CERT)?;
    let leaf_fp = leaf_pem.as_deref().and_then(|p| fingerprint(p.as_bytes()));
    let ca_pem = state.read(CA_CERT)?;
    let ca_fp = ca_pem.as_deref().and_then(|p| fingerprint(p.as_bytes()));
    let mut known: Vec<String> = ca_fp.iter().cloned().collect();
    for (_, pem) in rotation::extra_cas(state)? {
        known.extend(fingerprint(pem.as_bytes()));
    }
    let served_row = |name: String, path: String, served: &Result<Vec<String>, String>| {
        let chain = match served {
            Ok(chain) => chain,
            Err(e) => return CheckRow::unreadable(&name, &path, Some(e.clone())),
        };
        check::row(
            &name,
            Path::new(&path),
            Some(&chain[0]),
            renew_before,
            now,
            |info| {
                (Some(&info.fingerprint_sha256) != leaf_fp.as_ref()).then(|| {
                    format!(
                        "{path} serves a certificate other than the state directory's registry.crt \
                     (serial {}): run `regboot apply` to roll out the current one",
                        info.serial
                    )
                })
            },
        )
    };
    let mut rows = Vec::new();
    for h in &survey.hosts {
        if let Some(served) = &h.served {
            rows.push(served_row(
                format!("served@{}", h.host),
                format!("{}:127.0.0.1", h.host),
                served,
            ));
        }
    }
    for e in &survey.endpoints {
        rows.push(served_row(
            format!("served@{}", e.name),
            format!("{} (from {})", e.name, e.via),
            &e.served,
        ));
    }
    for h in &survey.hosts {
        let name = format!("ca@{}", h.host);
        if let Some(error) = &h.error {
            rows.push(CheckRow::unreadable(&name, &h.host, Some(error.clone())));
            continue;
        }
        let (Some(ca_pem), Some(ca_fp)) = (&ca_pem, &ca_fp) else {
            rows.push(CheckRow::unreadable(
                &name,
                &h.host,
                Some("no CA in the state directory".into()),
            ));
            continue;
        };
        let missing = h.missing_at(ca_fp, &h.ca_paths);
        let foreign: Vec<&String> = h
            .ca_files
            .iter()
            .filter(|(_, fp)| !fp.as_ref().is_some_and(|f| known.contains(f)))
            .map(|(p, _)| p)
            .collect();
        rows.push(check::row(
            &name,
            Path::new(&h.host),
            Some(ca_pem),
            renew_before,
            now,
            |_| {
                let mut problems = Vec::new();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{} lacks the current CA at {}: run `regboot apply`",
                        h.host,
                        missing.join(", ")
                    ));
                }
                if !foreign.is_empty() {
                    problems.push(format!(
                        "{} holds a CA the state directory does not know at {}",
                        h.host,
                        foreign
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                (!problems.is_empty()).then(|| problems.join("; "))
            },
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::check::CheckStatus;
    use crate::pki::{Ca, CaSpec, leaf};

    fn spec() -> crate::pki::LeafSpec {
        crate::pki::LeafSpec {
            dns: vec!["registry.lab".into()],
            ips: Vec::new(),
            validity: Duration::days(365),
            renew_before: Duration::days(30),
            key_algorithm: Default::default(),
        }
    }

    fn host(name: &str, ca_files: &[(&str, &str)], served: Option<&str>) -> HostCerts {
        HostCerts {
            host: name.into(),
            error: None,
            ca_paths: vec!["/d/ca.crt".into()],
            extra_paths: Vec::new(),
            ca_files: ca_files
                .iter()
                .map(|(p, pem)| (p.to_string(), fingerprint(pem.as_bytes())))
                .collect(),
            served: served.map(|pem| Ok(vec![pem.to_string()])),
        }
    }

    fn status_of(rows: &[CheckRow], name: &str) -> (CheckStatus, String) {
        let row = rows.iter().find(|r| r.name == name).unwrap();
        (row.status, row.problem.clone().unwrap_or_default())
    }

    #[test]
    fn rows_flag_a_foreign_served_certificate_and_a_missing_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (ca, _) = Ca::ensure(&state, &CaSpec::default()).unwrap();
        leaf::ensure(&state, &ca, &spec()).unwrap();
        let ours = state.read(REGISTRY_CERT).unwrap().unwrap();
        let other_ca = Ca::generate(&CaSpec::default()).unwrap();
        let foreign = leaf::issue(&ca, &spec()).unwrap().cert_pem;
        let survey = Survey {
            hosts: vec![
                host("reg1", &[("/d/ca.crt", ca.cert_pem())], Some(&ours)),
                host("reg2", &[("/d/ca.crt", ca.cert_pem())], Some(&foreign)),
                host("node1", &[("/d/ca.crt", other_ca.cert_pem())], None),
            ],
            endpoints: vec![Endpoint {
                name: "registry.lab:5000".into(),
                via: "node1".into(),
                served: Err("connection refused".into()),
            }],
            ..Survey::default()
        };
        let rows = check_rows(
            &survey,
            &state,
            Duration::days(30),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(status_of(&rows, "served@reg1").0, CheckStatus::Valid);
        let (status, problem) = status_of(&rows, "served@reg2");
        assert_eq!(status, CheckStatus::Invalid);
        assert!(
            problem.contains("other than the state directory's"),
            "{problem}"
        );
        let (status, problem) = status_of(&rows, "ca@node1");
        assert_eq!(status, CheckStatus::Invalid);
        assert!(
            problem.contains("lacks the current CA at /d/ca.crt"),
            "{problem}"
        );
        assert!(problem.contains("does not know"), "{problem}");
        assert_eq!(status_of(&rows, "ca@reg1").0, CheckStatus::Valid);
        let (status, problem) = status_of(&rows, "served@registry.lab:5000");
        assert_eq!(
            (status, problem.as_str()),
            (CheckStatus::Invalid, "connection refused")
        );
    }
}
