//! Hosts and their SSH settings: addresses, roles, users, bastions and the OpenSSH config.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::super::locate::YamlPath;
use super::super::model::*;
use super::super::raw::*;
use super::super::ssh_config::{self, FromConfig, KeyCheck};
use super::syntax::is_hostname;
use super::{Checker, at};
use crate::fsutil::{SECRET_LIMIT, expand_tilde};
use crate::ssh::{Bastion, GLOBAL_KNOWN_HOSTS, HostKeyCheck, Target};

impl Checker<'_> {
    /// The OpenSSH client configuration hosts fall back on: `ssh_config: PATH` (which must
    /// exist), none with `false`, else `~/.ssh/config` when there is one.
    pub(super) fn ssh_config(&mut self, raw: Option<&RawSshConfig>) -> Option<ssh_config::Config> {
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

    pub(super) fn hosts(
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
            (
                "docker_on_kubernetes",
                defaults.docker_on_kubernetes.is_some(),
            ),
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
        // Per host: whether its bastion has a StrictHostKeyChecking of its own.
        let mut bastion_policy_own = Vec::new();
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
            let (ssh, own_policy) = self.ssh(&hp, defaults, h, &from_config, &name, &address);
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
            bastion_policy_own.push(own_policy);
            hosts.push(Host {
                name,
                address,
                private_address,
                roles,
                ssh,
                drain,
                docker_on_kubernetes: h.docker_on_kubernetes.unwrap_or(false),
            });
        }
        share_bastion_policy(&mut hosts, &bastion_policy_own);
        hosts
    }

    /// The host's SSH settings: its own value, else the default, else the OpenSSH config's,
    /// else the built-in default; and whether its bastion has a host key policy of its own.
    pub(super) fn ssh(
        &mut self,
        hp: &YamlPath,
        d: &RawHost,
        h: &RawHost,
        cfg: &FromConfig,
        name: &str,
        address: &str,
    ) -> (Target, bool) {
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
        let host_key_check = h
            .host_key_check
            .or(d.host_key_check)
            .or(cfg.check.policy)
            .unwrap_or(HostKeyCheck::AcceptNew);
        let inventory_bastion = h.bastion.as_ref().or(d.bastion.as_ref());
        // A ProxyJump alias's own IdentityFile and host key settings: ssh dials the jump
        // host as itself.
        let own = match inventory_bastion {
            None => cfg.jump_check.clone(),
            Some(_) => KeyCheck::default(),
        };
        let bastion = match inventory_bastion.or(cfg.proxy_jump.as_ref()) {
            None => None,
            Some(b) => match parse_bastion(b, &user) {
                None => {
                    self.error(
                        &src("bastion", h.bastion.is_some()),
                        format!("bastion {b:?} is not user@host:port"),
                        Some("write it like ops@203.0.113.10:22 (user and port optional)".into()),
                    );
                    None
                }
                Some(b) => Some(Bastion {
                    key: cfg
                        .jump_identity_file
                        .clone()
                        .filter(|_| inventory_bastion.is_none()),
                    // Without its own, the strictest of its hosts' (share_bastion_policy).
                    host_key_check: own.policy.unwrap_or(host_key_check),
                    known_hosts: self.resolve_path(
                        own.known_hosts
                            .as_deref()
                            .or(d.known_hosts.as_deref())
                            .unwrap_or("~/.ssh/known_hosts"),
                    ),
                    global_known_hosts: self.global_known_hosts(&own),
                    host_key_alias: own.host_key_alias.clone(),
                    ..b
                }),
            },
        };
        let known_hosts = self.resolve_path(
            h.known_hosts
                .as_deref()
                .or(d.known_hosts.as_deref())
                .or(cfg.check.known_hosts.as_deref())
                .unwrap_or("~/.ssh/known_hosts"),
        );
        let global_known_hosts = self.global_known_hosts(&cfg.check);
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
        let target = Target {
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
            global_known_hosts,
            host_key_alias: cfg.check.host_key_alias.clone(),
            host_key_check,
            connect_timeout: Duration::from_secs(timeout.clamp(1, 600) as u64),
        };
        (target, own.policy.is_some())
    }

    /// GlobalKnownHostsFile as the config gives it (`none`: no file), else OpenSSH's.
    fn global_known_hosts(&self, check: &KeyCheck) -> Vec<PathBuf> {
        match &check.global_known_hosts {
            Some(files) => files
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case("none"))
                .map(|f| self.resolve_path(f))
                .collect(),
            None => GLOBAL_KNOWN_HOSTS.iter().map(Into::into).collect(),
        }
    }
}

/// A bastion without a StrictHostKeyChecking of its own is checked as strictly as the
/// strictest host that goes through it: one connection serves them all, so a host with
/// `off` never weakens the check another host asked for (nor does the order they connect in).
fn share_bastion_policy(hosts: &mut [Host], own: &[bool]) {
    let endpoint = |b: &Bastion| (b.user.clone(), b.host.clone(), b.port);
    let mut strictest: HashMap<_, HostKeyCheck> = HashMap::new();
    for (h, own) in hosts.iter().zip(own) {
        if let (Some(b), false) = (&h.ssh.bastion, own) {
            let policy = strictest.entry(endpoint(b)).or_insert(HostKeyCheck::Off);
            *policy = (*policy).max(h.ssh.host_key_check);
        }
    }
    for (h, own) in hosts.iter_mut().zip(own) {
        if let (Some(b), false) = (&mut h.ssh.bastion, own) {
            b.host_key_check = strictest[&endpoint(b)];
        }
    }
}

pub(super) fn parse_bastion(s: &str, default_user: &str) -> Option<Bastion> {
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
    (host.parse::<IpAddr>().is_ok() || is_hostname(host)).then(|| Bastion::new(&user, host, port))
}

/// An address as compared for duplicates: IPs in canonical form, names in lowercase.
fn same_host_key(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.trim_end_matches('.').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bastions() {
        assert_eq!(
            parse_bastion("ops@203.0.113.10:2200", "root"),
            Some(Bastion::new("ops", "203.0.113.10", 2200))
        );
        assert_eq!(
            parse_bastion("jump.example.com", "root"),
            Some(Bastion::new("root", "jump.example.com", 22))
        );
        assert_eq!(parse_bastion("ops@host:99999", "root"), None);
        assert_eq!(parse_bastion("@host", "root"), None);
    }
}
