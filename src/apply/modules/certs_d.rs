//! The CA in `/etc/docker/certs.d/<reference>/ca.crt` for every name a client may use. dockerd
//! reads certs.d on every push and pull, so no reload is needed.

use super::{Ctx, Want, file_change};
use crate::apply::change::Change;

/// The certs.d CA file for `reference` (as printed by `Inventory::reference`).
pub fn ca_path(reference: &str) -> String {
    format!("{}/{reference}/ca.crt", crate::trust_store::CERTS_D)
}

fn paths(references: Vec<String>) -> Vec<String> {
    references.iter().map(|r| ca_path(r)).collect()
}

pub fn want(w: &mut Want) {
    w.req.content.extend(paths(w.inv.references()));
}

pub fn check(ctx: &Ctx) -> Vec<Change> {
    let Some(tls) = &ctx.material.tls else {
        return Vec::new();
    };
    paths(ctx.inv.references())
        .iter()
        .filter_map(|p| file_change(ctx.state, p, tls.ca_pem.as_bytes(), 0o644, false))
        .collect()
}
