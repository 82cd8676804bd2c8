//! From the file as written (`raw`) to the checked model: defaults, paths, and every rule,
//! collecting all problems with their places instead of stopping at the first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Diagnostic;
use super::locate::{Locations, Pos, YamlPath};
use super::model::*;
use super::raw::*;
use super::ssh_config::{self, FromConfig};
use crate::fsutil::{SECRET_LIMIT, expand_tilde, open_regular};
use crate::merge::daemon_json::KNOWN_KEYS;
use crate::ssh::{Bastion, HostKeyCheck, Target};

pub struct Checker<'a> {
    locs: &'a Locations,
    /// Relative paths in the inventory are relative to the inventory's directory.
    base_dir: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

fn at(keys: &[&str]) -> YamlPath {
    keys.iter().fold(YamlPath::default(), |p, k| p.key(k))
}

/// A valid DNS host name (RFC 1123 labels).
pub fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !s
            .rsplit('.')
            .next()
            .unwrap_or("")
            .chars()
            .all(|c| c.is_ascii_digit())
}

impl<'a> Checker<'a> {
    pub fn new(
        locs: &'a Locations,
        inventory_path: &Path,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let base_dir = inventory_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Checker {
            locs,
            base_dir,
            env,
            diagnostics: Vec::new(),
        }
    }

    pub fn error(&mut self, path: &YamlPath, message: impl Into<String>, hint: Option<String>) {
        self.push(self.locs.value(path), path, message.into(), hint);
    }

    /// Like `error`, placed at the key naming `path` rather than at its value.
    fn key_error(&mut self, path: &YamlPath, message: String, hint: Option<String>) {
        self.push(self.locs.key(path), path, message, hint);
    }

    /// Add a problem once: a bad default is met again for every host that uses it.
    fn push(&mut self, pos: Option<Pos>, path: &YamlPath, message: String, hint: Option<String>) {
        let d = Diagnostic {
            pos,
            field: path.to_string(),
            message,
            hint,
        };
        if !self.diagnostics.contains(&d) {
            self.diagnostics.push(d);
        }
    }

    /// SSH and htpasswd user names: htpasswd splits its lines at ':', and a control character
    /// would end up in a command line or a file line.
    fn user_name(&mut self, path: &YamlPath, name: &str) {
        let problem = if name.is_empty() {
            "is empty"
        } else if name.contains(':') {
            "contains ':'"
        } else if name.chars().any(char::is_control) {
            "contains a control character"
        } else {
            return;
        };
        self.error(
            path,
            format!("user name {name:?} {problem}"),
            Some("use letters, digits, '.', '_' and '-'".into()),
        );
    }

    fn resolve_path(&self, p: &str) -> PathBuf {
        let expanded = expand_tilde(p);
        if expanded.is_absolute() {
            expanded
        } else {
            self.base_dir.join(expanded)
        }
    }

    /// A file the inventory names that must be a readable regular file now, of at most
    /// `limit` bytes when given. `what` names it and its field in the message.
    fn readable_file(
        &mut self,
        path: &YamlPath,
        p: &str,
        what: &str,
        limit: Option<u64>,
    ) -> PathBuf {
        let resolved = self.resolve_path(p);
        let problem = match open_regular(&resolved, what) {
            Err(e) => Some(format!("{e:#}")),
            Ok((_, len)) => limit.filter(|l| len > *l).map(|l| {
                format!(
                    "{what} {} is larger than {l} bytes: is it the right file?",
                    resolved.display()
                )
            }),
        };
        if let Some(message) = problem {
            self.error(
                path,
                message,
                Some(format!(
                    "check the path (relative paths start at {}) and its permissions",
                    self.base_dir.display()
                )),
            );
        }
        resolved
    }

    fn port(&mut self, path: &YamlPath, value: Option<i64>, default: u16) -> u16 {
        match value {
            None => default,
            Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
                self.error(
                    path,
                    format!("port {p} is out of range"),
                    Some("use a port between 1 and 65535".into()),
                );
                default
            }),
        }
    }

    fn days(&mut self, path: &YamlPath, value: Option<i64>, default: u32) -> u32 {
        match value {
            None => default,
            Some(d) => u32::try_from(d).ok().filter(|d| *d > 0).unwrap_or_else(|| {
                self.error(
                    path,
                    format!("{d} is not a valid number of days"),
                    Some("use a whole number of days, at least 1".into()),
                );
                default
            }),
        }
    }

    fn address(&mut self, path: &YamlPath, a: &str) {
        if a.parse::<IpAddr>().is_err() && !is_hostname(a) {
            self.error(
                path,
                format!("{a:?} is neither an IP address nor a valid host name"),
                Some(
                    "use an IPv4/IPv6 address or a DNS name made of letters, digits, '-' and '.'"
                        .into(),
                ),
            );
        }
    }

    fn env_set(&mut self, path: &YamlPath, var: &str) {
        if (self.env)(var).is_none() {
            self.error(
                path,
                format!("environment variable {var} is not set"),
                Some(format!("export {var}=... before running regboot")),
            );
        }
    }

    pub fn inventory(&mut self, raw: RawInventory, path: &Path) -> Inventory {
        if raw.version != 1 {
            self.error(
                &at(&["version"]),
                format!("version {} is not supported", raw.version),
                Some("this regboot reads inventory version 1: set `version: 1`".into()),
            );
        }
        let ssh_config = self.ssh_config(raw.ssh_config.as_ref());
        let hosts = self.hosts(&raw.defaults, &raw.hosts, ssh_config.as_ref());
        self.daemon_json_keys(&raw.docker.daemon_json);
        let ha = raw.ha.as_ref().map(|h| self.ha(h));
        let registry = self.registry(raw.registry, &hosts);
        let tls = self.tls(raw.tls);
        let inv = Inventory {
            path: path.to_path_buf(),
            hosts,
            registry,
            tls,
            daemon_json: raw.docker.daemon_json,
            docker_install: raw.docker.install,
            ha,
            smoke_test: raw.smoke_test.unwrap_or(true),
            smoke_parallel_pulls: self.smoke_parallel_pulls(raw.smoke_parallel_pulls),
        };
        self.cross_checks(&inv);
        inv
    }

    fn smoke_parallel_pulls(&mut self, raw: Option<i64>) -> usize {
        let Some(n) = raw else {
            return super::model::SMOKE_PARALLEL_PULLS;
        };
        if !(1..=256).contains(&n) {
            self.error(
                &at(&["smoke_parallel_pulls"]),
                format!("{n} pulls at once is out of range"),
                Some("use 1 to 256 (default 8)".into()),
            );
        }
        n.clamp(1, 256) as usize
    }

    /// The OpenSSH client configuration hosts fall back on: `ssh_config: PATH` (which must
    /// exist), none with `false`, else `~/.ssh/config` when there is one.
    fn ssh_config(&mut self, raw: Option<&RawSshConfig>) -> Option<ssh_config::Config> {
        let path = match raw {
            Some(RawSshConfig::Enabled(false)) => return None,
            Some(RawSshConfig::Path(p)) => self.resolve_path(p),
            None | Some(RawSshConfig::Enabled(true)) => {
                let default = expand_tilde("~/.ssh/config");
                if !default.exists() && raw.is_none() {
                    return None;
                }
                default
            }
        };
        match ssh_config::Config::load(&path) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error(
                    &at(&["ssh_config"]),
                    format!("OpenSSH config {}: {e}", path.display()),
                    Some("fix that file, name another with `ssh_config: PATH`, or set `ssh_config: false`".into()),
                );
                None
            }
        }
    }

    fn hosts(
        &mut self,
        defaults: &RawHost,
        raw: &[RawHost],
        ssh_config: Option<&ssh_config::Config>,
    ) -> Vec<Host> {
        for (field, set) in [
            ("name", defaults.name.is_some()),
            ("address", defaults.address.is_some()),
            ("private_address", defaults.private_address.is_some()),
            ("roles", defaults.roles.is_some()),
            ("drain", defaults.drain.is_some()),
        ] {
            if set {
                self.error(
                    &at(&["defaults", field]),
                    format!("`{field}` belongs to each host, not to defaults"),
                    Some("move it under the host it describes".into()),
                );
            }
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        // (address, port) -> first host's index.
        let mut endpoints: HashMap<(String, u16), usize> = HashMap::new();
        let mut hosts = Vec::new();
        for (i, h) in raw.iter().enumerate() {
            let hp = YamlPath::default().key("hosts").index(i);
            let Some(name) = h.name.clone() else {
                self.error(
                    &hp,
                    "host has no name",
                    Some("add `name: ...` (unique, used in output and --limit)".into()),
                );
                continue;
            };
            if let Some(first) = seen.insert(name.clone(), i) {
                let line = self
                    .locs
                    .value(&YamlPath::default().key("hosts").index(first).key("name"))
                    .map(|p| format!(" (first at line {})", p.line))
                    .unwrap_or_default();
                self.error(
                    &hp.key("name"),
                    format!("duplicate host name {name:?}{line}"),
                    Some("give every host a unique name".into()),
                );
            }
            let Some(address) = h.address.clone() else {
                self.error(
                    &hp,
                    format!("host {name} has no address"),
                    Some("add `address: IP or DNS name`".into()),
                );
                continue;
            };
            self.address(&hp.key("address"), &address);
            let from_config = match ssh_config.map(|c| c.lookup(&address)) {
                None => FromConfig::default(),
                Some(Ok(found)) => found,
                Some(Err(e)) => {
                    self.error(
                        &hp.key("address"),
                        format!("in the OpenSSH config: {e}"),
                        None,
                    );
                    FromConfig::default()
                }
            };
            // An alias the OpenSSH config resolves: the host is what ssh would dial.
            let address = match &from_config.host_name {
                Some(real) => {
                    self.address(&hp.key("address"), real);
                    real.clone()
                }
                None => address,
            };
            if let Some(p) = &h.private_address {
                self.address(&hp.key("private_address"), p);
            }
            let private_address = h.private_address.clone().unwrap_or_else(|| address.clone());
            let roles = h.roles.clone().unwrap_or_default();
            if roles.is_empty() {
                self.error(
                    &hp.key("roles"),
                    format!("host {name} has no role"),
                    Some("add `roles: [registry]`, `[agent]` or `[lb]`".into()),
                );
            }
            let ssh = self.ssh(&hp, defaults, h, &from_config, &name, &address);
            if let Some(first) = endpoints.insert((same_host_key(&address), ssh.port), i) {
                let line = self
                    .locs
                    .value(&YamlPath::default().key("hosts").index(first).key("address"))
                    .map(|p| format!(" (line {})", p.line))
                    .unwrap_or_default();
                self.error(
                    &hp.key("address"),
                    format!(
                        "host {name} has the same address and SSH port ({address}, {}) as hosts[{first}]{line}",
                        ssh.port
                    ),
                    Some("list each machine once, with all its roles".into()),
                );
            }
            let drain = h.drain.unwrap_or(false);
            if drain && !roles.contains(&Role::Registry) {
                self.error(
                    &hp.key("drain"),
                    format!("host {name} is not a registry host: `drain` takes a replica out of the load balancers"),
                    Some("remove `drain`, or set it on a host with the role registry".into()),
                );
            }
            hosts.push(Host {
                name,
                address,
                private_address,
                roles,
                ssh,
                drain,
            });
        }
        hosts
    }

    /// The host's SSH settings: its own value, else the default, else the OpenSSH config's,
    /// else the built-in default.
    fn ssh(
        &mut self,
        hp: &YamlPath,
        d: &RawHost,
        h: &RawHost,
        cfg: &FromConfig,
        name: &str,
        address: &str,
    ) -> Target {
        // Errors point at whichever entry supplied the value.
        let src = |field: &str, host_has: bool| {
            if host_has {
                hp.key(field)
            } else {
                at(&["defaults", field])
            }
        };
        let user = h
            .user
            .clone()
            .or_else(|| d.user.clone())
            .or_else(|| cfg.user.clone())
            .unwrap_or_else(|| "root".into());
        self.user_name(&src("user", h.user.is_some()), &user);
        let port = self.port(
            &src("port", h.port.is_some()),
            h.port.or(d.port),
            cfg.port.unwrap_or(22),
        );
        let key = match h.key.as_ref().or(d.key.as_ref()) {
            Some(k) => Some(self.readable_file(
                &src("key", h.key.is_some()),
                k,
                "SSH key (`key:`)",
                Some(SECRET_LIMIT),
            )),
            None => cfg.identity_file.clone(),
        };
        let sudo = match h.sudo.or(d.sudo) {
            None | Some(RawSudo::Word(SudoWord::Auto)) => user != "root",
            Some(RawSudo::Bool(b)) => b,
        };
        let bastion = h.bastion.as_ref().or(d.bastion.as_ref());
        let bastion = bastion.or(cfg.proxy_jump.as_ref()).and_then(|b| {
            let parsed = parse_bastion(b, &user);
            if parsed.is_none() {
                self.error(
                    &src("bastion", h.bastion.is_some()),
                    format!("bastion {b:?} is not user@host:port"),
                    Some("write it like ops@203.0.113.10:22 (user and port optional)".into()),
                );
            }
            parsed
        });
        let known_hosts = self.resolve_path(
            h.known_hosts
                .as_deref()
                .or(d.known_hosts.as_deref())
                .or(cfg.known_hosts.as_deref())
                .unwrap_or("~/.ssh/known_hosts"),
        );
        let timeout = h
            .connect_timeout_secs
            .or(d.connect_timeout_secs)
            .unwrap_or(10);
        if !(1..=600).contains(&timeout) {
            self.error(
                &src("connect_timeout_secs", h.connect_timeout_secs.is_some()),
                format!("connect timeout {timeout}s is out of range"),
                Some("use 1 to 600 seconds".into()),
            );
        }
        Target {
            name: name.to_string(),
            address: address.to_string(),
            port,
            user,
            key,
            key_passphrase_env: h
                .key_passphrase_env
                .clone()
                .or_else(|| d.key_passphrase_env.clone()),
            sudo,
            bastion,
            known_hosts,
            host_key_check: h
                .host_key_check
                .or(d.host_key_check)
                .unwrap_or(HostKeyCheck::AcceptNew),
            connect_timeout: Duration::from_secs(timeout.clamp(1, 600) as u64),
        }
    }

    fn registry(&mut self, r: RawRegistry, hosts: &[Host]) -> Registry {
        let rp = at(&["registry"]);
        if !is_hostname(&r.hostname) {
            self.error(
                &rp.key("hostname"),
                format!("{:?} is not a valid DNS name", r.hostname),
                Some("clients put this name in image references: use a DNS name like registry.example.com".into()),
            );
        }
        for (i, a) in r.aliases.iter().enumerate() {
            if !is_hostname(a) {
                self.error(
                    &rp.key("aliases").index(i),
                    format!("{a:?} is not a valid DNS name"),
                    None,
                );
            }
        }
        let mut extra_ips = Vec::new();
        for (i, ip) in r.extra_ips.iter().enumerate() {
            match ip.parse() {
                Ok(ip) => extra_ips.push(ip),
                Err(_) => self.error(
                    &rp.key("extra_ips").index(i),
                    format!("{ip:?} is not an IP address"),
                    None,
                ),
            }
        }
        let port = self.port(&rp.key("port"), r.port, 5000);
        if let Some(image) = r.image.as_deref().filter(|i| !is_image_reference(i)) {
            self.error(
                &rp.key("image"),
                format!("{image:?} is not an image reference"),
                Some("write it like registry:2 or mirror.example.com:5000/library/registry:2.8.3 (lowercase, optional @sha256:digest)".into()),
            );
        }
        let image_archive = r
            .image_archive
            .as_ref()
            .map(|a| self.readable_file(&rp.key("image_archive"), a, "image archive", None));
        let data_dir = r
            .data_dir
            .unwrap_or_else(|| "/var/lib/regboot/registry".into());
        if !data_dir.starts_with('/') {
            self.error(
                &rp.key("data_dir"),
                format!("data_dir {data_dir:?} is not an absolute path"),
                Some("use a path on the registry hosts starting with /".into()),
            );
        }
        let storage = self.storage(r.storage, hosts);
        let users = self.users(&r.users);
        for (i, name) in r.login_agents.iter().enumerate() {
            if !users.iter().any(|u| &u.name == name) {
                self.error(
                    &rp.key("login_agents").index(i),
                    format!("login_agents names {name:?}, which is not in registry.users"),
                    Some("list only users defined under registry.users".into()),
                );
            }
        }
        let tracing = r.tracing.map(|t| {
            if !["otlp", "console"].contains(&t.exporter.as_str()) {
                self.error(
                    &rp.key("tracing").key("exporter"),
                    format!("{:?} is not an exporter distribution knows", t.exporter),
                    Some("otlp or console; leave out `tracing` to keep it off".into()),
                );
            }
            if let Some(why) = t.endpoint.as_deref().and_then(Tracing::exposed_secret) {
                let hint = "point it at a collector that needs no credentials (one on the host, or a relay that adds them)";
                self.error(&rp.key("tracing").key("endpoint"), why, Some(hint.into()));
            }
            Tracing {
                exporter: t.exporter,
                endpoint: t.endpoint,
            }
        });
        Registry {
            hostname: r.hostname,
            port,
            aliases: r.aliases,
            extra_ips,
            hosts_file: r.hosts_file.unwrap_or(true),
            image: r.image.unwrap_or_else(|| "registry:2".into()),
            image_archive,
            data_dir,
            delete_enabled: r.delete_enabled.unwrap_or(true),
            storage,
            users,
            login_agents: r.login_agents,
            tracing,
        }
    }

    fn storage(&mut self, s: RawStorage, hosts: &[Host]) -> Storage {
        let sp = at(&["registry", "storage"]);
        let driver = s.driver.unwrap_or(StorageDriver::Filesystem);
        let missing = |this: &mut Self, section: &str| {
            this.error(
                &sp,
                format!("storage driver {section} needs a `{section}:` section"),
                Some(format!("add registry.storage.{section} with bucket, region and the key variables (see docs/inventory.md)")),
            );
        };
        match driver {
            StorageDriver::Filesystem => {
                let shared = s.shared.unwrap_or(false);
                let replicas = hosts.iter().filter(|h| h.has_role(Role::Registry)).count();
                if replicas > 1 && !shared {
                    self.error(
                        &sp.key("driver"),
                        format!("{replicas} registry hosts with filesystem storage would each keep their own images"),
                        Some("use s3 or oss storage, or mount shared storage at data_dir and set `shared: true`".into()),
                    );
                }
                Storage::Filesystem { shared }
            }
            StorageDriver::S3 => match s.s3 {
                None => {
                    missing(self, "s3");
                    Storage::Filesystem { shared: false }
                }
                Some(s3) => {
                    self.env_set(&sp.key("s3").key("access_key_env"), &s3.access_key_env);
                    self.env_set(&sp.key("s3").key("secret_key_env"), &s3.secret_key_env);
                    Storage::S3(S3Storage {
                        bucket: s3.bucket,
                        region: s3.region.unwrap_or_else(|| "us-east-1".into()),
                        endpoint: s3.endpoint,
                        access_key_env: s3.access_key_env,
                        secret_key_env: s3.secret_key_env,
                        path_style: s3.path_style.unwrap_or(true),
                        redirect: s3.redirect.unwrap_or(false),
                        create_bucket: s3.create_bucket.unwrap_or(false),
                    })
                }
            },
            StorageDriver::Oss => match s.oss {
                None => {
                    missing(self, "oss");
                    Storage::Filesystem { shared: false }
                }
                Some(oss) => {
                    self.env_set(&sp.key("oss").key("access_key_env"), &oss.access_key_env);
                    self.env_set(&sp.key("oss").key("secret_key_env"), &oss.secret_key_env);
                    Storage::Oss(OssStorage {
                        bucket: oss.bucket,
                        region: oss.region,
                        endpoint: oss.endpoint,
                        access_key_env: oss.access_key_env,
                        secret_key_env: oss.secret_key_env,
                        secure: oss.secure.unwrap_or(true),
                    })
                }
            },
        }
    }

    fn users(&mut self, raw: &[RawUser]) -> Vec<User> {
        let mut users: Vec<User> = Vec::new();
        for (i, u) in raw.iter().enumerate() {
            let up = at(&["registry", "users"]).index(i);
            if u.password.is_some() {
                self.error(
                    &up.key("password"),
                    format!("user {}: a plaintext password is not allowed in the inventory", u.name),
                    Some("use password_env (a variable name), password_file (a path), or password_hash (from `regboot user hash`)".into()),
                );
                continue;
            }
            self.user_name(&up.key("name"), &u.name);
            if u.name == SMOKE_USER {
                self.error(
                    &up.key("name"),
                    format!("{SMOKE_USER:?} is reserved for regboot's smoke test"),
                    Some("choose another user name".into()),
                );
                continue;
            }
            if users.iter().any(|x| x.name == u.name) {
                self.error(
                    &up.key("name"),
                    format!("duplicate user {:?}", u.name),
                    None,
                );
                continue;
            }
            let secret = match (&u.password_env, &u.password_file, &u.password_hash) {
                (Some(var), None, None) => {
                    self.env_set(&up.key("password_env"), var);
                    UserSecret::Env(var.clone())
                }
                (None, Some(file), None) => UserSecret::File(self.readable_file(
                    &up.key("password_file"),
                    file,
                    "password file (`password_file:`)",
                    Some(SECRET_LIMIT),
                )),
                (None, None, Some(hash)) => {
                    if !is_bcrypt_hash(hash) {
                        self.error(
                            &up.key("password_hash"),
                            "password_hash is not a bcrypt hash ($2b$/$2y$...)",
                            Some(
                                "create one with `regboot user hash` (reads the password on stdin)"
                                    .into(),
                            ),
                        );
                    }
                    UserSecret::Hash(hash.clone())
                }
                _ => {
                    self.error(
                        &up,
                        format!("user {} needs exactly one of password_env, password_file, password_hash", u.name),
                        None,
                    );
                    continue;
                }
            };
            users.push(User {
                name: u.name.clone(),
                secret,
            });
        }
        users
    }

    /// dockerd refuses to start with a key it does not know, so catch typos here.
    fn daemon_json_keys(&mut self, keys: &serde_json::Map<String, serde_json::Value>) {
        for key in keys.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            let hint = match nearest(key, KNOWN_KEYS.iter().copied()) {
                Some(n) => format!("did you mean `{n}`? "),
                None => String::new(),
            } + "dockerd refuses to start with a key it does not know (see its reference, \"daemon configuration file\")";
            self.key_error(
                &at(&["docker", "daemon_json", key]),
                format!("`{key}` is not a dockerd daemon.json option"),
                Some(hint),
            );
        }
    }

    fn tls(&mut self, t: RawTls) -> Tls {
        let tp = at(&["tls"]);
        let mode = match t.mode.unwrap_or(TlsModeName::SelfSigned) {
            TlsModeName::SelfSigned => TlsMode::SelfSigned,
            TlsModeName::Insecure => TlsMode::Insecure,
            TlsModeName::Provided => {
                let p = t.provided.as_ref();
                let mut file = |field: &str, value: Option<&String>| match value {
                    Some(v) => {
                        self.readable_file(&tp.key("provided").key(field), v, "provided file", None)
                    }
                    None => {
                        self.error(
                            &tp.key("mode"),
                            format!("tls.mode provided needs tls.provided.{field}"),
                            Some(
                                "add `provided: { ca_cert: ..., cert: ..., key: ... }` under tls"
                                    .into(),
                            ),
                        );
                        PathBuf::new()
                    }
                };
                TlsMode::Provided {
                    ca_cert: file("ca_cert", p.and_then(|p| p.ca_cert.as_ref())),
                    cert: file("cert", p.and_then(|p| p.cert.as_ref())),
                    key: file("key", p.and_then(|p| p.key.as_ref())),
                }
            }
        };
        let tls = Tls {
            mode,
            key_algorithm: t.key_algorithm.unwrap_or_default(),
            ca_validity_days: self.days(&tp.key("ca_validity_days"), t.ca_validity_days, 3650),
            cert_validity_days: self.days(&tp.key("cert_validity_days"), t.cert_validity_days, 365),
            renew_before_days: self.days(&tp.key("renew_before_days"), t.renew_before_days, 30),
            permitted_domains: self.permitted_domains(&tp, t.permitted_domains.unwrap_or_default()),
            permitted_ip_ranges: self
                .permitted_ip_ranges(&tp, t.permitted_ip_ranges.unwrap_or_default()),
            os_trust_store: t.os_trust_store.unwrap_or(true),
        };
        if tls.renew_before_days >= tls.cert_validity_days {
            self.error(
                &tp.key("renew_before_days"),
                format!(
                    "renew_before_days ({}) is not shorter than cert_validity_days ({}): every apply would reissue",
                    tls.renew_before_days, tls.cert_validity_days
                ),
                Some("make renew_before_days smaller than cert_validity_days".into()),
            );
        }
        tls
    }

    fn permitted_domains(&mut self, tp: &YamlPath, domains: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, d) in domains.into_iter().enumerate() {
            let plain = d.trim_end_matches('.').to_ascii_lowercase();
            if plain.parse::<IpAddr>().is_ok() {
                self.error(
                    &tp.key("permitted_domains").index(i),
                    format!("{d:?} is an IP address"),
                    Some("list addresses under tls.permitted_ip_ranges".into()),
                );
            } else if !is_hostname(&plain) {
                self.error(
                    &tp.key("permitted_domains").index(i),
                    format!("{d:?} is not a domain"),
                    Some(
                        "write a plain domain such as `corp.example` (no wildcard, no leading dot): it permits the domain and every subdomain"
                            .into(),
                    ),
                );
            } else {
                out.push(plain);
            }
        }
        out
    }

    fn permitted_ip_ranges(
        &mut self,
        tp: &YamlPath,
        ranges: Vec<String>,
    ) -> Vec<crate::pki::IpRange> {
        let mut out = Vec::new();
        for (i, r) in ranges.into_iter().enumerate() {
            match crate::pki::IpRange::parse_permitted(&r) {
                Ok(range) => out.push(range),
                Err(e) => self.error(
                    &tp.key("permitted_ip_ranges").index(i),
                    format!("{e}"),
                    Some("write ADDRESS/PREFIX, e.g. 10.20.0.0/16, or one address".into()),
                ),
            }
        }
        out
    }

    /// A CA made from tls.permitted_domains / permitted_ip_ranges could not vouch for a
    /// certificate name outside them: say so here rather than at the first apply.
    fn permitted_names_cover_the_certificate(&mut self, inv: &Inventory) {
        let tls = &inv.tls;
        let tp = at(&["tls"]);
        let permitted = crate::pki::Constraints {
            dns: tls.permitted_domains.clone(),
            ips: tls.permitted_ip_ranges.clone(),
        };
        if !tls.permitted_domains.is_empty() {
            let outside: Vec<String> = inv
                .cert_dns_sans()
                .into_iter()
                .filter(|d| d != "localhost" && !permitted.permits_dns(d))
                .collect();
            if !outside.is_empty() {
                self.error(
                    &tp.key("permitted_domains"),
                    format!(
                        "the registry certificate's names {} are outside tls.permitted_domains",
                        outside.join(", ")
                    ),
                    Some("add their domains to permitted_domains, or change the names".into()),
                );
            }
        }
        if !tls.permitted_ip_ranges.is_empty() {
            let outside: Vec<String> = inv
                .cert_ip_sans()
                .into_iter()
                .filter(|ip| !ip.is_loopback() && !permitted.permits_ip(*ip))
                .map(|ip| ip.to_string())
                .collect();
            if !outside.is_empty() {
                self.error(
                    &tp.key("permitted_ip_ranges"),
                    format!(
                        "the registry certificate's addresses {} are outside tls.permitted_ip_ranges",
                        outside.join(", ")
                    ),
                    Some("widen permitted_ip_ranges, or change the addresses".into()),
                );
            }
        }
    }

    fn ha(&mut self, h: &RawHa) -> Ha {
        let hp = at(&["ha"]);
        let vip = h.vip.parse().unwrap_or_else(|_| {
            self.error(
                &hp.key("vip"),
                format!("vip {:?} is not an IP address", h.vip),
                None,
            );
            IpAddr::from([0, 0, 0, 0])
        });
        let vrid = h.virtual_router_id.unwrap_or(51);
        let virtual_router_id = u8::try_from(vrid)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or_else(|| {
                self.error(
                    &hp.key("virtual_router_id"),
                    format!("virtual_router_id {vrid} is out of range"),
                    Some("use 1 to 255, unique on the network segment".into()),
                );
                51
            });
        Ha {
            vip,
            interface: h.interface.clone().unwrap_or_else(|| "eth0".into()),
            virtual_router_id,
        }
    }

    fn cross_checks(&mut self, inv: &Inventory) {
        self.permitted_names_cover_the_certificate(inv);
        if inv.hosts_with(Role::Registry).next().is_none() {
            self.error(
                &at(&["hosts"]),
                "no host has the role registry",
                Some(
                    "add `registry` to the roles of the host(s) that should run the registry"
                        .into(),
                ),
            );
        }
        for (i, h) in inv.hosts.iter().enumerate() {
            if h.has_role(Role::Registry) && h.has_role(Role::Lb) {
                self.error(
                    &at(&["hosts"]).index(i).key("roles"),
                    format!(
                        "host {} has the roles registry and lb: nginx and the registry container would both listen on port {}",
                        h.name, inv.registry.port
                    ),
                    Some("give the lb role to other hosts than the registry replicas".into()),
                );
            }
        }
        let drained: Vec<usize> = (0..inv.hosts.len())
            .filter(|i| inv.hosts[*i].drain && inv.hosts[*i].has_role(Role::Registry))
            .collect();
        if let Some(&first) = drained.first() {
            let place = at(&["hosts"]).index(first).key("drain");
            if inv.hosts_with(Role::Lb).next().is_none() {
                self.error(
                    &place,
                    "`drain` takes a replica out of the load balancers' upstream, and no host has the role lb",
                    Some("remove `drain`; without load balancers clients reach the registry host directly".into()),
                );
            } else if inv.hosts_with(Role::Registry).all(|h| h.drain) {
                self.error(
                    &place,
                    "every registry host is drained: the load balancers would have no replica to pass to",
                    Some("leave at least one registry host without `drain: true`".into()),
                );
            }
        }
        if inv.hosts_with(Role::Lb).next().is_some() && inv.ha.is_none() {
            self.error(
                &at(&["hosts"]),
                "hosts with role lb need an `ha:` section (vip, interface, virtual_router_id)",
                Some("add `ha: { vip: ..., interface: eth0, virtual_router_id: 55 }`".into()),
            );
        }
        if inv.registry.hosts_file
            && let Some(ep) = inv
                .registry_endpoint()
                .filter(|e| e.parse::<IpAddr>().is_err())
        {
            self.error(
                    &at(&["registry", "hosts_file"]),
                    format!("/etc/hosts needs an IP, but the registry is reached at {ep:?}"),
                    Some("give the first registry host an IP private_address, or set hosts_file: false and use DNS".into()),
                );
        }
    }
}

fn parse_bastion(s: &str, default_user: &str) -> Option<Bastion> {
    let (user, rest) = match s.split_once('@') {
        Some((u, r)) if !u.is_empty() => (u.to_string(), r),
        Some(_) => return None,
        None => (default_user.to_string(), s),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().ok().filter(|p| *p > 0)?),
        _ => (rest, 22),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host.parse::<IpAddr>().is_ok() || is_hostname(host)).then(|| Bastion {
        user,
        host: host.to_string(),
        port,
    })
}

/// The valid name nearest to `bad`, if it is close enough to be a likely typo.
pub(super) fn nearest<'v>(bad: &str, valid: impl IntoIterator<Item = &'v str>) -> Option<&'v str> {
    valid
        .into_iter()
        .map(|v| (strsim::levenshtein(bad, v), v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// An address as compared for duplicates: IPs in canonical form, names in lowercase.
fn same_host_key(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// An image reference in distribution's grammar (github.com/distribution/reference):
/// `[host[:port]/]path[:tag][@digest]`, path components lowercase. Rules out values the
/// docker CLI would take as an option, like `--help`.
fn is_image_reference(s: &str) -> bool {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    // The last ':' starts a tag unless a '/' follows it (then it was a registry's port).
    let (name, tag) = match rest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (rest, None),
    };
    // A first component that reads as a registry host is one.
    let path = match name.split_once('/') {
        Some((host, path)) if is_registry_host(host) => path,
        _ => name,
    };
    name.len() <= 255
        && path.split('/').all(is_path_component)
        && tag.is_none_or(is_tag)
        && digest.is_none_or(is_digest)
}

/// `[a-z0-9]+` runs joined by one of `.`, `_`, `__` or any number of `-`.
fn is_path_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.split(alnum)
            .filter(|sep| !sep.is_empty())
            .all(|sep| matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-'))
}

/// `host[:port]`: DNS labels (any case), an IPv4 address or `[IPv6]`.
fn is_registry_host(s: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let (host_ok, port) = match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, port)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = s.find(':').map_or((s, ""), |i| s.split_at(i));
            (host.split('.').all(label), port)
        }
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    t.len() <= 128 && t.starts_with(word) && t.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// `algorithm:hex`, the algorithm's parts `[A-Za-z][A-Za-z0-9]*` joined by `+._-`, at least
/// 32 hex digits.
fn is_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    alg.split(['+', '.', '_', '-']).all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    }) && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_bcrypt_hash(h: &str) -> bool {
    h.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(is_hostname("registry01.dev.com"));
        assert!(is_hostname("reg-1"));
        assert!(!is_hostname("-bad.com"));
        assert!(!is_hostname("under_score.com"));
        assert!(!is_hostname("300.1.1.1"));
        assert!(!is_hostname(""));
    }

    #[test]
    fn image_references() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for good in [
            "registry:2",
            "registry",
            "library/registry:2.8.3",
            "docker.io/library/registry:2",
            "Mirror.Example.com:5000/team/registry_x__y.z-w:v1_2-3",
            "localhost:5000/registry",
            "[::1]:5000/registry:2",
            &format!("registry@{digest}"),
            &format!("10.0.0.1:5000/registry:2@{digest}"),
        ] {
            assert!(is_image_reference(good), "{good}");
        }
        for bad in [
            "--help",
            "-registry",
            "",
            "Registry:2",
            "registry:",
            "registry:-x",
            "a//b",
            "a/b/",
            "a/.b",
            "a___b",
            "registry@sha256:abc",
            "registry@sha256",
            "host:port/x",
            "registry:2 --rm",
            &format!("registry:{}", "t".repeat(129)),
        ] {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }

    #[test]
    fn bastions() {
        assert_eq!(
            parse_bastion("ops@203.0.113.10:2200", "root"),
            Some(Bastion {
                user: "ops".into(),
                host: "203.0.113.10".into(),
                port: 2200
            })
        );
        assert_eq!(
            parse_bastion("jump.example.com", "root"),
            Some(Bastion {
                user: "root".into(),
                host: "jump.example.com".into(),
                port: 22
            })
        );
        assert_eq!(parse_bastion("ops@host:99999", "root"), None);
        assert_eq!(parse_bastion("@host", "root"), None);
    }
}
