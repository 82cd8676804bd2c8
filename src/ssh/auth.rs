//! User authentication: a private key file (decrypted once per run), or the ssh-agent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::{AuthResult, Handle, Handler};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use tokio::sync::Mutex;

use super::error::ConnectError;
use super::known_hosts::fingerprint;
use crate::fsutil::{SECRET_LIMIT, read_text_limited};

/// OpenSSH servers refuse after MaxAuthTries (6) attempts; stay below it.
const MAX_AGENT_KEYS: usize = 5;

/// Decrypted private keys by path: every host sharing a key costs one read and at most one
/// passphrase prompt per run.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<PathBuf, Arc<PrivateKey>>>,
}

impl KeyCache {
    pub async fn load(
        &self,
        host: &str,
        path: &Path,
        passphrase_env: Option<&str>,
    ) -> Result<Arc<PrivateKey>, ConnectError> {
        // Held across the load so concurrent hosts wait for the one prompt.
        let mut keys = self.keys.lock().await;
        if let Some(k) = keys.get(path) {
            return Ok(k.clone());
        }
        let err = |reason: String| ConnectError::Key {
            host: host.to_string(),
            path: path.to_path_buf(),
            reason,
        };
        // A small regular file: read inline, bounded (`key: /dev/zero` must not fill memory).
        let text = read_text_limited(path, "SSH key (`key:`)", SECRET_LIMIT)
            .map_err(|e| err(format!("{e:#}")))?;
        refuse_open_key(path).map_err(err)?;
        let key = match russh::keys::decode_secret_key(&text, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let pass = passphrase(path, passphrase_env).await.map_err(err)?;
                russh::keys::decode_secret_key(&text, Some(&pass)).map_err(|e| {
                    err(format!("cannot decrypt it ({e}); is the passphrase right?"))
                })?
            }
            Err(e) => return Err(err(format!("cannot parse it: {e}"))),
        };
        let key = Arc::new(key);
        keys.insert(path.to_path_buf(), key.clone());
        Ok(key)
    }
}

/// As ssh(1) does: a key file of ours that group or others may access is not used.
fn refuse_open_key(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // the read reports it
    };
    // SAFETY: geteuid(2) has no preconditions.
    let ours = meta.uid() == unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o777;
    if ours && mode & 0o077 != 0 {
        return Err(format!(
            "it has mode {mode:04o}: group or others may read it, and ssh refuses such a key too. \
             Fix: `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

/// The passphrase from the named environment variable, or typed on the terminal.
async fn passphrase(path: &Path, env: Option<&str>) -> Result<String, String> {
    if let Some(var) = env {
        return std::env::var(var).map_err(|_| {
            format!("the key is encrypted and ${var} (key_passphrase_env) is not set")
        });
    }
    let prompt = format!("Enter passphrase for key {}: ", path.display());
    tokio::task::spawn_blocking(move || read_tty_without_echo(&prompt))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "the key is encrypted and no terminal is available to ask for its passphrase \
                 ({e}); set key_passphrase_env in the inventory or load the key into ssh-agent"
            )
        })
}

pub(crate) fn read_tty_without_echo(prompt: &str) -> std::io::Result<String> {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: tcgetattr/tcsetattr only read and write the termios struct we own.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut silent = saved;
    silent.c_lflag &= !libc::ECHO;
    silent.c_lflag |= libc::ECHONL;
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &silent) };
    let result = (|| {
        (&tty).write_all(prompt.as_bytes())?;
        let mut line = String::new();
        BufReader::new(&tty).read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    })();
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result
}

/// Authenticate `user` with `key` if given, else with each ssh-agent identity in turn.
/// On refusal the error lists what was tried and what the server would accept.
pub async fn authenticate<H: Handler>(
    handle: &mut Handle<H>,
    host: &str,
    user: &str,
    key: Option<(&Path, Arc<PrivateKey>)>,
) -> Result<(), ConnectError> {
    let mut tried = Vec::new();
    let mut server_methods = String::from("unknown");
    let refused = |host: &str, tried, server_methods| ConnectError::AuthRefused {
        host: host.to_string(),
        user: user.to_string(),
        tried,
        server_methods,
    };

    if let Some((path, key)) = key {
        let label = format!(
            "publickey {} ({} {})",
            path.display(),
            key.algorithm().as_str(),
            fingerprint(key.public_key())
        );
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        let result = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(|e| refused(host, vec![format!("{label}: {e}")], server_methods.clone()))?;
        if result.success() {
            return Ok(());
        }
        note(&result, &mut server_methods);
        tried.push(label);
        return Err(refused(host, tried, server_methods));
    }

    let agent_err = |reason: String| ConnectError::Agent {
        host: host.to_string(),
        reason,
    };
    let mut agent = AgentClient::connect_env().await.map_err(|e| {
        agent_err(format!(
            "{e}; no `key` is set for this host, so regboot needs a running ssh-agent \
             ($SSH_AUTH_SOCK) or a `key:` in the inventory"
        ))
    })?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| agent_err(format!("cannot list its keys: {e}")))?;
    if identities.is_empty() {
        return Err(agent_err(
            "the agent holds no keys; add one with ssh-add or set `key:` in the inventory".into(),
        ));
    }
    for identity in identities.into_iter().take(MAX_AGENT_KEYS) {
        let AgentIdentity::PublicKey { key, comment } = identity else {
            continue;
        };
        let label = format!(
            "agent key {} ({} {})",
            comment,
            key.algorithm().as_str(),
            fingerprint(&key)
        );
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return Ok(()),
            Ok(r) => {
                note(&r, &mut server_methods);
                tried.push(label);
            }
            Err(e) => tried.push(format!("{label}: {e}")),
        }
    }
    Err(refused(host, tried, server_methods))
}

/// The rsa-sha2 hash the server accepts (from its server-sig-algs), asked only for RSA keys:
/// the question can wait up to a second for the server's EXT_INFO.
async fn rsa_hash<H: Handler>(handle: &Handle<H>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

/// Remember the methods a refusing server says it would still accept.
fn note(result: &AuthResult, server_methods: &mut String) {
    if let AuthResult::Failure {
        remaining_methods, ..
    } = result
    {
        let names: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
        *server_methods = if names.is_empty() {
            "nothing more".into()
        } else {
            names.join(",")
        };
    }
}
