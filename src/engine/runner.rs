//! Runs a playbook: open the fleet (connect and probe every host inside the limit), then for
//! each step compute every host's changes from its module and show them (check mode) or make
//! them: all hosts at once, or `serial` at a time, halting the run at a roll's first failure.
//! A `once` step runs its module once for the fleet. Changes marked one-at-a-time (a dockerd
//! restart) are made on one host at a time even in a parallel step.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use futures::future::join_all;

use super::ca_guard;
use super::change::Change;
use super::fleet::{self, Node};
use super::limit;
use super::memo::Memo;
use super::module::{Ctx, FleetCx, Member};
use super::playbook::{Playbook, State, Step};
use super::probe::ProbeRequest;
use super::report::{HostReport, RunReport, Status, StepResult};
use crate::host::RemoteHost;
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
}

struct Printer {
    quiet: bool,
    diff: bool,
    check: bool,
}

impl Printer {
    fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }
    fn changes(&self, host: &str, changes: &[Change]) {
        if changes.is_empty() {
            return self.line(&format!("  {host}: ok"));
        }
        let verb = if self.check {
            "would change"
        } else {
            "changed"
        };
        for c in changes {
            self.line(&format!("  {host}: {verb}: {}", c.summary));
            if let Some(d) = c.diff.as_ref().filter(|_| self.diff) {
                for l in d.lines() {
                    self.line(&format!("      {l}"));
                }
            }
        }
    }
}

/// One host during the run: its fleet node, report and shared per-host values.
struct Run<'n, 'a> {
    node: &'n mut Node<'a>,
    report: HostReport,
    memo: Memo,
    started: Instant,
}

impl Run<'_, '_> {
    fn fail(&mut self, step: &str, error: String) {
        self.node.fail(error);
        self.report.steps.push(StepResult {
            step: step.to_string(),
            status: Status::Failed,
            changes: Vec::new(),
            error: self.node.error.clone(),
        });
    }

    fn done(&mut self, step: &str, changes: &[Change]) {
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

/// What `host` needs probed for the steps of `playbook` that run on it.
fn probe_request(inv: &Inventory, host: &Host, playbook: &Playbook) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    for step in playbook.steps.iter().filter(|s| s.hosts.matches(host)) {
        step.module.want(inv, host, &mut req);
    }
    req
}

async fn apply_all(remote: &RemoteHost, changes: &[Change]) -> Result<()> {
    for c in changes {
        c.apply(remote).await?;
    }
    Ok(())
}

/// Run `playbook` on the hosts inside `opts.limit`, holding the state directory's lock.
pub async fn run(inv: &Inventory, playbook: &Playbook, opts: &Options) -> Result<RunReport> {
    let hosts = limit::select(inv, opts.limit.as_deref())?;
    let state_dir = StateDir::open(&opts.state_dir)?;
    let _lock = state_dir.lock()?;
    let mut nodes = fleet::connect(&hosts, opts.forks).await;
    let notes = if opts.check {
        Vec::new()
    } else {
        fleet::lock(&mut nodes).await
    };
    let report = run_on(inv, playbook, opts, &state_dir, &mut nodes).await;
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
    // A playbook that only removes (reset) needs nothing from the state directory, which
    // may be lost: no CA is minted, no secret read.
    let removes_only = playbook.steps.iter().all(|s| s.state == State::Absent);
    // Before the state directory may mint a CA: never swap the one the hosts trust.
    if inv.tls.mode == TlsMode::SelfSigned && !opts.keep_state && !removes_only {
        ca_guard::check(inv, playbook, state_dir, nodes)?;
    }
    let templates = Templates::embedded();
    let material = if removes_only {
        Material {
            tls: None,
            users: Vec::new(),
            smoke_login: None,
            registry_config: String::new(),
            notes: Vec::new(),
        }
    } else {
        Material::prepare(inv, state_dir, &templates, opts.check, opts.keep_state)?
    };
    let out = Printer {
        quiet: opts.quiet,
        diff: opts.diff || opts.check,
        check: opts.check,
    };
    for n in &material.notes {
        out.line(&format!("state: {n}"));
    }
    let mut report = RunReport {
        playbook: playbook.name.clone(),
        check: opts.check,
        notes: material.notes.clone(),
        ..RunReport::default()
    };
    let mut runs: Vec<Run> = nodes
        .iter_mut()
        .map(|node| Run {
            report: HostReport {
                host: node.host.name.clone(),
                steps: Vec::new(),
                error: None,
                seconds: 0.0,
                commands: 0,
            },
            node,
            memo: Memo::default(),
            started,
        })
        .collect();
    for r in &mut runs {
        if let Some(problem) = readiness_problem(inv, r.node.host, playbook, r.node) {
            r.node.fail(problem);
        }
        if let Some(e) = &r.node.error {
            out.line(&format!("  {}: FAILED: {e}", r.node.host.name));
        }
    }

    for (i, step) in playbook.steps.iter().enumerate() {
        if !runs.iter().any(|r| step.hosts.matches(r.node.host)) {
            continue;
        }
        out.line(&format!("\n== {}", step.name));
        let halted = if step.once {
            run_once(
                inv,
                &material,
                step,
                opts.check,
                &mut runs,
                &out,
                &mut report,
            )
            .await?;
            None
        } else {
            run_per_host(
                inv, &material, &templates, step, opts.check, &mut runs, &out,
            )
            .await
        };
        if let Some(after) = halted {
            let rest: Vec<&str> = playbook.steps[i + 1..]
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            let note = format!(
                "the run halted: the roll of {:?} stopped after {after} failed{}",
                step.name,
                if rest.is_empty() {
                    String::new()
                } else {
                    format!("; not run: {}", rest.join(", "))
                }
            );
            out.line(&format!("\n{note}"));
            report.notes.push(note);
            break;
        }
    }

    for r in &mut runs {
        r.report.commands = r
            .node
            .remote
            .as_ref()
            .map_or(0, |h| h.session.commands_run());
        r.report.error = r.node.error.clone();
        if r.report.seconds == 0.0 {
            r.report.seconds = r.started.elapsed().as_secs_f64();
        }
    }
    report.hosts = runs.into_iter().map(|r| r.report).collect();
    Ok(report)
}

/// Why a reachable host cannot take part: sudo wants a password, or a module of its steps
/// needs a container engine that is missing or stopped (to remove things, it does not: a
/// step that needs the engine then says so itself).
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
    let needs_engine = playbook
        .steps
        .iter()
        .any(|s| s.hosts.matches(host) && s.state == State::Present && s.module.needs_engine());
    let docker = &state.facts.docker;
    // With docker.install, the docker_install step installs or starts it first.
    let installs = inv.docker_install && installs_docker(playbook);
    match (needs_engine, docker.installed, docker.running) {
        (false, _, _) | (true, true, true) => None,
        (true, _, _) if installs => None,
        (true, true, false) => Some(
            "the docker engine is not running: start it (`systemctl start docker`) and run again"
                .into(),
        ),
        (true, false, _) => Some(
            "docker is not installed: set `docker.install: true` in the inventory to have regboot install it from the OS's packages (docker.io on Debian and Ubuntu), or install it yourself, and run again"
                .into(),
        ),
    }
}

/// Whether a step of `playbook` installs (or starts) the docker engine.
fn installs_docker(playbook: &Playbook) -> bool {
    playbook
        .steps
        .iter()
        .any(|s| s.state == State::Present && s.module.name() == "docker_install")
}

/// A per-host step. Returns the host after which a roll halted, if one did.
async fn run_per_host(
    inv: &Inventory,
    material: &Material,
    templates: &Templates,
    step: &Step,
    check: bool,
    runs: &mut [Run<'_, '_>],
    out: &Printer,
) -> Option<String> {
    let mut planned: Vec<(usize, Vec<Change>)> = Vec::new();
    for (i, r) in runs.iter_mut().enumerate() {
        if !r.node.alive() || !step.hosts.matches(r.node.host) {
            continue;
        }
        let cx = Ctx {
            inv,
            host: r.node.host,
            material,
            state: r.node.state.as_ref().expect("alive nodes were probed"),
            templates,
            memo: &r.memo,
        };
        let changes = match step.state {
            State::Present => step.module.present(&cx),
            State::Absent => step.module.absent(&cx),
        };
        match changes {
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
        for (i, changes) in &planned {
            out.changes(&runs[*i].node.host.name, changes);
            runs[*i].done(&step.name, changes);
        }
        return None;
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
    for (batch, halts) in batches
        .into_iter()
        .map(|b| (b, rolls))
        .chain(chunks(exclusive, 1).into_iter().map(|b| (b, true)))
    {
        let results = join_all(batch.iter().map(|(i, changes)| {
            let remote = runs[*i]
                .node
                .remote
                .as_ref()
                .expect("alive nodes are connected");
            apply_all(remote, changes)
        }))
        .await;
        let mut failed = None;
        for ((i, changes), result) in batch.iter().zip(results) {
            let r = &mut runs[*i];
            match result {
                Ok(()) => {
                    out.changes(&r.node.host.name, changes);
                    r.done(&step.name, changes);
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    out.line(&format!("  {}: FAILED: {msg}", r.node.host.name));
                    r.fail(&step.name, msg);
                    failed.get_or_insert(r.node.host.name.clone());
                }
            }
            r.report.seconds = r.started.elapsed().as_secs_f64();
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
            return Some(after);
        }
    }
    None
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

/// A `once` step: the module acts on the fleet's reachable hosts of the step's role.
async fn run_once(
    inv: &Inventory,
    material: &Material,
    step: &Step,
    check: bool,
    runs: &mut [Run<'_, '_>],
    out: &Printer,
    report: &mut RunReport,
) -> Result<()> {
    let members: Vec<Member> = runs
        .iter()
        .filter(|r| r.node.alive() && step.hosts.matches(r.node.host))
        .map(|r| Member {
            host: r.node.host,
            remote: r.node.remote.as_ref().expect("alive nodes are connected"),
            state: r.node.state.as_ref().expect("alive nodes were probed"),
        })
        .collect();
    let cx = FleetCx {
        inv,
        material,
        check,
        members,
    };
    let outcome = step.module.once(&cx).await?;
    for note in outcome.notes {
        out.line(&note);
        report.notes.push(note);
    }
    for s in &outcome.smoke {
        let status = if s.ok { "ok" } else { "FAILED" };
        out.line(&format!(
            "  {}: {} {status} ({:.1} s): {}",
            s.host, s.action, s.seconds, s.detail
        ));
    }
    report.smoke.extend(outcome.smoke);
    if let Some(why) = outcome.skipped {
        out.line(&format!("  skipped: {why}"));
        report.smoke_skipped = Some(why);
    }
    for (host, error) in outcome.failed {
        out.line(&format!("  {host}: FAILED: {error}"));
        if let Some(r) = runs.iter_mut().find(|r| r.node.host.name == host) {
            r.fail(&step.name, error);
        }
    }
    Ok(())
}
