//! The series of a `certs check`: its rows, and with a survey of the hosts every CA copy.

use super::{Cert, Metrics};
use crate::deployed::Survey;
use crate::pki::check::{CheckRow, CheckStatus};

fn valid(status: CheckStatus) -> bool {
    matches!(status, CheckStatus::Valid | CheckStatus::ExpiresSoon)
}

impl Metrics {
    /// The series for `certs check`'s rows, and with a survey every CA copy on every host.
    /// `known`: the fingerprints of the CAs hosts may hold (the current one, and a rotation's
    /// next or previous).
    pub fn of(rows: &[CheckRow], survey: Option<&Survey>, known: &[String]) -> Metrics {
        let mut certs = Vec::new();
        let mut success = true;
        for row in rows {
            let (kind, host, path) = match row.name.split_once('@') {
                None => (local_kind(&row.name), String::new(), row.path.clone()),
                Some(("served", name)) => match served_where(survey, name) {
                    Some(w) => w,
                    None => continue,
                },
                // `ca@host` sums up a host's copies; each copy is a series of its own below.
                Some(_) => continue,
            };
            success &= row.info.is_some() || kind == "ca" || kind == "registry";
            certs.push(Cert {
                kind,
                host,
                path,
                info: row.info.clone(),
                valid: valid(row.status),
                renew_after: row.renew_after.map(|t| t.unix_timestamp()),
            });
        }
        for h in survey.iter().flat_map(|s| &s.hosts) {
            if h.error.is_some() {
                success = false;
                continue;
            }
            let missing = h.ca_paths.iter().filter(|p| !h.ca_files.contains_key(*p));
            for path in missing {
                certs.push(Cert {
                    kind: "ca_copy",
                    host: h.host.clone(),
                    path: path.clone(),
                    info: None,
                    valid: false,
                    renew_after: None,
                });
            }
            for (path, fp) in &h.ca_files {
                let info = fp
                    .as_ref()
                    .and_then(|fp| survey.and_then(|s| s.ca_certs.get(fp)));
                let now = time::OffsetDateTime::now_utc();
                certs.push(Cert {
                    kind: "ca_copy",
                    host: h.host.clone(),
                    path: path.clone(),
                    valid: info.is_some_and(|i| {
                        known.contains(&i.fingerprint_sha256) && i.not_after > now
                    }),
                    info: info.cloned(),
                    renew_after: None,
                });
            }
        }
        Metrics {
            certs,
            success: Some(success),
        }
    }
}

fn local_kind(name: &str) -> &'static str {
    if name == "ca" { "ca" } else { "registry" }
}

/// A `served@NAME` row's kind, host and path: a registry host's own port, or a name clients
/// use as read through a client host.
fn served_where(survey: Option<&Survey>, name: &str) -> Option<(&'static str, String, String)> {
    let survey = survey?;
    if survey.hosts.iter().any(|h| h.host == name) {
        return Some(("served", name.to_string(), "127.0.0.1".to_string()));
    }
    let e = survey.endpoints.iter().find(|e| e.name == name)?;
    Some(("endpoint", e.via.clone(), e.name.clone()))
}
