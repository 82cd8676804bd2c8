//! Asking a registry for an HTTP status over TLS that trusts only our CA, through an SSH
//! tunnel to the registry host: the health check (`GET /v2/` answers 200 or 401) and the
//! smoke test's manifest checks and delete, each replica's catalog, and the certificate chain a
//! registry serves (`certs check`, `rotate`). The answers are small, so a request line and its
//! headers are written by hand rather than pulling in a full HTTP client.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use crate::ssh::Session;

/// One request to the registry published on `port` of the host behind `session`.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The name the certificate must carry (and the Host header).
    pub hostname: &'a str,
    pub port: u16,
    /// The CA to trust; `None`: plain HTTP (tls.mode insecure).
    pub ca_pem: Option<&'a str>,
    pub basic_auth: Option<(&'a str, &'a str)>,
}

/// Send `req` to 127.0.0.1:port on the host and return the HTTP status.
pub async fn status(session: &Session, req: &Request<'_>) -> Result<u16> {
    Ok(fetch(session, req).await?.0)
}

/// Send `req` to 127.0.0.1:port on the host and return the HTTP status and body.
pub async fn fetch(session: &Session, req: &Request<'_>) -> Result<(u16, Vec<u8>)> {
    let stream = session
        .tunnel("127.0.0.1", req.port)
        .await
        .with_context(|| format!("cannot reach port {} on the host through SSH", req.port))?;
    let head = request_head(req);
    match req.ca_pem {
        None => exchange(stream, &head).await,
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.context("the CA is not valid PEM")?)?;
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(req.hostname.to_string())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, stream)
                .await
                .with_context(|| format!("TLS handshake as {} failed", req.hostname))?;
            exchange(tls, &head).await
        }
    }
}

/// The certificate chain served on `host:port` as seen from the host behind `session`
/// (`host` is resolved there: 127.0.0.1 for the registry on that host, or the registry's
/// hostname or VIP as that host's clients reach it), as PEM, leaf first. The handshake
/// accepts any certificate: judging it is the caller's job.
pub async fn served_chain(
    session: &Session,
    host: &str,
    port: u16,
    hostname: &str,
) -> Result<Vec<String>> {
    let stream = session
        .tunnel(host, port)
        .await
        .with_context(|| format!("cannot reach {host}:{port} through SSH"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(hostname.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS handshake with {host}:{port} failed"))?;
    let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
    if certs.is_empty() {
        bail!("{host}:{port} presented no certificate");
    }
    Ok(certs.iter().map(|c| der_to_pem(c)).collect())
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Accepts any server certificate (still checking the handshake signatures), so an expired
/// or foreign certificate can be read and reported instead of only failing.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Manifest types the smoke image and common clients use: without them a registry may answer
/// a GET by tag with a converted (schema 1) manifest.
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

fn request_head(req: &Request<'_>) -> String {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: regboot\r\nAccept: {ACCEPT}\r\nConnection: close\r\n",
        req.method, req.path, req.hostname, req.port
    );
    if let Some((user, pw)) = req.basic_auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Bodies regboot reads are small JSON documents (a catalog, an S3 error).
const MAX_BODY: usize = 4 << 20;

/// Write a request `head` (with `Connection: close`), read the status and the body
/// (Content-Length, chunked, or up to the end of the stream).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    head: &str,
) -> Result<(u16, Vec<u8>)> {
    io.write_all(head.as_bytes()).await?;
    io.flush().await?;
    let mut r = BufReader::new(io);
    let mut line = String::new();
    r.read_line(&mut line).await?;
    let code: u16 = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/1.") => code
            .parse()
            .with_context(|| format!("bad status line {line:?}"))?,
        _ => bail!("not an HTTP answer: {:?}", line.trim_end()),
    };
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if head.starts_with("HEAD ") {
        return Ok((code, body));
    }
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 || body.len() + size > MAX_BODY {
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).await?;
            line.clear();
            r.read_line(&mut line).await?;
        }
    } else if let Some(n) = length {
        body.resize(n.min(MAX_BODY), 0);
        r.read_exact(&mut body).await?;
    } else {
        r.take(MAX_BODY as u64).read_to_end(&mut body).await?;
    }
    Ok((code, body))
}
