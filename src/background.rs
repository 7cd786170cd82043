//! Owned background work: every long-lived task the proxy starts beside its
//! sessions (the mirror's applier, the shadow comparers, log writers) is
//! spawned here, so shutdown can tell them to stop, give them a bound, and
//! wait for them — nothing is a bare `tokio::spawn` that the process simply
//! abandons at exit (mini-redis `server.rs` keeps the same discipline).
//!
//! Shutdown is two facts handed to every task through a [`StopSignal`]: *stop
//! now* (finish what is queued, accept nothing new) and *the deadline* by
//! which the work must be done. What a task cannot finish by the deadline it
//! records (the mirror: as drift) instead of dropping it silently.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Time past the deadline tasks get to write down what they left undone.
const RECORD_SLACK: Duration = Duration::from_secs(2);

/// The set of background tasks of one proxy (one per `AppState`).
#[derive(Default)]
pub struct Background {
    tracker: TaskTracker,
    signal: StopSignal,
}

/// What a background task watches to know it must stop, and by when.
#[derive(Clone, Default)]
pub struct StopSignal {
    token: CancellationToken,
    deadline: Arc<OnceLock<Instant>>,
}

impl StopSignal {
    /// Resolves once shutdown began.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The instant by which a stopping task must be done (`None` before
    /// shutdown began).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.get().copied()
    }

    /// Resolves once shutdown began *and* its deadline passed: pending
    /// forever in normal operation.
    pub async fn past_deadline(&self) {
        self.stopped().await;
        if let Some(d) = self.deadline() {
            tokio::time::sleep_until(d).await;
        }
    }
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// The signal a task started here watches.
    pub fn signal(&self) -> StopSignal {
        self.signal.clone()
    }

    /// Starts `task` as owned work: shutdown waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Tells every task to stop by `deadline` and waits for them (a little
    /// past it, so they can record what they left). True when all ended.
    pub async fn shutdown(&self, deadline: Instant) -> bool {
        let _ = self.signal.deadline.set(deadline);
        self.signal.token.cancel();
        self.tracker.close();
        let ended = tokio::time::timeout_at(deadline + RECORD_SLACK, self.tracker.wait())
            .await
            .is_ok();
        if !ended {
            tracing::warn!(
                tasks = self.tracker.len(),
                "background tasks still running after the shutdown bound"
            );
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_tasks_and_hands_them_the_deadline() {
        let bg = Background::new();
        let signal = bg.signal();
        let (tx, rx) = tokio::sync::oneshot::channel();
        bg.spawn(async move {
            signal.stopped().await;
            // The deadline is known once stopping.
            let _ = tx.send(signal.deadline().is_some());
            signal.past_deadline().await;
        });
        assert_eq!(bg.len(), 1);
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(bg.shutdown(deadline).await);
        assert!(rx.await.unwrap());
        assert!(Instant::now() >= deadline);
        assert!(bg.is_empty());
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_signal_does_not_hang_shutdown() {
        let bg = Background::new();
        bg.spawn(std::future::pending());
        let start = Instant::now();
        assert!(!bg.shutdown(Instant::now()).await);
        assert!(start.elapsed() < RECORD_SLACK + Duration::from_secs(1));
    }
}
