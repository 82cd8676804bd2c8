//! `regboot ui`: one page listing what every registry replica serves (repositories, tags,
//! digests, sizes, and which replicas hold or lack each), read with the same code as
//! `regboot catalog` through the SSH connections. The server listens on 127.0.0.1 only and
//! answers nothing without the random token that starts every path (`/TOKEN/`), since any
//! local user or web page can reach a loopback port. The page, script and style are embedded.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

use crate::catalog::{self, Holding, Report};

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");

/// Connections served at once; the next waits to be accepted.
const CONNECTIONS: usize = 16;
/// A request head must arrive within this time and fit in this many bytes (hyper's minimum
/// buffer is 8 KiB). Request bodies are never read.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const HEAD_BYTES: usize = 16 * 1024;
/// A connection, keep-alive included, lives at most this long.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// A read of every replica gives up after this (the SSH handshakes have their own bounds).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// On every answer: scripts, styles and fetches from this origin only, no framing, no
/// referrer (the URL holds the token), nothing cached.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
];

/// A fresh secret for the page's URL: 32 random bytes, hex.
pub fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the page's script reads from `catalog.json`.
#[derive(Serialize)]
struct View<'a> {
    agree: bool,
    replicas: Vec<ReplicaView<'a>>,
    images: Vec<Holding>,
}

#[derive(Serialize)]
struct ReplicaView<'a> {
    host: &'a str,
    images: usize,
    error: Option<&'a str>,
}

impl<'a> View<'a> {
    fn of(report: &'a Report) -> View<'a> {
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
        }
    }
}

struct App<R> {
    token: String,
    /// The Host header a browser sends for our address; refusing others blunts DNS rebinding.
    host: String,
    read: R,
    /// One read at a time: a burst of refreshes does not open a burst of SSH connections.
    reading: Mutex<()>,
}

/// Serve the page on `listener` with a catalog from `read`, until the future is dropped.
pub async fn serve<R, F>(listener: TcpListener, token: String, read: R) -> Result<()>
where
    R: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Report> + Send,
{
    let app = Arc::new(App {
        token,
        host: listener.local_addr()?.to_string(),
        read,
        reading: Mutex::new(()),
    });
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
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

impl<R, F> App<R>
where
    R: Fn() -> F,
    F: Future<Output = Report>,
{
    async fn respond<B>(&self, req: Request<B>) -> Response<Full<Bytes>> {
        let Some(path) = self.route(&req) else {
            return answer(StatusCode::FORBIDDEN, "text/plain", "forbidden\n");
        };
        if req.method() != Method::GET {
            return answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        }
        match path {
            "" => answer(StatusCode::OK, "text/html; charset=utf-8", PAGE),
            "app.js" => answer(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
            "style.css" => answer(StatusCode::OK, "text/css; charset=utf-8", STYLE),
            "catalog.json" => self.catalog().await,
            _ => answer(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }

    /// The path below the token, when the request carries the token (compared in constant
    /// time) and our Host.
    fn route<'r, B>(&self, req: &'r Request<B>) -> Option<&'r str> {
        let host = req.headers().get(header::HOST)?;
        let (token, path) = req.uri().path().strip_prefix('/')?.split_once('/')?;
        let token_ok: bool = token.as_bytes().ct_eq(self.token.as_bytes()).into();
        (token_ok && host.as_bytes() == self.host.as_bytes()).then_some(path)
    }

    async fn catalog(&self) -> Response<Full<Bytes>> {
        let _one = self.reading.lock().await;
        let (status, body) = match tokio::time::timeout(READ_TIMEOUT, (self.read)()).await {
            Ok(report) => (StatusCode::OK, serde_json::to_vec(&View::of(&report))),
            Err(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                serde_json::to_vec(&serde_json::json!({
                    "error": format!("the replicas did not answer within {} s", READ_TIMEOUT.as_secs())
                })),
            ),
        };
        match body {
            Ok(body) => answer(status, "application/json", body),
            Err(e) => answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                format!("{e}\n"),
            ),
        }
    }
}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Image, Replica};

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

    async fn get(path: &str, host: &str) -> (StatusCode, hyper::HeaderMap, String) {
        use http_body_util::BodyExt;
        let app = App {
            token: TOKEN.into(),
            host: HOST.into(),
            read: || {
                std::future::ready(catalog::compare(vec![
                    replica("a", &["1", "2"]),
                    replica("b", &["1"]),
                ]))
            },
            reading: Mutex::new(()),
        };
        let req = Request::get(path)
            .header(header::HOST, host)
            .body(())
            .unwrap();
        let res = app.respond(req).await;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into(),
        )
    }

    #[tokio::test]
    async fn only_the_token_and_our_host_open_the_page() {
        let (status, headers, body) = get("/a1b2/", HOST).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<script src=\"app.js\""), "{body}");
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(headers[name], value);
        }
        for (path, host) in [
            ("/", HOST),
            ("/a1b2", HOST),
            ("/a1b3/", HOST),
            ("/a1b2x/", HOST),
            ("/x/a1b2/", HOST),
            ("/?token=a1b2", HOST),
            ("/a1b2/", "evil.example:8000"),
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
    }

    #[test]
    fn tokens_are_fresh_32_byte_secrets() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
