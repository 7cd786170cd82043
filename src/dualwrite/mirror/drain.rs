//! The applier's life: apply units in order until the queue closes, and at
//! shutdown drain what is queued within the shutdown bound. Whatever the
//! bound does not cover is written to the drift log (kind `shutdown`), so no
//! write the primary acknowledged leaves the process without a trace: it is
//! on the secondary, or it is drift.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Applier, Unit};
use crate::background::StopSignal;
use crate::dualwrite::drift::DriftKind;

/// How long the drift log gets to reach the disk once the mirror stopped.
const FLUSH_BOUND: Duration = Duration::from_secs(2);

impl Applier {
    /// Runs until every sender is gone (a retired mirror, after a reload),
    /// or until shutdown, which drains the queue within its bound.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Unit>, stop: StopSignal) {
        loop {
            let unit = tokio::select! {
                biased;
                _ = stop.stopped() => break,
                u = rx.recv() => u,
            };
            let Some(mut unit) = unit else {
                self.finish_run().await;
                return;
            };
            // An apply still running when shutdown began is held to the
            // same bound as the queue behind it.
            let applied = tokio::select! {
                _ = self.apply(&mut unit) => true,
                _ = stop.past_deadline() => false,
            };
            if !applied {
                self.interrupted(&unit);
            }
            // Counted down only once applied: 0 means the secondary caught up.
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        self.drain(rx, &stop).await;
        self.finish_run().await;
    }

    /// Shutdown: no new units; the queued ones are applied in order while
    /// the bound lasts, the rest recorded as drift.
    async fn drain(&mut self, mut rx: mpsc::Receiver<Unit>, stop: &StopSignal) {
        rx.close();
        let left = rx.len();
        if left > 0 {
            tracing::info!(units = left, "shutting down: applying the mirror's queue");
        }
        let mut unapplied = 0usize;
        while let Some(mut unit) = rx.recv().await {
            let in_time = stop
                .deadline()
                .is_none_or(|d| tokio::time::Instant::now() < d);
            if in_time {
                let applied = tokio::select! {
                    _ = self.apply(&mut unit) => true,
                    _ = stop.past_deadline() => false,
                };
                if !applied {
                    self.interrupted(&unit);
                    unapplied += 1;
                }
            } else {
                self.never_applied(unit);
                unapplied += 1;
            }
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        if unapplied > 0 {
            tracing::warn!(
                units = unapplied,
                "shutdown bound reached: mirrored writes not applied are in the drift log"
            );
        }
    }

    /// The end of the applier: held foreign keys are drift, and the drift
    /// log is on disk before the task reports done.
    async fn finish_run(&mut self) {
        for (statement, error) in self.fks.never_applied() {
            self.record(0, DriftKind::ForeignKeyHeld, statement, None, error);
        }
        if !self.drift.flush(FLUSH_BOUND).await {
            tracing::warn!("the drift log did not reach the disk within the shutdown bound");
        }
    }

    /// A unit abandoned mid-apply when the bound ran out.
    fn interrupted(&self, unit: &Unit) {
        self.stats.applied.fetch_add(1, Ordering::Relaxed);
        self.record(
            unit.session,
            DriftKind::Shutdown,
            unit.statements.join(";\n"),
            None,
            "being applied when the shutdown bound ran out: the secondary may or may not have it"
                .into(),
        );
    }

    /// A queued unit the bound did not reach.
    fn never_applied(&self, unit: Unit) {
        unit.in_flight.done.fetch_add(1, Ordering::Relaxed);
        self.record(
            unit.session,
            DriftKind::Shutdown,
            unit.statements.join(";\n"),
            None,
            "still queued when the shutdown bound ran out: not applied on the secondary".into(),
        );
        // A sync-mode session waiting on it sees its answer dropped, not an
        // "applied".
        drop(unit.done);
        self.finish(unit.enqueued, None);
    }
}
