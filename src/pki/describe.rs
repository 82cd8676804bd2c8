//! A certificate file change as people read it: each certificate's subject, issuer, serial,
//! validity, SANs and fingerprint, and for a file that held certificates before, which of
//! those differ (`-` old, `+` new, as a diff marks lines). Base64 says nothing to a reader.

use super::inspect::{self, CertInfo};

/// What changes when a file holding `old` (absent: a new file) gets `new`; `None` when `new`
/// is not PEM certificates or nothing changes (the caller then shows a text diff or nothing).
pub fn cert_change(old: Option<&[u8]>, new: &[u8]) -> Option<String> {
    if old == Some(new) {
        return None;
    }
    let new = infos(new)?;
    let old = match old {
        None => Vec::new(),
        Some(bytes) => match infos(bytes) {
            Some(certs) => certs,
            None => {
                let mut out = String::from("(the file held no PEM certificate before)\n");
                out.push_str(&describe_all(&[], &new));
                return Some(out);
            }
        },
    };
    Some(describe_all(&old, &new))
}

/// Every certificate in `bytes`, or `None` when it is not a PEM certificate file.
fn infos(bytes: &[u8]) -> Option<Vec<CertInfo>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let blocks = inspect::pem_certs(text).ok()?;
    blocks
        .iter()
        .map(|b| inspect::info_of(&inspect::parse(b).ok()?, &b.contents).ok())
        .collect()
}

fn describe_all(old: &[CertInfo], new: &[CertInfo]) -> String {
    let count = old.len().max(new.len());
    let mut out = String::new();
    for i in 0..count {
        let heading = if count == 1 {
            "certificate".to_string()
        } else {
            format!("certificate {} of {count}", i + 1)
        };
        out.push_str(&describe(&heading, old.get(i), new.get(i)));
    }
    out
}

/// One certificate's fields: unchanged ones once, changed ones as `-` old and `+` new.
fn describe(heading: &str, old: Option<&CertInfo>, new: Option<&CertInfo>) -> String {
    let old_fields = old.map(fields);
    let new_fields = new.map(fields);
    let state = match (&old_fields, &new_fields) {
        (None, _) => "new".to_string(),
        (_, None) => "removed".to_string(),
        (Some(o), Some(n)) => {
            let differs: Vec<&str> = o
                .iter()
                .zip(n)
                .filter(|(a, b)| a.1 != b.1)
                .map(|(a, _)| a.0)
                .collect();
            if differs.is_empty() {
                "unchanged".to_string()
            } else {
                format!("replaced; differs in {}", differs.join(", "))
            }
        }
    };
    if let (Some(n), "unchanged") = (new, state.as_str()) {
        return format!("{heading}: unchanged: {}\n", n.subject);
    }
    let mut out = format!("{heading}: {state}\n");
    let rows = old_fields
        .as_ref()
        .or(new_fields.as_ref())
        .map_or(0, Vec::len);
    for i in 0..rows {
        let o = old_fields.as_ref().map(|f| &f[i]);
        let n = new_fields.as_ref().map(|f| &f[i]);
        match (o, n) {
            (Some(o), Some(n)) if o.1 == n.1 => out.push_str(&row(' ', o)),
            // A new certificate has nothing to compare with: its fields, unmarked.
            (None, Some(n)) => out.push_str(&row(' ', n)),
            _ => {
                if let Some(o) = o {
                    out.push_str(&row('-', o));
                }
                if let Some(n) = n {
                    out.push_str(&row('+', n));
                }
            }
        }
    }
    out
}

fn row(mark: char, (label, value): &(&'static str, String)) -> String {
    format!("{mark} {label:<11} {value}\n")
}

/// The fields a reader checks, in the order `regboot certs show` prints them.
fn fields(c: &CertInfo) -> Vec<(&'static str, String)> {
    let sans = c.sans();
    vec![
        ("subject", c.subject.clone()),
        ("issuer", c.issuer.clone()),
        ("serial", c.serial.clone()),
        ("not before", inspect::date(c.not_before)),
        ("not after", inspect::date(c.not_after)),
        (
            "SANs",
            if sans.is_empty() {
                "-".into()
            } else {
                sans.join(", ")
            },
        ),
        ("SHA-256", c.fingerprint_sha256.clone()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn cert(cn: &str, sans: &[&str]) -> String {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .pem()
    }

    #[test]
    fn a_new_certificate_is_shown_field_by_field_without_base64() {
        let pem = cert("regboot CA 1", &[]);
        let shown = cert_change(None, pem.as_bytes()).unwrap();
        let info = inspect::cert_info(&pem).unwrap();
        assert!(shown.starts_with("certificate: new\n"), "{shown}");
        assert!(shown.contains("  subject     CN=regboot CA 1\n"), "{shown}");
        assert!(shown.contains(&format!("  SHA-256     {}\n", info.fingerprint_sha256)));
        assert!(shown.contains(&format!("  serial      {}\n", info.serial)));
        assert!(shown.contains("  SANs        -\n"), "{shown}");
        assert!(!shown.contains("BEGIN"), "{shown}");
    }

    #[test]
    fn a_replaced_certificate_marks_what_differs() {
        let old = cert("registry", &["registry.lab"]);
        let new = cert("registry", &["registry.lab", "10.0.0.1"]);
        let shown = cert_change(Some(old.as_bytes()), new.as_bytes()).unwrap();
        let (o, n) = (
            inspect::cert_info(&old).unwrap(),
            inspect::cert_info(&new).unwrap(),
        );
        assert!(
            shown.starts_with("certificate: replaced; differs in issuer, serial,")
                || shown.starts_with("certificate: replaced; differs in serial,"),
            "{shown}"
        );
        assert!(shown.contains("differs in") && shown.contains("SANs, SHA-256\n"));
        assert!(shown.contains("  subject     CN=registry\n"), "{shown}");
        assert!(shown.contains("- SANs        registry.lab\n"), "{shown}");
        assert!(
            shown.contains("+ SANs        registry.lab, 10.0.0.1\n"),
            "{shown}"
        );
        assert!(shown.contains(&format!("- SHA-256     {}\n", o.fingerprint_sha256)));
        assert!(shown.contains(&format!("+ SHA-256     {}\n", n.fingerprint_sha256)));
    }

    #[test]
    fn chains_pair_up_and_a_dropped_certificate_is_removed() {
        let (a, b) = (cert("a", &[]), cert("b", &[]));
        let shown = cert_change(Some(format!("{a}{b}").as_bytes()), a.as_bytes()).unwrap();
        assert!(
            shown.starts_with("certificate 1 of 2: unchanged: CN=a\n"),
            "{shown}"
        );
        assert!(shown.contains("certificate 2 of 2: removed\n- subject     CN=b\n"));
    }

    #[test]
    fn non_certificates_and_unchanged_files_are_left_to_the_caller() {
        let pem = cert("x", &[]);
        assert_eq!(cert_change(None, b"{\"debug\": true}\n"), None);
        assert_eq!(cert_change(Some(pem.as_bytes()), pem.as_bytes()), None);
        let shown = cert_change(Some(b"garbage"), pem.as_bytes()).unwrap();
        assert!(shown.starts_with("(the file held no PEM certificate before)\ncertificate: new\n"));
    }
}
