//! keepalived on lb hosts: one VRRP instance holding the VIP. Priorities follow the order of
//! the lb hosts in the inventory (the first is highest, so it wins the first election); the
//! check script releases the VIP when nginx or every replica behind it stops answering.

use anyhow::{Context, Result};

use super::{Ctx, Module, file_change, reload_when_changed};
use crate::engine::change::Change;
use crate::engine::footprint::Footprint;
use crate::engine::probe::{HostState, ProbeRequest};
use crate::inventory::{Host, Inventory, Role};
use crate::render::Keepalived as Conf;

pub(crate) const CONF: &str = "/etc/keepalived/keepalived.conf";
pub(crate) const SERVICE: &str = "keepalived";

/// `keepalived -t` ends by signalling itself, so its exit status says nothing: a problem is
/// whatever it prints.
const RELOAD: &str = r#"set -eu
problems=$(keepalived -t -n -l -f /etc/keepalived/keepalived.conf 2>&1 >/dev/null) || true
if [ -n "$problems" ]; then printf '%s\n' "$problems" >&2; exit 1; fi
systemctl enable --quiet keepalived
systemctl reload-or-restart keepalived
"#;

/// The priority of the `index`-th lb host (0-based): 150, 140, ... never below 1.
pub(crate) fn priority(index: usize) -> u8 {
    u8::try_from(150usize.saturating_sub(10 * index))
        .unwrap_or(1)
        .max(1)
}

pub(crate) struct Keepalived;

impl Module for Keepalived {
    fn name(&self) -> &'static str {
        "keepalived"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content.push(CONF.into());
        req.services.push(SERVICE.into());
    }

    /// It replaces keepalived.conf wholesale (an operator's is saved first).
    fn footprint(&self, _inv: &Inventory, _host: &Host, _state: Option<&HostState>) -> Footprint {
        Footprint {
            files: vec![CONF.into()],
            ..Footprint::default()
        }
    }

    /// The original config put back (or regboot's removed, the service stopped).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        super::restore_config(cx, self, CONF, SERVICE)
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let ha = cx
            .inv
            .ha
            .as_ref()
            .context("lb hosts need the ha: section (validation checks this)")?;
        let index = cx
            .inv
            .hosts_with(Role::Lb)
            .position(|h| h.name == cx.host.name)
            .context("keepalived runs on lb hosts only")?;
        let conf = cx.templates.keepalived_conf(&Conf {
            interface: ha.interface.clone(),
            virtual_router_id: ha.virtual_router_id,
            priority: priority(index),
            vip: ha.vip,
            vip_prefix: None,
            check_port: cx.inv.registry.port,
        })?;
        let files = file_change(cx.state, CONF, conf.as_bytes(), 0o644, false)
            .into_iter()
            .collect();
        Ok(reload_when_changed(
            cx.state,
            SERVICE,
            "keepalived -t",
            RELOAD,
            files,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::priority;

    #[test]
    fn first_lb_has_the_highest_priority() {
        assert_eq!((priority(0), priority(1), priority(2)), (150, 140, 130));
        assert_eq!(priority(40), 1);
    }

    #[test]
    fn config_per_lb_and_reload_only_when_needed() {
        use super::*;
        use crate::modules::testing::{self, StateBuilder, summaries};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ha.yml");
        std::fs::write(
            &path,
            "version: 1\ndefaults: { user: root, host_key_check: off }\nhosts:\n  \
             - { name: r1, address: 127.0.0.1, private_address: 10.0.0.1, roles: [registry] }\n  \
             - { name: lb1, address: 127.0.0.2, private_address: 10.0.0.2, roles: [lb] }\n  \
             - { name: lb2, address: 127.0.0.3, private_address: 10.0.0.3, roles: [lb] }\n\
             registry:\n  hostname: registry.test\n  port: 5000\n  image: registry:2\n\
             ha: { vip: 10.0.0.200, interface: eth0, virtual_router_id: 55 }\n\
             tls:\n  mode: self-signed\n",
        )
        .unwrap();
        let inv = crate::inventory::load_with_env(&path, &|_| None).unwrap();
        let changes = |host, state: &StateBuilder| {
            testing::run(&Keepalived, &inv, host, state, true).unwrap()
        };
        let first = changes("lb1", &StateBuilder::new());
        let conf = testing::written(&first, CONF).unwrap();
        assert!(
            conf.contains("priority 150") && conf.contains("10.0.0.200"),
            "{conf}"
        );
        let second = testing::written(&changes("lb2", &StateBuilder::new()), CONF).unwrap();
        assert!(second.contains("priority 140"), "{second}");
        // (state, expected summaries)
        let cases = [
            (
                StateBuilder::new()
                    .file(CONF, &conf)
                    .service(SERVICE, "active"),
                vec![],
            ),
            (
                StateBuilder::new()
                    .file(CONF, &conf)
                    .service(SERVICE, "failed"),
                vec!["start keepalived (not active)".to_string()],
            ),
            (
                StateBuilder::new()
                    .file(CONF, "old\n")
                    .service(SERVICE, "active"),
                vec![
                    format!("write {CONF}"),
                    "test the config (keepalived -t) and reload keepalived".to_string(),
                ],
            ),
        ];
        for (state, want) in cases {
            assert_eq!(summaries(&changes("lb1", &state)), want);
        }
    }
}
