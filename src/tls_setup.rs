//! From the inventory to the PKI: what CA and server certificate it asks for, and making the
//! state directory hold them (`certs init` and, later, every apply).

use anyhow::{Result, bail};
use time::Duration;

use crate::inventory::{Inventory, Tls};
use crate::pki::ca::{Ca, CaOutcome, CaSpec};
use crate::pki::constraints::Constraints;
use crate::pki::leaf::{self, LeafOutcome};
use crate::pki::spec::LeafSpec;
use crate::pki::state::StateDir;

/// The CA to create when none exists (or the next one of a rotation): name-constrained
/// to the registry's names, or to tls.permitted_domains / permitted_ip_ranges when given.
pub fn ca_spec(inv: &Inventory) -> CaSpec {
    let tls = &inv.tls;
    CaSpec {
        key_algorithm: tls.key_algorithm,
        validity: Duration::days(tls.ca_validity_days.into()),
        constraints: Some(Constraints::for_leaf(
            &leaf_spec(inv),
            &tls.permitted_domains,
            &tls.permitted_ip_ranges,
        )),
        ..CaSpec::default()
    }
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

/// What `ensure` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub ca: CaOutcome,
    pub leaf: LeafOutcome,
}

/// Make `state` hold a CA (kept when present) and a registry certificate that fits `inv`
/// (kept byte-identical when it does). The caller holds the run lock.
pub fn ensure(state: &StateDir, inv: &Inventory) -> Result<(Ca, Ensured)> {
    let (ca, ca_outcome) = Ca::ensure(state, &ca_spec(inv))?;
    let spec = leaf_spec(inv);
    let outside = ca.names_outside(&spec);
    if !outside.is_empty() {
        bail!("{}", leaf::NeedsNewCa { outside });
    }
    let leaf_outcome = leaf::ensure(state, &ca, &spec)?;
    Ok((
        ca,
        Ensured {
            ca: ca_outcome,
            leaf: leaf_outcome,
        },
    ))
}
