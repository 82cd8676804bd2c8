//! The registry's data (`registry.data_dir` on registry hosts, filesystem storage): only ever
//! removed, by `regboot reset --purge-data`. A data_dir regboot created goes with its parents
//! that regboot created (when empty); one that existed before loses only the registry's tree
//! (`docker/` inside it).

use anyhow::Result;

use super::{Ctx, Module, host_manifest};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory};

/// The note a reset that kept the data leaves in data_dir.
fn note(inv: &Inventory) -> String {
    format!(
        "{}/{}",
        inv.registry.data_dir.trim_end_matches('/'),
        host_manifest::DATA_NOTE
    )
}

pub(crate) struct RegistryData;

impl Module for RegistryData {
    fn name(&self) -> &'static str {
        "registry_data"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.dirs.push(inv.registry.data_dir.clone());
        req.content.push(host_manifest::MANIFEST.into());
        req.content.push(note(inv));
    }

    /// Nothing to converge: apply's registry container creates data_dir.
    fn present(&self, _cx: &Ctx) -> Result<Vec<Change>> {
        Ok(Vec::new())
    }

    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let data = cx.inv.registry.data_dir.trim_end_matches('/');
        if cx.state.dirs.get(&cx.inv.registry.data_dir) != Some(&true) {
            return Ok(Vec::new());
        }
        // Created dirs: from the manifest, or (a reset kept the data) the note in data_dir.
        let mut created = host_manifest::read(cx.state)?
            .unwrap_or_default()
            .dirs_created;
        if let Some(text) = cx.state.text(&note(cx.inv)) {
            created.extend(text.lines().map(String::from));
        }
        if !created.iter().any(|d| d == data) {
            let tree = format!("{data}/docker");
            return Ok(vec![Change::script(
                format!("DELETE the registry's data {tree} (--purge-data)"),
                r#"rm -rf -- "$1""#,
                &[&tree],
            )]);
        }
        // data_dir and the parents regboot created, deepest first.
        let mut dirs: Vec<&str> = created
            .iter()
            .map(String::as_str)
            .filter(|d| std::path::Path::new(data).starts_with(d) && *d != data)
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        let mut args = vec![data];
        args.extend(dirs);
        Ok(vec![Change::script(
            format!("DELETE the registry's data {data} (--purge-data)"),
            r#"rm -rf -- "$1"; shift; for d; do rmdir -- "$d" 2>/dev/null || true; done"#,
            &args,
        )])
    }
}
