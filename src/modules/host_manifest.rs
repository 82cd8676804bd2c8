//! `/etc/regboot/manifest.json`: what regboot added to a host, recorded on the host itself
//! before `apply` adds it, so `regboot reset` removes exactly that (and restores what it
//! replaced) without the state directory.
//!
//! Recorded, the first time regboot is about to add each:
//! - daemon.json: whether regboot created the file, and for every key it merges the value
//!   the key had before (none: the key was absent); for the list keys it extends
//!   (insecure-registries, registry-mirrors...) the entries it added. A copy of the original
//!   file is kept under `/etc/regboot/saved/`, so a restored file is byte for byte the
//!   original when its content is the same.
//! - The directories it creates (`/etc/docker/certs.d`, the registry's data_dir and its
//!   parents), removed again when empty (data_dir only with `--purge-data`).
//! - The packages it installs on lb hosts (purged by reset), and the configs it replaces
//!   wholesale (nginx.conf, keepalived.conf): a copy of each original under `saved/`, put back
//!   by reset, or removed when there was none.
//! - The registry image when regboot loaded or pulled it.
//! - containerd's CRI `config_path` when regboot sets it, and whether it created config.toml
//!   for it (reset takes the key out, or removes a file that holds nothing else).
//!
//! The step runs first in `apply` and writes only when something new is recorded, so a second
//! apply changes nothing. In `reset` it runs last: `/etc/regboot` goes (regboot's registry
//! files, saved copies and this manifest), then the directories regboot created, when empty.
//!
//! Hosts set up before the manifest existed get one on their next apply, which then records
//! regboot's own values as the "before" values: reset removes regboot's files, block and
//! container there, but leaves daemon.json keys as they are.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Ctx, Module, containerd_hosts, containers_certs_d, daemon_json, keepalived, lb_packages, nginx,
};
use crate::diff;
use crate::engine::change::Change;
use crate::engine::playbook::Hosts;
use crate::engine::probe::{HostState, ProbeRequest};
use crate::facts::Facts;
use crate::host::Mode;
use crate::inventory::{Host, Inventory, Role};
use crate::merge::daemon_json::UNION_KEYS;

pub(crate) const DIR: &str = "/etc/regboot";
/// In data_dir, after a reset that kept the data: the directories regboot created for it.
pub(crate) const DATA_NOTE: &str = ".regboot-created-dirs";
pub(crate) const MANIFEST: &str = "/etc/regboot/manifest.json";
const SAVED: &str = "/etc/regboot/saved";

/// Where the original of `path` is kept.
pub(crate) fn saved_path(path: &str) -> String {
    format!("{SAVED}{path}")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_json: Option<DaemonJsonRecord>,
    /// Directories that did not exist before regboot created them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs_created: Vec<String>,
    /// Packages regboot installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages_installed: Vec<String>,
    /// Files regboot replaces wholesale: path -> whether it existed (its copy is in saved/).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_replaced: BTreeMap<String, bool>,
    /// The registry image, when regboot loaded or pulled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_loaded: Option<String>,
    /// regboot set containerd's CRI `config_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containerd_config: Option<ContainerdRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContainerdRecord {
    /// There was no config.toml: reset removes it when nothing but regboot's key is left.
    pub created: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DaemonJsonRecord {
    /// There was no daemon.json: reset deletes the file when no other key is left.
    pub created: bool,
    /// The original file is in saved/.
    #[serde(default)]
    pub saved: bool,
    pub keys: BTreeMap<String, KeyRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    /// The value before regboot merged its own; none: the key was absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// For list keys regboot extends: the entries it added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<Value>,
}

/// The host's manifest, if it has one.
pub(crate) fn read(state: &HostState) -> Result<Option<Manifest>> {
    let Some(text) = state.text(MANIFEST) else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!("{MANIFEST} cannot be read; fix or remove it (regboot reset then removes only what it finds)")
    })
}

/// The directories regboot may create on `host` (parents first), to be recorded when missing;
/// the runtimes' trees where `facts` show the runtime (`None`: before the probe, all).
fn candidate_dirs(inv: &Inventory, host: &Host, facts: Option<&Facts>) -> Vec<String> {
    // certs.d goes on every host (an lb's dockerd pulls too, when it has one).
    let mut dirs = vec![
        "/etc/docker".to_string(),
        crate::trust_store::CERTS_D.to_string(),
    ];
    if facts.is_none_or(|f| f.containerd.runtime.installed) {
        dirs.extend(["/etc/containerd".into(), containerd_hosts::ROOT.into()]);
    }
    if facts.is_none_or(Facts::containers_runtime) {
        dirs.extend([
            "/etc/containers".into(),
            containers_certs_d::CONTAINERS.root.into(),
        ]);
    }
    if host.has_role(Role::Registry) {
        let data = inv.registry.data_dir.trim_end_matches('/');
        let mut ancestors: Vec<String> = std::path::Path::new(data)
            .ancestors()
            .filter(|p| p.components().count() > 2)
            .map(|p| p.display().to_string())
            .collect();
        ancestors.reverse();
        dirs.extend(ancestors);
    }
    dirs
}

/// Files replaced wholesale on lb hosts.
const REPLACED: [&str; 2] = [nginx::CONF, keepalived::CONF];

/// The packages regboot may install and the configs it may replace on `host`: nginx,
/// keepalived and curl on an lb; nginx (the registry's front) on a registry host.
fn replaced_here(
    host: &Host,
) -> (
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
) {
    if host.has_role(Role::Lb) {
        (&lb_packages::PACKAGES, &REPLACED)
    } else if host.has_role(Role::Registry) {
        (&lb_packages::PACKAGES[..1], &REPLACED[..1])
    } else {
        (&[], &[])
    }
}

fn parse_object(text: &str) -> Option<Map<String, Value>> {
    if text.trim().is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// Records in `m` what merging `keys` into daemon.json (`current`: its text) adds.
fn record_daemon_json(
    m: &mut Manifest,
    current: Option<&str>,
    keys: &Map<String, Value>,
) -> Option<()> {
    // An unparsable file stops the daemon_json step; nothing to record.
    let map = parse_object(current.unwrap_or(""))?;
    let rec = m.daemon_json.get_or_insert_with(|| DaemonJsonRecord {
        created: current.is_none(),
        saved: current.is_some(),
        keys: BTreeMap::new(),
    });
    for (key, value) in keys {
        let entry = rec.keys.entry(key.clone()).or_insert_with(|| KeyRecord {
            before: map.get(key).cloned(),
            added: Vec::new(),
        });
        if !UNION_KEYS.contains(&key.as_str()) {
            continue;
        }
        let have = map.get(key).and_then(Value::as_array);
        for item in value.as_array().into_iter().flatten() {
            let there = have.is_some_and(|h| h.contains(item));
            if !there && !entry.added.contains(item) {
                entry.added.push(item.clone());
            }
        }
    }
    Some(())
}

/// The manifest `cx`'s host should have before apply's steps run, and the copies of the
/// originals to keep first.
fn recorded(cx: &Ctx) -> Result<(Manifest, Vec<Change>)> {
    let old = read(cx.state)?;
    let mut m = old.clone().unwrap_or_default();
    m.version = 1;
    let mut saves = Vec::new();
    for d in candidate_dirs(cx.inv, cx.host, Some(&cx.state.facts)) {
        if cx.state.dirs.get(&d) == Some(&false) && !m.dirs_created.contains(&d) {
            m.dirs_created.push(d);
        }
    }
    if Hosts::Clients.matches(cx.host) {
        let keys = daemon_json::wanted(cx.inv);
        let current = cx.state.text(daemon_json::DAEMON_JSON);
        let first = m.daemon_json.is_none();
        if !keys.is_empty()
            && record_daemon_json(&mut m, current.as_deref(), &keys).is_some()
            && first
            && current.is_some()
        {
            saves.push(save(daemon_json::DAEMON_JSON));
        }
    }
    let (packages, replaced) = replaced_here(cx.host);
    {
        for (cmd, pkg) in packages {
            let missing = cx.state.commands.get(*cmd) == Some(&false);
            if missing && !m.packages_installed.iter().any(|p| p == pkg) {
                m.packages_installed.push(pkg.to_string());
            }
        }
        for path in replaced.iter().copied() {
            if m.files_replaced.contains_key(path) {
                continue;
            }
            let existed = cx.state.files.get(path).is_some_and(Option::is_some);
            m.files_replaced.insert(path.to_string(), existed);
            if existed {
                saves.push(save(path));
            }
        }
    }
    // Errors stop the containerd step, with what to do; nothing to record then. docker.install
    // brings containerd with the engine (its package's config.toml, without config_path).
    let brings_containerd = cx.inv.docker_install
        && Hosts::Clients.matches(cx.host)
        && !cx.state.facts.docker.installed
        && !cx.state.facts.containerd.runtime.installed;
    let sets = matches!(containerd_hosts::config_change(cx.state), Ok(Some(_)));
    if m.containerd_config.is_none() && (sets || brings_containerd) {
        let missing = cx
            .state
            .files
            .get(containerd_hosts::CONFIG)
            .is_none_or(Option::is_none);
        m.containerd_config = Some(ContainerdRecord {
            created: missing && !brings_containerd,
        });
    }
    if cx.host.has_role(Role::Registry)
        && cx.state.facts.docker.running
        && cx.state.image_id.is_none()
        && m.image_loaded.is_none()
    {
        m.image_loaded = Some(cx.inv.registry.image.clone());
    }
    Ok((m, saves))
}

/// Copy `path` (as it is) to its place under saved/.
fn save(path: &str) -> Change {
    let to = saved_path(path);
    Change::script(
        format!("keep the original {path} in {to}"),
        r#"mkdir -p -m 700 -- "$(dirname -- "$2")" && cp -p -- "$1" "$2""#,
        &[path, &to],
    )
}

pub(crate) struct HostManifest;

impl Module for HostManifest {
    fn name(&self) -> &'static str {
        "host_manifest"
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        req.content.push(MANIFEST.into());
        req.dirs.push(DIR.into());
        req.dirs.extend(candidate_dirs(inv, host, None));
        req.content.push(containerd_hosts::CONFIG.into());
        if Hosts::Clients.matches(host) {
            req.content.push(daemon_json::DAEMON_JSON.into());
            req.content.push(saved_path(daemon_json::DAEMON_JSON));
        }
        let (packages, replaced) = replaced_here(host);
        req.commands
            .extend(packages.iter().map(|(c, _)| c.to_string()));
        req.hash.extend(replaced.iter().map(|p| p.to_string()));
        req.hash.extend(replaced.iter().map(|p| saved_path(p)));
        if host.has_role(Role::Registry) {
            req.image = Some(inv.registry.image.clone());
        }
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let old = cx.state.text(MANIFEST);
        let (m, mut changes) = recorded(cx)?;
        let mut text = serde_json::to_string_pretty(&m)?;
        text.push('\n');
        if old.as_deref() != Some(text.as_str()) {
            let d = diff::unified(MANIFEST, old.as_deref().unwrap_or(""), &text);
            let mut c = Change::put_file(MANIFEST, text.into_bytes(), Mode::Set(0o600), Some(d));
            c.summary = format!("record what regboot adds in {MANIFEST}");
            changes.push(c);
        }
        Ok(changes)
    }

    /// `/etc/regboot` goes, then the directories regboot created (deepest first, only when
    /// empty; data_dir is the registry_data step's).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let m = read(cx.state)?.unwrap_or_default();
        let mut changes = Vec::new();
        if cx.state.dirs.get(DIR) == Some(&true) {
            changes.push(Change::script(
                format!("remove {DIR} (regboot's files, saved originals and manifest)"),
                r#"rm -rf -- "$1""#,
                &[DIR],
            ));
        }
        let data = cx.inv.registry.data_dir.trim_end_matches('/');
        let for_data: Vec<&str> = m
            .dirs_created
            .iter()
            .map(String::as_str)
            .filter(|d| std::path::Path::new(data).starts_with(d))
            .collect();
        if cx.host.has_role(Role::Registry) && !for_data.is_empty() {
            // The data stays (unless registry_data removed it just before): a note in it
            // keeps which directories regboot created, for a later `reset --purge-data`.
            let mut args = vec![data];
            args.extend(&for_data);
            changes.push(Change::script(
                format!("note in {data} which directories regboot created (for --purge-data)"),
                r#"d=$1; shift; [ -d "$d" ] || exit 0; printf '%s\n' "$@" > "$d/.regboot-created-dirs""#,
                &args,
            ));
        }
        let mut dirs: Vec<&str> = m
            .dirs_created
            .iter()
            .map(String::as_str)
            .filter(|d| !std::path::Path::new(data).starts_with(d))
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        if !dirs.is_empty() {
            let mut args = dirs.clone();
            args.insert(0, "-");
            changes.push(Change::script(
                format!("remove {} when empty (regboot created it)", dirs.join(" ")),
                r#"shift; for d; do rmdir -- "$d" 2>/dev/null || true; done"#,
                &args,
            ));
        }
        Ok(changes)
    }
}

/// daemon.json with what regboot merged taken out again (`text`: the file now): `None` when
/// nothing changes, else the new text (`None` inside: delete the file) and the keys changed.
pub(crate) fn restore_daemon_json(
    rec: &DaemonJsonRecord,
    text: &str,
    saved: Option<&str>,
) -> Result<Option<(Option<String>, Vec<String>)>> {
    let Some(mut map) = parse_object(text) else {
        bail!(
            "{} is not a JSON object; regboot does not rewrite it: fix it by hand, then run again",
            daemon_json::DAEMON_JSON
        );
    };
    let before = map.clone();
    for (key, r) in &rec.keys {
        if UNION_KEYS.contains(&key.as_str()) {
            if let Some(Value::Array(items)) = map.get_mut(key) {
                items.retain(|x| !r.added.contains(x));
                if items.is_empty() && r.before.is_none() {
                    map.remove(key);
                }
            }
            continue;
        }
        match &r.before {
            Some(v) => {
                map.insert(key.clone(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
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
    let text = match saved.filter(|s| parse_object(s).as_ref() == Some(&map)) {
        Some(original) => original.to_string(),
        None => {
            let mut t = serde_json::to_string_pretty(&map)?;
            t.push('\n');
            t
        }
    };
    Ok(Some((Some(text), changed)))
}

/// The changes that stop the registry container and remove the image when regboot brought it.
pub(crate) fn remove_container(cx: &Ctx) -> Result<Vec<Change>> {
    let m = read(cx.state)?.unwrap_or_default();
    let reg = &cx.inv.registry;
    let docker = &cx.state.facts.docker;
    if docker.installed && !docker.running {
        // Its container (restart policy unless-stopped) would come back with the engine.
        bail!(
            "the docker engine is stopped, so the registry container cannot be seen or removed:              start it (`systemctl start docker`) and run reset again"
        );
    }
    let mut changes = Vec::new();
    if cx.state.container.is_some() {
        changes.push(Change::script(
            format!(
                "remove container {} (its data in {} stays)",
                super::registry_container::NAME,
                reg.data_dir
            ),
            // A roll killed midway may have left the next (green) container too.
            r#"docker rm -f "$1" >/dev/null; docker rm -f "$1-next" >/dev/null 2>&1 || true"#,
            &[super::registry_container::NAME],
        ));
    }
    if cx.state.image_id.is_some() && m.image_loaded.as_deref() == Some(reg.image.as_str()) {
        changes.push(Change::script(
            format!(
                "remove image {} (regboot brought it; kept if another container uses it)",
                reg.image
            ),
            r#"docker image rm "$1" >/dev/null 2>&1 || true"#,
            &[&reg.image],
        ));
    }
    Ok(changes)
}

/// The changes that put back a config regboot replaced (and reload its service) or, when
/// there was none, stop the service and remove the file (the package goes in lb_packages).
pub(crate) fn restore_config(cx: &Ctx, path: &str, service: &str) -> Result<Vec<Change>> {
    let m = read(cx.state)?.unwrap_or_default();
    let current = cx.state.files.get(path).and_then(Option::as_ref);
    let saved = saved_path(path);
    match m.files_replaced.get(path) {
        Some(true) => {
            let original = cx.state.files.get(&saved).and_then(Option::as_ref);
            let Some(original) = original else {
                bail!(
                    "{MANIFEST} says {path} was kept in {saved}, which is missing: restore {path} by hand"
                )
            };
            if current.is_some_and(|c| c.sha256 == original.sha256) {
                return Ok(Vec::new());
            }
            Ok(vec![Change::script(
                format!("put back the original {path} and reload {service} when it runs"),
                r#"cp -p -- "$1" "$2"
if systemctl is-active --quiet "$3"; then systemctl reload-or-restart "$3"; fi"#,
                &[&saved, path, service],
            )])
        }
        Some(false) if current.is_some() => Ok(vec![Change::script(
            format!("stop {service} and remove {path} (regboot wrote it)"),
            r#"systemctl disable --now "$2" >/dev/null 2>&1 || true
rm -f -- "$1""#,
            &[path, service],
        )]),
        _ => Ok(Vec::new()),
    }
}

/// Args: packages. Removes them (and what they pulled in) with the family's package manager.
const PURGE: &str = r#"set -eu
if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get purge -y -qq --auto-remove "$@" >/dev/null
elif command -v dnf >/dev/null 2>&1; then dnf remove -y -q "$@"
elif command -v yum >/dev/null 2>&1; then yum remove -y -q "$@"
elif command -v zypper >/dev/null 2>&1; then zypper --non-interactive remove "$@"
elif command -v apk >/dev/null 2>&1; then apk del -q "$@"
else
  echo "no known package manager (apt-get, dnf, yum, zypper, apk): remove $* by hand" >&2
  exit 1
fi
"#;

/// The packages regboot installed that are still there, purged.
pub(crate) fn remove_packages(cx: &Ctx) -> Result<Vec<Change>> {
    let m = read(cx.state)?.unwrap_or_default();
    let present: Vec<&str> = lb_packages::PACKAGES
        .iter()
        .filter(|(cmd, pkg)| {
            m.packages_installed.iter().any(|p| p == pkg)
                && cx.state.commands.get(*cmd) == Some(&true)
        })
        .map(|(_, pkg)| *pkg)
        .collect();
    if present.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Change::script(
        format!(
            "remove packages {} (regboot installed them)",
            present.join(" ")
        ),
        PURGE,
        &present,
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};
    use serde_json::json;

    fn keys(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn daemon_json_round_trip_restores_the_original() {
        let original = "{\n  \"log-level\": \"warn\",\n  \"registry-mirrors\": [\"https://a\"],\n  \"debug\": true\n}\n";
        let wanted = keys(json!({
            "registry-mirrors": ["https://m"],
            "debug": false,
            "data-root": "/srv/docker"
        }));
        let mut m = Manifest::default();
        record_daemon_json(&mut m, Some(original), &wanted).unwrap();
        let rec = m.daemon_json.clone().unwrap();
        assert!(!rec.created && rec.saved);
        assert_eq!(rec.keys["debug"].before, Some(json!(true)));
        assert_eq!(rec.keys["data-root"].before, None);
        assert_eq!(rec.keys["registry-mirrors"].added, [json!("https://m")]);
        // A second record (next apply, file merged) keeps the first "before" values.
        let merged = crate::merge::daemon_json::merge(Some(original), &wanted).unwrap();
        record_daemon_json(&mut m, Some(&merged.text), &wanted).unwrap();
        assert_eq!(m.daemon_json.as_ref(), Some(&rec));
        // The operator adds a mirror of their own after regboot: it stays.
        let mut later: Map<String, Value> = serde_json::from_str(&merged.text).unwrap();
        later["registry-mirrors"]
            .as_array_mut()
            .unwrap()
            .push(json!("https://mine"));
        let later = serde_json::to_string_pretty(&later).unwrap();
        let (text, changed) = restore_daemon_json(&rec, &later, Some(original))
            .unwrap()
            .unwrap();
        let text: Value = serde_json::from_str(&text.unwrap()).unwrap();
        assert_eq!(
            text,
            json!({"log-level": "warn", "registry-mirrors": ["https://a", "https://mine"], "debug": true})
        );
        assert_eq!(changed, ["data-root", "debug", "registry-mirrors"]);
        // Without that: byte for byte the original file.
        let (text, _) = restore_daemon_json(&rec, &merged.text, Some(original))
            .unwrap()
            .unwrap();
        assert_eq!(text.as_deref(), Some(original));
        // Restored already: nothing to do.
        assert!(
            restore_daemon_json(&rec, original, Some(original))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_daemon_json_regboot_created_is_deleted() {
        let wanted = keys(json!({"insecure-registries": ["r:5000"]}));
        let mut m = Manifest::default();
        record_daemon_json(&mut m, None, &wanted).unwrap();
        let rec = m.daemon_json.unwrap();
        assert!(rec.created && !rec.saved);
        let merged = crate::merge::daemon_json::merge(None, &wanted).unwrap();
        let (text, changed) = restore_daemon_json(&rec, &merged.text, None)
            .unwrap()
            .unwrap();
        assert_eq!((text, changed), (None, vec!["insecure-registries".into()]));
    }

    #[test]
    fn apply_records_once_and_reset_removes() {
        let inv = testing::inventory("");
        let fresh = StateBuilder::new()
            .dir_state(DIR, false)
            .dir_state("/etc/docker", true)
            .dir_state("/etc/docker/certs.d", false)
            .dir_state("/var/lib/regboot", false)
            .dir_state("/var/lib/regboot/registry", false);
        let changes = testing::run(&HostManifest, &inv, "h1", &fresh, true).unwrap();
        assert_eq!(
            summaries(&changes),
            ["record what regboot adds in /etc/regboot/manifest.json"]
        );
        let text = testing::written(&changes, MANIFEST).unwrap();
        let m: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(
            m.dirs_created,
            [
                "/etc/docker/certs.d",
                "/var/lib/regboot",
                "/var/lib/regboot/registry"
            ]
        );
        assert_eq!(m.image_loaded.as_deref(), Some("registry:2"));
        // The next apply: everything exists, the manifest stays as it is.
        let applied = StateBuilder::new()
            .file(MANIFEST, &text)
            .dir_state(DIR, true)
            .dir_state("/etc/docker/certs.d", true)
            .image("sha256:1");
        assert!(
            testing::run(&HostManifest, &inv, "h1", &applied, true)
                .unwrap()
                .is_empty()
        );
        // Reset: /etc/regboot, then certs.d when empty; data_dir stays (registry_data's).
        assert_eq!(
            summaries(&testing::run(&HostManifest, &inv, "h1", &applied, false).unwrap()),
            [
                "remove /etc/regboot (regboot's files, saved originals and manifest)",
                "note in /var/lib/regboot/registry which directories regboot created (for --purge-data)",
                "remove /etc/docker/certs.d when empty (regboot created it)"
            ]
        );
    }
}
