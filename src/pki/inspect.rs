//! Reading certificates back: what a PEM certificate says (subject, SANs, validity, ...), and
//! whether a CA signed it. Everything regboot decides about a certificate starts here.

use std::net::IpAddr;

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{KeyPair, PublicKeyData};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// What a certificate says, in plain values (no key material: a certificate has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Colon-separated hex, as `openssl x509 -serial` shows it (without the colons).
    pub serial: String,
    pub dns_sans: Vec<String>,
    pub ip_sans: Vec<IpAddr>,
    #[serde(serialize_with = "rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(serialize_with = "rfc3339")]
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
    /// Upper-case hex SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` shows it.
    pub fingerprint_sha256: String,
    /// e.g. "ECDSA P-256" or "RSA 2048".
    pub key_algorithm: String,
    /// The permitted subtrees of a CA's nameConstraints; `None`: unconstrained.
    pub name_constraints: Option<super::constraints::Constraints>,
}

impl CertInfo {
    /// The SANs as text, DNS names first then IPs, in certificate order.
    pub fn sans(&self) -> Vec<String> {
        self.dns_sans
            .iter()
            .cloned()
            .chain(self.ip_sans.iter().map(IpAddr::to_string))
            .collect()
    }
}

/// A date as the tables show it, e.g. `2027-11-23 00:31 UTC`.
pub fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_else(|_| t.to_string())
}

/// Every certificate in a PEM text, in order (a chain file yields leaf first).
/// Non-certificate blocks are an error: a key in a certificate file is a mistake worth naming.
pub fn pem_certs(pem_text: &str) -> Result<Vec<Pem>> {
    let mut certs = Vec::new();
    for block in Pem::iter_from_buffer(pem_text.as_bytes()) {
        let block = block.map_err(|e| anyhow!("not valid PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            bail!(
                "found a PEM block \"{}\" where only certificates belong",
                block.label
            );
        }
        certs.push(block);
    }
    if certs.is_empty() {
        bail!("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)");
    }
    Ok(certs)
}

/// Parse one PEM block as an X.509 certificate.
pub fn parse(pem: &Pem) -> Result<X509Certificate<'_>> {
    pem.parse_x509()
        .map_err(|e| anyhow!("not a valid X.509 certificate: {e}"))
}

/// The facts of the first certificate in `pem_text`.
pub fn cert_info(pem_text: &str) -> Result<CertInfo> {
    let certs = pem_certs(pem_text)?;
    info_of(&parse(&certs[0])?, &certs[0].contents)
}

pub(crate) fn info_of(cert: &X509Certificate<'_>, der: &[u8]) -> Result<CertInfo> {
    let mut dns_sans = Vec::new();
    let mut ip_sans = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| anyhow!("invalid subjectAltName extension: {e}"))?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(d) => dns_sans.push(d.to_string()),
            GeneralName::IPAddress(raw) => ip_sans.push(ip_from_bytes(raw)?),
            _ => {}
        }
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string().to_uppercase(),
        dns_sans,
        ip_sans,
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        is_ca: cert.is_ca(),
        fingerprint_sha256: hex::encode_upper(Sha256::digest(der)),
        key_algorithm: key_algorithm_of(cert),
        name_constraints: super::constraints::Constraints::of_cert(cert)?,
    })
}

fn ip_from_bytes(raw: &[u8]) -> Result<IpAddr> {
    match raw.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(raw)?)),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(raw)?)),
        n => bail!("an IP address SAN has {n} bytes (expected 4 or 16)"),
    }
}

fn key_algorithm_of(cert: &X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(ec)) => match ec.key_size() {
            256 => "ECDSA P-256".to_string(),
            384 => "ECDSA P-384".to_string(),
            n => format!("ECDSA {n}-bit"),
        },
        Ok(_) | Err(_) => cert.public_key().algorithm.algorithm.to_id_string(),
    }
}

/// Whether `ca_pem`'s (first) certificate signed `cert_pem`'s (first) certificate: the
/// issuer name matches the CA's subject and the signature verifies with the CA's key.
pub fn verify_signed_by(cert_pem: &str, ca_pem: &str) -> Result<bool> {
    let cert_blocks = pem_certs(cert_pem).context("certificate")?;
    let ca_blocks = pem_certs(ca_pem).context("CA certificate")?;
    Ok(signed_by(&parse(&cert_blocks[0])?, &parse(&ca_blocks[0])?))
}

pub(crate) fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Whether `key` is the private half of the (first) certificate's public key.
pub fn key_matches_cert(key: &KeyPair, cert_pem: &str) -> Result<bool> {
    let blocks = pem_certs(cert_pem)?;
    let cert = parse(&blocks[0])?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.der_bytes())
}

pub(crate) fn rfc3339_opt<S: serde::Serializer>(
    t: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t.map(|t| t.format(&Rfc3339)).transpose() {
        Ok(text) => text.serialize(s),
        Err(e) => Err(serde::ser::Error::custom(e)),
    }
}

/// Serialize a time as RFC 3339 (`2027-11-23T00:31:00Z`) in JSON output.
pub(crate) fn rfc3339<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    rfc3339_opt(&Some(*t), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_text_without_a_certificate() {
        assert!(cert_info("hello").is_err());
        let key = KeyPair::generate().unwrap();
        let err = cert_info(&key.serialize_pem()).unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    }
}
