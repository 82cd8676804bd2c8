//! The state directory's side of a CA rotation, and importing a CA.
//!
//! A rotation keeps at most two CAs: `ca.*` (the one that signs) and either `ca-next.*` (the
//! CA being introduced: stage 1 has hosts trust it beside the current one) or
//! `ca-previous.crt` (the CA being retired: hosts keep trusting it until stage 3). These files
//! are key material, not a progress record: which stage runs is decided from what the hosts
//! hold and serve (see `rotate::stage`). Every CA and leaf replaced here is archived first.

use anyhow::{Context, Result, bail};

use super::ca::{Ca, CaSpec};
use super::state::{
    CA_CERT, CA_KEY, CA_NEXT_CERT, CA_NEXT_KEY, CA_PREVIOUS_CERT, REGISTRY_CERT, REGISTRY_CHAIN,
    REGISTRY_KEY, StateDir,
};

/// A CA hosts trust beside the current one during a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    Next,
    Previous,
}

impl CaRole {
    pub const ALL: [CaRole; 2] = [CaRole::Next, CaRole::Previous];

    /// The file name's suffix on hosts: `ca-next.crt`, `regboot-ca-previous.crt`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Previous => "previous",
        }
    }
}

/// Where the state directory is in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// One CA; no rotation under way (or the last one finished in the state directory).
    Steady,
    /// `ca-next.*` exists: hosts are being taught the next CA (stage 1), or the promotion
    /// to it was interrupted.
    Next,
    /// `ca-previous.crt` exists: the leaf comes from the new CA (stage 2) and hosts still
    /// trust the previous one until stage 3.
    Previous,
}

pub fn phase(state: &StateDir) -> Result<Phase> {
    Ok(if state.read(CA_NEXT_CERT)?.is_some() {
        Phase::Next
    } else if state.read(CA_PREVIOUS_CERT)?.is_some() {
        Phase::Previous
    } else {
        Phase::Steady
    })
}

/// The extra CAs hosts must trust now, beside `ca.crt`, as PEM.
pub fn extra_cas(state: &StateDir) -> Result<Vec<(CaRole, String)>> {
    let mut out = Vec::new();
    for (role, name) in [
        (CaRole::Next, CA_NEXT_CERT),
        (CaRole::Previous, CA_PREVIOUS_CERT),
    ] {
        if let Some(pem) = state.read(name)? {
            out.push((role, pem));
        }
    }
    Ok(out)
}

/// The next CA: the one in `ca-next.*`, or a new one written there.
pub fn ensure_next(state: &StateDir, spec: &CaSpec) -> Result<(Ca, bool)> {
    if let (Some(cert), Some(key)) = (state.read(CA_NEXT_CERT)?, state.read(CA_NEXT_KEY)?) {
        let origin = format!("{CA_NEXT_CERT} in {}", state.root().display());
        return Ok((Ca::load(&cert, &key, &origin)?, false));
    }
    let ca = Ca::generate(spec)?;
    state.write_secret(CA_NEXT_KEY, ca.key_pem())?;
    state.write_public(CA_NEXT_CERT, ca.cert_pem())?;
    Ok((ca, true))
}

/// Make the next CA the current one: `ca-previous.crt` := the current CA (archived with its
/// key), `ca.*` := `ca-next.*`, then `ca-next.*` removed. Safe to repeat after a crash at
/// any point: `ca-previous.crt` is written first and only once.
pub fn promote(state: &StateDir) -> Result<Ca> {
    let (Some(cert), Some(key)) = (state.read(CA_NEXT_CERT)?, state.read(CA_NEXT_KEY)?) else {
        bail!(
            "no next CA ({CA_NEXT_CERT} and {CA_NEXT_KEY}) in {}: run stage 1 first",
            state.root().display()
        );
    };
    let next = Ca::load(
        &cert,
        &key,
        &format!("{CA_NEXT_CERT} in {}", state.root().display()),
    )?;
    if state.read(CA_PREVIOUS_CERT)?.is_none() {
        let old = state
            .read(CA_CERT)?
            .with_context(|| format!("no {CA_CERT} in {}", state.root().display()))?;
        state.archive(CA_CERT)?;
        state.archive(CA_KEY)?;
        state.write_public(CA_PREVIOUS_CERT, &old)?;
    }
    next.store(state)?;
    state.remove(CA_NEXT_CERT)?;
    state.remove(CA_NEXT_KEY)?;
    Ok(next)
}

/// The end of a rotation: `ca-previous.crt` archived and removed.
pub fn retire_previous(state: &StateDir) -> Result<()> {
    state.archive(CA_PREVIOUS_CERT)?;
    state.remove(CA_PREVIOUS_CERT)
}

/// What `import` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// The state directory held this very CA already.
    Same,
    /// The CA was written (the state directory had none).
    Written,
}

/// Adopt an existing CA (a backup of a lost state directory, or one made elsewhere). A state
/// directory that already holds another CA is left alone: replacing a CA that hosts trust
/// is a rotation (`rotate --ca`), not an import.
pub fn import(state: &StateDir, cert_pem: &str, key_pem: &str, origin: &str) -> Result<Imported> {
    let ca = Ca::load(cert_pem, key_pem, origin)?;
    if let Some(current) = Ca::load_from(state)? {
        if current.info().fingerprint_sha256 == ca.info().fingerprint_sha256 {
            return Ok(Imported::Same);
        }
        bail!(
            "{} already holds another CA ({}): to move the cluster to the imported CA, put it \
             aside and run `regboot rotate --ca`; to replace the state anyway, move the \
             directory away first",
            state.root().display(),
            current.info().subject
        );
    }
    // A leaf left from another CA would be reissued by the next apply anyway; archive it now
    // so the state directory holds one consistent set.
    for name in [REGISTRY_CERT, REGISTRY_KEY, REGISTRY_CHAIN] {
        if state.read(name)?.is_some() {
            state.archive(name)?;
            state.remove(name)?;
        }
    }
    ca.store(state)?;
    Ok(Imported::Written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::leaf;
    use crate::pki::spec::LeafSpec;
    use time::Duration;

    fn spec() -> LeafSpec {
        LeafSpec {
            dns: vec!["registry.lab".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            validity: Duration::days(365),
            renew_before: Duration::days(30),
            key_algorithm: Default::default(),
        }
    }

    fn archived(state: &StateDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(state.path(crate::pki::state::ARCHIVE))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn a_rotation_walks_the_phases_and_archives_what_it_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (old, _) = Ca::ensure(&state, &CaSpec::default()).unwrap();
        leaf::ensure(&state, &old, &spec()).unwrap();
        assert_eq!(phase(&state).unwrap(), Phase::Steady);

        let (next, created) = ensure_next(&state, &CaSpec::default()).unwrap();
        assert!(created);
        let (again, created) = ensure_next(&state, &CaSpec::default()).unwrap();
        assert!(!created);
        assert_eq!(again.cert_pem(), next.cert_pem());
        assert_eq!(phase(&state).unwrap(), Phase::Next);
        assert_eq!(extra_cas(&state).unwrap()[0].0, CaRole::Next);

        let promoted = promote(&state).unwrap();
        assert_eq!(promoted.cert_pem(), next.cert_pem());
        assert_eq!(phase(&state).unwrap(), Phase::Previous);
        assert_eq!(
            state.read(CA_PREVIOUS_CERT).unwrap().as_deref(),
            Some(old.cert_pem())
        );
        // The leaf is reissued from the new CA, the old one archived.
        let outcome = leaf::ensure(&state, &promoted, &spec()).unwrap();
        assert!(matches!(outcome, leaf::LeafOutcome::Issued { .. }));

        retire_previous(&state).unwrap();
        assert_eq!(phase(&state).unwrap(), Phase::Steady);
        let names = archived(&state);
        for suffix in ["-ca.crt", "-ca.key", "-ca-previous.crt", "-registry.crt"] {
            assert!(names.iter().any(|n| n.ends_with(suffix)), "{names:?}");
        }
    }

    #[test]
    fn an_interrupted_promotion_completes_on_the_next_call() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (old, _) = Ca::ensure(&state, &CaSpec::default()).unwrap();
        let (next, _) = ensure_next(&state, &CaSpec::default()).unwrap();
        // As if killed right after ca-previous.crt and the new key were written.
        state
            .write_public(CA_PREVIOUS_CERT, old.cert_pem())
            .unwrap();
        state.write_secret(CA_KEY, next.key_pem()).unwrap();
        assert_eq!(phase(&state).unwrap(), Phase::Next);
        promote(&state).unwrap();
        assert_eq!(
            Ca::load_from(&state).unwrap().unwrap().cert_pem(),
            next.cert_pem()
        );
        assert_eq!(
            state.read(CA_PREVIOUS_CERT).unwrap().as_deref(),
            Some(old.cert_pem())
        );
    }

    #[test]
    fn import_adopts_a_backup_and_refuses_to_replace_another_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let backup = Ca::generate(&CaSpec::default()).unwrap();
        let imported = import(&state, backup.cert_pem(), backup.key_pem(), "backup").unwrap();
        assert_eq!(imported, Imported::Written);
        assert_eq!(state.mode_of(CA_KEY).unwrap(), 0o600);
        let same = import(&state, backup.cert_pem(), backup.key_pem(), "backup").unwrap();
        assert_eq!(same, Imported::Same);
        let other = Ca::generate(&CaSpec::default()).unwrap();
        let err = import(&state, other.cert_pem(), other.key_pem(), "other").unwrap_err();
        assert!(err.to_string().contains("rotate --ca"), "{err}");
    }
}
