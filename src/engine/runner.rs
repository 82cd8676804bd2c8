//! Runs a playbook: open the fleet (connect, lock and probe every host inside the limit),
//! check that the hosts' CA is the state directory's, prepare the material, then run the
//! steps in order: each segment of per-host steps through the scheduler (`pipeline.rs`),
//! each `once` step (`step.rs`) between them, halting the run when a roll halts.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use super::ca_guard;
use super::fleet::{self, Node};
use super::footprint;
use super::limit;
use super::memo::Memo;
use super::module::PrepareCx;
use super::pipeline;
use super::playbook::{Playbook, State, Step};
use super::printer::Printer;
use super::probe::ProbeRequest;
use super::report::{HostReport, Phase, RunReport};
use super::step::{self, Run, StepCx};
use crate::inventory::{Host, Inventory, TlsMode};
use crate::material::Material;
use crate::pki::StateDir;
use crate::render::Templates;

pub struct Options {
    /// Show what would change, change nothing (plan).
    pub check: bool,
    /// Print unified diffs of files (always on in check mode).
    pub diff: bool,
    pub forks: usize,
    /// Print nothing as it goes (the caller prints JSON at the end).
    pub quiet: bool,
    pub state_dir: PathBuf,
    /// Use the state directory's CA and certificate as they are: `rotate` prepared them.
    pub keep_state: bool,
    /// `--limit`: the hosts to touch (all without one).
    pub limit: Option<String>,
    /// Never write the state directory (verify): it must hold what the run needs.
    pub read_only: bool,
}

impl Options {
    /// A changing run over a state directory another command prepared (`rotate`, `gc`):
    /// nothing is reissued, the whole fleet the caller connected takes part.
    pub fn prepared(state_dir: &std::path::Path, forks: usize, quiet: bool) -> Options {
        Options {
            check: false,
            diff: false,
            forks,
            quiet,
            state_dir: state_dir.to_path_buf(),
            keep_state: true,
            limit: None,
            read_only: false,
        }
    }
}

/// What `host` needs probed for the steps of `playbook` that run on it.
fn probe_request(inv: &Inventory, host: &Host, playbook: &Playbook) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    for step in playbook.steps.iter().filter(|s| s.hosts.matches(host)) {
        step.module.want(inv, host, &mut req);
        footprint::want(step.module, inv, host, step.state, &mut req);
    }
    req.dedup();
    req
}

/// Run `playbook` on the hosts inside `opts.limit`, holding the state directory's lock.
pub async fn run(inv: &Inventory, playbook: &Playbook, opts: &Options) -> Result<RunReport> {
    let hosts = limit::select(inv, opts.limit.as_deref())?;
    // A playbook that only removes (reset) needs no state directory: it may be lost.
    let state_dir = if playbook.removes_only() {
        StateDir::at(&opts.state_dir)
    } else if opts.read_only {
        StateDir::existing(&opts.state_dir)?
    } else {
        StateDir::open(&opts.state_dir)?
    };
    let _lock = if playbook.removes_only() {
        None
    } else {
        Some(state_dir.lock()?)
    };
    let started = Instant::now();
    let (mut nodes, notes, phases) = if opts.check {
        // A plan reads each host as soon as it is connected, and closes the connections no
        // later step uses: memory and descriptors stay bounded by `forks` on a large fleet.
        let keep = |h: &Host| {
            playbook
                .steps
                .iter()
                .any(|s| s.once && s.module.plans_over_ssh() && s.hosts.matches(h))
                || super::sources::may_ask(inv, playbook, h)
        };
        let request = |h: &Host| probe_request(inv, h, playbook);
        let nodes = fleet::connect_probe(&hosts, opts.forks, request, keep).await;
        (nodes, Vec::new(), vec![phase("connect and probe", started)])
    } else {
        let mut nodes = fleet::connect(&hosts, opts.forks).await;
        let notes = fleet::lock(&mut nodes).await;
        let connect = phase("connect", started);
        let started = Instant::now();
        fleet::probe(&mut nodes, |h| probe_request(inv, h, playbook)).await;
        (nodes, notes, vec![connect, phase("probe", started)])
    };
    let report = run_probed(inv, playbook, opts, &state_dir, &mut nodes, phases).await;
    fleet::close(&mut nodes).await;
    let mut report = report?;
    for note in notes {
        if !opts.quiet {
            println!("note: {note}");
        }
        report.notes.push(note);
    }
    Ok(report)
}

/// Run `playbook` over connections the caller holds (and a lock it holds): `rotate --ca`
/// runs several playbooks over one connection per host.
pub(crate) async fn run_on(
    inv: &Inventory,
    playbook: &Playbook,
    opts: &Options,
    state_dir: &StateDir,
    nodes: &mut [Node<'_>],
) -> Result<RunReport> {
    let started = Instant::now();
    fleet::probe(nodes, |h| probe_request(inv, h, playbook)).await;
    let probed = phase("probe", started);
    run_probed(inv, playbook, opts, state_dir, nodes, vec![probed]).await
}

/// Run `playbook` on `nodes` once they are read (`phases`: where the time went so far).
async fn run_probed(
    inv: &Inventory,
    playbook: &Playbook,
    opts: &Options,
    state_dir: &StateDir,
    nodes: &mut [Node<'_>],
    phases: Vec<Phase>,
) -> Result<RunReport> {
    // A playbook that only removes (reset) needs nothing from the state directory, which
    // may be lost: no CA is minted, no secret read.
    let removes_only = playbook.removes_only();
    // Before the state directory may mint a CA: never swap the one the hosts trust.
    if inv.tls.mode == TlsMode::SelfSigned && !opts.keep_state && !removes_only {
        ca_guard::check(inv, playbook, state_dir, nodes)?;
    }
    let templates = Templates::embedded();
    let material = if removes_only {
        Material::none()
    } else {
        let mut material = Material::prepare(inv, state_dir, opts.check, opts.keep_state)?;
        let cx = PrepareCx {
            inv,
            state: state_dir,
            templates: &templates,
            check: opts.check,
        };
        for step in playbook.steps.iter().filter(|s| s.state == State::Present) {
            let name = step.module.name();
            if material.prepared.contains_key(name) {
                continue;
            }
            if let Some(prepared) = step.module.prepare(&cx)? {
                material.prepared.insert(name, prepared);
            }
        }
        material
    };
    let out = Printer::new(opts.quiet, opts.diff || opts.check, opts.diff, opts.check);
    for n in &material.notes {
        out.line(&format!("state: {n}"));
    }
    let mut report = RunReport {
        playbook: playbook.name.clone(),
        check: opts.check,
        notes: material.notes.clone(),
        phases,
        ..RunReport::default()
    };
    let cx = StepCx {
        inv,
        material: &material,
        templates: &templates,
        check: opts.check,
        out: &out,
        playbook,
    };
    let mut runs: Vec<Run> = nodes
        .iter_mut()
        .map(|node| Run {
            report: HostReport {
                host: node.host.name.clone(),
                steps: Vec::new(),
                error: None,
                failure: None,
                seconds: 0.0,
                commands: 0,
            },
            node,
            memo: Memo::default(),
        })
        .collect();
    let mut nodes: Vec<&mut Node> = runs.iter_mut().map(|r| &mut *r.node).collect();
    super::sources::check(inv, playbook, &mut nodes).await;
    for r in &mut runs {
        if let Some(problem) = readiness_problem(inv, r.node.host, playbook, r.node) {
            r.node.fail(problem);
        }
        if let Some(e) = &r.node.error {
            out.line(&format!("  {}: FAILED: {e}", r.node.host.name));
        }
    }

    // Segments (the per-host steps between two `once` steps) go through the one scheduler;
    // a `once` step is a barrier: it starts when every host is through the segment before.
    let steps = &playbook.steps;
    let request = |h: &Host| probe_request(inv, h, playbook);
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        if !step.once {
            // A plan makes nothing, so its hosts gain nothing from going on at their own pace;
            // a step at a time, it holds one step's changes of every host instead of a whole
            // segment's (a plan of 1,000 hosts).
            let segment = match opts.check {
                true => 1,
                false => steps[i..].iter().take_while(|s| !s.once).count(),
            };
            let (phases, halt) =
                pipeline::run(&cx, &steps[i..i + segment], &mut runs, &request).await;
            report.phases.extend(phases);
            if let Some(h) = halt {
                halted(&out, &mut report, steps, i + h.step, &h.after);
                break;
            }
            i += segment;
            continue;
        }
        i += 1;
        if !runs.iter().any(|r| step.hosts.matches(r.node.host)) {
            continue;
        }
        out.step(&step.name);
        let started = Instant::now();
        let within = step::once(&cx, step, &mut runs, &mut report).await?;
        report.phases.push(phase(&step.name, started));
        report.phases.extend(within);
    }

    for r in &mut runs {
        r.report.commands = r.node.commands_run();
        r.report.error = r.node.error.clone();
        r.report.failure = r.node.failure();
        r.report.seconds = r.node.busy.as_secs_f64();
    }
    report.hosts = runs.into_iter().map(|r| r.report).collect();
    Ok(report)
}

/// The run stops: the roll of `steps[at]` halted after `after` failed.
fn halted(out: &Printer, report: &mut RunReport, steps: &[Step], at: usize, after: &str) {
    let rest: Vec<&str> = steps[at + 1..].iter().map(|s| s.name.as_str()).collect();
    let note = format!(
        "the run halted: the roll of {:?} stopped after {after} failed{}",
        steps[at].name,
        if rest.is_empty() {
            String::new()
        } else {
            format!("; not run: {}", rest.join(", "))
        }
    );
    out.line(&format!("\n{note}"));
    report.notes.push(note);
    report.halted = true;
}

fn phase(name: &str, started: Instant) -> Phase {
    Phase {
        phase: name.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Why a reachable host cannot take part: sudo wants a password, or a module of its steps
/// says it is not ready (a container engine it needs is missing or stopped; to remove
/// things, it is not asked: a step that needs the engine then says so itself).
fn readiness_problem(
    inv: &Inventory,
    host: &Host,
    playbook: &Playbook,
    node: &Node,
) -> Option<String> {
    let state = node.state.as_ref()?;
    if !state.as_root() {
        return Some(format!(
            "sudo asks {} for a password: allow it NOPASSWD in sudoers (e.g. `{} ALL=(ALL) NOPASSWD: ALL`) or log in as root",
            host.ssh.user, host.ssh.user
        ));
    }
    let engine_coming = playbook
        .steps
        .iter()
        .any(|s| s.state == State::Present && s.module.provides_engine());
    playbook
        .steps
        .iter()
        .filter(|s| s.hosts.matches(host) && s.state == State::Present)
        .find_map(|s| s.module.not_ready(inv, host, state, engine_coming))
}
