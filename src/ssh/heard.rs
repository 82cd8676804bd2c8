//! What the server sent first on a connection. sshd beyond MaxStartups closes a connection
//! before its banner, saying at most "Exceeded MaxStartups"; an endpoint that answers
//! something else is another kind of server, and retrying it as a crowded sshd would only
//! hide that.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes kept: enough for sshd's refusal line.
const KEPT: usize = 64;

pub(super) type Received = Arc<Mutex<Vec<u8>>>;

pub(super) struct Heard<S> {
    inner: S,
    received: Received,
}

impl<S> Heard<S> {
    /// Wrap `inner`; the buffer gets the first bytes that arrive.
    pub fn new(inner: S) -> (Heard<S>, Received) {
        let received = Received::default();
        (
            Heard {
                inner,
                received: received.clone(),
            },
            received,
        )
    }
}

/// Whether a connection closed during the handshake after the server sent `received` looks
/// like sshd refusing it beyond MaxStartups (`Some(explicit)`: it said so), or `None`: the
/// server answered something else, so it is not a crowded sshd.
pub(super) fn max_startups(received: &[u8]) -> Option<bool> {
    if received.is_empty() {
        Some(false)
    } else if received.starts_with(b"Exceeded MaxStartups") {
        Some(true)
    } else {
        None
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Heard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        let mut kept = self.received.lock().unwrap_or_else(|p| p.into_inner());
        let room = KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&new[..new.len().min(room)]);
        polled
    }
}
impl<S: AsyncWrite + Unpin> AsyncWrite for Heard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_before_any_banner_or_with_sshds_refusal_is_maxstartups() {
        assert_eq!(max_startups(b""), Some(false));
        assert_eq!(max_startups(b"Exceeded MaxStartups\r\n"), Some(true));
        assert_eq!(max_startups(b"HTTP/1.1 400 Bad Request\r\n"), None);
        assert_eq!(max_startups(b"SSH-2.0-OpenSSH_9.2p1\r\n"), None);
    }
}
