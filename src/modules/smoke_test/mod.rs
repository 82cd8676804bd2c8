//! The smoke test as a playbook step: a push from one agent (docker, else podman) and a pull
//! through every runtime (docker, containerd, podman) of every reachable host of the limit, each replica asked directly for the pushed manifest (see
//! `run.rs`). It is skipped only in plan, with `smoke_test: false` in the inventory, or
//! when no host of the run can push (a running docker engine, or podman); the report then says the run did not
//! verify.

mod api_pull;
mod api_push;
pub mod image;
mod login;
mod outcome;
mod run;

use anyhow::Result;
use futures::future::BoxFuture;

use super::{FleetCx, Module, Outcome};
use crate::engine::module::{Member, PrepareCx, Prepared};
use crate::host::RemoteHost;
use crate::inventory::{Inventory, Role};
pub(crate) use login::login;
use run::{Client, SmokeTarget};

pub(crate) struct SmokeTest;

const ENGINE_STOPPED: &str = "the docker engine is not running, so the smoke test cannot pull \
    here: start it (`systemctl start docker`) and run again";

/// Why the smoke test does not run, whatever the hosts, and whether the inventory turned it
/// off.
fn skip_reason(inv: &Inventory, check: bool) -> Option<(String, bool)> {
    if check {
        Some(("plan does not run the smoke test".into(), false))
    } else if !inv.smoke_test {
        Some(("smoke_test: false in the inventory".into(), true))
    } else {
        None
    }
}

impl Module for SmokeTest {
    fn name(&self) -> &'static str {
        "smoke_test"
    }

    fn prepare(&self, cx: &PrepareCx) -> Result<Option<Prepared>> {
        Ok(Some(std::sync::Arc::new(login(
            cx.inv, cx.state, cx.check,
        )?)))
    }

    fn once<'a>(&'a self, cx: &'a FleetCx<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            if let Some(skip) = skip_reason(cx.inv, cx.check) {
                return Ok(Outcome {
                    not_verified: Some(skip),
                    ..Outcome::default()
                });
            }
            // A stopped engine fails its host: the smoke test cannot vouch for it. A host
            // without docker (a load balancer) has nothing to pull with and is left out.
            let failed = cx
                .members
                .iter()
                .filter(|m| {
                    let d = &m.state.facts.docker;
                    d.installed && !d.running && !installs_engine(cx, m.host)
                })
                .map(|m| (m.host.name.clone(), ENGINE_STOPPED.to_string()))
                .collect();
            // (is an agent, target): an agent pushes, like the clients the registry is for.
            let mut targets: Vec<(bool, SmokeTarget)> = cx
                .members
                .iter()
                .filter_map(|m| {
                    let clients = clients(cx, m);
                    (!clients.is_empty()).then(|| {
                        let target = SmokeTarget {
                            name: &m.host.name,
                            remote: m.remote,
                            arch: &m.state.facts.arch,
                            clients,
                        };
                        (m.host.has_role(Role::Agent), target)
                    })
                })
                .collect();
            // An agent with docker or podman pushes; any host with one when no agent has.
            let pusher_at = targets
                .iter()
                .position(|(agent, t)| *agent && t.pusher().is_some())
                .or_else(|| targets.iter().position(|(_, t)| t.pusher().is_some()));
            let Some(pusher_at) = pusher_at else {
                return Ok(Outcome {
                    not_verified: Some((
                        "no host of this run can push: none has a running docker engine or podman"
                            .into(),
                        false,
                    )),
                    failed,
                    ..Outcome::default()
                });
            };
            let (_, pusher) = targets.remove(pusher_at);
            let pullers: Vec<SmokeTarget> = targets.into_iter().map(|(_, t)| t).collect();
            let replicas: Vec<(&str, &RemoteHost)> = cx
                .members
                .iter()
                .filter(|m| m.host.has_role(Role::Registry))
                .map(|m| (m.host.name.as_str(), m.remote))
                .collect();
            let found = run::run(
                cx.inv,
                cx.material,
                &pusher,
                &pullers,
                &replicas,
                cx.on_verified,
            )
            .await;
            Ok(Outcome {
                verified: found.results,
                phases: found.phases,
                failed,
                ..Outcome::default()
            })
        })
    }
}

/// The clients `m` pulls with: docker (running, or started by docker.install before this
/// step; probed before the run), containerd (its CRI image service when its config leaves the
/// CRI plugin on, else ctr), podman.
fn clients(cx: &FleetCx, m: &Member) -> Vec<Client> {
    let f = &m.state.facts;
    [
        (
            Client::Docker,
            f.docker.running || installs_engine(cx, m.host),
        ),
        (
            if f.containerd.config.as_ref().is_none_or(|c| c.cri) {
                Client::Cri
            } else {
                Client::Containerd
            },
            f.containerd.runtime.installed,
        ),
        (Client::Podman, f.podman.installed),
    ]
    .into_iter()
    .filter(|(_, has)| *has)
    .map(|(c, _)| c)
    .collect()
}

/// docker.install starts (or installs) the engine on this host before the smoke test.
fn installs_engine(cx: &FleetCx, host: &crate::inventory::Host) -> bool {
    cx.inv.docker_install && crate::engine::playbook::Hosts::Clients.matches(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing;

    #[test]
    fn skipped_only_by_plan_or_by_the_inventory() {
        let inv = testing::inventory("");
        assert_eq!(skip_reason(&inv, false), None);
        assert!(skip_reason(&inv, true).unwrap().0.contains("plan"));
        let mut off = inv.clone();
        off.smoke_test = false;
        assert_eq!(
            skip_reason(&off, false),
            Some(("smoke_test: false in the inventory".into(), true))
        );
    }
}
