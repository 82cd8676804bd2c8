//! The registry's data (`registry.data_dir` on registry hosts, filesystem storage): only ever
//! removed, by `regboot reset --purge-data`, and then only distribution's own tree
//! (`docker/registry` in data_dir, where the container's `/var/lib/registry` mount puts it);
//! the directories regboot created for data_dir go after it when that leaves them empty.
//! Anything else an operator keeps in data_dir stays.

use std::path::{Component, Path};

use anyhow::{Result, bail};

use super::registry_container::RegistryContainer;
use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::footprint;
use crate::engine::playbook::State;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory, Storage};

/// The note a reset that kept the data leaves in data_dir (see `registry_container`).
const NOTE: &str = ".regboot-created-dirs";

/// Where distribution keeps its data under its root directory.
const TREE: &str = "docker/registry";

/// Directories the operating system owns, with everything inside them.
const SYSTEM: [&str; 12] = [
    "/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/run", "/bin", "/sbin", "/lib", "/lib64",
    "/root",
];

/// The container engines' stores, with everything inside them.
const ENGINES: [&str; 3] = [
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
];

fn note(inv: &Inventory) -> String {
    format!("{}/{NOTE}", inv.registry.data_dir.trim_end_matches('/'))
}

/// Why `reset --purge-data` must not run with this inventory (`limited`: under `--limit`),
/// if it must not.
pub(crate) fn purge_refusal(inv: &Inventory, limited: bool) -> Option<String> {
    let data = inv.registry.data_dir.trim_end_matches('/');
    let path = Path::new(data);
    let within = |dirs: &[&str]| dirs.iter().any(|d| path.starts_with(d));
    let data_root = inv.daemon_json.get("data-root").and_then(|v| v.as_str());
    let why = if path.components().any(|c| c == Component::ParentDir) {
        Some("it contains `..`".to_string())
    } else if path.components().count() <= 2 {
        Some("it is / or a top-level directory, where other services keep their data too".into())
    } else if within(&SYSTEM) {
        Some("it is the operating system's".into())
    } else if path.components().count() == 3 && path.starts_with("/var") {
        Some("it is a system directory that holds every package's data (/var/...)".into())
    } else if within(&ENGINES) || data_root.is_some_and(|r| path.starts_with(r)) {
        Some("it is inside a container engine's store".into())
    } else {
        None
    };
    if let Some(why) = why {
        return Some(format!(
            "registry.data_dir {data:?} is not a directory --purge-data deletes from: {why}. \
             Nothing was changed; remove the registry's data ({data}/{TREE}) by hand, and give \
             the registry a directory of its own (e.g. /var/lib/regboot/registry)"
        ));
    }
    let shared = match &inv.registry.storage {
        Storage::Filesystem { shared } => shared.then_some("data_dir is shared storage"),
        Storage::S3(_) => Some("the registry stores in S3"),
        Storage::Oss(_) => Some("the registry stores in OSS"),
    };
    match shared {
        Some(kind) if limited => Some(format!(
            "--purge-data with --limit: {kind}, which every replica serves, so deleting it for \
             some hosts deletes it for all. Nothing was changed; run reset without --limit to \
             delete the data everywhere, or without --purge-data to keep it"
        )),
        _ => None,
    }
}

pub(crate) struct RegistryData;

impl Module for RegistryData {
    fn name(&self) -> &'static str {
        "registry_data"
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        req.dirs.push(inv.registry.data_dir.clone());
        req.content.push(note(inv));
        // The directories regboot created for data_dir are the registry container's record.
        footprint::want(&RegistryContainer, inv, host, State::Absent, req);
    }

    /// Nothing to converge: apply's registry container creates data_dir.
    fn present(&self, _cx: &Ctx) -> Result<Vec<Change>> {
        Ok(Vec::new())
    }

    /// distribution's tree, then the directories regboot created for data_dir (deepest
    /// first, data_dir itself among them when regboot created it), each when empty.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if let Some(why) = purge_refusal(cx.inv, false) {
            bail!(why);
        }
        let data = cx.inv.registry.data_dir.trim_end_matches('/');
        if cx.state.dir(&cx.inv.registry.data_dir) != Some(true) {
            return Ok(Vec::new());
        }
        // From the manifest, or (a reset kept the data) the note in data_dir.
        let mut created = footprint::recorded(cx, &RegistryContainer)?.dirs_created;
        if let Some(text) = cx.state.text(&note(cx.inv)) {
            created.extend(text.lines().map(String::from));
        }
        let mut dirs: Vec<String> = created
            .into_iter()
            .filter(|d| Path::new(data).starts_with(d))
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        let tree = format!("{data}/{TREE}");
        let mut summary = format!("DELETE the registry's data {tree} (--purge-data)");
        if !dirs.is_empty() {
            summary.push_str(&format!(
                "; remove {} when empty (regboot created it)",
                dirs.join(" ")
            ));
        }
        let mut args = vec![data.to_string(), tree];
        args.extend(dirs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(vec![Change::script(
            summary,
            r#"data=$1; rm -rf -- "$2"; rmdir -- "$data/docker" 2>/dev/null || true
rm -f -- "$data/.regboot-created-dirs"; shift 2
for d; do rmdir -- "$d" 2>/dev/null || true; done"#,
            &args,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn system_and_engine_directories_are_refused() {
        let refused = |dir: &str| {
            let mut inv = testing::inventory("");
            inv.registry.data_dir = dir.into();
            purge_refusal(&inv, false)
        };
        for (dir, why) in [
            ("/", "top-level"),
            ("/srv", "top-level"),
            ("/srv/", "top-level"),
            ("/var", "top-level"),
            ("/var/lib", "every package's data"),
            ("/var/lib/docker", "container engine's store"),
            ("/var/lib/docker/volumes/x", "container engine's store"),
            ("/var/lib/containerd", "container engine's store"),
            ("/etc/registry", "operating system's"),
            ("/usr/share/registry", "operating system's"),
            ("/var/lib/regboot/../docker", "`..`"),
        ] {
            let got = refused(dir).unwrap_or_default();
            assert!(got.contains(why), "{dir}: {got}");
        }
        for dir in [
            "/var/lib/regboot/registry",
            "/srv/registry",
            "/data/registry",
        ] {
            assert_eq!(refused(dir), None, "{dir}");
        }
        // The engine's own data-root, as the inventory sets it.
        let mut inv = testing::inventory("  data_dir: /srv/docker/registry\n");
        inv.daemon_json
            .insert("data-root".into(), serde_json::json!("/srv/docker"));
        let got = purge_refusal(&inv, false).unwrap_or_default();
        assert!(got.contains("container engine's store"), "{got}");
    }

    #[test]
    fn shared_storage_is_never_purged_for_some_hosts() {
        let local = testing::inventory("");
        assert_eq!(purge_refusal(&local, true), None);
        let shared = testing::inventory("  storage: { driver: filesystem, shared: true }\n");
        assert_eq!(purge_refusal(&shared, false), None);
        let got = purge_refusal(&shared, true).unwrap_or_default();
        assert!(got.contains("--limit") && got.contains("shared"), "{got}");
    }

    #[test]
    fn only_distribution_s_tree_is_deleted() {
        let inv = testing::inventory("");
        let data = "/var/lib/regboot/registry";
        let state = StateBuilder::new()
            .dir_state(data, true)
            .file(&note(&inv), "/var/lib/regboot\n/var/lib/regboot/registry\n");
        let changes = testing::run(&RegistryData, &inv, "h1", &state, false).unwrap();
        assert_eq!(
            summaries(&changes),
            [format!(
                "DELETE the registry's data {data}/docker/registry (--purge-data); remove \
                 {data} /var/lib/regboot when empty (regboot created it)"
            )]
        );
        // A data_dir the operator made: the tree only.
        let theirs = StateBuilder::new().dir_state(data, true);
        let changes = testing::run(&RegistryData, &inv, "h1", &theirs, false).unwrap();
        assert_eq!(
            summaries(&changes),
            [format!(
                "DELETE the registry's data {data}/docker/registry (--purge-data)"
            )]
        );
    }
}
