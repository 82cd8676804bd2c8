//! `regboot rotate --leaf` and `rotate --ca`: new certificates rolled out through the apply
//! engine (playbooks/rotate.yml: CA files on every host, the registry's files, the registry
//! container one host at a time with a health wait, the smoke test).
//!
//! A CA rotation runs in three stages so no pull ever fails: (1) every host trusts the old
//! and the next CA; (2) the next CA becomes the current one and the registry certificate is
//! reissued from it and rolled, host by host; (3) the old CA leaves every host. Which stage
//! runs is derived each time from what the hosts hold and serve (`deployed::survey`) and from
//! which CAs the state directory holds (`pki::rotation::phase`) — never from a progress
//! file — so a run killed at any point resumes where the hosts are.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use time::{Duration, OffsetDateTime};

use crate::apply::{self, Options, Playbook, RunReport};
use crate::deployed::{self, Survey};
use crate::inventory::Inventory;
use crate::pki::rotation::{self, CaRole, Phase};
use crate::pki::state::{CA_NEXT_CERT, REGISTRY_CERT};
use crate::pki::{self, Ca, StateDir, inspect, setup};

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
    fn next(self) -> Option<Stage> {
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

/// How long a new registry certificate is valid, from `--cert-validity`: a number and a unit
/// (s, m, h, d), e.g. `10m` or `365d`. Short ones are for rehearsals and tests; they fall
/// inside renew_before_days at once, so `certs check` reports them and `apply` renews them.
pub fn parse_validity(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit: use s, m, h or d (e.g. 10m)"))?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{text:?}: expected a number then a unit, e.g. 10m"))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use s, m, h or d)"
            ));
        }
    };
    if d <= Duration::ZERO {
        return Err(format!("{text:?}: a validity must be positive"));
    }
    Ok(d)
}

/// What a rotate run is asked to do.
pub struct RotateOptions {
    pub forks: usize,
    /// Show the changes, change nothing (in a scratch copy of the state directory).
    pub plan: bool,
    pub quiet: bool,
    pub state_dir: PathBuf,
}

impl RotateOptions {
    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// One playbook run of a rotation.
#[derive(Debug, serde::Serialize)]
pub struct StageRun {
    /// `leaf`, or the CA stage's number.
    pub stage: String,
    pub why: String,
    pub report: RunReport,
}

impl StageRun {
    /// Why this run does not count as complete, if it does not.
    pub fn incomplete(&self) -> Option<String> {
        if self.report.check {
            return None;
        }
        let failed = self.report.failed_hosts();
        if !failed.is_empty() {
            return Some(format!("failed on {}", failed.join(", ")));
        }
        self.report
            .smoke_skipped
            .as_ref()
            .map(|why| format!("the smoke test did not run: {why}"))
    }
}

/// A copy of the state directory's files for a plan run, removed on drop, so planning a
/// stage never changes the real state.
struct Scratch {
    dir: StateDir,
}

impl Scratch {
    fn of(state: &StateDir) -> Result<Scratch> {
        // A plan killed before its cleanup (e.g. by SIGPIPE) leaves its copy: remove those.
        for entry in std::fs::read_dir(state.root())?.flatten() {
            if entry.file_name().to_string_lossy().starts_with("plan-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = StateDir::open(&state.root().join(format!("plan-{}", std::process::id())))?;
        for entry in std::fs::read_dir(state.root())
            .with_context(|| format!("cannot read {}", state.root().display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file()
                && name != "lock"
                && let Some(text) = state.read(&name)?
            {
                dir.write_secret(&name, &text)?;
            }
        }
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.root());
    }
}

async fn run_playbook(
    inv: &Inventory,
    state: &StateDir,
    opts: &RotateOptions,
) -> Result<RunReport> {
    apply::run(
        inv,
        &Playbook::rotate()?,
        &Options {
            check: opts.plan,
            diff: false,
            forks: opts.forks,
            quiet: opts.quiet,
            state_dir: state.root().to_path_buf(),
            keep_state: true,
        },
    )
    .await
}

fn load_ca(state: &StateDir) -> Result<Ca> {
    Ca::load_from(state)?.with_context(|| {
        format!(
            "no CA in {}: run `regboot apply` first, or adopt a CA backup with `regboot certs import`",
            state.root().display()
        )
    })
}

/// `rotate --leaf`: a new registry certificate (the inventory's SANs, `validity` or the
/// inventory's), rolled to the registry hosts one at a time. Clients keep their CA files.
pub async fn leaf(
    inv: &Inventory,
    validity: Option<Duration>,
    opts: &RotateOptions,
) -> Result<StageRun> {
    let real = StateDir::open(&opts.state_dir)?;
    let scratch = if opts.plan {
        Some(Scratch::of(&real)?)
    } else {
        None
    };
    let state = scratch.as_ref().map_or(&real, |s| &s.dir);
    // The lock covers the state directory's change; the playbook run takes it again.
    let why = {
        let _lock = real.lock()?;
        let ca = load_ca(state)?;
        if ca.info().not_after <= OffsetDateTime::now_utc() {
            bail!(
                "the CA expired on {}: a certificate from it would not be trusted; run \
                 `regboot rotate --ca`",
                pki::check::date(ca.info().not_after)
            );
        }
        let mut spec = setup::leaf_spec(inv);
        if let Some(v) = validity {
            spec.validity = v;
        }
        let old = state
            .read(REGISTRY_CERT)?
            .and_then(|p| inspect::cert_info(&p).ok());
        pki::leaf::replace(state, &ca, &spec)?;
        pki::leaf::write_chain(state, &ca)?;
        let new = inspect::cert_info(&state.read(REGISTRY_CERT)?.unwrap_or_default())?;
        let replaced = match old {
            Some(o) => format!(
                "replaces serial {} (until {}, archived)",
                short(&o.serial),
                pki::check::date(o.not_after)
            ),
            None => "no previous certificate".into(),
        };
        format!(
            "issued registry certificate serial {} for {} valid until {}; {replaced}",
            short(&new.serial),
            new.sans().join(", "),
            pki::check::date(new.not_after)
        )
    };
    opts.say(&format!("rotate --leaf: {why}"));
    let report = run_playbook(inv, state, opts).await?;
    Ok(StageRun {
        stage: "leaf".into(),
        why,
        report,
    })
}

fn short(serial: &str) -> &str {
    &serial[..serial.len().min(16)]
}

/// `rotate --ca`: run the stage the hosts call for, then the next ones (or only `only`),
/// each ending with the smoke test. Stops at the first stage that does not complete.
pub async fn ca(
    inv: &Inventory,
    only: Option<Stage>,
    opts: &RotateOptions,
) -> Result<Vec<StageRun>> {
    let real = StateDir::open(&opts.state_dir)?;
    let mut runs: Vec<StageRun> = Vec::new();
    loop {
        opts.say("reading the CA files and served certificates of every host");
        let survey = deployed::survey(inv, opts.forks).await;
        let scratch = if opts.plan {
            Some(Scratch::of(&real)?)
        } else {
            None
        };
        let state = scratch.as_ref().map_or(&real, |s| &s.dir);
        // The lock covers the state directory's change; the playbook run takes it again.
        let (decision, expired_note) = {
            let _lock = real.lock()?;
            let current = load_ca(state)?;
            let phase = rotation::phase(state)?;
            let next = state.read(CA_NEXT_CERT)?;
            let decision = derive(phase, &survey, current.cert_pem(), next.as_deref())?;
            // The stage this run goes up to: the derived one, or with --plan a later one,
            // planned on the scratch copy as if the ones before it had run.
            let target = match only {
                Some(only) if opts.plan && only > decision.stage => only,
                Some(only)
                    if only > decision.stage
                        || (only < decision.stage && phase == Phase::Steady) =>
                {
                    bail!(
                        "--stage {} cannot run now: the hosts call for {}: {}",
                        only.number(),
                        decision.stage,
                        decision.why
                    );
                }
                Some(only) if only < decision.stage => {
                    opts.say(&format!(
                        "stage {} is complete already ({})",
                        only.number(),
                        decision.why
                    ));
                    return Ok(runs);
                }
                _ => decision.stage,
            };
            let now = OffsetDateTime::now_utc();
            let expired_note = (decision.stage <= Stage::Leaf
                && phase != Phase::Previous
                && current.info().not_after <= now)
                .then(|| {
                    format!(
                        "the current CA expired on {}: pulls fail until stage 2 completes",
                        pki::check::date(current.info().not_after)
                    )
                });
            let mut stage = decision.stage;
            loop {
                prepare(state, inv, stage, rotation::phase(state)?)?;
                match stage.next() {
                    Some(later) if stage < target => stage = later,
                    _ => break,
                }
            }
            let decision = if target == decision.stage {
                decision
            } else {
                Decision {
                    stage: target,
                    why: format!(
                        "planned as if the stages before it had run (the hosts call for {}), \
                         so its changes include theirs",
                        decision.stage
                    ),
                }
            };
            (decision, expired_note)
        };
        opts.say(&format!("\n=== {}: {}", decision.stage, decision.why));
        if let Some(note) = &expired_note {
            opts.say(&format!("note: {note}"));
        }
        let report = run_playbook(inv, state, opts).await?;
        let run = StageRun {
            stage: decision.stage.number().to_string(),
            why: decision.why.clone(),
            report,
        };
        let incomplete = run.incomplete();
        let stage = decision.stage;
        runs.push(run);
        match incomplete {
            // Pulls cannot work before stage 2 when the old CA has expired.
            Some(why) if !(expired_note.is_some() && stage == Stage::Trust) => {
                bail!(
                    "{stage} did not complete: {why}. Fix it and run `regboot rotate --ca` again: \
                     it resumes at this stage"
                );
            }
            _ => {}
        }
        if opts.plan {
            opts.say(&format!(
                "\nplan shows {stage} only (`--plan --stage N` plans a later one)"
            ));
            return Ok(runs);
        }
        opts.say(&format!("{stage} complete"));
        if only.is_some() || stage == Stage::Retire {
            return Ok(runs);
        }
    }
}

/// The state directory's part of a stage (under the run lock): the next CA created (1), the
/// next CA promoted and the leaf reissued from it (2), the previous CA archived (3).
fn prepare(state: &StateDir, inv: &Inventory, stage: Stage, phase: Phase) -> Result<()> {
    match stage {
        Stage::Trust => {
            rotation::ensure_next(state, &setup::ca_spec(&inv.tls))?;
        }
        Stage::Leaf => {
            if phase == Phase::Next {
                rotation::promote(state)?;
            }
            setup::ensure(state, inv)?;
        }
        Stage::Retire => {
            if phase == Phase::Previous {
                rotation::retire_previous(state)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployed::HostCerts;
    use crate::pki::CaSpec;
    use std::collections::BTreeMap;

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
            endpoints: Vec::new(),
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

    #[test]
    fn validity_units() {
        assert_eq!(parse_validity("10m").unwrap(), Duration::minutes(10));
        assert_eq!(parse_validity("365d").unwrap(), Duration::days(365));
        assert_eq!(parse_validity("30s").unwrap(), Duration::seconds(30));
        assert!(parse_validity("10").unwrap_err().contains("no unit"));
        assert!(parse_validity("0m").is_err());
        assert!(parse_validity("5y").unwrap_err().contains("unknown unit"));
    }
}
