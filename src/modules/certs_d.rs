//! The CA in `/etc/docker/certs.d/<reference>/ca.crt` for every name a client may use. dockerd
//! reads certs.d on every push and pull (every `*.crt` there is a trusted CA), so no reload is
//! needed, and during a CA rotation the directory holds two CAs: `ca.crt` plus `ca-next.crt`
//! (stage 1) or `ca-previous.crt` (until stage 3).

use anyhow::Result;

use super::{CaFile, Ctx, Module, ca_files};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::facts::Facts;
use crate::inventory::{Host, Inventory};
use crate::pki::rotation::CaRole;

/// A certs.d-style tree: a directory per reference (as printed by `Inventory::reference`:
/// the hostname, each alias, the VIP and each registry address, with the port unless 443)
/// holding `ca.crt`, and during a CA rotation `ca-next.crt` or `ca-previous.crt`. docker,
/// containerd (beside its hosts.toml) and podman/buildah/CRI-O each read one.
pub(crate) struct CaTree {
    pub root: &'static str,
}

/// dockerd's: every `*.crt` in a reference's directory is a trusted CA.
pub(crate) const DOCKER: CaTree = CaTree {
    root: crate::trust_store::CERTS_D,
};

impl CaTree {
    pub fn dir(&self, reference: &str) -> String {
        format!("{}/{reference}", self.root)
    }

    /// The CA file for `reference`; `role`: the rotation's extra CA file instead of `ca.crt`.
    pub fn ca_path(&self, reference: &str, role: Option<CaRole>) -> String {
        let file = match role {
            None => "ca.crt".to_string(),
            Some(r) => format!("ca-{}.crt", r.suffix()),
        };
        format!("{}/{file}", self.dir(reference))
    }

    /// Every CA file regboot may keep for these references.
    fn files(&self, references: &[String]) -> Vec<CaFile> {
        references
            .iter()
            .flat_map(|r| {
                std::iter::once(None)
                    .chain(CaRole::ALL.map(Some))
                    .map(|role| CaFile {
                        path: self.ca_path(r, role),
                        role,
                    })
            })
            .collect()
    }

    pub fn ca_files(&self, inv: &Inventory) -> Vec<CaFile> {
        self.files(&inv.references())
    }

    /// Asks the probe for every CA file (and `also`, the other files regboot keeps beside
    /// them) with content, for diffs.
    pub fn want(&self, inv: &Inventory, also: &[&str], req: &mut ProbeRequest) {
        for r in inv.references() {
            req.content.extend(
                self.files(std::slice::from_ref(&r))
                    .into_iter()
                    .map(|f| f.path),
            );
            req.content
                .extend(also.iter().map(|f| format!("{}/{f}", self.dir(&r))));
        }
    }

    /// The CA files of `reference` as wanted, in a never-untrusting order (see `ca_files`).
    pub fn present(&self, cx: &Ctx, reference: &str) -> Vec<Change> {
        match &cx.material.tls {
            Some(tls) => ca_files(cx.state, tls, |role| self.ca_path(reference, role)),
            None => Vec::new(),
        }
    }

    /// Every file it may have placed (the CA files and `also`), then each reference's
    /// directory when regboot's files were all it held (`rmdir` leaves a directory with
    /// anything else in it).
    pub fn absent(&self, cx: &Ctx, also: &[&str]) -> Vec<Change> {
        let mut changes = Vec::new();
        for r in cx.inv.references() {
            let dir = self.dir(&r);
            let placed: Vec<String> = self
                .files(std::slice::from_ref(&r))
                .into_iter()
                .map(|f| f.path)
                .chain(also.iter().map(|f| format!("{dir}/{f}")))
                .filter(|p| cx.state.files.get(p).is_some_and(Option::is_some))
                .collect();
            if placed.is_empty() {
                continue;
            }
            let mut args = vec![dir.as_str()];
            args.extend(placed.iter().map(String::as_str));
            changes.push(Change::script(
                format!("remove {}", placed.join(" ")),
                r#"d=$1; shift; rm -f -- "$@" && { rmdir -- "$d" 2>/dev/null || true; }"#,
                &args,
            ));
        }
        changes
    }
}

/// A module keeping a [`CaTree`] on the hosts where a runtime reads it.
pub(crate) struct CertsDModule {
    pub name: &'static str,
    pub tree: CaTree,
    /// Whether a runtime on a host with these facts reads the tree.
    pub read_by: fn(&Facts) -> bool,
}

/// docker's certs.d, on every host (an lb's dockerd pulls too, and docker.install may add one).
pub(crate) const CERTS_D: CertsDModule = CertsDModule {
    name: "certs_d",
    tree: DOCKER,
    read_by: |_| true,
};

impl Module for CertsDModule {
    fn name(&self) -> &'static str {
        self.name
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        self.tree.want(inv, &[], req);
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if !(self.read_by)(&cx.state.facts) {
            return Ok(Vec::new());
        }
        Ok(cx
            .inv
            .references()
            .iter()
            .flat_map(|r| self.tree.present(cx, r))
            .collect())
    }

    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        Ok(self.tree.absent(cx, &[]))
    }

    fn ca_files(&self, inv: &Inventory, facts: Option<&Facts>) -> Vec<CaFile> {
        match facts {
            Some(f) if !(self.read_by)(f) => Vec::new(),
            _ => self.tree.ca_files(inv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_per_role() {
        assert_eq!(
            DOCKER.ca_path("registry.lab:5000", None),
            "/etc/docker/certs.d/registry.lab:5000/ca.crt"
        );
        assert_eq!(
            DOCKER.ca_path("registry.lab:5000", Some(CaRole::Previous)),
            "/etc/docker/certs.d/registry.lab:5000/ca-previous.crt"
        );
        assert_eq!(DOCKER.files(&["a".into()]).len(), 3);
    }

    #[test]
    fn present_and_absent() {
        use crate::modules::testing::{self, StateBuilder, summaries};
        let inv = testing::inventory("");
        let refs = inv.references();
        let dir = |r: &str| format!("/etc/docker/certs.d/{r}");
        let run = |state: &StateBuilder, present| {
            summaries(&testing::run(&CERTS_D, &inv, "h2", state, present).unwrap())
        };
        // Fresh host: every reference gets ca.crt; nothing to remove.
        let fresh = StateBuilder::new();
        let want: Vec<String> = refs
            .iter()
            .map(|r| format!("write {}/ca.crt", dir(r)))
            .collect();
        assert_eq!(run(&fresh, true), want);
        assert!(run(&fresh, false).is_empty());
        // Converged host: nothing to write; absent removes each file, then its directory.
        let mut converged = StateBuilder::new();
        for r in &refs {
            converged = converged.file(&DOCKER.ca_path(r, None), "CA\n");
        }
        assert!(run(&converged, true).is_empty());
        let removals: Vec<String> = refs
            .iter()
            .map(|r| format!("remove {}/ca.crt", dir(r)))
            .collect();
        assert_eq!(run(&converged, false), removals);
        // A leftover of a rotation goes with absent too, and with present once unwanted.
        let leftover = StateBuilder::new()
            .file(&DOCKER.ca_path(&refs[0], None), "CA\n")
            .file(&DOCKER.ca_path(&refs[0], Some(CaRole::Next)), "NEXT\n");
        assert_eq!(
            run(&leftover, false)[0],
            format!("remove {0}/ca.crt {0}/ca-next.crt", dir(&refs[0]))
        );
        assert!(run(&leftover, true).contains(&format!("remove {}/ca-next.crt", dir(&refs[0]))));
    }
}
