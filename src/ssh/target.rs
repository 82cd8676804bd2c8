use std::path::PathBuf;
use std::time::Duration;

/// How a host's SSH key is checked against known_hosts (weakest first).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// No check at all (a warning is printed on every run).
    Off,
    /// An unknown key is appended to known_hosts; a changed key refuses.
    AcceptNew,
    /// An unknown or changed key refuses the connection.
    Strict,
}

/// OpenSSH's default GlobalKnownHostsFile.
pub const GLOBAL_KNOWN_HOSTS: [&str; 2] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// A jump host (OpenSSH ProxyJump), reached directly; the target is reached through it. Its
/// host key is checked by its own settings, never by those of the targets behind it: one
/// connection to it serves them all.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bastion {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// Its own private key (a ProxyJump alias's IdentityFile); `None`: the target's.
    pub key: Option<PathBuf>,
    pub host_key_check: HostKeyCheck,
    /// Where its key is checked, and recorded when new.
    pub known_hosts: PathBuf,
    pub global_known_hosts: Vec<PathBuf>,
    /// The name its key is recorded under (its HostKeyAlias), else `host`.
    pub host_key_alias: Option<String>,
}

impl Bastion {
    /// `user@host:port` checked strictly in `~/.ssh/known_hosts` and OpenSSH's global files.
    pub fn new(user: &str, host: &str, port: u16) -> Bastion {
        Bastion {
            user: user.into(),
            host: host.into(),
            port,
            key: None,
            host_key_check: HostKeyCheck::Strict,
            known_hosts: crate::fsutil::expand_tilde("~/.ssh/known_hosts"),
            global_known_hosts: GLOBAL_KNOWN_HOSTS.iter().map(Into::into).collect(),
            host_key_alias: None,
        }
    }
}

/// Everything needed to open one SSH connection to one host, already resolved from the
/// inventory (defaults applied, `~` expanded, sudo decided).
#[derive(Debug, Clone)]
pub struct Target {
    /// The inventory name, used in every message about this host.
    pub name: String,
    /// IP or DNS name this machine dials.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key file; `None` means use the ssh-agent at `$SSH_AUTH_SOCK`.
    pub key: Option<PathBuf>,
    /// Environment variable holding the key's passphrase, if the key is encrypted.
    pub key_passphrase_env: Option<String>,
    /// Run privileged commands through `sudo -n`.
    pub sudo: bool,
    pub bastion: Option<Bastion>,
    /// The user's known_hosts: checked first, and where a new key is added.
    pub known_hosts: PathBuf,
    /// OpenSSH's GlobalKnownHostsFile (default `/etc/ssh/ssh_known_hosts` and `..2`): keys
    /// there are trusted too; never written.
    pub global_known_hosts: Vec<PathBuf>,
    /// OpenSSH's HostKeyAlias: the name the host key is looked up and recorded under.
    pub host_key_alias: Option<String>,
    pub host_key_check: HostKeyCheck,
    pub connect_timeout: Duration,
}
