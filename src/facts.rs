//! What a host is, as the probe (`engine/probe.sh`) reads it in the same round trip as the
//! state modules compare: OS, init system, sudo access and the container runtimes present
//! (dockerd and its image store, containerd and its config, podman, buildah, CRI-O).
//!
//! To add a fact: print one more record in the probe script, add a field here, and read the
//! record in `engine::probe::parse`.

use std::collections::HashMap;

use serde::Serialize;

pub use crate::merge::containerd::Config as ContainerdConfig;
pub use crate::trust_store::OsFamily;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub os: Os,
    /// `uname -m`.
    pub arch: String,
    pub init: InitSystem,
    pub sudo: SudoAccess,
    pub docker: Runtime,
    /// dockerd keeps its images in containerd (the containerd-snapshotter image store).
    pub docker_containerd_store: bool,
    pub containerd: Containerd,
    pub podman: Runtime,
    pub buildah: Runtime,
    pub crio: Runtime,
    /// The Kubernetes node this host is, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Kubernetes>,
}

impl Facts {
    /// A runtime that reads `/etc/containers/certs.d`: podman, buildah or CRI-O.
    pub fn containers_runtime(&self) -> bool {
        self.podman.installed || self.buildah.installed || self.crio.installed
    }

    /// Root, or sudo without a password (with or without a PTY).
    pub fn sudo_nopasswd(&self) -> bool {
        matches!(
            self.sudo,
            SudoAccess::Root | SudoAccess::Nopasswd | SudoAccess::Requiretty
        )
    }
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            os: Os::from_release(""),
            arch: String::new(),
            init: InitSystem::Other,
            sudo: SudoAccess::Missing,
            docker: Runtime::default(),
            docker_containerd_store: false,
            containerd: Containerd::default(),
            podman: Runtime::default(),
            buildah: Runtime::default(),
            crio: Runtime::default(),
            kubernetes: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Os {
    /// `ID` from os-release: debian, ubuntu, rocky, alpine...
    pub id: String,
    /// `VERSION_ID`; rolling releases have none.
    pub version: Option<String>,
    /// `None` (JSON null) for a distribution regboot does not know.
    pub family: Option<OsFamily>,
    pub pretty_name: Option<String>,
}

impl Os {
    /// From the text of os-release(5).
    pub fn from_release(text: &str) -> Os {
        let fields = parse_os_release(text);
        let id = fields.get("ID").cloned().unwrap_or_else(|| "linux".into());
        let family = OsFamily::from_ids(&id, fields.get("ID_LIKE").map_or("", String::as_str));
        Os {
            id,
            version: fields.get("VERSION_ID").cloned(),
            family,
            pretty_name: fields.get("PRETTY_NAME").cloned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitSystem {
    Systemd,
    Openrc,
    Other,
}

/// A container runtime or engine on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Runtime {
    pub installed: bool,
    /// Engines only (dockerd): its API answers.
    pub running: bool,
    pub version: Option<String>,
}

/// containerd, with what its config says about registries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Containerd {
    #[serde(flatten)]
    pub runtime: Runtime,
    /// `/etc/containerd/config.toml` as read (version, CRI plugin on, its registry
    /// `config_path`); `None`: no such file, containerd runs on its defaults.
    pub config: Option<ContainerdConfig>,
    /// Why the config file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

impl Containerd {
    /// From the config file's text (`None`: no file).
    pub fn with_config(runtime: Runtime, text: Option<&str>) -> Containerd {
        let (config, config_error) = match text.map(crate::merge::containerd::read) {
            None => (None, None),
            Some(Ok(c)) => (Some(c), None),
            Some(Err(e)) => (None, Some(format!("{e:#}"))),
        };
        Containerd {
            runtime,
            config,
            config_error,
        }
    }

    /// Major and minor version ((1, 0) when unknown: the oldest is the safe guess).
    pub fn release(&self) -> (u32, u32) {
        let v = self.runtime.version.as_deref().unwrap_or("");
        let mut parts = v.trim_start_matches('v').split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        });
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) => (major, minor),
            _ => (1, 0),
        }
    }
}

/// Who runs the node's kubelet: kubeadm's (a `kubelet` unit over the host's containerd), or k3s
/// or RKE2, each with its own containerd that reads `/etc/rancher/<k3s|rke2>/registries.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeDistribution {
    Kubelet,
    K3s,
    Rke2,
}

impl KubeDistribution {
    pub fn name(self) -> &'static str {
        match self {
            KubeDistribution::Kubelet => "kubelet",
            KubeDistribution::K3s => "k3s",
            KubeDistribution::Rke2 => "rke2",
        }
    }
}

/// A k3s or RKE2 node's role (their unit's name says it: `k3s`/`rke2-server` or `-agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeRole {
    Server,
    Agent,
}

/// A Kubernetes node, as its service's unit shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kubernetes {
    pub distribution: KubeDistribution,
    /// The unit (systemd) or init script (OpenRC) that runs it.
    pub service: String,
    /// k3s and RKE2 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<KubeRole>,
    /// The service runs.
    pub active: bool,
    /// `v1.30.4+k3s1`; `None`: not read.
    pub version: Option<String>,
}

impl Kubernetes {
    /// From the probe's record: the unit's name, its state (`systemctl is-active`) and version.
    pub fn from_unit(service: &str, state: &str, version: &str) -> Option<Kubernetes> {
        let (distribution, role) = match service {
            "k3s" => (KubeDistribution::K3s, Some(KubeRole::Server)),
            "k3s-agent" => (KubeDistribution::K3s, Some(KubeRole::Agent)),
            "rke2-server" => (KubeDistribution::Rke2, Some(KubeRole::Server)),
            "rke2-agent" => (KubeDistribution::Rke2, Some(KubeRole::Agent)),
            "kubelet" => (KubeDistribution::Kubelet, None),
            _ => return None,
        };
        Some(Kubernetes {
            distribution,
            service: service.to_string(),
            role,
            active: state == "active",
            version: Some(version)
                .filter(|v| !v.is_empty() && *v != "-")
                .map(str::to_string),
        })
    }

    /// k3s or RKE2: its own containerd, configured from registries.yaml.
    pub fn rancher(&self) -> bool {
        self.distribution != KubeDistribution::Kubelet
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SudoAccess {
    /// The login user is root.
    Root,
    Nopasswd,
    /// Nopasswd, but sudoers has `requiretty`.
    Requiretty,
    /// sudo asks for a password (or the user may not use it).
    Password,
    /// No sudo on the host.
    Missing,
}

/// os-release(5): `KEY=value` with optional shell-style quotes.
fn parse_os_release(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| !k.starts_with('#'))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = if v.len() >= 2 && (v.starts_with('"') && v.ends_with('"')) {
                v[1..v.len() - 1]
                    .replace("\\\"", "\"")
                    .replace("\\$", "$")
                    .replace("\\`", "`")
                    .replace("\\\\", "\\")
            } else if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
                v[1..v.len() - 1].to_string()
            } else {
                v.to_string()
            };
            (k.to_string(), unquoted)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_id_and_id_like() {
        let cases = [
            (
                "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"",
                "ubuntu",
                Some(OsFamily::Debian),
            ),
            (
                "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"",
                "rocky",
                Some(OsFamily::Rhel),
            ),
            (
                "ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"",
                "opensuse-leap",
                Some(OsFamily::Suse),
            ),
            ("ID=arch", "arch", Some(OsFamily::Arch)),
            (
                "ID=alpine\nVERSION_ID=3.19.1",
                "alpine",
                Some(OsFamily::Alpine),
            ),
            ("ID=nixos", "nixos", None),
        ];
        for (release, id, family) in cases {
            let os = Os::from_release(release);
            assert_eq!((os.id.as_str(), os.family), (id, family));
        }
        assert_eq!(
            Os::from_release("ID=debian\nVERSION_ID='12'\n")
                .version
                .as_deref(),
            Some("12")
        );
    }
}
