//! k3s and RKE2 nodes: their embedded containerd ignores `/etc/containerd/certs.d` and writes its
//! own hosts.toml from `/etc/rancher/<k3s|rke2>/registries.yaml`, read only when the service
//! starts. regboot merges into that file, for every reference, a `mirrors` entry (the registry
//! itself as endpoint) and a `configs` entry whose `tls.ca_file` is the CA file regboot places
//! beside it (`regboot-ca.pem`: the CA, and during a CA rotation the other CA after it, since
//! `ca_file` names one file), plus `auth` with the first `login_agents` user when that list
//! asks; every other entry and comment stays (`merge::registries_yaml`). A changed
//! registries.yaml restarts the service (pods keep running), one node at a time, servers (one
//! step) before agents (the next), each node's kubelet healthy again before the next. The CA
//! file alone changing needs no restart: containerd reads it on every pull. `reset` takes the
//! entries out (the file goes when regboot created it and nothing else is left) and the CA
//! file, without a restart.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use super::{CaFile, Ctx, Module, file_change};
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::facts::{Facts, KubeDistribution, KubeRole, Kubernetes};
use crate::host::Mode;
use crate::inventory::{Host, Inventory};
use crate::merge::registries_yaml::{self as yaml, Entry};

const DISTRIBUTIONS: [KubeDistribution; 2] = [KubeDistribution::K3s, KubeDistribution::Rke2];

fn dir(d: KubeDistribution) -> String {
    format!("/etc/rancher/{}", d.name())
}

fn registries(d: KubeDistribution) -> String {
    format!("{}/registries.yaml", dir(d))
}

/// The CA file `ca_file` names.
fn ca_path(d: KubeDistribution) -> String {
    format!("{}/regboot-ca.pem", dir(d))
}

const RESTART: &str = r#"if [ -d /run/systemd/system ]; then systemctl restart "$1"; else rc-service "$1" restart; fi"#;

/// Until the service runs and its kubelet answers `/healthz` (bounded: 180 tries, a second
/// apart): what a node must be before the next one restarts.
const WAIT_READY: &str = r#"svc=$1; i=0
ready() {
  if [ -d /run/systemd/system ] && [ "$(systemctl is-active "$svc")" != active ]; then return 1; fi
  if command -v curl >/dev/null 2>&1; then curl -fsS -m 2 http://127.0.0.1:10248/healthz >/dev/null 2>&1
  else wget -q -T 2 -O /dev/null http://127.0.0.1:10248/healthz 2>/dev/null; fi
}
until ready; do
  i=$((i+1)); [ $i -ge 180 ] && { echo "$svc: the kubelet did not answer http://127.0.0.1:10248/healthz within 180 s: see journalctl -u $svc" >&2; exit 1; }
  sleep 1
done"#;

/// Its record: there was no registries.yaml (reset removes it when only regboot's entries were
/// in it).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Own {
    #[serde(default)]
    created: bool,
}

/// The node's k3s or RKE2 service, for the module of `role`.
fn node(facts: &Facts, role: KubeRole) -> Option<&Kubernetes> {
    facts
        .kubernetes
        .as_ref()
        .filter(|k| k.rancher() && k.role == Some(role))
}

pub(crate) struct RancherRegistries {
    pub name: &'static str,
    pub role: KubeRole,
}

pub(crate) const SERVERS: RancherRegistries = RancherRegistries {
    name: "rancher_registries_servers",
    role: KubeRole::Server,
};

pub(crate) const AGENTS: RancherRegistries = RancherRegistries {
    name: "rancher_registries_agents",
    role: KubeRole::Agent,
};

/// regboot's entry for `reference`: the registry as its own mirror endpoint, the CA file, and
/// `login` (user, password) when login_agents asks.
fn entry(reference: &str, ca: Option<&str>, login: Option<(&str, &str)>) -> Entry {
    let mut mirror = Mapping::new();
    mirror.insert(
        "endpoint".into(),
        Value::Sequence(vec![format!("https://{reference}").into()]),
    );
    let mut config = Mapping::new();
    if let Some((user, password)) = login {
        let mut auth = Mapping::new();
        auth.insert("username".into(), user.into());
        auth.insert("password".into(), password.into());
        config.insert("auth".into(), Value::Mapping(auth));
    }
    if let Some(ca) = ca {
        let mut tls = Mapping::new();
        tls.insert("ca_file".into(), ca.into());
        config.insert("tls".into(), Value::Mapping(tls));
    }
    Entry {
        key: reference.to_string(),
        mirror: Value::Mapping(mirror),
        config: Value::Mapping(config),
    }
}

/// The first login_agents user and their password (agents need the password itself).
fn login(inv: &Inventory) -> Result<Option<(String, String)>> {
    let reg = &inv.registry;
    let Some(name) = reg.login_agents.first() else {
        return Ok(None);
    };
    let user = reg
        .users
        .iter()
        .find(|u| &u.name == name)
        .context("login_agents names a user not in registry.users")?;
    let pw = user.password()?.with_context(|| {
        format!(
            "login_agents: user {name} has only a password_hash; k3s and RKE2 need the password \
             itself (password_env or password_file) in registries.yaml"
        )
    })?;
    Ok(Some((name.clone(), pw)))
}

/// registries.yaml as wanted on a node of `d` (`None`: unchanged).
fn wanted(cx: &Ctx, d: KubeDistribution, auth: Option<(&str, &str)>) -> Result<Option<String>> {
    let path = registries(d);
    let current = cx.state.text(&path).unwrap_or_default();
    let ca = cx.material.tls.as_ref().map(|_| ca_path(d));
    let mut text = current.clone();
    for r in cx.inv.references() {
        text = yaml::set(&text, &entry(&r, ca.as_deref(), auth)).context(path.clone())?;
    }
    Ok((text != current || cx.state.file(&path).is_none()).then_some(text))
}

impl Module for RancherRegistries {
    fn name(&self) -> &'static str {
        self.name
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        for d in DISTRIBUTIONS {
            req.content.push(registries(d));
            req.content.push(ca_path(d));
        }
        super::want_registry(inv, host, req);
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let Some(kube) = node(&cx.state.facts, self.role) else {
            return Ok(Vec::new());
        };
        let d = kube.distribution;
        let mut changes = Vec::new();
        if let Some(tls) = &cx.material.tls {
            let mut bundle = tls.ca_pem.clone();
            for (_, pem) in &tls.extra_cas {
                bundle.push_str(pem);
            }
            changes.extend(file_change(
                cx.state,
                &ca_path(d),
                bundle.as_bytes(),
                0o644,
                false,
            ));
        }
        let login = login(cx.inv)?;
        let auth = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let Some(text) = wanted(cx, d, auth)? else {
            return Ok(changes);
        };
        let path = registries(d);
        // Credentials in it: 0600, and the plan shows a digest, not the file.
        let mode = match cx.state.file(&path) {
            Some(f) if auth.is_none() => f.mode,
            _ => 0o600,
        };
        let Some(mut write) = file_change(cx.state, &path, text.as_bytes(), mode, auth.is_some())
        else {
            return Ok(changes);
        };
        write.summary = format!(
            "merge the registry into {path} ({} reads it at start)",
            d.name()
        );
        changes.push(write);
        if !kube.active {
            return Ok(changes);
        }
        let service = kube.service.as_str();
        let restart = Change::script(
            format!(
                "RESTART {service}: {} reads registries.yaml only at start (pods keep running)",
                d.name()
            ),
            RESTART,
            &[service],
        );
        let wait = Change::script(
            format!("wait until {service} runs and its kubelet answers /healthz"),
            WAIT_READY,
            &[service],
        );
        changes.extend(super::restart(cx, restart, vec![wait], true));
        Ok(changes)
    }

    fn footprint(&self, _inv: &Inventory, _host: &Host, state: Option<&HostState>) -> Footprint {
        let own = match state {
            None => Own::default(),
            Some(state) => match node(&state.facts, self.role) {
                None => return Footprint::default(),
                Some(kube) => Own {
                    created: state.file(&registries(kube.distribution)).is_none(),
                },
            },
        };
        Footprint {
            record: serde_json::to_value(own).ok(),
            ..Footprint::default()
        }
    }

    /// regboot's entries out of registries.yaml (the file removed when regboot created it and
    /// nothing else is left), and its CA file; no restart (read at the service's next start).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let Some(kube) = node(&cx.state.facts, self.role) else {
            return Ok(Vec::new());
        };
        let d = kube.distribution;
        let created = footprint::recorded(cx, self)?
            .own::<Own>()
            .is_some_and(|o| o.created);
        let mut changes = Vec::new();
        let path = registries(d);
        let later = format!("({} reads it at its next start)", d.name());
        if let Some(text) = cx.state.text(&path)
            && let Some(rest) = yaml::remove(&text, &cx.inv.references()).context(path.clone())?
        {
            changes.push(if rest.trim().is_empty() && created {
                Change::script(
                    format!("remove {path}: regboot created it for its entries alone {later}"),
                    r#"rm -f -- "$1""#,
                    &[&path],
                )
            } else {
                let mut c = Change::put_file(&path, rest.into_bytes(), Mode::Keep, None);
                c.summary = format!("take regboot's entries out of {path} {later}");
                c
            });
        }
        if cx.state.file(&ca_path(d)).is_some() {
            changes.push(Change::script(
                format!("remove {}", ca_path(d)),
                r#"rm -f -- "$1""#,
                &[&ca_path(d)],
            ));
        }
        Ok(changes)
    }

    fn ca_files(&self, _inv: &Inventory, facts: Option<&Facts>) -> Vec<CaFile> {
        let dists: Vec<KubeDistribution> = match facts {
            None => DISTRIBUTIONS.to_vec(),
            Some(f) => node(f, self.role)
                .map(|k| k.distribution)
                .into_iter()
                .collect(),
        };
        dists
            .into_iter()
            .map(|d| CaFile {
                path: ca_path(d),
                role: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{User, UserSecret};
    use crate::modules::testing::{self, StateBuilder, summaries};

    /// docs.rke2.io's registries.yaml (install/private_registry), as an operator keeps it.
    const THEIRS: &str = r#"# Mirrors for the cluster.
mirrors:
  docker.io:
    endpoint:
      - "https://mycustomreg.com:5000"
configs:
  "mycustomreg:5000":
    auth:
      username: xxxxxx # this is the registry username
      password: xxxxxx # this is the registry password
"#;

    fn node(unit: &str, active: bool, yaml: Option<&str>) -> StateBuilder {
        let mut s = StateBuilder::new();
        s.0.facts.docker = Default::default();
        s.0.facts.kubernetes = Kubernetes::from_unit(
            unit,
            if active { "active" } else { "inactive" },
            "v1.30.4+k3s1",
        );
        let d = s.0.facts.kubernetes.as_ref().unwrap().distribution;
        match yaml {
            Some(t) => s.file(&registries(d), t),
            None => s,
        }
    }

    #[test]
    fn merges_restarts_once_and_converges() {
        let inv = testing::inventory("");
        let refs = inv.references();
        let agent = node("k3s-agent", true, Some(THEIRS));
        // The servers' module leaves an agent alone, and the other way round.
        assert!(
            testing::run(&SERVERS, &inv, "h2", &agent, true)
                .unwrap()
                .is_empty()
        );
        assert!(
            testing::run(&AGENTS, &inv, "h2", &node("k3s", true, None), true)
                .unwrap()
                .is_empty()
        );
        let changes = testing::run(&AGENTS, &inv, "h2", &agent, true).unwrap();
        assert_eq!(
            summaries(&changes),
            [
                "write /etc/rancher/k3s/regboot-ca.pem",
                "merge the registry into /etc/rancher/k3s/registries.yaml (k3s reads it at start)",
                "RESTART k3s-agent: k3s reads registries.yaml only at start (pods keep running)",
                "wait until k3s-agent runs and its kubelet answers /healthz",
            ]
        );
        assert!(changes[2..].iter().all(|c| c.one_at_a_time));
        let text = testing::written(&changes, "/etc/rancher/k3s/registries.yaml").unwrap();
        // Every line of the operator's file is still there, in order.
        let mut rest = text.lines();
        assert!(THEIRS.lines().all(|l| rest.any(|t| t == l)), "{text}");
        for r in &refs {
            let c = yaml::get(&text, "configs", r).unwrap().unwrap();
            assert_eq!(c["tls"]["ca_file"], "/etc/rancher/k3s/regboot-ca.pem");
            assert!(c.get("auth").is_none());
            let m = yaml::get(&text, "mirrors", r).unwrap().unwrap();
            assert_eq!(m["endpoint"][0], format!("https://{r}").as_str());
        }
        // Converged: nothing, no restart.
        let done =
            node("k3s-agent", true, Some(&text)).file("/etc/rancher/k3s/regboot-ca.pem", "CA\n");
        assert!(
            testing::run(&AGENTS, &inv, "h2", &done, true)
                .unwrap()
                .is_empty()
        );
        // A CA rotation's second CA: the CA file only (read on every pull), no restart.
        let mut material = testing::material();
        material.tls.as_mut().unwrap().extra_cas =
            vec![(crate::pki::rotation::CaRole::Next, "NEXT\n".into())];
        let rotating = testing::run_with(&AGENTS, &inv, "h2", &done, &material, true).unwrap();
        assert_eq!(
            summaries(&rotating),
            ["write /etc/rancher/k3s/regboot-ca.pem"]
        );
        assert_eq!(
            testing::written(&rotating, "/etc/rancher/k3s/regboot-ca.pem").unwrap(),
            "CA\nNEXT\n"
        );
        // A stopped service reads it when it starts: no restart. RKE2's server: its own paths.
        let stopped =
            testing::run(&AGENTS, &inv, "h2", &node("rke2-agent", false, None), true).unwrap();
        assert_eq!(summaries(&stopped).len(), 2, "{:?}", summaries(&stopped));
        let rke2 =
            testing::run(&SERVERS, &inv, "h2", &node("rke2-server", true, None), true).unwrap();
        assert!(summaries(&rke2)[2].starts_with("RESTART rke2-server"));
        assert!(testing::written(&rke2, "/etc/rancher/rke2/registries.yaml").is_some());
    }

    #[test]
    fn login_agents_adds_auth_and_the_plan_shows_no_password() {
        let mut inv = testing::inventory("");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret-pw\n").unwrap();
        inv.registry.users = vec![User {
            name: "ci".into(),
            secret: UserSecret::File(pw),
        }];
        inv.registry.login_agents = vec!["ci".into()];
        let changes = testing::run(
            &AGENTS,
            &inv,
            "h2",
            &node("k3s-agent", true, Some(THEIRS)),
            true,
        )
        .unwrap();
        let text = testing::written(&changes, "/etc/rancher/k3s/registries.yaml").unwrap();
        let c = yaml::get(&text, "configs", &inv.references()[0])
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                c["auth"]["username"].as_str(),
                c["auth"]["password"].as_str()
            ),
            (Some("ci"), Some("s3cret-pw"))
        );
        for change in &changes {
            assert!(
                !change.summary.contains("s3cret")
                    && !change.diff.as_deref().unwrap_or("").contains("s3cret")
            );
        }
    }

    /// Servers roll before agents, one node at a time, in apply; reset takes the entries out
    /// (the operator's file back byte for byte; a file regboot created goes) and the CA file.
    #[test]
    fn servers_before_agents_and_reset() {
        let apply = crate::playbooks::apply().unwrap();
        let at = |name: &str| {
            apply
                .steps
                .iter()
                .position(|s| s.module.name() == name)
                .unwrap()
        };
        let (servers, agents) = (
            at("rancher_registries_servers"),
            at("rancher_registries_agents"),
        );
        assert_eq!(agents, servers + 1);
        assert!(
            [servers, agents]
                .iter()
                .all(|&i| apply.steps[i].serial == Some(1))
        );

        let inv = testing::inventory("");
        let applied = testing::run(
            &AGENTS,
            &inv,
            "h2",
            &node("k3s-agent", true, Some(THEIRS)),
            true,
        )
        .unwrap();
        let text = testing::written(&applied, "/etc/rancher/k3s/registries.yaml").unwrap();
        let placed =
            node("k3s-agent", true, Some(&text)).file("/etc/rancher/k3s/regboot-ca.pem", "CA\n");
        let reset = testing::run(&AGENTS, &inv, "h2", &placed, false).unwrap();
        assert_eq!(
            summaries(&reset),
            [
                "take regboot's entries out of /etc/rancher/k3s/registries.yaml (k3s reads it at its next start)",
                "remove /etc/rancher/k3s/regboot-ca.pem",
            ]
        );
        assert_eq!(
            testing::written(&reset, "/etc/rancher/k3s/registries.yaml").unwrap(),
            THEIRS
        );
        // regboot created it (the manifest says so): it goes.
        let fresh =
            testing::run(&AGENTS, &inv, "h2", &node("k3s-agent", true, None), true).unwrap();
        let ours = testing::written(&fresh, "/etc/rancher/k3s/registries.yaml").unwrap();
        let manifest = r#"{"version": 2, "modules": {"rancher_registries_agents": {"record": {"created": true}}}}"#;
        let placed = node("k3s-agent", true, Some(&ours)).file(footprint::MANIFEST, manifest);
        let reset = testing::run(&AGENTS, &inv, "h2", &placed, false).unwrap();
        assert!(
            summaries(&reset)[0].starts_with("remove /etc/rancher/k3s/registries.yaml"),
            "{:?}",
            summaries(&reset)
        );
    }
}
