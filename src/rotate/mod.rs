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

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use time::{Duration, OffsetDateTime};

use crate::deployed;
use crate::engine::fleet::{self, Node};
use crate::engine::{Options, RunReport, limit, runner};
use crate::inventory::{Host, Inventory, Role};
use crate::pki::rotation::{self, Phase};
use crate::pki::state::{CA_CERT, CA_NEXT_CERT, REGISTRY_CERT};
use crate::pki::{self, Ca, StateDir, inspect};
use crate::tls_setup as setup;

mod recover;
mod stage;

pub use stage::{Decision, Stage, derive};

/// How long a new registry certificate is valid, from `--cert-validity` (e.g. `10m`,
/// `365d`). Short ones are for rehearsals and tests; they fall inside renew_before_days at
/// once, so `certs check` reports them and `apply` renews them.
pub use crate::duration::parse as parse_validity;

/// What a rotate run is asked to do.
pub struct RotateOptions {
    pub forks: usize,
    /// Show the changes, change nothing (in a scratch copy of the state directory).
    pub plan: bool,
    pub quiet: bool,
    pub state_dir: PathBuf,
    /// `--limit`: refused when it leaves out a host that must take part.
    pub limit: Option<String>,
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
    /// The inventory asks for the smoke test (`smoke_test: false` makes its skip normal).
    #[serde(skip)]
    pub smoke_wanted: bool,
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
            .unverified
            .as_ref()
            .filter(|_| self.smoke_wanted)
            .map(|u| &u.why)
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

/// The hosts a rotation works on. A limit may leave out only hosts that play no part: for
/// `--leaf`, agents (their CA does not change); for `--ca`, none (every host must trust the
/// next CA before a replica serves a certificate from it).
fn rotation_hosts<'a>(inv: &'a Inventory, opts: &RotateOptions, ca: bool) -> Result<Vec<&'a Host>> {
    let hosts = limit::select(inv, opts.limit.as_deref())?;
    let left_out: Vec<&str> = inv
        .hosts
        .iter()
        .filter(|h| !hosts.iter().any(|s| s.name == h.name))
        .filter(|h| ca || h.has_role(Role::Registry) || h.has_role(Role::Lb))
        .map(|h| h.name.as_str())
        .collect();
    if left_out.is_empty() {
        return Ok(hosts);
    }
    let why = if ca {
        "every host must trust the next CA before a registry host serves a certificate from \
         it, and lose the old one only after every registry host stopped serving it"
    } else {
        "every registry host and load balancer must serve the new certificate, or clients see \
         two certificates for one name (agents may be left out: their CA does not change)"
    };
    bail!(
        "rotate --{}: --limit {:?} leaves out {}, which must take part: {why}. Run without \
         --limit (or with one that includes them)",
        if ca { "ca" } else { "leaf" },
        opts.limit.as_deref().unwrap_or_default(),
        left_out.join(", ")
    )
}

/// One connection per host for the whole rotation, each host's run lock taken (not for a
/// plan, which changes nothing).
async fn connect<'a>(hosts: &[&'a Host], opts: &RotateOptions) -> Vec<Node<'a>> {
    let mut nodes = fleet::connect(hosts, opts.forks).await;
    if !opts.plan {
        for note in fleet::lock(&mut nodes).await {
            opts.say(&format!("note: {note}"));
        }
    }
    nodes
}

/// The rotate playbook over the connections the rotation holds.
async fn run_playbook(
    inv: &Inventory,
    state: &StateDir,
    opts: &RotateOptions,
    nodes: &mut [Node<'_>],
) -> Result<RunReport> {
    let options = Options {
        check: opts.plan,
        ..Options::prepared(state.root(), opts.forks, opts.quiet)
    };
    runner::run_on(inv, &crate::playbooks::rotate()?, &options, state, nodes).await
}

fn no_ca(state: &StateDir) -> String {
    format!(
        "no CA in {}: run `regboot apply` first, or adopt a CA backup with `regboot certs import`",
        state.root().display()
    )
}

fn load_ca(state: &StateDir) -> Result<Ca> {
    Ca::load_from(state)?.with_context(|| no_ca(state))
}

/// `rotate --leaf`: a new registry certificate (the inventory's SANs, `validity` or the
/// inventory's), rolled to the registry hosts one at a time. Clients keep their CA files.
pub async fn leaf(
    inv: &Inventory,
    validity: Option<Duration>,
    opts: &RotateOptions,
) -> Result<StageRun> {
    let hosts = rotation_hosts(inv, opts, false)?;
    let real = StateDir::open(&opts.state_dir)?;
    let _lock = real.lock()?;
    let scratch = if opts.plan {
        Some(Scratch::of(&real)?)
    } else {
        None
    };
    let state = scratch.as_ref().map_or(&real, |s| &s.dir);
    let why = {
        let ca = load_ca(state)?;
        if ca.info().not_after <= OffsetDateTime::now_utc() {
            bail!(
                "the CA expired on {}: a certificate from it would not be trusted; run \
                 `regboot rotate --ca`",
                pki::inspect::date(ca.info().not_after)
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
                pki::inspect::date(o.not_after)
            ),
            None => "no previous certificate".into(),
        };
        format!(
            "issued registry certificate serial {} for {} valid until {}; {replaced}",
            short(&new.serial),
            new.sans().join(", "),
            pki::inspect::date(new.not_after)
        )
    };
    opts.say(&format!("rotate --leaf: {why}"));
    let mut nodes = connect(&hosts, opts).await;
    let report = run_playbook(inv, state, opts, &mut nodes).await;
    fleet::close(&mut nodes).await;
    let report = report?;
    Ok(StageRun {
        smoke_wanted: inv.smoke_test,
        stage: "leaf".into(),
        why,
        report,
    })
}

fn short(serial: &str) -> &str {
    &serial[..serial.len().min(16)]
}

/// `rotate --ca`: run the stage the hosts call for, then the next ones (or only `only`),
/// each ending with the smoke test. Stops at the first stage that does not complete. One
/// connection per host and the state directory's lock are held from start to end.
pub async fn ca(
    inv: &Inventory,
    only: Option<Stage>,
    opts: &RotateOptions,
) -> Result<Vec<StageRun>> {
    let hosts = rotation_hosts(inv, opts, true)?;
    let real = StateDir::open(&opts.state_dir)?;
    let _lock = real.lock()?;
    let mut nodes = connect(&hosts, opts).await;
    let runs = ca_stages(inv, only, opts, &real, &mut nodes).await;
    fleet::close(&mut nodes).await;
    runs
}

/// `apply --replace-ca`: read back from the hosts what the lost state directory held (see
/// `recover`), then every stage of `rotate --ca`, over the same connections and lock.
pub async fn replace_ca(inv: &Inventory, opts: &RotateOptions) -> Result<Vec<StageRun>> {
    let hosts = rotation_hosts(inv, opts, true)?;
    let real = StateDir::open(&opts.state_dir)?;
    let _lock = real.lock()?;
    let mut nodes = connect(&hosts, opts).await;
    fleet::probe(&mut nodes, |h| {
        recover::request(inv, h.has_role(Role::Registry))
    })
    .await;
    let runs = match recover::recover(inv, &real, &nodes) {
        Ok(note) => {
            opts.say(&format!("replace-ca: {note}"));
            ca_stages(inv, None, opts, &real, &mut nodes).await
        }
        Err(e) => Err(e),
    };
    fleet::close(&mut nodes).await;
    runs
}

async fn ca_stages(
    inv: &Inventory,
    only: Option<Stage>,
    opts: &RotateOptions,
    real: &StateDir,
    nodes: &mut [Node<'_>],
) -> Result<Vec<StageRun>> {
    let mut runs: Vec<StageRun> = Vec::new();
    loop {
        opts.say("reading the CA files and served certificates of every host");
        fleet::probe(nodes, |_| deployed::request(inv)).await;
        let survey = deployed::survey(inv, nodes).await;
        let scratch = if opts.plan {
            Some(Scratch::of(real)?)
        } else {
            None
        };
        let state = scratch.as_ref().map_or(real, |s| &s.dir);
        let (decision, expired_note) = {
            // The current CA's certificate is enough: its key may be lost (--replace-ca).
            let current_pem = state.read(CA_CERT)?.with_context(|| no_ca(state))?;
            let current = inspect::cert_info(&current_pem)?;
            let phase = rotation::phase(state)?;
            let next = state.read(CA_NEXT_CERT)?;
            let decision = derive(phase, &survey, &current_pem, next.as_deref())?;
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
                && current.not_after <= now)
                .then(|| {
                    format!(
                        "the current CA expired on {}: pulls fail until stage 2 completes",
                        pki::inspect::date(current.not_after)
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
        let report = run_playbook(inv, state, opts, nodes).await?;
        let run = StageRun {
            smoke_wanted: inv.smoke_test,
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
            rotation::ensure_next(state, &setup::ca_spec(inv))?;
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

    #[test]
    fn stage_1_replaces_an_unconstrained_ca_with_a_constrained_one() {
        let inv = crate::modules::testing::inventory("");
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (old, _) = crate::pki::Ca::ensure(&state, &crate::pki::CaSpec::default()).unwrap();
        assert_eq!(old.info().name_constraints, None);
        prepare(&state, &inv, Stage::Trust, Phase::Steady).unwrap();
        let next = state
            .read(crate::pki::state::CA_NEXT_CERT)
            .unwrap()
            .unwrap();
        let constraints = crate::pki::cert_info(&next)
            .unwrap()
            .name_constraints
            .expect("the next CA is constrained");
        let spec = setup::leaf_spec(&inv);
        assert!(constraints.outside(&spec).is_empty(), "{constraints:?}");
        assert!(constraints.permits_dns("registry.test"));
        assert!(!constraints.permits_dns("example.com"));
    }
}
