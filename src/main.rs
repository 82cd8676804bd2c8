use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `regboot ... | head` should end quietly, like other Unix tools, not panic on EPIPE.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut cli = match regboot::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error with `-o json` is a JSON document too (help and version stay text).
        Err(e)
            if e.use_stderr() && regboot::json_asked_for(&std::env::args().collect::<Vec<_>>()) =>
        {
            let code = u8::try_from(e.exit_code()).unwrap_or(2);
            let _ = regboot::print_json_error(&e.into());
            return ExitCode::from(code);
        }
        Err(e) => e.exit(),
    };
    cli.resolve_output();
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
