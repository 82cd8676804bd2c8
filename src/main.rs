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
    let json = cli.output == regboot::cli::Output::Json;
    match regboot::run(cli) {
        Ok(code) => code,
        // Scripts read the error on stdout as a JSON document; the exit code stays the same.
        Err(err) if json => {
            if let Err(e) = regboot::print_json_error(&err) {
                eprintln!("error: {err:#} ({e:#})");
            }
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
