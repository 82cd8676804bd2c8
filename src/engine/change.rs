//! A change a module wants on a host: a line for people, an optional diff, and the action
//! that makes it so. Modules only compute changes; the runner shows or applies them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::host::detached::Detached;
use crate::host::{Mode, RemoteHost};
use crate::registry_http::{self, Request};

/// Polls `docker info` until the engine answers (bounded: 60 tries, one a second).
const WAIT_DOCKER: &str = r#"i=0
until docker info >/dev/null 2>&1; do
  i=$((i+1)); [ $i -ge 60 ] && { echo "dockerd did not answer docker info within 60 s" >&2; exit 1; }
  sleep 1
done"#;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub enum Action {
    /// Write a whole file (atomically).
    PutFile {
        path: String,
        data: Vec<u8>,
        mode: Mode,
    },
    /// Run a root shell script with positional args, its stdin streamed from a local file
    /// (read only when applied, so plan never loads a large image archive).
    Script {
        what: String,
        script: String,
        args: Vec<String>,
        stdin_file: Option<PathBuf>,
    },
    /// Remove a file (missing is fine): a change a module can tell from the others (the trust
    /// store rebuilds its bundle from scratch after one).
    RemoveFile { path: String },
    /// Wait (bounded) until the registry on this host answers `GET /v2/` with 200 or 401.
    WaitHealthy {
        hostname: String,
        port: u16,
        ca_pem: Option<String>,
        /// A script whose output explains a timeout (the server's last log lines).
        diagnose: &'static str,
    },
    /// Install packages from an offline bundle (`packages.bundle`): send what the host lacks,
    /// check it, install with no mirror.
    Bundle(Box<crate::bundle::install::Install>),
    /// Run a root script detached on the host under its own bound (a package install may
    /// outlast the SSH command timeout).
    Detached(Detached),
}

#[derive(Debug, Clone)]
pub struct Change {
    /// One line: what changes, e.g. `write /etc/docker/daemon.json`.
    pub summary: String,
    /// What a reader sees under the summary: a unified diff for text files, the fields of a
    /// certificate file and what differs in them, a redacted digest for secrets.
    pub diff: Option<String>,
    /// A certificate file's unified diff (base64 lines), shown only on request (`--diff`).
    pub raw_diff: Option<String>,
    pub action: Action,
    /// Disrupts the host (a dockerd restart): the runner makes such changes on one host at a
    /// time, in inventory order, stopping at the first failure.
    pub one_at_a_time: bool,
}

impl Change {
    /// Drop the bytes a file write carries (a plan keeps its changes only to print them).
    pub fn forget_data(&mut self) {
        if let Action::PutFile { data, .. } = &mut self.action {
            *data = Vec::new();
        }
    }

    pub fn put_file(path: &str, data: Vec<u8>, mode: Mode, diff: Option<String>) -> Change {
        Change {
            summary: format!("write {path}"),
            diff,
            raw_diff: None,
            action: Action::PutFile {
                path: path.to_string(),
                data,
                mode,
            },
            one_at_a_time: false,
        }
    }

    pub fn script(summary: impl Into<String>, script: &str, args: &[&str]) -> Change {
        let summary = summary.into();
        Change {
            action: Action::Script {
                what: summary.clone(),
                script: script.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
                stdin_file: None,
            },
            summary,
            diff: None,
            raw_diff: None,
            one_at_a_time: false,
        }
    }

    /// `remove PATH`: the file goes, when there.
    pub fn remove_file(path: &str) -> Change {
        Change {
            summary: format!("remove {path}"),
            diff: None,
            raw_diff: None,
            action: Action::RemoveFile {
                path: path.to_string(),
            },
            one_at_a_time: false,
        }
    }

    /// Whether it removes a file.
    pub fn removes_file(&self) -> bool {
        matches!(self.action, Action::RemoveFile { .. })
    }

    /// Wait (bounded) until the registry on this host answers `GET /v2/` (see
    /// `Action::WaitHealthy`).
    pub fn wait_healthy(
        summary: impl Into<String>,
        hostname: &str,
        port: u16,
        ca_pem: Option<String>,
        diagnose: &'static str,
    ) -> Change {
        Change {
            summary: summary.into(),
            diff: None,
            raw_diff: None,
            action: Action::WaitHealthy {
                hostname: hostname.to_string(),
                port,
                ca_pem,
                diagnose,
            },
            one_at_a_time: false,
        }
    }

    /// Install from a bundle (see `Action::Bundle`).
    pub fn bundle(summary: String, install: crate::bundle::install::Install) -> Change {
        Change {
            summary,
            diff: None,
            raw_diff: None,
            action: Action::Bundle(Box::new(install)),
            one_at_a_time: false,
        }
    }

    /// Run `detached` on the host (see `Action::Detached`).
    pub fn detached(summary: String, detached: Detached) -> Change {
        Change {
            summary,
            diff: None,
            raw_diff: None,
            action: Action::Detached(detached),
            one_at_a_time: false,
        }
    }

    /// Wait (bounded) until dockerd answers `docker info`.
    pub fn wait_docker() -> Change {
        Change::script("wait until dockerd answers docker info", WAIT_DOCKER, &[])
    }

    /// Mark this change as one the runner makes on one host at a time.
    pub fn one_at_a_time(mut self) -> Change {
        self.one_at_a_time = true;
        self
    }

    pub fn with_stdin_file(mut self, path: &Path) -> Change {
        if let Action::Script { stdin_file, .. } = &mut self.action {
            *stdin_file = Some(path.to_path_buf());
        }
        self
    }

    pub async fn apply(&self, host: &RemoteHost) -> Result<()> {
        match &self.action {
            Action::PutFile { path, data, mode } => host.put_file(path, data, *mode).await,
            Action::Script {
                what,
                script,
                args,
                stdin_file,
            } => {
                let stdin = match stdin_file {
                    Some(p) => Some(
                        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
                    ),
                    None => None,
                };
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                host.run(what, script, &args, stdin.as_deref())
                    .await
                    .map(|_| ())
            }
            Action::RemoveFile { path } => {
                let what = format!("remove {path}");
                (host.run(&what, r#"rm -f -- "$1""#, &[path], None).await).map(|_| ())
            }
            Action::WaitHealthy {
                hostname,
                port,
                ca_pem,
                diagnose,
            } => wait_healthy(host, hostname, *port, ca_pem.as_deref(), diagnose).await,
            Action::Bundle(install) => install.apply(host).await,
            Action::Detached(detached) => detached.run(host).await,
        }
    }
}

async fn wait_healthy(
    host: &RemoteHost,
    hostname: &str,
    port: u16,
    ca_pem: Option<&str>,
    diagnose: &str,
) -> Result<()> {
    let req = Request {
        method: "GET",
        path: "/v2/",
        hostname,
        port,
        ca_pem,
        basic_auth: None,
    };
    let start = Instant::now();
    let last = loop {
        // Each attempt within what is left, so the bound holds whatever the registry does.
        let left = HEALTH_TIMEOUT.saturating_sub(start.elapsed());
        let attempt = tokio::time::timeout(left, registry_http::status(&host.session, &req));
        let last = match attempt.await {
            Ok(Ok(200 | 401)) => return Ok(()),
            Ok(Ok(code)) => format!("HTTP {code}"),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "no answer".into(),
        };
        if start.elapsed() > HEALTH_TIMEOUT {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let logs = host
        .script(diagnose, &[], None)
        .await
        .map(|o| o.stdout_text())
        .unwrap_or_default();
    bail!(
        "the registry did not answer GET /v2/ within {} s (last: {last}); the last log lines:\n{}",
        HEALTH_TIMEOUT.as_secs(),
        logs.trim_end()
    )
}
