//! What a host is, as the probe (`engine/probe.sh`) reads it in the same round trip as the
//! state modules compare: OS, init system, sudo access and the container runtimes present.
//!
//! To add a fact: print one more record in the probe script, add a field here, and read the
//! record in `engine::probe::parse`.

use std::collections::HashMap;

use serde::Serialize;

pub use crate::trust_store::OsFamily;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub os: Os,
    /// `uname -m`.
    pub arch: String,
    pub init: InitSystem,
    pub sudo: SudoAccess,
    pub docker: Runtime,
    pub containerd: Runtime,
    pub podman: Runtime,
}

impl Facts {
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
            containerd: Runtime::default(),
            podman: Runtime::default(),
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
