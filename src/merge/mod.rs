//! Pure merges of regboot's wishes into files the user may also edit: each takes the host's
//! current text and returns the new text, never touching what regboot does not own.

pub mod containerd;
pub mod daemon_json;
pub mod hosts_block;
pub mod htpasswd;
pub mod registries_yaml;
