//! A unix socket on the host as a byte stream over SSH, and HTTP/2 over it for gRPC.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::ApiError;
use crate::ssh::Session;

/// A byte stream to a socket on the host.
pub type SocketStream = russh::ChannelStream<russh::client::Msg>;

/// How long opening a socket and its HTTP/2 handshake may take: both are one round trip.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The unix socket `socket` on the host behind `session`, opened by sshd as the login user.
pub async fn open(session: &Session, socket: &str) -> Result<SocketStream, ApiError> {
    let target = session.target();
    let unreachable = |reason: String| ApiError::Unreachable {
        host: target.name.clone(),
        socket: socket.to_string(),
        user: target.user.clone(),
        reason,
    };
    match tokio::time::timeout(OPEN_TIMEOUT, session.stream_local(socket)).await {
        Ok(Ok(stream)) => Ok(stream),
        // OpenSSH answers "connect failed" both for a missing socket and a refused one.
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            OPEN_TIMEOUT.as_secs()
        ))),
    }
}

/// An HTTP/2 connection to a socket on the host, as the request service a tonic client
/// sends through. The connection lives until the last clone of it is dropped.
#[derive(Clone)]
pub struct H2(SendRequest<tonic::body::Body>);

impl H2 {
    /// HTTP/2 (prior knowledge, as gRPC speaks it) over `socket` on the host.
    pub async fn connect(session: &Session, socket: &str) -> Result<H2, ApiError> {
        let stream = open(session, socket).await?;
        let handshake = http2::handshake(TokioExecutor::new(), TokioIo::new(stream));
        let failed = |reason: String| ApiError::Failed {
            host: session.target().name.clone(),
            call: format!("HTTP/2 handshake on {socket}"),
            reason,
        };
        let (sender, conn) = tokio::time::timeout(OPEN_TIMEOUT, handshake)
            .await
            .map_err(|_| failed("no answer".into()))?
            .map_err(|e| failed(e.to_string()))?;
        // Moves the bytes until every sender is gone; its errors reach the requests.
        tokio::spawn(conn);
        Ok(H2(sender))
    }
}

impl tower_service::Service<hyper::Request<tonic::body::Body>> for H2 {
    type Response = hyper::Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: hyper::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}
