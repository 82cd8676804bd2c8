//! nginx, keepalived and curl (keepalived's health check runs it) on lb hosts, installed with
//! the OS's package manager when missing. Installed packages are never upgraded.

use anyhow::Result;

use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint};
use crate::engine::packages::{self, Package};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::inventory::{Host, Inventory};

/// The packages, each with the command probed on PATH: the same names on every family.
pub(crate) const PACKAGES: [Package; 3] = [
    Package {
        command: "nginx",
        name: "nginx",
    },
    Package {
        command: "keepalived",
        name: "keepalived",
    },
    Package {
        command: "curl",
        name: "curl",
    },
];

pub(crate) struct LbPackages;

impl Module for LbPackages {
    fn name(&self) -> &'static str {
        "lb_packages"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.commands
            .extend(PACKAGES.iter().map(|p| p.command.to_string()));
    }

    fn footprint(&self, _inv: &Inventory, _host: &Host, _state: Option<&HostState>) -> Footprint {
        Footprint {
            packages: PACKAGES.to_vec(),
            ..Footprint::default()
        }
    }

    /// The packages regboot installed (its record says which) are purged.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        Ok(footprint::recorded(cx, self)?
            .purge(cx.state, &PACKAGES)
            .into_iter()
            .collect())
    }

    /// Debian's nginx starts with its default site; the nginx step replaces its config.
    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let missing: Vec<&str> = PACKAGES
            .iter()
            .filter(|p| cx.state.command(p.command) != Some(true))
            .map(|p| p.name)
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![packages::install(
            cx.inv,
            cx.host,
            &cx.state.facts,
            format!("install {}", missing.join(" ")),
            &missing,
            false,
        )?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn installs_only_what_is_missing() {
        let inv = testing::inventory("");
        // (commands found on PATH, expected changes)
        let cases: [(&[&str], &[&str]); 3] = [
            (&[], &["install nginx keepalived curl"]),
            (&["nginx", "curl"], &["install keepalived"]),
            (&["nginx", "keepalived", "curl"], &[]),
        ];
        for (found, want) in cases {
            let mut state = StateBuilder::new().command("keepalived", false);
            for cmd in found {
                state = state.command(cmd, true);
            }
            let changes = testing::run(&LbPackages, &inv, "h1", &state, true).unwrap();
            assert_eq!(summaries(&changes), *want);
        }
    }
}
