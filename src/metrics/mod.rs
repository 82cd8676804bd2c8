//! `certs check` as Prometheus metrics (the text exposition format), in the style of the
//! x509 exporters: absolute timestamps with the certificate's names as labels, no sample
//! timestamps, a file written atomically for node_exporter's textfile collector.
//!
//! One series per certificate: the state directory's CA and registry certificate (`kind`
//! `ca`, `registry`; `host` empty), what each registry host serves (`served`, `host` the
//! registry host), what a client host is served on the registry's names (`endpoint`, `host`
//! the client it was read through, `path` the name), and every CA copy on every host
//! (`ca_copy`, `path` the file: certs.d, hosts.toml's CA, the trust store).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::pki::inspect::CertInfo;

mod check;

/// One certificate's series.
#[derive(Debug, Clone)]
pub struct Cert {
    pub kind: &'static str,
    pub host: String,
    pub path: String,
    pub info: Option<CertInfo>,
    /// Usable as it is: not expired, and what it should be (the state directory's leaf
    /// served, a CA the state directory knows copied).
    pub valid: bool,
    /// When regboot will renew it (the leaf: not_after - renew_before_days; the CA:
    /// not_after - ca_renew_before_days).
    pub renew_after: Option<i64>,
}

/// What one check found.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub certs: Vec<Cert>,
    /// Every host and served certificate could be read (`None`: not a check, e.g. the file
    /// apply writes on a host, which carries no check metrics).
    pub success: Option<bool>,
}

impl Metrics {
    /// The exposition text. `last_success`: the time of the last successful check (this one
    /// when it succeeded, else the one the previous file recorded).
    pub fn render(&self, last_success: Option<i64>) -> String {
        let mut out = String::new();
        let with_info = || {
            self.certs
                .iter()
                .filter_map(|c| Some((c, c.info.as_ref()?)))
        };
        family(
            &mut out,
            "regboot_cert_not_after_timestamp_seconds",
            "The certificate's notAfter, seconds since the epoch.",
            with_info().map(|(c, i)| (cert_labels(c, i), i.not_after.unix_timestamp())),
        );
        family(
            &mut out,
            "regboot_cert_not_before_timestamp_seconds",
            "The certificate's notBefore, seconds since the epoch.",
            with_info().map(|(c, i)| (cert_labels(c, i), i.not_before.unix_timestamp())),
        );
        family(
            &mut out,
            "regboot_cert_renew_after_timestamp_seconds",
            "When regboot renew replaces the certificate, seconds since the epoch.",
            self.certs
                .iter()
                .filter_map(|c| Some((place_labels(c), c.renew_after?))),
        );
        family(
            &mut out,
            "regboot_cert_valid",
            "1 when the certificate is present, unexpired and the one it should be; else 0.",
            self.certs
                .iter()
                .map(|c| (place_labels(c), i64::from(c.valid))),
        );
        family(
            &mut out,
            "regboot_cert_check_success",
            "1 when the check read every host and served certificate; else 0.",
            self.success
                .map(|ok| (String::new(), i64::from(ok)))
                .into_iter(),
        );
        family(
            &mut out,
            "regboot_cert_check_last_success_timestamp_seconds",
            "When a check last read every host and served certificate, seconds since the epoch.",
            last_success.map(|t| (String::new(), t)).into_iter(),
        );
        out
    }
}

const LAST_SUCCESS: &str = "regboot_cert_check_last_success_timestamp_seconds";

/// The last success a previous file recorded (kept when this check failed).
pub fn previous_success(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(LAST_SUCCESS)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Render and write `metrics` to `path` atomically (temp file in the same directory, fsync,
/// rename), so the textfile collector never reads half a file. Mode 0644: node_exporter
/// runs as its own user.
pub fn write_textfile(path: &Path, metrics: &Metrics) -> Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let last = if metrics.success == Some(true) {
        Some(now)
    } else {
        previous_success(path)
    };
    crate::fsutil::write_atomic(path, metrics.render(last).as_bytes(), 0o644)
}

fn place_labels(c: &Cert) -> String {
    format!(
        "kind=\"{}\",host=\"{}\",path=\"{}\"",
        c.kind,
        escape(&c.host),
        escape(&c.path)
    )
}

fn cert_labels(c: &Cert, i: &CertInfo) -> String {
    format!(
        "{},subject_cn=\"{}\",issuer_cn=\"{}\",serial_number=\"{}\"",
        place_labels(c),
        escape(common_name(&i.subject)),
        escape(common_name(&i.issuer)),
        escape(&i.serial)
    )
}

/// The CN of a distinguished name as x509-parser prints it (`CN=a, O=b`); empty without one.
fn common_name(dn: &str) -> &str {
    dn.split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .unwrap_or("")
}

/// A label value as the exposition format wants it: backslash, double quote and line feed
/// escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One metric family: HELP, TYPE (gauge), its samples; nothing when it has none.
fn family(out: &mut String, name: &str, help: &str, samples: impl Iterator<Item = (String, i64)>) {
    let mut samples = samples.peekable();
    if samples.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_common_names_found() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(common_name("O=regboot, CN=regboot CA"), "regboot CA");
        assert_eq!(common_name("O=x"), "");
    }

    #[test]
    fn a_failed_check_keeps_the_last_success_of_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("regboot.prom");
        let ok = Metrics {
            certs: Vec::new(),
            success: Some(true),
        };
        write_textfile(&path, &ok).unwrap();
        let first = previous_success(&path).expect("a success is recorded");
        let failed = Metrics {
            success: Some(false),
            ..ok
        };
        write_textfile(&path, &failed).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("regboot_cert_check_success 0\n"), "{text}");
        assert_eq!(previous_success(&path), Some(first));
    }
}
