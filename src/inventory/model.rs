//! The validated inventory the rest of regboot works with: defaults filled, paths resolved
//! against the inventory's directory, every value checked.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::pki::KeyAlgorithm;
use crate::ssh::Target;

#[derive(Debug, Clone)]
pub struct Inventory {
    /// The inventory file, as given.
    pub path: PathBuf,
    pub hosts: Vec<Host>,
    pub registry: Registry,
    pub tls: Tls,
    /// Extra keys merged into /etc/docker/daemon.json on every host.
    pub daemon_json: serde_json::Map<String, serde_json::Value>,
    /// `docker.install`: install the engine from the OS's packages where it is missing.
    pub docker_install: bool,
    pub ha: Option<Ha>,
    /// Run the smoke test at the end of apply, verify and rotate (`smoke_test: false` skips
    /// it, and every run then says it did not verify).
    pub smoke_test: bool,
    /// `smoke_parallel_pulls`: how many hosts pull the smoke image at once, so a large fleet
    /// does not ask the registry for everything at the same moment.
    pub smoke_parallel_pulls: usize,
    /// `metrics.textfile_dir`: where apply and renew put each host's certificate metrics
    /// for its node_exporter's textfile collector (`None`: no file on the hosts).
    pub metrics_textfile_dir: Option<PathBuf>,
    /// `swarm.existing`: the registry hosts may be in a swarm regboot did not make.
    pub swarm_existing: bool,
    /// `packages.bundle`: the offline bundle (`regboot bundle`) packages are installed from;
    /// `None`: from each host's own package sources.
    pub packages_bundle: Option<PathBuf>,
}

/// The default of `tls.ca_stage_soak`: a day, so every host and every cached client sees
/// both CAs before the switch.
pub const CA_STAGE_SOAK: time::Duration = time::Duration::hours(24);

/// The default of `smoke_parallel_pulls`.
pub const SMOKE_PARALLEL_PULLS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Registry,
    Agent,
    Lb,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// What this machine dials.
    pub address: String,
    /// What the other hosts use to reach this one (defaults to `address`).
    pub private_address: String,
    pub roles: Vec<Role>,
    pub ssh: Target,
    /// `drain: true`: the load balancers mark this replica `down` (it stays in the inventory,
    /// and keeps its trust and files).
    pub drain: bool,
    /// `docker_on_kubernetes: true`: docker.install may install docker on this host although
    /// it is a Kubernetes node (refused otherwise: the package brings its own containerd config).
    pub docker_on_kubernetes: bool,
}

impl Host {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone)]
pub struct Registry {
    pub hostname: String,
    pub port: u16,
    pub aliases: Vec<String>,
    pub extra_ips: Vec<IpAddr>,
    pub hosts_file: bool,
    pub image: String,
    pub image_archive: Option<PathBuf>,
    pub data_dir: String,
    pub delete_enabled: bool,
    pub storage: Storage,
    pub users: Vec<User>,
    pub login_agents: Vec<String>,
    /// distribution 3.x's OpenTelemetry trace export; `None`: off.
    pub tracing: Option<Tracing>,
    /// config.yml's `maintenance.readonly` (pulls only). Not read from the inventory file:
    /// `regboot gc` sets it for the roll that pauses pushes while its collector runs.
    pub read_only: bool,
    /// How the registry runs on the registry hosts.
    pub deploy: Deploy,
}

/// `registry.deploy`: a container on each registry host, or a Swarm service over them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deploy {
    #[default]
    Container,
    Swarm,
}

/// Where distribution 3.x exports traces (its `OTEL_*` environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracing {
    /// `OTEL_TRACES_EXPORTER`: otlp or console.
    pub exporter: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
}

impl Tracing {
    /// Why `endpoint` must not be used: it becomes the container's environment, which
    /// `docker inspect` shows anyone with access to docker (and distribution reads it only
    /// from there), so it may carry no user, password or query (where tokens ride).
    pub fn exposed_secret(endpoint: &str) -> Option<String> {
        let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let what = if authority.contains('@') {
            "a user or password"
        } else if endpoint.contains('?') {
            "a query string"
        } else {
            return None;
        };
        Some(format!(
            "the endpoint carries {what}: it would be in the registry container's environment, \
             which `docker inspect` shows to anyone with access to docker"
        ))
    }
}

impl Registry {
    /// The registry container's environment: distribution 3.x exports traces to an OTLP
    /// collector on localhost by default (and logs each failure); off unless configured.
    /// 2.x ignores it.
    pub fn env(&self) -> Vec<String> {
        match &self.tracing {
            None => vec!["OTEL_TRACES_EXPORTER=none".into()],
            Some(t) => std::iter::once(format!("OTEL_TRACES_EXPORTER={}", t.exporter))
                .chain(
                    t.endpoint
                        .iter()
                        .map(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT={e}")),
                )
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageDriver {
    Filesystem,
    S3,
    Oss,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `shared`: data_dir is shared storage (NFS...), which several replicas need.
    Filesystem {
        shared: bool,
    },
    S3(S3Storage),
    Oss(OssStorage),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Storage {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_env: String,
    pub secret_key_env: String,
    pub path_style: bool,
    pub redirect: bool,
    pub create_bucket: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssStorage {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_env: String,
    pub secret_key_env: String,
    pub secure: bool,
}

/// The htpasswd user regboot keeps for its smoke test (its password is in the state
/// directory), so the test can log in even when every user has only a password_hash.
pub const SMOKE_USER: &str = "regboot-smoke";

/// An htpasswd user. The password is read only when needed, never stored in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub secret: UserSecret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSecret {
    Env(String),
    File(PathBuf),
    Hash(String),
}

impl User {
    /// The plaintext password, when the inventory gives one (env or file); `None` for a hash.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        use anyhow::Context;
        match &self.secret {
            UserSecret::Env(var) => std::env::var(var).map(Some).with_context(|| {
                format!("user {}: environment variable {var} is not set", self.name)
            }),
            UserSecret::File(path) => crate::fsutil::read_text_limited(
                path,
                "password file (`password_file:`)",
                crate::fsutil::SECRET_LIMIT,
            )
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .with_context(|| format!("user {}", self.name)),
            UserSecret::Hash(_) => Ok(None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsModeName {
    SelfSigned,
    Provided,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// regboot's own CA in the state directory.
    SelfSigned,
    /// The user's CA-signed certificate.
    Provided {
        ca_cert: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
    /// Plain HTTP; clients get insecure-registries.
    Insecure,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub mode: TlsMode,
    pub key_algorithm: KeyAlgorithm,
    pub ca_validity_days: u32,
    pub cert_validity_days: u32,
    pub renew_before_days: u32,
    /// DNS domains (with their subdomains) a new CA may vouch for; empty: exactly the
    /// certificate's DNS names.
    pub permitted_domains: Vec<String>,
    /// IP ranges a new CA may vouch for; empty: exactly the certificate's addresses.
    pub permitted_ip_ranges: Vec<crate::pki::IpRange>,
    /// Put the CA into each host's OS trust store (default); `false`: only into the
    /// container runtimes' own directories (certs.d).
    pub os_trust_store: bool,
    /// `tls.ca_renew_before_days`: `renew` starts a CA rotation this long before the CA
    /// expires (`None`: a third of its lifetime).
    pub ca_renew_before_days: Option<u32>,
    /// `tls.ca_stage_soak`: how long a CA rotation stage stays in place before `renew` runs
    /// the next one.
    pub ca_stage_soak: time::Duration,
}

#[derive(Debug, Clone)]
pub struct Ha {
    pub vip: IpAddr,
    pub interface: String,
    pub virtual_router_id: u8,
}

/// Push `item` unless already present: SAN and reference lists keep first-seen order.
fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

impl Inventory {
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.has_role(role))
    }

    /// The state directory: the override, or `.regboot/` beside the inventory.
    pub fn state_dir(&self, cli_override: Option<&Path>) -> PathBuf {
        match cli_override {
            Some(dir) => dir.to_path_buf(),
            None => self
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(".regboot"),
        }
    }

    /// `name` or `name:port`: how an image reference names the registry on `name`.
    pub fn reference(&self, name: &str) -> String {
        crate::trust_store::certs_d_name(name, self.registry.port)
    }

    /// Every registry reference a client may use (each gets a certs.d directory): the
    /// hostname, each alias, the VIP, and each registry host's addresses.
    pub fn references(&self) -> Vec<String> {
        let mut names = vec![self.registry.hostname.clone()];
        names.extend(self.registry.aliases.iter().cloned());
        if let Some(ha) = &self.ha {
            names.push(ha.vip.to_string());
        }
        for h in self.hosts_with(Role::Registry) {
            names.push(h.address.clone());
            names.push(h.private_address.clone());
        }
        let mut refs = Vec::new();
        for n in names {
            push_unique(&mut refs, self.reference(&n));
        }
        refs
    }

    /// DNS names the server certificate carries.
    pub fn cert_dns_sans(&self) -> Vec<String> {
        let mut sans = vec![self.registry.hostname.clone()];
        for a in &self.registry.aliases {
            push_unique(&mut sans, a.clone());
        }
        for h in self.hosts_with(Role::Registry) {
            for a in [&h.address, &h.private_address] {
                if a.parse::<IpAddr>().is_err() {
                    push_unique(&mut sans, a.clone());
                }
            }
        }
        push_unique(&mut sans, "localhost".to_string());
        sans
    }

    /// IP addresses the server certificate carries.
    pub fn cert_ip_sans(&self) -> Vec<IpAddr> {
        let mut sans = Vec::new();
        if let Some(ha) = &self.ha {
            sans.push(ha.vip);
        }
        for h in self.hosts_with(Role::Registry) {
            for a in [&h.address, &h.private_address] {
                if let Ok(ip) = a.parse() {
                    push_unique(&mut sans, ip);
                }
            }
        }
        for ip in &self.registry.extra_ips {
            push_unique(&mut sans, *ip);
        }
        push_unique(&mut sans, IpAddr::from([127, 0, 0, 1]));
        sans
    }

    /// The address the registry hostname maps to in /etc/hosts: the VIP in HA, otherwise
    /// the first registry host's private address (validated to be an IP when hosts_file).
    pub fn registry_endpoint(&self) -> Option<String> {
        match &self.ha {
            Some(ha) => Some(ha.vip.to_string()),
            None => self
                .hosts_with(Role::Registry)
                .next()
                .map(|h| h.private_address.clone()),
        }
    }

    pub fn ssh_targets(&self) -> Vec<Target> {
        self.hosts.iter().map(|h| h.ssh.clone()).collect()
    }
}
