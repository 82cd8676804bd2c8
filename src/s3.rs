//! Shared storage before the replicas start: an S3 bucket is looked up (and created when the
//! inventory sets `create_bucket`) with a signed request sent from the first registry host
//! through the SSH connection, so the check sees the endpoint exactly as the replicas will.
//! Shared filesystem storage cannot be checked from here: plan and apply say it is trusted.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hmac::{Hmac, KeyInit, Mac};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::host::RemoteHost;
use crate::inventory::{Inventory, Role, S3Storage, Storage};
use crate::registry_http;

/// A line for plan and apply about storage that regboot trusts rather than checks.
pub fn note(inv: &Inventory) -> Option<String> {
    let replicas = inv.hosts_with(Role::Registry).count();
    match &inv.registry.storage {
        Storage::Filesystem { shared: true } if replicas > 1 => Some(format!(
            "storage: filesystem with {replicas} replicas: {} must be the same shared storage \
             (NFS, ...) mounted on every registry host; regboot does not check that (the smoke \
             test's per-replica reads show it)",
            inv.registry.data_dir
        )),
        _ => None,
    }
}

/// What the bucket check found or did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bucket {
    Exists,
    Created,
    /// Check mode, missing, create_bucket set.
    WouldCreate,
}

/// Where an S3 endpoint is: scheme, host, port, and the Host header and path for `bucket`.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    secure: bool,
    host: String,
    port: u16,
    /// Host header (with the port when not the scheme's default).
    authority: String,
    path: String,
}

fn endpoint(s3: &S3Storage) -> Result<Endpoint> {
    let url = s3
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s3.region));
    let (secure, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        bail!("registry.storage.s3.endpoint {url:?} must start with http:// or https://");
    };
    let hostport = rest.split('/').next().unwrap_or_default();
    let default_port = if secure { 443 } else { 80 };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse()
                .with_context(|| format!("registry.storage.s3.endpoint {url:?}: bad port"))?,
        ),
        _ => (hostport.trim_matches(['[', ']']).to_string(), default_port),
    };
    if host.is_empty() {
        bail!("registry.storage.s3.endpoint {url:?} has no host");
    }
    let authority = if port == default_port {
        hostport.split(':').next().unwrap_or_default().to_string()
    } else {
        hostport.to_string()
    };
    Ok(if s3.path_style {
        Endpoint {
            secure,
            path: format!("/{}", s3.bucket),
            authority,
            host,
            port,
        }
    } else {
        Endpoint {
            secure,
            path: "/".into(),
            authority: format!("{}.{authority}", s3.bucket),
            host: format!("{}.{host}", s3.bucket),
            port,
        }
    })
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The request head of `method` on the bucket, signed with AWS Signature Version 4.
fn signed_head(
    method: &str,
    ep: &Endpoint,
    region: &str,
    keys: (&str, &str),
    body: &[u8],
    now: OffsetDateTime,
) -> String {
    let date = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let stamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let payload = hex::encode(Sha256::digest(body));
    let canonical = format!(
        "{method}\n{}\n\nhost:{}\nx-amz-content-sha256:{payload}\nx-amz-date:{stamp}\n\n\
         host;x-amz-content-sha256;x-amz-date\n{payload}",
        ep.path, ep.authority
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{}", keys.1).as_bytes(), &date);
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &to_sign));
    format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: regboot\r\nx-amz-date: {stamp}\r\n\
         x-amz-content-sha256: {payload}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
         Signature={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ep.path,
        ep.authority,
        keys.0,
        body.len()
    )
}

/// The trust store of this machine, for an https endpoint.
fn system_roots() -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let candidates = std::env::var("SSL_CERT_FILE").into_iter().chain(
        [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .map(String::from),
    );
    for path in candidates {
        if let Ok(pem) = std::fs::read(&path) {
            for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                let _ = roots.add(cert);
            }
            if !roots.is_empty() {
                return Ok(roots);
            }
        }
    }
    bail!("no CA bundle found on this machine to check the https S3 endpoint (set SSL_CERT_FILE)")
}

async fn send(via: &RemoteHost, ep: &Endpoint, head: &str, body: &[u8]) -> Result<(u16, String)> {
    let stream = via
        .session
        .tunnel(&ep.host, ep.port)
        .await
        .with_context(|| format!("{} cannot reach {}:{}", via.name(), ep.host, ep.port))?;
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    // The head is written as bytes of text; a body is only a small XML document.
    let request = String::from_utf8(request).context("request body is not text")?;
    let (code, answer) = if ep.secure {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(system_roots()?)
            .with_no_client_auth();
        let name = ServerName::try_from(ep.host.clone())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .with_context(|| format!("TLS handshake with {} failed", ep.host))?;
        registry_http::exchange(tls, &request).await?
    } else {
        registry_http::exchange(stream, &request).await?
    };
    Ok((code, String::from_utf8_lossy(&answer).into_owned()))
}

/// Look the bucket up from `via` (a registry host); create it when missing and the inventory
/// asks for it (not in check mode).
pub async fn ensure_bucket(
    via: &RemoteHost,
    s3: &S3Storage,
    keys: (&str, &str),
    check: bool,
) -> Result<Bucket> {
    let ep = endpoint(s3)?;
    let head = signed_head(
        "HEAD",
        &ep,
        &s3.region,
        keys,
        b"",
        OffsetDateTime::now_utc(),
    );
    let (code, _) = send(via, &ep, &head, b"").await?;
    let where_ = format!(
        "bucket {:?} at {}",
        s3.bucket,
        s3.endpoint.as_deref().unwrap_or("AWS S3")
    );
    match code {
        200 => return Ok(Bucket::Exists),
        404 => {}
        401 | 403 => bail!(
            "{where_}: access denied (HTTP {code}): check the keys in ${} and ${} and their rights on the bucket",
            s3.access_key_env,
            s3.secret_key_env
        ),
        301 | 400 => bail!(
            "{where_}: HTTP {code}: the bucket is in another region than {:?}, or the endpoint needs path_style: {}",
            s3.region,
            !s3.path_style
        ),
        _ => bail!("{where_}: HEAD answered HTTP {code}"),
    }
    if !s3.create_bucket {
        bail!(
            "{where_} does not exist: create it, or set registry.storage.s3.create_bucket: true \
             to let regboot create it"
        );
    }
    if check {
        return Ok(Bucket::WouldCreate);
    }
    // us-east-1 is the default location and must not be named; other regions must be.
    let body = if s3.region == "us-east-1" {
        String::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            s3.region
        )
    };
    let head = signed_head(
        "PUT",
        &ep,
        &s3.region,
        keys,
        body.as_bytes(),
        OffsetDateTime::now_utc(),
    );
    match send(via, &ep, &head, body.as_bytes()).await? {
        (200, _) => Ok(Bucket::Created),
        (code, answer) => bail!(
            "creating {where_} answered HTTP {code}: {}",
            answer.chars().take(300).collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: Option<&str>, path_style: bool) -> S3Storage {
        S3Storage {
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            endpoint: endpoint.map(String::from),
            access_key_env: "K".into(),
            secret_key_env: "S".into(),
            path_style,
            redirect: false,
            create_bucket: false,
        }
    }

    #[test]
    fn endpoints_give_host_port_and_path() {
        let ep = endpoint(&s3(Some("http://10.0.0.9:8333"), true)).unwrap();
        assert_eq!(
            (ep.secure, ep.host.as_str(), ep.port, ep.authority.as_str()),
            (false, "10.0.0.9", 8333, "10.0.0.9:8333")
        );
        assert_eq!(ep.path, "/examplebucket");
        let aws = endpoint(&s3(None, false)).unwrap();
        assert_eq!(aws.host, "examplebucket.s3.us-east-1.amazonaws.com");
        assert_eq!((aws.port, aws.path.as_str()), (443, "/"));
        assert!(endpoint(&s3(Some("ftp://x"), true)).is_err());
    }

    /// Inputs signed by botocore's S3SigV4Auth (HEAD on a bucket, empty payload); the same
    /// signature proves the canonical request, scope and key derivation match AWS's.
    #[test]
    fn signature_matches_botocore() {
        let ep = Endpoint {
            secure: true,
            host: "examplebucket.s3.amazonaws.com".into(),
            port: 443,
            authority: "examplebucket.s3.amazonaws.com".into(),
            path: "/".into(),
        };
        let now = time::macros::datetime!(2026-11-23 01:08:02 UTC);
        let head = signed_head(
            "HEAD",
            &ep,
            "us-east-1",
            (
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            b"",
            now,
        );
        assert!(
            head.contains(
                "Credential=AKIAIOSFODNN7EXAMPLE/20261123/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=1b78372da66780fe657d94e835f4398042cb3cedf6a0af9fe9b373e8ac5f9e76"
            ),
            "{head}"
        );
    }
}
