//! The CA in `/etc/docker/certs.d/<reference>/ca.crt` for every name a client may use. dockerd
//! reads certs.d on every push and pull (every `*.crt` there is a trusted CA), so no reload is
//! needed, and during a CA rotation the directory holds two CAs: `ca.crt` plus `ca-next.crt`
//! (stage 1) or `ca-previous.crt` (until stage 3).

use anyhow::Result;

use super::{CaFile, Ctx, Module, ca_files};
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint, Record};
use crate::engine::probe::{HostState, ProbeRequest};
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

    /// Every file it may place: the CA files and `also` (the other files beside them).
    pub fn paths(&self, inv: &Inventory, also: &[&str]) -> Vec<String> {
        inv.references()
            .iter()
            .flat_map(|r| self.paths_of(r, also))
            .collect()
    }

    fn paths_of(&self, reference: &str, also: &[&str]) -> Vec<String> {
        let dir = self.dir(reference);
        self.files(&[reference.to_string()])
            .into_iter()
            .map(|f| f.path)
            .chain(also.iter().map(|f| format!("{dir}/{f}")))
            .collect()
    }

    /// Its footprint: the tree's root and its parent (when missing), and every file it may
    /// place (an operator's file there is saved before regboot's replaces it).
    pub fn footprint(&self, inv: &Inventory, also: &[&str]) -> Footprint {
        let parent = self.root.rsplit_once('/').map_or("", |(p, _)| p);
        Footprint {
            dirs: vec![parent.to_string(), self.root.to_string()],
            files: self.paths(inv, also),
            ..Footprint::default()
        }
    }

    /// Per reference, the files it placed undone (removed, or the operator's original put
    /// back), then the reference's directory removed when that leaves it empty; then the
    /// directories of the tree regboot created, when empty. `rec`: the module's record.
    pub fn absent(&self, cx: &Ctx, rec: &Record, also: &[&str]) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        for r in cx.inv.references() {
            let undo = rec.undo_files(cx.state, &self.paths_of(&r, also), true)?;
            if !undo.is_empty() {
                changes.push(undo.change(Some(&self.dir(&r))));
            }
        }
        changes.extend(rec.remove_dirs(|_| false));
        Ok(changes)
    }
}

/// A module keeping a [`CaTree`] on the hosts where a runtime reads it.
pub(crate) struct CertsDModule {
    pub name: &'static str,
    pub tree: CaTree,
    /// Whether a runtime on a host with these facts reads the tree.
    pub read_by: fn(&Facts) -> bool,
    /// docker reads it: also where docker.install brings docker in this run.
    pub docker: bool,
}

/// docker's certs.d, where docker is (an lb's dockerd pulls too) or docker.install brings it;
/// a containerd-only or podman-only host (a Kubernetes node) gets none.
pub(crate) const CERTS_D: CertsDModule = CertsDModule {
    name: "certs_d",
    tree: DOCKER,
    read_by: |f| f.docker.installed,
    docker: true,
};

impl CertsDModule {
    /// Whether `host` gets the tree in this run.
    fn wanted(&self, inv: &Inventory, host: &Host, facts: &Facts) -> bool {
        (self.read_by)(facts) || (self.docker && super::docker_install::installs(inv, host, facts))
    }
}

impl Module for CertsDModule {
    fn name(&self) -> &'static str {
        self.name
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        self.tree.want(inv, &[], req);
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        if !self.wanted(cx.inv, cx.host, &cx.state.facts) {
            return Ok(Vec::new());
        }
        Ok(cx
            .inv
            .references()
            .iter()
            .flat_map(|r| self.tree.present(cx, r))
            .collect())
    }

    fn footprint(&self, inv: &Inventory, host: &Host, state: Option<&HostState>) -> Footprint {
        match state {
            Some(s) if !self.wanted(inv, host, &s.facts) => Footprint::default(),
            _ => self.tree.footprint(inv, &[]),
        }
    }

    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        self.tree.absent(cx, &footprint::recorded(cx, self)?, &[])
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

    /// A host without docker (a containerd-only or podman-only node) gets no docker certs.d,
    /// unless docker.install brings docker there in this run (never on a Kubernetes node whose
    /// entry does not ask for it).
    #[test]
    fn only_where_docker_is_or_comes() {
        use crate::facts::{Kubernetes, Runtime};
        use crate::modules::testing::{self, StateBuilder};
        let mut inv = testing::inventory("");
        let h2 = inv.hosts.iter().find(|h| h.name == "h2").unwrap().clone();
        let node = |runtime: &str, kube: bool| {
            let mut s = StateBuilder::new();
            s.0.facts.docker = Runtime::default();
            match runtime {
                "containerd" => s.0.facts.containerd.runtime.installed = true,
                _ => s.0.facts.podman.installed = true,
            }
            s.0.facts.kubernetes =
                kube.then(|| Kubernetes::from_unit("kubelet", "active", "").unwrap());
            s
        };
        let count = |inv: &Inventory, s: &StateBuilder| {
            let changes = testing::run(&CERTS_D, inv, "h2", s, true).unwrap();
            let fp = CERTS_D.footprint(inv, &h2, Some(&s.0));
            let cas = CERTS_D.ca_files(inv, Some(&s.0.facts));
            (changes.len(), fp.files.len(), cas.is_empty())
        };
        for runtime in ["containerd", "podman"] {
            assert_eq!(
                count(&inv, &node(runtime, false)),
                (0, 0, true),
                "{runtime}"
            );
        }
        inv.docker_install = true;
        let (changes, files, _) = count(&inv, &node("containerd", false));
        assert!(changes > 0 && files > 0);
        assert_eq!(count(&inv, &node("containerd", true)).0, 0);
        assert!(count(&inv, &StateBuilder::new()).0 > 0);
    }
}
