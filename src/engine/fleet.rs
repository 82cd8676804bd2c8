//! The one way every command reaches hosts: connect to those inside the limit (one SSH
//! connection each, `forks` handshakes at once) and read each in one round trip (the probe).
//! apply, plan, verify, rotate, `certs check` and `facts` all start here.

use futures::future::join_all;

use super::probe::{self, HostState, ProbeRequest};
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
    /// The connection error's kind (`unreachable`, `host-key-changed`...), when it was one.
    pub error_kind: Option<&'static str>,
}

impl Node<'_> {
    /// Connected, read, and not failed.
    pub fn alive(&self) -> bool {
        self.error.is_none() && self.remote.is_some() && self.state.is_some()
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
}

/// Connect to `hosts` (one connection each, kept for the whole command).
pub(crate) async fn connect<'a>(hosts: &[&'a Host], forks: usize) -> Vec<Node<'a>> {
    let targets: Vec<ssh::Target> = hosts.iter().map(|h| h.ssh.clone()).collect();
    let connected = ssh::connect_all(&targets, forks).await;
    hosts
        .iter()
        .zip(connected)
        .map(|(host, (_, session))| {
            let mut node = Node {
                host,
                remote: None,
                state: None,
                error: None,
                error_kind: None,
            };
            match session {
                Ok(s) => node.remote = Some(RemoteHost::new(s)),
                Err(e) => {
                    node.error_kind = Some(e.kind());
                    node.fail(e.to_string());
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
            Some(probe::probe(&remote.session, &req).await)
        }
    }))
    .await;
    for (node, probed) in nodes.iter_mut().zip(probes) {
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
            remote.session.close().await;
        }
    }
}
