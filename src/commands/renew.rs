//! `regboot renew`: exit 0 nothing was due, 3 something was renewed, 1 a failure.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Output};
use crate::pki::StateDir;
use crate::pki::inspect::date;
use crate::renew::{self, CaStep, Renewal};
use crate::rotate::{RotateOptions, StageRun};

/// The exit code of a run that renewed something, for a scheduler to tell from "nothing due".
const RENEWED: u8 = 3;

pub fn renew(cli: &Cli, forks: usize, textfile: Option<&Path>) -> Result<ExitCode> {
    let inv = super::rotate::self_signed(cli)?;
    let opts = RotateOptions {
        forks,
        plan: false,
        quiet: cli.output == Output::Json || cli.quiet,
        state_dir: inv.state_dir(cli.state_dir.as_deref()),
        limit: None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let renewal = runtime.block_on(renew::renew(&inv, &opts));
    drop(runtime);
    // The metrics say how things stand after the run, whatever it did.
    if let Some(path) = textfile {
        let state = StateDir::at(&opts.state_dir);
        let renew_before = crate::tls_setup::renew_before(&inv.tls);
        let now = time::OffsetDateTime::now_utc();
        let checked =
            super::certs::check_self_signed(&state, Some(&inv), renew_before, Some(None), now)?;
        crate::metrics::write_textfile(path, &checked.metrics())?;
    }
    let renewal = renewal?;
    match cli.output {
        Output::Json => super::json::print(&serde_json::json!({
            "renewed": renewal.renewed(),
            "ca": renewal.ca,
            "leaf_due": renewal.leaf_due,
            "runs": renewal.runs,
        }))?,
        Output::Text => print_text(&renewal),
    }
    if let Some(why) = renewal.runs.last().and_then(StageRun::incomplete) {
        bail!("the renewal did not complete: {why}; run `regboot renew` again once fixed");
    }
    Ok(if renewal.renewed() {
        ExitCode::from(RENEWED)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(r: &Renewal) {
    if let Some(last) = r.runs.last() {
        print!("{}", last.report.summary());
    }
    match &r.ca.step {
        CaStep::NotDue => println!(
            "CA: not due (expires {}; its rotation starts from {})",
            date(r.ca.not_after),
            date(r.ca.renew_after)
        ),
        CaStep::Run { stage, why } => println!("CA: ran stage {stage} ({why})"),
        CaStep::Wait { stage, until, why } => println!(
            "CA: waiting: stage {stage} may run from {} ({why}); nothing changed",
            date(*until)
        ),
    }
    match (&r.leaf_due, &r.ca.step) {
        (Some(why), _) => println!("registry certificate: renewed ({why})"),
        (None, CaStep::Run { .. }) => {}
        (None, _) => println!("registry certificate: not due"),
    }
}
