//! Why a host could not be reached or a command could not run, each with the fix.

use std::path::PathBuf;
use std::time::Duration;

/// A connection that did not come up. Every variant names the host (its inventory name).
/// Shown as its message then its hint (what to do), which JSON carries apart.
#[derive(Debug, Clone)]
pub enum ConnectError {
    Unreachable {
        host: String,
        addr: String,
        reason: String,
        after: Duration,
    },
    Handshake {
        host: String,
        addr: String,
        attempts: u32,
        reason: String,
        /// Every attempt was dropped before the key exchange and other hosts of the run dial
        /// the same address: what sshd does beyond MaxStartups (see `dial::max_startups`).
        crowded: bool,
    },
    AuthRefused {
        host: String,
        user: String,
        tried: Vec<String>,
        server_methods: String,
    },
    HostKeyChanged {
        host: String,
        pattern: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    HostKeyRevoked {
        host: String,
        pattern: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    HostKeyUnknown {
        host: String,
        pattern: String,
        fingerprint: String,
        file: PathBuf,
    },
    KnownHostsFile {
        host: String,
        file: PathBuf,
        reason: String,
    },
    Key {
        host: String,
        path: PathBuf,
        reason: String,
    },
    Agent {
        host: String,
        reason: String,
    },
    Bastion {
        host: String,
        bastion: String,
        source: Box<ConnectError>,
    },
}

impl ConnectError {
    /// A short category for summaries and JSON: unreachable, auth-refused, host-key-changed, ...
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectError::Unreachable { .. } => "unreachable",
            ConnectError::Handshake { .. } => "handshake-failed",
            ConnectError::AuthRefused { .. } => "auth-refused",
            ConnectError::HostKeyChanged { .. } => "host-key-changed",
            ConnectError::HostKeyRevoked { .. } => "host-key-revoked",
            ConnectError::HostKeyUnknown { .. } => "host-key-unknown",
            ConnectError::KnownHostsFile { .. } => "known-hosts-file",
            ConnectError::Key { .. } => "key",
            ConnectError::Agent { .. } => "agent",
            ConnectError::Bastion { source, .. } => source.kind(),
        }
    }

    /// The inventory name of the host that could not be reached.
    pub fn host(&self) -> &str {
        match self {
            ConnectError::Unreachable { host, .. }
            | ConnectError::Handshake { host, .. }
            | ConnectError::AuthRefused { host, .. }
            | ConnectError::HostKeyChanged { host, .. }
            | ConnectError::HostKeyRevoked { host, .. }
            | ConnectError::HostKeyUnknown { host, .. }
            | ConnectError::KnownHostsFile { host, .. }
            | ConnectError::Key { host, .. }
            | ConnectError::Agent { host, .. }
            | ConnectError::Bastion { host, .. } => host,
        }
    }

    /// What went wrong, without the fix.
    pub fn message(&self) -> String {
        match self {
            ConnectError::Unreachable {
                host,
                addr,
                reason,
                after,
            } => format!(
                "{host}: unreachable: {addr} {reason} after {:.1} s",
                after.as_secs_f64()
            ),
            ConnectError::Handshake {
                host,
                addr,
                attempts,
                reason,
                ..
            } => format!(
                "{host}: SSH handshake with {addr} failed after {attempts} attempt(s): {reason}"
            ),
            ConnectError::AuthRefused {
                host,
                user,
                tried,
                server_methods,
            } => format!(
                "{host}: auth refused for user {user}: tried {}; the server accepts: {server_methods}",
                tried.join(", ")
            ),
            ConnectError::HostKeyChanged {
                host,
                pattern,
                fingerprint,
                file,
                line,
            }
            | ConnectError::HostKeyRevoked {
                host,
                pattern,
                fingerprint,
                file,
                line,
            } => {
                let (said, presents, where_) = match self {
                    ConnectError::HostKeyChanged { .. } => (
                        "HOST KEY CHANGED",
                        "now presents",
                        "which differs from the key in",
                    ),
                    _ => ("host key revoked", "presents", "marked @revoked in"),
                };
                format!(
                    "{host}: {said}: {pattern} {presents} {fingerprint}, {where_} {}:{line}",
                    file.display()
                )
            }
            ConnectError::HostKeyUnknown {
                host,
                pattern,
                fingerprint,
                file,
            } => format!(
                "{host}: unknown host key: {pattern} presents {fingerprint}, which is not in {} and host_key_check is strict",
                file.display()
            ),
            ConnectError::KnownHostsFile { host, file, reason } => {
                format!("{host}: known_hosts file {}: {reason}", file.display())
            }
            ConnectError::Key { host, path, reason } => {
                format!("{host}: private key {}: {reason}", path.display())
            }
            ConnectError::Agent { host, reason } => {
                format!("{host}: cannot use the ssh-agent: {reason}")
            }
            ConnectError::Bastion {
                host,
                bastion,
                source,
            } => format!("{host}: through bastion {bastion}: {}", source.message()),
        }
    }

    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConnectError::Unreachable { .. } => {
                Some("check the address and port, and that sshd runs there".into())
            }
            ConnectError::Handshake { crowded: true, .. } => Some(
                "many hosts share this server: lower --forks or raise MaxStartups in its sshd_config"
                    .into(),
            ),
            ConnectError::Handshake { addr, .. } => Some(format!(
                "check that {addr} is an SSH server (`ssh -v` to it shows what answers)"
            )),
            ConnectError::AuthRefused { user, .. } => Some(format!(
                "add the public key to ~{user}/.ssh/authorized_keys on the host, or set `key`/`user` in the inventory"
            )),
            ConnectError::HostKeyChanged { pattern, file, .. } => Some(format!(
                "if the host was reinstalled, remove the old key with `regboot known-hosts forget {pattern} --file {f}` (or `ssh-keygen -f {f} -R '{pattern}'`) and run again; otherwise someone may be intercepting the connection",
                f = file.display()
            )),
            ConnectError::HostKeyUnknown { file, .. } => Some(format!(
                "verify the fingerprint, then add it (`ssh-keyscan -p PORT HOST >> {}`) or run once with host_key_check: accept-new",
                file.display()
            )),
            ConnectError::Bastion { source, .. } => source.hint(),
            ConnectError::HostKeyRevoked { .. }
            | ConnectError::KnownHostsFile { .. }
            | ConnectError::Key { .. }
            | ConnectError::Agent { .. } => None,
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message())?;
        match self.hint() {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A remote command that could not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{host}: `{command}` did not finish within {} s", timeout.as_secs())]
    Timeout {
        host: String,
        command: String,
        timeout: Duration,
    },

    #[error(
        "{host}: sudo needs a password for user {user}; regboot runs `sudo -n` and never types one. \
         Allow it with a sudoers line such as `{user} ALL=(ALL) NOPASSWD: ALL` (visudo -f /etc/sudoers.d/{user}), or connect as root"
    )]
    SudoPasswordRequired { host: String, user: String },

    #[error(
        "{host}: `{command}` printed more than {} MiB, more than regboot reads from one command; \
         the host is not in the state regboot expects: look there at what that command reads",
        limit >> 20
    )]
    OutputTooLarge {
        host: String,
        command: String,
        limit: usize,
    },

    #[error("{host}: the connection failed while running `{command}`: {reason}")]
    Channel {
        host: String,
        command: String,
        reason: String,
    },
}
