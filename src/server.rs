//! The accept loop: one session task per client over the shared `AppState`
//! (which lives in `crate::state`; re-exported here for the binaries).
//!
//! No process-global state: tests start many proxies in one process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
pub use crate::state::{mirror_for, AppState, Snapshot};

/// Serves clients until `shutdown` is cancelled, then waits up to the
/// configured shutdown timeout for running statements to finish.
pub async fn run(listener: TcpListener, state: Arc<AppState>, shutdown: CancellationToken) {
    run_on(listener, state, shutdown, None).await
}

/// Like `run`, with each session on one of `workers`' threads (see
/// `crate::workers`) instead of the caller's runtime.
pub async fn run_on(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
    workers: Option<&crate::workers::Workers>,
) {
    let limits = state.snapshot.load().config.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_clients as usize));
    let tracker = TaskTracker::new();
    // Sessions stop between statements when this fires; a second token lets
    // the hard deadline cut statements still running.
    let sessions_stop = shutdown.child_token();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        // A token of its own: a session waits on it between every two
        // statements, and waiting on one shared token would take that
        // token's lock from every session thread (a cache line bounced
        // between cores per statement).
        let stop = sessions_stop.child_token();
        let Some(home) = workers.and_then(|w| w.pick()) else {
            tracker.spawn(async move {
                crate::frontend::mysql::serve(stream, peer, state, stop).await;
                drop(permit);
            });
            continue;
        };
        // The socket moves to the session thread's own event loop.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand the connection to a session thread");
                continue;
            }
        };
        tracker.spawn_on(
            async move {
                match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => crate::frontend::mysql::serve(stream, peer, state, stop).await,
                    Err(e) => tracing::warn!(error = %e, "cannot register the connection"),
                }
                drop(permit);
            },
            home,
        );
    }
    drop(listener);
    tracker.close();
    let n = tracker.len();
    if n > 0 {
        tracing::info!(
            sessions = n,
            "shutting down: waiting for running statements"
        );
    }
    let grace = Duration::from_millis(limits.shutdown_timeout_ms);
    // One bound for the whole shutdown: sessions first, then the background
    // work (the mirror applies what is queued) in what is left of it.
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            sessions = tracker.len(),
            "shutdown timeout reached; closing remaining sessions"
        );
    }
    state.background.shutdown(deadline).await;
    state.old.close_idle().await;
}

/// Binds the configured address and returns the listener and its real address.
pub async fn bind(config: &Config) -> std::io::Result<(TcpListener, SocketAddr)> {
    let addr = config
        .listen_addr()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
