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

/// The certs.d CA file for `reference` (as printed by `Inventory::reference`); `role`: the
/// rotation's extra CA file instead of `ca.crt`.
pub(crate) fn ca_path(reference: &str, role: Option<CaRole>) -> String {
    let file = match role {
        None => "ca.crt".to_string(),
        Some(r) => format!("ca-{}.crt", r.suffix()),
    };
    format!("{}/{reference}/{file}", crate::trust_store::CERTS_D)
}

/// Every CA file regboot may keep for these references.
fn files(references: &[String]) -> Vec<CaFile> {
    references
        .iter()
        .flat_map(|r| {
            std::iter::once(None)
                .chain(CaRole::ALL.map(Some))
                .map(|role| CaFile {
                    path: ca_path(r, role),
                    role,
                })
        })
        .collect()
}

pub(crate) struct CertsD;

impl Module for CertsD {
    fn name(&self) -> &'static str {
        "certs_d"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content
            .extend(files(&inv.references()).into_iter().map(|f| f.path));
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let Some(tls) = &cx.material.tls else {
            return Ok(Vec::new());
        };
        Ok(cx
            .inv
            .references()
            .iter()
            .flat_map(|r| ca_files(cx.state, tls, |role| ca_path(r, role)))
            .collect())
    }

    /// Every CA file it may have placed, then each reference's directory when regboot's
    /// files were all it held (`rmdir` leaves a directory with anything else in it).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let mut changes = Vec::new();
        for r in cx.inv.references() {
            let placed: Vec<String> = files(std::slice::from_ref(&r))
                .into_iter()
                .filter(|f| cx.state.files.get(&f.path).is_some_and(Option::is_some))
                .map(|f| f.path)
                .collect();
            if placed.is_empty() {
                continue;
            }
            let dir = format!("{}/{r}", crate::trust_store::CERTS_D);
            let mut args = vec![dir.as_str()];
            args.extend(placed.iter().map(String::as_str));
            changes.push(Change::script(
                format!("remove {}", placed.join(" ")),
                r#"d=$1; shift; rm -f -- "$@" && { rmdir -- "$d" 2>/dev/null || true; }"#,
                &args,
            ));
        }
        Ok(changes)
    }

    fn ca_files(&self, inv: &Inventory, _facts: Option<&Facts>) -> Vec<CaFile> {
        files(&inv.references())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_per_role() {
        assert_eq!(
            ca_path("registry.lab:5000", None),
            "/etc/docker/certs.d/registry.lab:5000/ca.crt"
        );
        assert_eq!(
            ca_path("registry.lab:5000", Some(CaRole::Previous)),
            "/etc/docker/certs.d/registry.lab:5000/ca-previous.crt"
        );
        assert_eq!(files(&["a".into()]).len(), 3);
    }

    #[test]
    fn present_and_absent() {
        use crate::modules::testing::{self, StateBuilder, summaries};
        let inv = testing::inventory("");
        let refs = inv.references();
        let dir = |r: &str| format!("/etc/docker/certs.d/{r}");
        let run = |state: &StateBuilder, present| {
            summaries(&testing::run(&CertsD, &inv, "h2", state, present).unwrap())
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
            converged = converged.file(&ca_path(r, None), "CA\n");
        }
        assert!(run(&converged, true).is_empty());
        let removals: Vec<String> = refs
            .iter()
            .map(|r| format!("remove {}/ca.crt", dir(r)))
            .collect();
        assert_eq!(run(&converged, false), removals);
        // A leftover of a rotation goes with absent too, and with present once unwanted.
        let leftover = StateBuilder::new()
            .file(&ca_path(&refs[0], None), "CA\n")
            .file(&ca_path(&refs[0], Some(CaRole::Next)), "NEXT\n");
        assert_eq!(
            run(&leftover, false)[0],
            format!("remove {0}/ca.crt {0}/ca-next.crt", dir(&refs[0]))
        );
        assert!(run(&leftover, true).contains(&format!("remove {}/ca-next.crt", dir(&refs[0]))));
    }
}
