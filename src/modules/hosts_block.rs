//! The managed block in /etc/hosts mapping the registry hostname and aliases to the VIP or the
//! first registry host. Every line outside the block is kept byte for byte.

use anyhow::{Context, Result};

use super::{Ctx, Module};
use crate::diff;
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::host::Mode;
use crate::inventory::{Host, Inventory};
use crate::merge::hosts_block;
use crate::render::HostsEntry;

const HOSTS: &str = "/etc/hosts";

pub(crate) struct HostsBlock;

impl Module for HostsBlock {
    fn name(&self) -> &'static str {
        "hosts_block"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content.push(HOSTS.into());
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let reg = &cx.inv.registry;
        if !reg.hosts_file {
            return self.absent(cx);
        }
        // Validation guarantees an IP here when hosts_file is on.
        let ip = cx
            .inv
            .registry_endpoint()
            .and_then(|e| e.parse().ok())
            .context("the registry endpoint is not an IP address")?;
        let mut names = vec![reg.hostname.clone()];
        names.extend(reg.aliases.iter().cloned());
        let block = cx.templates.hosts_block(&[HostsEntry { ip, names }])?;
        let current = cx.state.text(HOSTS).unwrap_or_default();
        let wanted = hosts_block::apply_block(&current, &block)
            .with_context(|| format!("{HOSTS} has a damaged regboot block"))?;
        Ok(write(&current, wanted))
    }

    /// The block goes; every other line stays byte for byte.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let Some(current) = cx.state.text(HOSTS) else {
            return Ok(Vec::new());
        };
        let wanted = hosts_block::remove_block(&current)
            .with_context(|| format!("{HOSTS} has a damaged regboot block"))?;
        Ok(write(&current, wanted))
    }
}

fn write(current: &str, wanted: String) -> Vec<Change> {
    if wanted == current {
        return Vec::new();
    }
    let d = diff::unified(HOSTS, current, &wanted);
    vec![Change::put_file(
        HOSTS,
        wanted.into_bytes(),
        Mode::Keep,
        Some(d),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder};

    const INV: &str = "  hosts_file: true\n";

    #[test]
    fn present_and_absent() {
        let inv = testing::inventory(INV);
        let run = |state: &StateBuilder, present| {
            testing::run(&HostsBlock, &inv, "h1", state, present).unwrap()
        };
        let plain = "127.0.0.1 localhost\n10.0.0.9 other # kept\n";
        let with_block = |ip: &str| {
            format!(
                "{plain}# BEGIN regboot managed block\n{ip} registry.test\n# END regboot managed block\n"
            )
        };
        let converged = run(&StateBuilder::new().file(HOSTS, plain), true);
        let written = testing::written(&converged, HOSTS).expect("the block is added");
        assert!(written.starts_with(plain), "{written}");
        assert!(written.contains("registry.test"), "{written}");
        // (probed /etc/hosts, state, what is written, or None for no change)
        let cases: [(&str, bool, Option<&str>); 4] = [
            (&written, true, None),
            (&written, false, Some(plain)),
            (plain, false, None),
            (&with_block("10.0.0.1"), true, Some(&written)),
        ];
        for (before, present, after) in cases {
            let state = StateBuilder::new().file(HOSTS, before);
            let changes = run(&state, present);
            assert_eq!(
                testing::written(&changes, HOSTS).as_deref(),
                after,
                "before:\n{before}\npresent: {present}"
            );
        }
        // A missing /etc/hosts: nothing to remove.
        assert!(run(&StateBuilder::new(), false).is_empty());
    }
}
