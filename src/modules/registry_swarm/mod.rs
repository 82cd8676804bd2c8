//! `registry.deploy: swarm`: the registry as a Swarm service over the registry hosts (seed
//! 002), once for the fleet because a swarm spans hosts: the swarm made or joined
//! (`cluster`), the secrets and the service (`service`), each host's nginx front pointed at it
//! (`front`). Its port is published in host mode on a loopback slot (the routing mesh needs
//! IPVS, which some kernels lack), behind the front that holds the registry port, as the
//! container deploy is; so every client step and the smoke test work unchanged.
//!
//! A change (certificate, CA stage, config, users, image, replicas) is a roll, blue/green like
//! the container's: secrets cannot change in place and two tasks cannot publish one host port,
//! so a new service with the new secrets starts on the other slot, every host's front switches
//! to it once its task answers (graceful reloads), and the old service goes once nginx's old
//! workers are done with it. Plan shows what differs (image, secrets, replicas,
//! constraints) and apply makes the same changes.

mod cluster;
mod front;
mod service;

use std::future::Future;

use anyhow::{Context, Result};
use futures::future::BoxFuture;

use super::registry_files;
use super::registry_front::{self, BACKEND};
use super::{FleetCx, Module, Outcome};
use crate::engine::change::Change;
use crate::engine::module::Member;
use crate::engine::probe::{FileState, HostState, ProbeRequest};
use crate::inventory::{Deploy, Host, Inventory};
use crate::modules::sha256_hex;

/// Why a task did not answer: the last log lines of this host's newest registry task.
const DIAGNOSE: &str = r#"c=$(docker ps -aq --filter label=io.regboot.service=registry | head -n 1)
if [ -n "$c" ]; then docker logs --tail 15 "$c" 2>&1; else echo "no task of the registry service on this host (docker service ps on a manager says why)"; fi"#;

/// The services regboot made, as `docker service inspect` shows them (`[]`: none, or no swarm).
const READ_SERVICES: &str = r#"ids=$(docker service ls -q --filter label=io.regboot.service 2>/dev/null) || { echo '[]'; exit 0; }
if [ -z "$ids" ]; then echo '[]'; else docker service inspect $ids; fi"#;

/// The secrets and configs regboot made, one name a line.
const READ_ITEMS: &str = r#"docker secret ls --filter label=io.regboot.service --format '{{.Name}}' 2>/dev/null
docker config ls --filter label=io.regboot.service --format '{{.Name}}' 2>/dev/null
true"#;

/// Args: a file; prints it (nothing when missing).
const READ_HTPASSWD: &str = r#"if [ -f "$1" ]; then cat "$1"; fi"#;

/// Args: `secret` or `config`, its name; stdin: its content.
const CREATE_ITEM: &str =
    r#"docker "$1" create --label io.regboot.service=registry "$2" - >/dev/null"#;

/// Args: the data dir to create on the host (or nothing).
const DATA_DIR: &str = r#"if [ -n "${1:-}" ]; then mkdir -p "$1"; fi"#;

/// Args: `docker service create`'s.
const CREATE: &str = r#"docker service create "$@" >/dev/null"#;

/// Args: services (maybe none). Removes them, then every secret and config of regboot's that
/// no service uses any more (docker refuses to remove one in use).
const REMOVE: &str = r#"set -u
for s in "$@"; do docker service rm "$s" >/dev/null; done
for kind in secret config; do
  for s in $(docker "$kind" ls -q --filter label=io.regboot.service); do
    docker "$kind" rm "$s" >/dev/null 2>&1 || true
  done
done"#;

/// How long a roll waits for nginx's old workers before it leaves the old service to the next run.
const DRAIN_SECS: &str = "60";

/// What a run did (apply) or would do (plan), per host.
pub(super) struct Doing {
    pub check: bool,
    pub changed: Vec<(String, Vec<String>)>,
    pub notes: Vec<String>,
}

impl Doing {
    /// Make the change `f` (apply; plan only records it) on `host`.
    pub async fn act<T>(
        &mut self,
        host: &str,
        summary: String,
        f: impl Future<Output = Result<T>>,
    ) -> Result<()> {
        if !self.check {
            f.await.with_context(|| format!("{host}: {summary}"))?;
        }
        match self.changed.iter_mut().find(|(h, _)| h == host) {
            Some((_, list)) => list.push(summary),
            None => self.changed.push((host.to_string(), vec![summary])),
        }
        Ok(())
    }

    fn outcome(self, cx: &FleetCx, result: Result<()>) -> Outcome {
        let failed = match result {
            Ok(()) => Vec::new(),
            Err(e) => {
                let msg = format!("{e:#}");
                cx.members
                    .iter()
                    .map(|m| (m.host.name.clone(), msg.clone()))
                    .collect()
            }
        };
        Outcome {
            notes: self.notes,
            changed: self.changed,
            failed,
            ..Outcome::default()
        }
    }
}

pub(crate) struct RegistrySwarm;

impl Module for RegistrySwarm {
    fn name(&self) -> &'static str {
        "registry_swarm"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        if inv.registry.deploy == Deploy::Swarm {
            req.content.push(BACKEND.into());
            req.services.push(registry_front::SERVICE.into());
            registry_files::want_desired(req);
        }
    }

    fn not_ready(
        &self,
        inv: &Inventory,
        host: &Host,
        state: &HostState,
        engine_coming: bool,
    ) -> Option<String> {
        (inv.registry.deploy == Deploy::Swarm)
            .then(|| super::docker_not_ready(inv, host, state, engine_coming))
            .flatten()
    }

    fn plans_over_ssh(&self) -> bool {
        true
    }

    fn once<'a>(&'a self, cx: &'a FleetCx<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move { in_swarm(cx, Work::Converge).await })
    }
}

/// What a swarm step does: apply and rotate converge, reset takes down.
enum Work {
    Converge,
    TakeDown,
}

/// Runs `work` when the registry is a Swarm service on some registry host, gathering what it
/// changed and said; otherwise the step is ok and touches nothing.
async fn in_swarm(cx: &FleetCx<'_>, work: Work) -> Result<Outcome> {
    let mut doing = Doing {
        check: cx.check,
        changed: Vec::new(),
        notes: Vec::new(),
    };
    if cx.inv.registry.deploy != Deploy::Swarm || cx.members.is_empty() {
        return Ok(doing.outcome(cx, Ok(())));
    }
    let result = match work {
        Work::Converge => converge(cx, &mut doing).await,
        Work::TakeDown => take_down(cx, &mut doing).await,
    };
    Ok(doing.outcome(cx, result))
}

async fn converge(cx: &FleetCx<'_>, doing: &mut Doing) -> Result<()> {
    let manager = cluster::ensure(cx, doing).await?;
    let boss = &cx.members[manager];
    let wanted = service::wanted(cx.inv, cx.material, &htpasswd_now(cx, boss).await?)?;
    let read = boss
        .remote
        .run("reading the services", READ_SERVICES, &[], None)
        .await?;
    let services = service::parse(&read.stdout_text())?;
    let front_port = registry_front::current_port(boss.state.text(BACKEND).as_deref());
    let current = services
        .iter()
        .find(|s| s.port == front_port)
        .or(services.first());
    let drift = current.map(|c| service::drift(c, &wanted));
    let rolled = !matches!(&drift, Some(d) if d.is_empty());
    let port = match current {
        Some(c) if !rolled => c.port,
        _ => {
            let next = registry_front::next_port(current.map_or(front_port, |c| c.port));
            let why = match (current, &drift) {
                (Some(_), Some(d)) => format!("{} changed", d.join(", ")),
                _ => "no registry service yet".into(),
            };
            start(cx, doing, boss, &wanted, &services, next, &why).await?;
            next
        }
    };
    // A front that fails to switch fails the run; those that switched stay on the new
    // service, and the next run switches the rest.
    let old = point_fronts(cx, doing, port, rolled).await?;
    for gone in services.iter().filter(|s| s.port != port) {
        if !drained(cx, &old).await {
            doing.notes.push(format!(
                "registry service: {} stays until nginx's old workers finish the transfers they \
                 hold (the next apply removes it)",
                gone.name
            ));
            continue;
        }
        doing
            .act(
                &boss.host.name,
                format!(
                    "remove service {} (no front passes to it) and the secrets no service uses",
                    gone.name
                ),
                boss.remote
                    .run("removing a service", REMOVE, &[&gone.name], None),
            )
            .await?;
    }
    Ok(())
}

/// `boss`'s state with htpasswd as it is now: apply's `registry_files` step wrote it after the
/// probe, and the secret must hold the same hashes (else the next run would roll again).
async fn htpasswd_now(cx: &FleetCx<'_>, boss: &Member<'_>) -> Result<HostState> {
    let mut state = boss.state.clone();
    if cx.check {
        return Ok(state);
    }
    let out = boss
        .remote
        .run(
            "reading htpasswd",
            READ_HTPASSWD,
            &[registry_files::HTPASSWD],
            None,
        )
        .await?;
    let file = out.success().then(|| FileState {
        mode: 0o600,
        sha256: sha256_hex(&out.stdout),
        content: Some(out.stdout.clone()),
    });
    state.files.insert(
        registry_files::HTPASSWD.into(),
        file.filter(|f| !f.content.as_deref().unwrap_or_default().is_empty()),
    );
    Ok(state)
}

/// Starts the service on slot `next` with the wanted secrets (made first when missing); a
/// task that never answers takes the new service away again, and the old one keeps serving.
async fn start(
    cx: &FleetCx<'_>,
    doing: &mut Doing,
    boss: &Member<'_>,
    wanted: &service::Wanted,
    services: &[service::Current],
    next: u16,
    why: &str,
) -> Result<()> {
    let name = service::name(next);
    if let Some(stale) = services.iter().find(|s| s.port == next) {
        doing
            .act(
                &boss.host.name,
                format!(
                    "remove service {} (on the next slot, not passed to)",
                    stale.name
                ),
                boss.remote
                    .run("removing a service", REMOVE, &[&stale.name], None),
            )
            .await?;
    }
    let existing = boss
        .remote
        .run("reading secrets and configs", READ_ITEMS, &[], None)
        .await?
        .stdout_text();
    for item in &wanted.items {
        if existing.lines().any(|l| l == item.name) {
            continue;
        }
        doing
            .act(
                &boss.host.name,
                format!("create {} {} ({})", item.kind, item.name, item.what),
                boss.remote.run(
                    "creating a secret",
                    CREATE_ITEM,
                    &[item.kind, &item.name],
                    Some(&item.data),
                ),
            )
            .await?;
    }
    let data = (!wanted.mounts.is_empty()).then_some(cx.inv.registry.data_dir.as_str());
    let args = wanted.create_args(next);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    doing
        .act(
            &boss.host.name,
            format!(
                "create service {name} ({why}): {}, {} task(s) on the labelled nodes, each \
                 published in host mode on port {next} for its host's nginx",
                wanted.image, wanted.replicas
            ),
            async {
                for m in &cx.members {
                    m.remote
                        .run(
                            "creating the data dir",
                            DATA_DIR,
                            &[data.unwrap_or("")],
                            None,
                        )
                        .await?;
                }
                boss.remote
                    .run("creating the service", CREATE, &args, None)
                    .await
            },
        )
        .await?;
    let ca = cx.material.tls.as_ref().map(|t| t.ca_pem.clone());
    for m in &cx.members {
        let wait = Change::wait_healthy("", &cx.inv.registry.hostname, next, ca.clone(), DIAGNOSE);
        let waited = doing
            .act(
                &m.host.name,
                format!("wait until this host's task of {name} answers on port {next}"),
                wait.apply(m.remote),
            )
            .await;
        if let Err(e) = waited {
            // The old service keeps serving; nothing of the new one is left.
            let _ = boss
                .remote
                .run("removing a service", REMOVE, &[&name], None)
                .await;
            return Err(e.context(format!(
                "{name} was removed again; the old service keeps serving"
            )));
        }
    }
    Ok(())
}

/// Points each host's front at slot `port` where it is not (all of them after a roll), each
/// once its own task answers; returns the pids of the old nginx workers per host.
async fn point_fronts(
    cx: &FleetCx<'_>,
    doing: &mut Doing,
    port: u16,
    rolled: bool,
) -> Result<Vec<(usize, Vec<String>)>> {
    let ca = cx.material.tls.as_ref().map(|t| t.ca_pem.clone());
    let reg = &cx.inv.registry;
    let mut old = Vec::new();
    for (i, m) in cx.members.iter().enumerate() {
        let text = front::backend(
            port,
            &front::backups(cx.inv, m.host),
            cx.material.tls.is_some(),
        );
        let current = m.state.text(BACKEND);
        let active = m.state.service(registry_front::SERVICE) == Some("active");
        if !rolled && active && current.as_deref() == Some(text.as_str()) {
            continue;
        }
        let mut pids = Vec::new();
        let summary = format!(
            "point nginx at the task on port {port} (graceful reload; the other registry hosts' \
             tasks as backups) and wait until it answers on port {}",
            reg.port
        );
        doing
            .act(&m.host.name, summary, async {
                Change::wait_healthy("", &reg.hostname, port, ca.clone(), DIAGNOSE)
                    .apply(m.remote)
                    .await?;
                let out = m
                    .remote
                    .run("switching nginx", front::SWITCH, &[], Some(text.as_bytes()))
                    .await?;
                pids = out
                    .stdout_text()
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                Change::wait_healthy("", &reg.hostname, reg.port, ca.clone(), DIAGNOSE)
                    .apply(m.remote)
                    .await
            })
            .await?;
        old.push((i, pids));
    }
    Ok(old)
}

/// Whether nginx's old workers on every host that switched are gone (bounded wait).
async fn drained(cx: &FleetCx<'_>, old: &[(usize, Vec<String>)]) -> bool {
    if cx.check {
        return true;
    }
    for (i, pids) in old.iter().filter(|(_, p)| !p.is_empty()) {
        let mut args = vec![DRAIN_SECS];
        args.extend(pids.iter().map(String::as_str));
        let done = cx.members[*i]
            .remote
            .script(front::DRAINED, &args, None)
            .await
            .is_ok_and(|o| o.success());
        if !done {
            return false;
        }
    }
    true
}

/// Reset: the registry's services, secrets, configs and node labels go, and the swarm too
/// when regboot made it; one regboot did not make stays.
pub(crate) struct SwarmReset;

impl Module for SwarmReset {
    fn name(&self) -> &'static str {
        "registry_swarm_reset"
    }

    fn plans_over_ssh(&self) -> bool {
        true
    }

    fn once<'a>(&'a self, cx: &'a FleetCx<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move { in_swarm(cx, Work::TakeDown).await })
    }
}

async fn take_down(cx: &FleetCx<'_>, doing: &mut Doing) -> Result<()> {
    let nodes = cluster::read_nodes(&cx.members).await?;
    let Some(manager) = nodes.iter().position(|n| n.active() && n.manager) else {
        return Ok(());
    };
    let boss = &cx.members[manager];
    let read = boss
        .remote
        .run("reading the services", READ_SERVICES, &[], None)
        .await?;
    for s in service::parse(&read.stdout_text())? {
        doing
            .act(
                &boss.host.name,
                format!("remove service {} and its secrets and configs", s.name),
                boss.remote
                    .run("removing a service", REMOVE, &[&s.name], None),
            )
            .await?;
    }
    let left = boss
        .remote
        .run("reading secrets and configs", READ_ITEMS, &[], None)
        .await?
        .stdout_text();
    let left = left.lines().filter(|l| !l.is_empty()).count();
    if left > 0 && doing.changed.is_empty() {
        doing
            .act(
                &boss.host.name,
                format!("remove {left} secret(s) and config(s) of regboot's"),
                boss.remote.run("removing secrets", REMOVE, &[], None),
            )
            .await?;
    }
    cluster::dissolve(cx, &nodes, manager, doing).await
}
