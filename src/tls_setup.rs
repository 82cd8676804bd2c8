//! From the inventory to the PKI: what CA and server certificate it asks for, and what the
//! state directory needs for them, decided once per run (`decide`): apply writes that
//! decision (`TlsPlan::write`), plan shows it (`TlsPlan::notes`, and the files it would
//! write); `certs init` and rotations write it through `ensure`.

use anyhow::Result;
use time::{Duration, OffsetDateTime};

use crate::inventory::{Inventory, Tls};
use crate::pki::ca::{Ca, CaOutcome, CaSpec};
use crate::pki::constraints::Constraints;
use crate::pki::leaf::{self, IssuedLeaf, LeafOutcome, ReissueReason};
use crate::pki::spec::LeafSpec;
use crate::pki::state::{self as files, StateDir};

/// The CA and registry certificate the inventory asks for, built once.
pub struct Specs {
    /// The CA to create when none exists (or the next one of a rotation).
    pub ca: CaSpec,
    pub leaf: LeafSpec,
}

impl Specs {
    pub fn of(inv: &Inventory) -> Specs {
        let leaf = leaf_spec(inv);
        let tls = &inv.tls;
        let ca = CaSpec {
            key_algorithm: tls.key_algorithm,
            validity: Duration::days(tls.ca_validity_days.into()),
            // Name-constrained to the registry's names, or to tls.permitted_domains /
            // permitted_ip_ranges when given.
            constraints: Some(Constraints::for_leaf(
                &leaf,
                &tls.permitted_domains,
                &tls.permitted_ip_ranges,
            )),
            ..CaSpec::default()
        };
        Specs { ca, leaf }
    }
}

/// The CA to create when none exists (or the next one of a rotation).
pub fn ca_spec(inv: &Inventory) -> CaSpec {
    Specs::of(inv).ca
}

/// The registry certificate the inventory needs: every name clients may use for it.
pub fn leaf_spec(inv: &Inventory) -> LeafSpec {
    LeafSpec {
        dns: inv.cert_dns_sans(),
        ips: inv.cert_ip_sans(),
        validity: Duration::days(inv.tls.cert_validity_days.into()),
        renew_before: renew_before(&inv.tls),
        key_algorithm: inv.tls.key_algorithm,
    }
}

pub fn renew_before(tls: &Tls) -> Duration {
    Duration::days(tls.renew_before_days.into())
}

/// What the state directory's CA needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaPlan {
    Keep,
    /// None there: one is generated (in memory until written).
    Create,
}

/// What the registry certificate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafPlan {
    Keep,
    Issue(ReissueReason),
}

/// What the state directory needs for the inventory's TLS, with what to write: the CA (the
/// stored one, or a new one) and the certificate issued when due. Nothing is written until
/// `write`.
pub struct TlsPlan {
    pub ca: CaPlan,
    pub leaf: LeafPlan,
    /// The CA that signs: the stored one, or the one to create.
    pub authority: Ca,
    /// The certificate and key issued for `LeafPlan::Issue`.
    issued: Option<IssuedLeaf>,
}

/// Decide, reading `state` only, what it needs for `inv`. A certificate the CA cannot vouch
/// for (names outside its constraints) is an error naming `rotate --ca` (`leaf::issue`).
pub fn decide(inv: &Inventory, state: &StateDir) -> Result<TlsPlan> {
    let specs = Specs::of(inv);
    let (authority, ca) = match Ca::load_from(state)? {
        Some(authority) => (authority, CaPlan::Keep),
        None => (Ca::generate(&specs.ca)?, CaPlan::Create),
    };
    let reason = leaf::reissue_reason(state, &authority, &specs.leaf, OffsetDateTime::now_utc())?;
    let (leaf, issued) = match reason {
        None => (LeafPlan::Keep, None),
        Some(reason) => (
            LeafPlan::Issue(reason),
            Some(leaf::issue(&authority, &specs.leaf)?),
        ),
    };
    Ok(TlsPlan {
        ca,
        leaf,
        authority,
        issued,
    })
}

impl TlsPlan {
    /// What it does to the state directory, as notes: "created CA ..." (apply) or "would
    /// create CA ..." (plan, `check`).
    pub fn notes(&self, check: bool) -> Vec<String> {
        let would = if check { "would " } else { "" };
        let mut notes = Vec::new();
        if self.ca == CaPlan::Create {
            let subject = &self.authority.info().subject;
            let verb = if check { "create" } else { "created" };
            notes.push(format!("{would}{verb} CA {subject:?}"));
        }
        if let LeafPlan::Issue(reason) = &self.leaf {
            let verb = if check { "issue" } else { "issued" };
            notes.push(format!("{would}{verb} the registry certificate: {reason}"));
        }
        notes
    }

    /// Make the state directory hold it (the caller holds the run lock): the new CA, the
    /// issued certificate (the one it replaces archived), the chain.
    pub fn write(&self, state: &StateDir) -> Result<Ensured> {
        if self.ca == CaPlan::Create {
            self.authority.store(state)?;
        }
        if let Some(issued) = &self.issued {
            leaf::store(state, issued)?;
        }
        leaf::write_chain(state, &self.authority)?;
        Ok(Ensured {
            ca: match self.ca {
                CaPlan::Keep => CaOutcome::Kept,
                CaPlan::Create => CaOutcome::Created,
            },
            leaf: match &self.leaf {
                LeafPlan::Keep => LeafOutcome::Kept,
                LeafPlan::Issue(reason) => LeafOutcome::Issued {
                    reason: reason.clone(),
                },
            },
        })
    }

    /// The chain (leaf then CA) and key the registry serves: the issued ones, else the
    /// state directory's (`None` when it has none yet).
    pub fn chain_and_key(&self, state: &StateDir) -> Result<Option<(String, String)>> {
        if let Some(issued) = &self.issued {
            let chain = leaf::chain_pem(&issued.cert_pem, self.authority.cert_pem());
            return Ok(Some((chain, issued.key_pem.clone())));
        }
        match (
            state.read(files::REGISTRY_CHAIN)?,
            state.read(files::REGISTRY_KEY)?,
        ) {
            (Some(chain), Some(key)) => Ok(Some((chain, key))),
            _ => Ok(None),
        }
    }
}

/// What `ensure` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub ca: CaOutcome,
    pub leaf: LeafOutcome,
}

/// Make `state` hold a CA (kept when present) and a registry certificate that fits `inv`
/// (kept byte-identical when it does): `decide`, then write. The caller holds the run lock.
pub fn ensure(state: &StateDir, inv: &Inventory) -> Result<(Ca, Ensured)> {
    let plan = decide(inv, state)?;
    let ensured = plan.write(state)?;
    Ok((plan.authority, ensured))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing;

    /// One decision: plan shows it and writes nothing; apply writes exactly it; the next run
    /// keeps both.
    #[test]
    fn plan_shows_the_decision_apply_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let inv = testing::inventory("");
        let plan = decide(&inv, &state).unwrap();
        assert_eq!(plan.ca, CaPlan::Create);
        assert_eq!(plan.leaf, LeafPlan::Issue(ReissueReason::Missing));
        let notes = plan.notes(true);
        assert!(
            notes[0].starts_with("would create CA \"CN=regboot CA"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with("would issue the registry certificate"),
            "{notes:?}"
        );
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());

        let shown = plan.chain_and_key(&state).unwrap().unwrap();
        let ensured = plan.write(&state).unwrap();
        assert_eq!(ensured.ca, CaOutcome::Created);
        assert_eq!(plan.notes(false)[0].split(' ').next(), Some("created"));
        let stored = |name| state.read(name).unwrap().unwrap();
        assert_eq!(
            shown,
            (stored(files::REGISTRY_CHAIN), stored(files::REGISTRY_KEY))
        );
        assert_eq!(stored(files::CA_CERT), plan.authority.cert_pem());

        let again = decide(&inv, &state).unwrap();
        assert_eq!((&again.ca, &again.leaf), (&CaPlan::Keep, &LeafPlan::Keep));
        assert!(again.notes(false).is_empty());
        assert_eq!(again.chain_and_key(&state).unwrap().unwrap(), shown);
    }
}
