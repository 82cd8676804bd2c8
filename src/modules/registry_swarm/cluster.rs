//! The swarm the registry service runs in: initialised on the first registry host when none of
//! them is in one, joined by the others (the join token in the body of an Engine API request
//! relayed by `docker system dial-stdio`, never on a command line), and the registry hosts' nodes labelled for the service's
//! placement. A swarm regboot did not make is used only when the inventory says so
//! (`swarm.existing: true`); each host regboot made a member keeps a marker (/etc/regboot/swarm-created), so reset
//! dissolves only what regboot created.

use anyhow::{Context, Result, bail};
use futures::future::join_all;

use super::Doing;
use crate::engine::module::{FleetCx, Member};
use crate::host::RemoteHost;

/// The node label the service's placement constraint names.
pub(super) const NODE_LABEL: &str = "io.regboot.registry";

const READ_NODE: &str = r#"s=$(docker info --format '{{.Swarm.LocalNodeState}}|{{.Swarm.NodeID}}|{{.Swarm.ControlAvailable}}' 2>&1) || {
  echo "docker info failed: $s" >&2; exit 1; }
if [ -f /etc/regboot/swarm-created ]; then printf '%s|created\n' "$s"; else printf '%s|\n' "$s"; fi
"#;

/// Args: the address to advertise.
const INIT: &str = r#"set -eu
docker swarm init --advertise-addr "$1" >/dev/null
mkdir -p /etc/regboot
echo manager >/etc/regboot/swarm-created
"#;

/// Stdin: the Engine API's `POST /swarm/join` request, whose body holds the join token: the
/// docker CLI relays it to dockerd's socket as root (`dial-stdio`), so the token is on no
/// command line. Prints the answer's status line; marks the host once joined.
const JOIN: &str = r#"set -eu
out=$(docker system dial-stdio)
case $out in
  "HTTP/1.1 200"*) ;;
  *) echo "dockerd refused to join the swarm: $(printf '%s\n' "$out" | head -n 1 | tr -d '\r'): $(printf '%s\n' "$out" | tail -n 1)" >&2; exit 1 ;;
esac
mkdir -p /etc/regboot
echo worker >/etc/regboot/swarm-created
"#;

/// The raw HTTP request for [`JOIN`].
fn join_request(body: &serde_json::Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST /swarm/join HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const JOIN_TOKEN: &str = "docker swarm join-token -q worker";

/// Each node's id and whether it carries the registry label.
const NODE_LABELS: &str = r#"set -eu
docker node inspect -f '{{.ID}}|{{index .Spec.Labels "io.regboot.registry"}}' $(docker node ls -q)
"#;

/// Args: `add` or `rm`, then node ids.
const LABEL: &str = r#"set -eu
how=$1; shift
for id in "$@"; do
  if [ "$how" = add ]; then docker node update --label-add io.regboot.registry=true "$id" >/dev/null
  else docker node update --label-rm io.regboot.registry "$id" >/dev/null 2>&1 || true; fi
done
"#;

/// Args: ids of nodes that left (removable once the manager sees them down).
const FORGET: &str = r#"for id in "$@"; do
  i=0
  until docker node rm "$id" >/dev/null 2>&1; do
    i=$((i+1)); [ "$i" -lt 30 ] || { docker node rm "$id"; exit 1; }
    sleep 1
  done
done"#;

/// Args: `--force` for a manager (the last one dissolves the swarm), or nothing.
const LEAVE: &str = r#"docker swarm leave "$@" >/dev/null && rm -f /etc/regboot/swarm-created"#;

/// A registry host's place in a swarm, as its engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    /// `inactive`, `active`, `pending`, `error` or `locked`.
    pub state: String,
    pub id: String,
    pub manager: bool,
    /// regboot made it a member.
    pub created: bool,
}

impl Node {
    fn parse(line: &str) -> Option<Node> {
        let mut f = line.trim().split('|');
        Some(Node {
            state: f.next()?.to_string(),
            id: f.next()?.to_string(),
            manager: f.next()? == "true",
            created: f.next()? == "created",
        })
    }

    pub fn active(&self) -> bool {
        self.state == "active"
    }
}

pub(super) async fn read_node(remote: &RemoteHost) -> Result<Node> {
    let out = remote
        .run("reading the swarm state", READ_NODE, &[], None)
        .await?;
    let text = out.stdout_text();
    Node::parse(&text).with_context(|| format!("unexpected swarm state {:?}", text.trim()))
}

pub(super) async fn read_nodes(members: &[Member<'_>]) -> Result<Vec<Node>> {
    let read = join_all(members.iter().map(|m| read_node(m.remote))).await;
    members
        .iter()
        .zip(read)
        .map(|(m, r)| r.with_context(|| m.host.name.clone()))
        .collect()
}

/// `addr:port`, with brackets around an IPv6 address.
fn with_port(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Why the hosts' swarm state stops the run, or which member is the manager regboot uses.
pub(super) fn manager_of(cx: &FleetCx, nodes: &[Node]) -> Result<Option<usize>> {
    for (m, n) in cx.members.iter().zip(nodes) {
        if !n.active() && n.state != "inactive" {
            bail!(
                "{}: its swarm state is {:?}: fix it there (`docker info`, `docker swarm leave`) \
                 and run again",
                m.host.name,
                n.state
            );
        }
    }
    if !nodes.iter().any(Node::active) {
        return Ok(None);
    }
    if !cx.inv.swarm_existing && !nodes.iter().any(|n| n.created) {
        let host = cx.members[nodes.iter().position(Node::active).unwrap_or(0)]
            .host
            .name
            .clone();
        bail!(
            "{host} is in a swarm regboot did not create: set `swarm.existing: true` in the \
             inventory to run the registry service in it, or take the host out of it \
             (`docker swarm leave`)"
        );
    }
    match nodes.iter().position(|n| n.active() && n.manager) {
        Some(i) => Ok(Some(i)),
        None => bail!(
            "no registry host is a manager of its swarm, and regboot creates the service on a \
             manager: promote one (`docker node promote NODE` on a manager)"
        ),
    }
}

/// Make the registry hosts one swarm with labelled nodes; returns the manager's index.
pub(super) async fn ensure(cx: &FleetCx<'_>, doing: &mut Doing) -> Result<usize> {
    let mut nodes = read_nodes(&cx.members).await?;
    let manager = match manager_of(cx, &nodes)? {
        Some(i) => i,
        None => {
            let m = &cx.members[0];
            let addr = &m.host.private_address;
            doing
                .act(
                    &m.host.name,
                    format!(
                        "initialise a swarm with this host as its manager (advertising {addr})"
                    ),
                    m.remote.run("swarm init", INIT, &[addr], None),
                )
                .await?;
            if !doing.check {
                nodes[0] = read_node(m.remote).await?;
            }
            0
        }
    };
    let boss = &cx.members[manager];
    let mut token = None;
    for (i, m) in cx.members.iter().enumerate() {
        if nodes[i].active() || (doing.check && i == manager) {
            continue;
        }
        if token.is_none() && !doing.check {
            let out = boss
                .remote
                .run("reading the join token", JOIN_TOKEN, &[], None)
                .await?;
            token = Some(out.stdout_text().trim().to_string());
        }
        let join = serde_json::json!({
            "ListenAddr": "0.0.0.0:2377",
            "AdvertiseAddr": m.host.private_address,
            "RemoteAddrs": [with_port(&boss.host.private_address, 2377)],
            "JoinToken": token.clone().unwrap_or_default(),
        });
        let summary = format!("join the swarm of {} as a worker", boss.host.name);
        doing
            .act(
                &m.host.name,
                summary,
                m.remote
                    .run("swarm join", JOIN, &[], Some(&join_request(&join))),
            )
            .await?;
        if !doing.check {
            nodes[i] = read_node(m.remote).await?;
        }
    }
    // Labels: every member's node carries the registry label.
    let labelled: Vec<(String, bool)> = if nodes[manager].active() {
        let out = boss
            .remote
            .run("reading the nodes", NODE_LABELS, &[], None)
            .await?;
        out.stdout_text()
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(id, v)| (id.to_string(), v == "true"))
            .collect()
    } else {
        Vec::new()
    };
    let missing: Vec<(usize, &str)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !labelled.iter().any(|(id, yes)| *yes && *id == n.id) || n.id.is_empty())
        .map(|(i, n)| (i, n.id.as_str()))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing
            .iter()
            .map(|(i, _)| cx.members[*i].host.name.as_str())
            .collect();
        let mut args = vec!["add"];
        args.extend(missing.iter().map(|(_, id)| *id));
        doing
            .act(
                &boss.host.name,
                format!(
                    "label the nodes of {} {NODE_LABEL}=true (the service's placement)",
                    names.join(", ")
                ),
                boss.remote.run("labelling nodes", LABEL, &args, None),
            )
            .await?;
    }
    Ok(manager)
}

/// Reset: the registry label off every node, then the hosts regboot made members leave
/// (workers first; the manager's leave dissolves the swarm). A swarm regboot did not make
/// stays, with its other services.
pub(super) async fn dissolve(
    cx: &FleetCx<'_>,
    nodes: &[Node],
    manager: usize,
    doing: &mut Doing,
) -> Result<()> {
    let boss = &cx.members[manager];
    let out = boss
        .remote
        .run("reading the nodes", NODE_LABELS, &[], None)
        .await?;
    let ids: Vec<String> = out
        .stdout_text()
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter(|(_, v)| *v == "true")
        .map(|(id, _)| id.to_string())
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm"];
        args.extend(ids.iter().map(String::as_str));
        doing
            .act(
                &boss.host.name,
                format!("remove the node label {NODE_LABEL} ({} node(s))", ids.len()),
                boss.remote.run("removing node labels", LABEL, &args, None),
            )
            .await?;
    }
    let created: Vec<usize> = (0..nodes.len())
        .filter(|i| nodes[*i].created && nodes[*i].active())
        .collect();
    for &i in created
        .iter()
        .filter(|i| !nodes[**i].manager)
        .chain(created.iter().filter(|i| nodes[**i].manager))
    {
        let m = &cx.members[i];
        let (summary, args): (&str, &[&str]) = if nodes[i].manager {
            (
                "leave the swarm regboot created (a manager: the swarm goes with its last one)",
                &["--force"],
            )
        } else {
            ("leave the swarm regboot created (a worker)", &[])
        };
        doing
            .act(
                &m.host.name,
                summary.to_string(),
                m.remote.run("swarm leave", LEAVE, args, None),
            )
            .await?;
    }
    // A swarm that stays (not regboot's) forgets the workers regboot joined to it.
    let left: Vec<&str> = created
        .iter()
        .filter(|i| !nodes[**i].manager && !nodes[manager].created)
        .map(|i| nodes[*i].id.as_str())
        .collect();
    if !left.is_empty() {
        doing
            .act(
                &boss.host.name,
                format!(
                    "remove the {} node(s) that left from the swarm's node list",
                    left.len()
                ),
                boss.remote.run("removing nodes", FORGET, &left, None),
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_states_parse() {
        assert_eq!(
            Node::parse("inactive||false|\n"),
            Some(Node {
                state: "inactive".into(),
                id: String::new(),
                manager: false,
                created: false
            })
        );
        let n = Node::parse("active|abc123|true|created\n").unwrap();
        assert!(n.active() && n.manager && n.created && n.id == "abc123");
        assert_eq!(Node::parse("garbage"), None);
    }

    #[test]
    fn remote_addresses_bracket_ipv6() {
        assert_eq!(with_port("10.0.0.1", 2377), "10.0.0.1:2377");
        assert_eq!(with_port("fd00::1", 2377), "[fd00::1]:2377");
    }

    #[test]
    fn scripts_parse() {
        for script in [
            READ_NODE,
            INIT,
            JOIN,
            JOIN_TOKEN,
            FORGET,
            NODE_LABELS,
            LABEL,
            LEAVE,
        ] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }
}
