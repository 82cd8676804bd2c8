//! Running one step of a playbook over the hosts: each host's changes from its module, shown
//! (check mode) or made: all hosts at once, or `serial` at a time halting at the first
//! failure; changes marked one-at-a-time go one host at a time. A `once` step runs its module
//! once for the fleet.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures::future::join_all;

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

/// What a per-host step did: the host after which a roll halted, if one did, and the hosts
/// (indexes into the runs) where it made changes.
#[derive(Default)]
pub(super) struct StepEnd {
    pub halted_after: Option<String>,
    pub changed: Vec<usize>,
}

/// A per-host step.
pub(super) async fn per_host(cx: &StepCx<'_>, step: &Step, runs: &mut [Run<'_, '_>]) -> StepEnd {
    let StepCx { check, out, .. } = *cx;
    let mut planned: Vec<(usize, Vec<Change>)> = Vec::new();
    for (i, r) in runs.iter_mut().enumerate() {
        if !r.node.alive() || !step.hosts.matches(r.node.host) {
            continue;
        }
        match changes_for(cx, step, r) {
            Ok(changes) => planned.push((i, changes)),
            Err(e) => {
                let msg = format!("{e:#}");
                out.line(&format!("  {}: FAILED: {msg}", r.node.host.name));
                r.fail(&step.name, msg);
            }
        }
    }
    if check {
        let exclusive: Vec<&str> = planned
            .iter()
            .filter(|(_, c)| c.iter().any(|c| c.one_at_a_time))
            .map(|(i, _)| runs[*i].node.host.name.as_str())
            .collect();
        if !exclusive.is_empty() {
            out.line(&format!("  one host at a time: {}", exclusive.join(", ")));
        }
        let shown: Vec<(&str, &[Change])> = planned
            .iter()
            .map(|(i, c)| (runs[*i].node.host.name.as_str(), c.as_slice()))
            .collect();
        out.changes(&shown);
        for (i, changes) in &planned {
            runs[*i].done(&step.name, changes);
        }
        return StepEnd::default();
    }
    // Hosts whose changes disrupt them go one at a time after the others, as a roll does.
    let (exclusive, parallel): (Vec<_>, Vec<_>) = planned
        .into_iter()
        .partition(|(_, c)| c.iter().any(|c| c.one_at_a_time));
    let batches: Vec<Vec<(usize, Vec<Change>)>> = match step.serial {
        Some(n) => chunks(parallel, n.max(1)),
        None if parallel.is_empty() => Vec::new(),
        None => vec![parallel],
    };
    let rolls = step.serial.is_some();
    let mut changed = Vec::new();
    for (batch, halts) in batches
        .into_iter()
        .map(|b| (b, rolls))
        .chain(chunks(exclusive, 1).into_iter().map(|b| (b, true)))
    {
        let results = join_all(batch.iter().map(|(i, changes)| {
            let node = &runs[*i].node;
            let remote = node.remote.as_ref().expect("alive nodes are connected");
            apply_all(&step.name, &node.host.name, remote, changes)
        }))
        .await;
        let results: Vec<Result<()>> = batch
            .iter()
            .zip(results)
            .map(|((i, _), (result, took))| {
                runs[*i].node.busy += took;
                result
            })
            .collect();
        let mut failed = None;
        let made: Vec<(&str, &[Change])> = batch
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_ok())
            .map(|((i, c), _)| (runs[*i].node.host.name.as_str(), c.as_slice()))
            .collect();
        out.changes(&made);
        for ((i, changes), result) in batch.iter().zip(results) {
            let r = &mut runs[*i];
            match result {
                Ok(()) => {
                    r.done(&step.name, changes);
                    if !changes.is_empty() {
                        changed.push(*i);
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    out.line(&format!("  {}: FAILED: {msg}", r.node.host.name));
                    r.fail(&step.name, msg);
                    failed.get_or_insert(r.node.host.name.clone());
                }
            }
        }
        if let Some(after) = failed.filter(|_| halts) {
            for r in runs.iter_mut() {
                let waiting = r.node.alive()
                    && step.hosts.matches(r.node.host)
                    && !r.report.steps.iter().any(|s| s.step == step.name);
                if waiting {
                    r.fail(
                        &step.name,
                        format!("not started: the roll halted after {after} failed"),
                    );
                }
            }
            return StepEnd {
                halted_after: Some(after),
                changed,
            };
        }
    }
    StepEnd {
        halted_after: None,
        changed,
    }
}

fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some(last) if last.len() < size => last.push(item),
            _ => out.push(vec![item]),
        }
    }
    out
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
    for (host, error) in outcome.failed {
        out.line(&format!("  {host}: FAILED: {error}"));
        if let Some(r) = runs.iter_mut().find(|r| r.node.host.name == host) {
            r.fail(&step.name, error);
        }
    }
    Ok(outcome.phases)
}
