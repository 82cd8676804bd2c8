//! A script that may run longer than one SSH command may (a package install on a slow host):
//! started in a session of its own on the host, then waited for in slices, each a command well
//! under the SSH command timeout, up to its own bound. A lost connection does not kill it.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::RemoteHost;

/// One wait for a detached script: half the SSH command timeout (120 s), so a wait is never
/// cut off on a loaded host.
pub const SLICE: Duration = Duration::from_secs(60);

/// `$1` the status file, `$2` a script, then its arguments: the script runs in a session of
/// its own (no hangup when the connection goes), its exit status written to `$1` at the end.
/// The pid file and the status appear whole (renamed into place): a wait that read a pid file
/// still being written took the empty pid for a process gone (CI, under load).
const START: &str = r#"set -eu
s=$1; shift
mkdir -p "${s%/*}"
rm -f "$s" "$s.tmp" "$s.log" "$s.pid" "$s.pid.tmp"
setsid sh -c 's=$1; body=$2; shift 2; echo $$ >"$s.pid.tmp"; mv "$s.pid.tmp" "$s.pid"; rc=0; sh -c "$body" regboot "$@" >"$s.log" 2>&1 || rc=$?; echo $rc >"$s.tmp"; mv "$s.tmp" "$s"' \
  regboot "$s" "$@" </dev/null >/dev/null 2>&1 &
"#;

/// `$1` the status file, `$2` how many fifths of a second to wait: `running`, `lost` (its
/// process is gone without a status), or `exit N` with its output's tail on stderr (the
/// status, output and their directory, when empty, are removed then).
const WAIT: &str = r#"set -u
s=$1; n=$2; i=0
while [ ! -e "$s" ] && [ "$i" -lt "$n" ]; do
  p=$(cat "$s.pid" 2>/dev/null) || p=
  if [ -n "$p" ] && ! kill -0 "$p" 2>/dev/null && [ ! -e "$s" ]; then
    echo lost; exit 0
  fi
  sleep 0.2; i=$((i + 1))
done
[ -e "$s" ] || { echo running; exit 0; }
rc=$(cat "$s")
tail -c 4000 "$s.log" >&2 2>/dev/null
rm -f "$s" "$s.log" "$s.pid"
rmdir "${s%/*}" 2>/dev/null
echo "exit $rc"
"#;

/// A root script run detached on one host, waited for up to `bound`.
#[derive(Debug, Clone)]
pub struct Detached {
    /// What it does, for errors ("installing nginx from the bundle").
    pub what: String,
    pub script: &'static str,
    pub args: Vec<String>,
    /// Where its exit status goes on the host (beside it: `.log`, `.pid`).
    pub status: String,
    pub bound: Duration,
    /// One wait ([`SLICE`]; tests with a short command timeout take less).
    pub slice: Duration,
}

impl Detached {
    /// Run it; an error carries its exit status and output's tail.
    pub async fn run(&self, host: &RemoteHost) -> Result<()> {
        let what = &self.what;
        let mut args = vec![self.status.as_str(), self.script];
        args.extend(self.args.iter().map(String::as_str));
        host.run(&format!("starting {what}"), START, &args, None)
            .await?;
        let start = Instant::now();
        let fifths = (self.slice.as_millis() / 200).max(1).to_string();
        loop {
            let out = host
                .run(
                    &format!("waiting for {what}"),
                    WAIT,
                    &[&self.status, &fifths],
                    None,
                )
                .await?;
            match out.stdout_text().trim() {
                "exit 0" => return Ok(()),
                "lost" => bail!(
                    "{what}: its process on the host ended without an exit status (was it \
                     killed?); its output is in {}.log there: run again",
                    self.status
                ),
                "running" if start.elapsed() < self.bound => {}
                "running" => bail!(
                    "{what} still runs on the host after {} s, the bound for it: let it end \
                     (its output: {}.log there), then run again",
                    self.bound.as_secs(),
                    self.status
                ),
                other => bail!("{what} failed ({other}): {}", out.stderr_tail().trim()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_parse() {
        for script in [START, WAIT] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }

    /// What WAIT answers (one fifth of a second) for a status path whose pid file holds `pid`.
    fn wait_answer(pid: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("install");
        std::fs::write(dir.path().join("install.pid"), pid).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", WAIT, "regboot"])
            .arg(&s)
            .arg("1")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn a_pid_file_not_yet_written_is_running_and_a_gone_process_is_lost() {
        assert_eq!(wait_answer(""), "running");
        assert_eq!(wait_answer(&std::process::id().to_string()), "running");
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let pid = gone.id().to_string();
        gone.wait().unwrap();
        assert_eq!(wait_answer(&pid), "lost");
    }
}
