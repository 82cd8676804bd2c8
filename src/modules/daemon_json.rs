//! /etc/docker/daemon.json: the inventory's keys merged in (plus insecure-registries in
//! tls.mode insecure), every other key kept. dockerd is reloaded when only reloadable keys
//! changed, restarted (announced) only when a key needs it, and left alone otherwise.

use anyhow::{Result, bail};
use serde_json::{Map, Value};

use super::{Ctx, Module};
use crate::diff;
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint, JsonKey, JsonRecord};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::host::Mode;
use crate::inventory::{Host, Inventory, TlsMode};
use crate::merge::daemon_json::{self, Action, UNION_KEYS};

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

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        req.content.push(DAEMON_JSON.into());
        super::want_registry(inv, host, req);
    }

    fn not_ready(
        &self,
        inv: &Inventory,
        host: &Host,
        state: &HostState,
        engine_coming: bool,
    ) -> Option<String> {
        super::docker_not_ready(inv, host, state, engine_coming)
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

    /// Every key it merges, the list keys extended rather than set.
    fn footprint(&self, inv: &Inventory, _host: &Host, _state: Option<&HostState>) -> Footprint {
        Footprint {
            keys: (wanted(inv).into_iter())
                .map(|(key, value)| JsonKey {
                    file: DAEMON_JSON,
                    list: UNION_KEYS.contains(&key.as_str()),
                    key,
                    value,
                })
                .collect(),
            ..Footprint::default()
        }
    }

    /// What regboot merged (as its record says) taken out again: values it replaced restored
    /// while they still hold regboot's, keys it added removed, the file deleted when regboot
    /// created it and nothing else is left; then a reload, or an announced restart for keys
    /// that need one. Without a record nothing is known to be regboot's: the file stays.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let record = footprint::recorded(cx, self)?;
        let (Some(rec), Some(current)) = (record.json.get(DAEMON_JSON), cx.state.text(DAEMON_JSON))
        else {
            return Ok(Vec::new());
        };
        let saved = cx.state.text(&footprint::saved_path(DAEMON_JSON));
        let Some((text, keys)) = restore(rec, &current, saved.as_deref())? else {
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
            .filter(|k| !daemon_json::RELOADABLE_KEYS.contains(&k.as_str()))
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

/// daemon.json with what regboot merged taken out again (`text`: the file now): `None` when
/// nothing changes, else the new text (`None` inside: delete the file) and the keys changed.
/// When what is left equals the saved original, the original's bytes are put back.
fn restore(
    rec: &JsonRecord,
    text: &str,
    saved: Option<&str>,
) -> Result<Option<(Option<String>, Vec<String>)>> {
    let Some(mut map) = footprint::parse_object(text) else {
        bail!(
            "{DAEMON_JSON} is not a JSON object; regboot does not rewrite it: fix it by hand, then run again"
        );
    };
    let before = map.clone();
    rec.revert(&mut map, |k| UNION_KEYS.contains(&k));
    let mut changed: Vec<String> = before
        .iter()
        .filter(|(k, v)| map.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(map.keys().filter(|k| !before.contains_key(*k)).cloned())
        .collect();
    changed.sort();
    changed.dedup();
    if changed.is_empty() {
        return Ok(None);
    }
    if map.is_empty() && rec.created {
        return Ok(Some((None, changed)));
    }
    let text = match saved.filter(|s| footprint::parse_object(s).as_ref() == Some(&map)) {
        Some(original) => original.to_string(),
        None => {
            let mut t = serde_json::to_string_pretty(&map)?;
            t.push('\n');
            t
        }
    };
    Ok(Some((Some(text), changed)))
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

    /// What apply records (through the manifest step) and reset reverts: the operator's keys
    /// and list entries kept, regboot's taken out, a key the operator changed after apply
    /// left with the operator's value.
    #[test]
    fn reset_reverts_only_what_still_holds_regboot_s_values() {
        let mut inv = testing::inventory("");
        inv.daemon_json = serde_json::from_str(
            r#"{"registry-mirrors": ["https://m"], "debug": false, "data-root": "/srv/docker", "max-concurrent-downloads": 4}"#,
        )
        .unwrap();
        let original = "{\n  \"log-level\": \"warn\",\n  \"registry-mirrors\": [\"https://a\"],\n  \"debug\": true\n}\n";
        let apply = crate::playbooks::apply().unwrap();
        let record = |state: &StateBuilder| {
            testing::run_in(
                &crate::modules::host_manifest::HostManifest,
                &inv,
                "h2",
                state,
                &testing::material(),
                true,
                &apply,
            )
            .unwrap()
        };
        let changes = record(&StateBuilder::new().file(DAEMON_JSON, original));
        assert_eq!(
            summaries(&changes)[0],
            "keep the original /etc/docker/daemon.json in /etc/regboot/saved/etc/docker/daemon.json"
        );
        let manifest = testing::written(&changes, footprint::MANIFEST).unwrap();
        let merged = daemon_json::merge(Some(original), &wanted(&inv))
            .unwrap()
            .text;
        // A second apply (file merged) keeps the first "before" values.
        let again = StateBuilder::new()
            .file(DAEMON_JSON, &merged)
            .file(footprint::MANIFEST, &manifest);
        assert!(record(&again).is_empty());
        let reset = |current: &str| {
            let state = StateBuilder::new()
                .file(DAEMON_JSON, current)
                .file(footprint::MANIFEST, &manifest)
                .file(&footprint::saved_path(DAEMON_JSON), original);
            testing::run(&DaemonJson, &inv, "h2", &state, false).unwrap()
        };
        // As apply left it: byte for byte the original file.
        assert_eq!(
            testing::written(&reset(&merged), DAEMON_JSON).unwrap(),
            original
        );
        // The operator added a mirror and changed a key regboot set: both stay.
        let mut later: Map<String, Value> = serde_json::from_str(&merged).unwrap();
        later["registry-mirrors"]
            .as_array_mut()
            .unwrap()
            .push(Value::from("https://mine"));
        later.insert("max-concurrent-downloads".into(), Value::from(7));
        let later = serde_json::to_string_pretty(&later).unwrap();
        let text = testing::written(&reset(&later), DAEMON_JSON).unwrap();
        let text: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"log-level": "warn", "registry-mirrors": ["https://a", "https://mine"],
                "debug": true, "max-concurrent-downloads": 7})
        );
        // Restored already: nothing to do.
        assert!(reset(original).is_empty());
    }

    #[test]
    fn a_daemon_json_regboot_created_is_deleted() {
        let mut inv = testing::inventory("");
        inv.daemon_json = serde_json::from_str(r#"{"insecure-registries": ["r:5000"]}"#).unwrap();
        let apply = crate::playbooks::apply().unwrap();
        let changes = testing::run_in(
            &crate::modules::host_manifest::HostManifest,
            &inv,
            "h2",
            &StateBuilder::new(),
            &testing::material(),
            true,
            &apply,
        )
        .unwrap();
        let manifest = testing::written(&changes, footprint::MANIFEST).unwrap();
        let merged = daemon_json::merge(None, &wanted(&inv)).unwrap().text;
        let state = StateBuilder::new()
            .file(DAEMON_JSON, &merged)
            .file(footprint::MANIFEST, &manifest);
        let changes = testing::run(&DaemonJson, &inv, "h2", &state, false).unwrap();
        assert_eq!(
            summaries(&changes),
            [
                "remove /etc/docker/daemon.json (regboot created it)",
                "reload dockerd (SIGHUP)"
            ]
        );
    }
}
