//! The operator's cockpit: what a person running a migration watches and
//! steers. A read ramp that moves the new backend's read share step by step
//! only on evidence (`ramp`, `decide`), a bounded in-process timeline of the
//! last hours (`timeline`), the dashboard page and JSON the admin listener
//! serves (`http`, `dashboard.html`), `tandem status` (`status`) and
//! `tandem plan` (`plan`).
//!
//! The counters here are per backend (the statement metrics in `metrics.rs`
//! are per class): the ramp's gates compare the two sides.
//!
//! The cockpit sits below the proxy state that holds it: it reads that state
//! through [`Handles`] (implemented by `crate::state::AppState`). The
//! per-statement latency it lists is filled by the shadow worker and lives in
//! `crate::shadow::statements`.

pub mod decide;
pub mod facts;
pub mod http;
pub mod metrics;
pub mod plan;
pub mod ramp;
pub mod status;
pub mod timeline;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Phase};
use crate::metrics::{Counter, Histogram, LATENCY_BUCKETS};

pub use crate::shadow::statements::quantile_ms;

/// Reads one backend answered: count, errors, latency.
#[derive(Default)]
pub struct SideReads {
    /// Reads answered (rows or an error).
    pub answered: Counter,
    /// Answered with an error, or failed mid-answer.
    pub errors: Counter,
    pub latency: Histogram,
    /// Reads slower than the last bucket (counted apart so a quantile never
    /// mistakes an observation still being recorded for a 30 s read).
    pub over_last_bucket: Counter,
}

impl SideReads {
    pub fn record(&self, took: Duration, error: bool) {
        self.answered.incr();
        if error {
            self.errors.incr();
        }
        self.latency.observe(took);
        if took.as_secs_f64() > LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1] {
            self.over_last_bucket.incr();
        }
    }

    /// Cumulative bucket counts and the number of reads they and the
    /// overflow hold: the inputs of `quantile_ms` (via `delta`).
    pub fn latency_counts(&self) -> (Vec<u64>, u64) {
        let over = self.over_last_bucket.get();
        let (cum, _, _) = self.latency.snapshot();
        let total = cum.last().copied().unwrap_or(0) + over;
        (cum, total)
    }
}

/// Per-backend reads, the ramp and the timeline; one per proxy (`AppState`).
#[derive(Default)]
pub struct Cockpit {
    pub old_reads: SideReads,
    pub new_reads: SideReads,
    pub ramp: ramp::RampState,
    pub timeline: timeline::Timeline,
    pub facts: facts::Facts,
    /// Both sides' latency per statement fingerprint (shadow comparisons).
    pub statements: std::sync::Arc<crate::shadow::statements::StatementLatency>,
}

impl Cockpit {
    /// The share of reads routed to the new backend: the ramp's in
    /// dual_write when `[reads.ramp]` is set, `[reads] new_percent` otherwise.
    pub fn read_share(&self, config: &Config) -> f64 {
        if config.phase == Phase::DualWrite && config.reads.ramp.is_some() {
            self.ramp.share()
        } else {
            config.reads.new_percent
        }
    }
}

/// How often the background tasks look.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Timeline sampling period.
    pub sample_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sample_every: Duration::from_secs(5),
        }
    }
}

/// The pieces of the proxy's state the cockpit reads (implemented by
/// `crate::state::AppState`, which sits above the cockpit and holds it).
pub trait Handles: Send + Sync + 'static {
    /// The live configuration.
    fn snapshot(&self) -> &arc_swap::ArcSwap<crate::snapshot::Snapshot>;
    /// The shadow comparisons (their counters feed the ramp and timeline).
    fn shadow(&self) -> &crate::shadow::Shadow;
    /// This proxy's cockpit.
    fn cockpit(&self) -> &Cockpit;
    /// The proxy's counters.
    fn metrics(&self) -> &crate::metrics::Metrics;
    /// The running statement mirror, if any.
    fn mirror(&self) -> &arc_swap::ArcSwapOption<crate::dualwrite::mirror::Mirror>;
    /// How many times the configuration was loaded.
    fn config_version(&self) -> u64;
    /// When the proxy started.
    fn started(&self) -> std::time::Instant;
}

/// Starts the ramp controller and the timeline sampler; both stop when
/// `shutdown` fires. Wait for them with the returned tracker.
pub fn start<S: Handles>(
    state: &Arc<S>,
    shutdown: CancellationToken,
    opts: Options,
) -> TaskTracker {
    let tracker = TaskTracker::new();
    tracker.spawn(ramp::run(Arc::clone(state), shutdown.clone()));
    tracker.spawn(timeline::run(
        Arc::clone(state),
        shutdown,
        opts.sample_every,
    ));
    tracker.close();
    tracker
}

/// Bucket-wise `now - before` of two cumulative snapshots.
pub fn delta(now: &[u64], before: &[u64]) -> Vec<u64> {
    now.iter()
        .enumerate()
        .map(|(i, v)| v.saturating_sub(before.get(i).copied().unwrap_or(0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let h = Histogram::default();
        assert_eq!(
            {
                let (c, _, n) = h.snapshot();
                quantile_ms(&c, n, 0.95)
            },
            None
        );
        for _ in 0..100 {
            h.observe(Duration::from_micros(700)); // (0.5, 1] ms
        }
        let (c, _, n) = h.snapshot();
        let p = quantile_ms(&c, n, 0.95).unwrap();
        assert!(p > 0.5 && p <= 1.0, "{p}");
        for _ in 0..100 {
            h.observe(Duration::from_millis(40)); // (25, 50] ms
        }
        let (c2, _, n2) = h.snapshot();
        let p = quantile_ms(&c2, n2, 0.95).unwrap();
        assert!(p > 25.0 && p <= 50.0, "{p}");
        // Only the second hundred in the delta.
        let d = delta(&c2, &c);
        let p50 = quantile_ms(&d, n2 - n, 0.5).unwrap();
        assert!(p50 > 25.0, "{p50}");
        h.observe(Duration::from_secs(60));
        let (c3, _, n3) = h.snapshot();
        assert_eq!(quantile_ms(&c3, n3, 1.0), Some(30_000.0));
    }

    #[test]
    fn side_counts_include_reads_over_the_last_bucket_only() {
        let s = SideReads::default();
        assert_eq!(s.latency_counts().1, 0);
        s.record(Duration::from_millis(1), false);
        s.record(Duration::from_secs(60), true);
        let (cum, total) = s.latency_counts();
        assert_eq!(total, 2);
        assert_eq!(quantile_ms(&cum, total, 1.0), Some(30_000.0));
        assert!(quantile_ms(&cum, total, 0.5).unwrap() <= 1.0);
        assert_eq!(s.errors.get(), 1);
    }
}
