//! The one scheduler of per-host steps. The runner hands it a segment: the per-host steps
//! between two `once` steps (a lone step is a segment of one). Each host goes through the
//! segment at its own pace: it starts its next step as soon as it is done with one, so a slow
//! host (the registry host loading its image, a load balancer installing packages) does not
//! hold the others back, and the others do not hold it back.
//!
//! Hosts wait for each other only at a step's gates, and only when they have changes to make
//! there (a host with nothing to change passes without waiting): `serial: N` lets N hosts make
//! the step's changes at once, a change marked one-at-a-time goes one host at a time; a free
//! place goes to the waiting host first in the inventory (`gate.rs`). A step marked
//! `wait_for_all` lets a host make its changes only once every host is through the steps
//! before it. The first failure of a gated change halts the run: no host starts that step's
//! gated changes after it (those waiting fail, "not started"), and no host starts another step.
//!
//! A plan goes the same way with a sink that records the changes instead of making them (and
//! so never reprobes a host). What each step did is printed, grouped per step, when every host
//! is through the segment.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::watch;

use super::change::Change;
use super::playbook::Step;
use super::probe::ProbeRequest;
use super::report::Phase;
use super::step::{Run, StepCx, apply_all, changes_for};
use crate::inventory::Host;
use gate::{Gate, Inside};

mod gate;

/// How one host's step ended.
enum Outcome {
    /// Its module could not say what to change.
    Unplanned(String),
    /// Made (apply) or recorded (plan).
    Made,
    /// Making them failed.
    Failed(String),
}

/// What one host did in one step of the segment.
struct Made {
    step: usize,
    changes: Vec<Change>,
    outcome: Outcome,
    took: Duration,
}

/// Which step halted the segment, and after which host.
pub(super) struct Halt {
    pub step: usize,
    pub after: String,
}

/// A step's gates: its roll (`serial`) and its one-at-a-time changes.
struct Gates {
    roll: Option<Gate>,
    one: Gate,
}

/// What the hosts of a segment share.
struct Shared<'s> {
    steps: &'s [Step],
    gates: Vec<Gates>,
    /// Per host, the first step of the segment it is not through (`steps.len()`: done, failed
    /// or stopped by a halt): what `wait_for_all` waits on.
    at: watch::Sender<Vec<usize>>,
    halt: Mutex<Option<Halt>>,
    /// What to read again on a host after a step that installs the engine changed it.
    request: &'s (dyn Fn(&Host) -> ProbeRequest + Sync),
}

impl Shared<'_> {
    fn halted_after(&self) -> Option<String> {
        let h = self.halt.lock().unwrap_or_else(|p| p.into_inner());
        h.as_ref().map(|h| h.after.clone())
    }

    fn halt(&self, step: usize, after: &str) {
        let mut h = self.halt.lock().unwrap_or_else(|p| p.into_inner());
        h.get_or_insert(Halt {
            step,
            after: after.to_string(),
        });
    }
}

/// Run `steps` (per host, none `once`) on `runs`: made in apply, recorded in a plan (`cx.check`).
/// Returns each step's phase (the slowest host's time in it) and the halt, if any.
pub(super) async fn run(
    cx: &StepCx<'_>,
    steps: &[Step],
    runs: &mut [Run<'_, '_>],
    request: &(dyn Fn(&Host) -> ProbeRequest + Sync),
) -> (Vec<Phase>, Option<Halt>) {
    let shared = Shared {
        steps,
        gates: steps
            .iter()
            .map(|s| Gates {
                roll: s.serial.map(Gate::new),
                one: Gate::new(1),
            })
            .collect(),
        at: watch::Sender::new(vec![0; runs.len()]),
        halt: Mutex::new(None),
        request,
    };
    let made =
        join_all((runs.iter_mut().enumerate()).map(|(i, r)| one_host(cx, &shared, i, r))).await;
    let halt = shared.halt.into_inner().unwrap_or_else(|p| p.into_inner());
    let phases = (steps.iter().enumerate())
        .filter_map(|(k, step)| {
            let of_step: Vec<(&str, &Made)> = (made.iter().zip(runs.iter()))
                .flat_map(|(m, r)| {
                    let host = r.node.host.name.as_str();
                    m.iter().filter(|m| m.step == k).map(move |m| (host, m))
                })
                .collect();
            print_step(cx, step, &of_step)
        })
        .collect();
    (phases, halt)
}

/// Print what the hosts did in `step` (as a lone step printed it); its phase, if any host
/// took part.
fn print_step(cx: &StepCx<'_>, step: &Step, of_step: &[(&str, &Made)]) -> Option<Phase> {
    let out = cx.out;
    if of_step.is_empty() {
        return None;
    }
    out.step(&step.name);
    for (host, m) in of_step {
        if let Outcome::Unplanned(e) = &m.outcome {
            out.line(&format!("  {host}: FAILED: {e}"));
        }
    }
    let made: Vec<(&str, &[Change])> = (of_step.iter())
        .filter(|(_, m)| matches!(m.outcome, Outcome::Made))
        .map(|(host, m)| (*host, m.changes.as_slice()))
        .collect();
    let one_at_a_time: Vec<&str> = (made.iter())
        .filter(|(_, c)| c.iter().any(|c| c.one_at_a_time))
        .map(|(host, _)| *host)
        .collect();
    if cx.check && !one_at_a_time.is_empty() {
        out.line(&format!(
            "  one host at a time: {}",
            one_at_a_time.join(", ")
        ));
    }
    out.changes(&made);
    for (host, m) in of_step {
        if let Outcome::Failed(e) = &m.outcome {
            out.line(&format!("  {host}: FAILED: {e}"));
        }
    }
    let slowest = of_step
        .iter()
        .map(|(_, m)| m.took)
        .max()
        .unwrap_or_default();
    Some(Phase {
        phase: step.name.clone(),
        seconds: slowest.as_secs_f64(),
    })
}

/// Host `i` through the steps, until it is done, fails or the run halts.
async fn one_host(
    cx: &StepCx<'_>,
    shared: &Shared<'_>,
    i: usize,
    r: &mut Run<'_, '_>,
) -> Vec<Made> {
    let mut made = Vec::new();
    for (k, step) in shared.steps.iter().enumerate() {
        shared.at.send_modify(|at| at[i] = k);
        if !r.node.alive() || shared.halted_after().is_some() {
            break;
        }
        if !step.hosts.matches(r.node.host) {
            continue;
        }
        let mut changes = match changes_for(cx, step, r) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("{e:#}");
                r.fail(&step.name, msg.clone());
                made.push(Made {
                    step: k,
                    changes: Vec::new(),
                    outcome: Outcome::Unplanned(msg),
                    took: Duration::ZERO,
                });
                break;
            }
        };
        let (gated, inside) = turn(shared, i, k, &changes).await;
        if let Some(after) = shared.halted_after() {
            if gated {
                let why = format!("not started: the roll halted after {after} failed");
                r.fail(&step.name, why);
            }
            break;
        }
        let (result, took) = match cx.check {
            true => {
                // Recorded to be shown: what it would write is in the diff, not needed whole.
                for c in &mut changes {
                    c.forget_data();
                }
                (Ok(()), Duration::ZERO)
            }
            false => {
                let remote = r.node.remote.as_ref().expect("alive nodes are connected");
                apply_all(&step.name, &r.node.host.name, remote, &changes).await
            }
        };
        r.node.busy += took;
        let outcome = match result {
            Ok(()) => {
                r.done(&step.name, &changes);
                Outcome::Made
            }
            Err(e) => {
                let msg = format!("{e:#}");
                r.fail(&step.name, msg.clone());
                if gated {
                    shared.halt(k, &r.node.host.name);
                }
                Outcome::Failed(msg)
            }
        };
        drop(inside);
        let go_on = matches!(outcome, Outcome::Made);
        let reprobe = go_on && !cx.check && step.module.provides_engine() && !changes.is_empty();
        made.push(Made {
            step: k,
            changes,
            outcome,
            took,
        });
        if !go_on || reprobe && !r.reprobe(step, &(shared.request)(r.node.host)).await {
            break;
        }
    }
    shared.at.send_modify(|at| at[i] = shared.steps.len());
    made
}

/// Wait until host `i` may make `changes` in step `k`: every host through the steps before
/// it (`wait_for_all`), then the step's gates its changes take (queued in the first before the
/// wait, so hosts that wait together enter in inventory order). Nothing to change: no wait.
/// Returns whether a gate was taken, and the places inside (held while the changes are made).
async fn turn<'g>(
    shared: &'g Shared<'_>,
    i: usize,
    k: usize,
    changes: &[Change],
) -> (bool, Vec<Inside<'g>>) {
    if changes.is_empty() {
        return (false, Vec::new());
    }
    let gates = &shared.gates[k];
    let one = changes.iter().any(|c| c.one_at_a_time);
    let mut gates = [gates.roll.as_ref(), one.then_some(&gates.one)]
        .into_iter()
        .flatten();
    let first = gates.next().map(|g| g.queue(i));
    if shared.steps[k].wait_for_all {
        let mut at = shared.at.subscribe();
        // The sender lives as long as the segment: this cannot end in an error.
        let _ = at.wait_for(|at| at.iter().all(|&s| s >= k)).await;
    }
    let mut inside = Vec::new();
    if let Some(ticket) = first {
        inside.push(ticket.enter().await);
    }
    // The one-at-a-time gate is queued only from inside the roll's: a host queued there first
    // would wait for a slot of the roll another host holds while waiting for it.
    for gate in gates {
        inside.push(gate.queue(i).enter().await);
    }
    (!inside.is_empty(), inside)
}
