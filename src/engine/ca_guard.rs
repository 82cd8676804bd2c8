//! No silent CA swap: before anything is created or changed, the CA files the hosts hold are
//! compared with the state directory's CAs. A lost (or another) state directory would
//! otherwise mint a new CA and overwrite every host's trust, breaking pulls until every
//! registry is recreated and breaking every client outside the inventory.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::Playbook;
use super::fleet::Node;
use crate::inventory::Inventory;
use crate::pki::state::CA_CERT;
use crate::pki::{StateDir, inspect, rotation};

/// A CA some hosts trust: its fingerprint, how it reads, and the hosts.
struct Trusted {
    label: String,
    hosts: Vec<String>,
}

/// Stop when the hosts trust a regboot CA that the state directory does not hold.
pub(crate) fn check(
    inv: &Inventory,
    playbook: &Playbook,
    state: &StateDir,
    nodes: &[Node<'_>],
) -> Result<()> {
    let mut known = Vec::new();
    let current = state.read(CA_CERT)?;
    let pems = current
        .iter()
        .cloned()
        .chain(rotation::extra_cas(state)?.into_iter().map(|(_, pem)| pem));
    for pem in pems {
        known.extend(inspect::cert_info(&pem).ok().map(|i| i.fingerprint_sha256));
    }
    let mut foreign: BTreeMap<String, Trusted> = BTreeMap::new();
    for n in nodes {
        let Some(st) = n.state.as_ref().filter(|_| n.error.is_none()) else {
            continue;
        };
        let files = playbook.ca_files(inv, n.host, Some(&st.facts));
        for file in files {
            let Some(info) = st
                .text(&file.path)
                .and_then(|pem| inspect::cert_info(&pem).ok())
            else {
                continue;
            };
            if known.contains(&info.fingerprint_sha256) {
                continue;
            }
            let entry = foreign
                .entry(info.fingerprint_sha256.clone())
                .or_insert_with(|| Trusted {
                    label: format!(
                        "CA {:?} (SHA-256 {}…, until {})",
                        info.subject,
                        &info.fingerprint_sha256[..info.fingerprint_sha256.len().min(23)],
                        crate::pki::inspect::date(info.not_after)
                    ),
                    hosts: Vec::new(),
                });
            if !entry.hosts.contains(&n.host.name) {
                entry.hosts.push(n.host.name.clone());
            }
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    let ours = match &current {
        None => "holds no CA".to_string(),
        Some(pem) => match inspect::cert_info(pem) {
            Ok(i) => format!("holds another CA, {:?}", i.subject),
            Err(_) => "holds an unreadable ca.crt".into(),
        },
    };
    let lines: Vec<String> = foreign
        .values()
        .map(|t| format!("  {}: {}", t.hosts.join(", "), t.label))
        .collect();
    bail!(
        "the state directory {} {ours}, but hosts trust a regboot CA it does not hold:\n{}\n\
         Nothing was changed: going on would replace that CA on every host, failing pulls until \
         every registry is recreated and breaking clients outside the inventory. Two ways out:\n  \
         1. restore the state directory from its backup, or adopt that CA with \
         `regboot certs import --ca-cert CA.crt --ca-key CA.key`;\n  \
         2. `regboot apply --replace-ca`: roll in a new CA the zero-downtime way of \
         `rotate --ca` (hosts trust both, the registry switches, the old CA leaves).",
        state.root().display(),
        lines.join("\n")
    )
}
