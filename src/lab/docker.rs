//! Running the local docker CLI: one place that turns a failed command into an error carrying
//! the command line and the tail of its stderr.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The docker CLI with `args`.
pub fn cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new("docker");
    c.args(args);
    c
}

/// Run docker with `args`; its trimmed stdout on success, an error with stderr otherwise.
pub fn run<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_command(cmd(args))
}

/// Whether docker with `args` succeeds (for probes such as "does this image exist").
pub fn succeeds(args: &[&str]) -> bool {
    cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run a prepared command (docker or not) and return its trimmed stdout.
pub fn run_command(mut c: Command) -> Result<String> {
    let line = describe(&c);
    finish(&line, c.stdin(Stdio::null()).output())
}

/// Run docker with `args`, `input` on its stdin (for secrets: never in arguments), like [`run`].
pub fn run_with_stdin<I, S>(args: I, input: &[u8]) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = cmd(args);
    let line = describe(&c);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{line}`"))?;
    let written = child.stdin.take().map(|mut s| s.write_all(input));
    let out = finish(&line, child.wait_with_output())?;
    written
        .transpose()
        .with_context(|| format!("`{line}` did not read its input"))?;
    Ok(out)
}

fn finish(line: &str, out: std::io::Result<std::process::Output>) -> Result<String> {
    let out = out.with_context(|| format!("cannot run `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 15)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn describe(c: &Command) -> String {
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `n` lines of `text`, trimmed: enough of a tool's stderr to act on.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
