//! TLS (the CA, its name constraints, provided certificates) and HA (the virtual IP).

use std::net::IpAddr;
use std::path::PathBuf;

use super::super::locate::YamlPath;
use super::super::model::*;
use super::super::raw::*;
use super::syntax::is_hostname;
use super::{Checker, at};

impl Checker<'_> {
    pub(super) fn tls(&mut self, t: RawTls) -> Tls {
        let tp = at(&["tls"]);
        let mode = match t.mode.unwrap_or(TlsModeName::SelfSigned) {
            TlsModeName::SelfSigned => TlsMode::SelfSigned,
            TlsModeName::Insecure => TlsMode::Insecure,
            TlsModeName::Provided => {
                let p = t.provided.as_ref();
                let mut file = |field: &str, value: Option<&String>| match value {
                    Some(v) => {
                        self.readable_file(&tp.key("provided").key(field), v, "provided file", None)
                    }
                    None => {
                        self.error(
                            &tp.key("mode"),
                            format!("tls.mode provided needs tls.provided.{field}"),
                            Some(
                                "add `provided: { ca_cert: ..., cert: ..., key: ... }` under tls"
                                    .into(),
                            ),
                        );
                        PathBuf::new()
                    }
                };
                TlsMode::Provided {
                    ca_cert: file("ca_cert", p.and_then(|p| p.ca_cert.as_ref())),
                    cert: file("cert", p.and_then(|p| p.cert.as_ref())),
                    key: file("key", p.and_then(|p| p.key.as_ref())),
                }
            }
        };
        let tls = Tls {
            mode,
            key_algorithm: t.key_algorithm.unwrap_or_default(),
            ca_validity_days: self.days(&tp.key("ca_validity_days"), t.ca_validity_days, 3650),
            cert_validity_days: self.days(&tp.key("cert_validity_days"), t.cert_validity_days, 365),
            renew_before_days: self.days(&tp.key("renew_before_days"), t.renew_before_days, 30),
            permitted_domains: self.permitted_domains(&tp, t.permitted_domains.unwrap_or_default()),
            permitted_ip_ranges: self
                .permitted_ip_ranges(&tp, t.permitted_ip_ranges.unwrap_or_default()),
            os_trust_store: t.os_trust_store.unwrap_or(true),
            ca_renew_before_days: t
                .ca_renew_before_days
                .map(|d| self.days(&tp.key("ca_renew_before_days"), Some(d), 1)),
            ca_stage_soak: match t.ca_stage_soak.as_deref().map(crate::duration::parse) {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    let hint = Some("e.g. 24h (the default), 10m or 30s".into());
                    self.error(&tp.key("ca_stage_soak"), e, hint);
                    CA_STAGE_SOAK
                }
                None => CA_STAGE_SOAK,
            },
        };
        if tls.renew_before_days >= tls.cert_validity_days {
            self.error(
                &tp.key("renew_before_days"),
                format!(
                    "renew_before_days ({}) is not shorter than cert_validity_days ({}): every apply would reissue",
                    tls.renew_before_days, tls.cert_validity_days
                ),
                Some("make renew_before_days smaller than cert_validity_days".into()),
            );
        }
        tls
    }

    pub(super) fn permitted_domains(&mut self, tp: &YamlPath, domains: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, d) in domains.into_iter().enumerate() {
            let plain = d.trim_end_matches('.').to_ascii_lowercase();
            if plain.parse::<IpAddr>().is_ok() {
                self.error(
                    &tp.key("permitted_domains").index(i),
                    format!("{d:?} is an IP address"),
                    Some("list addresses under tls.permitted_ip_ranges".into()),
                );
            } else if !is_hostname(&plain) {
                self.error(
                    &tp.key("permitted_domains").index(i),
                    format!("{d:?} is not a domain"),
                    Some(
                        "write a plain domain such as `corp.example` (no wildcard, no leading dot): it permits the domain and every subdomain"
                            .into(),
                    ),
                );
            } else {
                out.push(plain);
            }
        }
        out
    }

    pub(super) fn permitted_ip_ranges(
        &mut self,
        tp: &YamlPath,
        ranges: Vec<String>,
    ) -> Vec<crate::pki::IpRange> {
        let mut out = Vec::new();
        for (i, r) in ranges.into_iter().enumerate() {
            match r.parse() {
                Ok(range) => out.push(range),
                Err(e) => self.error(
                    &tp.key("permitted_ip_ranges").index(i),
                    format!("{e}"),
                    Some("write ADDRESS/PREFIX, e.g. 10.20.0.0/16, or one address".into()),
                ),
            }
        }
        out
    }

    /// A CA made from tls.permitted_domains / permitted_ip_ranges could not vouch for a
    /// certificate name outside them: say so here rather than at the first apply.
    pub(super) fn permitted_names_cover_the_certificate(&mut self, inv: &Inventory) {
        let tls = &inv.tls;
        let tp = at(&["tls"]);
        let permitted = crate::pki::Constraints {
            dns: tls.permitted_domains.clone(),
            ips: tls.permitted_ip_ranges.clone(),
        };
        if !tls.permitted_domains.is_empty() {
            let outside: Vec<String> = inv
                .cert_dns_sans()
                .into_iter()
                .filter(|d| d != "localhost" && !permitted.permits_dns(d))
                .collect();
            if !outside.is_empty() {
                self.error(
                    &tp.key("permitted_domains"),
                    format!(
                        "the registry certificate's names {} are outside tls.permitted_domains",
                        outside.join(", ")
                    ),
                    Some("add their domains to permitted_domains, or change the names".into()),
                );
            }
        }
        if !tls.permitted_ip_ranges.is_empty() {
            let outside: Vec<String> = inv
                .cert_ip_sans()
                .into_iter()
                .filter(|ip| !ip.is_loopback() && !permitted.permits_ip(*ip))
                .map(|ip| ip.to_string())
                .collect();
            if !outside.is_empty() {
                self.error(
                    &tp.key("permitted_ip_ranges"),
                    format!(
                        "the registry certificate's addresses {} are outside tls.permitted_ip_ranges",
                        outside.join(", ")
                    ),
                    Some("widen permitted_ip_ranges, or change the addresses".into()),
                );
            }
        }
    }

    pub(super) fn ha(&mut self, h: &RawHa) -> Ha {
        let hp = at(&["ha"]);
        let vip = h.vip.parse().unwrap_or_else(|_| {
            self.error(
                &hp.key("vip"),
                format!("vip {:?} is not an IP address", h.vip),
                None,
            );
            IpAddr::from([0, 0, 0, 0])
        });
        let vrid = h.virtual_router_id.unwrap_or(51);
        let virtual_router_id = u8::try_from(vrid)
            .ok()
            .filter(|v| *v > 0)
            .unwrap_or_else(|| {
                self.error(
                    &hp.key("virtual_router_id"),
                    format!("virtual_router_id {vrid} is out of range"),
                    Some("use 1 to 255, unique on the network segment".into()),
                );
                51
            });
        Ha {
            vip,
            interface: h.interface.clone().unwrap_or_else(|| "eth0".into()),
            virtual_router_id,
        }
    }
}
