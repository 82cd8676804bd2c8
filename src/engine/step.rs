//! What the steps of a run share: each host's run (its node, report and memo), a module's
//! changes for a host, making them; and the `once` step, which runs its module once for the
//! fleet. The per-host steps are scheduled by `pipeline.rs`.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::change::Change;
use super::fleet::Node;
use super::footprint;
use super::memo::Memo;
use super::module::{Ctx, FleetCx, Member};
use super::playbook::{Playbook, State, Step};
use super::printer::Printer;
use super::probe::{self, ProbeRequest};
use super::progress;
use super::report::{HostReport, Phase, RunReport, Status, StepResult, Unverified, Verification};
use crate::host::RemoteHost;
use crate::inventory::Inventory;
use crate::material::Material;
use crate::render::Templates;

/// What every step of a run shares.
pub(super) struct StepCx<'a> {
    pub inv: &'a Inventory,
    pub material: &'a Material,
    pub templates: &'a Templates,
    /// Plan: show, change nothing.
    pub check: bool,
    pub out: &'a Printer,
    pub playbook: &'a Playbook,
}

/// One host during the run: its fleet node, report and shared per-host values.
pub(super) struct Run<'n, 'a> {
    pub node: &'n mut Node<'a>,
    pub report: HostReport,
    pub memo: Memo,
}

impl Run<'_, '_> {
    pub fn fail(&mut self, step: &str, error: String) {
        self.node.fail(error);
        self.report.steps.push(StepResult {
            step: step.to_string(),
            status: Status::Failed,
            changes: Vec::new(),
            error: self.node.error.clone(),
        });
    }

    /// After `step` (one that installs or starts the engine) made changes on this host, read
    /// it again: the package brought runtimes the later steps must see. False when the host
    /// failed.
    pub async fn reprobe(&mut self, step: &Step, req: &ProbeRequest) -> bool {
        let Some(remote) = self.node.remote.as_ref().filter(|_| self.node.alive()) else {
            return self.node.alive();
        };
        match probe::probe(&remote.session, req).await {
            Ok(state) => self.node.state = Some(state),
            Err(e) => self.fail(&step.name, format!("reading the host again: {e:#}")),
        }
        self.node.alive()
    }

    pub fn done(&mut self, step: &str, changes: &[Change]) {
        self.report.steps.push(StepResult {
            step: step.to_string(),
            status: if changes.is_empty() {
                Status::Ok
            } else {
                Status::Changed
            },
            changes: changes.iter().map(|c| c.summary.clone()).collect(),
            error: None,
        });
    }
}

/// Make `changes` on `host`, saying which one it is on; returns how long they took.
pub(super) async fn apply_all(
    step: &str,
    host: &str,
    remote: &RemoteHost,
    changes: &[Change],
) -> (Result<()>, Duration) {
    let started = Instant::now();
    let mut result = Ok(());
    for c in changes {
        progress::host(host, &format!("{step}: {}", c.summary));
        result = c.apply(remote).await;
        if result.is_err() {
            break;
        }
    }
    (result, started.elapsed())
}

/// The changes `step`'s module wants on the host of `r` (alive, probed).
pub(super) fn changes_for(cx: &StepCx<'_>, step: &Step, r: &Run<'_, '_>) -> Result<Vec<Change>> {
    let state = r.node.state.as_ref().expect("alive nodes were probed");
    let state = footprint::scoped(state, step.module, cx.inv, r.node.host, step.state);
    let modules = cx.playbook.modules_on(r.node.host);
    let cx = Ctx {
        inv: cx.inv,
        host: r.node.host,
        material: cx.material,
        state: &state,
        templates: cx.templates,
        memo: &r.memo,
        modules: &modules,
    };
    match step.state {
        State::Present => step.module.present(&cx),
        State::Absent => step.module.absent(&cx),
    }
}

/// A `once` step: the module acts on the fleet's reachable hosts of the step's role. Returns
/// where its time went.
pub(super) async fn once(
    cx: &StepCx<'_>,
    step: &Step,
    runs: &mut [Run<'_, '_>],
    report: &mut RunReport,
) -> Result<Vec<Phase>> {
    let StepCx {
        inv,
        material,
        check,
        out,
        ..
    } = *cx;
    let members: Vec<Member> = runs
        .iter()
        .filter(|r| r.node.alive() && step.hosts.matches(r.node.host))
        .inspect(|r| {
            if !check {
                progress::host(&r.node.host.name, &step.name);
            }
        })
        // A plan keeps connections only for steps that use them (`Module::plans_over_ssh`).
        .filter_map(|r| {
            Some(Member {
                host: r.node.host,
                remote: r.node.remote.as_ref()?,
                state: r.node.state.as_ref().expect("alive nodes were probed"),
            })
        })
        .collect();
    let on_verified = |s: &Verification| {
        let status = if s.ok { "ok" } else { "FAILED" };
        progress::host(&s.host, &format!("{} {status}", s.action));
        out.line(&format!(
            "  {}: {} {status} ({:.1} s): {}",
            s.host, s.action, s.seconds, s.detail
        ));
    };
    let cx = FleetCx {
        inv,
        material,
        check,
        members,
        on_verified: &on_verified,
    };
    let outcome = step.module.once(&cx).await?;
    for note in outcome.notes {
        out.line(&note);
        report.notes.push(note);
    }
    for s in &outcome.verified {
        if let Some(r) = runs.iter_mut().find(|r| r.node.host.name == s.host) {
            r.node.busy += Duration::from_secs_f64(s.seconds);
        }
    }
    report.verified.extend(outcome.verified);
    if let Some((why, turned_off)) = outcome.not_verified {
        out.line(&format!("  skipped: {why}"));
        report.unverified.get_or_insert(Unverified {
            step: step.name.clone(),
            why,
            turned_off,
        });
    }
    for (host, changes) in outcome.changed {
        for c in &changes {
            out.line(&format!("  {host}: {c}"));
        }
        if let Some(r) = runs.iter_mut().find(|r| r.node.host.name == host) {
            r.report.steps.push(StepResult {
                step: step.name.clone(),
                status: Status::Changed,
                changes,
                error: None,
            });
        }
    }
    for (host, error) in outcome.failed {
        out.line(&format!("  {host}: FAILED: {error}"));
        if let Some(r) = runs.iter_mut().find(|r| r.node.host.name == host) {
            r.fail(&step.name, error);
        }
    }
    Ok(outcome.phases)
}
