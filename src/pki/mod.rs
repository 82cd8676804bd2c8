//! The PKI: regboot's CA and the registry's server certificate, kept in the state directory,
//! and the checks that decide when a certificate must be reissued or is unfit.
//!
//! - `state`: the state directory (modes, atomic writes, run lock, http secret)
//! - `ca`: create or load the CA
//! - `constraints`: the CA's name constraints (what it may vouch for)
//! - `leaf`: issue the registry certificate, and decide from the certificate itself when to reissue
//! - `inspect`: read a certificate's facts, verify a signature
//! - `describe`: a certificate file change as people read it (plan)
//! - `provided`: check a user-provided certificate (tls.mode provided)
//! - `rotation`: the next/previous CA of a CA rotation, archiving, importing a CA
//! - `check`: the `certs check` rows, table, JSON and exit code

pub mod ca;
pub mod check;
pub mod constraints;
pub mod describe;
pub mod inspect;
pub mod leaf;
pub mod provided;
pub mod rotation;
pub mod state;

use anyhow::{Result, anyhow};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SerialNumber};
use serde::{Deserialize, Serialize};
use time::Duration;

pub use ca::{Ca, CaOutcome, CaSpec};
pub use check::{CheckRow, CheckStatus};
pub use constraints::{Constraints, IpRange};
pub use inspect::{CertInfo, cert_info, verify_signed_by};
pub use leaf::{LeafOutcome, LeafSpec, ReissueReason};
pub use state::StateDir;

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

    fn generate(self) -> Result<KeyPair> {
        let alg = match self {
            Self::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            Self::Rsa2048 => &PKCS_RSA_SHA256,
        };
        KeyPair::generate_for(alg).map_err(|e| anyhow!("cannot generate a {self:?} key: {e}"))
    }
}

/// Certificates start a few minutes in the past so a host whose clock lags slightly behind
/// this machine's still accepts a certificate issued a moment ago.
const BACKDATE: Duration = Duration::minutes(5);

/// A random positive 127-bit serial (RFC 5280: unique per CA, at most 20 octets).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}
