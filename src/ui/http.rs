//! The HTTP side of `regboot ui`: which request reaches which answer (token, Host, method,
//! origin), the security headers on every answer, and the query strings the page sends.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::Full;
pub use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{App, Backend};

const PAGE: &str = include_str!("index.html");
const TRUST_PAGE: &str = include_str!("trust.html");
const COMMON: &str = include_str!("common.js");
const SCRIPT: &str = include_str!("app.js");
const TRUST_SCRIPT: &str = include_str!("trust.js");
const STYLE: &str = include_str!("style.css");

/// A request head must arrive within this time and fit in this many bytes (hyper's minimum
/// buffer is 8 KiB). Request bodies are never read.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEAD_BYTES: usize = 16 * 1024;
/// A connection, keep-alive included, lives at most this long.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// On every answer: scripts, styles and fetches from this origin only, no framing, no
/// referrer (the URL holds the token), nothing cached.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
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

/// The header a delete carries the CSRF token in (a cross-origin page cannot set it without
/// a CORS preflight, which nothing here answers).
pub const CSRF_HEADER: &str = "x-regboot-csrf";

pub type Answer = Response<Full<Bytes>>;
pub type Head = hyper::http::request::Parts;

impl<B: Backend> App<B> {
    pub(super) async fn respond<T>(&self, req: Request<T>) -> Answer {
        let (head, _body) = req.into_parts();
        let Some(path) = self.route(&head) else {
            return answer(StatusCode::FORBIDDEN, "text/plain", "forbidden\n");
        };
        let asset = |ty, body: &'static str| answer(StatusCode::OK, ty, body);
        let (js, html) = ("text/javascript; charset=utf-8", "text/html; charset=utf-8");
        match (&head.method, path) {
            (&Method::POST, "delete") => self.delete(&head).await,
            (_, "delete") => answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "POST only\n"),
            (m, _) if m != Method::GET => {
                answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n")
            }
            (_, "") => asset(html, PAGE),
            (_, "trust") => asset(html, TRUST_PAGE),
            (_, "common.js") => asset(js, COMMON),
            (_, "app.js") => asset(js, SCRIPT),
            (_, "trust.js") => asset(js, TRUST_SCRIPT),
            (_, "style.css") => asset("text/css; charset=utf-8", STYLE),
            (_, "catalog.json") => self.catalog().await,
            (_, "details.json") => self.details(&query(&head.uri)).await,
            (_, "dates.json") => self.dates().await,
            (_, "trust.json") => self.trust().await,
            _ => answer(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        }
    }

    /// The path below the token, when the request carries the token (compared in constant
    /// time) and our Host.
    fn route<'r>(&self, head: &'r Head) -> Option<&'r str> {
        let host = head.headers.get(header::HOST)?;
        let (token, path) = head.uri.path().strip_prefix('/')?.split_once('/')?;
        let token_ok: bool = token.as_bytes().ct_eq(self.token.as_bytes()).into();
        (token_ok && host.as_bytes() == self.host.as_bytes()).then_some(path)
    }
}

/// A request from our own page: its Origin is our address and it carries the CSRF token.
pub fn same_origin(head: &Head, host: &str, csrf: &str) -> bool {
    let origin_ok = head
        .headers
        .get(header::ORIGIN)
        .is_some_and(|o| o.as_bytes() == format!("http://{host}").as_bytes());
    let csrf_ok = head
        .headers
        .get(CSRF_HEADER)
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(csrf.as_bytes())));
    origin_ok && csrf_ok
}

/// The query's `key=value` pairs, percent-decoded (a pair that does not decode is left out;
/// what it would have named is refused as missing).
pub fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b'+' => b' ',
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

pub fn json(value: &impl Serialize) -> Answer {
    json_status(StatusCode::OK, value)
}

pub fn json_status(status: StatusCode, value: &impl Serialize) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => answer(status, "application/json", body),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("{e}\n"),
        ),
    }
}

/// `{"error": message}`: the page shows the message.
pub fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    json_status(status, &serde_json::json!({ "error": message.into() }))
}

pub fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}
