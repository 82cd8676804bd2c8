//! regboot's own certificate authority: generated once into the state directory, reused on
//! every later run. Loading is separate from generation so a CA can also be imported.

use std::fmt;

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::constraints::Constraints;
use super::inspect::{self, CertInfo};
use super::spec::{BACKDATE, KeyAlgorithm, LeafSpec, random_serial};
use super::state::{CA_CERT, CA_KEY, StateDir};

/// How to create a CA when none exists yet.
#[derive(Debug, Clone)]
pub struct CaSpec {
    pub common_name: String,
    pub key_algorithm: KeyAlgorithm,
    pub validity: Duration,
    /// Name constraints (critical) limiting what the CA may sign; `None`: unconstrained.
    pub constraints: Option<Constraints>,
}

/// The default CA name carries a random suffix so two regboot CAs (say, before and after a
/// rotation) never share a subject: clients pick a CA by name before checking signatures.
impl Default for CaSpec {
    fn default() -> Self {
        Self {
            common_name: format!("regboot CA {}", hex::encode(rand::random::<[u8; 4]>())),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity: Duration::days(3650),
            constraints: None,
        }
    }
}

/// A CA that can sign: its certificate and its key.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    info: CertInfo,
    issuer: Issuer<'static, KeyPair>,
}

/// Key material must never reach a log, so Debug shows only the public facts.
impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("subject", &self.info.subject)
            .field("fingerprint_sha256", &self.info.fingerprint_sha256)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOutcome {
    /// The CA in the state directory was kept as it is.
    Kept,
    /// No CA existed; a new one was generated and written.
    Created,
}

impl Ca {
    /// A CA from its PEM certificate and PEM private key. Checks that the certificate is a CA
    /// certificate and that the key belongs to it; `origin` names where they came from.
    pub fn load(cert_pem: &str, key_pem: &str, origin: &str) -> Result<Self> {
        let info =
            inspect::cert_info(cert_pem).with_context(|| format!("CA certificate {origin}"))?;
        if !info.is_ca {
            bail!(
                "CA certificate {origin} is not a CA certificate (basicConstraints CA:true is missing)"
            );
        }
        let key = KeyPair::from_pem(key_pem).map_err(|e| {
            anyhow::anyhow!(
                "CA key {origin}: not a usable private key ({e}); expected an unencrypted PEM key (PKCS#8, SEC1 or PKCS#1)"
            )
        })?;
        if !inspect::key_matches_cert(&key, cert_pem)? {
            bail!("CA key {origin} does not belong to the CA certificate beside it");
        }
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .with_context(|| format!("CA certificate {origin} cannot be used to sign"))?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            info,
            issuer,
        })
    }

    /// The CA stored in `state`, if both its certificate and key are there.
    pub fn load_from(state: &StateDir) -> Result<Option<Self>> {
        match (state.read(CA_CERT)?, state.read(CA_KEY)?) {
            (Some(cert), Some(key)) => Ok(Some(Self::load(
                &cert,
                &key,
                &format!("in {}", state.root().display()),
            )?)),
            (None, None) => Ok(None),
            (Some(_), None) | (None, Some(_)) => bail!(
                "the state directory {} holds only one of {CA_CERT} and {CA_KEY}: restore the \
                 missing file, or remove both to create a new CA (every host must then trust the new one)",
                state.root().display()
            ),
        }
    }

    /// A new self-signed CA: CA:true with pathlen 0 (it signs leaves only), keyCertSign and
    /// cRLSign, serverAuth as its only extended key usage (verifiers that check the chain's
    /// usages, OpenSSL and Go, then refuse a client or code-signing certificate it signed), a
    /// random serial, and the spec's name constraints (critical).
    pub fn generate(spec: &CaSpec) -> Result<Self> {
        let key = spec.key_algorithm.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        dn.push(DnType::OrganizationName, "regboot");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if let Some(c) = &spec.constraints {
            params.custom_extensions.push(c.to_extension()?);
        }
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + spec.validity;
        let cert = params
            .self_signed(&key)
            .context("signing the CA certificate")?;
        Self::load(&cert.pem(), &key.serialize_pem(), "just generated")
    }

    /// The CA in `state`, or a new one written there (key 0600) when there is none.
    pub fn ensure(state: &StateDir, spec: &CaSpec) -> Result<(Self, CaOutcome)> {
        if let Some(ca) = Self::load_from(state)? {
            return Ok((ca, CaOutcome::Kept));
        }
        let ca = Self::generate(spec)?;
        ca.store(state)?;
        Ok((ca, CaOutcome::Created))
    }

    /// Write the CA into `state` (key first: a certificate without its key is useless).
    pub fn store(&self, state: &StateDir) -> Result<()> {
        state.write_secret(CA_KEY, &self.key_pem)?;
        state.write_public(CA_CERT, &self.cert_pem)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (PEM), for writing it into the state directory only.
    pub(crate) fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// The names of `leaf` this CA may not vouch for (empty when it is unconstrained).
    pub fn names_outside(&self, leaf: &LeafSpec) -> Vec<String> {
        self.info
            .name_constraints
            .as_ref()
            .map(|c| c.outside(leaf))
            .unwrap_or_default()
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ca_has_the_required_shape() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let spec = CaSpec {
                key_algorithm: alg,
                ..CaSpec::default()
            };
            let ca = Ca::generate(&spec).unwrap();
            let info = ca.info();
            assert!(info.is_ca);
            assert_eq!(info.subject, info.issuer);
            assert!(info.subject.contains("CN=regboot CA"));
            let years = (info.not_after - info.not_before).whole_days();
            assert!((3650..=3651).contains(&years), "{years}");
            assert_eq!(info.key_algorithm, alg.label());
            assert!(inspect::verify_signed_by(ca.cert_pem(), ca.cert_pem()).unwrap());
        }
    }

    #[test]
    fn serials_are_random() {
        let a = Ca::generate(&CaSpec::default()).unwrap();
        let b = Ca::generate(&CaSpec::default()).unwrap();
        assert_ne!(a.info().serial, b.info().serial);
        assert!(a.info().serial.len() >= 30, "{}", a.info().serial);
    }

    #[test]
    fn ensure_creates_once_then_keeps_byte_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (_, outcome) = Ca::ensure(&state, &CaSpec::default()).unwrap();
        assert_eq!(outcome, CaOutcome::Created);
        let before = (state.read(CA_CERT).unwrap(), state.read(CA_KEY).unwrap());
        let (_, outcome) = Ca::ensure(&state, &CaSpec::default()).unwrap();
        assert_eq!(outcome, CaOutcome::Kept);
        assert_eq!(
            before,
            (state.read(CA_CERT).unwrap(), state.read(CA_KEY).unwrap())
        );
        assert_eq!(state.mode_of(CA_KEY).unwrap(), 0o600);
    }

    #[test]
    fn load_rejects_a_key_of_another_ca_and_a_half_state() {
        let a = Ca::generate(&CaSpec::default()).unwrap();
        let b = Ca::generate(&CaSpec::default()).unwrap();
        let err = Ca::load(a.cert_pem(), &b.key_pem, "test").unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        state.write_public(CA_CERT, a.cert_pem()).unwrap();
        let err = Ca::load_from(&state).unwrap_err();
        assert!(err.to_string().contains("only one of"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let shown = format!("{ca:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
}
