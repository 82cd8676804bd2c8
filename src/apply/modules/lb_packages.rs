//! nginx, keepalived and curl (keepalived's health check runs it) on lb hosts, installed with
//! the OS's package manager when missing. Installed packages are never upgraded.

use super::{Ctx, Want};
use crate::apply::change::Change;

/// (command probed on PATH, package that provides it): the same names on every family.
const PACKAGES: [(&str, &str); 3] = [
    ("nginx", "nginx"),
    ("keepalived", "keepalived"),
    ("curl", "curl"),
];

/// Args: packages. Picks the package manager of the OS family (Debian, Fedora/RHEL, SUSE,
/// Alpine). Debian's nginx starts with its default site; the nginx step replaces its config.
const INSTALL: &str = r#"set -eu
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

pub fn want(w: &mut Want) {
    w.req
        .commands
        .extend(PACKAGES.iter().map(|(c, _)| c.to_string()));
}

pub fn check(ctx: &Ctx) -> Vec<Change> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(cmd, _)| !ctx.state.commands.get(*cmd).copied().unwrap_or(false))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    vec![Change::script(
        format!("install {}", missing.join(" ")),
        INSTALL,
        &missing,
    )]
}
