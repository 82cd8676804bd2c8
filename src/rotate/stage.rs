//! Which stage of a CA rotation runs next, derived from what the hosts hold and serve and
//! from which CAs the state directory holds, never from a progress file.

use std::fmt;

use anyhow::{Context, Result, bail};

use crate::deployed::Survey;
use crate::pki::inspect;
use crate::pki::rotation::{CaRole, Phase};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Every host trusts the old and the next CA.
    Trust = 1,
    /// The registry certificate comes from the new CA, rolled host by host.
    Leaf = 2,
    /// The old CA leaves every host.
    Retire = 3,
}

impl Stage {
    pub fn from_number(n: u8) -> Result<Stage> {
        Ok(match n {
            1 => Stage::Trust,
            2 => Stage::Leaf,
            3 => Stage::Retire,
            _ => bail!("--stage {n}: a CA rotation has stages 1, 2 and 3"),
        })
    }
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Trust => Some(Stage::Leaf),
            Stage::Leaf => Some(Stage::Retire),
            Stage::Retire => None,
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Stage::Trust => "trust the old and the next CA on every host",
            Stage::Leaf => "reissue the registry certificate from the new CA and roll it",
            Stage::Retire => "remove the old CA from every host",
        };
        write!(f, "stage {} ({what})", self.number())
    }
}

/// The stage to run and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub stage: Stage,
    pub why: String,
}

fn fp(pem: &str) -> Result<String> {
    Ok(inspect::cert_info(pem)?.fingerprint_sha256)
}

/// The stage the hosts and the state directory call for. `current`: the CA in `ca.crt`;
/// `next`: the one in `ca-next.crt` (phase Next).
pub fn derive(
    phase: Phase,
    survey: &Survey,
    current_pem: &str,
    next_pem: Option<&str>,
) -> Result<Decision> {
    if let Some(h) = survey.unreachable().first() {
        bail!(
            "{}: {} — a CA rotation needs every host of the inventory (fix the host or remove \
             it from the inventory, then run again)",
            h.host,
            h.error.as_deref().unwrap_or("")
        );
    }
    let decision = |stage, why: String| Ok(Decision { stage, why });
    match phase {
        Phase::Steady => {
            let stale: Vec<String> = survey
                .hosts
                .iter()
                .flat_map(|h| {
                    h.extra_paths
                        .iter()
                        .filter(|(_, p)| h.ca_files.contains_key(p))
                        .map(move |(_, p)| format!("{}:{p}", h.host))
                })
                .collect();
            if let Some(first) = stale.first() {
                return decision(
                    Stage::Retire,
                    format!(
                        "the last rotation left {} extra CA file(s) on hosts (e.g. {first})",
                        stale.len()
                    ),
                );
            }
            decision(Stage::Trust, "starting a CA rotation".into())
        }
        Phase::Next => {
            let next = fp(next_pem.context("phase next without ca-next.crt")?)?;
            for h in &survey.hosts {
                let paths: Vec<String> = h
                    .extra_paths
                    .iter()
                    .filter(|(r, _)| *r == CaRole::Next)
                    .map(|(_, p)| p.clone())
                    .collect();
                // Promotion may have started (ca.crt already new on a host): that counts too.
                let missing: Vec<String> = h
                    .missing_at(&next, &paths)
                    .into_iter()
                    .filter(|p| {
                        let main = p.replace("ca-next.crt", "ca.crt");
                        h.ca_files.get(&main).and_then(Option::as_deref) != Some(next.as_str())
                    })
                    .collect();
                if let Some(p) = missing.first() {
                    return decision(
                        Stage::Trust,
                        format!("{} does not trust the next CA yet ({p})", h.host),
                    );
                }
            }
            decision(
                Stage::Leaf,
                "every host trusts the next CA; the registry certificate moves to it".into(),
            )
        }
        Phase::Previous => {
            let current = fp(current_pem)?;
            for h in &survey.hosts {
                if let Some(p) = h.missing_at(&current, &h.ca_paths).first() {
                    return decision(
                        Stage::Leaf,
                        format!("{} does not hold the new CA at {p} yet", h.host),
                    );
                }
                match &h.served {
                    Some(Ok(chain))
                        if !inspect::verify_signed_by(&chain[0], current_pem).unwrap_or(false) =>
                    {
                        return decision(
                            Stage::Leaf,
                            format!(
                                "{} still serves a certificate the new CA did not sign",
                                h.host
                            ),
                        );
                    }
                    Some(Ok(_)) | None => {}
                    Some(Err(e)) => {
                        return decision(
                            Stage::Leaf,
                            format!("{}: cannot read the served certificate: {e}", h.host),
                        );
                    }
                }
            }
            decision(
                Stage::Retire,
                "every registry host serves a certificate from the new CA".into(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployed::HostCerts;
    use crate::pki::Ca;
    use crate::pki::CaSpec;
    use std::collections::BTreeMap;
    use time::Duration;

    fn host(name: &str, files: &[(&str, &str)], served: Option<&str>) -> HostCerts {
        HostCerts {
            host: name.into(),
            error: None,
            ca_paths: vec!["/d/ca.crt".into(), "/t/regboot-ca.crt".into()],
            extra_paths: vec![
                (CaRole::Next, "/d/ca-next.crt".into()),
                (CaRole::Previous, "/d/ca-previous.crt".into()),
                (CaRole::Next, "/t/regboot-ca-next.crt".into()),
                (CaRole::Previous, "/t/regboot-ca-previous.crt".into()),
            ],
            ca_files: files
                .iter()
                .map(|(p, pem)| (p.to_string(), Some(fp(pem).unwrap())))
                .collect::<BTreeMap<_, _>>(),
            served: served.map(|pem| Ok(vec![pem.to_string()])),
        }
    }

    fn survey(hosts: Vec<HostCerts>) -> Survey {
        Survey {
            hosts,
            ..Survey::default()
        }
    }

    fn leaf_of(ca: &Ca) -> String {
        let spec = crate::pki::LeafSpec {
            dns: vec!["registry.lab".into()],
            ips: Vec::new(),
            validity: Duration::days(30),
            renew_before: Duration::days(1),
            key_algorithm: Default::default(),
        };
        crate::pki::leaf::issue(ca, &spec).unwrap().cert_pem
    }

    #[test]
    fn the_stage_follows_the_hosts() {
        let old = Ca::generate(&CaSpec::default()).unwrap();
        let new = Ca::generate(&CaSpec::default()).unwrap();
        let (o, n) = (old.cert_pem(), new.cert_pem());
        let old_leaf = leaf_of(&old);
        let new_leaf = leaf_of(&new);

        // Before: only the old CA anywhere.
        let before = survey(vec![host(
            "a",
            &[("/d/ca.crt", o), ("/t/regboot-ca.crt", o)],
            Some(&old_leaf),
        )]);
        assert_eq!(
            derive(Phase::Steady, &before, o, None).unwrap().stage,
            Stage::Trust
        );
        // Stage 1 half done: host b lacks the next CA in its trust store.
        let half = survey(vec![
            host(
                "a",
                &[
                    ("/d/ca.crt", o),
                    ("/d/ca-next.crt", n),
                    ("/t/regboot-ca.crt", o),
                    ("/t/regboot-ca-next.crt", n),
                ],
                Some(&old_leaf),
            ),
            host(
                "b",
                &[
                    ("/d/ca.crt", o),
                    ("/d/ca-next.crt", n),
                    ("/t/regboot-ca.crt", o),
                ],
                None,
            ),
        ]);
        let d = derive(Phase::Next, &half, o, Some(n)).unwrap();
        assert_eq!(d.stage, Stage::Trust);
        assert!(d.why.contains("b does not trust"), "{}", d.why);
        // Stage 1 done: stage 2.
        let trusted = survey(vec![host(
            "a",
            &[
                ("/d/ca.crt", o),
                ("/d/ca-next.crt", n),
                ("/t/regboot-ca.crt", o),
                ("/t/regboot-ca-next.crt", n),
            ],
            Some(&old_leaf),
        )]);
        assert_eq!(
            derive(Phase::Next, &trusted, o, Some(n)).unwrap().stage,
            Stage::Leaf
        );
        // Promoted, CA files swapped, but the registry still serves the old leaf: stage 2.
        let swapped = survey(vec![host(
            "a",
            &[
                ("/d/ca.crt", n),
                ("/d/ca-previous.crt", o),
                ("/t/regboot-ca.crt", n),
                ("/t/regboot-ca-previous.crt", o),
            ],
            Some(&old_leaf),
        )]);
        let d = derive(Phase::Previous, &swapped, n, None).unwrap();
        assert_eq!(d.stage, Stage::Leaf);
        assert!(d.why.contains("still serves"), "{}", d.why);
        // New leaf served: stage 3.
        let rolled = survey(vec![host(
            "a",
            &[
                ("/d/ca.crt", n),
                ("/d/ca-previous.crt", o),
                ("/t/regboot-ca.crt", n),
                ("/t/regboot-ca-previous.crt", o),
            ],
            Some(&new_leaf),
        )]);
        assert_eq!(
            derive(Phase::Previous, &rolled, n, None).unwrap().stage,
            Stage::Retire
        );
        // State retired but a host still holds the previous CA: finish stage 3.
        assert_eq!(
            derive(Phase::Steady, &rolled, n, None).unwrap().stage,
            Stage::Retire
        );
        // An unreachable host stops it, named.
        let mut down = host("c", &[], None);
        down.error = Some("connection refused".into());
        let err = derive(Phase::Steady, &survey(vec![down]), n, None).unwrap_err();
        assert!(
            err.to_string().starts_with("c: connection refused"),
            "{err}"
        );
    }
}
