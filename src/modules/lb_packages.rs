//! nginx, keepalived and curl (keepalived's health check runs it) on lb hosts, installed with
//! the OS's package manager when missing. Installed packages are never upgraded.

use anyhow::Result;

use super::{Ctx, Module};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory};

/// (command probed on PATH, package that provides it): the same names on every family.
pub(crate) const PACKAGES: [(&str, &str); 3] = [
    ("nginx", "nginx"),
    ("keepalived", "keepalived"),
    ("curl", "curl"),
];

/// Args: packages. Picks the package manager of the OS family (Debian, Fedora/RHEL, SUSE,
/// Alpine). Debian's nginx starts with its default site; the nginx step replaces its config.
pub(crate) const INSTALL: &str = r#"set -eu
if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
elif command -v dnf >/dev/null 2>&1; then dnf install -y -q "$@"
elif command -v yum >/dev/null 2>&1; then yum install -y -q "$@"
elif command -v zypper >/dev/null 2>&1; then zypper --non-interactive install "$@"
elif command -v apk >/dev/null 2>&1; then apk add -q "$@"
else
  echo "no known package manager (apt-get, dnf, yum, zypper, apk): install $* by hand" >&2
  exit 1
fi
"#;

pub(crate) struct LbPackages;

impl Module for LbPackages {
    fn name(&self) -> &'static str {
        "lb_packages"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.commands
            .extend(PACKAGES.iter().map(|(c, _)| c.to_string()));
    }

    /// The packages regboot installed (its manifest says which) are purged.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        super::host_manifest::remove_packages(cx)
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let missing: Vec<&str> = PACKAGES
            .iter()
            .filter(|(cmd, _)| !cx.state.commands.get(*cmd).copied().unwrap_or(false))
            .map(|(_, pkg)| *pkg)
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Change::script(
            format!("install {}", missing.join(" ")),
            INSTALL,
            &missing,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn installs_only_what_is_missing() {
        let inv = testing::inventory("");
        // (commands found on PATH, expected changes)
        let cases: [(&[&str], &[&str]); 3] = [
            (&[], &["install nginx keepalived curl"]),
            (&["nginx", "curl"], &["install keepalived"]),
            (&["nginx", "keepalived", "curl"], &[]),
        ];
        for (found, want) in cases {
            let mut state = StateBuilder::new().command("keepalived", false);
            for cmd in found {
                state = state.command(cmd, true);
            }
            let changes = testing::run(&LbPackages, &inv, "h1", &state, true).unwrap();
            assert_eq!(summaries(&changes), *want);
        }
    }
}
