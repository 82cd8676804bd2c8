//! Consecutive per-host steps without a roll, made by each host on its own: a host goes on to
//! its next step as soon as it is done with one, so a slow host (the registry host loading its
//! image, a load balancer installing packages) does not hold the others back, and the others
//! do not hold it back. Hosts wait for each other only at a change marked one-at-a-time (a
//! restart): such changes go one host at a time, and the first that fails halts the run: no
//! host starts another one, and no host starts another step. What each step did is printed,
//! grouped per step as a lone step prints it, when every host is through.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;

use super::change::Change;
use super::playbook::Step;
use super::probe::ProbeRequest;
use super::report::Phase;
use super::step::{Run, StepCx, apply_all, changes_for};
use crate::inventory::Host;

/// What one host did in one step of the segment.
struct Made {
    step: usize,
    changes: Vec<Change>,
    /// `None`: made; `Some(why)`: failed.
    error: Option<String>,
    took: Duration,
}

/// Which step halted the segment, and after which host.
pub(super) struct Halt {
    pub step: usize,
    pub after: String,
}

/// Run `steps` (per host, no `serial`, not `once`; changes made, not planned) on `runs`.
/// `request` says what to read again on a host after a step that installs the engine changed
/// it. Returns each step's phase (the slowest host's time in it) and the halt, if any.
pub(super) async fn run(
    cx: &StepCx<'_>,
    steps: &[Step],
    runs: &mut [Run<'_, '_>],
    request: &(dyn Fn(&Host) -> ProbeRequest + Sync),
) -> (Vec<Phase>, Option<Halt>) {
    let gates: Vec<tokio::sync::Mutex<()>> =
        steps.iter().map(|_| tokio::sync::Mutex::new(())).collect();
    let halt: Mutex<Option<Halt>> = Mutex::new(None);
    let made = join_all(
        runs.iter_mut()
            .map(|r| one_host(cx, steps, r, &gates, &halt, request)),
    )
    .await;
    let halt = halt.into_inner().unwrap_or_else(|p| p.into_inner());

    let mut phases = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let of_step = || {
            made.iter()
                .zip(runs.iter())
                .flat_map(|(m, r)| m.iter().filter(|m| m.step == k).map(move |m| (m, r)))
        };
        if of_step().next().is_none() {
            continue;
        }
        cx.out.step(&step.name);
        let ok: Vec<(&str, &[Change])> = of_step()
            .filter(|(m, _)| m.error.is_none())
            .map(|(m, r)| (r.node.host.name.as_str(), m.changes.as_slice()))
            .collect();
        cx.out.changes(&ok);
        for (m, r) in of_step() {
            if let Some(e) = &m.error {
                cx.out.line(&format!("  {}: FAILED: {e}", r.node.host.name));
            }
        }
        let slowest = of_step().map(|(m, _)| m.took).max().unwrap_or_default();
        phases.push(Phase {
            phase: step.name.clone(),
            seconds: slowest.as_secs_f64(),
        });
    }
    (phases, halt)
}

/// One host through the steps, until it fails or the run halts.
async fn one_host(
    cx: &StepCx<'_>,
    steps: &[Step],
    r: &mut Run<'_, '_>,
    gates: &[tokio::sync::Mutex<()>],
    halt: &Mutex<Option<Halt>>,
    request: &(dyn Fn(&Host) -> ProbeRequest + Sync),
) -> Vec<Made> {
    let halted_after = || {
        let h = halt.lock().unwrap_or_else(|p| p.into_inner());
        h.as_ref().map(|h| h.after.clone())
    };
    let mut made = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        if !r.node.alive() || !step.hosts.matches(r.node.host) {
            continue;
        }
        if halted_after().is_some() {
            break;
        }
        let changes = match changes_for(cx, step, r) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("{e:#}");
                r.fail(&step.name, msg.clone());
                made.push(Made {
                    step: k,
                    changes: Vec::new(),
                    error: Some(msg),
                    took: Duration::ZERO,
                });
                break;
            }
        };
        let exclusive = changes.iter().any(|c| c.one_at_a_time);
        let _turn = match exclusive {
            true => Some(gates[k].lock().await),
            false => None,
        };
        if let Some(after) = halted_after() {
            if exclusive {
                r.fail(
                    &step.name,
                    format!("not started: the roll halted after {after} failed"),
                );
            }
            break;
        }
        let remote = r.node.remote.as_ref().expect("alive nodes are connected");
        let (result, took) = apply_all(&step.name, &r.node.host.name, remote, &changes).await;
        r.node.busy += took;
        let error = match result {
            Ok(()) => {
                r.done(&step.name, &changes);
                None
            }
            Err(e) => {
                let msg = format!("{e:#}");
                r.fail(&step.name, msg.clone());
                if exclusive {
                    let mut h = halt.lock().unwrap_or_else(|p| p.into_inner());
                    h.get_or_insert(Halt {
                        step: k,
                        after: r.node.host.name.clone(),
                    });
                }
                Some(msg)
            }
        };
        let failed = error.is_some();
        let changed = !changes.is_empty();
        made.push(Made {
            step: k,
            changes,
            error,
            took,
        });
        if failed {
            break;
        }
        if step.module.provides_engine() && changed && !r.reprobe(step, &request(r.node.host)).await
        {
            break;
        }
    }
    made
}
