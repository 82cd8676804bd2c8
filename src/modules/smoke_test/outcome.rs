//! How the smoke test reads a push's or pull's outcome, whichever way it went (commands in
//! `run.rs`, the runtimes' APIs in `api_pull.rs`): the digest, retries while a resolver still
//! caches /etc/hosts, and the failure's words.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;

use crate::inventory::SMOKE_USER;

/// The digest of `repo` in `docker image inspect`'s RepoDigests output.
pub(super) fn digest_of(out: &str, repo: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix(repo)?.strip_prefix('@'))
        .map(str::to_string)
        .next()
}

/// dockerd's Go resolver caches /etc/hosts for about 5 s, so right after apply writes the hosts
/// block a push or pull may still say "no such host". Such failures are retried for up to
/// ~10 s; any other failure is returned at once.
pub(super) async fn retry_name_lookup<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(e) if tries < 10 && format!("{e:#}").contains("no such host") => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            result => return result,
        }
    }
}

/// Why a push or pull failed; a refused login most likely means the registry hosts do not
/// have the smoke user yet (its password was made by an apply that has not reached them).
pub(super) fn failure(e: &anyhow::Error) -> String {
    let why = format!("{e:#}");
    if why.to_ascii_lowercase().contains("unauthorized") {
        format!(
            "{why} (the smoke test logs in as {SMOKE_USER}, whose password is in the state \
             directory: run `regboot apply` so every registry host has it)"
        )
    } else {
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_read_for_the_right_repository() {
        let out = "other/x@sha256:aa\nreg.lab:5000/regboot-smoke@sha256:bb\n";
        assert_eq!(
            digest_of(out, "reg.lab:5000/regboot-smoke").as_deref(),
            Some("sha256:bb")
        );
        assert_eq!(digest_of(out, "reg.lab:5000/none"), None);
    }

    #[test]
    fn a_refused_login_says_to_run_apply() {
        let refused = anyhow::anyhow!("login attempt failed with status: 401 Unauthorized");
        assert!(failure(&refused).contains("run `regboot apply`"));
        let other = anyhow::anyhow!("connection refused");
        assert_eq!(failure(&other), "connection refused");
    }
}
