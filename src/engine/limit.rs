//! `--limit PATTERN`: the hosts a command touches, read as Ansible reads its `--limit`:
//! comma-separated terms, each a host name, a glob (`node*`, `web-?`), a role (`role:agent`),
//! or any of these after `!` to exclude. Without a positive term, every host is in; then the
//! exclusions are taken out. A term that matches no host is an error, so a typo never
//! silently shrinks (or empties) a run.

use anyhow::{Result, bail};

use crate::inventory::{Host, Inventory, Role};

enum Pattern {
    Glob(glob::Pattern),
    Role(Role),
}

impl Pattern {
    fn parse(term: &str) -> Result<Pattern> {
        if let Some(role) = term.strip_prefix("role:") {
            return Ok(Pattern::Role(match role {
                "registry" => Role::Registry,
                "agent" => Role::Agent,
                "lb" => Role::Lb,
                _ => {
                    bail!("--limit: unknown role {role:?} in {term:?} (roles: registry, agent, lb)")
                }
            }));
        }
        match glob::Pattern::new(term) {
            Ok(p) => Ok(Pattern::Glob(p)),
            Err(e) => bail!("--limit: {term:?} is not a valid name or glob: {e}"),
        }
    }

    fn matches(&self, host: &Host) -> bool {
        match self {
            Pattern::Glob(g) => g.matches(&host.name),
            Pattern::Role(r) => host.has_role(*r),
        }
    }
}

/// The hosts of `inv` inside `limit` (all of them without one), in inventory order.
pub fn select<'a>(inv: &'a Inventory, limit: Option<&str>) -> Result<Vec<&'a Host>> {
    let Some(limit) = limit else {
        return Ok(inv.hosts.iter().collect());
    };
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for term in limit.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (list, body) = match term.strip_prefix('!') {
            Some(body) => (&mut exclude, body),
            None => (&mut include, term),
        };
        let pattern = Pattern::parse(body)?;
        if !inv.hosts.iter().any(|h| pattern.matches(h)) {
            let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
            bail!(
                "--limit {limit:?}: {term:?} matches no host of the inventory (hosts: {})",
                names.join(", ")
            );
        }
        list.push(pattern);
    }
    let hosts: Vec<&Host> = inv
        .hosts
        .iter()
        .filter(|h| include.is_empty() || include.iter().any(|p| p.matches(h)))
        .filter(|h| !exclude.iter().any(|p| p.matches(h)))
        .collect();
    if hosts.is_empty() {
        bail!("--limit {limit:?} matches no host: every host it names is also excluded");
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing;

    #[test]
    fn terms() {
        let inv = testing::inventory("");
        let names = |limit: Option<&str>| -> Result<Vec<String>> {
            Ok(select(&inv, limit)?
                .iter()
                .map(|h| h.name.clone())
                .collect())
        };
        let cases: [(Option<&str>, &[&str]); 7] = [
            (None, &["h1", "h2"]),
            (Some("h2"), &["h2"]),
            (Some("h*"), &["h1", "h2"]),
            (Some("role:agent"), &["h2"]),
            (Some("!h1"), &["h2"]),
            (Some("h*,!role:registry"), &["h2"]),
            (Some("h1, h2"), &["h1", "h2"]),
        ];
        for (limit, want) in cases {
            assert_eq!(names(limit).unwrap(), want, "{limit:?}");
        }
        for (limit, says) in [
            ("h3", "\"h3\" matches no host"),
            ("role:web", "unknown role"),
            ("h1,!h1", "every host it names is also excluded"),
            ("node[", "not a valid name or glob"),
        ] {
            let err = names(Some(limit)).unwrap_err().to_string();
            assert!(err.contains(says), "{limit}: {err}");
        }
    }
}
