//! `regboot reset`: the reset playbook over the fleet, without the state directory.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Output, ResetArgs};
use crate::engine::{self, Options, RunReport, limit};
use crate::inventory;
use crate::modules::registry_data;
use crate::playbooks;

pub fn reset(cli: &Cli, args: &ResetArgs) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    let playbook = playbooks::reset(args.purge_data)?;
    let hosts = limit::select(&inv, args.limit.as_deref())?;
    if args.purge_data
        && let Some(why) = registry_data::purge_refusal(&inv, args.limit.is_some())
    {
        bail!(why);
    }
    let json = cli.output == Output::Json;
    let opts = |check: bool| Options {
        check,
        diff: check,
        forks: args.forks.into(),
        quiet: json || cli.quiet,
        state_dir: inv.state_dir(cli.state_dir.as_deref()),
        keep_state: false,
        limit: args.limit.clone(),
        read_only: true,
    };
    let interactive = std::io::stdin().is_terminal() && !json;
    if !args.plan && !args.yes && !interactive {
        bail!(
            "regboot reset removes what regboot set up on {} host(s){} and asks first, but there \
             is no terminal to ask on. See what would go with `regboot reset --plan`, then run \
             `regboot reset --yes`. Nothing was changed.",
            hosts.len(),
            if args.purge_data {
                ", including the registry's data"
            } else {
                ""
            }
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if !args.plan && !args.yes {
        let preview = runtime.block_on(engine::run(&inv, &playbook, &opts(true)))?;
        print!("{}", preview.summary());
        if preview.changed() == 0 {
            println!("nothing of regboot's is left on these hosts");
            return Ok(exit_code(&preview, false));
        }
        if !confirm(args.purge_data)? {
            println!("nothing was changed");
            return Ok(ExitCode::from(1));
        }
    }
    let report = runtime.block_on(engine::run(&inv, &playbook, &opts(args.plan)))?;
    match cli.output {
        Output::Json => super::json::print(&report)?,
        Output::Text => print!("{}", report.summary()),
    }
    Ok(exit_code(&report, args.plan))
}

fn exit_code(report: &RunReport, plan: bool) -> ExitCode {
    if !report.failed_hosts().is_empty() {
        ExitCode::from(1)
    } else if plan && report.changed() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Ask on the terminal; only `yes` goes on.
fn confirm(purge_data: bool) -> Result<bool> {
    print!(
        "\nRemove all of the above{}? Type yes to go on: ",
        if purge_data {
            ", including the registry's data"
        } else {
            ""
        }
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
