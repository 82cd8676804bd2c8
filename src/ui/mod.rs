//! `regboot ui`: one page listing what every registry replica serves (repositories, tags,
//! digests, sizes, and which replicas hold or lack each), read with the same code as
//! `regboot catalog` through the SSH connections; a tag's details (platforms, layers, config)
//! read when it is opened; deleting a tag where the registry allows it; and a second view,
//! `trust`, with what `certs check` reads. The server listens on 127.0.0.1 only and answers
//! nothing without the random token that starts every path (`/TOKEN/`), since any local user
//! or web page can reach a loopback port; a delete also needs a POST from our own origin with
//! the page's CSRF token in a header. The pages, scripts and style are embedded.

pub mod details;
mod http;
pub mod trust;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

use crate::catalog::{self, Holding, Report};
pub use details::Details;
pub use trust::Trust;

/// Connections served at once; the next waits to be accepted.
const CONNECTIONS: usize = 16;
/// A read of every replica gives up after this (the SSH handshakes have their own bounds).
/// Each tag costs a manifest GET, and with a login each GET a bcrypt check on the registry
/// (0.3 s measured on a loaded lab host): 1,000 tags must fit.
const READ_TIMEOUT: Duration = Duration::from_secs(600);
/// Details, dates, deletes and trust reads under way at once (each opens SSH connections).
const READS: usize = 4;
/// Created dates remembered (by manifest digest: a manifest never changes).
const MAX_DATES: usize = 100_000;

/// A fresh secret for the page's URL (and the CSRF token): 32 random bytes, hex.
pub fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the page reads through the SSH connections.
pub trait Backend: Send + Sync + 'static {
    /// Every replica's catalog, as `regboot catalog` reads it.
    fn catalog(&self) -> impl Future<Output = Report> + Send;
    /// `repo:reference` as `host` (a registry host) serves it.
    fn details(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Details>> + Send;
    /// The created date of each `(host, repo, digest)` (none when it cannot be read).
    fn dates(
        &self,
        wanted: Vec<(String, String, String)>,
    ) -> impl Future<Output = BTreeMap<String, String>> + Send;
    /// Delete manifest `digest` of `repo` on every replica: per host, deleted (true), already
    /// gone (false) or why not.
    fn delete(
        &self,
        repo: &str,
        digest: &str,
    ) -> impl Future<Output = Vec<(String, Result<bool, String>)>> + Send;
    /// What `certs check -i` reads.
    fn trust(&self) -> impl Future<Output = Result<Trust>> + Send;
    /// The inventory's registry.delete_enabled.
    fn delete_enabled(&self) -> bool;
    /// `hostname[:port]` as `docker pull` names the registry.
    fn registry(&self) -> String;
}

/// What the page's script reads from `catalog.json`.
#[derive(Serialize)]
struct View<'a> {
    agree: bool,
    replicas: Vec<ReplicaView<'a>>,
    images: Vec<Holding>,
    registry: String,
    delete_enabled: bool,
    /// Sent back in the `x-regboot-csrf` header of a delete.
    csrf: &'a str,
}

#[derive(Serialize)]
struct ReplicaView<'a> {
    host: &'a str,
    images: usize,
    error: Option<&'a str>,
}

struct App<B> {
    token: String,
    csrf: String,
    /// The Host header a browser sends for our address; refusing others blunts DNS rebinding.
    host: String,
    backend: B,
    /// One catalog read at a time: a burst of refreshes does not open a burst of SSH
    /// connections. It keeps the last list: the dates read for it.
    reading: Mutex<Vec<(String, String, String)>>,
    reads: Semaphore,
    dates: Mutex<BTreeMap<String, String>>,
}

/// Serve the pages on `listener` with `backend`, until the future is dropped.
pub async fn serve<B: Backend>(listener: TcpListener, token: String, backend: B) -> Result<()> {
    let app = Arc::new(App::new(token, listener.local_addr()?.to_string(), backend));
    let slots = Arc::new(Semaphore::new(CONNECTIONS));
    loop {
        let slot = slots.clone().acquire_owned().await?;
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, a connection reset before accept: try again shortly.
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.respond(req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(http::HEAD_TIMEOUT)
                .max_buf_size(http::HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(http::CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

impl<B: Backend> App<B> {
    fn new(token: String, host: String, backend: B) -> App<B> {
        App {
            token,
            csrf: self::token(),
            host,
            backend,
            reading: Mutex::new(Vec::new()),
            reads: Semaphore::new(READS),
            dates: Mutex::new(BTreeMap::new()),
        }
    }

    async fn catalog(&self) -> http::Answer {
        let mut last = self.reading.lock().await;
        let Ok(report) = tokio::time::timeout(READ_TIMEOUT, self.backend.catalog()).await else {
            return http::error(
                http::StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the replicas did not answer within {} s",
                    READ_TIMEOUT.as_secs()
                ),
            );
        };
        let view = View::of(&report, &self.backend, &self.csrf);
        *last = view
            .images
            .iter()
            .filter_map(|h| {
                let host = h.held_by.first()?;
                Some((
                    host.clone(),
                    h.image.repository.clone(),
                    h.image.digest.clone(),
                ))
            })
            .collect();
        last.sort();
        last.dedup_by(|a, b| a.2 == b.2);
        http::json(&view)
    }

    async fn details(&self, query: &BTreeMap<String, String>) -> http::Answer {
        let (Some(host), Some(repo), Some(reference)) =
            (query.get("host"), query.get("repo"), query.get("ref"))
        else {
            return http::error(
                http::StatusCode::BAD_REQUEST,
                "host, repo and ref are needed",
            );
        };
        if !details::repository_ok(repo) || !details::reference_ok(reference) {
            return http::error(
                http::StatusCode::BAD_REQUEST,
                "not a repository and tag or digest",
            );
        }
        let _slot = self.reads.acquire().await;
        match self.backend.details(host, repo, reference).await {
            Ok(details) => http::json(&details),
            Err(e) => http::error(http::StatusCode::BAD_GATEWAY, format!("{e:#}")),
        }
    }

    /// The created date of every manifest of the last list read, each read once.
    async fn dates(&self) -> http::Answer {
        let wanted = self.reading.lock().await.clone();
        let _slot = self.reads.acquire().await;
        let mut dates = self.dates.lock().await;
        let unread: Vec<_> = wanted
            .iter()
            .filter(|w| !dates.contains_key(&w.2))
            .cloned()
            .collect();
        if !unread.is_empty() {
            let read = self.backend.dates(unread).await;
            if dates.len() + read.len() > MAX_DATES {
                dates.clear();
            }
            dates.extend(read);
        }
        http::json(&*dates)
    }

    async fn delete(&self, req: &http::Head) -> http::Answer {
        if !self.backend.delete_enabled() {
            return http::error(
                http::StatusCode::FORBIDDEN,
                "registry.delete_enabled is false in the inventory",
            );
        }
        if !http::same_origin(req, &self.host, &self.csrf) {
            return http::error(
                http::StatusCode::FORBIDDEN,
                "a delete needs a POST from this page (Origin and x-regboot-csrf)",
            );
        }
        let query = http::query(&req.uri);
        let (Some(repo), Some(digest)) = (query.get("repo"), query.get("digest")) else {
            return http::error(http::StatusCode::BAD_REQUEST, "repo and digest are needed");
        };
        if !details::repository_ok(repo) || !details::digest_ok(digest) {
            return http::error(http::StatusCode::BAD_REQUEST, "not a repository and digest");
        }
        let _one = self.reading.lock().await;
        let results = self.backend.delete(repo, digest).await;
        let status = if results.iter().any(|(_, r)| r.is_err()) {
            http::StatusCode::BAD_GATEWAY
        } else {
            http::StatusCode::OK
        };
        let hosts: Vec<_> = results
            .into_iter()
            .map(|(host, r)| {
                serde_json::json!({
                    "host": host,
                    "deleted": r.as_ref().is_ok_and(|d| *d),
                    "error": r.err(),
                })
            })
            .collect();
        http::json_status(status, &serde_json::json!({ "hosts": hosts }))
    }

    async fn trust(&self) -> http::Answer {
        let _slot = self.reads.acquire().await;
        match tokio::time::timeout(READ_TIMEOUT, self.backend.trust()).await {
            Ok(Ok(trust)) => http::json(&trust),
            Ok(Err(e)) => http::error(http::StatusCode::BAD_GATEWAY, format!("{e:#}")),
            Err(_) => http::error(
                http::StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the hosts did not answer within {} s",
                    READ_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

impl<'a> View<'a> {
    fn of(report: &'a Report, backend: &impl Backend, csrf: &'a str) -> View<'a> {
        View {
            agree: report.agree,
            replicas: report
                .replicas
                .iter()
                .map(|r| ReplicaView {
                    host: &r.host,
                    images: r.images.len(),
                    error: r.error.as_deref(),
                })
                .collect(),
            images: catalog::holdings(&report.replicas),
            registry: backend.registry(),
            delete_enabled: backend.delete_enabled(),
            csrf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Image, Replica};
    use http_body_util::BodyExt;
    use hyper::header;
    use hyper::{Request, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TOKEN: &str = "a1b2";
    const HOST: &str = "127.0.0.1:8000";

    fn replica(host: &str, tags: &[&str]) -> Replica {
        Replica {
            host: host.into(),
            images: tags
                .iter()
                .map(|t| Image {
                    repository: "<b>repo</b>".into(),
                    tag: t.to_string(),
                    digest: "sha256:1".into(),
                    size: 7,
                })
                .collect(),
            error: None,
        }
    }

    /// Two replicas; counts the deletes it is asked for (the HTTP side is under test here).
    struct Fake {
        delete_enabled: bool,
        deletes: AtomicUsize,
    }

    impl Backend for Fake {
        async fn catalog(&self) -> Report {
            catalog::compare(vec![replica("a", &["1", "2"]), replica("b", &["1"])])
        }
        async fn details(&self, _: &str, _: &str, _: &str) -> Result<Details> {
            anyhow::bail!("not read here")
        }
        async fn dates(&self, _: Vec<(String, String, String)>) -> BTreeMap<String, String> {
            BTreeMap::new()
        }
        async fn delete(&self, _: &str, _: &str) -> Vec<(String, Result<bool, String>)> {
            self.deletes.fetch_add(1, Ordering::SeqCst);
            vec![("a".into(), Ok(true)), ("b".into(), Ok(false))]
        }
        async fn trust(&self) -> Result<Trust> {
            anyhow::bail!("not read here")
        }
        fn delete_enabled(&self) -> bool {
            self.delete_enabled
        }
        fn registry(&self) -> String {
            "registry.example.com:5000".into()
        }
    }

    fn app(delete_enabled: bool) -> App<Fake> {
        App::new(
            TOKEN.into(),
            HOST.into(),
            Fake {
                delete_enabled,
                deletes: AtomicUsize::new(0),
            },
        )
    }

    async fn send(
        app: &App<Fake>,
        req: hyper::http::request::Builder,
    ) -> (StatusCode, hyper::HeaderMap, String) {
        let res = app.respond(req.body(()).unwrap()).await;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into(),
        )
    }

    async fn get(path: &str, host: &str) -> (StatusCode, hyper::HeaderMap, String) {
        send(&app(true), Request::get(path).header(header::HOST, host)).await
    }

    #[tokio::test]
    async fn only_the_token_and_our_host_open_the_page() {
        let (status, headers, body) = get("/a1b2/", HOST).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<script src=\"app.js\""), "{body}");
        assert!(
            body.contains("href=\"trust\""),
            "the page links the trust view"
        );
        for (name, value) in http::SECURITY_HEADERS {
            assert_eq!(headers[name], value);
        }
        let (status, _, body) = get("/a1b2/trust", HOST).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<script src=\"trust.js\""), "{body}");
        for (path, host) in [
            ("/", HOST),
            ("/a1b2", HOST),
            ("/a1b3/", HOST),
            ("/a1b2x/", HOST),
            ("/x/a1b2/", HOST),
            ("/?token=a1b2", HOST),
            ("/a1b2/", "evil.example:8000"),
            ("/a1b2/trust", "evil.example:8000"),
        ] {
            let (status, headers, _) = get(path, host).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {host}");
            assert_eq!(headers["cache-control"], "no-store");
        }
        assert_eq!(get("/a1b2/nothing", HOST).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_catalog_names_who_holds_and_who_lacks_each_image() {
        let (status, headers, body) = get("/a1b2/catalog.json", HOST).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(view["agree"], false);
        assert_eq!(view["replicas"][1]["images"], 1);
        assert_eq!(view["images"][1]["repository"], "<b>repo</b>");
        assert_eq!(view["images"][1]["tag"], "2");
        assert_eq!(view["images"][1]["held_by"], serde_json::json!(["a"]));
        assert_eq!(view["images"][1]["missing_on"], serde_json::json!(["b"]));
        assert_eq!(view["registry"], "registry.example.com:5000");
        assert_eq!(view["delete_enabled"], true);
        assert_eq!(view["csrf"].as_str().unwrap().len(), 64);
    }

    #[tokio::test]
    async fn details_refuse_names_outside_the_registry_grammar() {
        for query in [
            "host=a&repo=r",
            "host=a&repo=..%2Fx&ref=1",
            "host=a&repo=r&ref=1%3Fn%3D1",
            "host=a&repo=r%2F%2Fs&ref=1",
        ] {
            let (status, _, body) = get(&format!("/a1b2/details.json?{query}"), HOST).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        }
        let (status, _, body) = get("/a1b2/details.json?host=a&repo=lab%2Fui&ref=one", HOST).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(body.contains("not read here"), "{body}");
    }

    #[tokio::test]
    async fn a_delete_needs_a_post_from_our_origin_with_the_csrf_token() {
        let app = app(true);
        let digest = format!("sha256:{}", "a".repeat(64));
        let path = format!(
            "/a1b2/delete?repo=lab%2Fui&digest={}",
            digest.replace(':', "%3A")
        );
        let post = |origin: &str, csrf: &str| {
            let mut req = Request::post(&path).header(header::HOST, HOST);
            if !origin.is_empty() {
                req = req.header(header::ORIGIN, origin);
            }
            if !csrf.is_empty() {
                req = req.header(http::CSRF_HEADER, csrf);
            }
            req
        };
        let csrf = app.csrf.clone();
        let origin = format!("http://{HOST}");
        for (req, want) in [
            (
                Request::get(&path).header(header::HOST, HOST),
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (post(&origin, ""), StatusCode::FORBIDDEN),
            (post(&origin, &"0".repeat(64)), StatusCode::FORBIDDEN),
            (post("", &csrf), StatusCode::FORBIDDEN),
            (
                post("http://evil.example:8000", &csrf),
                StatusCode::FORBIDDEN,
            ),
        ] {
            let (status, _, body) = send(&app, req).await;
            assert_eq!(status, want, "{body}");
        }
        assert_eq!(app.backend.deletes.load(Ordering::SeqCst), 0);
        let bad = Request::post("/a1b2/delete?repo=lab%2Fui&digest=latest")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, &origin)
            .header(http::CSRF_HEADER, &csrf);
        assert_eq!(send(&app, bad).await.0, StatusCode::BAD_REQUEST);

        let (status, _, body) = send(&app, post(&origin, &csrf)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(app.backend.deletes.load(Ordering::SeqCst), 1);
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["hosts"][0]["deleted"], true);
        assert_eq!(answer["hosts"][1]["deleted"], false);

        let off = self::app(false);
        let (status, _, body) = send(&off, post(&origin, &off.csrf)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("delete_enabled"), "{body}");
        assert_eq!(off.backend.deletes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn queries_are_percent_decoded() {
        let uri: hyper::Uri = "/t/details.json?repo=lab%2Fui&ref=sha256%3Aab&x=%zz&y"
            .parse()
            .unwrap();
        let q = http::query(&uri);
        assert_eq!(q["repo"], "lab/ui");
        assert_eq!(q["ref"], "sha256:ab");
        assert!(!q.contains_key("x") && !q.contains_key("y"));
    }

    #[test]
    fn tokens_are_fresh_32_byte_secrets() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
