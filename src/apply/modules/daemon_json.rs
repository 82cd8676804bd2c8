//! /etc/docker/daemon.json: the inventory's keys merged in (plus insecure-registries in
//! tls.mode insecure), every other key kept. dockerd is reloaded when only reloadable keys
//! changed, restarted (announced) only when a key needs it, and left alone otherwise.

use anyhow::Result;
use serde_json::{Map, Value};

use super::{Ctx, Want};
use crate::apply::change::Change;
use crate::diff;
use crate::host::Mode;
use crate::inventory::{Inventory, TlsMode};
use crate::merge::daemon_json::{self, Action};

pub const DAEMON_JSON: &str = "/etc/docker/daemon.json";

const RELOAD: &str = "if [ -d /run/systemd/system ]; then systemctl reload docker; \
    else kill -HUP \"$(pidof dockerd)\"; fi";
const RESTART: &str = "if [ -d /run/systemd/system ]; then systemctl restart docker; \
    else service docker restart; fi";

fn wanted(inv: &Inventory) -> Map<String, Value> {
    let mut keys = inv.daemon_json.clone();
    if inv.tls.mode == TlsMode::Insecure {
        let refs = inv.references().into_iter().map(Value::String).collect();
        keys.insert("insecure-registries".into(), Value::Array(refs));
    }
    keys
}

pub fn want(w: &mut Want) {
    w.req.content.push(DAEMON_JSON.into());
}

pub fn check(ctx: &Ctx) -> Result<Vec<Change>> {
    let keys = wanted(ctx.inv);
    let current = ctx.state.text(DAEMON_JSON);
    // Merged even with no keys to add: a file dockerd cannot parse stops the host either way.
    let outcome = daemon_json::merge(current.as_deref(), &keys)
        .map_err(|e| anyhow::anyhow!("{DAEMON_JSON}: {e}"))?;
    if keys.is_empty() || !outcome.changed {
        return Ok(Vec::new());
    }
    let d = diff::unified(DAEMON_JSON, current.as_deref().unwrap_or(""), &outcome.text);
    let mut changes = vec![Change::put_file(
        DAEMON_JSON,
        outcome.text.into_bytes(),
        Mode::Keep,
        Some(d),
    )];
    match outcome.action {
        Action::Nothing => {}
        Action::Reload => changes.push(Change::script("reload dockerd (SIGHUP)", RELOAD, &[])),
        Action::Restart { keys } => changes.push(Change::script(
            format!(
                "RESTART dockerd: {} cannot be reloaded (containers stop unless live-restore is on)",
                keys.join(", ")
            ),
            RESTART,
            &[],
        )),
    }
    Ok(changes)
}
