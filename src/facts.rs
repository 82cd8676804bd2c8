//! What a host is: gathered by one script in one round trip, parsed into [`Facts`].
//!
//! To add a fact: print one more `key=value` line in [`SCRIPT`], add a field to [`Facts`],
//! and read it in [`parse`].

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

pub use crate::trust_store::OsFamily;

use crate::ssh::{ExecError, RemoteCommand, Session};

/// Runs as the login user with POSIX sh (dash, busybox ash, bash); never needs root.
pub const SCRIPT: &str = r#"
echo '@os-release'
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo '@facts'
if [ -d /run/systemd/system ]; then echo init=systemd
elif [ -d /run/openrc ] || command -v openrc >/dev/null 2>&1; then echo init=openrc
else echo init=other; fi
if command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1
then echo docker_installed=yes; else echo docker_installed=no; fi
v=$(docker version --format '{{.Server.Version}}' 2>/dev/null)
case "$v" in [0-9]*) ;; *) v=$( (dockerd --version || docker --version) 2>/dev/null | sed -n 's/^Docker version \([^,]*\).*/\1/p' | head -n 1) ;; esac
echo "docker_version=$v"
if pidof dockerd >/dev/null 2>&1 || { [ -d /run/systemd/system ] && systemctl is-active --quiet docker 2>/dev/null; }
then echo docker_running=yes; else echo docker_running=no; fi
if [ "$(id -u)" = 0 ]; then echo sudo=root
elif ! command -v sudo >/dev/null 2>&1; then echo sudo=missing
elif e=$(LC_ALL=C sudo -n true 2>&1 </dev/null); then echo sudo=nopasswd
else case "$e" in *tty*) echo sudo=requiretty ;; *) echo sudo=password ;; esac; fi
if [ -e /etc/docker/daemon.json ]; then echo daemon_json=yes; else echo daemon_json=no; fi
"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    pub os: Os,
    pub init: InitSystem,
    pub docker: Docker,
    pub sudo: SudoAccess,
    /// Root, or sudo without a password (with or without a PTY).
    pub sudo_nopasswd: bool,
    pub daemon_json_exists: bool,
    /// From TCP connect to authenticated, in milliseconds.
    pub connect_ms: u64,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitSystem {
    Systemd,
    Openrc,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Docker {
    pub installed: bool,
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

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("{host}: the facts script failed (exit {status}): {stderr}")]
    Script {
        host: String,
        status: u32,
        stderr: String,
    },
    #[error("{host}: cannot read the facts script's output: {reason}")]
    Parse { host: String, reason: String },
}

/// Read the facts of the host behind `session`: one channel, one script.
pub async fn gather(session: &Session) -> Result<Facts, FactsError> {
    let host = &session.target().name;
    let out = session.exec(&RemoteCommand::script(SCRIPT), None).await?;
    if !out.success() {
        return Err(FactsError::Script {
            host: host.clone(),
            status: out.status,
            stderr: out.stderr_tail(),
        });
    }
    parse(&out.stdout_text(), session.connect_time()).map_err(|reason| FactsError::Parse {
        host: host.clone(),
        reason,
    })
}

/// Parse the output of [`SCRIPT`].
pub fn parse(output: &str, connect_time: Duration) -> Result<Facts, String> {
    let (os_release, facts) = output
        .split_once("@facts\n")
        .ok_or("no @facts section (is /bin/sh a POSIX shell?)")?;
    let os_release = os_release
        .trim_start()
        .strip_prefix("@os-release")
        .unwrap_or(os_release);
    let os = parse_os_release(os_release);
    let kv: HashMap<&str, &str> = facts.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| kv.get(k).copied().ok_or(format!("no `{k}` line"));
    let yes = |k: &str| get(k).map(|v| v == "yes");

    let id = os.get("ID").cloned().unwrap_or_else(|| "linux".into());
    let family = OsFamily::from_ids(&id, os.get("ID_LIKE").map(String::as_str).unwrap_or(""));
    let sudo = match get("sudo")? {
        "root" => SudoAccess::Root,
        "nopasswd" => SudoAccess::Nopasswd,
        "requiretty" => SudoAccess::Requiretty,
        "password" => SudoAccess::Password,
        "missing" => SudoAccess::Missing,
        other => return Err(format!("unexpected sudo={other}")),
    };
    Ok(Facts {
        os: Os {
            id,
            version: os.get("VERSION_ID").cloned(),
            family,
            pretty_name: os.get("PRETTY_NAME").cloned(),
        },
        init: match get("init")? {
            "systemd" => InitSystem::Systemd,
            "openrc" => InitSystem::Openrc,
            _ => InitSystem::Other,
        },
        docker: Docker {
            installed: yes("docker_installed")?,
            running: yes("docker_running")?,
            version: Some(get("docker_version")?.trim().to_string()).filter(|v| !v.is_empty()),
        },
        sudo_nopasswd: matches!(
            sudo,
            SudoAccess::Root | SudoAccess::Nopasswd | SudoAccess::Requiretty
        ),
        sudo,
        daemon_json_exists: yes("daemon_json")?,
        connect_ms: u64::try_from(connect_time.as_millis()).unwrap_or(u64::MAX),
    })
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

    /// The script run by the local sh gives facts that agree with this machine.
    #[test]
    fn script_runs_locally_and_parses() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .output()
            .unwrap();
        assert!(out.status.success());
        let facts = parse(
            &String::from_utf8_lossy(&out.stdout),
            Duration::from_millis(7),
        )
        .unwrap();
        let release = parse_os_release(&std::fs::read_to_string("/etc/os-release").unwrap());
        assert_eq!(Some(&facts.os.id), release.get("ID"));
        assert_eq!(facts.os.version.as_ref(), release.get("VERSION_ID"));
        assert_eq!(
            facts.daemon_json_exists,
            std::path::Path::new("/etc/docker/daemon.json").exists()
        );
        assert_eq!(facts.connect_ms, 7);
    }

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
            let out = format!(
                "@os-release\n{release}\n@facts\ninit=openrc\ndocker_installed=yes\ndocker_version=24.0.7\n\
                 docker_running=no\nsudo=requiretty\ndaemon_json=no\n"
            );
            let f = parse(&out, Duration::ZERO).unwrap();
            assert_eq!((f.os.id.as_str(), f.os.family), (id, family));
            assert_eq!(f.init, InitSystem::Openrc);
            assert_eq!(f.docker.version.as_deref(), Some("24.0.7"));
            assert!(f.sudo_nopasswd);
        }
    }

    #[test]
    fn missing_lines_are_errors() {
        assert!(parse("ID=debian\n", Duration::ZERO).is_err());
        assert!(
            parse(
                "@os-release\nID=debian\n@facts\ninit=systemd\n",
                Duration::ZERO
            )
            .unwrap_err()
            .contains("no `sudo` line")
        );
    }
}
