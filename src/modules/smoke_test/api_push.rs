//! The smoke test's push through dockerd's Engine API, over the SSH connection to its socket:
//! what an interrupted run left is removed, the image loaded, pushed (the credential in
//! `X-Registry-Auth`, never on a command line or a disk) and removed again, all on one
//! connection and with no docker CLI started on the host. Where the login user may not open
//! the socket (a sudo user outside the docker group), the push returns `None`, says so in -v,
//! and the caller runs `docker load` and `docker push` instead.

use anyhow::Result;

use super::api_pull::auth_of;
use super::outcome::retry_name_lookup;
use crate::runtime_api::Auth;
use crate::runtime_api::docker::Engine;
use crate::ssh::Session;

/// Push `tarball` (a `docker save` of the image) through dockerd's API on the host behind
/// `session` (args: reference, image, user; `pw`: the password's line); the pushed manifest's
/// digest. The image is gone from the host afterwards, whether the push succeeded or not.
pub(super) async fn push(
    session: &Session,
    tarball: &[u8],
    args: &[&str; 3],
    pw: &[u8],
) -> Option<Result<String>> {
    let engine = match Engine::connect(session).await {
        Ok(engine) => engine,
        Err(e) if e.falls_back() => {
            let host = &session.target().name;
            tracing::info!(
                "{host}: the smoke test runs `docker load` and `docker push` instead: {e}"
            );
            return None;
        }
        Err(e) => return Some(Err(e.into())),
    };
    let password = String::from_utf8_lossy(pw);
    Some(push_on(&engine, tarball, args[1], auth_of(args, &password)).await)
}

async fn push_on(
    engine: &Engine<'_>,
    tarball: &[u8],
    image: &str,
    auth: Option<Auth<'_>>,
) -> Result<String> {
    let repo = image.rsplit_once(':').map_or(image, |(repo, _)| repo);
    for tag in engine.tags_of(repo).await? {
        engine.remove(&tag).await?;
    }
    engine.load(tarball.to_vec()).await?;
    let pushed =
        retry_name_lookup(|| async { engine.push(image, auth).await.map_err(anyhow::Error::from) })
            .await;
    let removed = engine.remove(image).await;
    let digest = pushed?;
    removed?;
    Ok(digest)
}
