use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::{Cli, Output};
use crate::fsutil::expand_tilde;
use crate::inventory;
use crate::ssh::known_hosts;

/// Remove a host's keys from known_hosts, like `ssh-keygen -R`. `host` is an inventory host
/// name (when -i is given), `[address]:port`, or an address (with `port`).
pub fn forget(cli: &Cli, host: &str, port: u16, file: Option<&PathBuf>) -> Result<ExitCode> {
    let from_inventory = match &cli.inventory {
        Some(path) => inventory::load(path)?
            .ssh_targets()
            .into_iter()
            .find(|t| t.name == host),
        None => None,
    };
    let (address, port, default_file) = match (&from_inventory, parse_pattern(host)) {
        (Some(t), _) => (t.address.clone(), t.port, t.known_hosts.clone()),
        (None, Some((a, p))) => (a.to_string(), p, expand_tilde("~/.ssh/known_hosts")),
        (None, None) => (host.to_string(), port, expand_tilde("~/.ssh/known_hosts")),
    };
    let file = file.cloned().unwrap_or(default_file);
    let pattern = known_hosts::host_pattern(&address, port);
    let removed = known_hosts::forget(&file, &address, port)
        .with_context(|| format!("cannot update {}", file.display()))?;
    if cli.output == Output::Json {
        super::json::print(&serde_json::json!({
            "pattern": pattern,
            "file": file,
            "removed": removed,
        }))?;
    } else if removed == 0 {
        println!("{pattern} is not in {}; nothing to do", file.display());
    } else {
        println!(
            "removed {removed} key line(s) for {pattern} from {}",
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `[address]:port`, the form regboot's messages and known_hosts use.
fn parse_pattern(s: &str) -> Option<(&str, u16)> {
    let (addr, port) = s.strip_prefix('[')?.split_once("]:")?;
    Some((addr, port.parse().ok()?))
}
