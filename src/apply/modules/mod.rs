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
use super::material::Material;
use super::probe::{HostState, ProbeRequest};
use crate::diff;
use crate::host::Mode;
use crate::inventory::{Host, Inventory};

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
