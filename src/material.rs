//! What a run computes locally before it touches a host: the CA and the registry
//! certificate (from the state directory), and what the playbook's modules prepared for the
//! run (`Module::prepare`: the registry's users and config.yml, the smoke test's login).
//! Modules read from this; none of it is printed. A read-only state directory (`verify`) is
//! only read: what is missing is an error.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Result, bail};
use time::OffsetDateTime;

use crate::inventory::{Inventory, TlsMode};
use crate::pki::rotation::{self, CaRole};
use crate::pki::{self, StateDir};
use crate::tls_setup as setup;

/// The TLS files the registry serves and clients trust; `None` in tls.mode insecure.
pub struct Tls {
    pub ca_pem: String,
    /// Leaf then CA (or the provided chain).
    pub chain_pem: String,
    pub key_pem: String,
    /// CAs trusted beside `ca_pem` while a CA rotation is under way (see `pki::rotation`).
    pub extra_cas: Vec<(CaRole, String)>,
}

impl Tls {
    /// Every CA to trust now, as one PEM bundle: the current one and, during a CA rotation,
    /// the next or previous one (for clients that take a single CA file, like nginx).
    pub fn trusted_bundle(&self) -> String {
        let mut bundle = self.ca_pem.clone();
        for (_, pem) in &self.extra_cas {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(pem);
        }
        bundle
    }
}

pub struct Material {
    pub tls: Option<Tls>,
    /// What the playbook's modules computed for this run before any host is touched
    /// (`Module::prepare`), by module name; read with [`Material::prepared`].
    pub prepared: HashMap<&'static str, Arc<dyn Any + Send + Sync>>,
    /// What changed in the state directory this run (printed before the host steps).
    pub notes: Vec<String>,
}

impl Material {
    /// Nothing: for a run that only removes (reset), which needs no state directory.
    pub fn none() -> Material {
        Material {
            tls: None,
            prepared: HashMap::new(),
            notes: Vec::new(),
        }
    }

    /// Ensure the CA and certificate in `state`. `keep_state` (and a read-only `state`): use
    /// the state directory's CA and certificate as they are (a rotation prepared them; verify
    /// must not change them).
    pub fn prepare(
        inv: &Inventory,
        state: &StateDir,
        check: bool,
        keep_state: bool,
    ) -> Result<Material> {
        let mut notes = Vec::new();
        if !inv.tls.os_trust_store && inv.tls.mode != TlsMode::Insecure {
            notes.push(
                "tls.os_trust_store is false: the CA stays out of every host's OS trust store \
                 (docker trusts it through certs.d); curl, skopeo, containerd's CRI and podman \
                 without their own CA directory, and anything else reading the system store \
                 will not trust the registry"
                    .to_string(),
            );
        }
        let tls = match &inv.tls.mode {
            TlsMode::Insecure => None,
            TlsMode::SelfSigned if keep_state || state.is_read_only() => Some(stored(state)?),
            TlsMode::SelfSigned => Some(self_signed(inv, state, check, &mut notes)?),
            TlsMode::Provided { ca_cert, cert, key } => Some(provided(inv, ca_cert, cert, key)?),
        };
        Ok(Material {
            tls,
            prepared: HashMap::new(),
            notes,
        })
    }

    /// What module `name` prepared, when it did and it is a `T`.
    pub fn prepared<T: Any>(&self, name: &str) -> Option<&T> {
        self.prepared.get(name)?.downcast_ref()
    }
}

/// The state directory's `name`, or an error saying what to run first.
pub fn missing(state: &StateDir, name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{name} missing from {}: run `regboot apply` first",
        state.root().display()
    )
}

fn read_state(state: &StateDir, name: &str) -> Result<String> {
    state.read(name)?.ok_or_else(|| missing(state, name))
}

/// The CA, leaf and rotation CAs exactly as the state directory holds them.
fn stored(state: &StateDir) -> Result<Tls> {
    Ok(Tls {
        ca_pem: read_state(state, pki::state::CA_CERT)?,
        chain_pem: read_state(state, pki::state::REGISTRY_CHAIN)?,
        key_pem: read_state(state, pki::state::REGISTRY_KEY)?,
        extra_cas: rotation::extra_cas(state)?,
    })
}

/// The CA and leaf from the state directory, created or reissued when needed (decided
/// once, `tls_setup::decide`). In check mode nothing is written: a missing CA or a due leaf
/// is made in memory, to show the diffs.
fn self_signed(
    inv: &Inventory,
    state: &StateDir,
    check: bool,
    notes: &mut Vec<String>,
) -> Result<Tls> {
    let plan = setup::decide(inv, state)?;
    if !check {
        plan.write(state)?;
    }
    notes.extend(plan.notes(check));
    let (chain_pem, key_pem) = plan
        .chain_and_key(state)?
        .ok_or_else(|| missing(state, pki::state::REGISTRY_CHAIN))?;
    Ok(Tls {
        ca_pem: plan.authority.cert_pem().to_string(),
        chain_pem,
        key_pem,
        extra_cas: rotation::extra_cas(state)?,
    })
}

fn provided(
    inv: &Inventory,
    ca_cert: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Tls> {
    let files = pki::provided::ProvidedFiles {
        ca_cert: ca_cert.to_path_buf(),
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    };
    let report = pki::provided::check(
        &files,
        &inv.cert_dns_sans(),
        &inv.cert_ip_sans(),
        setup::renew_before(&inv.tls),
        OffsetDateTime::now_utc(),
    )?;
    if !report.is_fit() {
        bail!(
            "the provided certificate cannot be used:\n  {}",
            report.problems.join("\n  ")
        );
    }
    let read = |p| crate::fsutil::read_text_limited(p, "tls.provided", crate::fsutil::PEM_LIMIT);
    let ca_pem = read(ca_cert)?;
    Ok(Tls {
        chain_pem: format!("{}{}", read(cert)?.trim_end(), format_args!("\n{}", ca_pem)),
        ca_pem,
        key_pem: read(key)?,
        extra_cas: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing;

    fn prepare(inv: &Inventory, state: &StateDir, check: bool) -> Result<Material> {
        Material::prepare(inv, state, check, false)
    }

    #[test]
    fn plan_and_verify_write_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let inv = testing::inventory("");
        let state = StateDir::open(tmp.path()).unwrap();
        prepare(&inv, &state, true).unwrap();
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
        let read_only = StateDir::existing(tmp.path()).unwrap();
        let err = format!("{:#}", prepare(&inv, &read_only, false).err().unwrap());
        assert!(
            err.contains("ca.crt missing") && err.contains("regboot apply"),
            "{err}"
        );
        let applied = prepare(&inv, &state, false).unwrap();
        let verified = prepare(&inv, &read_only, false).unwrap();
        let pem = |m: &Material| m.tls.as_ref().map(|t| t.chain_pem.clone());
        assert_eq!(pem(&verified), pem(&applied));
    }

    /// plan (check mode) and apply both stop before a certificate the CA cannot vouch for.
    #[test]
    fn names_outside_the_ca_stop_plan_and_apply_with_rotate_ca() {
        let mut inv = crate::modules::testing::inventory("");
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        prepare(&inv, &state, false).unwrap();
        inv.registry.aliases.push("hub.other.example".into());
        for check in [true, false] {
            let err = prepare(&inv, &state, check).err().unwrap().to_string();
            assert!(err.contains("needs a new CA"), "{err}");
            assert!(err.contains("hub.other.example"), "{err}");
            assert!(err.contains("rotate --ca"), "{err}");
        }
        // A subdomain of the hostname still fits: the CA stays, the leaf is reissued.
        inv.registry.aliases = vec!["mirror.registry.test".into()];
        let m = prepare(&inv, &state, false).unwrap();
        assert!(
            m.notes
                .iter()
                .any(|n| n.contains("issued the registry certificate")),
            "{:?}",
            m.notes
        );
    }
}
