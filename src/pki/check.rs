//! `certs check`: one row per certificate (like `kubeadm certs check-expiration`), a table for
//! people, JSON for scripts, and the exit code rule: 0 all valid beyond renew_before, 1 one
//! expires within it, 2 one is expired or invalid.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::constraints::Constraints;
use super::inspect::{self, CertInfo, rfc3339_opt};
use super::leaf::sans_diff;
use super::spec::LeafSpec;
use super::state::{CA_CERT, CA_KEY, REGISTRY_CERT, REGISTRY_KEY, StateDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Valid,
    ExpiresSoon,
    Expired,
    Invalid,
}

impl CheckStatus {
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Valid => 0,
            Self::ExpiresSoon => 1,
            Self::Expired | Self::Invalid => 2,
        }
    }
}

/// One certificate's line in `certs check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub name: String,
    pub path: String,
    pub subject: String,
    pub sans: Vec<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub not_after: Option<OffsetDateTime>,
    /// Seconds until not_after (negative when expired).
    pub residual_seconds: Option<i64>,
    pub issuer: String,
    /// When regboot renews it: not_after - renew_before_days (for a CA, its own window).
    #[serde(serialize_with = "rfc3339_opt")]
    pub renew_after: Option<OffsetDateTime>,
    pub status: CheckStatus,
    /// Why the status is not `valid`, as a sentence with the fix.
    pub problem: Option<String>,
    /// A CA's name constraints (what it may sign for); `None` for a leaf or an unconstrained CA.
    pub name_constraints: Option<Constraints>,
    /// What is worth knowing without changing the status (e.g. a CA's constraints).
    pub notes: Vec<String>,
    /// What is wrong without failing the certificates of today, each with its fix (a CA made
    /// by an older regboot, or imported, that vouches for more than server names).
    pub warnings: Vec<String>,
    /// The certificate read (for the metrics: serial, not_before, names); `None` when none
    /// could be read.
    #[serde(skip)]
    pub info: Option<CertInfo>,
}

impl CheckRow {
    /// A row for something that could not be read at all: invalid, with the reason.
    pub fn unreadable(name: &str, path: &str, problem: Option<String>) -> CheckRow {
        CheckRow {
            name: name.to_string(),
            path: path.to_string(),
            subject: String::new(),
            sans: Vec::new(),
            not_after: None,
            residual_seconds: None,
            issuer: String::new(),
            renew_after: None,
            status: CheckStatus::Invalid,
            problem,
            name_constraints: None,
            notes: Vec::new(),
            warnings: Vec::new(),
            info: None,
        }
    }
}

/// Build the row for the certificate read from `path` (`pem` is its text, `None` when the file
/// is missing). `verify` returns a problem that makes it invalid (wrong signer, missing SANs);
/// it is not asked about an expired certificate.
pub fn row(
    name: &str,
    path: &Path,
    pem: Option<&str>,
    renew_before: Duration,
    now: OffsetDateTime,
    verify: impl FnOnce(&CertInfo) -> Option<String>,
) -> CheckRow {
    let mut row = CheckRow::unreadable(name, &path.display().to_string(), None);
    let Some(pem) = pem else {
        row.problem = Some(format!(
            "{} does not exist: run `regboot certs init`",
            path.display()
        ));
        return row;
    };
    let info = match inspect::cert_info(pem) {
        Ok(info) => info,
        Err(e) => {
            row.problem = Some(format!("{}: {e}", path.display()));
            return row;
        }
    };
    let residual = info.not_after - now;
    row.subject = info.subject.clone();
    row.sans = info.sans();
    row.not_after = Some(info.not_after);
    row.residual_seconds = Some(residual.whole_seconds());
    row.issuer = info.issuer.clone();
    row.renew_after = Some(info.not_after - renew_before);
    if info.is_ca {
        row.name_constraints = info.name_constraints.clone();
    }
    // Expired first: it says the most about what to do, whatever else is wrong.
    (row.status, row.problem) = if residual <= Duration::ZERO {
        (
            CheckStatus::Expired,
            Some(format!("expired on {}", inspect::date(info.not_after))),
        )
    } else if let Some(problem) = verify(&info) {
        (CheckStatus::Invalid, Some(problem))
    } else if info.not_before > now {
        (
            CheckStatus::Invalid,
            Some(format!(
                "not valid before {} (is this machine's clock right?)",
                inspect::date(info.not_before)
            )),
        )
    } else if residual <= renew_before {
        (
            CheckStatus::ExpiresSoon,
            Some(format!(
                "expires within renew_before_days ({} days)",
                renew_before.whole_days()
            )),
        )
    } else {
        (CheckStatus::Valid, None)
    };
    row.info = Some(info);
    row
}

/// The rows for the certificates in the state directory: the CA (must be a CA) and the
/// registry certificate (must be signed by that CA and, when `spec` is given, carry exactly
/// its SANs).
pub fn local_rows(
    state: &StateDir,
    spec: Option<&LeafSpec>,
    renew_before: Duration,
    now: OffsetDateTime,
) -> Result<Vec<CheckRow>> {
    let ca_pem = state.read(CA_CERT)?;
    let mut ca_row = row(
        "ca",
        &state.path(CA_CERT),
        ca_pem.as_deref(),
        renew_before,
        now,
        |info| {
            if !info.is_ca {
                return Some("not a CA certificate (basicConstraints CA:true missing)".into());
            }
            let outside = outside_constraints(info, spec?);
            (!outside.is_empty()).then(|| {
                format!(
                    "names of the inventory outside its name constraints: {}; the registry \
                     certificate needs a new CA: run `regboot rotate --ca`",
                    outside.join(", ")
                )
            })
        },
    );
    let ca_info = ca_pem
        .as_deref()
        .and_then(|pem| inspect::cert_info(pem).ok());
    if let Some(info) = ca_info.as_ref().filter(|i| i.is_ca) {
        if let Some(c) = &info.name_constraints {
            ca_row
                .notes
                .push(format!("may sign only for {}", c.summary()));
        }
        ca_row.warnings = ca_pem.as_deref().map(ca_warnings).unwrap_or_default();
    }
    let leaf_pem = state.read(REGISTRY_CERT)?;
    let mut leaf_row = row(
        "registry",
        &state.path(REGISTRY_CERT),
        leaf_pem.as_deref(),
        renew_before,
        now,
        |info| {
            let (Some(ca), Some(leaf)) = (&ca_pem, &leaf_pem) else {
                return Some("there is no CA to verify it against".into());
            };
            match inspect::verify_signed_by(leaf, ca) {
                Ok(true) => {}
                Ok(false) => {
                    return Some(
                        "not signed by the CA in ca.crt: run `regboot certs init` to reissue it"
                            .into(),
                    );
                }
                Err(e) => return Some(format!("{e:#}")),
            }
            let spec = spec?;
            let diff = sans_diff(info, spec)?;
            let outside = ca_info
                .as_ref()
                .map(|ca| outside_constraints(ca, spec))
                .unwrap_or_default();
            Some(if outside.is_empty() {
                format!(
                    "{diff} compared with the inventory: run `regboot certs init` to reissue it"
                )
            } else {
                format!(
                    "{diff} compared with the inventory; outside the CA's name constraints: \
                     {}, so it needs a new CA: run `regboot rotate --ca`",
                    outside.join(", ")
                )
            })
        },
    );
    // A key that others may read is refused by every run: say so here too.
    for (r, key) in [(&mut ca_row, CA_KEY), (&mut leaf_row, REGISTRY_KEY)] {
        if let Err(e) = state.read(key) {
            let problem = format!("{e:#}");
            r.problem = Some(match r.problem.take() {
                Some(p) => format!("{p}; {problem}"),
                None => problem,
            });
            r.status = r.status.max(CheckStatus::Invalid);
        }
    }
    Ok(vec![ca_row, leaf_row])
}

/// How a CA vouches for more than the registry's server certificates, each with the fix: no
/// name constraints, e-mail and URI names left open, or an extended key usage other than
/// serverAuth alone (regboot's CAs before issue 26 item 14, or an imported CA).
fn ca_warnings(pem: &str) -> Vec<String> {
    let Ok(blocks) = inspect::pem_certs(pem) else {
        return Vec::new();
    };
    let Ok(cert) = inspect::parse(&blocks[0]) else {
        return Vec::new();
    };
    const FIX: &str = "`regboot rotate --ca` replaces it with one that vouches only for the \
                       registry's server names";
    let mut out = Vec::new();
    let server_only = matches!(cert.extended_key_usage(), Ok(Some(e))
        if e.value.server_auth && !e.value.any && !e.value.client_auth && !e.value.code_signing
            && !e.value.email_protection && !e.value.time_stamping && !e.value.ocsp_signing
            && e.value.other.is_empty());
    if !server_only {
        out.push(format!(
            "its extended key usage is not serverAuth alone: a leaked ca.key could mint client \
             certificates that mTLS services trusting the hosts' OS trust store accept; {FIX}"
        ));
    }
    match cert.name_constraints() {
        Ok(Some(nc)) => {
            let permitted = nc.value.permitted_subtrees.iter().flatten();
            let (mut email, mut uri) = (false, false);
            for subtree in permitted {
                email |= matches!(subtree.base, GeneralName::RFC822Name(_));
                uri |= matches!(subtree.base, GeneralName::URI(_));
            }
            if !(email && uri) {
                out.push(format!(
                    "its name constraints leave e-mail and URI names open: it may sign a \
                     certificate for any mailbox or URI; {FIX}"
                ));
            }
        }
        _ => out.push(format!(
            "unconstrained: this CA may sign a certificate for any name, which every host's OS \
             trust store would accept; {FIX}"
        )),
    }
    out
}

/// The names of `spec` outside the CA's name constraints (none when it is unconstrained).
fn outside_constraints(ca: &CertInfo, spec: &LeafSpec) -> Vec<String> {
    ca.name_constraints
        .as_ref()
        .map(|c| c.outside(spec))
        .unwrap_or_default()
}

/// The exit code for a set of rows: the worst row decides.
pub fn exit_code(rows: &[CheckRow]) -> u8 {
    rows.iter().map(|r| r.status.exit_code()).max().unwrap_or(0)
}

/// Time left, as kubeadm shows it: `9y`, `364d`, `5h`, `12m`, or `expired`.
pub fn residual(d: Duration) -> String {
    if d <= Duration::ZERO {
        "expired".to_string()
    } else if d.whole_days() >= 365 {
        format!("{}y", d.whole_days() / 365)
    } else if d.whole_days() >= 1 {
        format!("{}d", d.whole_days())
    } else if d.whole_hours() >= 1 {
        format!("{}h", d.whole_hours())
    } else {
        format!("{}m", d.whole_minutes().max(1))
    }
}

/// The rows as an aligned text table, problems listed below it.
pub fn table(rows: &[CheckRow]) -> String {
    let header = [
        "CERTIFICATE",
        "SUBJECT",
        "SANS",
        "EXPIRES",
        "RESIDUAL TIME",
        "RENEWAL",
        "ISSUER",
        "STATUS",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.subject.clone(),
                if r.sans.is_empty() {
                    "-".to_string()
                } else {
                    r.sans.join(",")
                },
                r.not_after
                    .map(inspect::date)
                    .unwrap_or_else(|| "-".to_string()),
                r.residual_seconds
                    .map(|s| residual(Duration::seconds(s)))
                    .unwrap_or_else(|| "-".to_string()),
                r.renew_after
                    .map(inspect::date)
                    .unwrap_or_else(|| "-".to_string()),
                r.issuer.clone(),
                status_text(r.status).to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_line = |line: &[&str]| {
        let text: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(text.join("   ").trim_end());
        out.push('\n');
    };
    push_line(&header);
    for line in &cells {
        push_line(&line.each_ref().map(String::as_str));
    }
    let mut below = false;
    for r in rows {
        for note in &r.notes {
            out.push_str(&format!("\n{}: {note}", r.name));
            below = true;
        }
    }
    for r in rows {
        for warning in &r.warnings {
            out.push_str(&format!("\n{}: warning: {warning}", r.name));
            below = true;
        }
    }
    for r in rows {
        if let Some(problem) = &r.problem {
            out.push_str(&format!("\n{}: {problem}", r.name));
            below = true;
        }
    }
    if below {
        out.push('\n');
    }
    out
}

fn status_text(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Valid => "ok",
        CheckStatus::ExpiresSoon => "expires soon",
        CheckStatus::Expired => "EXPIRED",
        CheckStatus::Invalid => "INVALID",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ca::{Ca, CaSpec};
    use crate::pki::leaf::issue;

    fn leaf_pem(ca: &Ca, validity: Duration) -> String {
        let spec = LeafSpec {
            dns: vec!["registry01.dev.com".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            validity,
            renew_before: Duration::days(30),
            key_algorithm: Default::default(),
        };
        issue(ca, &spec).unwrap().cert_pem
    }

    #[test]
    fn status_and_exit_code_follow_the_rule() {
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let now = OffsetDateTime::now_utc();
        let p = Path::new("registry.crt");
        let rb = Duration::days(30);
        let long = leaf_pem(&ca, Duration::days(365));
        let short = leaf_pem(&ca, Duration::days(10));

        let ok = row("registry", p, Some(&long), rb, now, |_| None);
        assert_eq!(ok.status, CheckStatus::Valid);
        assert_eq!(ok.sans, vec!["registry01.dev.com", "127.0.0.1"]);
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);

        let soon = row("registry", p, Some(&short), rb, now, |_| None);
        assert_eq!(soon.status, CheckStatus::ExpiresSoon);
        assert_eq!(exit_code(&[ok.clone(), soon.clone()]), 1);

        let expired = row(
            "registry",
            p,
            Some(&short),
            rb,
            now + Duration::days(11),
            |_| None,
        );
        assert_eq!(expired.status, CheckStatus::Expired);
        assert_eq!(exit_code(&[ok.clone(), soon.clone(), expired]), 2);

        let invalid = row("registry", p, Some(&long), rb, now, |_| Some("bad".into()));
        assert_eq!(invalid.status, CheckStatus::Invalid);
        assert_eq!(exit_code(&[ok.clone(), invalid]), 2);

        let missing = row("registry", p, None, rb, now, |_| None);
        assert_eq!(missing.status, CheckStatus::Invalid);
        assert!(missing.problem.unwrap().contains("certs init"));
        let garbage = row("registry", p, Some("junk"), rb, now, |_| None);
        assert_eq!(garbage.status, CheckStatus::Invalid);
    }

    #[test]
    fn table_and_json_carry_the_columns() {
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let now = OffsetDateTime::now_utc();
        let rows = vec![
            row(
                "ca",
                Path::new("ca.crt"),
                Some(ca.cert_pem()),
                Duration::days(30),
                now,
                |_| None,
            ),
            row(
                "registry",
                Path::new("registry.crt"),
                Some(&leaf_pem(&ca, Duration::days(365))),
                Duration::days(30),
                now,
                |_| None,
            ),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CERTIFICATE"));
        assert!(
            lines[1].starts_with("ca ") && lines[1].contains("9y"),
            "{text}"
        );
        assert!(
            lines[2].contains("registry01.dev.com,127.0.0.1") && lines[2].contains("364d"),
            "{text}"
        );
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[1]["status"], "valid");
        assert_eq!(json[1]["sans"][1], "127.0.0.1");
        assert!(json[0]["not_after"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn residual_units() {
        assert_eq!(residual(Duration::days(3649)), "9y");
        assert_eq!(residual(Duration::days(364) + Duration::hours(23)), "364d");
        assert_eq!(residual(Duration::hours(5)), "5h");
        assert_eq!(residual(Duration::seconds(30)), "1m");
        assert_eq!(residual(Duration::seconds(-1)), "expired");
    }
}
