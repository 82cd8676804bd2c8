//! `regboot backup FILE` and `regboot restore FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::backup::{self, Manifest};
use crate::cli::{BackupArgs, Cli, Output, RestoreArgs};
use crate::inventory;

/// The state directory: --state-dir, else the inventory's (beside it); and the inventory.
fn locate(cli: &Cli) -> Result<(PathBuf, Option<PathBuf>)> {
    match (&cli.state_dir, &cli.inventory) {
        (Some(dir), inv) => Ok((dir.clone(), inv.clone())),
        (None, Some(path)) => {
            let inv = inventory::load(path)?;
            Ok((inv.state_dir(None), Some(path.clone())))
        }
        (None, None) => bail!(
            "no state directory: pass -i inventory.yml (its state directory) or --state-dir DIR"
        ),
    }
}

/// The passphrase from `$var`, else typed on the terminal (twice when `confirm`).
fn passphrase(var: &str, confirm: bool) -> Result<String> {
    if let Ok(p) = std::env::var(var) {
        if p.is_empty() {
            bail!("${var} is empty: a backup needs a passphrase");
        }
        return Ok(p);
    }
    let ask = |prompt: &str| {
        crate::ssh::read_tty_without_echo(prompt).with_context(|| {
            format!("no passphrase: set ${var} (or --passphrase-env NAME), or run on a terminal")
        })
    };
    let p = ask("Backup passphrase: ")?;
    if p.is_empty() {
        bail!("an empty passphrase protects nothing");
    }
    if confirm && ask("Again: ")? != p {
        bail!("the two passphrases differ; nothing was written");
    }
    Ok(p)
}

fn print_manifest(cli: &Cli, what: &str, m: &Manifest) -> Result<()> {
    match cli.output {
        Output::Json => super::json::print(m)?,
        Output::Text => {
            println!("{what}");
            println!("  created:       {}", m.created);
            println!(
                "  CA:            {} (SHA-256 {}, until {})",
                m.ca_subject.as_deref().unwrap_or("none"),
                m.ca_fingerprint_sha256.as_deref().unwrap_or("-"),
                m.ca_not_after.as_deref().unwrap_or("-")
            );
            println!(
                "  inventory:     sha256 {}",
                m.inventory_sha256.as_deref().unwrap_or("-")
            );
            println!("  files:         {}", m.files.join(", "));
        }
    }
    Ok(())
}

pub fn backup(cli: &Cli, args: &BackupArgs) -> Result<ExitCode> {
    let (state, inv) = locate(cli)?;
    let pass = passphrase(&args.passphrase_env, true)?;
    let m = backup::backup(&state, inv.as_deref(), &args.file, &pass)?;
    print_manifest(cli, &format!("wrote {}", args.file.display()), &m)?;
    Ok(ExitCode::SUCCESS)
}

pub fn restore(cli: &Cli, args: &RestoreArgs) -> Result<ExitCode> {
    if args.show {
        let m = backup::show(&args.file)?;
        print_manifest(cli, &args.file.display().to_string(), &m)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (state, inv) = locate(cli)?;
    let pass = passphrase(&args.passphrase_env, false)?;
    let r = backup::restore(&args.file, &state, &pass, args.force)?;
    print_manifest(
        cli,
        &format!("restored {} files into {}", r.files, state.display()),
        &r.manifest,
    )?;
    if cli.output == Output::Text {
        if let Some(aside) = &r.moved_aside {
            println!("the replaced state directory is now {}", aside.display());
        }
        let digest = inv
            .and_then(|p| crate::fsutil::read_limited(&p, "", crate::fsutil::INVENTORY_LIMIT).ok())
            .map(|d| crate::modules::sha256_hex(&d));
        if r.manifest.inventory_sha256.is_some() && digest != r.manifest.inventory_sha256 {
            println!(
                "note: the inventory differs from the one the backup was made with; `regboot plan` shows what that changes"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
