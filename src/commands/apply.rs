use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Output, PlaybookArgs};
use crate::engine::{self, Options, RunReport};
use crate::inventory;
use crate::playbooks;

/// Which of the playbook commands runs.
pub enum Kind {
    Apply,
    Plan,
    Verify,
}

pub fn run_playbook(cli: &Cli, kind: Kind, args: &PlaybookArgs) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    let playbook = match kind {
        Kind::Verify => playbooks::verify()?,
        Kind::Apply | Kind::Plan => playbooks::apply()?,
    };
    let opts = Options {
        check: matches!(kind, Kind::Plan),
        diff: args.diff || cli.verbose > 0,
        forks: args.forks.into(),
        quiet: cli.output == Output::Json || cli.quiet,
        state_dir: inv.state_dir(cli.state_dir.as_deref()),
        keep_state: false,
        limit: args.limit.clone(),
        read_only: matches!(kind, Kind::Verify),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let mut report = runtime.block_on(engine::run(&inv, &playbook, &opts))?;
    if let (Kind::Plan, Some(note)) = (&kind, crate::renew::due_note(&inv, &opts.state_dir)) {
        let note = format!("renewal: {note}");
        if !opts.quiet {
            println!("{note}");
        }
        report.notes.push(note);
    }
    match cli.output {
        Output::Json => super::json::print(&report)?,
        Output::Text => {
            print!("{}", report.summary());
            if cli.verbose > 0 {
                print!("{}", report.timing());
            }
        }
    }
    Ok(exit_code(&kind, &report))
}

/// 1 when a host failed, or when `verify` verified nothing it was asked to (apply says
/// NOT VERIFIED and exits 0: its changes were made); plan: 2 when there is drift.
fn exit_code(kind: &Kind, report: &RunReport) -> ExitCode {
    let unverified = report.unverified_wanted();
    if !report.failed_hosts().is_empty() || (matches!(kind, Kind::Verify) && unverified) {
        return ExitCode::from(1);
    }
    match kind {
        Kind::Plan if report.changed() > 0 => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    }
}

/// `regboot user hash`: a bcrypt hash (cost 10) of the password read on stdin.
pub fn user_hash(cli: &Cli) -> Result<ExitCode> {
    let mut input = String::new();
    // Bounded: `< /dev/zero` must not fill memory (bcrypt takes 72 bytes at most anyway).
    std::io::stdin()
        .take(crate::fsutil::SECRET_LIMIT)
        .read_to_string(&mut input)
        .context("cannot read the password from stdin")?;
    let password = input.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !password.is_empty(),
        "no password on stdin: pipe it in, e.g. `printf %s \"$PW\" | regboot user hash`"
    );
    anyhow::ensure!(
        password.len() <= 72,
        "the password is longer than 72 bytes, which bcrypt cannot hash"
    );
    let hash = bcrypt::hash(password, crate::merge::htpasswd::COST)?;
    match cli.output {
        Output::Json => super::json::print(&serde_json::json!({ "hash": hash }))?,
        Output::Text => println!("{hash}"),
    }
    Ok(ExitCode::SUCCESS)
}
