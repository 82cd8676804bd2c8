//! The inventory file exactly as written (docs/inventory.md), before defaults and checks.
//! Every struct refuses unknown fields so a typo is an error, never silently ignored.
//! Numbers that have a range are read wide (i64) and range-checked in `validate` so the
//! message can say what range is allowed.

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub version: i64,
    #[serde(default)]
    pub defaults: RawHost,
    pub hosts: Vec<RawHost>,
    pub registry: RawRegistry,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub docker: RawDocker,
    pub ha: Option<RawHa>,
    pub smoke_test: Option<bool>,
    /// How many hosts pull the smoke image at once.
    pub smoke_parallel_pulls: Option<i64>,
    /// OpenSSH client configuration: a path, or `false` (default: `~/.ssh/config` if any).
    pub ssh_config: Option<RawSshConfig>,
    #[serde(default)]
    pub metrics: RawMetrics,
    pub swarm: Option<RawSwarm>,
    #[serde(default)]
    pub packages: RawPackages,
}

/// `swarm:` (with `registry.deploy: swarm`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    /// The registry hosts' swarm was made by someone else: regboot may use it.
    pub existing: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    /// A directory `regboot bundle` made: packages come from it, not from the hosts' mirrors.
    pub bundle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// node_exporter's textfile collector directory on every host.
    pub textfile_dir: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSshConfig {
    Enabled(bool),
    Path(String),
}

/// A host entry. `defaults` uses the same shape for the SSH settings every host inherits
/// (`validate` refuses the per-host fields there), so both accept exactly the same names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub name: Option<String>,
    pub address: Option<String>,
    pub private_address: Option<String>,
    pub roles: Option<Vec<super::Role>>,
    pub user: Option<String>,
    pub port: Option<i64>,
    pub key: Option<String>,
    pub key_passphrase_env: Option<String>,
    pub sudo: Option<RawSudo>,
    pub bastion: Option<String>,
    pub known_hosts: Option<String>,
    pub host_key_check: Option<crate::ssh::HostKeyCheck>,
    pub connect_timeout_secs: Option<i64>,
    /// A registry host the load balancers stop passing requests to (nginx `down`).
    pub drain: Option<bool>,
    pub docker_on_kubernetes: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum RawSudo {
    Bool(bool),
    Word(SudoWord),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SudoWord {
    Auto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub hostname: String,
    pub port: Option<i64>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub extra_ips: Vec<String>,
    pub hosts_file: Option<bool>,
    pub image: Option<String>,
    pub image_archive: Option<String>,
    pub data_dir: Option<String>,
    pub delete_enabled: Option<bool>,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub login_agents: Vec<String>,
    pub tracing: Option<RawTracing>,
    pub deploy: Option<super::Deploy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    pub exporter: String,
    pub endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub driver: Option<super::StorageDriver>,
    pub s3: Option<RawS3>,
    pub oss: Option<RawOss>,
    /// Several filesystem replicas are allowed only when data_dir is shared storage.
    pub shared: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    pub bucket: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub access_key_env: String,
    pub secret_key_env: String,
    pub path_style: Option<bool>,
    pub redirect: Option<bool>,
    pub create_bucket: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOss {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_env: String,
    pub secret_key_env: String,
    pub secure: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub password_hash: Option<String>,
    /// Accepted by the parser only to refuse it with a clear message.
    pub password: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub mode: Option<super::TlsModeName>,
    pub key_algorithm: Option<crate::inventory::KeyAlgorithm>,
    pub ca_validity_days: Option<i64>,
    pub cert_validity_days: Option<i64>,
    pub renew_before_days: Option<i64>,
    pub provided: Option<RawProvided>,
    pub permitted_domains: Option<Vec<String>>,
    pub permitted_ip_ranges: Option<Vec<String>>,
    pub os_trust_store: Option<bool>,
    pub ca_renew_before_days: Option<i64>,
    pub ca_stage_soak: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvided {
    pub ca_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDocker {
    #[serde(default)]
    pub daemon_json: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub install: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHa {
    pub vip: String,
    pub interface: Option<String>,
    pub virtual_router_id: Option<i64>,
}
