use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Cli;

pub fn inventory_check(cli: &Cli) -> Result<ExitCode> {
    let _path = cli.inventory_path()?;
    anyhow::bail!("inventory check is being written")
}
