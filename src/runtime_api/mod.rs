//! The container runtimes' own APIs, reached over the host's SSH connection: containerd's CRI
//! image service (gRPC, [`cri`]) and the docker Engine API (HTTP, [`docker`]), each on its unix
//! socket through a direct-streamlocal channel ([`channel`]). Nothing runs on the host (no
//! CLI start, no crictl, no curl, no listener), and credentials travel in the request (the
//! CRI's `AuthConfig`, docker's `X-Registry-Auth`), never on a command line or a disk.
//!
//! sshd opens the socket as the login user: a sudo user outside the docker group (or any
//! non-root user, for containerd's root-only socket) gets [`ApiError::Unreachable`], and the
//! caller falls back to running the runtime's commands as root.

pub mod channel;
pub mod cri;
pub mod docker;

/// A registry credential, sent in the request (as kubelet sends an image pull secret).
#[derive(Clone, Copy)]
pub struct Auth<'a> {
    pub username: &'a str,
    pub password: &'a str,
    /// The registry it is for, `host[:port]`.
    pub registry: &'a str,
}

/// Why a call to a runtime's API did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The socket could not be opened over SSH: the caller falls back to commands.
    #[error(
        "sshd on {host} could not open {socket} for {user} ({reason}): the login user needs \
         access to the socket (root, or the docker group for docker.sock), and sshd must allow \
         it (AllowStreamLocalForwarding, on by default)"
    )]
    Unreachable {
        host: String,
        socket: String,
        user: String,
        reason: String,
    },
    /// The socket opened but the runtime does not serve this API there (the CRI plugin off).
    #[error("{host}: {socket} does not serve {api}: {reason}")]
    NotServed {
        host: String,
        socket: String,
        api: &'static str,
        reason: String,
    },
    /// The runtime answered with an error, or the exchange broke off.
    #[error("{host}: {call}: {reason}")]
    Failed {
        host: String,
        call: String,
        reason: String,
    },
}

impl ApiError {
    /// The caller should do the same with commands instead.
    pub fn falls_back(&self) -> bool {
        matches!(self, ApiError::Unreachable { .. })
    }
}
