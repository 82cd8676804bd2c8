//! Packages installed and purged with the host's own package manager: the one ladder every
//! module that brings a package uses (its footprint names the package, so reset purges it).
//! With `packages.bundle` the packages come from the offline bundle instead (`crate::bundle`).
//! Either way the package manager runs detached on the host under [`INSTALL_TIMEOUT`], not
//! the SSH command timeout: a slow mirror or disk does not cut an install midway.

use anyhow::{Result, bail};

use super::change::Change;
use crate::bundle::install::{INSTALL_TIMEOUT, Install};
use crate::bundle::{Manifest, ReleaseKey};
use crate::facts::Facts;
use crate::host::detached::{self, Detached};
use crate::inventory::{Host, Inventory};

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

/// The package manager's exit status on the host (see [`Detached`]).
const STATUS: &str = "/var/cache/regboot/packages";

/// A package regboot may install, and the command that shows it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Package {
    pub command: &'static str,
    pub name: &'static str,
}

fn run(summary: String, op: &str, packages: &[&str]) -> Change {
    let mut args = vec![op.to_string()];
    args.extend(packages.iter().map(|p| p.to_string()));
    let detached = Detached {
        what: summary.clone(),
        script: SCRIPT,
        args,
        status: STATUS.into(),
        bound: INSTALL_TIMEOUT,
        slice: detached::SLICE,
    };
    Change::detached(summary, detached)
}

/// Install `packages` (never upgraded: callers pass only missing ones). `recommends`: with
/// what the package recommends (apt), as the docker engine's package wants. From the bundle
/// when the inventory names one, else from the host's package sources.
pub(crate) fn install(
    inv: &Inventory,
    host: &Host,
    facts: &Facts,
    summary: impl Into<String>,
    packages: &[&str],
    recommends: bool,
) -> Result<Change> {
    let summary = summary.into();
    if let Some(dir) = &inv.packages_bundle {
        let host = &host.name;
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
    use crate::modules::lb_packages::LbPackages;
    use crate::modules::testing::{self, StateBuilder, summaries};

    /// With `packages.bundle`, a missing package is installed from the bundle's files of the
    /// host's release; a release or package the bundle lacks fails in plan, naming the fix.
    #[test]
    fn installs_from_the_bundle_of_the_hosts_release() {
        let dir = tempfile::tempdir().unwrap();
        let rel = "debian-12-amd64";
        let debs = [
            ("nginx", "1.22"),
            ("libc6", "2.36"),
            ("keepalived", "2.2"),
            ("curl", "7.88"),
        ];
        let mut m = crate::bundle::Manifest {
            version: 1,
            ..Default::default()
        };
        let mut release = crate::bundle::Release {
            os: "debian".into(),
            version: "12".into(),
            codename: "bookworm".into(),
            arch: "amd64".into(),
            packages: Default::default(),
            recommends: Default::default(),
            debs: Default::default(),
        };
        for (p, v) in debs {
            let file = crate::bundle::deb_file(p, v, "amd64");
            release.debs.insert(
                file.clone(),
                crate::bundle::Deb {
                    package: p.into(),
                    version: v.into(),
                    arch: "amd64".into(),
                    size: 1_000_000,
                },
            );
            m.files.insert(format!("{rel}/{file}"), "00".repeat(32));
            if p != "libc6" {
                release.packages.insert(
                    p.into(),
                    vec![file, crate::bundle::deb_file("libc6", "2.36", "amd64")],
                );
            }
        }
        m.files.insert(format!("{rel}/Packages"), "11".repeat(32));
        m.releases.insert(rel.into(), release);
        std::fs::write(
            dir.path().join(crate::bundle::MANIFEST),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        let inv = testing::inventory(&format!(
            "packages: {{ bundle: {} }}\n",
            dir.path().display()
        ));
        let host = |version: &str| {
            let mut s = StateBuilder::new()
                .command("nginx", true)
                .command("curl", true);
            s = s.command("keepalived", false);
            s.0.facts.os.id = "debian".into();
            s.0.facts.os.version = Some(version.into());
            s.0.facts.arch = "x86_64".into();
            s
        };
        let changes = testing::run(&LbPackages, &inv, "h1", &host("12"), true).unwrap();
        assert_eq!(
            summaries(&changes),
            [
                "install keepalived from the bundle: up to 2 .debs, 2.0 MB, only those the host lacks"
            ]
        );
        assert!(matches!(
            changes[0].action,
            crate::engine::change::Action::Bundle(_)
        ));
        // No image in this bundle: the registry image stays as the inventory says.
        assert_eq!(inv.registry.image_archive, None);
        let err = testing::run(&LbPackages, &inv, "h1", &host("13"), true).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("debian-13-amd64") && err.contains("--release debian-13-amd64"),
            "{err}"
        );
    }

    /// Without a bundle the host's package manager runs detached under the install's bound,
    /// not the SSH command timeout.
    #[test]
    fn a_mirror_install_runs_detached_under_its_own_bound() {
        let inv = testing::inventory("");
        let host = StateBuilder::new()
            .command("nginx", true)
            .command("curl", true)
            .command("keepalived", false);
        let changes = testing::run(&LbPackages, &inv, "h1", &host, true).unwrap();
        let crate::engine::change::Action::Detached(install) = &changes[0].action else {
            panic!("{:?}", changes[0].action);
        };
        assert_eq!(install.args, ["install", "keepalived"]);
        assert_eq!(install.bound, INSTALL_TIMEOUT);
    }

    #[test]
    fn the_script_parses() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", SCRIPT])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// Without `image_archive`, the registry image is loaded from the bundle when it holds
    /// `registry.image`.
    #[test]
    fn the_registry_image_comes_from_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!("packages: {{ bundle: {} }}\n", dir.path().display());
        let image = testing::inventory("").registry.image;
        let m = crate::bundle::Manifest {
            version: 1,
            image: Some(crate::bundle::Image {
                name: image,
                file: crate::bundle::IMAGE.into(),
            }),
            ..Default::default()
        };
        let manifest = dir.path().join(crate::bundle::MANIFEST);
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
        let inv = testing::inventory(&yaml);
        assert_eq!(
            inv.registry.image_archive,
            Some(dir.path().join(crate::bundle::IMAGE))
        );
    }
}
