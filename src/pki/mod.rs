//! The PKI: regboot's CA and the registry's server certificate, kept in the state directory,
//! and the checks that decide when a certificate must be reissued or is unfit.
//!
//! - `state`: the state directory (modes, atomic writes, run lock, http secret)
//! - `spec`: what certificates must be (key type, the leaf's names), the layer below all others
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
pub mod spec;
pub mod state;

pub use ca::{Ca, CaOutcome, CaSpec};
pub use check::{CheckRow, CheckStatus};
pub use constraints::{Constraints, IpRange};
pub use inspect::{CertInfo, cert_info, verify_signed_by};
pub use leaf::{LeafOutcome, ReissueReason};
pub use spec::{KeyAlgorithm, LeafSpec};
pub use state::StateDir;
