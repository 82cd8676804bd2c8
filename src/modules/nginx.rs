//! nginx on lb hosts: TLS terminated with the registry's own certificate (its SANs cover the
//! hostname and the VIP) and re-encrypted to every replica, verified against the CA. A config
//! change is tested with `nginx -t` before the reload; then the step waits until the registry
//! answers through this nginx, so the next lb is touched only after this one serves again.

use anyhow::{Context, Result};

use super::{Ctx, Module, file_change, reload_when_changed};
use crate::engine::change::Change;
use crate::engine::footprint::Footprint;
use crate::engine::probe::{HostState, ProbeRequest};
use crate::inventory::{Host, Inventory, Role};
use crate::render::LoadBalancer;

pub(crate) const CONF: &str = "/etc/nginx/nginx.conf";
pub(crate) const CHAIN: &str = "/etc/regboot/lb/registry-chain.crt";
pub(crate) const KEY: &str = "/etc/regboot/lb/registry.key";
pub(crate) const CA: &str = "/etc/regboot/lb/ca.crt";
pub(crate) const SERVICE: &str = "nginx";

const RELOAD: &str = r#"set -eu
nginx -t -q
systemctl enable --quiet nginx
systemctl reload-or-restart nginx
"#;

/// Shown when nginx does not pass the registry through in time.
pub(crate) const DIAGNOSE: &str = "tail -n 15 /var/log/nginx/error.log 2>&1";

pub(crate) struct Nginx;

impl Module for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.hash.extend([CHAIN, KEY, CA].map(String::from));
        req.content.push(CONF.into());
        req.services.push(SERVICE.into());
    }

    /// It replaces nginx.conf wholesale (an operator's is saved first).
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
        let tls = cx
            .material
            .tls
            .as_ref()
            .context("lb hosts terminate TLS: set tls.mode to self-signed or provided")?;
        let reg = &cx.inv.registry;
        let conf = cx.templates.nginx_conf(&LoadBalancer {
            server_name: reg.hostname.clone(),
            listen_port: reg.port,
            replicas: cx
                .inv
                .hosts_with(Role::Registry)
                .map(|h| (h.private_address.clone(), reg.port, h.drain))
                .collect(),
            cert_path: CHAIN.into(),
            key_path: KEY.into(),
            ca_path: CA.into(),
        })?;
        // nginx verifies the replicas against this file; during a CA rotation replicas serve
        // leaves of either CA while they roll, so it holds both.
        let cas = tls.trusted_bundle();
        let files = [
            (CHAIN, tls.chain_pem.as_bytes(), 0o644, false),
            (KEY, tls.key_pem.as_bytes(), 0o600, true),
            (CA, cas.as_bytes(), 0o644, false),
            (CONF, conf.as_bytes(), 0o644, false),
        ];
        let files = files
            .iter()
            .filter_map(|(path, data, mode, secret)| {
                file_change(cx.state, path, data, *mode, *secret)
            })
            .collect();
        let mut changes = reload_when_changed(cx.state, SERVICE, "nginx -t", RELOAD, files);
        if !changes.is_empty() {
            changes.push(Change::wait_healthy(
                format!(
                    "wait until the registry answers through nginx on port {}",
                    reg.port
                ),
                &reg.hostname,
                reg.port,
                Some(cas),
                DIAGNOSE,
            ));
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn reload_only_for_a_change_or_a_stopped_unit() {
        let inv = testing::inventory("");
        let run = |state: &StateBuilder| {
            summaries(&testing::run(&Nginx, &inv, "h1", state, true).unwrap())
        };
        let fresh = run(&StateBuilder::new());
        assert_eq!(
            fresh,
            [
                format!("write {CHAIN}"),
                format!("write {KEY}"),
                format!("write {CA}"),
                format!("write {CONF}"),
                "test the config (nginx -t) and reload nginx".into(),
                "wait until the registry answers through nginx on port 5000".into(),
            ]
        );
        // What the first run wrote, as the host now holds it.
        let changes = testing::run(&Nginx, &inv, "h1", &StateBuilder::new(), true).unwrap();
        let mut written = StateBuilder::new();
        for path in [CHAIN, KEY, CA, CONF] {
            written = written.file(path, &testing::written(&changes, path).unwrap());
        }
        let written = |unit: &str| {
            let mut st = StateBuilder(written.0.clone()).service(SERVICE, unit);
            if let Some(Some(key)) = st.0.files.get_mut(KEY) {
                key.mode = 0o600;
            }
            st
        };
        assert!(run(&written("active")).is_empty());
        assert_eq!(run(&written("inactive"))[0], "start nginx (not active)");
    }
}
