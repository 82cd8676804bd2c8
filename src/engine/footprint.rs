//! What a module adds to a host: its footprint. Each module states it (`Module::footprint`:
//! directories it may create, packages it may install, files it replaces wholesale, keys it
//! writes into JSON files, and a record of its own); before apply adds anything, the first
//! step records on the host, per module, what of it is new there (`/etc/regboot/manifest.json`,
//! with a copy of every original it replaces under `/etc/regboot/saved/`). At reset each
//! module reads its own record back and undoes exactly that, so no state directory is needed
//! and nothing the operator had is lost.
//!
//! The engine asks the probe for what a footprint needs read (`want`), so a module's `absent`
//! sees its record and the paths it names without asking for them itself.

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::change::Change;
use super::module::{Ctx, Module};
pub(crate) use super::module::{Footprint, JsonKey};
use super::packages::{self, Package};
use super::playbook::State;
use super::probe::{HostState, ProbeRequest};
use crate::diff;
use crate::host::Mode;
use crate::inventory::{Host, Inventory};

pub(crate) const DIR: &str = "/etc/regboot";
pub(crate) const MANIFEST: &str = "/etc/regboot/manifest.json";
const SAVED: &str = "/etc/regboot/saved";

/// Where the original of `path` is kept.
pub(crate) fn saved_path(path: &str) -> String {
    format!("{SAVED}{path}")
}

/// What one module added to a host, as the manifest keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs_created: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages_installed: Vec<String>,
    /// Path -> whether a file was there before (its copy is in saved/).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_replaced: BTreeMap<String, bool>,
    /// JSON file -> what regboot merged into it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, JsonRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct JsonRecord {
    /// There was no such file: reset deletes it when no other key is left.
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
    /// The value regboot wrote: reset reverts the key only while it still holds it (none: a
    /// list key, or a manifest written before regboot recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrote: Option<Value>,
    /// For list keys: the entries regboot added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<Value>,
}

impl JsonRecord {
    /// Takes out of `map` what regboot merged: entries it added to lists (`is_list`), and
    /// values it set put back as they were, unless the key no longer holds regboot's value
    /// (the operator changed it since).
    pub fn revert(&self, map: &mut Map<String, Value>, is_list: impl Fn(&str) -> bool) {
        for (key, r) in &self.keys {
            if is_list(key) {
                if let Some(Value::Array(items)) = map.get_mut(key) {
                    items.retain(|x| !r.added.contains(x));
                    if items.is_empty() && r.before.is_none() {
                        map.remove(key);
                    }
                }
                continue;
            }
            if r.wrote.as_ref().is_some_and(|w| map.get(key) != Some(w)) {
                continue;
            }
            match &r.before {
                Some(v) => map.insert(key.clone(), v.clone()),
                None => map.remove(key),
            };
        }
    }
}

/// What to do with the files a module replaced: put back from saved/, or remove.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct FileUndo {
    pub restore: Vec<String>,
    pub remove: Vec<String>,
}

/// Args: a directory to remove when empty afterwards ("" for none), then `r:PATH` (put back
/// from saved/) or `x:PATH` (remove) entries.
const UNDO_FILES: &str = r#"set -eu
d=$1; shift
for a; do
  p=${a#?:}
  case $a in
    r:*) mkdir -p -- "$(dirname -- "$p")"; cp -p -- "/etc/regboot/saved$p" "$p" ;;
    x:*) rm -f -- "$p" ;;
  esac
done
[ -z "$d" ] || rmdir -- "$d" 2>/dev/null || true"#;

impl FileUndo {
    pub fn is_empty(&self) -> bool {
        self.restore.is_empty() && self.remove.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.restore.is_empty() {
            parts.push(format!("put back the original {}", self.restore.join(" ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("remove {}", self.remove.join(" ")));
        }
        parts.join("; ")
    }

    /// The change that makes it, then removes `dir` when that leaves it empty.
    pub fn change(&self, dir: Option<&str>) -> Change {
        let mut args = vec![dir.unwrap_or_default().to_string()];
        args.extend(self.restore.iter().map(|p| format!("r:{p}")));
        args.extend(self.remove.iter().map(|p| format!("x:{p}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Change::script(self.summary(), UNDO_FILES, &args)
    }
}

impl Record {
    /// The files of `paths` undone: an original put back where the host's copy differs from
    /// it, a file regboot added removed. A file never recorded (a host set up before the
    /// manifest) is removed when `unrecorded_ours`, else left.
    pub fn undo_files(
        &self,
        state: &HostState,
        paths: &[String],
        unrecorded_ours: bool,
    ) -> Result<FileUndo> {
        let mut undo = FileUndo::default();
        for path in paths {
            let current = state.file(path);
            match self.files_replaced.get(path) {
                Some(true) => {
                    let saved = saved_path(path);
                    let Some(original) = state.file(&saved) else {
                        bail!(
                            "{MANIFEST} says {path} was kept in {saved}, which is missing: restore {path} by hand"
                        )
                    };
                    if current.is_none_or(|c| c.sha256 != original.sha256) {
                        undo.restore.push(path.clone());
                    }
                }
                Some(false) if current.is_some() => undo.remove.push(path.clone()),
                None if unrecorded_ours && current.is_some() => undo.remove.push(path.clone()),
                _ => {}
            }
        }
        Ok(undo)
    }

    /// Its packages still installed, purged (`packages`: the module's, for their commands).
    pub fn purge(&self, state: &HostState, packages: &[Package]) -> Option<Change> {
        let present: Vec<&str> = packages
            .iter()
            .filter(|p| {
                self.packages_installed.iter().any(|i| i == p.name)
                    && state.command(p.command) == Some(true)
            })
            .map(|p| p.name)
            .collect();
        (!present.is_empty()).then(|| packages::purge(&present))
    }

    /// The directories it created, deepest first, each removed when empty; `keep`: those
    /// that stay.
    pub fn remove_dirs(&self, keep: impl Fn(&str) -> bool) -> Option<Change> {
        let mut dirs: Vec<&str> = self
            .dirs_created
            .iter()
            .map(String::as_str)
            .filter(|d| !keep(d))
            .collect();
        if dirs.is_empty() {
            return None;
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        let mut args = dirs.clone();
        args.insert(0, "-");
        Some(Change::script(
            format!("remove {} when empty (regboot created it)", dirs.join(" ")),
            r#"shift; for d; do rmdir -- "$d" 2>/dev/null || true; done"#,
            &args,
        ))
    }

    /// The module's own record, as the type it wrote.
    pub fn own<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.record
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// The manifest as a host holds it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    #[serde(default)]
    modules: BTreeMap<String, Record>,
    /// A version-1 manifest (one record for the whole host, before modules kept their
    /// own): each module takes the part its footprint covers.
    #[serde(skip)]
    legacy: Option<Legacy>,
}

#[derive(Debug, Deserialize)]
struct Legacy {
    #[serde(default)]
    daemon_json: Option<JsonRecord>,
    #[serde(default)]
    dirs_created: Vec<String>,
    #[serde(default)]
    packages_installed: Vec<String>,
    #[serde(default)]
    files_replaced: BTreeMap<String, bool>,
    /// The whole object: modules read their fields of it (`image_loaded`, ...) as their record.
    #[serde(skip)]
    all: Value,
}

fn read(state: &HostState) -> Result<Manifest> {
    let Some(text) = state.text(MANIFEST) else {
        return Ok(Manifest::default());
    };
    let broken = || {
        format!(
            "{MANIFEST} cannot be read; fix or remove it (regboot reset then removes only what it finds)"
        )
    };
    let value: Value = serde_json::from_str(&text).with_context(broken)?;
    if value.get("version").and_then(Value::as_u64) == Some(1) {
        let mut legacy: Legacy = serde_json::from_value(value.clone()).with_context(broken)?;
        legacy.all = value;
        return Ok(Manifest {
            legacy: Some(legacy),
            ..Manifest::default()
        });
    }
    serde_json::from_value(value).with_context(broken)
}

impl Manifest {
    /// `name`'s record: its own, or from a version-1 manifest what `fp` (its footprint
    /// before the probe) covers.
    fn record_of(&self, name: &str, fp: &Footprint) -> Record {
        if let Some(r) = self.modules.get(name) {
            return r.clone();
        }
        let Some(l) = &self.legacy else {
            return Record::default();
        };
        let json = match (fp.keys.first(), &l.daemon_json) {
            (Some(k), Some(rec)) => BTreeMap::from([(k.file.to_string(), rec.clone())]),
            _ => BTreeMap::new(),
        };
        Record {
            dirs_created: (l.dirs_created.iter())
                .filter(|d| fp.dirs.contains(d))
                .cloned()
                .collect(),
            packages_installed: (l.packages_installed.iter())
                .filter(|p| fp.packages.iter().any(|q| q.name == p.as_str()))
                .cloned()
                .collect(),
            files_replaced: (l.files_replaced.iter())
                .filter(|(p, _)| fp.files.contains(p))
                .map(|(p, e)| (p.clone(), *e))
                .collect(),
            json,
            record: fp.record.as_ref().map(|_| l.all.clone()),
        }
    }
}

/// What `module` recorded on the host of `cx` (empty without a manifest).
pub(crate) fn recorded(cx: &Ctx, module: &dyn Module) -> Result<Record> {
    let fp = module.footprint(cx.inv, cx.host, None);
    Ok(read(cx.state)?.record_of(module.name(), &fp))
}

/// Adds to `req` what `module`'s footprint needs read in a step that converges to `to`: the
/// manifest (always for `absent`, which reads the module's record), its directories, the
/// commands of its packages, its files and JSON files with their saved copies.
pub(crate) fn want(
    module: &dyn Module,
    inv: &Inventory,
    host: &Host,
    to: State,
    req: &mut ProbeRequest,
) {
    let fp = module.footprint(inv, host, None);
    if fp.is_empty() && to == State::Present {
        return;
    }
    req.content.push(MANIFEST.into());
    for k in &fp.keys {
        req.content.extend([k.file.to_string(), saved_path(k.file)]);
    }
    req.dirs.extend(fp.dirs);
    (req.commands).extend(fp.packages.iter().map(|p| p.command.to_string()));
    for f in fp.files {
        req.hash.extend([saved_path(&f), f]);
    }
}

/// What `module` needs probed in a step that converges to `to`: its `want` and its
/// footprint's. Only the debug builds' read check needs it whole.
#[cfg(debug_assertions)]
fn request(module: &dyn Module, inv: &Inventory, host: &Host, to: State) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    module.want(inv, host, &mut req);
    want(module, inv, host, to, &mut req);
    req
}

/// `state` as `module` may read it: in debug builds reading anything its request did not ask
/// for panics (see `HostState::file`), so a module cannot depend on what another step asked.
pub(crate) fn scoped<'s>(
    state: &'s HostState,
    module: &dyn Module,
    inv: &Inventory,
    host: &Host,
    to: State,
) -> Cow<'s, HostState> {
    #[cfg(debug_assertions)]
    {
        let mut s = state.clone();
        let req = request(module, inv, host, to);
        s.asked = Some(std::sync::Arc::new((module.name(), req)));
        Cow::Owned(s)
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = (module, inv, host, to);
        Cow::Borrowed(state)
    }
}

/// Records in `rec` what `fp` adds on a host in `state` (`others`: every module's record, for
/// files another module replaced first; `earlier`: an earlier regboot placed the files this
/// record does not name, so they are its own, not originals); returns the files to save
/// before anything is replaced.
fn add(
    rec: &mut Record,
    fp: &Footprint,
    state: &HostState,
    others: &BTreeMap<String, Record>,
    earlier: bool,
) -> Vec<String> {
    let mut saves = Vec::new();
    for d in &fp.dirs {
        if state.dir(d) == Some(false) && !rec.dirs_created.contains(d) {
            rec.dirs_created.push(d.clone());
        }
    }
    for p in &fp.packages {
        let name = p.name.to_string();
        if state.command(p.command) == Some(false) && !rec.packages_installed.contains(&name) {
            rec.packages_installed.push(name);
        }
    }
    for f in &fp.files {
        if rec.files_replaced.contains_key(f) {
            continue;
        }
        let first = others.values().find_map(|r| r.files_replaced.get(f));
        let existed = first
            .copied()
            .unwrap_or_else(|| !earlier && state.file(f).is_some());
        if existed && first.is_none() {
            saves.push(f.clone());
        }
        rec.files_replaced.insert(f.clone(), existed);
    }
    for k in &fp.keys {
        let current = state.text(k.file);
        // An unparsable file stops the module's own step; nothing to record.
        let Some(map) = parse_object(current.as_deref().unwrap_or("")) else {
            continue;
        };
        let file = rec.json.entry(k.file.to_string()).or_insert_with(|| {
            if current.is_some() {
                saves.push(k.file.to_string());
            }
            JsonRecord {
                created: current.is_none(),
                saved: current.is_some(),
                keys: BTreeMap::new(),
            }
        });
        let entry = file.keys.entry(k.key.clone()).or_insert_with(|| KeyRecord {
            before: map.get(&k.key).cloned(),
            ..KeyRecord::default()
        });
        if !k.list {
            entry.wrote = Some(k.value.clone());
            continue;
        }
        let have = map.get(&k.key).and_then(Value::as_array);
        for item in k.value.as_array().into_iter().flatten() {
            if !have.is_some_and(|h| h.contains(item)) && !entry.added.contains(item) {
                entry.added.push(item.clone());
            }
        }
    }
    if rec.record.is_none() {
        rec.record = fp.record.clone();
    }
    saves
}

/// A JSON object's keys; an empty file is an empty object; `None`: not an object.
pub(crate) fn parse_object(text: &str) -> Option<Map<String, Value>> {
    if text.trim().is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
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

/// The changes that record, before apply's other steps run, what the modules of the
/// playbook's steps on this host add (their footprints, merged into one manifest): the
/// originals saved first, then the manifest, written only when something new is recorded.
pub(crate) fn record_playbook(cx: &Ctx) -> Result<Vec<Change>> {
    let old_text = cx.state.text(MANIFEST);
    let old = read(cx.state)?;
    // A version-1 manifest, or regboot's directory without one: an earlier regboot applied
    // this host without recording the files it replaced.
    let earlier = old.legacy.is_some() || (old_text.is_none() && cx.state.dir(DIR) == Some(true));
    let mut modules = old.modules.clone();
    let mut saves: Vec<String> = Vec::new();
    for &module in cx.modules {
        let state = scoped(cx.state, module, cx.inv, cx.host, State::Present);
        let fp = module.footprint(cx.inv, cx.host, Some(&state));
        let candidates = module.footprint(cx.inv, cx.host, None);
        let mut rec = old.record_of(module.name(), &candidates);
        for f in add(&mut rec, &fp, &state, &modules, earlier) {
            if !saves.contains(&f) {
                saves.push(f);
            }
        }
        if rec != Record::default() {
            modules.insert(module.name().to_string(), rec);
        }
    }
    let m = Manifest {
        version: 2,
        modules,
        legacy: None,
    };
    let mut text = serde_json::to_string_pretty(&m)?;
    text.push('\n');
    let mut changes: Vec<Change> = saves.iter().map(|p| save(p)).collect();
    if old_text.as_deref() != Some(text.as_str()) {
        let d = diff::unified(MANIFEST, old_text.as_deref().unwrap_or(""), &text);
        let mut c = Change::put_file(MANIFEST, text.into_bytes(), Mode::Set(0o600), Some(d));
        c.summary = format!("record what regboot adds in {MANIFEST}");
        changes.push(c);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder};

    /// Reads a file its want() never asked for.
    struct Sloppy;

    impl Module for Sloppy {
        fn name(&self) -> &'static str {
            "sloppy"
        }

        fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
            let _ = cx.state.text("/etc/sloppy.conf");
            Ok(Vec::new())
        }
    }

    #[test]
    #[should_panic(
        expected = "module sloppy reads the content of /etc/sloppy.conf without asking the probe for it"
    )]
    fn a_module_reading_what_it_did_not_ask_for_fails_loudly() {
        let inv = testing::inventory("");
        let state = StateBuilder::new().file("/etc/sloppy.conf", "x\n");
        let _ = testing::run(&Sloppy, &inv, "h1", &state, false);
    }

    /// The undo script on this machine: an original back, regboot's file gone, the
    /// directory left empty removed.
    #[test]
    fn undo_files_script_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        let ours = dir.join("ours");
        std::fs::write(&ours, "x").unwrap();
        let script = UNDO_FILES.replace("/etc/regboot/saved", &tmp.path().display().to_string());
        let theirs = tmp.path().join("e/theirs");
        let saved = format!("{}{}", tmp.path().display(), theirs.display());
        std::fs::create_dir_all(std::path::Path::new(&saved).parent().unwrap()).unwrap();
        std::fs::write(&saved, "original").unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &script, "sh", &dir.display().to_string()])
            .arg(format!("r:{}", theirs.display()))
            .arg(format!("x:{}", ours.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "original");
        assert!(!dir.exists());
    }

    #[test]
    fn a_key_is_reverted_only_while_it_holds_regboot_s_value() {
        let rec = JsonRecord {
            created: false,
            saved: true,
            keys: BTreeMap::from([
                (
                    "a".to_string(),
                    KeyRecord {
                        before: Some(Value::from(1)),
                        wrote: Some(Value::from(2)),
                        added: Vec::new(),
                    },
                ),
                (
                    "b".to_string(),
                    KeyRecord {
                        before: None,
                        wrote: Some(Value::from(2)),
                        added: Vec::new(),
                    },
                ),
            ]),
        };
        let revert = |text: &str| {
            let mut map = parse_object(text).unwrap();
            rec.revert(&mut map, |_| false);
            Value::Object(map)
        };
        assert_eq!(revert(r#"{"a": 2, "b": 2}"#), serde_json::json!({"a": 1}));
        assert_eq!(
            revert(r#"{"a": 3, "b": 4}"#),
            serde_json::json!({"a": 3, "b": 4})
        );
    }
}
