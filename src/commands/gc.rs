//! `regboot gc`: garbage collection with the replicas read-only meanwhile (`crate::gc`).

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Output};
use crate::gc::{self, GcOptions};
use crate::inventory;

pub fn gc(cli: &Cli, dry_run: bool, forks: usize) -> Result<ExitCode> {
    let inv = inventory::load(cli.inventory_path()?)?;
    let json = cli.output == Output::Json;
    let opts = GcOptions {
        dry_run,
        forks,
        quiet: json || cli.quiet,
        state_dir: inv.state_dir(cli.state_dir.as_deref()),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(gc::run(&inv, &opts))?;
    if json {
        super::json::print(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    for b in &report.blobs {
        match b.size {
            Some(n) => println!("  {} ({n} bytes)", b.digest),
            None => println!("  {}", b.digest),
        }
    }
    let bytes = match report.bytes {
        Some(n) => format!("{n} bytes ({:.1} MiB)", n as f64 / 1048576.0),
        None => "size not measured (object storage)".into(),
    };
    println!(
        "gc on {}: {verb} {} blob(s) and {} untagged manifest(s): {bytes}",
        report.host,
        report.blobs.len(),
        report.manifests
    );
    Ok(ExitCode::SUCCESS)
}
