//! Runs a playbook: connect to every host, probe each once, then for each step compute every
//! host's changes and show them (check mode) or apply them (hosts in parallel, or `serial` at
//! a time). A failing host stops for the rest of the run; the others go on.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use futures::future::join_all;

use super::change::Change;
use super::material::Material;
use super::modules::{self, Ctx, Want, registry_files};
use super::playbook::{Module, Playbook, Step};
use super::probe::{self, Docker, HostState, ProbeRequest};
use super::report::{HostReport, RunReport, Status, StepResult};
use super::smoke::{self, SmokeTarget};
use super::storage;
use crate::host::RemoteHost;
use crate::inventory::{Host, Inventory, Role, Storage};
use crate::pki::StateDir;
use crate::render::Templates;
use crate::ssh;

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
}

/// One host during the run.
struct Node<'a> {
    host: &'a Host,
    remote: Option<RemoteHost>,
    state: Option<HostState>,
    registry_files: Vec<registry_files::ManagedFile>,
    report: HostReport,
}

impl Node<'_> {
    fn alive(&self) -> bool {
        self.report.error.is_none() && self.remote.is_some()
    }
    fn fail(&mut self, step: Option<&str>, error: String) {
        // Transport errors already name the host; the report names it once.
        let error = match error.strip_prefix(&format!("{}: ", self.host.name)) {
            Some(rest) => rest.to_string(),
            None => error,
        };
        if let Some(step) = step {
            self.report.steps.push(StepResult {
                step: step.to_string(),
                status: Status::Failed,
                changes: Vec::new(),
                error: Some(error.clone()),
            });
        }
        self.report.error = Some(error);
    }
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

fn module_changes(step: &Step, ctx: &Ctx, templates: &Templates) -> Result<Vec<Change>> {
    Ok(match step.module {
        Module::CertsD => modules::certs_d::check(ctx),
        Module::TrustStore => modules::trust_store::check(ctx)?,
        Module::HostsBlock => modules::hosts_block::check(ctx, templates)?,
        Module::DaemonJson => modules::daemon_json::check(ctx)?,
        Module::RegistryFiles => modules::registry_files::check(ctx),
        Module::RegistryImage => modules::registry_image::check(ctx),
        Module::RegistryContainer => modules::registry_container::check(ctx),
        Module::LbPackages => modules::lb_packages::check(ctx),
        Module::Nginx => modules::nginx::check(ctx, templates)?,
        Module::Keepalived => modules::keepalived::check(ctx, templates)?,
        Module::SmokeTest => Vec::new(),
    })
}

/// What `host` needs probed for the modules of `playbook`.
fn probe_request(inv: &Inventory, host: &Host, playbook: &Playbook) -> ProbeRequest {
    let mut req = ProbeRequest::default();
    let mut w = Want { inv, req: &mut req };
    for step in playbook.steps.iter().filter(|s| s.hosts.matches(host)) {
        match step.module {
            Module::CertsD => modules::certs_d::want(&mut w),
            Module::TrustStore => modules::trust_store::want(&mut w),
            Module::HostsBlock => modules::hosts_block::want(&mut w),
            Module::DaemonJson => modules::daemon_json::want(&mut w),
            Module::RegistryFiles => modules::registry_files::want(&mut w),
            Module::RegistryContainer => w.req.image = Some(inv.registry.image.clone()),
            Module::LbPackages => modules::lb_packages::want(&mut w),
            Module::Nginx => modules::nginx::want(&mut w),
            Module::Keepalived => modules::keepalived::want(&mut w),
            Module::RegistryImage | Module::SmokeTest => {}
        }
    }
    req
}

async fn apply_all(remote: &RemoteHost, changes: &[Change]) -> Result<()> {
    for c in changes {
        c.apply(remote).await?;
    }
    Ok(())
}

pub async fn run(inv: &Inventory, playbook: &Playbook, opts: &Options) -> Result<RunReport> {
    let state_dir = StateDir::open(&opts.state_dir)?;
    let _lock = state_dir.lock()?;
    let templates = Templates::embedded();
    let material = Material::prepare(inv, &state_dir, &templates, opts.check, opts.keep_state)?;
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

    out.line(&format!("connecting to {} host(s)", inv.hosts.len()));
    let started = Instant::now();
    let connected = ssh::connect_all(&inv.ssh_targets(), opts.forks).await;
    let mut nodes: Vec<Node> = inv
        .hosts
        .iter()
        .zip(connected)
        .map(|(host, (_, session))| {
            let mut node = Node {
                host,
                remote: None,
                state: None,
                registry_files: Vec::new(),
                report: HostReport {
                    host: host.name.clone(),
                    steps: Vec::new(),
                    error: None,
                    seconds: 0.0,
                    commands: 0,
                },
            };
            match session {
                Ok(s) => node.remote = Some(RemoteHost::new(s)),
                Err(e) => node.fail(None, e.to_string()),
            }
            node
        })
        .collect();

    let probes = join_all(nodes.iter().map(|n| async {
        let remote = n.remote.as_ref()?;
        Some(probe::probe(remote, &probe_request(inv, n.host, playbook)).await)
    }))
    .await;
    for (node, probed) in nodes.iter_mut().zip(probes) {
        match probed {
            None => {}
            Some(Err(e)) => node.fail(None, format!("{e:#}")),
            Some(Ok(state)) => {
                // A host that is only a load balancer needs no docker engine.
                let lb_only = node.host.roles.iter().all(|r| *r == Role::Lb);
                if let Some(problem) = docker_problem(&state.docker).filter(|_| !lb_only) {
                    node.fail(None, problem);
                    continue;
                }
                if node.host.has_role(Role::Registry) {
                    match registry_files::desired(&material, &state) {
                        Ok(files) => node.registry_files = files,
                        Err(e) => node.fail(None, format!("{e:#}")),
                    }
                }
                node.state = Some(state);
            }
        }
    }
    for n in nodes.iter().filter(|n| !n.alive()) {
        out.line(&format!(
            "  {}: FAILED: {}",
            n.host.name,
            n.report.error.as_deref().unwrap_or("")
        ));
    }

    if playbook
        .steps
        .iter()
        .any(|s| s.module == Module::RegistryContainer)
    {
        check_storage(inv, &mut nodes, &out, &mut report, opts.check).await;
    }

    for step in &playbook.steps {
        if step.module == Module::SmokeTest {
            continue;
        }
        out.line(&format!("\n== {}", step.name));
        let mut planned: Vec<(usize, Vec<Change>)> = Vec::new();
        for (i, n) in nodes.iter_mut().enumerate() {
            if !n.alive() || !step.hosts.matches(n.host) {
                continue;
            }
            let ctx = Ctx {
                inv,
                host: n.host,
                material: &material,
                state: n.state.as_ref().expect("alive nodes were probed"),
                registry_files: &n.registry_files,
            };
            match module_changes(step, &ctx, &templates) {
                Ok(changes) => planned.push((i, changes)),
                Err(e) => {
                    let msg = format!("{e:#}");
                    out.line(&format!("  {}: FAILED: {msg}", n.host.name));
                    n.fail(Some(&step.name), msg);
                }
            }
        }
        let chunk = step.serial.unwrap_or(usize::MAX).max(1);
        for batch in planned.chunks(chunk) {
            let results = if opts.check {
                batch.iter().map(|_| Ok(())).collect()
            } else {
                join_all(batch.iter().map(|(i, changes)| {
                    let remote = nodes[*i]
                        .remote
                        .as_ref()
                        .expect("alive nodes are connected");
                    apply_all(remote, changes)
                }))
                .await
            };
            for ((i, changes), result) in batch.iter().zip(results) {
                let node = &mut nodes[*i];
                match result {
                    Ok(()) => {
                        out.changes(&node.host.name, changes);
                        node.report.steps.push(StepResult {
                            step: step.name.clone(),
                            status: if changes.is_empty() {
                                Status::Ok
                            } else {
                                Status::Changed
                            },
                            changes: changes.iter().map(|c| c.summary.clone()).collect(),
                            error: None,
                        });
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        out.line(&format!("  {}: FAILED: {msg}", node.host.name));
                        node.fail(Some(&step.name), msg);
                    }
                }
            }
        }
    }

    if playbook.steps.iter().any(|s| s.module == Module::SmokeTest) {
        if opts.check {
            report.smoke_skipped = Some("plan does not run the smoke test".into());
        } else {
            run_smoke(inv, &material, &nodes, &out, &mut report).await;
        }
    }
    for n in &mut nodes {
        n.report.seconds = started.elapsed().as_secs_f64();
        if let Some(remote) = n.remote.take() {
            n.report.commands = remote.session.commands_run();
            remote.session.close().await;
        }
    }
    report.hosts = nodes.into_iter().map(|n| n.report).collect();
    Ok(report)
}

/// Say what storage regboot trusts, and make sure an S3 bucket exists before the replicas
/// start (seen from the first registry host). A missing bucket fails every registry host.
async fn check_storage(
    inv: &Inventory,
    nodes: &mut [Node<'_>],
    out: &Printer,
    report: &mut RunReport,
    check: bool,
) {
    if let Some(note) = storage::note(inv) {
        out.line(&note);
        report.notes.push(note);
    }
    let Storage::S3(s3) = &inv.registry.storage else {
        return;
    };
    let Some(via) = nodes
        .iter()
        .find(|n| n.alive() && n.host.has_role(Role::Registry))
    else {
        return;
    };
    let keys = (
        std::env::var(&s3.access_key_env).unwrap_or_default(),
        std::env::var(&s3.secret_key_env).unwrap_or_default(),
    );
    let remote = via.remote.as_ref().expect("alive nodes are connected");
    let found = storage::ensure_bucket(remote, s3, (&keys.0, &keys.1), check).await;
    let line = match found {
        Ok(storage::Bucket::Exists) => return,
        Ok(storage::Bucket::Created) => format!("storage: created bucket {:?}", s3.bucket),
        Ok(storage::Bucket::WouldCreate) => {
            format!("storage: would create bucket {:?}", s3.bucket)
        }
        Err(e) => {
            let msg = format!("storage: {e:#}");
            out.line(&format!("  FAILED: {msg}"));
            for n in nodes
                .iter_mut()
                .filter(|n| n.alive() && n.host.has_role(Role::Registry))
            {
                n.fail(Some("storage"), msg.clone());
            }
            return;
        }
    };
    out.line(&line);
    report.notes.push(line);
}

fn docker_problem(docker: &Docker) -> Option<String> {
    match docker {
        Docker::Running { .. } => None,
        Docker::Stopped => Some(
            "the docker engine is not running: start it (`systemctl start docker`) and run again"
                .into(),
        ),
        Docker::Missing => Some(
            "docker is not installed: install the docker engine (e.g. `apt-get install docker.io`) and run again"
                .into(),
        ),
    }
}

async fn run_smoke(
    inv: &Inventory,
    material: &Material,
    nodes: &[Node<'_>],
    out: &Printer,
    report: &mut RunReport,
) {
    out.line("\n== smoke test");
    let targets: Vec<SmokeTarget> = nodes
        .iter()
        .filter(|n| {
            n.alive()
                && n.state
                    .as_ref()
                    .is_some_and(|s| matches!(s.docker, Docker::Running { .. }))
        })
        .map(|n| SmokeTarget {
            name: &n.host.name,
            remote: n.remote.as_ref().expect("alive nodes are connected"),
            role_agent: n.host.has_role(Role::Agent),
            arch: n.state.as_ref().map(|s| s.arch.as_str()).unwrap_or(""),
        })
        .collect();
    let replicas: Vec<(&str, &RemoteHost)> = nodes
        .iter()
        .filter(|n| n.alive() && n.host.has_role(Role::Registry))
        .filter_map(|n| Some((n.host.name.as_str(), n.remote.as_ref()?)))
        .collect();
    match smoke::run(inv, material, &targets, &replicas).await {
        Ok(results) => {
            for r in &results {
                let status = if r.ok { "ok" } else { "FAILED" };
                out.line(&format!(
                    "  {}: {} {status} ({:.1} s): {}",
                    r.host, r.action, r.seconds, r.detail
                ));
            }
            report.smoke = results;
        }
        Err(e) => {
            out.line(&format!("  skipped: {e:#}"));
            report.smoke_skipped = Some(format!("{e:#}"));
        }
    }
}
