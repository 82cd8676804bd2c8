//! `registry.login_agents`: the credentials of the first listed user merged into root's
//! docker config on each agent (`/root/.docker/config.json`, 0600), under every reference of
//! the registry (hostname, aliases, VIP, with the port), so pulls work without `docker
//! login`. Every other key and entry of the file is kept. An entry for one of those
//! references whose user is no longer in `registry.users` is removed (the user was removed
//! from the inventory, and from htpasswd by registry_files); so is every entry of a listed
//! user on reset. (A docker config holds one credential per registry, hence the first user.)

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Map, Value};

use super::{Ctx, Module};
use crate::diff;
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::host::Mode;
use crate::inventory::{Host, Inventory};

pub(crate) const CONFIG: &str = "/root/.docker/config.json";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The user name inside an `auth` entry (`base64(user:password)`).
fn user_of(entry: &Value) -> Option<String> {
    let auth = entry.get("auth")?.as_str()?;
    let decoded = String::from_utf8(b64().decode(auth).ok()?).ok()?;
    Some(decoded.split_once(':')?.0.to_string())
}

fn parse(text: Option<&str>) -> Result<Map<String, Value>> {
    match text.map(str::trim) {
        None | Some("") => Ok(Map::new()),
        Some(t) => match serde_json::from_str(t) {
            Ok(Value::Object(m)) => Ok(m),
            _ => bail!("{CONFIG} is not a JSON object; fix it by hand, then run again"),
        },
    }
}

/// The config with `login` (user, password) set for `refs` and, for those refs, entries of
/// users not in `known` (or, with no login, of `drop` users) removed.
fn merged(
    current: &Map<String, Value>,
    refs: &[String],
    login: Option<(&str, &str)>,
    keep: &dyn Fn(&str) -> bool,
) -> Map<String, Value> {
    let mut config = current.clone();
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("an object");
    for r in refs {
        match login {
            Some((user, pw)) => {
                let token = b64().encode(format!("{user}:{pw}"));
                let entry = serde_json::json!({ "auth": token });
                auths.insert(r.clone(), entry);
            }
            None => {
                if auths.get(r).and_then(user_of).is_some_and(|u| !keep(&u)) {
                    auths.remove(r);
                }
            }
        }
    }
    if auths.is_empty() && !current.contains_key("auths") {
        config.remove("auths");
    }
    config
}

fn write(current: &Map<String, Value>, wanted: Map<String, Value>) -> Vec<Change> {
    if &wanted == current {
        return Vec::new();
    }
    let mut text = serde_json::to_string_pretty(&wanted).unwrap_or_default();
    text.push('\n');
    // Credentials: shown as a digest only.
    let d = format!(
        "--- {CONFIG}\n+++ {CONFIG}\n{}\n",
        diff::redacted(text.as_bytes())
    );
    let mut c = Change::put_file(CONFIG, text.into_bytes(), Mode::Set(0o600), Some(d));
    c.summary = format!("write {CONFIG} (registry credentials)");
    vec![c]
}

pub(crate) struct AgentLogin;

impl Module for AgentLogin {
    fn name(&self) -> &'static str {
        "agent_login"
    }

    fn want(&self, _inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content.push(CONFIG.into());
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let text = cx.state.text(CONFIG);
        let current = parse(text.as_deref())?;
        let reg = &cx.inv.registry;
        let login = match reg.login_agents.first() {
            None => None,
            Some(name) => {
                let user = reg
                    .users
                    .iter()
                    .find(|u| &u.name == name)
                    .context("login_agents names a user not in registry.users")?;
                let pw = user.password()?.with_context(|| {
                    format!(
                        "login_agents: user {name} has only a password_hash; agents need the \
                         password itself (password_env or password_file) to log in"
                    )
                })?;
                Some((name.clone(), pw))
            }
        };
        if login.is_none() && text.is_none() {
            return Ok(Vec::new());
        }
        let known = |u: &str| reg.users.iter().any(|x| x.name == u);
        let wanted = merged(
            &current,
            &cx.inv.references(),
            login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            &known,
        );
        Ok(write(&current, wanted))
    }

    /// Reset: the entries of the listed users go.
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let text = cx.state.text(CONFIG);
        if text.is_none() {
            return Ok(Vec::new());
        }
        let current = parse(text.as_deref())?;
        let listed = |u: &str| !cx.inv.registry.login_agents.iter().any(|l| l == u);
        let wanted = merged(&current, &cx.inv.references(), None, &listed);
        Ok(write(&current, wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_foreign_entries_and_drops_removed_users() {
        let refs = vec!["registry.test:5000".to_string()];
        let other = json!({"auths": {"ghcr.io": {"auth": "eDp5"}}, "credsStore": "pass"});
        let current = other.as_object().unwrap().clone();
        let with = merged(&current, &refs, Some(("ci", "pw")), &|_| true);
        assert_eq!(with["credsStore"], "pass");
        assert_eq!(with["auths"]["ghcr.io"]["auth"], "eDp5");
        assert_eq!(
            user_of(&with["auths"]["registry.test:5000"]).as_deref(),
            Some("ci")
        );
        // ci removed from the inventory (no login_agents left): its entry goes.
        let without = merged(&with, &refs, None, &|u| u != "ci");
        assert_eq!(without, current);
        // Still a known user: kept.
        assert_eq!(merged(&with, &refs, None, &|_| true), with);
    }
}
