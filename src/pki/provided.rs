//! tls.mode provided: the user brings a CA-signed certificate. regboot does not issue
//! anything; it checks that the certificate chains to the given CA, matches its key, is in
//! date, and names every SAN the inventory needs, listing exactly the missing ones.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::KeyPair;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

use super::inspect::{self, CertInfo};
use super::leaf::{ReissueReason, expiry_reason};

/// The three files of tls.mode provided.
#[derive(Debug, Clone)]
pub struct ProvidedFiles {
    pub ca_cert: PathBuf,
    /// The server certificate, optionally followed by intermediate CA certificates.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the checks found. `problems` is empty when the certificate is fit to serve.
#[derive(Debug, Clone)]
pub struct ProvidedReport {
    pub cert: CertInfo,
    pub ca: CertInfo,
    /// Required names the certificate does not cover, in inventory order.
    pub missing_sans: Vec<String>,
    /// What makes the files unusable (wrong signer, foreign key, not for servers, missing
    /// SANs, expired), each a sentence naming the file and the fix.
    pub problems: Vec<String>,
    /// Usable, but worth acting on: it expires within renew_before.
    pub warnings: Vec<String>,
}

impl ProvidedReport {
    pub fn is_fit(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Longest chain of intermediates followed from the server certificate to the CA.
const MAX_CHAIN: usize = 8;

/// Check the provided files against the names the inventory needs, at `now`.
pub fn check(
    files: &ProvidedFiles,
    dns: &[String],
    ips: &[IpAddr],
    renew_before: Duration,
    now: OffsetDateTime,
) -> Result<ProvidedReport> {
    let read = |p: &Path, what: &str| {
        crate::fsutil::read_text_limited(
            p,
            &format!("tls.provided.{what}"),
            crate::fsutil::PEM_LIMIT,
        )
    };
    let ca_text = read(&files.ca_cert, "ca_cert")?;
    let cert_text = read(&files.cert, "cert")?;
    let key_text = read(&files.key, "key")?;
    let in_file = |p: &Path, what: &str| format!("tls.provided.{what} {}", p.display());

    let ca_blocks =
        inspect::pem_certs(&ca_text).with_context(|| in_file(&files.ca_cert, "ca_cert"))?;
    let cert_blocks =
        inspect::pem_certs(&cert_text).with_context(|| in_file(&files.cert, "cert"))?;
    let cas = ca_blocks
        .iter()
        .map(inspect::parse)
        .collect::<Result<Vec<_>>>()
        .with_context(|| in_file(&files.ca_cert, "ca_cert"))?;
    let chain = cert_blocks
        .iter()
        .map(inspect::parse)
        .collect::<Result<Vec<_>>>()
        .with_context(|| in_file(&files.cert, "cert"))?;
    let cert = inspect::cert_info(&cert_text).with_context(|| in_file(&files.cert, "cert"))?;
    let ca = inspect::cert_info(&ca_text).with_context(|| in_file(&files.ca_cert, "ca_cert"))?;

    let mut problems = Vec::new();
    if !chains_to(&chain, &cas) {
        problems.push(format!(
            "{} is not signed by the CA in {} (nor through intermediates placed after it in the \
             cert file): give the CA that issued it, or append the missing intermediates",
            files.cert.display(),
            files.ca_cert.display()
        ));
    }
    match KeyPair::from_pem(&key_text) {
        Ok(key) if inspect::key_matches_cert(&key, &cert_text)? => {}
        Ok(_) => problems.push(format!(
            "{} is not the key of {}: give the key the certificate was issued for",
            files.key.display(),
            files.cert.display()
        )),
        Err(e) => problems.push(format!(
            "{} is not a usable private key ({e}): give an unencrypted PEM key",
            files.key.display()
        )),
    }
    if let Some(eku) = chain[0].extended_key_usage().ok().flatten()
        && !eku.value.server_auth
        && !eku.value.any
    {
        problems.push(format!(
            "{} is not meant for TLS servers (its extended key usage lacks serverAuth)",
            files.cert.display()
        ));
    }
    let mut warnings = Vec::new();
    match expiry_reason(&cert, renew_before, now) {
        Some(ReissueReason::Expired { .. }) => problems.push(format!(
            "{} expired on {}: renew it with your CA",
            files.cert.display(),
            super::inspect::date(cert.not_after)
        )),
        Some(_) => warnings.push(format!(
            "{} expires on {}, within renew_before_days: renew it with your CA",
            files.cert.display(),
            super::inspect::date(cert.not_after)
        )),
        None => {}
    }
    let missing_sans = missing_sans(&cert, dns, ips);
    if !missing_sans.is_empty() {
        problems.push(format!(
            "{} does not cover these names the inventory needs: {} (reissue it with these SANs added)",
            files.cert.display(),
            missing_sans.join(", ")
        ));
    }
    Ok(ProvidedReport {
        cert,
        ca,
        missing_sans,
        problems,
        warnings,
    })
}

/// Whether `chain[0]` is signed by one of `cas`, directly or through CA certificates in
/// `chain[1..]`.
fn chains_to(chain: &[X509Certificate<'_>], cas: &[X509Certificate<'_>]) -> bool {
    let mut current = &chain[0];
    for _ in 0..MAX_CHAIN {
        if cas.iter().any(|ca| inspect::signed_by(current, ca)) {
            return true;
        }
        match chain[1..]
            .iter()
            .find(|c| c.is_ca() && !std::ptr::eq(*c, current) && inspect::signed_by(current, c))
        {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// The required names `cert` does not cover, as a TLS client would judge them: DNS names
/// match case-insensitively, a `*.` SAN covers exactly one left-most label, IPs match exactly.
pub fn missing_sans(cert: &CertInfo, dns: &[String], ips: &[IpAddr]) -> Vec<String> {
    let dns_missing = dns
        .iter()
        .filter(|name| !cert.dns_sans.iter().any(|san| dns_covers(san, name)))
        .cloned();
    let ip_missing = ips
        .iter()
        .filter(|ip| !cert.ip_sans.contains(ip))
        .map(IpAddr::to_string);
    dns_missing.chain(ip_missing).collect()
}

fn dns_covers(san: &str, name: &str) -> bool {
    if san.eq_ignore_ascii_case(name) {
        return true;
    }
    match (san.strip_prefix("*."), name.split_once('.')) {
        (Some(san_rest), Some((label, name_rest))) => {
            !label.is_empty() && san_rest.eq_ignore_ascii_case(name_rest)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::KeyAlgorithm;
    use crate::pki::LeafSpec;
    use crate::pki::ca::{Ca, CaSpec};
    use crate::pki::leaf::issue;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn leaf_spec(dns: &[&str], ips: &[&str]) -> LeafSpec {
        LeafSpec {
            dns: dns.iter().map(|s| s.to_string()).collect(),
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
            validity: Duration::days(365),
            renew_before: Duration::days(30),
            key_algorithm: KeyAlgorithm::EcdsaP256,
        }
    }

    /// Issue 26 item 12: the provided files go through the bounded reader.
    #[test]
    fn a_huge_provided_file_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let leaf = issue(&ca, &leaf_spec(&["registry.local"], &[])).unwrap();
        let huge = format!("{}\n", ca.cert_pem()).repeat(8 << 20 >> 9);
        let files = ProvidedFiles {
            ca_cert: write(tmp.path(), "ca.crt", &huge),
            cert: write(tmp.path(), "r.crt", &leaf.cert_pem),
            key: write(tmp.path(), "r.key", &leaf.key_pem),
        };
        let now = OffsetDateTime::now_utc();
        let err = check(&files, &[], &[], Duration::days(1), now).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("tls.provided.ca_cert") && err.contains("is larger than 4194304 bytes"),
            "{err}"
        );
    }

    #[test]
    fn lists_exactly_the_missing_sans() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let leaf = issue(
            &ca,
            &leaf_spec(&["*.dev.com", "registry.local"], &["10.0.0.51"]),
        )
        .unwrap();
        let files = ProvidedFiles {
            ca_cert: write(tmp.path(), "ca.crt", ca.cert_pem()),
            cert: write(tmp.path(), "r.crt", &leaf.cert_pem),
            key: write(tmp.path(), "r.key", &leaf.key_pem),
        };
        let dns = vec![
            "registry01.dev.com".to_string(),
            "a.b.dev.com".to_string(),
            "REGISTRY.LOCAL".to_string(),
            "localhost".to_string(),
        ];
        let ips: Vec<IpAddr> = vec!["10.0.0.51".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let report = check(
            &files,
            &dns,
            &ips,
            Duration::days(30),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(
            report.missing_sans,
            vec!["a.b.dev.com", "localhost", "127.0.0.1"]
        );
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(report.problems[0].contains("a.b.dev.com, localhost, 127.0.0.1"));

        let fit = check(
            &files,
            &dns[..1],
            &ips[..1],
            Duration::days(30),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert!(fit.is_fit(), "{:?}", fit.problems);
    }

    #[test]
    fn names_a_foreign_ca_a_foreign_key_and_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let other = Ca::generate(&CaSpec::default()).unwrap();
        let spec = leaf_spec(&["registry01.dev.com"], &[]);
        let leaf = issue(&ca, &spec).unwrap();
        let stranger = issue(&ca, &spec).unwrap();
        let files = ProvidedFiles {
            ca_cert: write(tmp.path(), "ca.crt", other.cert_pem()),
            cert: write(tmp.path(), "r.crt", &leaf.cert_pem),
            key: write(tmp.path(), "r.key", &stranger.key_pem),
        };
        let later = OffsetDateTime::now_utc() + Duration::days(366);
        let report = check(&files, &spec.dns, &[], Duration::days(30), later).unwrap();
        let all = report.problems.join("\n");
        assert!(all.contains("is not signed by the CA"), "{all}");
        assert!(all.contains("is not the key of"), "{all}");
        assert!(all.contains("expired on"), "{all}");
        assert!(report.missing_sans.is_empty());
    }

    #[test]
    fn expiring_soon_is_a_warning_not_a_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::generate(&CaSpec::default()).unwrap();
        let mut spec = leaf_spec(&["registry01.dev.com"], &[]);
        spec.validity = Duration::days(10);
        let leaf = issue(&ca, &spec).unwrap();
        let files = ProvidedFiles {
            ca_cert: write(tmp.path(), "ca.crt", ca.cert_pem()),
            cert: write(tmp.path(), "r.crt", &leaf.cert_pem),
            key: write(tmp.path(), "r.key", &leaf.key_pem),
        };
        let now = OffsetDateTime::now_utc();
        let report = check(&files, &spec.dns, &[], Duration::days(30), now).unwrap();
        assert!(report.is_fit(), "{:?}", report.problems);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("within renew_before_days"));
    }

    #[test]
    fn follows_intermediates_in_the_cert_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Ca::generate(&CaSpec::default()).unwrap();
        // An intermediate CA: a CA-shaped certificate signed by the root.
        let intermediate_key = KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "intermediate");
        let intermediate_cert = params.signed_by(&intermediate_key, root.issuer()).unwrap();
        let intermediate = Ca::load(
            &intermediate_cert.pem(),
            &intermediate_key.serialize_pem(),
            "test",
        )
        .unwrap();
        let spec = leaf_spec(&["registry01.dev.com"], &[]);
        let leaf = issue(&intermediate, &spec).unwrap();
        let leaf_only = ProvidedFiles {
            ca_cert: write(tmp.path(), "ca.crt", root.cert_pem()),
            cert: write(tmp.path(), "leaf.crt", &leaf.cert_pem),
            key: write(tmp.path(), "r.key", &leaf.key_pem),
        };
        let now = OffsetDateTime::now_utc();
        let report = check(&leaf_only, &spec.dns, &[], Duration::days(30), now).unwrap();
        assert!(!report.is_fit());
        let with_chain = ProvidedFiles {
            cert: write(
                tmp.path(),
                "chain.crt",
                &format!("{}{}", leaf.cert_pem, intermediate.cert_pem()),
            ),
            ..leaf_only
        };
        let report = check(&with_chain, &spec.dns, &[], Duration::days(30), now).unwrap();
        assert!(report.is_fit(), "{:?}", report.problems);
    }

    #[test]
    fn unreadable_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let files = ProvidedFiles {
            ca_cert: tmp.path().join("missing-ca.crt"),
            cert: tmp.path().join("r.crt"),
            key: tmp.path().join("r.key"),
        };
        let err = check(
            &files,
            &[],
            &[],
            Duration::days(30),
            OffsetDateTime::now_utc(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("tls.provided.ca_cert"),
            "{err:#}"
        );
    }

    #[test]
    fn wildcards_cover_one_label_only() {
        assert!(dns_covers("*.dev.com", "reg.dev.com"));
        assert!(!dns_covers("*.dev.com", "a.reg.dev.com"));
        assert!(!dns_covers("*.dev.com", "dev.com"));
        assert!(dns_covers("Reg.Dev.com", "reg.dev.COM"));
    }
}
