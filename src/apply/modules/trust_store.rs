//! The CA in the OS trust store (for curl, skopeo, containerd, podman), and the update
//! command run only when a file changed. During a CA rotation the store holds a second
//! anchor beside `regboot-ca.crt`: `regboot-ca-next.crt` or `regboot-ca-previous.crt`.

use anyhow::{Result, bail};

use super::{Ctx, Want, ca_files};
use crate::apply::change::Change;
use crate::pki::rotation::CaRole;
use crate::trust_store::{OsFamily, TrustStore};

pub const OS_RELEASE: &str = "/etc/os-release";

/// Every anchor path we might write, since the family is only known after the probe.
const ANCHORS: [OsFamily; 5] = [
    OsFamily::Debian,
    OsFamily::Rhel,
    OsFamily::Suse,
    OsFamily::Arch,
    OsFamily::Alpine,
];

/// The anchor file for the current CA (`None`) or a rotation's extra CA.
pub fn anchor(store: &TrustStore, role: Option<CaRole>) -> String {
    match role {
        None => store.anchor_path.to_string(),
        Some(r) => store
            .anchor_path
            .replace("regboot-ca.crt", &format!("regboot-ca-{}.crt", r.suffix())),
    }
}

/// Every anchor path regboot may keep, for every OS family (the family is only known after
/// the probe).
pub fn all_anchors() -> Vec<String> {
    let mut paths = Vec::new();
    for f in ANCHORS {
        let store = f.trust_store();
        for role in std::iter::once(None).chain(CaRole::ALL.map(Some)) {
            let path = anchor(&store, role);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

pub fn want(w: &mut Want) {
    w.req.content.push(OS_RELEASE.into());
    for path in all_anchors() {
        if !w.req.content.contains(&path) {
            w.req.content.push(path);
        }
    }
}

/// The OS family from a probed /etc/os-release.
pub fn family_of(state: &crate::apply::probe::HostState) -> Option<OsFamily> {
    OsFamily::from_os_release(&state.text(OS_RELEASE).unwrap_or_default())
}

/// The host's trust store, from its /etc/os-release.
pub fn store_of(ctx: &Ctx) -> Result<TrustStore> {
    match family_of(ctx.state) {
        Some(family) => Ok(family.trust_store()),
        None => bail!(
            "cannot tell the OS family from {OS_RELEASE} (supported: Debian/Ubuntu, RHEL family, \
             SUSE, Arch, Alpine); add the CA to this host's trust store by hand"
        ),
    }
}

pub fn check(ctx: &Ctx) -> Result<Vec<Change>> {
    let Some(tls) = &ctx.material.tls else {
        return Ok(Vec::new());
    };
    let store = store_of(ctx)?;
    let mut changes = ca_files(ctx.state, tls, |role| anchor(&store, role));
    if changes.is_empty() {
        return Ok(changes);
    }
    let update = store.update_command.join(" ");
    changes.push(Change::script(format!("run {update}"), &update, &[]));
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_anchors_sit_beside_the_main_one() {
        let store = OsFamily::Rhel.trust_store();
        assert_eq!(
            anchor(&store, Some(CaRole::Next)),
            "/etc/pki/ca-trust/source/anchors/regboot-ca-next.crt"
        );
        // Debian and Alpine share a path: listed once.
        assert_eq!(all_anchors().len(), 4 * 3);
    }
}
