//! The registry service as wanted and as the swarm has it. config.yml (the http secret, the
//! storage keys), the key and htpasswd are Swarm secrets, the certificate chain a Swarm
//! config; each is named by a digest of its content, so a change is a new name and the
//! service that mounts it is a new one (secrets cannot change in place). The service spec
//! holds only names, paths and the image: `docker service inspect` shows no secret.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::engine::probe::HostState;
use crate::inventory::{Inventory, Role, Storage};
use crate::material::Material;
use crate::modules::registry_files::{self, ManagedFile};
use crate::modules::sha256_hex;
use crate::render::container;

/// The label on everything regboot makes in the swarm: services, their task containers,
/// secrets and configs.
pub(super) const LABEL: &str = "io.regboot.service";
/// The service label naming the loopback slot its tasks publish.
const PORT_LABEL: &str = "io.regboot.port";
/// Where the secrets are mounted (Swarm's default target directory).
const SECRETS_DIR: &str = "/run/secrets";
/// The placement constraint: the nodes of the registry hosts.
pub(super) const CONSTRAINT: &str = "node.labels.io.regboot.registry==true";

/// A secret or config the service mounts.
#[derive(Debug, Clone)]
pub(super) struct Item {
    /// `secret` or `config`.
    pub kind: &'static str,
    /// What plan calls it: the file it holds.
    pub what: &'static str,
    pub name: String,
    /// In the task: a file name under /run/secrets (secrets) or an absolute path (configs).
    pub target: String,
    pub data: Vec<u8>,
}

/// The service as the inventory and the material want it (without its slot).
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    pub image: String,
    pub replicas: u64,
    pub env: Vec<String>,
    pub items: Vec<Item>,
    /// `--mount` values (the data dir, for filesystem storage).
    pub mounts: Vec<String>,
}

/// The service name for a slot.
pub(super) fn name(port: u16) -> String {
    format!("regboot-registry-{port}")
}

fn item(file: &ManagedFile) -> Option<Item> {
    let (kind, what, stem, target) = match file.path {
        registry_files::CONFIG => ("secret", "config.yml", "config", "config.yml".to_string()),
        registry_files::KEY => ("secret", "registry.key", "key", "registry.key".into()),
        registry_files::HTPASSWD => ("secret", "htpasswd", "htpasswd", "htpasswd".into()),
        registry_files::CHAIN => (
            "config",
            "registry-chain.crt",
            "chain",
            container::CERT_PATH.into(),
        ),
        _ => return None,
    };
    Some(Item {
        kind,
        what,
        name: format!("regboot-{stem}-{}", &sha256_hex(&file.data)[..12]),
        target,
        data: file.data.clone(),
    })
}

/// The wanted service; htpasswd's hashes are kept from `state`'s copy while they still match
/// (as `registry_files` writes it), so the secret's name is stable between runs.
pub(super) fn wanted(inv: &Inventory, material: &Material, state: &HostState) -> Result<Wanted> {
    let files = registry_files::compute(material, state)?;
    let items: Vec<Item> = files.iter().filter_map(item).collect();
    let mut env = Vec::new();
    if material.tls.is_some() {
        env.push(format!("REGISTRY_HTTP_TLS_KEY={SECRETS_DIR}/registry.key"));
    }
    if items.iter().any(|i| i.what == "htpasswd") {
        env.push(format!(
            "REGISTRY_AUTH_HTPASSWD_PATH={SECRETS_DIR}/htpasswd"
        ));
    }
    env.extend(inv.registry.env());
    let mounts = match inv.registry.storage {
        Storage::Filesystem { .. } => vec![format!(
            "type=bind,source={},target={}",
            inv.registry.data_dir,
            container::DATA_PATH
        )],
        _ => Vec::new(),
    };
    Ok(Wanted {
        image: inv.registry.image.clone(),
        replicas: inv.hosts_with(Role::Registry).count() as u64,
        env,
        items,
        mounts,
    })
}

impl Wanted {
    /// `docker service create` arguments for the service on loopback slot `port`.
    pub fn create_args(&self, port: u16) -> Vec<String> {
        let mut a: Vec<String> = [
            "--detach",
            "--quiet",
            "--no-resolve-image",
            "--name",
            &name(port),
            "--label",
            &format!("{LABEL}=registry"),
            "--label",
            &format!("{PORT_LABEL}={port}"),
            "--container-label",
            &format!("{LABEL}=registry"),
            "--mode",
            "replicated",
            "--replicas",
            &self.replicas.to_string(),
            "--replicas-max-per-node",
            "1",
            "--constraint",
            CONSTRAINT,
            // Host mode: the kernel may lack IPVS, which the routing mesh needs.
            "--endpoint-mode",
            "dnsrr",
            "--publish",
            &format!(
                "mode=host,target={},published={port},protocol=tcp",
                container::PORT
            ),
            "--restart-condition",
            "any",
            "--restart-delay",
            "1s",
            "--stop-grace-period",
            "20s",
        ]
        .map(String::from)
        .to_vec();
        for i in &self.items {
            a.push(format!("--{}", i.kind));
            a.push(format!("source={},target={},mode=0400", i.name, i.target));
        }
        for e in &self.env {
            a.extend(["--env".into(), e.clone()]);
        }
        for m in &self.mounts {
            a.extend(["--mount".into(), m.clone()]);
        }
        a.extend([
            self.image.clone(),
            "serve".into(),
            format!("{SECRETS_DIR}/config.yml"),
        ]);
        a
    }
}

/// A regboot service as `docker service inspect` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Current {
    pub name: String,
    pub port: u16,
    pub image: String,
    pub replicas: Option<u64>,
    pub constraints: Vec<String>,
    pub env: Vec<String>,
    /// Secret and config names.
    pub items: Vec<String>,
    pub mounts: usize,
}

/// `docker service inspect`'s JSON array.
pub(super) fn parse(json: &str) -> Result<Vec<Current>> {
    let all: Vec<Value> = serde_json::from_str(json).context("docker service inspect's output")?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(all
        .iter()
        .map(|s| {
            let spec = &s["Spec"];
            let task = &spec["TaskTemplate"];
            let c = &task["ContainerSpec"];
            let names = |key: &str, field: &str| -> Vec<String> {
                c[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|i| i[field].as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut items = names("Secrets", "SecretName");
            items.extend(names("Configs", "ConfigName"));
            items.sort();
            Current {
                name: spec["Name"].as_str().unwrap_or_default().to_string(),
                port: spec["Labels"][PORT_LABEL]
                    .as_str()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                image: c["Image"].as_str().unwrap_or_default().to_string(),
                replicas: spec["Mode"]["Replicated"]["Replicas"].as_u64(),
                constraints: strings(&task["Placement"]["Constraints"]),
                env: strings(&c["Env"]),
                items,
                mounts: c["Mounts"].as_array().map_or(0, Vec::len),
            }
        })
        .collect())
}

/// What differs between the service and the wish, for plan (empty: none).
pub(super) fn drift(c: &Current, w: &Wanted) -> Vec<String> {
    let mut out = Vec::new();
    if c.image != w.image {
        out.push(format!("image {} -> {}", c.image, w.image));
    }
    let mut changed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for i in &w.items {
        if !c.items.contains(&i.name) {
            changed.entry(i.kind).or_default().push(i.what);
        }
    }
    if c.items.len() > w.items.len() {
        changed
            .entry("secret")
            .or_default()
            .push("one no longer wanted");
    }
    for (kind, what) in changed {
        out.push(format!("{kind} {}", what.join(", ")));
    }
    if c.replicas != Some(w.replicas) {
        let had = c.replicas.map_or("global".into(), |r| r.to_string());
        out.push(format!("replicas {had} -> {}", w.replicas));
    }
    if c.constraints != [CONSTRAINT] {
        out.push(format!(
            "constraints {:?} -> [{CONSTRAINT:?}]",
            c.constraints
        ));
    }
    let mut env = c.env.clone();
    let mut want_env = w.env.clone();
    env.sort();
    want_env.sort();
    if env != want_env {
        out.push("environment".into());
    }
    if c.mounts != w.mounts.len() {
        out.push("mounts".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder};

    /// Material with secrets that look like secrets, and a user (so htpasswd is a secret too).
    fn material() -> Material {
        let mut m = testing::material();
        if let Some(tls) = m.tls.as_mut() {
            tls.key_pem =
                "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
                    .into();
        }
        let data = crate::modules::registry_config::RegistryData {
            users: vec![crate::merge::htpasswd::User {
                name: "ci".into(),
                secret: crate::merge::htpasswd::Secret::Password("a password".into()),
            }],
            config: "http:\n  secret: 7d1f0c2b9e8a4d6f0011223344556677\n".into(),
        };
        m.prepared
            .insert("registry_files", std::sync::Arc::new(data));
        m
    }

    fn wanted_for(extra: &str) -> Wanted {
        let inv = testing::inventory(extra);
        wanted(&inv, &material(), &StateBuilder::new().0).unwrap()
    }

    /// What `docker service inspect` would show for a service created with `args`.
    fn inspected(w: &Wanted, port: u16) -> String {
        let a = w.create_args(port);
        let after = |flag: &str| -> Vec<String> {
            a.windows(2)
                .filter(|p| p[0] == flag)
                .map(|p| p[1].clone())
                .collect()
        };
        let source = |flag: &str, field: &str| -> Vec<Value> {
            after(flag)
                .iter()
                .map(|v| {
                    let name = v.split(',').next().unwrap().trim_start_matches("source=");
                    serde_json::json!({ field: name })
                })
                .collect()
        };
        serde_json::json!([{ "Spec": {
            "Name": name(port),
            "Labels": { LABEL: "registry", PORT_LABEL: port.to_string() },
            "Mode": { "Replicated": { "Replicas": w.replicas } },
            "TaskTemplate": {
                "Placement": { "Constraints": after("--constraint") },
                "ContainerSpec": {
                    "Image": w.image,
                    "Env": after("--env"),
                    "Secrets": source("--secret", "SecretName"),
                    "Configs": source("--config", "ConfigName"),
                    "Mounts": after("--mount").iter().map(|_| serde_json::json!({})).collect::<Vec<_>>(),
                }
            }
        }}])
        .to_string()
    }

    #[test]
    fn the_spec_carries_names_and_paths_never_a_secret() {
        let w = wanted_for("");
        let args = w.create_args(41501).join(" ");
        assert_eq!(w.items.len(), 4);
        for i in w.items.iter().filter(|i| i.kind == "secret") {
            let text = String::from_utf8_lossy(&i.data);
            for line in text.lines().filter(|l| l.trim().len() > 8) {
                let value = line.rsplit([' ', ':']).next().unwrap_or(line);
                assert!(
                    !args.contains(value),
                    "{}'s {line:?} is in the spec",
                    i.what
                );
            }
            assert!(args.contains(&i.name));
        }
        let kinds: Vec<(&str, &str)> = w.items.iter().map(|i| (i.kind, i.what)).collect();
        assert!(
            kinds.contains(&("secret", "config.yml"))
                && kinds.contains(&("secret", "registry.key"))
        );
        assert!(kinds.contains(&("config", "registry-chain.crt")));
        assert!(
            args.contains("--publish mode=host,target=5000,published=41501"),
            "{args}"
        );
        assert!(args.ends_with("serve /run/secrets/config.yml"), "{args}");
    }

    /// A service made from the wish shows no drift; each input that changes names what.
    #[test]
    fn drift_names_what_changed() {
        let w = wanted_for("");
        let current = parse(&inspected(&w, 41500)).unwrap();
        assert_eq!(current[0].port, 41500);
        assert!(
            drift(&current[0], &w).is_empty(),
            "{:?}",
            drift(&current[0], &w)
        );
        let mut other = w.clone();
        other.image = "registry:3".into();
        other.replicas = 2;
        other
            .items
            .iter_mut()
            .find(|i| i.what == "registry.key")
            .unwrap()
            .name = "regboot-key-0".into();
        other
            .items
            .iter_mut()
            .find(|i| i.kind == "config")
            .unwrap()
            .name = "regboot-chain-0".into();
        assert_eq!(
            drift(&current[0], &other),
            [
                "image registry:2 -> registry:3",
                "config registry-chain.crt",
                "secret registry.key",
                "replicas 1 -> 2"
            ]
        );
        let mut hand = current[0].clone();
        hand.constraints.clear();
        assert!(drift(&hand, &w)[0].starts_with("constraints [] -> "));
    }

    /// The names follow the content: htpasswd's hashes kept from the host's copy, the same
    /// material gives the same names (no roll).
    #[test]
    fn names_follow_the_content() {
        let inv = testing::inventory("");
        let a = wanted(&inv, &material(), &StateBuilder::new().0).unwrap();
        let htpasswd = a.items.iter().find(|i| i.what == "htpasswd").unwrap();
        let state = StateBuilder::new().file(
            registry_files::HTPASSWD,
            std::str::from_utf8(&htpasswd.data).unwrap(),
        );
        let b = wanted(&inv, &material(), &state.0).unwrap();
        let names = |w: &Wanted| w.items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        assert!(
            names(&a)
                .iter()
                .all(|n| n.starts_with("regboot-") && n.len() < 64)
        );
    }
}
