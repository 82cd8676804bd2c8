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
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{INDEX, Manifest, ReleaseKey};
use crate::host::RemoteHost;
use crate::host::detached::{self, Detached};

/// Where the files wait on the host until apt has installed them.
pub const REMOTE_DIR: &str = "/var/cache/regboot/bundle";
/// The detached install's exit status (`.log`: its output; `.pid`: its process).
const STATUS: &str = "/var/cache/regboot/bundle-install";
/// How long a package install may take on one host, from the bundle or a mirror (docker.io
/// with its recommends unpacks hundreds of MB: minutes on a slow disk or mirror).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

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
            what: format!("installing {} from the bundle", self.packages.join(" ")),
            script: INSTALL,
            args: args.into_iter().map(String::from).collect(),
            status: STATUS.into(),
            bound: INSTALL_TIMEOUT,
            slice: detached::SLICE,
        }
        .run(host)
        .await
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
        for script in [LIST, RECEIVE, INSTALL] {
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    }
}
