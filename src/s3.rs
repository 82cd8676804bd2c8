//! Shared storage before the replicas start: an S3 bucket is looked up (and created when the
//! inventory sets `create_bucket`) with a signed request sent from the first registry host
//! through the SSH connection, so the check sees the endpoint exactly as the replicas will.
//! Shared filesystem storage cannot be checked from here: plan and apply say it is trusted.

use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use http_body_util::Full;
use hyper::Uri;
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, HOST};
use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::host::RemoteHost;
use crate::inventory::{Inventory, Role, S3Storage, Storage};
use crate::registry_http::{self, Trust};

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
    let bad = |what| format!("registry.storage.s3.endpoint {url:?} {what}");
    let uri: Uri = url.parse().with_context(|| bad("is not a URL"))?;
    let secure = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => bail!(bad("must start with http:// or https://")),
    };
    // Bracketed for IPv6, as the Host header wants it.
    let written = uri
        .host()
        .filter(|h| !h.is_empty())
        .context(bad("has no host"))?;
    let host = written.trim_matches(['[', ']']).to_string();
    let default_port = if secure { 443 } else { 80 };
    let port = uri.port_u16().unwrap_or(default_port);
    let authority = if port == default_port {
        written.to_string()
    } else {
        format!("{written}:{port}")
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

/// `method` on the bucket, signed with AWS Signature Version 4 as S3 wants it (the payload's
/// hash in a header, the path signed as it is sent).
fn signed_request(
    method: &str,
    ep: &Endpoint,
    region: &str,
    keys: (&str, &str),
    body: &[u8],
    now: SystemTime,
) -> Result<hyper::Request<Full<Bytes>>> {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(&ep.path)
        .header(HOST, &ep.authority)
        .body(Full::new(Bytes::copy_from_slice(body)))?;
    let scheme = if ep.secure { "https" } else { "http" };
    let url = format!("{scheme}://{}{}", ep.authority, ep.path);
    let identity =
        aws_credential_types::Credentials::new(keys.0, keys.1, None, None, "inventory").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()?
        .into();
    let headers = [("host", ep.authority.as_str())].into_iter();
    let signable = SignableRequest::new(method, url, headers, SignableBody::Bytes(body))?;
    sign(signable, &params)?
        .into_parts()
        .0
        .apply_to_request_http1x(&mut req);
    req.headers_mut().insert(CONTENT_LENGTH, body.len().into());
    Ok(req)
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
        if let Ok(pem) =
            crate::fsutil::read_limited(std::path::Path::new(&path), "", crate::fsutil::PEM_LIMIT)
        {
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

async fn send(
    via: &RemoteHost,
    ep: &Endpoint,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(u16, String)> {
    let trust = if ep.secure {
        Trust::Roots(system_roots()?)
    } else {
        Trust::Plain
    };
    let tunnel = registry_http::connect(&via.session, &ep.host, ep.port, &ep.host, trust)
        .await
        .with_context(|| format!("{} cannot reach the S3 endpoint", via.name()))?;
    let (code, answer) = registry_http::send(tunnel.io, req).await?;
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
    let head = signed_request("HEAD", &ep, &s3.region, keys, b"", SystemTime::now())?;
    let (code, _) = send(via, &ep, head).await?;
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
    let put = signed_request(
        "PUT",
        &ep,
        &s3.region,
        keys,
        body.as_bytes(),
        SystemTime::now(),
    )?;
    match send(via, &ep, put).await? {
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
        let v6 = endpoint(&s3(Some("https://[fd00::9]:8443/"), true)).unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.authority.as_str()),
            ("fd00::9", 8443, "[fd00::9]:8443")
        );
        let default_port = endpoint(&s3(Some("http://s3.lab:80"), true)).unwrap();
        assert_eq!(
            (default_port.port, default_port.authority.as_str()),
            (80, "s3.lab")
        );
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
        let now = time::macros::datetime!(2026-11-23 01:08:02 UTC).into();
        let req = signed_request(
            "HEAD",
            &ep,
            "us-east-1",
            (
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            b"",
            now,
        )
        .unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 \
             Credential=AKIAIOSFODNN7EXAMPLE/20261123/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=1b78372da66780fe657d94e835f4398042cb3cedf6a0af9fe9b373e8ac5f9e76"
        );
    }
}
