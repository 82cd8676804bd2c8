//! `regboot schedule systemd`: a service and a timer that run `regboot renew` every day.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Output};

pub const SERVICE: &str = "regboot-renew.service";
pub const TIMER: &str = "regboot-renew.timer";

/// What `schedule systemd` is asked for.
pub struct Schedule<'a> {
    pub print: bool,
    pub dir: &'a Path,
    pub on_calendar: &'a str,
    pub randomized_delay: &'a str,
}

pub fn systemd(cli: &Cli, s: &Schedule) -> Result<ExitCode> {
    let inventory = absolute(cli.inventory_path()?)?;
    let inv = super::rotate::self_signed(cli)?;
    let state_dir = absolute(&inv.state_dir(cli.state_dir.as_deref()))?;
    let exe = std::env::current_exe().context("cannot find regboot's own path")?;
    let units = [
        (SERVICE, service(&exe, &inventory, &state_dir, &user()?)),
        (TIMER, timer(s.on_calendar, s.randomized_delay)),
    ];
    if s.print {
        let text: Vec<String> = units
            .iter()
            .map(|(name, unit)| format!("# {name}\n{unit}"))
            .collect();
        return super::text_or_json(cli, "units", text.join("\n").into_bytes());
    }
    let mut written = Vec::new();
    for (name, unit) in &units {
        let path = s.dir.join(name);
        crate::fsutil::write_atomic(&path, unit.as_bytes(), 0o644)?;
        written.push(path);
    }
    match cli.output {
        Output::Json => super::json::print(&serde_json::json!({ "written": written }))?,
        Output::Text => {
            for path in &written {
                println!("wrote {}", path.display());
            }
            println!("then: systemctl daemon-reload && systemctl enable --now {TIMER}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// The user running this command: the service runs as them, with their SSH keys, known_hosts
/// and state directory.
fn user() -> Result<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; read before any other
    // call that may reuse it, on this thread only.
    let name = unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() {
            bail!("this user has no passwd entry: the service needs a User= to run as");
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    };
    Ok(name)
}

/// One argument of ExecStart, quoted for systemd: `%` is a specifier and `$` a variable there.
fn arg(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

fn service(exe: &Path, inventory: &Path, state_dir: &Path, user: &str) -> String {
    let dir = inventory.parent().unwrap_or(Path::new("/"));
    format!(
        "[Unit]\n\
         Description=Renew the registry's certificates when due (regboot renew)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         User={user}\n\
         WorkingDirectory={}\n\
         # Variables the inventory reads (${{VAR}}, password_env): KEY=value lines, mode 0600.\n\
         EnvironmentFile=-/etc/regboot/renew.env\n\
         # renew takes the state directory's lock: a run while another holds it exits 1 at once.\n\
         ExecStart={} renew -i {} --state-dir {}\n\
         # 3: something was renewed.\n\
         SuccessExitStatus=3\n",
        dir.to_string_lossy().replace('%', "%%"),
        arg(&exe.to_string_lossy()),
        arg(&inventory.to_string_lossy()),
        arg(&state_dir.to_string_lossy()),
    )
}

fn timer(on_calendar: &str, randomized_delay: &str) -> String {
    format!(
        "[Unit]\n\
         Description=Run regboot renew daily\n\
         \n\
         [Timer]\n\
         OnCalendar={on_calendar}\n\
         # Not every machine on the hour: a random delay up to this.\n\
         RandomizedDelaySec={randomized_delay}\n\
         # A run missed while the machine was off happens at the next boot.\n\
         Persistent=true\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_arguments_are_quoted_for_systemd() {
        assert_eq!(arg("/a b/%h$X\"\\"), "\"/a b/%%h$$X\\\"\\\\\"");
    }
}
