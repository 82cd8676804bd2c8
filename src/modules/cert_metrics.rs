//! `metrics.textfile_dir`: each host's own certificate metrics for its node_exporter's
//! textfile collector, in `certs check -o prometheus`'s names: every CA copy the modules place
//! on the host (certs.d, hosts.toml's CA, the trust store) and, on a registry host, the
//! certificate it serves. Written from what this run makes the host hold (the material), so
//! a second apply writes nothing, and it carries no check time.

use anyhow::Result;

use super::{Ctx, Module, REGISTRY, file_change};
use crate::engine::change::Change;
use crate::engine::probe::ProbeRequest;
use crate::inventory::{Host, Inventory, Role};
use crate::material::Tls;
use crate::metrics::{Cert, Metrics};
use crate::pki::inspect::cert_info;

/// The file's name in the textfile directory (node_exporter reads `*.prom`).
pub(crate) const FILE: &str = "regboot-certs.prom";

pub(crate) struct CertMetrics;

fn path(inv: &Inventory) -> Option<String> {
    let dir = inv.metrics_textfile_dir.as_ref()?;
    Some(dir.join(FILE).to_string_lossy().into_owned())
}

impl Module for CertMetrics {
    fn name(&self) -> &'static str {
        "cert_metrics"
    }

    fn want(&self, inv: &Inventory, _host: &Host, req: &mut ProbeRequest) {
        req.content.extend(path(inv));
    }

    fn present(&self, cx: &Ctx) -> Result<Vec<Change>> {
        let (Some(path), Some(tls)) = (path(cx.inv), &cx.material.tls) else {
            return Ok(Vec::new());
        };
        let text = host_metrics(cx, tls)?.render(None);
        Ok(file_change(cx.state, &path, text.as_bytes(), 0o644, false)
            .into_iter()
            .collect())
    }

    fn absent(&self, cx: &Ctx) -> Result<Vec<Change>> {
        Ok(path(cx.inv)
            .filter(|p| cx.state.files.get(p).is_some_and(Option::is_some))
            .map(|p| Change::remove_file(&p))
            .into_iter()
            .collect())
    }
}

/// What the host trusts (each CA copy the modules place here) and serves.
fn host_metrics(cx: &Ctx, tls: &Tls) -> Result<Metrics> {
    let now = time::OffsetDateTime::now_utc();
    let host = &cx.host.name;
    let current = cert_info(&tls.ca_pem)?;
    let mut certs: Vec<Cert> = Vec::new();
    let copies = REGISTRY
        .iter()
        .flat_map(|m| m.ca_files(cx.inv, Some(&cx.state.facts)));
    for file in copies {
        let info = match file.role {
            None => current.clone(),
            Some(role) => match tls.extra_cas.iter().find(|(r, _)| *r == role) {
                Some((_, pem)) => cert_info(pem)?,
                None => continue,
            },
        };
        if certs.iter().any(|c| c.path == file.path) {
            continue;
        }
        certs.push(Cert {
            kind: "ca_copy",
            host: host.clone(),
            path: file.path,
            valid: info.not_after > now,
            info: Some(info),
            renew_after: None,
        });
    }
    if cx.host.has_role(Role::Registry) {
        let leaf = cert_info(&tls.chain_pem)?;
        let renew_before = crate::tls_setup::renew_before(&cx.inv.tls);
        certs.push(Cert {
            kind: "served",
            host: host.clone(),
            path: "127.0.0.1".into(),
            valid: leaf.not_after > now,
            renew_after: Some((leaf.not_after - renew_before).unix_timestamp()),
            info: Some(leaf),
        });
    }
    Ok(Metrics {
        certs,
        success: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testing::{self, StateBuilder};

    /// Material with a real CA and registry certificate (the file carries their dates).
    fn material(inv: &Inventory) -> crate::material::Material {
        let ca = crate::pki::Ca::generate(&crate::pki::CaSpec::default()).unwrap();
        let leaf = crate::pki::leaf::issue(&ca, &crate::tls_setup::leaf_spec(inv)).unwrap();
        let mut m = testing::material();
        m.tls = Some(Tls {
            ca_pem: ca.cert_pem().to_string(),
            chain_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            extra_cas: Vec::new(),
        });
        m
    }

    fn written(changes: &[Change]) -> String {
        match &changes[0].action {
            crate::engine::change::Action::PutFile { data, .. } => {
                String::from_utf8(data.clone()).unwrap()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_host_file_names_its_ca_copies_and_what_it_serves_then_converges() {
        let mut inv = testing::inventory("");
        let m = material(&inv);
        let none = StateBuilder::new();
        let run = |inv: &Inventory, host: &str, state: &StateBuilder, present: bool| {
            testing::run_with(&CertMetrics, inv, host, state, &m, present).unwrap()
        };
        assert!(run(&inv, "h1", &none, true).is_empty(), "off by default");
        inv.metrics_textfile_dir = Some("/var/lib/prometheus/node-exporter".into());
        let changes = run(&inv, "h1", &none, true);
        assert_eq!(changes.len(), 1, "{changes:?}");
        let text = written(&changes);
        assert!(
            text.contains(
                r#"kind="ca_copy",host="h1",path="/etc/docker/certs.d/registry.test:5000/ca.crt""#
            ),
            "{text}"
        );
        assert!(text.contains(r#"kind="served",host="h1""#), "{text}");
        assert!(
            !text.contains("regboot_cert_check"),
            "no check time: {text}"
        );
        // An agent serves nothing.
        let agent = written(&run(&inv, "h2", &none, true));
        assert!(
            !agent.contains("served") && agent.contains("host=\"h2\""),
            "{agent}"
        );

        let path = "/var/lib/prometheus/node-exporter/regboot-certs.prom";
        let placed = StateBuilder::new().file(path, &text);
        assert!(
            run(&inv, "h1", &placed, true).is_empty(),
            "a second apply writes nothing"
        );
        let removal = run(&inv, "h1", &placed, false);
        assert_eq!(removal.len(), 1, "{removal:?}");
        assert!(
            run(&inv, "h1", &none, false).is_empty(),
            "nothing to remove"
        );
    }
}
