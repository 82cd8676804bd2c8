//! From the file as written (`raw`) to the checked model: defaults, paths, and every rule,
//! collecting all problems with their places instead of stopping at the first.

mod hosts;
mod registry;
mod syntax;
mod tls;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::error::Diagnostic;
use super::locate::{Locations, Pos, YamlPath};
use super::model::*;
use super::raw::*;
use crate::fsutil::{expand_tilde, open_regular};

pub use syntax::is_hostname;
pub(super) use syntax::nearest;

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
        let mut registry = self.registry(raw.registry, &hosts);
        let registry_deploy = registry.deploy;
        let packages_bundle = raw.packages.bundle.map(|d| self.bundle(&d, &mut registry));
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
            metrics_textfile_dir: raw.metrics.textfile_dir.map(|d| {
                if !d.starts_with('/') {
                    let hint = Some("use node_exporter's --collector.textfile.directory".into());
                    let msg = format!("textfile_dir {d:?} is not an absolute path");
                    self.error(&at(&["metrics", "textfile_dir"]), msg, hint);
                }
                PathBuf::from(d)
            }),
            swarm_existing: self.swarm(raw.swarm, &registry_deploy),
            packages_bundle,
        };
        self.cross_checks(&inv);
        inv
    }

    /// `swarm:` says how to treat a swarm regboot did not make; it means nothing without
    /// `registry.deploy: swarm`.
    fn swarm(&mut self, raw: Option<RawSwarm>, deploy: &Deploy) -> bool {
        let Some(raw) = raw else { return false };
        if *deploy != Deploy::Swarm {
            self.error(
                &at(&["swarm"]),
                "`swarm:` applies only when the registry runs as a Swarm service",
                Some("set `registry.deploy: swarm`, or remove the `swarm:` section".into()),
            );
        }
        raw.existing.unwrap_or(false)
    }

    /// `packages.bundle`: a bundle directory; its manifest is checked when there is one (a
    /// missing one is said where a package is needed: `regboot bundle` may be about to make
    /// it). Without `image_archive`, the registry image comes from the bundle when it holds
    /// `registry.image`.
    fn bundle(&mut self, dir: &str, registry: &mut Registry) -> PathBuf {
        let dir = self.resolve_path(dir);
        if !dir.join(crate::bundle::MANIFEST).exists() {
            return dir;
        }
        match crate::bundle::Manifest::load(&dir) {
            Err(e) => self.error(
                &at(&["packages", "bundle"]),
                format!("{e:#}"),
                Some(format!(
                    "build it with `regboot bundle -i INVENTORY {}` on a machine that reaches \
                     the mirrors",
                    dir.display()
                )),
            ),
            Ok(m) => {
                if registry.image_archive.is_none()
                    && let Some(image) = m.image.filter(|i| i.name == registry.image)
                {
                    registry.image_archive = Some(dir.join(image.file));
                }
            }
        }
        dir
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
