//! The smoke test's own registry user: its password kept in the state directory.

use crate::inventory::{Inventory, SMOKE_USER};
use crate::material::{self, Material};
use crate::pki::{self, StateDir};

/// The smoke test's login: [`SMOKE_USER`] and its password, made by the first apply (the
/// registry's htpasswd holds it; `registry_config`); `None` without users (no auth). In check
/// mode a missing password is made up and not stored; verify needs the stored one.
pub(crate) fn login(
    inv: &Inventory,
    state: &StateDir,
    check: bool,
) -> anyhow::Result<Option<(String, String)>> {
    if inv.registry.users.is_empty() {
        return Ok(None);
    }
    let password = match state.read_secret(pki::state::SMOKE_PASSWORD)? {
        Some(password) => password,
        None if state.is_read_only() => {
            return Err(material::missing(state, pki::state::SMOKE_PASSWORD));
        }
        None if check => hex::encode(rand::random::<[u8; 32]>()),
        None => state.smoke_password()?,
    };
    Ok(Some((SMOKE_USER.to_string(), password)))
}

/// The login this run's smoke test prepared (see [`login`]).
pub(super) fn of(material: &Material) -> Option<(String, String)> {
    let prepared = material.prepared::<Option<(String, String)>>("smoke_test");
    prepared.cloned().flatten()
}
