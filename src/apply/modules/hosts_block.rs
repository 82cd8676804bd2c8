//! The managed block in /etc/hosts mapping the registry hostname and aliases to the VIP or the
//! first registry host. Every line outside the block is kept byte for byte.

use anyhow::{Context, Result};

use super::{Ctx, Want};
use crate::apply::change::Change;
use crate::diff;
use crate::host::Mode;
use crate::merge::hosts_block;
use crate::render::{HostsEntry, Templates};

const HOSTS: &str = "/etc/hosts";

pub fn want(w: &mut Want) {
    if w.inv.registry.hosts_file {
        w.req.content.push(HOSTS.into());
    }
}

pub fn check(ctx: &Ctx, templates: &Templates) -> Result<Vec<Change>> {
    let reg = &ctx.inv.registry;
    if !reg.hosts_file {
        return Ok(Vec::new());
    }
    // Validation guarantees an IP here when hosts_file is on.
    let ip = ctx
        .inv
        .registry_endpoint()
        .and_then(|e| e.parse().ok())
        .context("the registry endpoint is not an IP address")?;
    let mut names = vec![reg.hostname.clone()];
    names.extend(reg.aliases.iter().cloned());
    let block = templates.hosts_block(&[HostsEntry { ip, names }])?;
    let current = ctx.state.text(HOSTS).unwrap_or_default();
    let wanted = hosts_block::apply_block(&current, &block)
        .with_context(|| format!("{HOSTS} has a damaged regboot block"))?;
    if wanted == current {
        return Ok(Vec::new());
    }
    let d = diff::unified(HOSTS, &current, &wanted);
    Ok(vec![Change::put_file(
        HOSTS,
        wanted.into_bytes(),
        Mode::Keep,
        Some(d),
    )])
}
