//! The russh client handler: checks the server's host key against known_hosts per the
//! target's `host_key_check`, and keeps the reason for a refusal so the caller can report it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::client::Handler;
use russh::keys::PublicKeyOrCertificate;

use super::HostKeyCheck;
use super::error::ConnectError;
use super::known_hosts::{self, Entry, Verdict, fingerprint, host_pattern};

pub struct Verifier {
    pub host: String,
    pub address: String,
    pub port: u16,
    pub file: PathBuf,
    pub policy: HostKeyCheck,
    /// known_hosts entries for this host (the user's file, then the global ones), read
    /// before connecting (they also order the host key algorithms offered).
    pub entries: Vec<Entry>,
    /// Set when the key is refused; read by the caller after the handshake fails.
    pub refusal: Arc<Mutex<Option<ConnectError>>>,
}

impl Verifier {
    fn judge(&self, key: &russh::keys::PublicKey) -> Result<(), ConnectError> {
        let pattern = host_pattern(&self.address, self.port);
        let fp = fingerprint(key);
        if self.policy == HostKeyCheck::Off {
            tracing::warn!(
                "{}: host_key_check is off: accepting {pattern}'s key {fp} unchecked; anyone on \
                 the path could impersonate this host",
                self.host
            );
            return Ok(());
        }
        match known_hosts::verdict(&self.entries, key) {
            Verdict::Known => Ok(()),
            Verdict::Changed { file, line } => Err(ConnectError::HostKeyChanged {
                host: self.host.clone(),
                pattern,
                fingerprint: fp,
                file,
                line,
            }),
            Verdict::Revoked { file, line } => Err(ConnectError::HostKeyRevoked {
                host: self.host.clone(),
                pattern,
                fingerprint: fp,
                file,
                line,
            }),
            Verdict::Unknown if self.policy == HostKeyCheck::Strict => {
                Err(ConnectError::HostKeyUnknown {
                    host: self.host.clone(),
                    pattern,
                    fingerprint: fp,
                    file: self.file.clone(),
                })
            }
            Verdict::Unknown => {
                known_hosts::append(&self.file, &self.address, self.port, key).map_err(|e| {
                    ConnectError::KnownHostsFile {
                        host: self.host.clone(),
                        file: self.file.clone(),
                        reason: format!("cannot add the new key for {pattern}: {e}"),
                    }
                })?;
                tracing::info!(
                    "{}: added {pattern}'s key {fp} to {}",
                    self.host,
                    self.file.display()
                );
                Ok(())
            }
        }
    }
}

impl Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // No certificate algorithm is offered, so a server cannot answer with one.
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Ok(false);
        };
        match self.judge(key) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }
}
