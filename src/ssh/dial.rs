//! Opening authenticated connections: TCP (or a direct-tcpip channel through a bastion), key
//! exchange, host key check, user auth. Shared by every host of a run, so that keys are
//! decrypted once, each bastion is dialed once, and no sshd sees more than a few handshakes at
//! a time (sshd's MaxStartups drops connections beyond ~10 unauthenticated ones).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::Preferred;
use russh::client::{self, Handle};
use russh::keys::PrivateKey;
use tokio::net::TcpStream;
use tokio::sync::{OnceCell, Semaphore};

use super::auth::{self, KeyCache};
use super::error::ConnectError;
use super::heard::{self, Heard};
use super::known_hosts;
use super::verifier::Verifier;
use super::{Bastion, HostKeyCheck, Target};

/// Unauthenticated handshakes in flight per server address.
pub const HANDSHAKES_PER_ADDRESS: usize = 8;
/// Attempts when a server drops the connection during banner or key exchange.
const HANDSHAKE_ATTEMPTS: u32 = 6;
/// A keepalive after this much silence; the third unanswered one closes the connection.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

pub type Connection = Handle<Verifier>;

/// One SSH hop: the target itself, or the bastion in front of it, with its own host key
/// check.
struct Hop<'a> {
    /// How messages name this hop.
    label: String,
    address: &'a str,
    /// The name its host key is recorded under (OpenSSH's HostKeyAlias, else the address).
    key_name: &'a str,
    port: u16,
    user: &'a str,
    policy: HostKeyCheck,
    known_hosts: &'a Path,
    global_known_hosts: &'a [PathBuf],
    /// The target it is dialed for (its connect timeout).
    target: &'a Target,
}

impl Hop<'_> {
    fn addr(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }
}

enum Failure {
    Fatal(ConnectError),
    /// The server reset or closed the connection before its banner: likely MaxStartups
    /// (certainly, when it said so: `true`).
    Retry(String, bool),
}

type BastionCell = Arc<OnceCell<Result<Arc<Connection>, ConnectError>>>;
/// A bastion with the key it is dialed with.
type BastionKey = (Bastion, Option<PathBuf>);

#[derive(Default)]
pub struct Dialer {
    keys: KeyCache,
    /// Per server address: the handshake limit, and how many hops dialed it.
    handshakes: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
    /// One connection per bastion (`user@host:port` and its own host key check) and key:
    /// its own (a ProxyJump alias's IdentityFile), else the key of the first target that
    /// needs it; its hosts' connections are channels on it. Its host key is checked by its
    /// own settings, so every target that rides it rides the same check.
    bastions: Mutex<HashMap<BastionKey, BastionCell>>,
}

impl Dialer {
    /// An authenticated connection to `target`, and the bastion connection it runs over.
    pub async fn connect(
        &self,
        target: &Target,
    ) -> Result<(Connection, Option<Arc<Connection>>), ConnectError> {
        let key = self.key(target, target.key.as_ref()).await?;
        let hop = Hop {
            label: target.name.clone(),
            address: &target.address,
            key_name: target.host_key_alias.as_deref().unwrap_or(&target.address),
            port: target.port,
            user: &target.user,
            policy: target.host_key_check,
            known_hosts: &target.known_hosts,
            global_known_hosts: &target.global_known_hosts,
            target,
        };
        let Some(b) = &target.bastion else {
            return Ok((self.connect_hop(&hop, key, None).await?, None));
        };
        let via = format!("{}@{}:{}", b.user, b.host, b.port);
        let bastion_key = match &b.key {
            Some(own) => self.key(target, Some(own)).await?,
            None => key.clone(),
        };
        let cell = self
            .bastions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((b.clone(), bastion_key.as_ref().map(|(p, _)| p.clone())))
            .or_default()
            .clone();
        let bastion = cell
            .get_or_init(|| async {
                let hop = Hop {
                    label: format!("bastion {via}"),
                    address: &b.host,
                    key_name: b.host_key_alias.as_deref().unwrap_or(&b.host),
                    port: b.port,
                    user: &b.user,
                    policy: b.host_key_check,
                    known_hosts: &b.known_hosts,
                    global_known_hosts: &b.global_known_hosts,
                    target,
                };
                self.connect_hop(&hop, bastion_key, None)
                    .await
                    .map(Arc::new)
            })
            .await
            .clone()
            .map_err(|e| ConnectError::Bastion {
                host: target.name.clone(),
                bastion: via.clone(),
                source: Box::new(e),
            })?;
        let conn = self.connect_hop(&hop, key, Some(&bastion)).await?;
        Ok((conn, Some(bastion)))
    }

    /// The key at `path` (the target's, or its bastion's own), `None` for the agent.
    async fn key(
        &self,
        target: &Target,
        path: Option<&PathBuf>,
    ) -> Result<Option<(PathBuf, Arc<PrivateKey>)>, ConnectError> {
        let Some(path) = path else {
            return Ok(None);
        };
        let key = self
            .keys
            .load(&target.name, path, target.key_passphrase_env.as_deref())
            .await?;
        Ok(Some((path.clone(), key)))
    }

    async fn connect_hop(
        &self,
        hop: &Hop<'_>,
        key: Option<(PathBuf, Arc<PrivateKey>)>,
        via: Option<&Connection>,
    ) -> Result<Connection, ConnectError> {
        let limit = {
            let mut map = self.handshakes.lock().unwrap_or_else(|p| p.into_inner());
            let entry = map
                .entry(hop.addr())
                .or_insert_with(|| (Arc::new(Semaphore::new(HANDSHAKES_PER_ADDRESS)), 0));
            entry.1 += 1;
            entry.0.clone()
        };
        let mut last = String::new();
        let mut said_max_startups = false;
        for attempt in 1..=HANDSHAKE_ATTEMPTS {
            if attempt > 1 {
                // Exponential backoff with jitter so retrying hosts do not return in lockstep.
                let base = 100u64 << (attempt - 1).min(5);
                let jitter = rand::random_range(0..=base);
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
            }
            let _permit = limit.acquire().await.map_err(|e| self.fatal(hop, e))?;
            match self.attempt(hop, key.clone(), via).await {
                Ok(conn) => return Ok(conn),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(reason, explicit)) => {
                    said_max_startups |= explicit;
                    tracing::debug!(
                        "{}: handshake attempt {attempt} failed: {reason}",
                        hop.label
                    );
                    last = reason;
                }
            }
        }
        // Dropped on every attempt: MaxStartups when sshd said so, or when several hosts of the
        // run dial this address at once; a lone host on an endpoint that closes at once faces
        // another service or a firewall, which that hint would only mislead about.
        let sharing = self
            .handshakes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hop.addr())
            .map_or(1, |e| e.1);
        Err(ConnectError::Handshake {
            host: hop.label.clone(),
            addr: hop.addr(),
            attempts: HANDSHAKE_ATTEMPTS,
            reason: last,
            crowded: said_max_startups || sharing > 1,
        })
    }

    fn fatal(&self, hop: &Hop<'_>, e: impl std::fmt::Display) -> ConnectError {
        ConnectError::Handshake {
            host: hop.label.clone(),
            addr: hop.addr(),
            attempts: 1,
            reason: e.to_string(),
            crowded: false,
        }
    }

    async fn attempt(
        &self,
        hop: &Hop<'_>,
        key: Option<(PathBuf, Arc<PrivateKey>)>,
        via: Option<&Connection>,
    ) -> Result<Connection, Failure> {
        let target = hop.target;
        let timeout = target.connect_timeout;
        let mut entries = Vec::new();
        for file in std::iter::once(hop.known_hosts)
            .chain(hop.global_known_hosts.iter().map(|f| f.as_path()))
        {
            let found = known_hosts::lookup(file, hop.key_name, hop.port).map_err(|e| {
                Failure::Fatal(ConnectError::KnownHostsFile {
                    host: hop.label.clone(),
                    file: file.to_path_buf(),
                    reason: format!("cannot read it: {e}"),
                })
            })?;
            entries.extend(found);
        }
        let config = Arc::new(client::Config {
            nodelay: true,
            // A cut connection (a host gone, a link down) is noticed in about 15 s even while
            // a command waits for window space, not at the command's timeout.
            keepalive_interval: Some(KEEPALIVE_INTERVAL),
            keepalive_max: 2,
            preferred: Preferred {
                key: Cow::Owned(known_hosts::preferred_algorithms(
                    &entries,
                    &Preferred::DEFAULT.key,
                )),
                ..Preferred::DEFAULT
            },
            ..Default::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            host: hop.label.clone(),
            address: hop.key_name.to_string(),
            port: hop.port,
            file: hop.known_hosts.to_path_buf(),
            policy: hop.policy,
            entries,
            refusal: refusal.clone(),
        };

        let start = Instant::now();
        let unreachable = |reason: String| {
            Failure::Fatal(ConnectError::Unreachable {
                host: hop.label.clone(),
                addr: hop.addr(),
                reason,
                after: start.elapsed(),
            })
        };
        // What the server sent: a retry is only for a close before the SSH banner.
        let banner;
        let handshake = match via {
            None => {
                let tcp = tokio::time::timeout(timeout, TcpStream::connect(hop.addr()))
                    .await
                    .map_err(|_| unreachable("did not answer (TCP connect timed out)".into()))?
                    .map_err(|e| unreachable(format!("refused the TCP connection ({e})")))?;
                let _ = tcp.set_nodelay(true);
                let (tcp, heard) = Heard::new(tcp);
                banner = heard;
                tokio::time::timeout(timeout, client::connect_stream(config, tcp, verifier)).await
            }
            Some(bastion) => {
                let channel = tokio::time::timeout(
                    timeout,
                    bastion.channel_open_direct_tcpip(
                        hop.address,
                        u32::from(hop.port),
                        "127.0.0.1",
                        0,
                    ),
                )
                .await
                .map_err(|_| unreachable("did not answer through the bastion (timed out)".into()))?
                .map_err(|e| unreachable(format!("could not be reached from the bastion ({e})")))?;
                let (stream, heard) = Heard::new(channel.into_stream());
                banner = heard;
                tokio::time::timeout(timeout, client::connect_stream(config, stream, verifier))
                    .await
            }
        };
        let taken =
            |r: &Mutex<Option<ConnectError>>| r.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut conn = match handshake {
            Err(_) => {
                return Err(Failure::Fatal(ConnectError::Handshake {
                    host: hop.label.clone(),
                    addr: hop.addr(),
                    attempts: 1,
                    reason: format!("no key exchange within {} s", timeout.as_secs()),
                    crowded: false,
                }));
            }
            Ok(Err(e)) => {
                if let Some(refused) = taken(&refusal) {
                    return Err(Failure::Fatal(refused));
                }
                let received = banner.lock().unwrap_or_else(|p| p.into_inner()).clone();
                return Err(match heard::max_startups(&received) {
                    Some(explicit) if is_dropped(&e) => Failure::Retry(e.to_string(), explicit),
                    _ => Failure::Fatal(self.fatal(hop, e)),
                });
            }
            Ok(Ok(conn)) => conn,
        };
        let key_ref = key.as_ref().map(|(p, k)| (p.as_path(), k.clone()));
        match tokio::time::timeout(
            timeout,
            auth::authenticate(&mut conn, &hop.label, hop.user, key_ref),
        )
        .await
        {
            Ok(Ok(())) => Ok(conn),
            Ok(Err(e)) => Err(Failure::Fatal(e)),
            Err(_) => Err(Failure::Fatal(self.fatal(hop, "authentication timed out"))),
        }
    }
}

/// A connection the server closed or reset, as sshd does beyond MaxStartups (before its
/// banner: the caller checks that nothing was received).
fn is_dropped(e: &russh::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    match e {
        russh::Error::IO(io) => matches!(
            io.kind(),
            ConnectionReset | UnexpectedEof | BrokenPipe | ConnectionAborted
        ),
        russh::Error::Disconnect | russh::Error::HUP => true,
        _ => false,
    }
}
