use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Output};
use crate::inventory::{self, Summary};

pub fn inventory_check(cli: &Cli) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    let summary = Summary::new(&inv);
    match cli.output {
        Output::Text => print!("{summary}"),
        Output::Json => super::json::print(&summary)?,
    }
    Ok(ExitCode::SUCCESS)
}
