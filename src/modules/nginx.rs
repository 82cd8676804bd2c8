//! nginx on lb hosts: TLS terminated with the registry's own certificate (its SANs cover the
//! hostname and the VIP) and re-encrypted to every replica, verified against the CA. A new
//! nginx.conf is written beside the old one and tested with `nginx -t` before it replaces it
//! (`staged_conf`, the registry's front uses it too); then the step waits until the registry
//! answers through this nginx, so the next lb is touched only after this one serves again.

use anyhow::{Context, Result};

use super::{Ctx, Module, file_change, reload_when_changed};
use crate::engine::change::{Action, Change};
use crate::engine::footprint::Footprint;
use crate::engine::probe::{HostState, ProbeRequest};
use crate::inventory::{Host, Inventory, Role};
use crate::render::LoadBalancer;

pub(crate) const CONF: &str = "/etc/nginx/nginx.conf";
pub(crate) const CHAIN: &str = "/etc/regboot/lb/registry-chain.crt";
pub(crate) const KEY: &str = "/etc/regboot/lb/registry.key";
pub(crate) const CA: &str = "/etc/regboot/lb/ca.crt";
pub(crate) const SERVICE: &str = "nginx";
/// Where a new nginx.conf is written first, in the same directory (relative includes resolve
/// alike, and the move is a rename).
pub(crate) const STAGED: &str = "/etc/nginx/nginx.conf.regboot-new";

/// Args: the staged copy, the config. A copy nginx refuses is removed and the config nginx
/// runs with stays, so a bad one cannot break nginx's next start either.
const MOVE_IN: &str = r#"set -eu
staged=$1; conf=$2
if ! out=$(nginx -t -q -c "$staged" 2>&1); then
  rm -f "$staged"
  printf '%s\n' "$out" >&2
  echo "nginx -t refused the new $conf; the old one stays in place" >&2
  exit 1
fi
mv -f "$staged" "$conf"
"#;

/// The changes that give `CONF` the text `conf`: plan shows the write of `CONF` with its diff;
/// apply writes `STAGED`, and moves it in only once `nginx -t` accepts it.
pub(crate) fn staged_conf(state: &HostState, conf: &[u8]) -> Vec<Change> {
    let Some(mut write) = file_change(state, CONF, conf, 0o644, false) else {
        return Vec::new();
    };
    if let Action::PutFile { path, .. } = &mut write.action {
        *path = STAGED.into();
    }
    vec![
        write,
        Change::script(
            format!("test it (nginx -t) before it replaces {CONF}"),
            MOVE_IN,
            &[STAGED, CONF],
        ),
    ]
}

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
        ];
        let files = files
            .iter()
            .filter_map(|(path, data, mode, secret)| {
                file_change(cx.state, path, data, *mode, *secret)
            })
            .chain(staged_conf(cx.state, conf.as_bytes()))
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
                format!("test it (nginx -t) before it replaces {CONF}"),
                "test the config (nginx -t) and reload nginx".into(),
                "wait until the registry answers through nginx on port 5000".into(),
            ]
        );
        // What the first run wrote, as the host now holds it.
        let changes = testing::run(&Nginx, &inv, "h1", &StateBuilder::new(), true).unwrap();
        let mut written = StateBuilder::new();
        for path in [CHAIN, KEY, CA] {
            written = written.file(path, &testing::written(&changes, path).unwrap());
        }
        written = written.file(CONF, &testing::written(&changes, STAGED).unwrap());
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

    /// nginx.conf is never written in place: the new text goes to a staged copy that the real
    /// nginx tests; a copy it refuses leaves the old config untouched, a good one replaces it.
    #[test]
    fn a_config_nginx_refuses_never_replaces_the_old_one() {
        let inv = testing::inventory("");
        let changes = testing::run(&Nginx, &inv, "h1", &StateBuilder::new(), true).unwrap();
        assert!(testing::written(&changes, CONF).is_none());
        let staged = changes
            .iter()
            .position(|c| matches!(&c.action, Action::PutFile { path, .. } if path == STAGED))
            .expect("a staged write");
        let Action::Script { script, args, .. } = &changes[staged + 1].action else {
            panic!("the test and move follow the staged write")
        };
        assert_eq!(args, &[STAGED, CONF]);

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let good = format!("pid {d}/nginx.pid; error_log {d}/error.log; events {{}}\n");
        let (staged, conf) = (dir.path().join("staged"), dir.path().join("nginx.conf"));
        std::fs::write(&conf, &good).unwrap();
        let move_in = |text: &str| {
            std::fs::write(&staged, text).unwrap();
            std::process::Command::new("sh")
                .args(["-c", script, "sh"])
                .args([&staged, &conf])
                .output()
                .expect("sh and nginx (scripts/install-deps.sh installs nginx-light)")
        };
        let refused = move_in("events { this is not nginx }\n");
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("the old one stays in place"),
            "{refused:?}"
        );
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), good);
        assert!(!staged.exists());
        let better = format!("{good}# changed\n");
        let moved = move_in(&better);
        assert!(moved.status.success(), "{moved:?}");
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), better);
        assert!(!staged.exists());
    }
}
