//! `regboot rotate --leaf | --ca`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Output, PlaybookArgs, RotateArgs};
use crate::inventory::{self, Inventory, TlsMode};
use crate::rotate::{self, RotateOptions, Stage, StageRun};

pub(super) fn self_signed(cli: &Cli) -> Result<Inventory> {
    let inv = inventory::load(cli.inventory_path()?)?;
    if !matches!(inv.tls.mode, TlsMode::SelfSigned) {
        bail!(
            "rotating a CA needs tls.mode self-signed (regboot's own CA); with tls.mode \
             provided, replace the files the inventory names and run `regboot apply`"
        );
    }
    Ok(inv)
}

/// `apply --replace-ca`: the CA replaced in the three stages of `rotate --ca`, then apply.
pub fn replace_ca(cli: &Cli, args: &PlaybookArgs) -> Result<ExitCode> {
    let inv = self_signed(cli)?;
    let opts = RotateOptions {
        forks: args.forks.into(),
        plan: false,
        quiet: cli.output == Output::Json || cli.quiet,
        state_dir: inv.state_dir(cli.state_dir.as_deref()),
        limit: None,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let runs = runtime.block_on(rotate::replace_ca(&inv, &opts))?;
    if let Some(why) = runs.last().and_then(StageRun::incomplete) {
        print(cli, &runs)?;
        bail!("the CA replacement did not complete: {why}; run `regboot rotate --ca` to resume it");
    }
    drop(runtime);
    super::run_playbook(cli, super::Kind::Apply, args)
}

pub fn rotate(cli: &Cli, args: &RotateArgs) -> Result<ExitCode> {
    let inv = self_signed(cli)?;
    let opts = RotateOptions {
        forks: args.forks.into(),
        plan: args.plan,
        quiet: cli.output == Output::Json || cli.quiet,
        state_dir: inv.state_dir(cli.state_dir.as_deref()),
        limit: args.limit.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        if args.leaf {
            rotate::leaf(&inv, args.cert_validity, &opts)
                .await
                .map(|r| vec![r])
        } else {
            let only = args.stage.map(Stage::from_number).transpose()?;
            rotate::ca(&inv, only, &opts).await
        }
    });
    let runs = result?;
    print(cli, &runs)?;
    // A stage that did not complete stops the run with an error; only the last run (e.g. a
    // stage 1 whose smoke test fails because the old CA expired) is judged here.
    let incomplete = runs.last().and_then(StageRun::incomplete);
    Ok(match incomplete {
        Some(_) => ExitCode::from(1),
        None => ExitCode::SUCCESS,
    })
}

fn print(cli: &Cli, runs: &[StageRun]) -> Result<()> {
    match cli.output {
        Output::Json => super::json::print(&serde_json::json!({ "runs": runs }))?,
        Output::Text => {
            if let Some(last) = runs.last() {
                print!("{}", last.report.summary());
            }
        }
    }
    Ok(())
}
