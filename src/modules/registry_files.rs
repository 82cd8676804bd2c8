//! The registry's files on a registry host: config.yml (holds the http secret: 0600), the
//! certificate chain and key, and htpasswd (bcrypt cost 10, 4 for the smoke user's random
//! password; an existing hash kept while it still matches the password, removed users
//! dropped).

use std::sync::Arc;

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use super::registry_config;
use super::{Ctx, Module, file_change};
use crate::engine::change::Change;
use crate::engine::module::{PrepareCx, Prepared};
use crate::engine::probe::{HostState, ProbeRequest};
use crate::inventory::{Host, Inventory};
use crate::material::Material;
use crate::merge::htpasswd;

pub(crate) const BASE: &str = "/etc/regboot/registry";
pub(crate) const CONFIG: &str = "/etc/regboot/registry/config.yml";
pub(crate) const CHAIN: &str = "/etc/regboot/registry/certs/registry-chain.crt";
pub(crate) const KEY: &str = "/etc/regboot/registry/certs/registry.key";
pub(crate) const HTPASSWD: &str = "/etc/regboot/registry/auth/htpasswd";

/// The registry container, which mounts these files (`registry_container`).
pub(crate) const CONTAINER: &str = "regboot-registry";

/// The collector `regboot gc` runs while the replicas are read-only (`crate::gc`).
pub(crate) const COLLECTOR: &str = "regboot-gc";

/// Refuses a change to the registry's config or container while gc's collector is on the
/// host (a gc cut off leaves it sweeping): lifting read-only then would let a push upload a
/// blob that the sweep deletes under its manifest.
pub(crate) fn refuse_while_collecting(cx: &Ctx) -> Result<()> {
    if let Some(c) = cx.state.container(COLLECTOR) {
        let how = if c.running {
            "still runs"
        } else {
            "is still there"
        };
        bail!(
            "container {COLLECTOR} (the collector of `regboot gc`) {how} on this host: the \
             registry stays read-only while it may sweep, or a push could lose blobs. Wait until \
             it ends (`docker wait {COLLECTOR}`) or remove it (`docker rm -f {COLLECTOR}`), then \
             run again"
        );
    }
    Ok(())
}

/// A short digest of `parts` (each ended by a NUL): what a registry container's labels hold.
pub(crate) fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// A file regboot owns on the host, as it should be.
pub(crate) struct ManagedFile {
    pub path: &'static str,
    pub data: Vec<u8>,
    pub mode: u32,
    pub secret: bool,
}

/// The files `cx`'s host should have, computed once per host (bcrypt is slow on purpose) and
/// shared with the registry container, whose labels hash them.
pub(crate) fn desired(cx: &Ctx) -> Result<Arc<Vec<ManagedFile>>> {
    let made = cx.memo.get_or("registry_files", || {
        compute(cx.material, cx.state)
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"))
    });
    made.as_ref().clone().map_err(anyhow::Error::msg)
}

fn compute(material: &Material, state: &HostState) -> Result<Vec<ManagedFile>> {
    let data = registry_config::of(material)?;
    let mut files = vec![ManagedFile {
        path: CONFIG,
        data: data.config.clone().into_bytes(),
        mode: 0o600,
        secret: true,
    }];
    if let Some(tls) = &material.tls {
        files.push(ManagedFile {
            path: CHAIN,
            data: tls.chain_pem.clone().into_bytes(),
            mode: 0o644,
            secret: false,
        });
        files.push(ManagedFile {
            path: KEY,
            data: tls.key_pem.clone().into_bytes(),
            mode: 0o600,
            secret: true,
        });
    }
    if !data.users.is_empty() {
        let current = state.text(HTPASSWD);
        files.push(ManagedFile {
            path: HTPASSWD,
            data: htpasswd::render(current.as_deref(), &data.users)?.into_bytes(),
            mode: 0o600,
            secret: true,
        });
    }
    Ok(files)
}

/// What [`desired`] reads: the host's htpasswd (hashes kept while they still match).
pub(crate) fn want_desired(req: &mut ProbeRequest) {
    req.content.push(HTPASSWD.into());
}

pub(crate) struct RegistryFiles;

impl Module for RegistryFiles {
    fn name(&self) -> &'static str {
        "registry_files"
    }

    /// The users and config.yml, once for the run (`registry_config`).
    fn prepare(&self, cx: &PrepareCx) -> Result<Option<Prepared>> {
        Ok(Some(Arc::new(registry_config::prepare(cx)?)))
    }

    fn want(&self, inv: &Inventory, host: &Host, req: &mut ProbeRequest) {
        req.hash.extend([CONFIG, KEY].map(String::from));
        // The containers, for refuse_while_collecting's look for gc's collector.
        super::want_registry(inv, host, req);
        // The chain is read back so that plan can say what changes in the certificate.
        req.content.push(CHAIN.into());
        want_desired(req);
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let changes: Vec<Change> = desired(cx)?
            .iter()
            .filter_map(|f| file_change(cx.state, f.path, &f.data, f.mode, f.secret))
            .collect();
        if changes.iter().any(|c| c.summary.ends_with(CONFIG)) {
            refuse_while_collecting(cx)?;
        }
        Ok(changes)
    }
}
