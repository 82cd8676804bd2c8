//! Playbooks: the ordered steps of a command, kept as YAML under playbooks/ and embedded.

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::inventory::{Host, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Module {
    CertsD,
    TrustStore,
    HostsBlock,
    DaemonJson,
    RegistryFiles,
    RegistryImage,
    RegistryContainer,
    LbPackages,
    Nginx,
    Keepalived,
    SmokeTest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hosts {
    All,
    Registry,
    Agent,
    Lb,
}

impl Hosts {
    pub fn matches(self, host: &Host) -> bool {
        match self {
            Hosts::All => true,
            Hosts::Registry => host.has_role(Role::Registry),
            Hosts::Agent => host.has_role(Role::Agent),
            Hosts::Lb => host.has_role(Role::Lb),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub module: Module,
    pub hosts: Hosts,
    /// Hosts changed at once; `None`: all.
    pub serial: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Playbook {
    fn parse(name: &str, text: &str) -> Result<Playbook> {
        serde_yaml_ng::from_str(text).with_context(|| format!("embedded playbook {name}"))
    }

    pub fn apply() -> Result<Playbook> {
        Self::parse("apply.yml", include_str!("../../playbooks/apply.yml"))
    }

    pub fn rotate() -> Result<Playbook> {
        Self::parse("rotate.yml", include_str!("../../playbooks/rotate.yml"))
    }

    pub fn verify() -> Result<Playbook> {
        Self::parse("verify.yml", include_str!("../../playbooks/verify.yml"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_playbooks_parse() {
        let apply = Playbook::apply().unwrap();
        assert_eq!(apply.steps.last().unwrap().module, Module::SmokeTest);
        let container = apply
            .steps
            .iter()
            .find(|s| s.module == Module::RegistryContainer)
            .unwrap();
        assert_eq!(container.serial, Some(1));
        assert_eq!(Playbook::verify().unwrap().steps.len(), 1);
        let rotate = Playbook::rotate().unwrap();
        assert!(rotate.steps.iter().any(|s| s.serial == Some(1)));
    }
}
