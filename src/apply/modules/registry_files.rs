//! The registry's files on a registry host: config.yml (holds the http secret: 0600), the
//! certificate chain and key, and htpasswd (bcrypt cost 10, an existing hash kept while it
//! still matches the password, removed users dropped).

use anyhow::Result;

use super::{Ctx, Want, file_change};
use crate::apply::change::Change;
use crate::apply::material::Material;
use crate::apply::probe::HostState;
use crate::merge::htpasswd;

pub const BASE: &str = "/etc/regboot/registry";
pub const CONFIG: &str = "/etc/regboot/registry/config.yml";
pub const CHAIN: &str = "/etc/regboot/registry/certs/registry-chain.crt";
pub const KEY: &str = "/etc/regboot/registry/certs/registry.key";
pub const HTPASSWD: &str = "/etc/regboot/registry/auth/htpasswd";

/// A file regboot owns on the host, as it should be.
pub struct ManagedFile {
    pub path: &'static str,
    pub data: Vec<u8>,
    pub mode: u32,
    pub secret: bool,
}

pub fn want(w: &mut Want) {
    w.req.hash.extend([CONFIG, CHAIN, KEY].map(String::from));
    w.req.content.push(HTPASSWD.into());
}

/// The files this host should have (computed once per host: bcrypt is slow on purpose).
pub fn desired(material: &Material, state: &HostState) -> Result<Vec<ManagedFile>> {
    let mut files = vec![ManagedFile {
        path: CONFIG,
        data: material.registry_config.clone().into_bytes(),
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
    if !material.users.is_empty() {
        let current = state.text(HTPASSWD);
        files.push(ManagedFile {
            path: HTPASSWD,
            data: htpasswd::render(current.as_deref(), &material.users)?.into_bytes(),
            mode: 0o600,
            secret: true,
        });
    }
    Ok(files)
}

pub fn check(ctx: &Ctx) -> Vec<Change> {
    ctx.registry_files
        .iter()
        .filter_map(|f| file_change(ctx.state, f.path, &f.data, f.mode, f.secret))
        .collect()
}
