//! The one way every command reaches hosts: connect to those inside the limit (one SSH
//! connection each, `forks` handshakes at once) and read each in one round trip (the probe).
//! apply, plan, verify, rotate, `certs check` and `facts` all start here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::probe::{self, HostState, ProbeRequest};
use super::progress;
use super::report::Failure;
use crate::host::RemoteHost;
use crate::inventory::Host;
use crate::ssh;

/// One host of the run.
pub(crate) struct Node<'a> {
    pub host: &'a Host,
    /// `None` when the connection failed (see `error`).
    pub remote: Option<RemoteHost>,
    /// `None` when the host could not be reached or read.
    pub state: Option<HostState>,
    /// Why the host is out of the run, when it is.
    pub error: Option<String>,
    /// The connection error's code and hint, when it was one.
    pub failure: Option<Failure>,
    /// The time spent on this host alone (connect, probe, its changes): the summary's.
    pub busy: Duration,
    /// From TCP connect to authenticated.
    pub connect_time: Duration,
    /// Commands run over a connection already closed.
    commands_closed: usize,
}

impl<'a> Node<'a> {
    fn new(host: &'a Host, took: Duration) -> Node<'a> {
        Node {
            host,
            remote: None,
            state: None,
            error: None,
            failure: None,
            busy: took,
            connect_time: Duration::ZERO,
            commands_closed: 0,
        }
    }

    /// The connection failed: the host is out of the run, saying why.
    fn unreachable(&mut self, e: &ssh::ConnectError) {
        progress::host(
            &self.host.name,
            &format!("could not connect ({})", e.kind()),
        );
        self.fail(e.to_string());
        self.failure = Some(Failure::new(
            e.kind(),
            &self.host.name,
            &e.message(),
            e.hint(),
        ));
    }

    /// Read and not failed (and connected, unless a plan closed the connection once it was
    /// no longer needed: see [`connect_probe`]).
    pub fn alive(&self) -> bool {
        self.error.is_none() && self.state.is_some()
    }

    /// How many commands ran on the host.
    pub fn commands_run(&self) -> usize {
        self.commands_closed + self.remote.as_ref().map_or(0, |r| r.session.commands_run())
    }

    /// Take the host out of the run; transport errors already name it, the report names it
    /// once.
    pub fn fail(&mut self, error: String) {
        let error = match error.strip_prefix(&format!("{}: ", self.host.name)) {
            Some(rest) => rest.to_string(),
            None => error,
        };
        self.error.get_or_insert(error);
    }

    /// Why the host is out of the run, for scripts.
    pub fn failure(&self) -> Option<Failure> {
        let error = self.error.as_ref()?;
        Some(self.failure.clone().unwrap_or_else(|| Failure {
            code: "failed",
            message: error.clone(),
            hint: None,
        }))
    }
}

/// The SSH targets of `hosts`, each shown as connecting.
fn announce(hosts: &[&Host]) -> Vec<ssh::Target> {
    for h in hosts {
        progress::host(&h.name, "connecting");
    }
    hosts.iter().map(|h| h.ssh.clone()).collect()
}

/// Connect to `hosts` (one connection each, kept for the whole command).
pub(crate) async fn connect<'a>(hosts: &[&'a Host], forks: usize) -> Vec<Node<'a>> {
    let targets = announce(hosts);
    let connected = ssh::run_timed(&targets, forks, |_, session| async move { session }).await;
    hosts
        .iter()
        .zip(connected)
        .map(|(host, (_, session, took))| {
            let mut node = Node::new(host, took);
            match session {
                Ok(s) => {
                    node.connect_time = s.connect_time();
                    node.remote = Some(RemoteHost::new(s));
                }
                Err(e) => node.unreachable(&e),
            }
            node
        })
        .collect()
}

/// Connect to `hosts` and read each the moment it is connected (what `request` asks of it),
/// closing each connection `keep` does not want kept once the host is read: a read-only
/// command then holds no more than `forks` connections at a time, however large the fleet.
pub(crate) async fn connect_probe<'a>(
    hosts: &[&'a Host],
    forks: usize,
    request: impl Fn(&Host) -> ProbeRequest,
    keep: impl Fn(&Host) -> bool,
) -> Vec<Node<'a>> {
    let targets = announce(hosts);
    // Hosts of one role ask the same: one request kept for them all, not one a host (a few KB
    // each, held until every host is read).
    let mut unique: HashSet<Arc<ProbeRequest>> = HashSet::new();
    let asks: Arc<Vec<(String, Arc<ProbeRequest>, bool)>> = Arc::new(
        hosts
            .iter()
            .map(|h| {
                let req = request(h);
                let shared = match unique.get(&req) {
                    Some(shared) => shared.clone(),
                    None => {
                        let shared = Arc::new(req);
                        unique.insert(shared.clone());
                        shared
                    }
                };
                (h.name.clone(), shared, keep(h))
            })
            .collect(),
    );
    drop(unique);
    let probed = ssh::run_timed(&targets, forks, move |i, session| {
        let asks = asks.clone();
        async move {
            let (name, req, keep) = &asks[i];
            progress::host(name, "reading its state");
            let state = probe::probe(&session, req).await;
            let (commands, connect_time) = (session.commands_run(), session.connect_time());
            let session = if *keep && state.is_ok() {
                Some(session)
            } else {
                session.close().await;
                None
            };
            (session, state, commands, connect_time)
        }
    })
    .await;
    hosts
        .iter()
        .zip(probed)
        .map(|(host, (_, probed, took))| {
            let mut node = Node::new(host, took);
            match probed {
                Err(e) => node.unreachable(&e),
                Ok((session, state, commands, connect_time)) => {
                    node.connect_time = connect_time;
                    match session {
                        Some(s) => node.remote = Some(RemoteHost::new(s)),
                        None => node.commands_closed = commands,
                    }
                    match state {
                        Ok(state) => node.state = Some(state),
                        Err(e) => node.fail(format!("{e:#}")),
                    }
                }
            }
            node
        })
        .collect()
}

/// Read every connected host that has not failed, with what `request` asks of it (again,
/// when a command reads the hosts more than once).
pub(crate) async fn probe(nodes: &mut [Node<'_>], request: impl Fn(&Host) -> ProbeRequest) {
    let probes = join_all(nodes.iter().map(|n| {
        let req = request(n.host);
        async move {
            let remote = n.remote.as_ref().filter(|_| n.error.is_none())?;
            progress::host(&n.host.name, "reading its state");
            let started = Instant::now();
            let probed = probe::probe(&remote.session, &req).await;
            Some((probed, started.elapsed()))
        }
    }))
    .await;
    for (node, probed) in nodes.iter_mut().zip(probes) {
        let probed = probed.map(|(probed, took)| {
            node.busy += took;
            probed
        });
        match probed {
            None => {}
            Some(Err(e)) => {
                node.state = None;
                node.fail(format!("{e:#}"));
            }
            Some(Ok(state)) => node.state = Some(state),
        }
    }
}

/// Close every connection.
pub(crate) async fn close(nodes: &mut [Node<'_>]) {
    for n in nodes {
        if let Some(remote) = n.remote.take() {
            n.commands_closed += remote.session.commands_run();
            remote.session.close().await;
        }
        let how = match &n.error {
            Some(_) => "FAILED".to_string(),
            None => format!("done ({:.1} s)", n.busy.as_secs_f64()),
        };
        progress::done(&n.host.name, &how);
    }
}

/// Holds `/run/regboot.lock` for as long as the session lives (flock on a file the holding
/// command keeps open; it ends, and the lock goes, when the connection does). Arg: who holds it.
const HOST_LOCK: &str = r#"command -v flock >/dev/null 2>&1 || { echo no-flock; exec cat >/dev/null; }
exec 9>>/run/regboot.lock
if ! flock -n 9; then printf 'busy %s\n' "$(cat /run/regboot.owner 2>/dev/null || echo unknown)"; exit 0; fi
printf '%s\n' "$1" > /run/regboot.owner
echo locked
exec cat >/dev/null
"#;

/// Take every live host's run lock, so two regboot runs (even with different state
/// directories) never change one host at once. A host another run holds fails, naming that
/// run; returns notes for hosts that cannot be locked (no flock).
pub(crate) async fn lock(nodes: &mut [Node<'_>]) -> Vec<String> {
    let owner = owner();
    let answers = join_all(nodes.iter().map(|n| {
        let cmd = ssh::RemoteCommand::script(HOST_LOCK)
            .arg("regboot")
            .arg(&owner);
        async move {
            let remote = n.remote.as_ref().filter(|_| n.error.is_none())?;
            Some(remote.session.hold_as_root(&cmd).await)
        }
    }))
    .await;
    let mut notes = Vec::new();
    for (node, answer) in nodes.iter_mut().zip(answers) {
        match answer.as_ref().map(|a| a.as_ref().map(String::as_str)) {
            None | Some(Ok("locked")) => {}
            Some(Ok("no-flock")) => notes.push(format!(
                "{}: no flock(1) on the host, so it is not locked against other regboot runs",
                node.host.name
            )),
            Some(Ok(text)) => match text.strip_prefix("busy ") {
                Some(holder) => node.fail(format!(
                    "host {} is being changed by another regboot run ({holder}); wait for it \
                     to end, then run again",
                    node.host.name
                )),
                None => node.fail(format!("cannot take the host's run lock: {text}")),
            },
            Some(Err(e)) => node.fail(format!("cannot take the host's run lock: {e}")),
        }
    }
    notes
}

/// Who runs this: `user@machine (pid N), started at <UTC time>`.
fn owner() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "{user}@{machine} (pid {}), started at {now}",
        std::process::id()
    )
}
