//! nginx in front of the registry container on a registry host: it holds the registry port
//! and passes every request to the container on a loopback port, named by one small file
//! (`BACKEND`) that the blue/green roll of `registry_container` rewrites before a graceful
//! reload. So replacing the container (a new certificate, config or image) never leaves the
//! port refusing connections: nginx's old workers finish what they hold, new ones use the
//! new container, and the old container goes once the old workers are done. nginx verifies
//! the container's certificate (`CA`), so nothing else on the loopback port gets a request.
//!
//! This step installs nginx when missing and writes its config; it reloads nginx only when it
//! already runs (the roll starts it, once the port is free: an older regboot published the
//! port from the container itself).

use anyhow::Result;

use super::{Ctx, Module, file_change, nginx, registry_files};
use crate::engine::change::Change;
use crate::engine::footprint::{self, Footprint};
use crate::engine::packages::{self, Package};
use crate::engine::probe::{Container, HostState, ProbeRequest};
use crate::inventory::{Host, Inventory};
use crate::render::RegistryFront as Conf;

pub(crate) const CONF: &str = nginx::CONF;
/// `upstream registry_backend { server 127.0.0.1:PORT; }`: the container serving now.
pub(crate) const BACKEND: &str = "/etc/nginx/regboot-backend.conf";
/// The CA(s) nginx verifies the container's certificate against (both during a CA rotation).
pub(crate) const CA: &str = "/etc/nginx/regboot-registry-ca.crt";
pub(crate) const SERVICE: &str = "nginx";
const NGINX: Package = Package {
    command: "nginx",
    name: "nginx",
};
/// The two loopback ports the containers take turns on (blue, green): below 1024, so only
/// root may bind them. Without TLS nginx cannot tell the registry from another listener, so
/// no other user must be able to take a port while its container is down (a dockerd
/// restart); the roll refuses a host whose `net.ipv4.ip_unprivileged_port_start` lets them.
/// Below 512 too, out of the range where glibc's bindresvport picks ports (NFS, NIS).
pub(crate) const SLOTS: [u16; 2] = [415, 416];

const RELOAD: &str = r#"set -eu
nginx -t -q
if systemctl is-active --quiet nginx; then systemctl reload nginx; fi
"#;

const STOP: &str = r#"set -eu
systemctl disable --now --quiet nginx 2>/dev/null || true
rm -f /etc/nginx/regboot-backend.conf /etc/nginx/regboot-registry-ca.crt
"#;

/// The label naming the config set a registry container mounts.
pub(crate) const SET_LABEL: &str = "io.regboot.set";
/// The label digesting the certificate and key a registry container serves.
pub(crate) const CERT_LABEL: &str = "io.regboot.cert";

/// The backend file naming `port` and, with TLS, the directory of the certificate nginx
/// serves (as the roll's `point` writes it).
pub(crate) fn backend(port: u16, certs: Option<&str>) -> String {
    let mut text = format!(
        "# Written by regboot: the registry container nginx passes requests to now.\n\
         upstream registry_backend {{\n    server 127.0.0.1:{port};\n    keepalive 16;\n}}\n"
    );
    if let Some(dir) = certs {
        text.push_str(&format!(
            "ssl_certificate {dir}/registry-chain.crt;\nssl_certificate_key {dir}/registry.key;\n"
        ));
    }
    text
}

/// Where the certificate `container` serves sits on the host: its config set's copy, or the
/// base dir's (a container from before config sets, or one without TLS, or none yet).
fn certs_of(container: Option<&Container>) -> String {
    let no_cert = registry_files::digest(&[b"", b""]);
    let label = |c: &Container, key: &str| c.labels.get(key).cloned();
    match container.and_then(|c| Some((label(c, SET_LABEL)?, label(c, CERT_LABEL)?))) {
        Some((set, cert)) if cert != no_cert => {
            format!("{}/sets/{set}/certs", registry_files::BASE)
        }
        _ => format!("{}/certs", registry_files::BASE),
    }
}

/// The loopback port of the container serving now, as the host's backend file names it
/// (the first slot when there is none yet: the front writes that one first).
pub(crate) fn current_port(text: Option<&str>) -> u16 {
    text.and_then(|t| {
        t.lines().find_map(|l| {
            l.trim()
                .strip_prefix("server 127.0.0.1:")
                .and_then(|rest| rest.trim_end_matches(';').parse().ok())
        })
    })
    .unwrap_or(SLOTS[0])
}

/// The other slot: where the next container starts.
pub(crate) fn next_port(current: u16) -> u16 {
    if current == SLOTS[0] {
        SLOTS[1]
    } else {
        SLOTS[0]
    }
}

pub(crate) struct RegistryFront;

impl Module for RegistryFront {
    fn name(&self) -> &'static str {
        "registry_front"
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        req.content.extend([CONF, BACKEND].map(String::from));
        // The serving container's labels: the certificate a new backend file names.
        super::want_registry(inv, host, req);
        req.hash.push(CA.into());
        req.commands.push(NGINX.command.into());
        req.services.push(SERVICE.into());
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let reg = &cx.inv.registry;
        let mut changes = Vec::new();
        if cx.state.command(NGINX.command) != Some(true) {
            changes.push(packages::install(
                cx.inv,
                cx.host,
                &cx.state.facts,
                "install nginx (the registry's front)",
                &[NGINX.name],
                false,
            )?);
        }
        let conf = cx.templates.registry_front_conf(&Conf {
            server_name: reg.hostname.clone(),
            listen_port: reg.port,
            tls: cx.material.tls.is_some(),
            backend_path: BACKEND.into(),
            ca_path: CA.into(),
        })?;
        // The files the config names go first: nginx -t reads them when it tests the config.
        // The roll rewrites the backend file; this step writes it when there is none, or when
        // one from before it named the certificate lacks it.
        let text = cx.state.text(BACKEND);
        let tls = cx.material.tls.is_some();
        let names_cert = text
            .as_deref()
            .is_some_and(|t| t.contains("ssl_certificate "));
        if text.is_none() || (tls && !names_cert) {
            let certs = tls.then(|| certs_of(cx.state.container(registry_files::CONTAINER)));
            let port = current_port(text.as_deref());
            changes.extend(file_change(
                cx.state,
                BACKEND,
                backend(port, certs.as_deref()).as_bytes(),
                0o644,
                false,
            ));
        }
        let ca = cx.material.tls.as_ref().map(|t| t.trusted_bundle());
        let files: Vec<Change> = ca
            .and_then(|ca| file_change(cx.state, CA, ca.as_bytes(), 0o644, false))
            .into_iter()
            .chain(nginx::staged_conf(cx.state, conf.as_bytes()))
            .collect();
        let reload = !files.is_empty();
        changes.extend(files);
        if reload {
            changes.push(Change::script(
                "test the config (nginx -t) and reload nginx if it runs (clients keep being served)",
                RELOAD,
                &[],
            ));
        }
        Ok(changes)
    }

    /// nginx (installed when missing) and its nginx.conf, replaced wholesale (an operator's
    /// is saved first).
    fn footprint(&self, _inv: &Inventory, _host: &Host, _state: Option<&HostState>) -> Footprint {
        Footprint {
            packages: vec![NGINX],
            files: vec![CONF.into()],
            ..Footprint::default()
        }
    }

    /// Stop the front and remove its backend file, then put back the nginx.conf it replaced
    /// and remove nginx if regboot installed it (both from its record).
    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let running = cx.state.service(SERVICE) == Some("active");
        let has_backend = cx.state.file(BACKEND).is_some();
        let mut changes = Vec::new();
        if running || has_backend {
            changes.push(Change::script(
                format!("stop nginx (the registry's front) and remove {BACKEND}"),
                STOP,
                &[],
            ));
        }
        changes.extend(super::restore_config(cx, self, CONF, SERVICE)?);
        changes.extend(footprint::recorded(cx, self)?.purge(cx.state, &[NGINX]));
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder, summaries};

    #[test]
    fn ports_alternate() {
        assert_eq!(current_port(None), SLOTS[0]);
        assert_eq!(current_port(Some(&backend(SLOTS[1], Some("/d")))), SLOTS[1]);
        assert_eq!(next_port(SLOTS[0]), SLOTS[1]);
        assert_eq!(next_port(SLOTS[1]), SLOTS[0]);
    }

    #[test]
    fn installs_writes_then_only_reloads_for_a_change() {
        let inv = testing::inventory("");
        let fresh = StateBuilder::new().command("nginx", false);
        let changes = testing::run(&RegistryFront, &inv, "h1", &fresh, true).unwrap();
        assert_eq!(
            summaries(&changes),
            [
                "install nginx (the registry's front)".to_string(),
                format!("write {BACKEND}"),
                format!("write {CA}"),
                format!("write {CONF}"),
                format!("test it (nginx -t) before it replaces {CONF}"),
                "test the config (nginx -t) and reload nginx if it runs (clients keep being served)"
                    .into(),
            ]
        );
        let done = StateBuilder::new()
            .command("nginx", true)
            .file(CA, &testing::written(&changes, CA).unwrap())
            .file(CONF, &testing::written(&changes, nginx::STAGED).unwrap())
            .file(BACKEND, &backend(SLOTS[1], Some("/somewhere")));
        assert!(
            testing::run(&RegistryFront, &inv, "h1", &done, true)
                .unwrap()
                .is_empty()
        );
    }

    /// Issue 26 item 3: nginx serves the serving container's own copy of the certificate,
    /// named in the backend file, never the base dir's that an apply rewrites before its roll.
    /// A fresh host's file names the base dir (the first container copies it); a file from
    /// before this named none gets the serving container's set, its port kept.
    #[test]
    fn the_backend_file_names_the_serving_containers_certificate() {
        let inv = testing::inventory("");
        let base = format!("{}/certs", registry_files::BASE);
        let fresh = StateBuilder::new().command("nginx", true);
        let changes = testing::run(&RegistryFront, &inv, "h1", &fresh, true).unwrap();
        assert_eq!(
            testing::written(&changes, BACKEND).unwrap(),
            backend(SLOTS[0], Some(&base))
        );
        let labels = [
            (SET_LABEL.to_string(), "abc-def".to_string()),
            (CERT_LABEL.to_string(), "def".to_string()),
        ];
        let old = StateBuilder::new()
            .command("nginx", true)
            .container("sha256:1", true, &labels)
            .file(BACKEND, &backend(SLOTS[1], None));
        let changes = testing::run(&RegistryFront, &inv, "h1", &old, true).unwrap();
        let set = format!("{}/sets/abc-def/certs", registry_files::BASE);
        assert_eq!(
            testing::written(&changes, BACKEND).unwrap(),
            backend(SLOTS[1], Some(&set))
        );
        let text = backend(SLOTS[1], Some(&set));
        assert!(text.contains(&format!("ssl_certificate {set}/registry-chain.crt;\n")));
        assert!(text.contains(&format!("ssl_certificate_key {set}/registry.key;\n")));
    }

    /// Its footprint, end to end without a lab: apply's first step records that nginx was
    /// missing and saves the operator's nginx.conf; reset puts that file back and purges nginx.
    #[test]
    fn reset_undoes_its_footprint() {
        let inv = testing::inventory("");
        let apply = crate::playbooks::apply().unwrap();
        let before = StateBuilder::new()
            .command("nginx", false)
            .file(CONF, "the operator's\n");
        let changes = testing::run_in(
            &crate::modules::host_manifest::HostManifest,
            &inv,
            "h1",
            &before,
            &testing::material(),
            true,
            &apply,
        )
        .unwrap();
        let saved = footprint::saved_path(CONF);
        assert_eq!(
            summaries(&changes)[0],
            format!("keep the original {CONF} in {saved}")
        );
        let manifest = testing::written(&changes, footprint::MANIFEST).unwrap();
        let applied = StateBuilder::new()
            .command("nginx", true)
            .service(SERVICE, "active")
            .file(CONF, "regboot's\n")
            .file(BACKEND, &backend(SLOTS[0], None))
            .file(&saved, "the operator's\n")
            .file(footprint::MANIFEST, &manifest);
        let changes = testing::run(&RegistryFront, &inv, "h1", &applied, false).unwrap();
        assert_eq!(
            summaries(&changes),
            [
                format!("stop nginx (the registry's front) and remove {BACKEND}"),
                format!("put back the original {CONF} and reload nginx when it runs"),
                "remove packages nginx (regboot installed them)".into(),
            ]
        );
    }
}
