//! Installing from a bundle on a host (`packages.bundle:`): one round trip reads which packages
//! the host has (dpkg) and which bundle files it holds from an earlier try; only the other
//! .debs of the closure travel (one tar stream), every file is checked against the manifest's
//! SHA-256 on the host, and apt installs from the files as a flat repository with its own
//! sources, lists and cache, so no mirror is contacted. The files go once the install succeeds.
//!
//! The install runs detached on the host ([`Detached`]) under its own bound, [`INSTALL_TIMEOUT`],
//! not the SSH command timeout (120 s): a slow host's dpkg is not cut off midway, and a lost
//! connection does not kill it either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{INDEX, Manifest, ReleaseKey};
use crate::host::RemoteHost;

/// Where the files wait on the host until apt has installed them.
pub const REMOTE_DIR: &str = "/var/cache/regboot/bundle";
/// The detached install's exit status (`.log`: its output; `.pid`: its process).
const STATUS: &str = "/var/cache/regboot/bundle-install";
/// How long apt may take to install from the bundle on one host (docker.io with its
/// recommends unpacks hundreds of MB: minutes on a slow disk).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// One wait for it: well under the SSH command timeout.
const WAIT_SLICE: Duration = Duration::from_secs(60);

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

/// `$1` the directory: installed packages (`i NAME VERSION`), then the bundle files already
/// there (`f SHA256 NAME`).
const LIST: &str = r#"set -eu
dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' 2>/dev/null | awk '$1 == "ii" { print "i", $2, $3 }'
if [ -d "$1" ]; then
  cd "$1" && find . -maxdepth 1 -type f -exec sha256sum {} + | sed 's|  \./| |; s|^|f |'
fi
"#;

/// `$1` the directory, `$2` sha256sum's check list; stdin a tar of the files.
const RECEIVE: &str = r#"set -eu
mkdir -p "$1" && chmod 0755 "$1" && cd "$1"
tar -x --no-same-owner -f -
if ! printf '%s' "$2" | sha256sum -c --quiet --strict - >&2; then
  printf '%s' "$2" | awk '{ print $2 }' | xargs -r rm -f --
  echo "a bundle file on this host differs from the manifest's SHA-256 (removed): run again" >&2
  exit 1
fi
"#;

/// `$1` the directory, `$2` install or install-recommends, then the packages.
const INSTALL: &str = r#"set -eu
d=$1; op=$2; shift 2
export DEBIAN_FRONTEND=noninteractive
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/lists/partial" "$t/cache/archives/partial" "$t/parts"
echo "deb [trusted=yes] file:$d ./" > "$t/sources.list"
a() {
  apt-get -qq -o Dir::Etc::SourceList="$t/sources.list" -o Dir::Etc::SourceParts="$t/parts" \
    -o Dir::State::Lists="$t/lists" -o Dir::Cache="$t/cache" -o APT::Sandbox::User=root \
    -o Acquire::Languages=none "$@"
}
a update
if [ "$op" = install-recommends ]; then a install -y "$@"; else a install -y --no-install-recommends "$@"; fi >/dev/null
rm -rf "$d"
rmdir "${d%/*}" 2>/dev/null || true
"#;

#[derive(Debug, Clone)]
struct File {
    name: String,
    sha256: String,
    size: u64,
    /// The package and version it holds (`None`: the index).
    holds: Option<(String, String)>,
}

/// Packages to install on one host from the bundle's release directory.
#[derive(Debug, Clone)]
pub struct Install {
    source: PathBuf,
    files: Vec<File>,
    packages: Vec<String>,
    recommends: bool,
}

impl Install {
    /// `packages` for a host of release `key` (`host` names it in errors).
    pub fn new(
        dir: &Path,
        manifest: &Manifest,
        key: &ReleaseKey,
        host: &str,
        packages: &[&str],
        recommends: bool,
    ) -> Result<Install> {
        let rel = key.to_string();
        let Some(release) = manifest.releases.get(&rel) else {
            bail!(
                "host {host} runs {rel}, and the bundle {} holds no packages for it (it has {}): \
                 run `regboot bundle` again with the host reachable, or with --release {rel}",
                dir.display(),
                names(manifest.releases.keys())
            );
        };
        let mut wanted = BTreeSet::new();
        for p in packages {
            let Some(files) = release.packages.get(*p) else {
                bail!(
                    "host {host} needs {p}, and the bundle {} holds no {p} for {rel}: run \
                     `regboot bundle` again with this inventory",
                    dir.display()
                );
            };
            wanted.extend(files.iter().cloned());
        }
        let mut files = vec![File {
            name: INDEX.into(),
            sha256: manifest.sha256(&format!("{rel}/{INDEX}"))?.into(),
            size: 0,
            holds: None,
        }];
        for name in wanted {
            let deb = release
                .debs
                .get(&name)
                .with_context(|| format!("the bundle's {rel} lists {name} without its record"))?;
            files.push(File {
                sha256: manifest.sha256(&format!("{rel}/{name}"))?.into(),
                size: deb.size,
                holds: Some((deb.package.clone(), deb.version.clone())),
                name,
            });
        }
        Ok(Install {
            source: dir.join(rel),
            files,
            packages: packages.iter().map(|p| p.to_string()).collect(),
            recommends,
        })
    }

    /// What the plan says: how much may travel (the host's own packages stay home).
    pub fn describe(&self) -> String {
        let debs = self.files.len() - 1;
        let mb = self.files.iter().map(|f| f.size).sum::<u64>() as f64 / 1e6;
        format!("from the bundle: up to {debs} .debs, {mb:.1} MB, only those the host lacks")
    }

    pub async fn apply(&self, host: &RemoteHost) -> Result<()> {
        let listing = host
            .run("reading the host's packages", LIST, &[REMOTE_DIR], None)
            .await?
            .stdout_text();
        let mut installed = BTreeMap::new();
        let mut present = BTreeMap::new();
        for line in listing.lines() {
            let mut f = line.split(' ');
            match (f.next(), f.next(), f.next()) {
                (Some("i"), Some(p), Some(v)) => {
                    installed.insert(p.to_string(), v.to_string());
                }
                (Some("f"), Some(sum), Some(name)) => {
                    present.insert(name.to_string(), sum.to_string());
                }
                _ => {}
            }
        }
        let needed: Vec<&File> = self
            .files
            .iter()
            .filter(|f| match &f.holds {
                Some((p, v)) => installed.get(p) != Some(v),
                None => true,
            })
            .collect();
        let mut tar = tar::Builder::new(Vec::new());
        for f in needed
            .iter()
            .filter(|f| present.get(&f.name) != Some(&f.sha256))
        {
            let local = self.source.join(&f.name);
            tar.append_path_with_name(&local, &f.name)
                .with_context(|| format!("cannot read {}", local.display()))?;
        }
        let tar = tar.into_inner()?;
        let checks: String = needed
            .iter()
            .map(|f| format!("{}  {}\n", f.sha256, f.name))
            .collect();
        host.run(
            "sending the bundle's files",
            RECEIVE,
            &[REMOTE_DIR, &checks],
            Some(&tar),
        )
        .await?;
        let op = if self.recommends {
            "install-recommends"
        } else {
            "install"
        };
        let mut args = vec![REMOTE_DIR, op];
        args.extend(self.packages.iter().map(String::as_str));
        Detached {
            what: &format!("installing {} from the bundle", self.packages.join(" ")),
            script: INSTALL,
            args: &args,
            status: STATUS,
            bound: INSTALL_TIMEOUT,
            slice: WAIT_SLICE,
        }
        .run(host)
        .await
    }
}

/// A script that may run longer than one SSH command may: started in the background on the
/// host, then waited for in slices (each a command well under the SSH timeout) up to `bound`.
pub struct Detached<'a> {
    /// What it does, for errors ("installing nginx from the bundle").
    pub what: &'a str,
    pub script: &'a str,
    pub args: &'a [&'a str],
    /// Where its exit status goes on the host (beside it: `.log`, `.pid`).
    pub status: &'a str,
    pub bound: Duration,
    pub slice: Duration,
}

impl Detached<'_> {
    /// Run it; an error carries its exit status and output's tail.
    pub async fn run(&self, host: &RemoteHost) -> Result<()> {
        let what = self.what;
        let mut args = vec![self.status, self.script];
        args.extend(self.args);
        host.run(&format!("starting {what}"), START, &args, None)
            .await?;
        let start = Instant::now();
        let fifths = (self.slice.as_millis() / 200).max(1).to_string();
        loop {
            let out = host
                .run(
                    &format!("waiting for {what}"),
                    WAIT,
                    &[self.status, &fifths],
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

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_parse() {
        for script in [LIST, RECEIVE, INSTALL, START, WAIT] {
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
