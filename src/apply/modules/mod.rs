//! One file per module. A module reads the host's probed state and the wish (inventory and
//! material) and returns the changes that would make them equal; it never touches the host.

pub mod certs_d;
pub mod daemon_json;
pub mod hosts_block;
pub mod keepalived;
pub mod lb_packages;
pub mod nginx;
pub mod registry_container;
pub mod registry_files;
pub mod registry_image;
pub mod trust_store;

use sha2::{Digest, Sha256};

use super::change::Change;
use super::material::{Material, Tls};
use super::probe::{HostState, ProbeRequest};
use crate::diff;
use crate::host::Mode;
use crate::inventory::{Host, Inventory};
use crate::pki::rotation::CaRole;

/// What a module sees for one host.
pub struct Ctx<'a> {
    pub inv: &'a Inventory,
    pub host: &'a Host,
    pub material: &'a Material,
    pub state: &'a HostState,
    /// The registry files this host should have (registry hosts only; else empty).
    pub registry_files: &'a [registry_files::ManagedFile],
}

/// What a module needs probed, before the probe.
pub struct Want<'a> {
    pub inv: &'a Inventory,
    pub req: &'a mut ProbeRequest,
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The changes that make a host's CA files (`path(None)`: the current CA; `path(Some(role))`:
/// a rotation's extra CA) match `tls`, in an order that never leaves a CA untrusted that the
/// registry may still serve: extra CAs written first, then the current one, then the extra
/// files no longer wanted removed. (When `ca-next` becomes `ca-previous` at stage 2, the old
/// CA is in `ca-previous.crt` before `ca.crt` is overwritten with the new one.)
pub fn ca_files(
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
        if !wanted && state.files.get(&p).is_some_and(Option::is_some) {
            changes.push(Change::script(
                format!("remove {p}"),
                r#"rm -f -- "$1""#,
                &[&p],
            ));
        }
    }
    changes
}

/// Whether a managed file must be written: missing, different content, or another mode.
/// Public files get a unified diff (when their content was probed); secret ones a digest.
pub fn file_change(
    state: &HostState,
    path: &str,
    data: &[u8],
    mode: u32,
    secret: bool,
) -> Option<Change> {
    let current = state.files.get(path).and_then(Option::as_ref);
    let same_content = current.is_some_and(|f| f.sha256 == sha256_hex(data));
    if same_content && current.is_some_and(|f| f.mode == mode) {
        return None;
    }
    let diff = if secret {
        Some(format!(
            "--- {path}\n+++ {path}\n{}\n",
            if same_content {
                "(content unchanged)".to_string()
            } else {
                diff::redacted(data)
            }
        ))
    } else {
        let old = current
            .and_then(|f| f.content.as_deref())
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        Some(diff::unified(path, &old, &String::from_utf8_lossy(data)))
    };
    let mut change = Change::put_file(path, data.to_vec(), Mode::Set(mode), diff);
    if same_content {
        change.summary = format!("chmod {mode:o} {path}");
    }
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::probe::{Docker, FileState};
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
            arch: "x86_64".into(),
            systemd: true,
            files: map,
            docker: Docker::Missing,
            image_id: None,
            container: None,
            commands: Default::default(),
            services: Default::default(),
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
