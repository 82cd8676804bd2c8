use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = regboot::cli::Cli::parse();
    cli.init_logging();
    match regboot::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
