//! nginx on lb hosts: TLS terminated with the registry's own certificate (its SANs cover the
//! hostname and the VIP) and re-encrypted to every replica, verified against the CA. A config
//! change is tested with `nginx -t` before the reload; then the step waits until the registry
//! answers through this nginx, so the next lb is touched only after this one serves again.

use anyhow::{Context, Result};

use super::{Ctx, Want, file_change};
use crate::apply::change::{Action, Change};
use crate::inventory::Role;
use crate::render::{LoadBalancer, Templates};

pub const CONF: &str = "/etc/nginx/nginx.conf";
pub const CHAIN: &str = "/etc/regboot/lb/registry-chain.crt";
pub const KEY: &str = "/etc/regboot/lb/registry.key";
pub const CA: &str = "/etc/regboot/lb/ca.crt";
pub const SERVICE: &str = "nginx";

const RELOAD: &str = r#"set -eu
nginx -t -q
systemctl enable --quiet nginx
systemctl reload-or-restart nginx
"#;

/// Shown when nginx does not pass the registry through in time.
pub const DIAGNOSE: &str = "tail -n 15 /var/log/nginx/error.log 2>&1";

pub fn want(w: &mut Want) {
    w.req.hash.extend([CHAIN, KEY, CA].map(String::from));
    w.req.content.push(CONF.into());
    w.req.services.push(SERVICE.into());
}

pub fn check(ctx: &Ctx, templates: &Templates) -> Result<Vec<Change>> {
    let tls = ctx
        .material
        .tls
        .as_ref()
        .context("lb hosts terminate TLS: set tls.mode to self-signed or provided")?;
    let reg = &ctx.inv.registry;
    let conf = templates.nginx_conf(&LoadBalancer {
        server_name: reg.hostname.clone(),
        listen_port: reg.port,
        replicas: ctx
            .inv
            .hosts_with(Role::Registry)
            .map(|h| (h.private_address.clone(), reg.port))
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
    let mut changes: Vec<Change> = files
        .iter()
        .filter_map(|(path, data, mode, secret)| file_change(ctx.state, path, data, *mode, *secret))
        .collect();
    let active = ctx.state.services.get(SERVICE).map(String::as_str) == Some("active");
    if changes.is_empty() && active {
        return Ok(changes);
    }
    let why = if changes.is_empty() {
        "start nginx (not active)"
    } else {
        "test the config (nginx -t) and reload nginx"
    };
    changes.push(Change::script(why, RELOAD, &[]));
    changes.push(Change {
        summary: format!(
            "wait until the registry answers through nginx on port {}",
            reg.port
        ),
        diff: None,
        action: Action::WaitHealthy {
            hostname: reg.hostname.clone(),
            port: reg.port,
            ca_pem: Some(cas.clone()),
            diagnose: DIAGNOSE,
        },
    });
    Ok(changes)
}
