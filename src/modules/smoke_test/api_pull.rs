//! The smoke test's pulls through the runtimes' own APIs, over the SSH connection to their
//! sockets ([`crate::runtime_api`]), with no CLI started on the host:
//! - containerd's CRI image service, the path kubelet takes: the CRI plugin's own registry
//!   configuration (its `config_path` and the hosts.toml regboot places there) decides trust;
//!   no crictl is needed on the host;
//! - dockerd's Engine API, which reads certs.d and /etc/hosts as `docker pull` does.
//!
//! The smoke credential travels in the request (the CRI's `AuthConfig`, docker's
//! `X-Registry-Auth`), never on a command line or a disk. Where the API cannot be reached (the
//! login user may not open the socket, or the CRI plugin is not serving), the pull returns
//! `None`, says why in -v, and the caller runs the runtime's commands instead.

use super::outcome::{digest_of, failure, retry_name_lookup};
use crate::runtime_api::cri::{CONTAINERD_SOCKET, Cri};
use crate::runtime_api::docker::Engine;
use crate::runtime_api::{ApiError, Auth};
use crate::ssh::Session;

/// A runtime API the smoke test pulls through.
trait Api: Clone {
    /// Every tag of `repo` the runtime holds.
    async fn tags_of(&mut self, repo: &str) -> Result<Vec<String>, ApiError>;
    /// Pull `image` (a tag of `repo`); the manifest digest it reports for `repo`.
    async fn pull(
        &mut self,
        image: &str,
        repo: &str,
        auth: Option<Auth<'_>>,
    ) -> Result<Option<String>, ApiError>;
    /// Remove `image`; an absent one is no error.
    async fn remove(&mut self, image: &str) -> Result<(), ApiError>;
}

impl Api for Cri {
    async fn tags_of(&mut self, repo: &str) -> Result<Vec<String>, ApiError> {
        Cri::tags_of(self, repo).await
    }

    async fn pull(
        &mut self,
        image: &str,
        repo: &str,
        auth: Option<Auth<'_>>,
    ) -> Result<Option<String>, ApiError> {
        Cri::pull(self, image, auth).await?;
        let digests = self.repo_digests(image).await?.unwrap_or_default();
        Ok(digest_of(&digests.join("\n"), repo))
    }

    async fn remove(&mut self, image: &str) -> Result<(), ApiError> {
        Cri::remove(self, image).await
    }
}

/// dockerd's API on the host behind the session: one connection for the sweep, the pull and
/// the removal.
#[derive(Clone)]
struct Docker<'a>(Engine<'a>);

impl Api for Docker<'_> {
    async fn tags_of(&mut self, repo: &str) -> Result<Vec<String>, ApiError> {
        self.0.tags_of(repo).await
    }

    async fn pull(
        &mut self,
        image: &str,
        _repo: &str,
        auth: Option<Auth<'_>>,
    ) -> Result<Option<String>, ApiError> {
        self.0.pull(image, auth).await.map(Some)
    }

    async fn remove(&mut self, image: &str) -> Result<(), ApiError> {
        self.0.remove(image).await
    }
}

/// The API a pull goes through.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via {
    /// containerd's CRI image service; else `ctr pull`.
    Cri,
    /// dockerd's Engine API; else `docker pull`.
    Docker,
}

/// Pull the smoke image through `via` on the host behind `session` (args: reference, image,
/// user; `pw`: the password's line), compare its digest with the pushed one and remove it:
/// (ok, detail). `None`: the API cannot be reached (said in -v); the caller runs commands.
pub(super) async fn pull(
    session: &Session,
    via: Via,
    args: &[&str; 3],
    pw: &[u8],
    repo: &str,
    digest: &str,
) -> Option<(bool, String)> {
    let pulled = match via {
        Via::Cri => match Cri::connect(session, CONTAINERD_SOCKET).await {
            Ok(cri) => pull_through(cri, args, pw, repo).await,
            Err(e) => Err(e),
        },
        Via::Docker => match Engine::connect(session).await {
            Ok(engine) => pull_through(Docker(engine), args, pw, repo).await,
            Err(e) => Err(e),
        },
    };
    Some(match pulled {
        Err(e @ (ApiError::Unreachable { .. } | ApiError::NotServed { .. })) => {
            let instead = match via {
                Via::Cri => "ctr pull",
                Via::Docker => "docker pull",
            };
            let host = &session.target().name;
            tracing::info!("{host}: the smoke test runs `{instead}` instead: {e}");
            return None;
        }
        Err(e) => (false, failure(&e.into())),
        Ok(Err(why)) => (false, why),
        Ok(Ok(Some(d))) if d == digest => (true, format!("pulled, digest matches ({d})")),
        Ok(Ok(Some(d))) => (
            false,
            format!("pulled digest {d} differs from pushed {digest}"),
        ),
        Ok(Ok(None)) => (false, format!("pulled, but no digest of {repo} is listed")),
    })
}

/// What an interrupted run left goes first (the repository's tags: each run's tag is new),
/// then the pull, then the image. Inner `Err`: the pull failed, and why.
async fn pull_through(
    mut api: impl Api,
    args: &[&str; 3],
    pw: &[u8],
    repo: &str,
) -> Result<Result<Option<String>, String>, ApiError> {
    let image = args[1];
    let password = String::from_utf8_lossy(pw);
    let auth = auth_of(args, &password);
    for tag in api.tags_of(repo).await? {
        api.remove(&tag).await?;
    }
    let pulled = retry_name_lookup(|| {
        let mut api = api.clone();
        async move {
            api.pull(image, repo, auth)
                .await
                .map_err(anyhow::Error::from)
        }
    })
    .await;
    api.remove(image).await?;
    Ok(pulled.map_err(|e| failure(&e)))
}

/// The smoke credential for the API (args: reference, image, user; `password`: its line), or
/// none when the registry has no users.
pub(super) fn auth_of<'a>(args: &[&'a str; 3], password: &'a str) -> Option<Auth<'a>> {
    let [reference, _, user] = *args;
    (!user.is_empty()).then(|| Auth {
        username: user,
        password: password.trim_end_matches('\n'),
        registry: reference,
    })
}
