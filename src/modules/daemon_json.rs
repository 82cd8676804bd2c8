//! /etc/docker/daemon.json: the inventory's keys merged in (plus insecure-registries in
//! tls.mode insecure), every other key kept. dockerd is reloaded when only reloadable keys
//! changed, restarted (announced) only when a key needs it, and left alone otherwise.

use anyhow::Result;
use serde_json::{Map, Value};

use super::{Ctx, Module};
use crate::diff;
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::host::Mode;
use crate::inventory::{Host, Inventory, TlsMode};
use crate::merge::daemon_json::{self, Action};

pub(crate) const DAEMON_JSON: &str = "/etc/docker/daemon.json";

const RELOAD: &str = "if [ -d /run/systemd/system ]; then systemctl reload docker; \
    else kill -HUP \"$(pidof dockerd)\"; fi";
const RESTART: &str = "if [ -d /run/systemd/system ]; then systemctl restart docker; \
    else service docker restart; fi";

pub(crate) fn wanted(inv: &Inventory) -> Map<String, Value> {
    let mut keys = inv.daemon_json.clone();
    if inv.tls.mode == TlsMode::Insecure {
        let refs = inv.references().into_iter().map(Value::String).collect();
        keys.insert("insecure-registries".into(), Value::Array(refs));
    }
    keys
}

pub(crate) struct DaemonJson;

impl Module for DaemonJson {
    fn name(&self) -> &'static str {
        "daemon_json"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content.push(DAEMON_JSON.into());
    }

    fn needs_engine(&self) -> bool {
        true
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if !cx.state.facts.docker.installed && !cx.inv.docker_install {
            // An agent with containerd or podman only: no dockerd to configure.
            return Ok(Vec::new());
        }
        let keys = wanted(cx.inv);
        let current = cx.state.text(DAEMON_JSON);
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
            Action::Restart { keys } => changes.extend(restart(cx, &keys, true)),
        }
        Ok(changes)
    }

    /// What regboot merged (as its manifest records) taken out again: values it replaced
    /// restored, keys it added removed, the file deleted when regboot created it and nothing
    /// else is left; then a reload, or an announced restart for keys that need one. Without
    /// a manifest nothing is known to be regboot's: the file stays.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let manifest = super::host_manifest::read(cx.state)?;
        let (Some(rec), Some(current)) = (
            manifest.and_then(|m| m.daemon_json),
            cx.state.text(DAEMON_JSON),
        ) else {
            return Ok(Vec::new());
        };
        let saved = cx
            .state
            .text(&super::host_manifest::saved_path(DAEMON_JSON));
        let Some((text, keys)) =
            super::host_manifest::restore_daemon_json(&rec, &current, saved.as_deref())?
        else {
            return Ok(Vec::new());
        };
        let mut changes = vec![match text {
            None => Change::script(
                format!("remove {DAEMON_JSON} (regboot created it)"),
                r#"rm -f -- "$1""#,
                &[DAEMON_JSON],
            ),
            Some(text) => {
                let d = diff::unified(DAEMON_JSON, &current, &text);
                Change::put_file(DAEMON_JSON, text.into_bytes(), Mode::Keep, Some(d))
            }
        }];
        if !cx.state.facts.docker.running {
            return Ok(changes);
        }
        let restart: Vec<&String> = keys
            .iter()
            .filter(|k| !crate::merge::daemon_json::RELOADABLE_KEYS.contains(&k.as_str()))
            .collect();
        if restart.is_empty() {
            changes.push(Change::script("reload dockerd (SIGHUP)", RELOAD, &[]));
        } else {
            // The registry container goes earlier in a reset: nothing to wait for.
            let keys: Vec<String> = restart.into_iter().cloned().collect();
            changes.extend(self::restart(cx, &keys, false));
            changes[0].one_at_a_time = true;
        }
        Ok(changes)
    }
}

/// A dockerd restart, one host at a time (see `super::restart`).
fn restart(cx: &Ctx, keys: &[String], wait_registry: bool) -> Vec<Change> {
    let restart = Change::script(
        format!(
            "RESTART dockerd: {} cannot be reloaded (containers stop unless live-restore is on)",
            keys.join(", ")
        ),
        RESTART,
        &[],
    );
    super::restart(cx, restart, vec![Change::wait_docker()], wait_registry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn reload_restart_or_nothing() {
        let with_keys = |json: &str| {
            let mut inv = testing::inventory("");
            inv.daemon_json = serde_json::from_str(json).unwrap();
            inv
        };
        let reload = with_keys(r#"{"registry-mirrors": ["https://m.test"]}"#);
        let restart = with_keys(r#"{"data-root": "/srv/docker"}"#);
        let none = testing::inventory("");
        let run = |inv: &Inventory, host: &str, state: StateBuilder| {
            summaries(&testing::run(&DaemonJson, inv, host, &state, true).unwrap())
        };
        let debian = || StateBuilder::new().file(DAEMON_JSON, "{\"log-level\": \"warn\"}\n");
        // (inventory, host, state, expected change summaries)
        let cases: Vec<(&Inventory, &str, StateBuilder, Vec<&str>)> = vec![
            (
                &reload,
                "h2",
                debian(),
                vec!["write /etc/docker/daemon.json", "reload dockerd (SIGHUP)"],
            ),
            (&none, "h2", debian(), vec![]),
            (
                &restart,
                "h1",
                debian().container("sha256:1", true, &[]),
                vec![
                    "write /etc/docker/daemon.json",
                    "RESTART dockerd: data-root cannot be reloaded (containers stop unless live-restore is on)",
                    "wait until dockerd answers docker info",
                    "wait until the registry answers on /v2/ again",
                ],
            ),
            (
                &restart,
                "h2",
                debian(),
                vec![
                    "write /etc/docker/daemon.json",
                    "RESTART dockerd: data-root cannot be reloaded (containers stop unless live-restore is on)",
                    "wait until dockerd answers docker info",
                ],
            ),
        ];
        for (inv, host, state, want) in cases {
            assert_eq!(run(inv, host, state), want);
        }
        // A restart is made on one host at a time; a reload is not.
        let changes = testing::run(&DaemonJson, &restart, "h2", &debian(), true).unwrap();
        assert!(changes[1..].iter().all(|c| c.one_at_a_time));
        let changes = testing::run(&DaemonJson, &reload, "h2", &debian(), true).unwrap();
        assert!(changes.iter().all(|c| !c.one_at_a_time));
        // An unparsable daemon.json stops the host.
        let broken = StateBuilder::new().file(DAEMON_JSON, "{nope");
        assert!(testing::run(&DaemonJson, &reload, "h2", &broken, true).is_err());
    }
}
