//! Asking a registry for an HTTP status over TLS that trusts only our CA, through an SSH
//! tunnel to the registry host: the health check (`GET /v2/` answers 200 or 401) and the
//! smoke test's manifest delete. Only the status line matters, so a request line and its
//! headers are written by hand rather than pulling in a full HTTP client.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

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
    let stream = session
        .tunnel("127.0.0.1", req.port)
        .await
        .with_context(|| format!("cannot reach port {} on the host through SSH", req.port))?;
    match req.ca_pem {
        None => exchange(stream, req).await,
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
            exchange(tls, req).await
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, req: &Request<'_>) -> Result<u16> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: regboot\r\nConnection: close\r\n",
        req.method, req.path, req.hostname, req.port
    );
    if let Some((user, pw)) = req.basic_auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    head.push_str("\r\n");
    io.write_all(head.as_bytes()).await?;
    io.flush().await?;
    let mut line = String::new();
    BufReader::new(io).read_line(&mut line).await?;
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/1.") => code
            .parse()
            .with_context(|| format!("bad status line {line:?}")),
        _ => bail!("not an HTTP answer: {:?}", line.trim_end()),
    }
}
