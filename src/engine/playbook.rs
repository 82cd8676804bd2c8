//! Playbooks: the ordered steps of a command, kept as YAML under playbooks/ and embedded.

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::module::{CaFile, Module};
use crate::facts::Facts;
use crate::inventory::{Host, Inventory, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hosts {
    All,
    /// Hosts that pull through their container engine: registry and agent hosts.
    Clients,
    Registry,
    Agent,
    Lb,
}

impl Hosts {
    pub fn matches(self, host: &Host) -> bool {
        match self {
            Hosts::All => true,
            Hosts::Clients => host.has_role(Role::Registry) || host.has_role(Role::Agent),
            Hosts::Registry => host.has_role(Role::Registry),
            Hosts::Agent => host.has_role(Role::Agent),
            Hosts::Lb => host.has_role(Role::Lb),
        }
    }
}

/// What a step converges its hosts to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// What the inventory wishes.
    #[default]
    Present,
    /// Nothing of what the module placed.
    Absent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    module: String,
    hosts: Hosts,
    serial: Option<usize>,
    #[serde(default)]
    once: bool,
    #[serde(default)]
    wait_for_all: bool,
    #[serde(default)]
    state: State,
}

#[derive(Clone)]
pub struct Step {
    pub name: String,
    pub(crate) module: &'static dyn Module,
    pub hosts: Hosts,
    /// How many hosts make the step's changes at once (a roll: the first failure halts the
    /// run); `None`: all at once.
    pub serial: Option<usize>,
    /// Run the module once for the fleet (its reachable hosts of `hosts`), not per host: a
    /// barrier, it starts when every host is through the steps before it.
    pub once: bool,
    /// A host makes this step's changes only once every host is through the steps before it
    /// (one with nothing to change here goes on): for a step that must come after a roll
    /// before it has finished on all hosts.
    pub wait_for_all: bool,
    pub state: State,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: String,
    steps: Vec<RawStep>,
}

#[derive(Clone)]
pub struct Playbook {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Playbook {
    /// No steps (a module's unit tests run it outside any playbook).
    #[cfg(test)]
    pub(crate) fn empty() -> Playbook {
        Playbook {
            name: String::new(),
            steps: Vec::new(),
        }
    }

    /// Parse the playbook `name` from YAML, its modules looked up in `registry`.
    pub(crate) fn parse(
        name: &str,
        text: &str,
        registry: &[&'static dyn Module],
    ) -> Result<Playbook> {
        let raw: RawPlaybook =
            serde_yaml_ng::from_str(text).with_context(|| format!("playbook {name}"))?;
        let mut steps = Vec::new();
        for s in raw.steps {
            let Some(module) = registry.iter().copied().find(|m| m.name() == s.module) else {
                let known: Vec<&str> = registry.iter().map(|m| m.name()).collect();
                bail!(
                    "playbook {name}, step {:?}: no module {:?} (modules: {})",
                    s.name,
                    s.module,
                    known.join(", ")
                );
            };
            if s.once && (s.wait_for_all || s.serial.is_some()) {
                bail!(
                    "playbook {name}, step {:?}: a `once` step runs once for the fleet, after \
                     every host is through the steps before it: `serial` and `wait_for_all` \
                     are for per-host steps",
                    s.name
                );
            }
            steps.push(Step {
                name: s.name,
                module,
                hosts: s.hosts,
                serial: s.serial,
                once: s.once,
                wait_for_all: s.wait_for_all,
                state: s.state,
            });
        }
        Ok(Playbook {
            name: raw.name,
            steps,
        })
    }

    /// The modules of the per-host steps that converge `host` to present (whose footprints
    /// apply records).
    pub(crate) fn modules_on(&self, host: &Host) -> Vec<&'static dyn Module> {
        (self.steps.iter())
            .filter(|s| s.state == State::Present && !s.once && s.hosts.matches(host))
            .map(|s| s.module)
            .collect()
    }

    /// Every step removes (reset): no material, no state directory needed.
    pub(crate) fn removes_only(&self) -> bool {
        self.steps.iter().all(|s| s.state == State::Absent)
    }

    /// The CA copies this playbook's steps place on `host` (with its facts; `None`: every
    /// path they might use), so `certs check`, `rotate --ca` and the CA guard find them all.
    pub(crate) fn ca_files(
        &self,
        inv: &Inventory,
        host: &Host,
        facts: Option<&Facts>,
    ) -> Vec<CaFile> {
        self.steps
            .iter()
            .filter(|s| s.hosts.matches(host) && s.state == State::Present)
            .flat_map(|s| s.module.ca_files(inv, facts))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::REGISTRY;

    #[test]
    fn unknown_modules_and_states_are_errors() {
        let err = Playbook::parse(
            "t.yml",
            "name: t\nsteps:\n  - { name: x, module: certs_dd, hosts: all }\n",
            REGISTRY,
        )
        .err()
        .unwrap();
        assert!(
            format!("{err:#}").contains("no module \"certs_dd\""),
            "{err:#}"
        );
        let absent = Playbook::parse(
            "t.yml",
            "name: t\nsteps:\n  - { name: x, module: certs_d, hosts: all, state: absent }\n",
            REGISTRY,
        )
        .unwrap();
        assert_eq!(absent.steps[0].state, State::Absent);
        assert!(
            Playbook::parse(
                "t.yml",
                "name: t\nsteps:\n  - { name: x, module: certs_d, hosts: all, state: gone }\n",
                REGISTRY
            )
            .is_err()
        );
    }

    #[test]
    fn wait_for_all_is_for_per_host_steps() {
        let parse = |step: &str| {
            let text =
                format!("name: t\nsteps:\n  - {{ name: x, module: certs_d, hosts: all{step} }}\n");
            Playbook::parse("t.yml", &text, REGISTRY)
        };
        let step = parse(", serial: 1, wait_for_all: true").unwrap().steps[0].clone();
        assert!(step.wait_for_all && step.serial == Some(1));
        assert!(!parse("").unwrap().steps[0].wait_for_all);
        let err = parse(", once: true, wait_for_all: true").err().unwrap();
        assert!(
            format!("{err:#}").contains("are for per-host steps"),
            "{err:#}"
        );
        // The steps that must come after a roll has finished on all hosts say so.
        let waits = |p: Playbook| -> Vec<&str> {
            (p.steps.iter().filter(|s| s.wait_for_all))
                .map(|s| s.module.name())
                .collect()
        };
        assert_eq!(
            waits(crate::playbooks::apply().unwrap()),
            [
                "rancher_registries_agents",
                "registry_container",
                "nginx",
                "keepalived"
            ]
        );
        assert_eq!(
            waits(crate::playbooks::rotate().unwrap()),
            ["registry_container", "nginx"]
        );
    }
}
