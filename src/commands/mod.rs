//! One function per subcommand: load what it needs, call the library, print, pick the exit code.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{
    CertsCommand, Cli, Command, InventoryCommand, KnownHostsCommand, RenderCommand,
    ScheduleCommand, UserCommand,
};

mod apply;
mod backup;
mod bundle;
mod catalog;
mod certs;
mod facts;
mod gc;
mod inventory;
mod json;
mod known_hosts;
mod lab;
mod renew;
mod reset;
mod rotate;
mod schedule;
mod ui;

use apply::{Kind, run_playbook, user_hash};
use certs::{certs_check, certs_import, certs_init, certs_show};
use facts::facts;
use inventory::inventory_check;
use known_hosts::forget as known_hosts_forget;
use lab::lab;
use rotate::{replace_ca, rotate};

pub use json::{asked_for as json_asked_for, print_error as print_json_error};

/// Print a generated text as it is, or in JSON as the document's `field`.
fn text_or_json(cli: &Cli, field: &str, text: Vec<u8>) -> Result<ExitCode> {
    let text = String::from_utf8(text)?;
    match cli.output {
        crate::cli::Output::Json => json::print(&serde_json::json!({ field: text }))?,
        crate::cli::Output::Text => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Run the command `cli` names.
pub fn run(cli: Cli) -> Result<ExitCode> {
    crate::engine::progress::init(cli.quiet);
    if cli.format == crate::cli::Format::Prometheus
        && !matches!(cli.command, Command::Certs(CertsCommand::Check { .. }))
    {
        anyhow::bail!("-o prometheus is for `certs check`; use -o text or -o json here");
    }
    match &cli.command {
        Command::Inventory(InventoryCommand::Check) => inventory_check(&cli),
        Command::Bundle {
            dir,
            releases,
            mirror,
            no_image,
            refresh,
        } => bundle::bundle(&cli, dir, releases, mirror.as_deref(), *no_image, *refresh),
        Command::Facts { forks, limit } => facts(&cli, usize::from(*forks), limit.as_deref()),
        Command::KnownHosts(KnownHostsCommand::Forget { host, port, file }) => {
            known_hosts_forget(&cli, host, *port, file.as_ref())
        }
        Command::Lab(cmd) => lab(&cli, cmd),
        Command::Apply(a) if a.replace_ca => replace_ca(&cli, &a.run),
        Command::Apply(a) => run_playbook(&cli, Kind::Apply, &a.run),
        Command::Plan(a) => run_playbook(&cli, Kind::Plan, a),
        Command::Verify(a) => run_playbook(&cli, Kind::Verify, a),
        Command::User(UserCommand::Hash) => user_hash(&cli),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "regboot", &mut script);
            text_or_json(&cli, "script", script)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)?;
            text_or_json(&cli, "man", page)
        }
        Command::Certs(CertsCommand::Init { ca_validity }) => certs_init(&cli, *ca_validity),
        Command::Certs(CertsCommand::Check {
            local,
            limit,
            textfile,
        }) => certs_check(&cli, *local, limit.as_deref(), textfile.as_deref()),
        Command::Certs(CertsCommand::Import { ca_cert, ca_key }) => {
            certs_import(&cli, ca_cert, ca_key)
        }
        Command::Rotate(args) => rotate(&cli, args),
        Command::Reset(args) => reset::reset(&cli, args),
        Command::Backup(args) => backup::backup(&cli, args),
        Command::Restore(args) => backup::restore(&cli, args),
        Command::Catalog { limit } => catalog::catalog(&cli, limit.as_deref()),
        Command::Ui { limit, port } => ui::ui(&cli, limit.as_deref(), *port),
        Command::Render(RenderCommand::Marathon) => {
            let inv = crate::inventory::load(cli.inventory_path()?)?;
            let app = crate::marathon::app(&inv);
            // The app definition is JSON already; `-o json` wraps it in a versioned document.
            match cli.output {
                crate::cli::Output::Json => json::print(&serde_json::json!({ "app": app }))?,
                crate::cli::Output::Text => println!("{}", serde_json::to_string_pretty(&app)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gc { dry_run, forks } => gc::gc(&cli, *dry_run, usize::from(*forks)),
        Command::Certs(CertsCommand::Show) => certs_show(&cli),
        Command::Renew { forks, textfile } => {
            renew::renew(&cli, usize::from(*forks), textfile.as_deref())
        }
        Command::Schedule(ScheduleCommand::Systemd {
            print,
            dir,
            on_calendar,
            randomized_delay,
        }) => schedule::systemd(
            &cli,
            &schedule::Schedule {
                print: *print,
                dir,
                on_calendar,
                randomized_delay,
            },
        ),
    }
}
