//! The CA in the OS trust store (for curl, skopeo, containerd, podman), and the update
//! command run only when the file changed.

use anyhow::{Result, bail};

use super::{Ctx, Want, file_change};
use crate::apply::change::Change;
use crate::trust_store::{OsFamily, TrustStore};

const OS_RELEASE: &str = "/etc/os-release";

/// Every anchor path we might write, since the family is only known after the probe.
const ANCHORS: [OsFamily; 5] = [
    OsFamily::Debian,
    OsFamily::Rhel,
    OsFamily::Suse,
    OsFamily::Arch,
    OsFamily::Alpine,
];

pub fn want(w: &mut Want) {
    w.req.content.push(OS_RELEASE.into());
    for f in ANCHORS {
        let path = f.trust_store().anchor_path.to_string();
        if !w.req.hash.contains(&path) {
            w.req.hash.push(path);
        }
    }
}

/// The host's trust store, from its /etc/os-release.
pub fn store_of(ctx: &Ctx) -> Result<TrustStore> {
    let text = ctx.state.text(OS_RELEASE).unwrap_or_default();
    match OsFamily::from_os_release(&text) {
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
    let Some(write) = file_change(
        ctx.state,
        store.anchor_path,
        tls.ca_pem.as_bytes(),
        0o644,
        false,
    ) else {
        return Ok(Vec::new());
    };
    let update = store.update_command.join(" ");
    Ok(vec![
        write,
        Change::script(format!("run {update}"), &update, &[]),
    ])
}
