//! Modules: one file each, one trait, one registry. A module reads a host's probed state and
//! the wish (inventory and material) and returns the changes that would make them equal (or
//! that remove what it placed); it never touches the host itself, so `plan` prints exactly
//! what `apply` would do. A module that acts on the fleet as a whole (the S3 bucket check,
//! the smoke test) implements `once` instead and runs in a step marked `once: true`.
//!
//! The contract they implement is `engine::module`. Adding a module: one file here, one line
//! in [`REGISTRY`], and its step in a playbook.

pub(crate) mod agent_login;
pub(crate) mod cert_metrics;
pub(crate) mod certs_d;
pub(crate) mod containerd_hosts;
pub(crate) mod containers_certs_d;
pub(crate) mod daemon_json;
pub(crate) mod docker_install;
pub(crate) mod host_manifest;
pub(crate) mod hosts_block;
pub(crate) mod keepalived;
pub(crate) mod lb_packages;
pub(crate) mod nginx;
pub(crate) mod registry_config;
pub(crate) mod registry_container;
pub(crate) mod registry_data;
pub(crate) mod registry_files;
pub(crate) mod registry_front;
pub(crate) mod registry_image;
pub(crate) mod s3_bucket;
pub(crate) mod smoke_test;
pub(crate) mod trust_store;

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::diff;
use crate::engine::change::Change;
use crate::engine::footprint;
pub(crate) use crate::engine::module::{CaFile, Ctx, FleetCx, Module, Outcome};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::host::Mode;
use crate::inventory::{Host, Inventory, Role};
use crate::material::Tls;
use crate::pki::{self, rotation::CaRole};

/// Every module, by its playbook name.
pub(crate) const REGISTRY: &[&dyn Module] = &[
    &host_manifest::HostManifest,
    &docker_install::DockerInstall,
    &certs_d::CERTS_D,
    &containerd_hosts::ContainerdHosts,
    &containers_certs_d::CONTAINERS_CERTS_D,
    &trust_store::TrustStore,
    &hosts_block::HostsBlock,
    &agent_login::AgentLogin,
    &daemon_json::DaemonJson,
    &registry_files::RegistryFiles,
    &registry_image::RegistryImage,
    &registry_container::RegistryContainer,
    &registry_front::RegistryFront,
    &registry_data::RegistryData,
    &lb_packages::LbPackages,
    &nginx::Nginx,
    &keepalived::Keepalived,
    &s3_bucket::S3Bucket,
    &smoke_test::SmokeTest,
    &cert_metrics::CertMetrics,
];

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The changes that make a host's CA files (`path(None)`: the current CA; `path(Some(role))`:
/// a rotation's extra CA) match `tls`, in an order that never leaves a CA untrusted that the
/// registry may still serve: extra CAs written first, then the current one, then the extra
/// files no longer wanted removed. (When `ca-next` becomes `ca-previous` at stage 2, the old
/// CA is in `ca-previous.crt` before `ca.crt` is overwritten with the new one.)
pub(crate) fn ca_files(
    state: &HostState,
    tls: &Tls,
    path: impl Fn(Option<CaRole>) -> String,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (role, pem) in &tls.extra_cas {
        changes.extend(file_change(
            state,
            &path(Some(*role)),
            pem.as_bytes(),
            0o644,
            false,
        ));
    }
    changes.extend(file_change(
        state,
        &path(None),
        tls.ca_pem.as_bytes(),
        0o644,
        false,
    ));
    for role in CaRole::ALL {
        let p = path(Some(role));
        let wanted = tls.extra_cas.iter().any(|(r, _)| *r == role);
        if !wanted && state.file(&p).is_some() {
            changes.push(Change::remove_file(&p));
        }
    }
    changes
}

/// Whether a managed file must be written: missing, different content, or another mode.
/// Public files get a unified diff (when their content was probed); secret ones a digest.
pub(crate) fn file_change(
    state: &HostState,
    path: &str,
    data: &[u8],
    mode: u32,
    secret: bool,
) -> Option<Change> {
    let current = state.file(path);
    let same_content = current.is_some_and(|f| f.sha256 == sha256_hex(data));
    if same_content && current.is_some_and(|f| f.mode == mode) {
        return None;
    }
    let old = current.and_then(|f| f.content.as_deref());
    let text_diff = || {
        let old = old.map(String::from_utf8_lossy).unwrap_or_default();
        diff::unified(path, &old, &String::from_utf8_lossy(data))
    };
    let (diff, raw_diff) = if secret {
        let digest = if same_content {
            "(content unchanged)".to_string()
        } else {
            diff::redacted(data)
        };
        (format!("--- {path}\n+++ {path}\n{digest}\n"), None)
    } else if let Some(certs) = pki::describe::cert_change(old, data) {
        (certs, Some(text_diff()))
    } else {
        (text_diff(), None)
    };
    let mut change = Change::put_file(path, data.to_vec(), Mode::Set(mode), Some(diff));
    change.raw_diff = raw_diff;
    if same_content {
        change.summary = format!("chmod {mode:o} {path}");
    }
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::probe::FileState;
    use std::collections::HashMap;

    fn host_with(files: &[(&str, &str)]) -> HostState {
        let mut map = HashMap::new();
        for role in [None, Some(CaRole::Next), Some(CaRole::Previous)] {
            map.insert(path(role), None);
        }
        for (p, data) in files {
            let f = FileState {
                mode: 0o644,
                sha256: sha256_hex(data.as_bytes()),
                content: Some(data.as_bytes().to_vec()),
            };
            map.insert(p.to_string(), Some(f));
        }
        HostState {
            files: map,
            ..HostState::default()
        }
    }

    fn path(role: Option<CaRole>) -> String {
        match role {
            None => "/d/ca.crt".into(),
            Some(r) => format!("/d/ca-{}.crt", r.suffix()),
        }
    }

    fn tls(ca: &str, extra: &[(CaRole, &str)]) -> Tls {
        Tls {
            ca_pem: ca.into(),
            chain_pem: String::new(),
            key_pem: String::new(),
            extra_cas: extra.iter().map(|(r, p)| (*r, p.to_string())).collect(),
        }
    }

    fn summaries(changes: &[Change]) -> Vec<String> {
        changes.iter().map(|c| c.summary.clone()).collect()
    }

    #[test]
    fn next_becomes_previous_without_a_moment_of_distrust() {
        // Stage 1 done: old current, new next. Stage 2 wants new current, old previous.
        let host = host_with(&[("/d/ca.crt", "OLD"), ("/d/ca-next.crt", "NEW")]);
        let changes = ca_files(&host, &tls("NEW", &[(CaRole::Previous, "OLD")]), path);
        assert_eq!(
            summaries(&changes),
            [
                "write /d/ca-previous.crt",
                "write /d/ca.crt",
                "remove /d/ca-next.crt"
            ]
        );
        // Stage 3: the previous CA goes; nothing else changes.
        let host = host_with(&[("/d/ca.crt", "NEW"), ("/d/ca-previous.crt", "OLD")]);
        let changes = ca_files(&host, &tls("NEW", &[]), path);
        assert_eq!(summaries(&changes), ["remove /d/ca-previous.crt"]);
        // Converged: nothing.
        let host = host_with(&[("/d/ca.crt", "NEW")]);
        assert!(ca_files(&host, &tls("NEW", &[]), path).is_empty());
    }
}

/// A disruptive `restart` made one host at a time: then `waits` (the service answers again)
/// and, with `wait_registry` on a registry host with the registry container (restart policy
/// unless-stopped), the registry healthy again, before the next host.
pub(crate) fn restart(
    cx: &Ctx,
    restart: Change,
    waits: Vec<Change>,
    wait_registry: bool,
) -> Vec<Change> {
    let mut changes = vec![restart];
    changes.extend(waits);
    if wait_registry
        && cx.host.has_role(Role::Registry)
        && cx.state.container(registry_container::NAME).is_some()
    {
        let reg = &cx.inv.registry;
        changes.push(Change::wait_healthy(
            "wait until the registry answers on /v2/ again",
            &reg.hostname,
            reg.port,
            cx.material.tls.as_ref().map(|t| t.ca_pem.clone()),
            registry_container::DIAGNOSE,
        ));
    }
    changes.into_iter().map(Change::one_at_a_time).collect()
}

/// `Module::not_ready` of a module whose hosts need a running docker engine: missing or
/// stopped, unless docker.install and a step that provides the engine (`engine_coming`)
/// bring it first, or the host is an agent that pulls through containerd or podman only (a
/// Kubernetes node: the docker steps have nothing to do there).
pub(crate) fn docker_not_ready(
    inv: &Inventory,
    host: &Host,
    state: &HostState,
    engine_coming: bool,
) -> Option<String> {
    let docker = &state.facts.docker;
    let other_runtime = !host.has_role(Role::Registry)
        && (state.facts.containerd.runtime.installed || state.facts.containers_runtime());
    match (docker.installed, docker.running) {
        (true, true) => None,
        _ if inv.docker_install && engine_coming => None,
        (false, _) if other_runtime => None,
        (true, false) => Some(
            "the docker engine is not running: start it (`systemctl start docker`) and run again"
                .into(),
        ),
        (false, _) => Some(
            "docker is not installed: set `docker.install: true` in the inventory to have regboot install it from the OS's packages (docker.io on Debian and Ubuntu), or install it yourself, and run again"
                .into(),
        ),
    }
}

/// What [`restart`] with `wait_registry` reads: the registry container, on registry hosts;
/// with its image and the other containers regboot names (a roll cut off midway leaves
/// regboot-registry-next, a gc cut off its collector), all in the probe's one docker call.
pub(crate) fn want_registry(inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
    if host.has_role(Role::Registry) {
        req.images.push(inv.registry.image.clone());
        let names = [
            registry_container::NAME,
            registry_container::NEXT,
            registry_files::COLLECTOR,
        ];
        req.containers.extend(names.map(String::from));
    }
}

/// The config `path` that `module` replaced (its footprint names it) undone: the original put
/// back and `service` reloaded when it runs, or, when there was none, the service stopped
/// and regboot's file removed.
pub(crate) fn restore_config(
    cx: &Ctx,
    module: &dyn Module,
    path: &str,
    service: &str,
) -> Result<Vec<Change>> {
    let undo = footprint::recorded(cx, module)?.undo_files(cx.state, &[path.to_string()], false)?;
    Ok(if !undo.restore.is_empty() {
        vec![Change::script(
            format!("put back the original {path} and reload {service} when it runs"),
            r#"cp -p -- "$1" "$2"
if systemctl is-active --quiet "$3"; then systemctl reload-or-restart "$3"; fi"#,
            &[&footprint::saved_path(path), path, service],
        )]
    } else if !undo.remove.is_empty() {
        vec![Change::script(
            format!("stop {service} and remove {path} (regboot wrote it)"),
            r#"systemctl disable --now "$2" >/dev/null 2>&1 || true
rm -f -- "$1""#,
            &[path, service],
        )]
    } else {
        Vec::new()
    })
}

/// A service's config `changes`, then its `reload` script (which tests the config first) when
/// any file changed or the unit is not active; nothing when both are as wanted.
pub(crate) fn reload_when_changed(
    state: &HostState,
    unit: &str,
    test: &str,
    reload: &str,
    mut changes: Vec<Change>,
) -> Vec<Change> {
    let active = state.service(unit) == Some("active");
    if changes.is_empty() && active {
        return changes;
    }
    let why = if changes.is_empty() {
        format!("start {unit} (not active)")
    } else {
        format!("test the config ({test}) and reload {unit}")
    };
    changes.push(Change::script(why, reload, &[]));
    changes
}

/// Inventories, host states and module runs for the modules' table-driven tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::HashMap;

    use anyhow::Result;

    use super::*;
    use crate::engine::memo::Memo;
    use crate::engine::playbook::{Playbook, State};
    use crate::engine::probe::{Container, FileState};
    use crate::facts::{OsFamily, Runtime};
    use crate::inventory::Inventory;
    use crate::material::Material;
    use crate::render::Templates;

    /// A valid inventory: registry host h1 (10.0.0.1), agent h2, lb-less; `registry_extra`
    /// is appended to the `registry:` section (indented by two spaces).
    pub fn inventory(registry_extra: &str) -> Inventory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yml");
        let text = format!(
            "version: 1\ndefaults: {{ user: root, host_key_check: off }}\nhosts:\n  \
             - {{ name: h1, address: 127.0.0.1, private_address: 10.0.0.1, roles: [registry] }}\n  \
             - {{ name: h2, address: 127.0.0.2, private_address: 10.0.0.2, roles: [agent] }}\n\
             registry:\n  hostname: registry.test\n  port: 5000\n  image: registry:2\n\
             {registry_extra}tls:\n  mode: self-signed\n"
        );
        std::fs::write(&path, text).unwrap();
        crate::inventory::load_with_env(&path, &|_| None).unwrap()
    }

    /// A host's probed state, built up a fact or a file at a time (Debian, docker running).
    pub struct StateBuilder(pub HostState);

    impl StateBuilder {
        pub fn new() -> Self {
            let mut state = HostState::default();
            state.facts.os.family = Some(OsFamily::Debian);
            state.facts.docker = Runtime {
                installed: true,
                running: true,
                version: Some("20.10.24".into()),
            };
            StateBuilder(state)
        }
        pub fn file(mut self, path: &str, content: &str) -> Self {
            self.0.files.insert(
                path.into(),
                Some(FileState {
                    mode: 0o644,
                    sha256: sha256_hex(content.as_bytes()),
                    content: Some(content.as_bytes().to_vec()),
                }),
            );
            self
        }
        pub fn service(mut self, name: &str, state: &str) -> Self {
            self.0.services.insert(name.into(), state.into());
            self
        }
        pub fn command(mut self, name: &str, found: bool) -> Self {
            self.0.commands.insert(name.into(), found);
            self
        }
        pub fn container(
            mut self,
            image_id: &str,
            running: bool,
            labels: &[(String, String)],
        ) -> Self {
            self = self.image(image_id);
            let container = Container {
                image_id: image_id.into(),
                running,
                labels: labels.iter().cloned().collect::<HashMap<_, _>>(),
            };
            (self.0.containers).insert(registry_container::NAME.into(), container);
            self
        }
        pub fn dir_state(mut self, path: &str, exists: bool) -> Self {
            self.0.dirs.insert(path.into(), exists);
            self
        }
        /// The inventory's (`inventory`'s) registry image.
        pub fn image(mut self, image_id: &str) -> Self {
            (self.0.images).insert("registry:2".into(), image_id.into());
            self
        }
    }

    /// Material with fixed, fake PEM text (modules compare it, never parse it).
    pub fn material() -> Material {
        Material {
            tls: Some(Tls {
                ca_pem: "CA\n".into(),
                chain_pem: "LEAF\nCA\n".into(),
                key_pem: "KEY\n".into(),
                extra_cas: Vec::new(),
            }),
            prepared: [("registry_files", registry_data())].into(),
            notes: Vec::new(),
        }
    }

    /// What registry_files prepares, without users.
    fn registry_data() -> crate::engine::module::Prepared {
        std::sync::Arc::new(super::registry_config::RegistryData {
            users: Vec::new(),
            config: "version: 0.1\n".into(),
        })
    }

    /// The changes `module` wants on `host` (present or absent), with [`material`].
    pub fn run(
        module: &dyn Module,
        inv: &Inventory,
        host: &str,
        state: &StateBuilder,
        present: bool,
    ) -> Result<Vec<Change>> {
        run_with(module, inv, host, state, &material(), present)
    }

    /// Like [`run`] with other `material` (a CA rotation's extra CAs, say).
    pub fn run_with(
        module: &dyn Module,
        inv: &Inventory,
        host: &str,
        state: &StateBuilder,
        material: &Material,
        present: bool,
    ) -> Result<Vec<Change>> {
        run_in(
            module,
            inv,
            host,
            state,
            material,
            present,
            &Playbook::empty(),
        )
    }

    /// Like [`run_with`], the module a step of `playbook` (the footprints recorded are those
    /// of its steps). The module sees only what it asked the probe for: reading anything
    /// else panics.
    pub fn run_in(
        module: &dyn Module,
        inv: &Inventory,
        host: &str,
        state: &StateBuilder,
        material: &Material,
        present: bool,
        playbook: &Playbook,
    ) -> Result<Vec<Change>> {
        let templates = Templates::embedded();
        let memo = Memo::default();
        let host = inv
            .hosts
            .iter()
            .find(|h| h.name == host)
            .expect("host in the inventory");
        let to = if present {
            State::Present
        } else {
            State::Absent
        };
        let state = footprint::scoped(&state.0, module, inv, host, to);
        let modules = playbook.modules_on(host);
        let cx = Ctx {
            inv,
            host,
            material,
            state: &state,
            templates: &templates,
            memo: &memo,
            modules: &modules,
        };
        if present {
            module.present(&cx)
        } else {
            module.absent(&cx)
        }
    }

    /// What `changes` write to `path`, if they do.
    pub fn written(changes: &[Change], path: &str) -> Option<String> {
        changes.iter().find_map(|c| match &c.action {
            crate::engine::change::Action::PutFile { path: p, data, .. } if p == path => {
                Some(String::from_utf8_lossy(data).into_owned())
            }
            _ => None,
        })
    }

    pub fn summaries(changes: &[Change]) -> Vec<String> {
        changes.iter().map(|c| c.summary.clone()).collect()
    }
}
