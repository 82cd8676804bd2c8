//! `regboot renew`: what is due and nothing else, for a timer to run every day.
//!
//! The registry certificate is reissued and rolled (`rotate --leaf`) when it expires within
//! renew_before_days, no longer names what the inventory asks for, or a registry host does
//! not serve it. The CA, once inside its own window (`tls.ca_renew_before_days`, default a
//! third of its lifetime), is rotated one `rotate --ca` stage per run, each only after the
//! previous one has been in place for `tls.ca_stage_soak`. When each stage was reached is
//! kept in the state directory (`ca-rotation.json`): unlike the stage itself, which
//! `rotate --ca` derives from the hosts, the time cannot be read back from them.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::deployed;
use crate::inventory::{Inventory, Tls};
use crate::pki::inspect::{self, CertInfo};
use crate::pki::leaf::{self, ReissueReason};
use crate::pki::rotation::{self, Phase};
use crate::pki::state::{CA_CERT, REGISTRY_CERT};
use crate::pki::{Ca, StateDir};
use crate::rotate::{self, RotateOptions, Stage, StageRun};
use crate::tls_setup as setup;

/// The state directory's record of when each CA rotation stage was reached.
pub const PROGRESS: &str = "ca-rotation.json";

/// How long before the CA expires `renew` starts rotating it.
pub fn ca_window(tls: &Tls, ca: &CertInfo) -> Duration {
    match tls.ca_renew_before_days {
        Some(days) => Duration::days(days.into()),
        None => (ca.not_after - ca.not_before) / 3,
    }
}

/// A stage of the current rotation, and when a run reached it (or, `complete: false`, when
/// it was tried and did not complete).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reached {
    pub stage: u8,
    /// RFC 3339.
    pub at: String,
    pub complete: bool,
    /// Found in place without a record (e.g. run by hand with `rotate --ca --stage N`): the
    /// soak counts from when a renew run first saw it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observed: bool,
}

impl Reached {
    fn new(stage: Stage, at: OffsetDateTime, complete: bool, observed: bool) -> Reached {
        Reached {
            stage: stage.number(),
            at: at.format(&Rfc3339).unwrap_or_default(),
            complete,
            observed,
        }
    }

    fn time(&self) -> Result<OffsetDateTime> {
        OffsetDateTime::parse(&self.at, &Rfc3339)
            .with_context(|| format!("{PROGRESS}: {:?} is not an RFC 3339 time", self.at))
    }
}

fn load_progress(state: &StateDir) -> Result<Vec<Reached>> {
    match state.read(PROGRESS)? {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not regboot's record of a CA rotation: move it away (the next renew \
                 counts the soak from then)",
                state.path(PROGRESS).display()
            )
        }),
    }
}

/// Add `r` to the record (a stage 1 starts a new one).
fn record(state: &StateDir, r: Reached) -> Result<()> {
    let mut all = if r.stage == 1 && r.complete {
        Vec::new()
    } else {
        load_progress(state)?
    };
    all.push(r);
    state.write_public(PROGRESS, &serde_json::to_string_pretty(&all)?)
}

/// What the CA calls for now.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum CaStep {
    /// Outside its window: nothing to do until `renew_after`.
    NotDue,
    /// This stage runs now.
    Run { stage: u8, why: String },
    /// The last stage soaks; `stage` may run from `until`.
    Wait {
        stage: u8,
        #[serde(serialize_with = "crate::pki::inspect::rfc3339")]
        until: OffsetDateTime,
        why: String,
    },
}

/// The CA's place in its life: when `renew` rotates it and what it does now.
#[derive(Debug, Clone, Serialize)]
pub struct CaPlan {
    #[serde(serialize_with = "crate::pki::inspect::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(serialize_with = "crate::pki::inspect::rfc3339")]
    pub renew_after: OffsetDateTime,
    /// The last stage reached in a rotation under way (none: steady).
    pub stage: Option<Reached>,
    pub step: CaStep,
    /// A stage found in place without a record: `renew` records it (a check does not).
    #[serde(skip)]
    observed: Option<Reached>,
}

/// What the state directory says the CA calls for at `now` (reads only).
pub fn ca_plan(state: &StateDir, inv: &Inventory, now: OffsetDateTime) -> Result<CaPlan> {
    let pem = state.read(CA_CERT)?.with_context(|| {
        format!(
            "no CA in {}: run `regboot apply` first",
            state.root().display()
        )
    })?;
    let ca = inspect::cert_info(&pem)?;
    let renew_after = ca.not_after - ca_window(&inv.tls, &ca);
    let soak = inv.tls.ca_stage_soak;
    let mut plan = CaPlan {
        not_after: ca.not_after,
        renew_after,
        stage: None,
        step: CaStep::NotDue,
        observed: None,
    };
    // The stage the state directory's phase says was reached last.
    let done = match rotation::phase(state)? {
        Phase::Steady => {
            if now >= renew_after {
                plan.step = CaStep::Run {
                    stage: Stage::Trust.number(),
                    why: format!(
                        "the CA expires on {}, inside its renewal window (from {})",
                        inspect::date(ca.not_after),
                        inspect::date(renew_after)
                    ),
                };
            }
            return Ok(plan);
        }
        Phase::Next => Stage::Trust,
        Phase::Previous => Stage::Leaf,
    };
    let next = done.next().unwrap_or(done);
    // Only this rotation's records: those after the last completed stage 3.
    let all = load_progress(state)?;
    let start = all
        .iter()
        .rposition(|r| r.stage == Stage::Retire.number() && r.complete)
        .map_or(0, |i| i + 1);
    let last = all[start..]
        .iter()
        .rfind(|r| r.stage == done.number())
        .cloned();
    let Some(last) = last else {
        let seen = Reached::new(done, now, true, true);
        plan.step = CaStep::Wait {
            stage: next.number(),
            until: now + soak,
            why: format!(
                "{done} is in place with no record of when it was reached (run by hand?): \
                 the soak counts from now"
            ),
        };
        plan.stage = Some(seen.clone());
        plan.observed = Some(seen);
        return Ok(plan);
    };
    let at = last.time()?;
    plan.step = if !last.complete {
        CaStep::Run {
            stage: done.number(),
            why: format!("{done} did not complete at {}: resuming it", last.at),
        }
    } else if now < at + soak {
        CaStep::Wait {
            stage: next.number(),
            until: at + soak,
            why: format!(
                "{done} was reached at {} and soaks for {} (tls.ca_stage_soak)",
                last.at, soak
            ),
        }
    } else {
        CaStep::Run {
            stage: next.number(),
            why: format!("{done} has been in place since {} ({soak} soak)", last.at),
        }
    };
    plan.stage = Some(last);
    Ok(plan)
}

/// Why the registry certificate is due, from the state directory alone (a leaf that expires
/// with its CA is left to the CA's renewal: a new one from the same CA would not live longer).
fn leaf_due_locally(
    state: &StateDir,
    inv: &Inventory,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let Some(ca) = Ca::load_from(state)? else {
        return Ok(None);
    };
    let reason = leaf::reissue_reason(state, &ca, &setup::leaf_spec(inv), now)?;
    let capped = || -> Result<bool> {
        let pem = state.read(REGISTRY_CERT)?.unwrap_or_default();
        Ok(inspect::cert_info(&pem)?.not_after >= ca.info().not_after)
    };
    Ok(match reason {
        Some(ReissueReason::ExpiresSoon { .. } | ReissueReason::Expired { .. }) if capped()? => {
            None
        }
        r => r.map(|r| r.to_string()),
    })
}

/// Why the registry certificate is due: the state directory's reasons, or a registry host
/// that does not serve it.
async fn leaf_due(
    state: &StateDir,
    inv: &Inventory,
    forks: usize,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    if let Some(why) = leaf_due_locally(state, inv, now)? {
        return Ok(Some(why));
    }
    let leaf = state.read(REGISTRY_CERT)?.unwrap_or_default();
    let ours = inspect::cert_info(&leaf)?.fingerprint_sha256;
    let survey = deployed::survey_hosts(inv, Some("role:registry"), forks).await?;
    for h in &survey.hosts {
        if let Some(e) = &h.error {
            anyhow::bail!("{}: cannot read what it serves: {e}", h.host);
        }
        match &h.served {
            Some(Ok(chain)) if inspect::cert_info(&chain[0])?.fingerprint_sha256 == ours => {}
            Some(Ok(_)) => {
                return Ok(Some(format!(
                    "{} serves a certificate other than the state directory's",
                    h.host
                )));
            }
            Some(Err(e)) => {
                return Ok(Some(format!(
                    "{} serves no certificate we can read: {e}",
                    h.host
                )));
            }
            None => {}
        }
    }
    Ok(None)
}

fn say(opts: &RotateOptions, line: &str) {
    if !opts.quiet {
        println!("{line}");
    }
}

/// What `plan` says of a due renewal: the CA's next stage, or the registry certificate
/// (none when nothing is due or there is no CA yet).
pub fn due_note(inv: &Inventory, state_dir: &std::path::Path) -> Option<String> {
    if inv.tls.mode != crate::inventory::TlsMode::SelfSigned {
        return None;
    }
    let state = StateDir::at(state_dir);
    let now = OffsetDateTime::now_utc();
    state.read(CA_CERT).ok()??;
    match ca_plan(&state, inv, now).ok()?.step {
        CaStep::Run { stage, why } => {
            return Some(format!(
                "`regboot renew` runs CA rotation stage {stage}: {why}"
            ));
        }
        CaStep::Wait { stage, until, .. } => {
            return Some(format!(
                "CA rotation under way: `regboot renew` runs stage {stage} from {}",
                inspect::date(until)
            ));
        }
        CaStep::NotDue => {}
    }
    let why = leaf_due_locally(&state, inv, now).ok()??;
    Some(format!(
        "the registry certificate is due ({why}): `regboot renew` rolls a new one"
    ))
}

/// What one renew run did.
#[derive(Debug, Serialize)]
pub struct Renewal {
    pub ca: CaPlan,
    /// Why the registry certificate was due (none: it was not, or the CA's step ran).
    pub leaf_due: Option<String>,
    pub runs: Vec<StageRun>,
}

impl Renewal {
    /// Whether a certificate was renewed or a CA stage run.
    pub fn renewed(&self) -> bool {
        !self.runs.is_empty()
    }
}

/// Do what is due: the CA's next stage when its soak is over, else the registry
/// certificate when due. One thing per run, so each is rolled and smoke-tested on its own.
pub async fn renew(inv: &Inventory, opts: &RotateOptions) -> Result<Renewal> {
    let state = StateDir::open(&opts.state_dir)?;
    let now = OffsetDateTime::now_utc();
    let mut ca = {
        let _lock = state.lock()?;
        let plan = ca_plan(&state, inv, now)?;
        if let Some(seen) = &plan.observed {
            record(&state, seen.clone())?;
        }
        plan
    };
    let mut renewal = Renewal {
        ca: ca.clone(),
        leaf_due: None,
        runs: Vec::new(),
    };
    if let CaStep::Run { stage, why } = &ca.step {
        let stage = Stage::from_number(*stage)?;
        say(opts, &format!("CA: {stage}: {why}"));
        let result = rotate::ca(inv, Some(stage), opts).await;
        let complete = result
            .as_ref()
            .is_ok_and(|runs| runs.last().and_then(StageRun::incomplete).is_none());
        {
            let _lock = state.lock()?;
            record(
                &state,
                Reached::new(stage, OffsetDateTime::now_utc(), complete, false),
            )?;
            ca.stage = load_progress(&state)?.pop();
        }
        renewal.ca = ca;
        renewal.runs = result?;
        return Ok(renewal);
    }
    if let Some(why) = leaf_due(&state, inv, opts.forks, now).await? {
        say(
            opts,
            &format!("registry certificate: {why}: reissuing and rolling it"),
        );
        renewal.runs.push(rotate::leaf(inv, None, opts).await?);
        renewal.leaf_due = Some(why);
    }
    Ok(renewal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::CaSpec;

    fn setup(extra_tls: &str, ca_validity: Duration) -> (tempfile::TempDir, StateDir, Inventory) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let mut inv = crate::modules::testing::inventory("");
        if !extra_tls.is_empty() {
            inv.tls.ca_stage_soak = crate::duration::parse(extra_tls).unwrap();
        }
        let spec = CaSpec {
            validity: ca_validity,
            ..setup::ca_spec(&inv)
        };
        Ca::ensure(&state, &spec).unwrap();
        setup::ensure(&state, &inv).unwrap();
        (tmp, state, inv)
    }

    #[test]
    fn a_young_ca_is_not_due_and_an_old_one_starts_stage_1() {
        let (_t, state, inv) = setup("", Duration::days(30));
        let now = OffsetDateTime::now_utc();
        let plan = ca_plan(&state, &inv, now).unwrap();
        assert!(matches!(plan.step, CaStep::NotDue), "{plan:?}");
        // The default window is a third of the lifetime: 10 of 30 days.
        assert_eq!((plan.not_after - plan.renew_after).whole_days(), 10);
        let plan = ca_plan(&state, &inv, now + Duration::days(21)).unwrap();
        assert!(
            matches!(plan.step, CaStep::Run { stage: 1, .. }),
            "{plan:?}"
        );
    }

    #[test]
    fn each_stage_waits_for_the_soak_of_the_one_before() {
        let (_t, state, inv) = setup("10m", Duration::minutes(30));
        let t0 = OffsetDateTime::now_utc();
        rotation::ensure_next(&state, &setup::ca_spec(&inv)).unwrap();
        // Stage 1 in place with no record: the soak counts from now.
        let plan = ca_plan(&state, &inv, t0).unwrap();
        assert!(
            matches!(plan.step, CaStep::Wait { stage: 2, .. }),
            "{plan:?}"
        );
        record(&state, plan.observed.unwrap()).unwrap();
        let plan = ca_plan(&state, &inv, t0 + Duration::minutes(5)).unwrap();
        let CaStep::Wait { until, .. } = plan.step else {
            panic!("{plan:?}")
        };
        assert!((until - (t0 + Duration::minutes(10))).abs() < Duration::seconds(2));
        let plan = ca_plan(&state, &inv, t0 + Duration::minutes(11)).unwrap();
        assert!(
            matches!(plan.step, CaStep::Run { stage: 2, .. }),
            "{plan:?}"
        );
        // A stage that did not complete is resumed at once.
        record(&state, Reached::new(Stage::Leaf, t0, false, false)).unwrap();
        rotation::promote(&state).unwrap();
        let plan = ca_plan(&state, &inv, t0 + Duration::minutes(12)).unwrap();
        assert!(
            matches!(plan.step, CaStep::Run { stage: 2, .. }),
            "{plan:?}"
        );
        record(
            &state,
            Reached::new(Stage::Leaf, t0 + Duration::minutes(12), true, false),
        )
        .unwrap();
        let plan = ca_plan(&state, &inv, t0 + Duration::minutes(13)).unwrap();
        assert!(
            matches!(plan.step, CaStep::Wait { stage: 3, .. }),
            "{plan:?}"
        );
        let plan = ca_plan(&state, &inv, t0 + Duration::minutes(23)).unwrap();
        assert!(
            matches!(plan.step, CaStep::Run { stage: 3, .. }),
            "{plan:?}"
        );
    }

    #[test]
    fn a_leaf_that_expires_with_its_ca_is_left_to_the_ca() {
        let (_t, state, inv) = setup("", Duration::minutes(30));
        let now = OffsetDateTime::now_utc();
        assert_eq!(leaf_due_locally(&state, &inv, now).unwrap(), None);
        let (_t, state, inv) = setup("", Duration::days(3650));
        let ca = Ca::load_from(&state).unwrap().unwrap();
        let spec = crate::pki::LeafSpec {
            validity: Duration::days(5),
            ..setup::leaf_spec(&inv)
        };
        leaf::replace(&state, &ca, &spec).unwrap();
        let why = leaf_due_locally(&state, &inv, now).unwrap().unwrap();
        assert!(why.contains("expires soon"), "{why}");
    }
}
