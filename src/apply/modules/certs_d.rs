//! The CA in `/etc/docker/certs.d/<reference>/ca.crt` for every name a client may use. dockerd
//! reads certs.d on every push and pull (every `*.crt` there is a trusted CA), so no reload is
//! needed, and during a CA rotation the directory holds two CAs: `ca.crt` plus `ca-next.crt`
//! (stage 1) or `ca-previous.crt` (until stage 3).

use super::{Ctx, Want, ca_files};
use crate::apply::change::Change;
use crate::pki::rotation::CaRole;

/// The certs.d CA file for `reference` (as printed by `Inventory::reference`); `role`: the
/// rotation's extra CA file instead of `ca.crt`.
pub fn ca_path(reference: &str, role: Option<CaRole>) -> String {
    let file = match role {
        None => "ca.crt".to_string(),
        Some(r) => format!("ca-{}.crt", r.suffix()),
    };
    format!("{}/{reference}/{file}", crate::trust_store::CERTS_D)
}

/// Every CA file path regboot may keep for these references.
pub fn all_paths(references: &[String]) -> Vec<String> {
    references
        .iter()
        .flat_map(|r| {
            std::iter::once(ca_path(r, None))
                .chain(CaRole::ALL.iter().map(|role| ca_path(r, Some(*role))))
        })
        .collect()
}

pub fn want(w: &mut Want) {
    w.req.content.extend(all_paths(&w.inv.references()));
}

pub fn check(ctx: &Ctx) -> Vec<Change> {
    let Some(tls) = &ctx.material.tls else {
        return Vec::new();
    };
    ctx.inv
        .references()
        .iter()
        .flat_map(|r| ca_files(ctx.state, tls, |role| ca_path(r, role)))
        .collect()
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
        assert_eq!(all_paths(&["a".into()]).len(), 3);
    }
}
