//! The docker Engine API on `/var/run/docker.sock`, reached over SSH: what `docker info`,
//! `docker load`, `docker push`, `docker pull` and `docker rmi` ask dockerd, without starting
//! the docker CLI (tens of ms of CPU a start, on every host of a fleet). An [`Engine`] is one
//! socket connection that carries its requests one after the other (HTTP/1.1 keep-alive), so
//! a pull and its cleanup are one request stream.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, SERVER};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::channel;
use super::{ApiError, Auth};
use crate::ssh::Session;

/// dockerd's API socket.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// How long one request may take: a pull or push of the smoke test's image, a few KB, takes
/// well under a second; a registry that does not answer is dockerd's to time out first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// At most this much of an answer is read: a small image's progress stream is a few KB.
const MAX_BODY: usize = 4 << 20;

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

/// What regboot reads of `GET /containers/<name>/json` (what `docker inspect` prints).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInfo {
    /// The image's id (`sha256:...`).
    pub image: String,
    pub state: ContainerState,
    pub config: ContainerConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub running: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `null` when the container has none.
    #[serde(default)]
    pub labels: Option<std::collections::HashMap<String, String>>,
}

/// One connection to dockerd's socket on the host; clones share it, and their requests take
/// turns on it.
#[derive(Clone)]
pub struct Engine<'a> {
    session: &'a Session,
    sender: Arc<Mutex<SendRequest<Full<Bytes>>>>,
}

impl<'a> Engine<'a> {
    /// Opens dockerd's socket on the host behind `session` (as the login user).
    pub async fn connect(session: &'a Session) -> Result<Engine<'a>, ApiError> {
        let stream = channel::open(session, DOCKER_SOCKET).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(session, "HTTP/1.1 on the docker socket", e.to_string()))?;
        // Moves the bytes until the last clone is dropped; its errors reach the requests.
        tokio::spawn(conn);
        Ok(Engine {
            session,
            sender: Arc::new(Mutex::new(sender)),
        })
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<Info, ApiError> {
        let body = self.request("GET", "/info", None, None).await?;
        serde_json::from_slice(&body).map_err(|e| self.failed("GET /info", e.to_string()))
    }

    /// `GET /_ping`: dockerd's version, from the `Server` header of its answers
    /// (`Docker/20.10.24 (linux)`). Unlike `GET /info`, for which dockerd starts
    /// `runc --version` and `docker-init --version`, it costs the host next to nothing.
    pub async fn version(&self) -> Result<String, ApiError> {
        let (server, _) = self.send("GET", "/_ping", None, None).await?;
        server
            .as_deref()
            .and_then(server_version)
            .ok_or_else(|| self.failed("GET /_ping", format!("no docker version in {server:?}")))
    }

    /// `GET /images/<name>/json`: the id of image `name`, `None` when dockerd has none by
    /// that name (what `docker image inspect --format {{.Id}}` prints).
    pub async fn image_id(&self, name: &str) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Image {
            id: String,
        }
        let Some(body) = self.inspect(&format!("/images/{name}/json"), name).await? else {
            return Ok(None);
        };
        let image: Image = serde_json::from_slice(&body)
            .map_err(|e| self.failed(&format!("GET /images/{name}/json"), e.to_string()))?;
        Ok(Some(image.id))
    }

    /// `GET /containers/<name>/json`: container `name`, `None` when there is none.
    pub async fn container(&self, name: &str) -> Result<Option<ContainerInfo>, ApiError> {
        let path = format!("/containers/{name}/json");
        let Some(body) = self.inspect(&path, name).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map_err(|e| self.failed(&format!("GET {path}"), e.to_string()))
    }

    /// A GET of an object by name; `None` on dockerd's 404 (no such object).
    async fn inspect(&self, path: &str, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
        self.check_reference(name)?;
        match self.request("GET", path, None, None).await {
            Err(ApiError::Failed { reason, .. }) if reason.starts_with("HTTP 404") => Ok(None),
            other => other.map(Some),
        }
    }

    /// `POST /images/load`: the `docker save` tarball `tarball` loaded (its tags with it).
    pub async fn load(&self, tarball: Vec<u8>) -> Result<(), ApiError> {
        let body = self
            .request("POST", "/images/load?quiet=1", None, Some(tarball))
            .await?;
        progress(&body)
            .map(|_| ())
            .map_err(|why| self.failed("load of an image", why))
    }

    /// `POST /images/<repo>/push?tag=<tag>` of `image` (`repo:tag`) with `auth` (docker's
    /// `X-Registry-Auth`); returns the manifest digest the push reported.
    pub async fn push(&self, image: &str, auth: Option<Auth<'_>>) -> Result<String, ApiError> {
        let call = format!("push of {image}");
        self.check_reference(image)?;
        let (repo, tag) = image
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .ok_or_else(|| self.failed(&call, "the image has no tag".into()))?;
        let path = format!("/images/{repo}/push?tag={tag}");
        // dockerd wants the header on a push even without a credential.
        let body = self
            .request("POST", &path, Some(&registry_auth(auth)), None)
            .await?;
        match progress(&body) {
            Ok(Some(digest)) => Ok(digest),
            Ok(None) => Err(self.failed(&call, "the push reported no digest".into())),
            Err(why) => Err(self.failed(&call, why)),
        }
    }

    /// `POST /images/create`: pull `image` (`repo:tag`) with `auth` (docker's
    /// `X-Registry-Auth`); returns the manifest digest the pull reported.
    pub async fn pull(&self, image: &str, auth: Option<Auth<'_>>) -> Result<String, ApiError> {
        let call = format!("pull of {image}");
        self.check_reference(image)?;
        let path = format!("/images/create?fromImage={image}");
        let body = self
            .request("POST", &path, Some(&registry_auth(auth)), None)
            .await?;
        match progress(&body) {
            Ok(Some(digest)) => Ok(digest),
            Ok(None) => Err(self.failed(&call, "the pull reported no digest".into())),
            Err(why) => Err(self.failed(&call, why)),
        }
    }

    /// Every tag of `repo` dockerd holds (`repo:tag`).
    pub async fn tags_of(&self, repo: &str) -> Result<Vec<String>, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Image {
            repo_tags: Option<Vec<String>>,
        }
        self.check_reference(repo)?;
        // filters={"reference":["<repo>"]}, percent-encoded.
        let path = format!("/images/json?filters=%7B%22reference%22%3A%5B%22{repo}%22%5D%7D");
        let body = self.request("GET", &path, None, None).await?;
        let images: Vec<Image> = serde_json::from_slice(&body)
            .map_err(|e| self.failed("GET /images/json", e.to_string()))?;
        let prefix = format!("{repo}:");
        Ok(images
            .into_iter()
            .flat_map(|i| i.repo_tags.unwrap_or_default())
            .filter(|t| t.starts_with(&prefix))
            .collect())
    }

    /// `DELETE /images/<image>`: untag it (and remove it when no other name holds it); an
    /// absent image is no error.
    pub async fn remove(&self, image: &str) -> Result<(), ApiError> {
        self.check_reference(image)?;
        let path = format!("/images/{image}");
        match self.request("DELETE", &path, None, None).await {
            Err(ApiError::Failed { reason, .. }) if reason.starts_with("HTTP 404") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// An image reference goes into a URL as it is: only its own characters are let through.
    fn check_reference(&self, image: &str) -> Result<(), ApiError> {
        if image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
        {
            Ok(())
        } else {
            Err(self.failed(image, "not an image reference".into()))
        }
    }

    /// One request on the connection; the body of a 2xx answer, read whole.
    async fn request(
        &self,
        method: &str,
        path: &str,
        registry_auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ApiError> {
        let (_, body) = self.send(method, path, registry_auth, body).await?;
        Ok(body)
    }

    /// One request on the connection; the `Server` header and the body of a 2xx answer.
    async fn send(
        &self,
        method: &str,
        path: &str,
        registry_auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(Option<String>, Vec<u8>), ApiError> {
        let call = format!("{method} {path}");
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            // Go's HTTP server refuses an HTTP/1.1 request without one.
            .header(HOST, "docker");
        if let Some(auth) = registry_auth {
            req = req.header("X-Registry-Auth", auth);
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/x-tar");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.failed(&call, e.to_string()))?;
        let exchange = async {
            let mut sender = self.sender.lock().await;
            sender.ready().await?;
            let answer = sender.send_request(req).await?;
            let code = answer.status().as_u16();
            let server = answer.headers().get(SERVER).and_then(|v| v.to_str().ok());
            let server = server.map(str::to_string);
            let body = Limited::new(answer.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| anyhow::Error::from_boxed(e).context("reading the answer"))?;
            anyhow::Ok((code, server, body.to_bytes().to_vec()))
        };
        let (code, server, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                self.failed(
                    &call,
                    format!("no complete answer within {} s", REQUEST_TIMEOUT.as_secs()),
                )
            })?
            .map_err(|e| self.failed(&call, format!("{e:#}")))?;
        if (200..300).contains(&code) {
            return Ok((server, body));
        }
        // Errors come as {"message": "..."}.
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        Err(self.failed(&call, format!("HTTP {code}: {message}")))
    }

    fn failed(&self, call: &str, reason: String) -> ApiError {
        failed(self.session, call, reason)
    }
}

/// The version in dockerd's `Server` header: `Docker/<version> (<os>)`.
fn server_version(header: &str) -> Option<String> {
    let rest = header.strip_prefix("Docker/")?;
    let version = rest.split_whitespace().next()?;
    Some(version.to_string())
}

/// docker's `X-Registry-Auth`: the credential as URL-safe base64 JSON (`{}` without one).
fn registry_auth(auth: Option<Auth<'_>>) -> String {
    let json = match auth {
        Some(a) => serde_json::json!({
            "username": a.username,
            "password": a.password,
            "serveraddress": a.registry,
        }),
        None => serde_json::json!({}),
    };
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// A progress stream (JSON messages, one after the other): the manifest digest it reports (a
/// pull's `Digest:` status, a push's `aux.Digest`), or its error.
fn progress(body: &[u8]) -> Result<Option<String>, String> {
    #[derive(Deserialize)]
    struct Aux {
        #[serde(rename = "Digest")]
        digest: Option<String>,
    }
    #[derive(Deserialize)]
    struct Progress {
        status: Option<String>,
        error: Option<String>,
        aux: Option<Aux>,
    }
    let mut digest = None;
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<Progress>();
    for message in stream {
        let message = message.map_err(|e| format!("the progress is not JSON: {e}"))?;
        if let Some(error) = message.error {
            return Err(error);
        }
        let pulled = message
            .status
            .as_deref()
            .and_then(|s| s.strip_prefix("Digest: "))
            .map(str::to_string);
        if let Some(d) = pulled.or(message.aux.and_then(|a| a.digest)) {
            digest = Some(d);
        }
    }
    Ok(digest)
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
    fn a_digest_or_error_is_read_from_the_progress() {
        let pulled = br#"{"status":"Pulling from regboot-smoke","id":"ab12"}
{"status":"Digest: sha256:aa"}
{"status":"Status: Downloaded newer image for r:5000/regboot-smoke:1"}
"#;
        assert_eq!(progress(pulled).unwrap().as_deref(), Some("sha256:aa"));
        let pushed = br#"{"status":"The push refers to repository [r:5000/regboot-smoke]"}
{"status":"1: digest: sha256:bb size: 528"}
{"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:bb","Size":528}}
"#;
        assert_eq!(progress(pushed).unwrap().as_deref(), Some("sha256:bb"));
        let refused = br#"{"status":"Pulling"}{"errorDetail":{"message":"x509: unknown authority"},"error":"x509: unknown authority"}"#;
        assert_eq!(progress(refused).unwrap_err(), "x509: unknown authority");
        assert_eq!(
            progress(br#"{"stream":"Loaded image: r:5000/x:1\n"}"#).unwrap(),
            None
        );
        assert_eq!(progress(b"").unwrap(), None);
    }

    #[test]
    fn a_missing_credential_is_an_empty_one() {
        assert_eq!(registry_auth(None), "e30=");
        let auth = Auth {
            username: "u",
            password: "p",
            registry: "r:5000",
        };
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(registry_auth(Some(auth)))
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"username":"u","password":"p","serveraddress":"r:5000"}"#
        );
    }

    #[test]
    fn the_version_is_read_from_the_server_header() {
        assert_eq!(
            server_version("Docker/20.10.24+dfsg1 (linux)").as_deref(),
            Some("20.10.24+dfsg1")
        );
        assert_eq!(server_version("Docker/28.5.1").as_deref(), Some("28.5.1"));
        assert_eq!(server_version("nginx"), None);
        assert_eq!(server_version("Docker/"), None);
    }

    /// As dockerd 20.10 answers `GET /containers/<name>/json` (trimmed): labels or `null`.
    #[test]
    fn a_container_is_read_as_docker_inspect_prints_it() {
        let c: ContainerInfo = serde_json::from_str(
            r#"{"Id":"ab","Name":"/regboot-registry","Image":"sha256:1","State":{"Status":"running","Running":true},"Config":{"Image":"registry:2","Labels":{"regboot.config":"x"}}}"#,
        )
        .unwrap();
        assert!(c.state.running && c.image == "sha256:1");
        assert_eq!(c.config.labels.unwrap()["regboot.config"], "x");
        let c: ContainerInfo = serde_json::from_str(
            r#"{"Image":"sha256:2","State":{"Running":false},"Config":{"Labels":null}}"#,
        )
        .unwrap();
        assert!(!c.state.running && c.config.labels.is_none());
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
