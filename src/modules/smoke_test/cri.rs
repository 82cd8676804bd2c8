//! The smoke test's pull through containerd's CRI image service, the path kubelet takes: the
//! CRI plugin's own registry configuration (its `config_path` and the hosts.toml regboot
//! places there) decides trust, and the smoke credential travels in the request's
//! `AuthConfig`. No crictl is needed on the host: the call goes over the SSH connection to
//! containerd's socket ([`crate::runtime_api::cri`]).

use std::time::Instant;

use crate::engine::report::SmokeHost;
use crate::runtime_api::ApiError;
use crate::runtime_api::cri::{Auth, CONTAINERD_SOCKET, Cri};
use crate::smoke::{SmokeTarget, digest_of, failure, retry_name_lookup};

/// The report's action for a CRI pull.
pub(crate) const ACTION: &str = "cri pull";

/// Pull the smoke image on `h` through the CRI (args: reference, image, user; `pw`: the
/// password's line), compare its digest with the pushed one and remove it. `None` when the CRI
/// cannot be reached (the login user may not open containerd's socket, or the CRI plugin is
/// not serving): said once in -v, and the caller pulls with ctr instead.
pub(crate) async fn pull(
    h: &SmokeTarget<'_>,
    args: &[&str; 3],
    pw: &[u8],
    repo: &str,
    digest: &str,
) -> Option<SmokeHost> {
    let start = Instant::now();
    let [reference, image, user] = *args;
    let password = String::from_utf8_lossy(pw);
    let auth = || {
        (!user.is_empty()).then(|| Auth {
            username: user,
            password: password.trim_end_matches('\n'),
            registry: reference,
        })
    };
    let session = &h.remote.session;
    let pulled = async {
        let mut cri = Cri::connect(session, CONTAINERD_SOCKET).await?;
        // What an interrupted run left: the repository's tags (each run's tag is new).
        for tag in cri.tags_of(repo).await? {
            cri.remove(&tag).await?;
        }
        let pulled = retry_name_lookup(|| {
            let mut cri = cri.clone();
            let auth = auth();
            async move { cri.pull(image, auth).await.map_err(anyhow::Error::from) }
        })
        .await;
        let digests = match pulled {
            Ok(_) => cri.repo_digests(image).await,
            Err(e) => return Ok(Err(failure(&e))),
        };
        let removed = cri.remove(image).await;
        let outcome = match digests? {
            None => Err("pulled, but the CRI does not list the image".to_string()),
            Some(d) => Ok(digest_of(&d.join("\n"), repo)),
        };
        removed?;
        Ok::<_, ApiError>(outcome)
    }
    .await;
    let (ok, detail) = match pulled {
        Err(e @ (ApiError::Unreachable { .. } | ApiError::NotServed { .. })) => {
            tracing::info!("{}: no CRI pull, ctr pulls instead: {e}", h.name);
            return None;
        }
        Err(e) => (false, failure(&e.into())),
        Ok(Err(why)) => (false, why),
        Ok(Ok(Some(d))) if d == digest => (true, format!("pulled, digest matches ({d})")),
        Ok(Ok(Some(d))) => (
            false,
            format!("pulled digest {d} differs from pushed {digest}"),
        ),
        Ok(Ok(None)) => (
            false,
            format!("pulled, but the CRI lists no digest of {repo}"),
        ),
    };
    Some(SmokeHost {
        host: h.name.to_string(),
        action: ACTION,
        ok,
        seconds: start.elapsed().as_secs_f64(),
        detail,
    })
}
