//! Many hosts at once: bounded parallelism (`--forks`), one shared [`Dialer`] so keys,
//! bastions and per-address handshake limits are shared, and one host's failure never stops
//! another's work.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Target;
use super::dial::Dialer;
use super::error::ConnectError;
use super::session::Session;

/// Connect to every target (at most `forks` at once) and run `work` on each session as soon
/// as it is up. Results come back in the order of `targets`.
pub async fn run_all<T, F, Fut>(
    targets: &[Target],
    forks: usize,
    work: F,
) -> Vec<(Target, Result<T, ConnectError>)>
where
    T: Send + 'static,
    F: Fn(Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send,
{
    let timed = run_timed(targets, forks, move |_, session| work(session)).await;
    timed.into_iter().map(|(t, r, _)| (t, r)).collect()
}

/// Like [`run_all`], with the time each host took once its turn came (a failed connection
/// too): that host's own time, not the run's. `work` also gets the target's index.
pub async fn run_timed<T, F, Fut>(
    targets: &[Target],
    forks: usize,
    work: F,
) -> Vec<(Target, Result<T, ConnectError>, Duration)>
where
    T: Send + 'static,
    F: Fn(usize, Session) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send,
{
    let dialer = Arc::new(Dialer::default());
    let forks = Arc::new(Semaphore::new(forks.max(1)));
    let work = Arc::new(work);
    // A task is spawned only once its turn comes, and joined as soon as it is done: a task's
    // memory is as large as its largest state (an SSH handshake's, several KB), so a fleet's
    // worth of them waiting (or done and not joined) would grow with the fleet, not `forks`.
    let mut set = JoinSet::new();
    let mut results = Vec::with_capacity(targets.len());
    for (i, target) in targets.iter().cloned().enumerate() {
        let slot = forks.clone().acquire_owned().await;
        while let Some(done) = set.try_join_next() {
            // As `join_all` does: a task's panic is this function's.
            results.push(done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())));
        }
        let (dialer, work) = (dialer.clone(), work.clone());
        set.spawn(async move {
            // The semaphore lives as long as this function and is never closed.
            let _slot = slot;
            let started = Instant::now();
            let result = match Session::connect_with(&dialer, &target).await {
                Ok(session) => Ok(work(i, session).await),
                Err(e) => Err(e),
            };
            (i, target, result, started.elapsed())
        });
    }
    results.extend(set.join_all().await);
    results.sort_by_key(|(i, ..)| *i);
    results
        .into_iter()
        .map(|(_, t, r, took)| (t, r, took))
        .collect()
}

/// Connect to every target, at most `forks` handshakes at once, and hand back the sessions.
pub async fn connect_all(
    targets: &[Target],
    forks: usize,
) -> Vec<(Target, Result<Session, ConnectError>)> {
    run_all(targets, forks, |session| async move { session }).await
}
