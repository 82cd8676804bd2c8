//! Before any change: a host that must install packages (a module's footprint names one whose
//! command it lacks) from its own package sources, with no `packages.bundle`, is asked whether
//! one of its sources answers (apt's own downloader fetching an InRelease file, a few seconds
//! at most). When none does, the host stops there naming the packages, instead of an install
//! failing after apt's long timeouts with half of the run made.

use futures::future::join_all;

use super::fleet::Node;
use super::playbook::{Playbook, State};
use super::probe::HostState;
use crate::inventory::{Host, Inventory};

/// Exit 0 when a source answers, or the host has no apt (other families are not checked);
/// else why not on stdout. Nothing on the host changes (lists go to a temp directory).
const CHECK: &str = r#"set -u
command -v apt-get >/dev/null 2>&1 || exit 0
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/lists/partial"
uris=$(apt-get -o Dir::State::Lists="$t/lists" --print-uris update 2>/dev/null | sed -n "s/^'\([^']*InRelease\)'.*/\1/p" | head -n 3)
if [ -z "$uris" ]; then echo "apt has no package source"; exit 1; fi
for u in $uris; do
  if timeout 5 /usr/lib/apt/apt-helper -o Acquire::Retries=0 -o APT::Sandbox::User=root \
      download-file "$u" "$t/r" >/dev/null 2>"$t/err"; then exit 0; fi
done
echo "none of its package sources answered within 5 s ($(echo $uris | tr ' ' ','))"
exit 1
"#;

/// The packages `host`'s steps would install (`state`: the host as probed; `None`: every one
/// they may install).
fn wanted(
    inv: &Inventory,
    playbook: &Playbook,
    host: &Host,
    state: Option<&HostState>,
) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for s in &playbook.steps {
        if s.state != State::Present || !s.hosts.matches(host) {
            continue;
        }
        for p in s.module.footprint(inv, host, state).packages {
            let missing = state.is_none_or(|st| st.command(p.command) != Some(true));
            if missing && !out.contains(&p.name) {
                out.push(p.name);
            }
        }
        let engine_missing = state.is_none_or(|st| !st.facts.docker.installed);
        if s.module.provides_engine() && inv.docker_install && engine_missing {
            out.push("the docker engine");
        }
    }
    out
}

/// Whether a plan must keep `host`'s connection for [`check`].
pub(crate) fn may_ask(inv: &Inventory, playbook: &Playbook, host: &Host) -> bool {
    inv.packages_bundle.is_none() && !wanted(inv, playbook, host, None).is_empty()
}

/// Fail each read host that must install packages and has no package source that answers.
pub(crate) async fn check(inv: &Inventory, playbook: &Playbook, nodes: &mut [&mut Node<'_>]) {
    if inv.packages_bundle.is_some() {
        return;
    }
    let problems = join_all(nodes.iter().map(|n| problem(inv, playbook, n))).await;
    for (n, p) in nodes.iter_mut().zip(problems) {
        if let Some(p) = p {
            n.fail(p);
        }
    }
}

async fn problem(inv: &Inventory, playbook: &Playbook, node: &Node<'_>) -> Option<String> {
    if node.error.is_some() {
        return None;
    }
    let (state, remote) = (node.state.as_ref()?, node.remote.as_ref()?);
    // A host that cannot run as root is stopped by the readiness check, with its own reason.
    if !state.as_root() {
        return None;
    }
    let missing = wanted(inv, playbook, node.host, Some(state));
    if missing.is_empty() {
        return None;
    }
    let why = match remote.script(CHECK, &[], None).await {
        Ok(out) if out.success() => return None,
        Ok(out) => out.stdout_text().trim().to_string(),
        Err(e) => format!("{e:#}"),
    };
    Some(format!(
        "must install {} and cannot: {why}; nothing was changed. Build a bundle with \
         `regboot bundle -i INVENTORY DIR` where the mirrors answer and set \
         `packages: {{ bundle: DIR }}` (docs/bundle.md), or give the host a reachable mirror",
        missing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_script_parses() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", super::CHECK])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
