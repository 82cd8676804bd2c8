//! `/etc/regboot/manifest.json`: what regboot adds to a host, recorded on the host itself
//! before `apply` adds it, so `regboot reset` removes exactly that (and restores what it
//! replaced) without the state directory. Each module states its own footprint
//! (`Module::footprint`) and undoes it in its `absent`; this step only writes them, merged
//! (`engine::footprint::record_playbook`), and in `reset`, last, removes `/etc/regboot`
//! (regboot's registry files, the saved originals and the manifest).
//!
//! The step runs first in `apply` and writes only when something new is recorded, so a second
//! apply changes nothing. Hosts set up before the manifest existed get one on their next
//! apply, which then records regboot's own values as the "before" values: reset removes
//! regboot's files, block and container there, but leaves daemon.json keys as they are (and,
//! on an agent, which had no /etc/regboot to show regboot's earlier visit, puts back the CA
//! files and hosts.toml it found as originals). A version-1 manifest (one record for the
//! host) is read by each module for its part and rewritten per module at the next apply.

use anyhow::Result;

use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::footprint::{self, DIR, MANIFEST};
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory};

pub(crate) struct HostManifest;

impl Module for HostManifest {
    fn name(&self) -> &'static str {
        "host_manifest"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content.push(MANIFEST.into());
        req.dirs.push(DIR.into());
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        footprint::record_playbook(cx)
    }

    /// `/etc/regboot` goes; the modules before this step undid the rest.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if cx.state.dir(DIR) != Some(true) {
            return Ok(Vec::new());
        }
        Ok(vec![Change::script(
            format!("remove {DIR} (regboot's files, saved originals and manifest)"),
            r#"rm -rf -- "$1""#,
            &[DIR],
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::footprint::Record;
    use crate::modules::testing::{self, StateBuilder, summaries};
    use std::collections::BTreeMap;

    /// The manifest's records, per module, as `changes` write them.
    fn records(changes: &[Change]) -> BTreeMap<String, Record> {
        let text = testing::written(changes, MANIFEST).expect("the manifest is written");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 2);
        serde_json::from_value(v["modules"].clone()).unwrap()
    }

    #[test]
    fn apply_records_each_module_s_footprint_once() {
        let inv = testing::inventory("");
        let apply = crate::playbooks::apply().unwrap();
        let run = |state: &StateBuilder| {
            testing::run_in(
                &HostManifest,
                &inv,
                "h1",
                state,
                &testing::material(),
                true,
                &apply,
            )
            .unwrap()
        };
        let fresh = StateBuilder::new()
            .dir_state(DIR, false)
            .dir_state("/etc/docker", true)
            .dir_state("/etc/docker/certs.d", false)
            .dir_state("/var/lib/regboot", false)
            .dir_state("/var/lib/regboot/registry", false)
            .command("nginx", false)
            .file("/etc/nginx/nginx.conf", "the operator's\n");
        let changes = run(&fresh);
        assert_eq!(
            summaries(&changes),
            [
                "keep the original /etc/nginx/nginx.conf in /etc/regboot/saved/etc/nginx/nginx.conf",
                "record what regboot adds in /etc/regboot/manifest.json"
            ]
        );
        let m = records(&changes);
        assert_eq!(m["certs_d"].dirs_created, ["/etc/docker/certs.d"]);
        let ca = format!("/etc/docker/certs.d/{}/ca.crt", inv.references()[0]);
        assert_eq!(m["certs_d"].files_replaced.get(&ca), Some(&false));
        assert_eq!(
            m["registry_container"].dirs_created,
            ["/var/lib/regboot", "/var/lib/regboot/registry"]
        );
        assert_eq!(m["registry_front"].packages_installed, ["nginx"]);
        assert_eq!(
            m["registry_front"]
                .files_replaced
                .get("/etc/nginx/nginx.conf"),
            Some(&true)
        );
        assert_eq!(
            m["registry_image"].record,
            Some(serde_json::json!({"image_loaded": "registry:2"}))
        );
        // The next apply: everything exists, the manifest stays as it is.
        let text = testing::written(&changes, MANIFEST).unwrap();
        let applied = StateBuilder::new()
            .file(MANIFEST, &text)
            .dir_state(DIR, true)
            .dir_state("/etc/docker/certs.d", true)
            .command("nginx", true)
            .file("/etc/nginx/nginx.conf", "regboot's\n")
            .image("sha256:1");
        assert!(run(&applied).is_empty(), "{:?}", summaries(&run(&applied)));
        // Reset: this step removes /etc/regboot only.
        assert_eq!(
            summaries(&testing::run(&HostManifest, &inv, "h1", &applied, false).unwrap()),
            ["remove /etc/regboot (regboot's files, saved originals and manifest)"]
        );
    }

    /// A manifest written by regboot before modules kept their own records (version 1) is
    /// read by each module for its part.
    #[test]
    fn a_version_1_manifest_still_undoes() {
        let inv = testing::inventory("");
        let v1 = r#"{"version": 1, "dirs_created": ["/etc/docker/certs.d", "/var/lib/regboot"],
            "packages_installed": ["nginx"], "files_replaced": {"/etc/nginx/nginx.conf": false},
            "image_loaded": "registry:2"}"#;
        let state = StateBuilder::new()
            .file(MANIFEST, v1)
            .command("nginx", true)
            .file("/etc/nginx/nginx.conf", "regboot's\n")
            .image("sha256:1");
        let run = |m: &dyn Module| summaries(&testing::run(m, &inv, "h1", &state, false).unwrap());
        assert_eq!(
            run(&crate::modules::registry_front::RegistryFront),
            [
                "stop nginx and remove /etc/nginx/nginx.conf (regboot wrote it)",
                "remove packages nginx (regboot installed them)"
            ]
        );
        assert_eq!(
            run(&crate::modules::registry_image::RegistryImage),
            ["remove image registry:2 (regboot brought it; kept if another container uses it)"]
        );
        assert_eq!(
            run(&crate::modules::certs_d::CERTS_D),
            ["remove /etc/docker/certs.d when empty (regboot created it)"]
        );
    }

    /// The next apply on a host with a version-1 manifest: the CA files found are the earlier
    /// regboot's (recorded as its own, not saved as originals), and the nginx.conf original
    /// the old manifest recorded stays recorded.
    #[test]
    fn a_version_1_manifest_is_rewritten_per_module() {
        let inv = testing::inventory("");
        let apply = crate::playbooks::apply().unwrap();
        let ca = format!("/etc/docker/certs.d/{}/ca.crt", inv.references()[0]);
        let v1 = r#"{"version": 1, "files_replaced": {"/etc/nginx/nginx.conf": true}}"#;
        let state = StateBuilder::new()
            .file(MANIFEST, v1)
            .dir_state(DIR, true)
            .file(&ca, "CA\n")
            .command("nginx", true)
            .image("sha256:1");
        let changes = testing::run_in(
            &HostManifest,
            &inv,
            "h1",
            &state,
            &testing::material(),
            true,
            &apply,
        )
        .unwrap();
        assert_eq!(
            summaries(&changes),
            ["record what regboot adds in /etc/regboot/manifest.json"]
        );
        let m = records(&changes);
        assert_eq!(m["certs_d"].files_replaced.get(&ca), Some(&false));
        assert_eq!(
            m["registry_front"]
                .files_replaced
                .get("/etc/nginx/nginx.conf"),
            Some(&true)
        );
    }
}
