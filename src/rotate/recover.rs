//! `apply --replace-ca`: the way out when the state directory was lost (or holds another CA)
//! while the hosts trust a regboot CA whose key is gone. What can be read back from the hosts
//! is read back: the CA's certificate (every host has it), the registry's certificate and key
//! and the http secret (from a registry host). Then a new CA is rolled in exactly like
//! `rotate --ca`, so no pull fails: hosts trust both, the registry switches, the old CA leaves.

use anyhow::{Context, Result, bail};

use crate::deployed;
use crate::engine::fleet::Node;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Inventory, Role};
use crate::modules::registry_files::{CHAIN, CONFIG, KEY};
use crate::pki::state::{
    CA_CERT, CA_KEY, HTTP_SECRET, REGISTRY_CERT, REGISTRY_CHAIN, REGISTRY_KEY,
};
use crate::pki::{StateDir, inspect};

/// What the probe reads for a recovery: every CA file, and the registry's own files.
pub(super) fn request(inv: &Inventory, registry: bool) -> ProbeRequest {
    let mut req = deployed::request(inv);
    if registry {
        req.content.extend([CHAIN, KEY, CONFIG].map(String::from));
    }
    req
}

/// Put into `state` the CA the hosts trust (certificate only), the registry certificate and
/// key a registry host serves, and the http secret; the old CA files are archived first.
pub(super) fn recover(inv: &Inventory, state: &StateDir, nodes: &[Node<'_>]) -> Result<String> {
    if let Some(n) = nodes.iter().find(|n| !n.alive()) {
        bail!(
            "{}: {} — replacing the CA needs every host of the inventory",
            n.host.name,
            n.error.as_deref().unwrap_or("not reachable")
        );
    }
    let mut trusted: Vec<(String, String, Vec<String>)> = Vec::new();
    for n in nodes {
        let st = n.state.as_ref().expect("alive nodes were probed");
        let current = deployed::ca_files(inv, n.host, &st.facts)
            .into_iter()
            .filter(|f| f.role.is_none());
        for file in current {
            let Some(pem) = st.text(&file.path) else {
                continue;
            };
            let Ok(info) = inspect::cert_info(&pem) else {
                continue;
            };
            match trusted.iter_mut().find(|t| t.0 == info.fingerprint_sha256) {
                Some(t) if !t.2.contains(&n.host.name) => t.2.push(n.host.name.clone()),
                Some(_) => {}
                None => trusted.push((info.fingerprint_sha256, pem, vec![n.host.name.clone()])),
            }
        }
    }
    let (ca_fp, ca_pem) = match trusted.as_slice() {
        [] => {
            bail!("no host trusts a regboot CA: there is nothing to replace; run `regboot apply`")
        }
        [(fp, pem, _)] => (fp.clone(), pem.clone()),
        several => {
            let lines: Vec<String> = several
                .iter()
                .map(|(fp, _, hosts)| format!("  {}: {fp}", hosts.join(", ")))
                .collect();
            bail!(
                "hosts trust different regboot CAs, so there is no one CA to roll from:\n{}\n\
                 Make them agree first (restore the state directory that made them, or \
                 `regboot certs import` it)",
                lines.join("\n")
            )
        }
    };
    if let Some(ours) = state.read(CA_CERT)? {
        if inspect::cert_info(&ours).is_ok_and(|i| i.fingerprint_sha256 == ca_fp) {
            bail!(
                "the state directory holds the CA the hosts trust already: run `regboot apply` (no --replace-ca)"
            );
        }
        state.archive(CA_CERT)?;
        state.archive(CA_KEY)?;
        state.remove(CA_KEY)?;
    }
    // The certificate the replicas serve now, with its key: served until stage 2 replaces it.
    let from = nodes
        .iter()
        .filter(|n| n.host.has_role(Role::Registry))
        .find_map(|n| {
            let st = n.state.as_ref()?;
            let (chain, key) = (st.text(CHAIN)?, st.text(KEY)?);
            inspect::verify_signed_by(&chain, &ca_pem)
                .ok()
                .filter(|signed| *signed)?;
            Some((n.host.name.clone(), chain, key, st.text(CONFIG)))
        })
        .with_context(|| {
            format!("no registry host holds a certificate from the CA the hosts trust in {CHAIN}, with its key")
        })?;
    let (host, chain, key, config) = from;
    // The chain regboot wrote is the leaf's PEM block, then the CA's.
    const END: &str = "-----END CERTIFICATE-----";
    let leaf = chain
        .find(END)
        .map(|i| format!("{}\n", &chain[..i + END.len()]))
        .context("the registry chain holds no certificate")?;
    for name in [REGISTRY_CERT, REGISTRY_CHAIN, REGISTRY_KEY, HTTP_SECRET] {
        state.archive(name)?;
    }
    state.write_public(CA_CERT, &ca_pem)?;
    state.write_public(REGISTRY_CERT, &leaf)?;
    state.write_public(REGISTRY_CHAIN, &chain)?;
    state.write_secret(REGISTRY_KEY, &key)?;
    // Keeping the http secret keeps uploads in flight valid across the replicas.
    let secret = config.as_deref().and_then(http_secret);
    if let Some(secret) = &secret {
        state.write_secret(HTTP_SECRET, secret)?;
    }
    Ok(format!(
        "read back from the hosts: the CA they trust (SHA-256 {}…, key lost), the registry \
         certificate and key from {host}{}",
        &ca_fp[..ca_fp.len().min(23)],
        if secret.is_some() {
            " and the http secret"
        } else {
            ""
        }
    ))
}

/// `http: secret:` from a rendered config.yml.
fn http_secret(config: &str) -> Option<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(config).ok()?;
    doc.get("http")?.get("secret")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_http_secret() {
        let config = "version: 0.1\nhttp:\n  addr: :5000\n  secret: \"s3cr3t\"\n";
        assert_eq!(http_secret(config).as_deref(), Some("s3cr3t"));
        assert_eq!(http_secret("version: 0.1\n"), None);
        assert_eq!(http_secret(": not yaml ["), None);
    }
}
