//! The docker Engine API on `/var/run/docker.sock`, reached over SSH: what `docker info` and
//! `docker pull` ask dockerd, without starting the docker CLI (tens of ms of CPU a start, on
//! every host of a fleet). One HTTP/1.1 request per socket connection.

use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::HOST;
use serde::Deserialize;

use super::channel;
use super::{ApiError, Auth};
use crate::ssh::Session;

/// dockerd's API socket.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// What regboot reads of `GET /info`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    pub server_version: String,
    /// The storage driver's (key, value) pairs; the containerd image store shows here.
    #[serde(default)]
    pub driver_status: Option<Vec<Vec<String>>>,
}

impl Info {
    /// dockerd keeps its images in containerd (the containerd-snapshotter image store).
    pub fn containerd_store(&self) -> bool {
        self.driver_status
            .iter()
            .flatten()
            .flatten()
            .any(|v| v.contains("io.containerd.snapshotter"))
    }
}

/// `GET /info`.
pub async fn info(session: &Session) -> Result<Info, ApiError> {
    let body = request(session, "GET", "/info", None).await?;
    serde_json::from_slice(&body).map_err(|e| failed(session, "GET /info", e.to_string()))
}

/// `POST /images/create`: pull `image` (`repo:tag`) with `auth` (docker's `X-Registry-Auth`); returns the manifest digest
/// the pull reported.
pub async fn pull(
    session: &Session,
    image: &str,
    auth: Option<Auth<'_>>,
) -> Result<String, ApiError> {
    let call = format!("pull of {image}");
    check_reference(session, image)?;
    let auth = auth.map(|a| {
        let json = serde_json::json!({
            "username": a.username,
            "password": a.password,
            "serveraddress": a.registry,
        });
        base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
    });
    let path = format!("/images/create?fromImage={image}");
    let body = request(session, "POST", &path, auth.as_deref()).await?;
    pull_digest(&body).map_err(|why| failed(session, &call, why))
}

/// Every tag of `repo` dockerd holds (`repo:tag`).
pub async fn tags_of(session: &Session, repo: &str) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Image {
        repo_tags: Option<Vec<String>>,
    }
    check_reference(session, repo)?;
    // filters={"reference":["<repo>"]}, percent-encoded.
    let path = format!("/images/json?filters=%7B%22reference%22%3A%5B%22{repo}%22%5D%7D");
    let body = request(session, "GET", &path, None).await?;
    let images: Vec<Image> = serde_json::from_slice(&body)
        .map_err(|e| failed(session, "GET /images/json", e.to_string()))?;
    let prefix = format!("{repo}:");
    Ok(images
        .into_iter()
        .flat_map(|i| i.repo_tags.unwrap_or_default())
        .filter(|t| t.starts_with(&prefix))
        .collect())
}

/// `DELETE /images/<image>`: untag it (and remove it when no other name holds it); an
/// absent image is no error.
pub async fn remove(session: &Session, image: &str) -> Result<(), ApiError> {
    check_reference(session, image)?;
    match request(session, "DELETE", &format!("/images/{image}"), None).await {
        Err(ApiError::Failed { reason, .. }) if reason.starts_with("HTTP 404") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// An image reference goes into a URL as it is: only its own characters are let through.
fn check_reference(session: &Session, image: &str) -> Result<(), ApiError> {
    if image
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
    {
        Ok(())
    } else {
        Err(failed(session, image, "not an image reference".into()))
    }
}

/// The digest in a pull's progress stream (JSON messages, one a line), or its error.
fn pull_digest(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Progress {
        status: Option<String>,
        error: Option<String>,
    }
    let mut digest = None;
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<Progress>();
    for message in stream {
        let message = message.map_err(|e| format!("the pull's progress is not JSON: {e}"))?;
        if let Some(error) = message.error {
            return Err(error);
        }
        if let Some(d) = message
            .status
            .as_deref()
            .and_then(|s| s.strip_prefix("Digest: "))
        {
            digest = Some(d.to_string());
        }
    }
    digest.ok_or_else(|| "the pull reported no digest".to_string())
}

/// One request on a fresh connection to the socket; the body of a 2xx answer (read whole, at
/// most 4 MiB: a pull's progress of a small image, like the smoke test's, is a few KB).
async fn request(
    session: &Session,
    method: &str,
    path: &str,
    registry_auth: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let stream = channel::open(session, DOCKER_SOCKET).await?;
    let call = format!("{method} {path}");
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        // Go's HTTP server refuses an HTTP/1.1 request without one.
        .header(HOST, "docker");
    if let Some(auth) = registry_auth {
        req = req.header("X-Registry-Auth", auth);
    }
    let req = req
        .body(Full::<Bytes>::default())
        .map_err(|e| failed(session, &call, e.to_string()))?;
    let (code, body) = crate::registry_http::send(stream, req)
        .await
        .map_err(|e| failed(session, &call, format!("{e:#}")))?;
    if (200..300).contains(&code) {
        return Ok(body);
    }
    // Errors come as {"message": "..."}.
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    Err(failed(session, &call, format!("HTTP {code}: {message}")))
}

fn failed(session: &Session, call: &str, reason: String) -> ApiError {
    ApiError::Failed {
        host: session.target().name.clone(),
        call: call.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pulls_digest_or_error_is_read_from_its_progress() {
        let ok = br#"{"status":"Pulling from regboot-smoke","id":"ab12"}
{"status":"Digest: sha256:aa"}
{"status":"Status: Downloaded newer image for r:5000/regboot-smoke:1"}
"#;
        assert_eq!(pull_digest(ok).unwrap(), "sha256:aa");
        let refused = br#"{"status":"Pulling"}{"errorDetail":{"message":"x509: unknown authority"},"error":"x509: unknown authority"}"#;
        assert_eq!(pull_digest(refused).unwrap_err(), "x509: unknown authority");
        assert!(pull_digest(b"").unwrap_err().contains("no digest"));
    }

    #[test]
    fn the_containerd_store_shows_in_the_driver_status() {
        let info: Info = serde_json::from_str(
            r#"{"ServerVersion":"28.5.1","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}"#,
        )
        .unwrap();
        assert!(info.containerd_store());
        let info: Info =
            serde_json::from_str(r#"{"ServerVersion":"20.10.24","DriverStatus":null}"#).unwrap();
        assert!(!info.containerd_store());
    }
}
