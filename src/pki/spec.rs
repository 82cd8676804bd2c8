//! What certificates must be: the key type and the registry certificate's names. The lowest
//! layer of the PKI (constraints < inspect < ca < leaf < check, provided, describe, rotation):
//! it imports none of them.

use std::net::IpAddr;

use anyhow::{Result, anyhow};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SerialNumber};
use serde::{Deserialize, Serialize};
use time::Duration;

/// The key type of the CA and the registry certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256: small, fast, accepted by every current TLS client.
    #[default]
    EcdsaP256,
    /// RSA 2048 with SHA-256, for old clients that do not speak ECDSA.
    #[serde(rename = "rsa-2048", alias = "rsa2048")]
    Rsa2048,
}

impl KeyAlgorithm {
    /// How certificates name this key type (`CertInfo::key_algorithm`), e.g. "ECDSA P-256".
    pub fn label(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ECDSA P-256",
            Self::Rsa2048 => "RSA 2048",
        }
    }

    pub(super) fn generate(self) -> Result<KeyPair> {
        let alg = match self {
            Self::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            Self::Rsa2048 => &PKCS_RSA_SHA256,
        };
        KeyPair::generate_for(alg).map_err(|e| anyhow!("cannot generate a {self:?} key: {e}"))
    }
}

/// Certificates start a few minutes in the past so a host whose clock lags slightly behind
/// this machine's still accepts a certificate issued a moment ago.
pub(super) const BACKDATE: Duration = Duration::minutes(5);

/// A random positive 127-bit serial (RFC 5280: unique per CA, at most 20 octets).
pub(super) fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// What the registry certificate must be.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// DNS SANs; the first is also the subject's common name.
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// How long a new certificate is valid (a `Duration`, so tests can issue minutes).
    pub validity: Duration,
    /// Reissue when the certificate expires sooner than this.
    pub renew_before: Duration,
    pub key_algorithm: KeyAlgorithm,
}
