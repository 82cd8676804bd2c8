//! Packages installed and purged with the host's own package manager: the one ladder every
//! module that brings a package uses (its footprint names the package, so reset purges it).
//! With `packages.bundle` the packages come from the offline bundle instead (`crate::bundle`).

use anyhow::{Result, bail};

use super::change::Change;
use super::module::Ctx;
use crate::bundle::{Manifest, ReleaseKey, install::Install};

/// Args: the operation (`install`, `install-recommends`, `purge`), then packages. Picks the
/// package manager of the OS family (Debian, Fedora/RHEL, SUSE, Arch, Alpine).
const SCRIPT: &str = r#"set -eu
op=$1; shift
if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  case $op in
    install) apt-get update -qq; apt-get install -y -qq --no-install-recommends "$@" >/dev/null ;;
    install-recommends) apt-get update -qq; apt-get install -y -qq "$@" >/dev/null ;;
    purge) apt-get purge -y -qq --auto-remove "$@" >/dev/null ;;
  esac
elif command -v dnf >/dev/null 2>&1; then
  if [ "$op" = purge ]; then dnf remove -y -q "$@"; else dnf install -y -q "$@"; fi
elif command -v yum >/dev/null 2>&1; then
  if [ "$op" = purge ]; then yum remove -y -q "$@"; else yum install -y -q "$@"; fi
elif command -v zypper >/dev/null 2>&1; then
  if [ "$op" = purge ]; then zypper --non-interactive remove "$@"; else zypper --non-interactive install "$@"; fi
elif command -v pacman >/dev/null 2>&1; then
  if [ "$op" = purge ]; then pacman -Rns --noconfirm "$@"; else pacman -S --noconfirm --needed "$@"; fi
elif command -v apk >/dev/null 2>&1; then
  if [ "$op" = purge ]; then apk del -q "$@"; else apk add -q "$@"; fi
else
  verb=install; [ "$op" = purge ] && verb=remove
  echo "no known package manager (apt-get, dnf, yum, zypper, pacman, apk): $verb $* by hand" >&2
  exit 1
fi
"#;

/// A package regboot may install, and the command that shows it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Package {
    pub command: &'static str,
    pub name: &'static str,
}

fn run(summary: String, op: &str, packages: &[&str]) -> Change {
    let mut args = vec![op];
    args.extend(packages);
    Change::script(summary, SCRIPT, &args)
}

/// Install `packages` (never upgraded: callers pass only missing ones). `recommends`: with
/// what the package recommends (apt), as the docker engine's package wants. From the bundle
/// when the inventory names one, else from the host's package sources.
pub(crate) fn install(
    cx: &Ctx,
    summary: impl Into<String>,
    packages: &[&str],
    recommends: bool,
) -> Result<Change> {
    let summary = summary.into();
    if let Some(dir) = &cx.inv.packages_bundle {
        let host = &cx.host.name;
        let facts = &cx.state.facts;
        let Some(key) = ReleaseKey::of(facts) else {
            bail!(
                "host {host} runs {} ({}), and a bundle holds .debs only: install {} on it \
                 beforehand",
                facts.os.id,
                facts.arch,
                packages.join(" ")
            );
        };
        let install = Install::new(dir, &Manifest::load(dir)?, &key, host, packages, recommends)?;
        return Ok(Change::bundle(
            format!("{summary} {}", install.describe()),
            install,
        ));
    }
    let op = if recommends {
        "install-recommends"
    } else {
        "install"
    };
    Ok(run(summary, op, packages))
}

/// Remove `packages` and what they pulled in.
pub(crate) fn purge(packages: &[&str]) -> Change {
    run(
        format!(
            "remove packages {} (regboot installed them)",
            packages.join(" ")
        ),
        "purge",
        packages,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_parses() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", SCRIPT])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
