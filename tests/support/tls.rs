//! A TLS server on loopback and a rustls client for it, for the tests that prove which
//! certificates a client accepts (rustls verifies as the registry's Go and Rust clients do).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long one connection and handshake may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS server on 127.0.0.1 serving `chain` and `key`; each connection gets "ok" after the
/// handshake. Returns its address and the task to abort.
pub async fn serve(chain: &Path, key: &Path) -> (SocketAddr, JoinHandle<()>) {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        // Bounded: a test makes fewer than 64 connections, then aborts this task.
        for _ in 0..64 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate aborts the handshake: not an error here.
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"ok").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

/// Handshake as a client trusting only `ca_pem`, verifying `name`; the TCP connection always
/// goes to `addr`. Ok(()) when the handshake and a read succeed; the error reads as rustls
/// prints it, then its variant (`not valid for name (... NameConstraintViolation ...)`).
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &Path,
    name: ServerName<'static>,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{e} ({e:?})"))?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        (buf == b"ok")
            .then_some(())
            .ok_or_else(|| format!("unexpected reply {buf:?}"))
    };
    tokio::time::timeout(STEP_TIMEOUT, attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// `name` as a DNS name to verify.
pub fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).unwrap()
}

/// `addr` as an IP address to verify.
pub fn ip(addr: &str) -> ServerName<'static> {
    ServerName::IpAddress(addr.parse::<std::net::IpAddr>().unwrap().into())
}

/// `cert_pem` (a server certificate, its key `key_pem`) issued again by the CA (`ca_cert_pem`,
/// `ca_key_pem`) with the same names and key, valid from two hours ago until one hour ago:
/// that certificate once it has expired, without waiting for it.
pub fn expired_copy(cert_pem: &str, key_pem: &str, ca_cert_pem: &str, ca_key_pem: &str) -> String {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let info = regboot::pki::cert_info(cert_pem).unwrap();
    let mut params = CertificateParams::new(info.dns_sans.clone()).unwrap();
    params
        .subject_alt_names
        .extend(info.ip_sans.iter().map(|ip| SanType::IpAddress(*ip)));
    let cn = info.sans().into_iter().next().unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if info.key_algorithm.starts_with("RSA") {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(2);
    params.not_after = now - time::Duration::hours(1);
    let key = KeyPair::from_pem(key_pem).unwrap();
    let issuer =
        Issuer::from_ca_cert_pem(ca_cert_pem, KeyPair::from_pem(ca_key_pem).unwrap()).unwrap();
    params.signed_by(&key, &issuer).unwrap().pem()
}
