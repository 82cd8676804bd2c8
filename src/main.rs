use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `regboot ... | head` should end quietly, like other Unix tools, not panic on EPIPE.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = regboot::cli::Cli::parse();
    cli.init_logging();
    match regboot::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
