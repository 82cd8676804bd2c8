//! The smoke test as a playbook step: a push from one agent and a pull on every other
//! reachable host of the limit, each replica asked directly for the pushed manifest (see
//! `crate::smoke`).

use anyhow::Result;
use futures::future::BoxFuture;

use super::{FleetCx, Module, Outcome};
use crate::host::RemoteHost;
use crate::inventory::Role;
use crate::smoke::{self, SmokeTarget};

pub(crate) struct SmokeTest;

impl Module for SmokeTest {
    fn name(&self) -> &'static str {
        "smoke_test"
    }

    fn once<'a>(&'a self, cx: &'a FleetCx<'a>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mut out = Outcome::default();
            if cx.check {
                out.skipped = Some("plan does not run the smoke test".into());
                return Ok(out);
            }
            let targets: Vec<SmokeTarget> = cx
                .members
                .iter()
                // Probed before the run: docker_install may have started the engine since.
                .filter(|m| {
                    m.state.facts.docker.running
                        || (cx.inv.docker_install
                            && crate::engine::playbook::Hosts::Clients.matches(m.host))
                })
                .map(|m| SmokeTarget {
                    name: &m.host.name,
                    remote: m.remote,
                    role_agent: m.host.has_role(Role::Agent),
                    arch: &m.state.facts.arch,
                })
                .collect();
            let replicas: Vec<(&str, &RemoteHost)> = cx
                .members
                .iter()
                .filter(|m| m.host.has_role(Role::Registry))
                .map(|m| (m.host.name.as_str(), m.remote))
                .collect();
            match smoke::run(cx.inv, cx.material, &targets, &replicas).await {
                Ok(results) => out.smoke = results,
                Err(e) => out.skipped = Some(format!("{e:#}")),
            }
            Ok(out)
        })
    }
}
