//! Why a host could not be reached or a command could not run, each with the fix.

use std::path::PathBuf;
use std::time::Duration;

/// A connection that did not come up. Every variant names the host (its inventory name).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "{host}: unreachable: {addr} {reason} after {:.1} s; check the address and port, and that sshd runs there",
        after.as_secs_f64()
    )]
    Unreachable {
        host: String,
        addr: String,
        reason: String,
        after: Duration,
    },

    #[error(
        "{host}: SSH handshake with {addr} failed after {attempts} attempt(s): {reason}; if many \
         hosts share this server, lower --forks or raise MaxStartups in its sshd_config"
    )]
    Handshake {
        host: String,
        addr: String,
        attempts: u32,
        reason: String,
    },

    #[error(
        "{host}: auth refused for user {user}: tried {}; the server accepts: {server_methods}. \
         Add the public key to ~{user}/.ssh/authorized_keys on the host, or set `key`/`user` in the inventory",
        tried.join(", ")
    )]
    AuthRefused {
        host: String,
        user: String,
        tried: Vec<String>,
        server_methods: String,
    },

    #[error(
        "{host}: HOST KEY CHANGED: {pattern} now presents {fingerprint}, which differs from the key \
         in {}:{line}. If the host was reinstalled, remove the old key with \
         `regboot known-hosts forget {pattern} --file {}` (or `ssh-keygen -f {} -R '{pattern}'`) \
         and run again; otherwise someone may be intercepting the connection",
        file.display(), file.display(), file.display()
    )]
    HostKeyChanged {
        host: String,
        pattern: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },

    #[error(
        "{host}: host key revoked: {pattern} presents {fingerprint}, marked @revoked in {}:{line}",
        file.display()
    )]
    HostKeyRevoked {
        host: String,
        pattern: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },

    #[error(
        "{host}: unknown host key: {pattern} presents {fingerprint}, which is not in {} and \
         host_key_check is strict. Verify the fingerprint, then add it (`ssh-keyscan -p PORT HOST \
         >> {}`) or run once with host_key_check: accept-new",
        file.display(), file.display()
    )]
    HostKeyUnknown {
        host: String,
        pattern: String,
        fingerprint: String,
        file: PathBuf,
    },

    #[error("{host}: known_hosts file {}: {reason}", file.display())]
    KnownHostsFile {
        host: String,
        file: PathBuf,
        reason: String,
    },

    #[error("{host}: private key {}: {reason}", path.display())]
    Key {
        host: String,
        path: PathBuf,
        reason: String,
    },

    #[error("{host}: cannot use the ssh-agent: {reason}")]
    Agent { host: String, reason: String },

    #[error("{host}: through bastion {bastion}: {source}")]
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
}

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

    #[error("{host}: the connection failed while running `{command}`: {reason}")]
    Channel {
        host: String,
        command: String,
        reason: String,
    },
}
