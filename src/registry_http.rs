//! HTTP through an SSH tunnel, as the host at the other end sees the server: the registry's
//! health check (`GET /v2/` answers 200 or 401), the smoke test's manifest checks and delete,
//! each replica's catalog, the certificate chain a registry serves (`certs check`, `rotate`),
//! and the S3 bucket check ([`crate::apply::storage`]). [`connect`] opens the tunnel and, for
//! https, the TLS session; [`send`] speaks HTTP/1.1 over it with hyper.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONNECTION, HOST, USER_AGENT};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ssh::Session;

/// Longest a request may take to connect (the tunnel and the TLS handshake), and again to be
/// answered in full. A registry or S3 endpoint answers in well under a second; one that
/// accepts and stays silent must not hold the run, and every host's lock, for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

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

/// Manifest types the smoke image and common clients use: without them a registry may answer
/// a GET by tag with a converted (schema 1) manifest.
const MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

/// Send `req` to 127.0.0.1:port on the host and return the HTTP status and body.
pub async fn fetch(session: &Session, req: &Request<'_>) -> Result<(u16, Vec<u8>)> {
    let trust = match req.ca_pem {
        None => Trust::Plain,
        Some(ca) => Trust::Roots(roots(ca)?),
    };
    let tunnel = connect(session, "127.0.0.1", req.port, req.hostname, trust).await?;
    let mut http = hyper::Request::builder()
        .method(req.method)
        .uri(req.path)
        .header(HOST, format!("{}:{}", req.hostname, req.port))
        .header(ACCEPT, MANIFESTS);
    if let Some((user, pw)) = req.basic_auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        http = http.header(AUTHORIZATION, format!("Basic {token}"));
    }
    send(tunnel.io, http.body(Full::default())?).await
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
    let tunnel = connect(session, host, port, hostname, Trust::AnyCertificate).await?;
    if tunnel.chain.is_empty() {
        bail!("{host}:{port} presented no certificate");
    }
    Ok(tunnel.chain.iter().map(|c| der_to_pem(c)).collect())
}

/// What the client expects at the other end of a tunnel.
pub enum Trust {
    /// Plain HTTP, no TLS (tls.mode insecure, an http:// S3 endpoint).
    Plain,
    /// TLS with a certificate for the server name, issued by one of these roots only.
    Roots(rustls::RootCertStore),
    /// TLS accepting any certificate, so that an expired or foreign one can be read.
    AnyCertificate,
}

/// The roots of a PEM bundle (our CA).
fn roots(pem: &str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.context("the CA is not valid PEM")?)?;
    }
    Ok(roots)
}

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A byte stream to a server through SSH, TLS when [`Trust`] asked for it.
pub struct Tunnel {
    pub io: Box<dyn Stream>,
    /// The certificates the server presented, leaf first (none without TLS).
    pub chain: Vec<CertificateDer<'static>>,
}

/// A stream to `host:port` opened from the host behind `session` (`host` is resolved there),
/// with TLS for `server_name` unless `trust` is [`Trust::Plain`].
pub async fn connect(
    session: &Session,
    host: &str,
    port: u16,
    server_name: &str,
    trust: Trust,
) -> Result<Tunnel> {
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        open(session, host, port, server_name, trust),
    )
    .await
    .unwrap_or_else(|_| {
        bail!(
            "{host}:{port} did not complete the connection within {} s (as seen from that host)",
            REQUEST_TIMEOUT.as_secs()
        )
    })
}

async fn open(
    session: &Session,
    host: &str,
    port: u16,
    server_name: &str,
    trust: Trust,
) -> Result<Tunnel> {
    let stream = session
        .tunnel(host, port)
        .await
        .with_context(|| format!("cannot reach {host}:{port} through SSH"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match trust {
        Trust::Plain => {
            return Ok(Tunnel {
                io: Box::new(stream),
                chain: Vec::new(),
            });
        }
        Trust::Roots(roots) => config.with_root_certificates(roots),
        Trust::AnyCertificate => config
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
    };
    let name = ServerName::try_from(server_name.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config.with_no_client_auth()))
        .connect(name, stream)
        .await
        .with_context(|| format!("TLS handshake with {host}:{port} as {server_name} failed"))?;
    let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
    Ok(Tunnel {
        chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
        io: Box::new(tls),
    })
}

/// Bodies regboot reads are small documents (a catalog, an S3 error).
const MAX_BODY: usize = 4 << 20;

/// Send one HTTP/1.1 request over `io` (which it closes after) and read the status and the
/// whole body (sized, chunked or up to the end of the stream; at most 4 MiB), within
/// `REQUEST_TIMEOUT`.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Vec<u8>)> {
    let what = format!("{} {}", req.method(), req.uri());
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(io, req))
        .await
        .unwrap_or_else(|_| {
            bail!(
                "{what}: no complete answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )
        })
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    mut req: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Vec<u8>)> {
    let headers = req.headers_mut();
    headers.insert(USER_AGENT, "regboot".parse()?);
    headers.insert(CONNECTION, "close".parse()?);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    let exchange = async move {
        let answer = sender.send_request(req).await?;
        let code = answer.status().as_u16();
        let body = Limited::new(answer.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::Error::from_boxed(e).context("reading the answer"))?;
        Ok((code, body.to_bytes().to_vec()))
    };
    // The connection task moves the bytes; it ends by itself once the answer is read.
    tokio::select! {
        done = exchange => done,
        Err(e) = conn => Err(e.into()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers one request with `answer` and hands back what it was sent.
    async fn serve_once(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut got = vec![0; 4096];
            let n = conn.read(&mut got).await.unwrap();
            conn.write_all(answer).await.unwrap();
            conn.shutdown().await.unwrap();
            String::from_utf8_lossy(&got[..n]).into_owned()
        });
        (port, server)
    }

    #[tokio::test]
    async fn chunked_answers_are_read_whole() {
        let (port, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              7\r\n{\"repos\r\n11;ext=1\r\nitories\":[\"a\",\"b\"\r\n2\r\n]}\r\n0\r\n\r\n",
        )
        .await;
        let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let req = hyper::Request::get("/v2/_catalog")
            .header(HOST, "registry.test:5000")
            .body(Full::default())
            .unwrap();
        let (code, body) = send(io, req).await.unwrap();
        assert_eq!(code, 200);
        assert_eq!(body, br#"{"repositories":["a","b"]}"#);
        let head = server.await.unwrap();
        assert!(head.starts_with("GET /v2/_catalog HTTP/1.1\r\n"), "{head}");
        for line in ["host: registry.test:5000", "connection: close"] {
            assert!(head.to_lowercase().contains(line), "{head}");
        }
    }

    #[tokio::test]
    async fn unsized_answers_end_with_the_stream_except_for_head() {
        for (method, want) in [("GET", &b"no such bucket"[..]), ("HEAD", b"")] {
            let (port, _server) = serve_once(b"HTTP/1.1 404 Not Found\r\n\r\nno such bucket").await;
            let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let req = hyper::Request::builder()
                .method(method)
                .uri("/b")
                .body(Full::default())
                .unwrap();
            assert_eq!(
                send(io, req).await.unwrap(),
                (404, want.to_vec()),
                "{method}"
            );
        }
    }
}
