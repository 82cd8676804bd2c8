//! The command line: flags shared by every command, the subcommands, and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{ArgAction, Parser, Subcommand, ValueEnum};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "regboot",
    version,
    about = "Bootstrap a private Docker registry across a cluster over SSH",
    long_about = "regboot reads an inventory (a YAML file listing your hosts and the registry you \
want), creates a CA and a server certificate, and sets up every host over SSH: the CA in \
docker's certs.d and the OS trust store, /etc/hosts, daemon.json, and the registry container \
itself. Every command is safe to run again: it changes only what differs."
)]
pub struct Cli {
    /// The inventory file describing hosts, registry and TLS (see INVENTORY.md).
    #[arg(short = 'i', long, global = true, env = "REGBOOT_INVENTORY")]
    pub inventory: Option<PathBuf>,

    /// Where regboot keeps what cannot be read back from hosts (CA key, issued keys, http
    /// secret). Default: `.regboot/` beside the inventory.
    #[arg(long, global = true, env = "REGBOOT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Output format: text for people, json for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// More detail in logs (-v, -vv).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read and validate an inventory file.
    #[command(subcommand)]
    Inventory(InventoryCommand),

    /// Connect to every host (in parallel) and print what it is: OS, init system, docker,
    /// sudo, daemon.json, connect time. Exit 1 naming each host that failed, and why.
    Facts {
        /// Hosts handled at once.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
        forks: u16,
    },

    /// Manage the SSH host keys regboot checks (the same known_hosts file OpenSSH uses).
    #[command(subcommand)]
    KnownHosts(KnownHostsCommand),
}

#[derive(Debug, Subcommand)]
pub enum KnownHostsCommand {
    /// Remove a host's recorded keys (after a reinstall changed them), like `ssh-keygen -R`.
    Forget {
        /// An inventory host name (with -i), `[address]:port`, or an address.
        host: String,
        /// The port, when HOST is a bare address.
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// The known_hosts file (default: the inventory host's, else ~/.ssh/known_hosts).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Validate the inventory and print a summary: hosts by role, the registry's references,
    /// and the names the server certificate will carry. Exit 1 with located errors otherwise.
    Check,
}

impl Cli {
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, _) => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_env("REGBOOT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("regboot={level}")));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }

    /// The inventory path, or an error telling the user how to give one.
    pub fn inventory_path(&self) -> Result<&PathBuf> {
        self.inventory
            .as_ref()
            .context("no inventory given: pass -i inventory.yml (or set REGBOOT_INVENTORY)")
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Inventory(InventoryCommand::Check) => commands::inventory_check(&cli),
        Command::Facts { forks } => commands::facts(&cli, usize::from(*forks)),
        Command::KnownHosts(KnownHostsCommand::Forget { host, port, file }) => {
            commands::known_hosts_forget(&cli, host, *port, file.as_ref())
        }
    }
}
