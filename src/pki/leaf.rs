//! The registry's server certificate. Whether to reissue it is decided from the certificate
//! itself (its SANs, its expiry, who signed it), never from a record of what was issued, so a
//! run after any change to the inventory or the CA converges, and a run after none is a no-op.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::ca::Ca;
use super::inspect::{self, CertInfo};
use super::spec::{BACKDATE, KeyAlgorithm, LeafSpec, random_serial};
use super::state::{REGISTRY_CERT, REGISTRY_CHAIN, REGISTRY_KEY, StateDir};

impl LeafSpec {
    /// The SANs the certificate must carry, normalized (DNS names lower-case) for comparison.
    fn required_sans(&self) -> BTreeSet<String> {
        self.dns
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect()
    }
}

/// Why a certificate is (re)issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReissueReason {
    /// No certificate or no key in the state directory.
    Missing,
    /// The stored certificate or key cannot be read as such.
    Unreadable {
        error: String,
    },
    /// The current CA did not sign it (the CA was replaced or imported).
    NotSignedByCa,
    /// The stored key is not the certificate's key.
    KeyMismatch,
    /// tls.key_algorithm now asks for another key type.
    KeyAlgorithmChanged {
        from: String,
        to: String,
    },
    /// The inventory now needs other names than the certificate carries.
    SansChanged {
        added: Vec<String>,
        removed: Vec<String>,
    },
    Expired {
        not_after: OffsetDateTime,
    },
    /// Still valid, but within renew_before of its end.
    ExpiresSoon {
        not_after: OffsetDateTime,
    },
}

impl fmt::Display for ReissueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "no certificate yet"),
            Self::Unreadable { error } => {
                write!(f, "the stored certificate is unreadable: {error}")
            }
            Self::NotSignedByCa => write!(f, "not signed by the current CA"),
            Self::KeyMismatch => write!(f, "the stored key does not match the certificate"),
            Self::KeyAlgorithmChanged { from, to } => {
                write!(f, "key type changes from {from} to {to}")
            }
            Self::SansChanged { added, removed } => {
                write!(f, "SANs changed")?;
                if !added.is_empty() {
                    write!(f, "; added: {}", added.join(", "))?;
                }
                if !removed.is_empty() {
                    write!(f, "; removed: {}", removed.join(", "))?;
                }
                Ok(())
            }
            Self::Expired { not_after } => {
                write!(f, "expired on {}", super::inspect::date(*not_after))
            }
            Self::ExpiresSoon { not_after } => {
                write!(f, "expires soon ({})", super::inspect::date(*not_after))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafOutcome {
    /// The stored certificate fits; nothing was written.
    Kept,
    /// A new certificate and key were written, for this reason.
    Issued { reason: ReissueReason },
}

/// The inventory's names fall outside the CA's name constraints: no certificate this CA signs
/// for them would be accepted, so the fix is a new CA (`rotate --ca`), not a new leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsNewCa {
    pub outside: Vec<String>,
}

impl fmt::Display for NeedsNewCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "needs a new CA: the inventory's names {} fall outside the CA's name constraints, so clients would refuse a \
             certificate carrying them; run `regboot rotate --ca` (it rolls a CA for the \
             inventory's names with no failed pull) instead of issuing one",
            self.outside.join(", ")
        )
    }
}

/// A newly issued certificate and its key (PEM). Debug hides the key.
pub struct IssuedLeaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for IssuedLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedLeaf")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Issue a server certificate for `spec`, signed by `ca`: the SANs, EKU serverAuth,
/// a random serial, a new key.
pub fn issue(ca: &Ca, spec: &LeafSpec) -> Result<IssuedLeaf> {
    anyhow::ensure!(
        !spec.dns.is_empty() || !spec.ips.is_empty(),
        "a server certificate needs at least one DNS name or IP address"
    );
    let outside = ca.names_outside(spec);
    if !outside.is_empty() {
        bail!("{}", NeedsNewCa { outside });
    }
    let key = spec.key_algorithm.generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let cn = spec
        .dns
        .first()
        .cloned()
        .or_else(|| spec.ips.first().map(IpAddr::to_string))
        .unwrap_or_default();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = spec
        .dns
        .iter()
        .map(|d| {
            d.as_str()
                .try_into()
                .map(SanType::DnsName)
                .with_context(|| format!("\"{d}\" cannot be a DNS name in a certificate"))
        })
        .chain(spec.ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_>>()?;
    params.key_usages = match spec.key_algorithm {
        KeyAlgorithm::EcdsaP256 => vec![KeyUsagePurpose::DigitalSignature],
        KeyAlgorithm::Rsa2048 => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
    };
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    // A certificate outliving its CA would be rejected then anyway; end with the CA instead.
    params.not_after = (now + spec.validity).min(ca.info().not_after);
    let cert = params
        .signed_by(&key, ca.issuer())
        .context("signing the registry certificate")?;
    Ok(IssuedLeaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Why the registry certificate in `state` must be reissued at `now`, or `None` when it fits.
/// This is the whole decision; `ensure` and `plan` both use it.
pub fn reissue_reason(
    state: &StateDir,
    ca: &Ca,
    spec: &LeafSpec,
    now: OffsetDateTime,
) -> Result<Option<ReissueReason>> {
    let (Some(cert_pem), Some(key_pem)) = (state.read(REGISTRY_CERT)?, state.read(REGISTRY_KEY)?)
    else {
        return Ok(Some(ReissueReason::Missing));
    };
    let info = match inspect::cert_info(&cert_pem) {
        Ok(info) => info,
        Err(e) => {
            return Ok(Some(ReissueReason::Unreadable {
                error: e.to_string(),
            }));
        }
    };
    if !inspect::verify_signed_by(&cert_pem, ca.cert_pem())? {
        return Ok(Some(ReissueReason::NotSignedByCa));
    }
    let key_fits = KeyPair::from_pem(&key_pem)
        .ok()
        .map(|key| inspect::key_matches_cert(&key, &cert_pem))
        .transpose()?;
    if key_fits != Some(true) {
        return Ok(Some(ReissueReason::KeyMismatch));
    }
    if info.key_algorithm != spec.key_algorithm.label() {
        return Ok(Some(ReissueReason::KeyAlgorithmChanged {
            from: info.key_algorithm,
            to: spec.key_algorithm.label().to_string(),
        }));
    }
    Ok(sans_diff(&info, spec).or_else(|| expiry_reason(&info, spec.renew_before, now)))
}

pub(crate) fn sans_diff(info: &CertInfo, spec: &LeafSpec) -> Option<ReissueReason> {
    let have: BTreeSet<String> = info
        .sans()
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let want = spec.required_sans();
    if have == want {
        return None;
    }
    Some(ReissueReason::SansChanged {
        added: want.difference(&have).cloned().collect(),
        removed: have.difference(&want).cloned().collect(),
    })
}

/// Expired, or expiring within `renew_before` of `now`.
pub fn expiry_reason(
    info: &CertInfo,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Option<ReissueReason> {
    let not_after = info.not_after;
    if not_after <= now {
        Some(ReissueReason::Expired { not_after })
    } else if not_after - now <= renew_before {
        Some(ReissueReason::ExpiresSoon { not_after })
    } else {
        None
    }
}

/// Make the registry certificate in `state` fit `spec`: keep it byte-identical when it does,
/// otherwise issue a new one (key 0600, written before the certificate). The chain file
/// (leaf then CA) is rewritten only when it differs.
pub fn ensure(state: &StateDir, ca: &Ca, spec: &LeafSpec) -> Result<LeafOutcome> {
    let outcome = match reissue_reason(state, ca, spec, OffsetDateTime::now_utc())? {
        None => LeafOutcome::Kept,
        Some(reason) => {
            replace(state, ca, spec)?;
            LeafOutcome::Issued { reason }
        }
    };
    write_chain(state, ca)?;
    Ok(outcome)
}

/// Issue a new certificate for `spec` into `state` now, whatever the current one is
/// (`rotate --leaf`), archiving the certificate and key it replaces. The caller writes the
/// chain (`write_chain`).
pub fn replace(state: &StateDir, ca: &Ca, spec: &LeafSpec) -> Result<()> {
    store(state, &issue(ca, spec)?)
}

/// Write `leaf` into `state`, archiving the certificate and key it replaces. The caller
/// writes the chain (`write_chain`).
pub fn store(state: &StateDir, leaf: &IssuedLeaf) -> Result<()> {
    state.archive(REGISTRY_CERT)?;
    state.archive(REGISTRY_KEY)?;
    state.write_secret(REGISTRY_KEY, &leaf.key_pem)?;
    state.write_public(REGISTRY_CERT, &leaf.cert_pem)
}

/// Make the chain file the stored certificate then `ca` (rewritten only when it differs).
pub fn write_chain(state: &StateDir, ca: &Ca) -> Result<()> {
    let cert_pem = state
        .read(REGISTRY_CERT)?
        .context("registry certificate vanished while writing it")?;
    let chain = chain_pem(&cert_pem, ca.cert_pem());
    if state.read(REGISTRY_CHAIN)?.as_deref() != Some(chain.as_str()) {
        state.write_public(REGISTRY_CHAIN, &chain)?;
    }
    Ok(())
}

pub fn chain_pem(leaf: &str, ca: &str) -> String {
    let mut chain = leaf.trim_end().to_string();
    chain.push('\n');
    chain.push_str(ca.trim_end());
    chain.push('\n');
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::CaSpec;
    use std::net::Ipv4Addr;

    fn spec() -> LeafSpec {
        LeafSpec {
            dns: vec!["registry01.dev.com".into(), "registry.local".into()],
            ips: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 23, 51))],
            validity: Duration::days(365),
            renew_before: Duration::days(30),
            key_algorithm: KeyAlgorithm::EcdsaP256,
        }
    }

    fn setup() -> (tempfile::TempDir, StateDir, Ca) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (ca, _) = Ca::ensure(&state, &CaSpec::default()).unwrap();
        (tmp, state, ca)
    }

    fn files(state: &StateDir) -> Vec<Option<String>> {
        [REGISTRY_CERT, REGISTRY_KEY, REGISTRY_CHAIN]
            .iter()
            .map(|n| state.read(n).unwrap())
            .collect()
    }

    #[test]
    fn issued_leaf_carries_the_sans_and_server_auth() {
        let (_tmp, state, ca) = setup();
        ensure(&state, &ca, &spec()).unwrap();
        let pem = state.read(REGISTRY_CERT).unwrap().unwrap();
        let info = inspect::cert_info(&pem).unwrap();
        assert_eq!(info.dns_sans, spec().dns);
        assert_eq!(info.ip_sans, spec().ips);
        assert!(!info.is_ca);
        assert_eq!(info.issuer, ca.info().subject);
        assert_eq!((info.not_after - info.not_before).whole_days(), 365);
        let blocks = inspect::pem_certs(&pem).unwrap();
        let cert = inspect::parse(&blocks[0]).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let chain = state.read(REGISTRY_CHAIN).unwrap().unwrap();
        let chain_certs = inspect::pem_certs(&chain).unwrap();
        assert_eq!(chain_certs.len(), 2);
        assert_eq!(chain_certs[0].contents, blocks[0].contents);
        assert_eq!(state.mode_of(REGISTRY_KEY).unwrap(), 0o600);
    }

    #[test]
    fn kept_byte_identical_when_nothing_changed() {
        let (_tmp, state, ca) = setup();
        let first = ensure(&state, &ca, &spec()).unwrap();
        assert_eq!(
            first,
            LeafOutcome::Issued {
                reason: ReissueReason::Missing
            }
        );
        let before = files(&state);
        // Same names in another order and case: still the same certificate.
        let mut same = spec();
        same.dns.reverse();
        same.dns[0] = same.dns[0].to_uppercase();
        assert_eq!(ensure(&state, &ca, &same).unwrap(), LeafOutcome::Kept);
        assert_eq!(files(&state), before);
    }

    #[test]
    fn reissued_with_the_exact_san_difference() {
        let (_tmp, state, ca) = setup();
        ensure(&state, &ca, &spec()).unwrap();
        let mut changed = spec();
        changed.dns.retain(|d| d != "registry.local");
        changed.ips.push("10.0.0.51".parse().unwrap());
        let before = files(&state);
        let outcome = ensure(&state, &ca, &changed).unwrap();
        assert_eq!(
            outcome,
            LeafOutcome::Issued {
                reason: ReissueReason::SansChanged {
                    added: vec!["10.0.0.51".into()],
                    removed: vec!["registry.local".into()],
                }
            }
        );
        let after = files(&state);
        assert_ne!(after[0], before[0]);
        assert_ne!(after[1], before[1], "a reissue also gets a new key");
        let info = inspect::cert_info(after[0].as_ref().unwrap()).unwrap();
        assert_eq!(info.ip_sans.len(), 2);
        assert_eq!(ensure(&state, &ca, &changed).unwrap(), LeafOutcome::Kept);
    }

    #[test]
    fn reissued_when_expiring_within_renew_before() {
        let (_tmp, state, ca) = setup();
        let mut short = spec();
        short.validity = Duration::days(10);
        ensure(&state, &ca, &short).unwrap();
        let outcome = ensure(&state, &ca, &spec()).unwrap();
        assert!(
            matches!(
                outcome,
                LeafOutcome::Issued {
                    reason: ReissueReason::ExpiresSoon { .. }
                }
            ),
            "{outcome:?}"
        );
        // A later `now` sees the 1-year certificate as expired.
        let later = OffsetDateTime::now_utc() + Duration::days(400);
        let reason = reissue_reason(&state, &ca, &spec(), later).unwrap();
        assert!(
            matches!(reason, Some(ReissueReason::Expired { .. })),
            "{reason:?}"
        );
    }

    #[test]
    fn reissued_when_another_ca_signed_it() {
        let (_tmp, state, ca) = setup();
        ensure(&state, &ca, &spec()).unwrap();
        let other = Ca::generate(&CaSpec::default()).unwrap();
        let outcome = ensure(&state, &other, &spec()).unwrap();
        assert_eq!(
            outcome,
            LeafOutcome::Issued {
                reason: ReissueReason::NotSignedByCa
            }
        );
        let pem = state.read(REGISTRY_CERT).unwrap().unwrap();
        assert!(inspect::verify_signed_by(&pem, other.cert_pem()).unwrap());
        assert!(!inspect::verify_signed_by(&pem, ca.cert_pem()).unwrap());
    }

    #[test]
    fn reissued_when_key_is_lost_or_foreign() {
        let (_tmp, state, ca) = setup();
        ensure(&state, &ca, &spec()).unwrap();
        state
            .write_secret(REGISTRY_KEY, &KeyPair::generate().unwrap().serialize_pem())
            .unwrap();
        let reason = reissue_reason(&state, &ca, &spec(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(reason, Some(ReissueReason::KeyMismatch));
        std::fs::remove_file(state.path(REGISTRY_KEY)).unwrap();
        let reason = reissue_reason(&state, &ca, &spec(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(reason, Some(ReissueReason::Missing));
    }

    #[test]
    fn reissued_when_the_key_type_changes() {
        let (_tmp, state, ca) = setup();
        ensure(&state, &ca, &spec()).unwrap();
        let mut rsa = spec();
        rsa.key_algorithm = KeyAlgorithm::Rsa2048;
        let outcome = ensure(&state, &ca, &rsa).unwrap();
        assert_eq!(
            outcome,
            LeafOutcome::Issued {
                reason: ReissueReason::KeyAlgorithmChanged {
                    from: "ECDSA P-256".into(),
                    to: "RSA 2048".into()
                }
            }
        );
        assert_eq!(ensure(&state, &ca, &rsa).unwrap(), LeafOutcome::Kept);
    }

    #[test]
    fn short_lived_leaf_in_minutes() {
        let (_tmp, _state, ca) = setup();
        let mut s = spec();
        s.validity = Duration::minutes(3);
        let leaf = issue(&ca, &s).unwrap();
        let info = inspect::cert_info(&leaf.cert_pem).unwrap();
        let left = info.not_after - OffsetDateTime::now_utc();
        assert!(
            left <= Duration::minutes(3) && left > Duration::minutes(2),
            "{left}"
        );
    }

    #[test]
    fn leaf_never_outlives_its_ca() {
        let ca = Ca::generate(&CaSpec {
            validity: Duration::days(100),
            ..CaSpec::default()
        })
        .unwrap();
        let leaf = issue(&ca, &spec()).unwrap();
        let info = inspect::cert_info(&leaf.cert_pem).unwrap();
        assert_eq!(info.not_after, ca.info().not_after);
    }

    #[test]
    fn rsa_leaf_under_rsa_ca() {
        let ca = Ca::generate(&CaSpec {
            key_algorithm: KeyAlgorithm::Rsa2048,
            ..CaSpec::default()
        })
        .unwrap();
        let mut s = spec();
        s.key_algorithm = KeyAlgorithm::Rsa2048;
        let leaf = issue(&ca, &s).unwrap();
        assert!(inspect::verify_signed_by(&leaf.cert_pem, ca.cert_pem()).unwrap());
        let key = KeyPair::from_pem(&leaf.key_pem).unwrap();
        assert!(inspect::key_matches_cert(&key, &leaf.cert_pem).unwrap());
    }

    #[test]
    fn invalid_dns_name_is_named() {
        let (_tmp, _state, ca) = setup();
        let mut s = spec();
        s.dns.push("bad-ñame.example".into());
        let err = issue(&ca, &s).unwrap_err();
        assert!(err.to_string().contains("bad-ñame"), "{err}");
    }
}
