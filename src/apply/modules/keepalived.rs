//! keepalived on lb hosts: one VRRP instance holding the VIP. Priorities follow the order of
//! the lb hosts in the inventory (the first is highest, so it wins the first election); the
//! check script releases the VIP when nginx or every replica behind it stops answering.

use anyhow::{Context, Result};

use super::{Ctx, Want, file_change};
use crate::apply::change::Change;
use crate::inventory::Role;
use crate::render::{Keepalived, Templates};

pub const CONF: &str = "/etc/keepalived/keepalived.conf";
pub const SERVICE: &str = "keepalived";

/// `keepalived -t` ends by signalling itself, so its exit status says nothing: a problem is
/// whatever it prints.
const RELOAD: &str = r#"set -eu
problems=$(keepalived -t -n -l -f /etc/keepalived/keepalived.conf 2>&1 >/dev/null) || true
if [ -n "$problems" ]; then printf '%s\n' "$problems" >&2; exit 1; fi
systemctl enable --quiet keepalived
systemctl reload-or-restart keepalived
"#;

/// The priority of the `index`-th lb host (0-based): 150, 140, ... never below 1.
pub fn priority(index: usize) -> u8 {
    u8::try_from(150usize.saturating_sub(10 * index))
        .unwrap_or(1)
        .max(1)
}

pub fn want(w: &mut Want) {
    w.req.content.push(CONF.into());
    w.req.services.push(SERVICE.into());
}

pub fn check(ctx: &Ctx, templates: &Templates) -> Result<Vec<Change>> {
    let ha = ctx
        .inv
        .ha
        .as_ref()
        .context("lb hosts need the ha: section (validation checks this)")?;
    let index = ctx
        .inv
        .hosts_with(Role::Lb)
        .position(|h| h.name == ctx.host.name)
        .context("keepalived runs on lb hosts only")?;
    let conf = templates.keepalived_conf(&Keepalived {
        interface: ha.interface.clone(),
        virtual_router_id: ha.virtual_router_id,
        priority: priority(index),
        vip: ha.vip,
        vip_prefix: None,
        check_port: ctx.inv.registry.port,
    })?;
    let mut changes: Vec<Change> = file_change(ctx.state, CONF, conf.as_bytes(), 0o644, false)
        .into_iter()
        .collect();
    let active = ctx.state.services.get(SERVICE).map(String::as_str) == Some("active");
    if changes.is_empty() && active {
        return Ok(changes);
    }
    let why = if changes.is_empty() {
        "start keepalived (not active)"
    } else {
        "test the config (keepalived -t) and reload keepalived"
    };
    changes.push(Change::script(why, RELOAD, &[]));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::priority;

    #[test]
    fn first_lb_has_the_highest_priority() {
        assert_eq!((priority(0), priority(1), priority(2)), (150, 140, 130));
        assert_eq!(priority(40), 1);
    }
}
