//! `docker.install: true`: the docker engine installed from the OS's own packages where it is
//! missing (docker.io on Debian and Ubuntu, moby-engine on Fedora, docker on Amazon Linux,
//! SUSE, Arch and Alpine; RHEL and its rebuilds ship no docker package: install docker-ce from Docker's
//! repository there), then enabled and started; a stopped engine is started. Without the key,
//! a host without a running engine fails before any step, with the sentence that enables it.
//! Installed versions are never upgraded; `reset` leaves the engine (removing it would remove
//! every container and image on the host, not only regboot's).
//!
//! A Kubernetes node (kubeadm's kubelet, k3s or RKE2, in facts) is refused unless its host
//! entry says `docker_on_kubernetes: true`: Debian's docker.io brings containerd with its own
//! config.toml and restarts it, under the kubelet's pods; k3s and RKE2 need no docker at all.

use anyhow::Result;

use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::packages;
use crate::engine::playbook::Hosts;
use crate::facts::{Facts, InitSystem, OsFamily};
use crate::inventory::{Host, Inventory};

const START_SYSTEMD: &str = "systemctl enable --quiet --now docker";
const START_OPENRC: &str = "rc-update add docker default >/dev/null; rc-service docker start";
const START_OTHER: &str = "service docker start";

/// The engine's package on `family`; `None`: the OS ships none.
fn package(family: Option<OsFamily>) -> Option<&'static str> {
    match family? {
        OsFamily::Debian => Some("docker.io"),
        OsFamily::Rhel => None,
        OsFamily::Suse | OsFamily::Arch | OsFamily::Alpine => Some("docker"),
    }
}

pub(crate) struct DockerInstall;

/// docker.install installs docker on this host in this run (the footprints of what docker's
/// package brings are recorded before it does): a client host without docker, and no
/// Kubernetes node unless its entry says `docker_on_kubernetes: true`.
pub(crate) fn installs(inv: &Inventory, host: &Host, facts: &Facts) -> bool {
    inv.docker_install
        && Hosts::Clients.matches(host)
        && !facts.docker.installed
        && (facts.kubernetes.is_none() || host.docker_on_kubernetes)
}

impl Module for DockerInstall {
    fn name(&self) -> &'static str {
        "docker_install"
    }

    fn provides_engine(&self) -> bool {
        true
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let facts = &cx.state.facts;
        if !cx.inv.docker_install || facts.docker.running {
            return Ok(Vec::new());
        }
        let mut changes = Vec::new();
        if !facts.docker.installed {
            if let Some(kube) = &facts.kubernetes
                && !cx.host.docker_on_kubernetes
            {
                anyhow::bail!(
                    "docker.install: {} is a Kubernetes node ({} runs its kubelet), and docker's \
                     package would bring its own containerd configuration under its pods: regboot \
                     does not install docker there. Its runtime pulls through the files regboot \
                     places without docker; set `docker_on_kubernetes: true` in this host's entry \
                     to install docker anyway",
                    cx.host.name,
                    kube.service
                );
            }
            // In the RHEL family, Fedora has moby-engine and Amazon Linux docker; RHEL and its
            // rebuilds have none.
            let pkg = match (facts.os.family, facts.os.id.as_str()) {
                (Some(OsFamily::Rhel), "fedora") => Some("moby-engine"),
                (Some(OsFamily::Rhel), "amzn") => Some("docker"),
                (family, _) => package(family),
            };
            let Some(pkg) = pkg else {
                anyhow::bail!(
                    "docker.install: {} ships no docker engine package; install docker-ce from \
                     Docker's repository (https://docs.docker.com/engine/install/) and run again",
                    facts.os.id
                );
            };
            // With what it recommends (apt), as Debian's docker.io expects.
            changes.push(packages::install(
                cx.inv,
                cx.host,
                &cx.state.facts,
                format!("install {pkg} (docker.install)"),
                &[pkg],
                true,
            )?);
        }
        let start = match facts.init {
            InitSystem::Systemd => START_SYSTEMD,
            InitSystem::Openrc => START_OPENRC,
            InitSystem::Other => START_OTHER,
        };
        changes.push(Change::script("enable and start docker", start, &[]));
        changes.push(Change::wait_docker());
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Runtime;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn installs_starts_or_leaves_alone() {
        let mut inv = testing::inventory("");
        let missing = || {
            let mut s = StateBuilder::new();
            s.0.facts.docker = Runtime::default();
            s.0.facts.init = InitSystem::Systemd;
            s
        };
        let run = |inv: &crate::inventory::Inventory, state: &StateBuilder| {
            summaries(&testing::run(&DockerInstall, inv, "h2", state, true).unwrap())
        };
        // Not asked for: nothing (the runner's readiness check names the key).
        assert!(run(&inv, &missing()).is_empty());
        inv.docker_install = true;
        assert_eq!(
            run(&inv, &missing()),
            [
                "install docker.io (docker.install)",
                "enable and start docker",
                "wait until dockerd answers docker info"
            ]
        );
        let mut stopped = missing();
        stopped.0.facts.docker.installed = true;
        assert_eq!(
            run(&inv, &stopped),
            [
                "enable and start docker",
                "wait until dockerd answers docker info"
            ]
        );
        assert!(run(&inv, &StateBuilder::new()).is_empty());
        let mut rhel = missing();
        rhel.0.facts.os.family = Some(OsFamily::Rhel);
        rhel.0.facts.os.id = "rhel".into();
        let err = testing::run(&DockerInstall, &inv, "h2", &rhel, true).unwrap_err();
        assert!(format!("{err}").contains("docker-ce"), "{err}");
    }

    #[test]
    fn refuses_a_kubernetes_node_unless_its_entry_asks() {
        let mut inv = testing::inventory("");
        inv.docker_install = true;
        for unit in ["kubelet", "k3s", "rke2-agent"] {
            let mut node = StateBuilder::new();
            node.0.facts.docker = Runtime::default();
            node.0.facts.containerd.runtime.installed = true;
            node.0.facts.kubernetes = crate::facts::Kubernetes::from_unit(unit, "active", "");
            let err = testing::run(&DockerInstall, &inv, "h2", &node, true).unwrap_err();
            let msg = format!("{err}");
            assert!(
                msg.contains("h2 is a Kubernetes node")
                    && msg.contains(&format!("({unit} runs"))
                    && msg.contains("docker_on_kubernetes: true"),
                "{msg}"
            );
            let h2 = inv.hosts.iter_mut().find(|h| h.name == "h2").unwrap();
            h2.docker_on_kubernetes = true;
            let s = summaries(&testing::run(&DockerInstall, &inv, "h2", &node, true).unwrap());
            assert_eq!(s[0], "install docker.io (docker.install)");
            inv.hosts
                .iter_mut()
                .for_each(|h| h.docker_on_kubernetes = false);
        }
    }
}
