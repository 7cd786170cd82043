//! The dashboard's memory: a bounded ring of samples taken every few seconds
//! (read share and ramp step, shadow outcomes, mirror lag, statements/s,
//! reads/s, error rate and p95 per backend). 4,000 samples at the default
//! 5 s period keep five and a half hours, and at the fastest allowed period
//! (1 s) still more than an hour, in well under a megabyte.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::CLASSES;

pub const MAX_SAMPLES: usize = 4000;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SideSample {
    pub reads_per_s: f64,
    /// Errors per answered read, 0–1.
    pub error_ratio: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Unix time, seconds.
    pub t: u64,
    pub phase: &'static str,
    pub read_share_percent: f64,
    pub ramp_position: usize,
    pub ramp_paused: bool,
    pub shadow_match_per_min: f64,
    pub shadow_mismatch_per_min: f64,
    pub shadow_transient_per_min: f64,
    pub mirror_lag_ms: Option<f64>,
    pub mirror_queue: Option<i64>,
    pub statements_per_s: f64,
    pub old: SideSample,
    pub new: SideSample,
}

#[derive(Default)]
pub struct Timeline {
    samples: Mutex<VecDeque<Sample>>,
}

impl Timeline {
    fn push(&self, s: Sample) {
        let mut q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= MAX_SAMPLES {
            q.pop_front();
        }
        q.push_back(s);
    }

    /// Samples newer than `since` (unix seconds), oldest first.
    pub fn since(&self, since: u64) -> Vec<Sample> {
        let q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().filter(|s| s.t > since).cloned().collect()
    }

    pub fn latest(&self) -> Option<Sample> {
        let q = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        q.back().cloned()
    }
}

#[derive(Clone, Default)]
struct Raw {
    statements: u64,
    matched: u64,
    mismatched: u64,
    transient: u64,
    sides: [(u64, u64, Vec<u64>, u64); 2],
}

fn raw<S: super::Handles>(state: &S) -> Raw {
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let sh = &state.shadow().stats;
    let side = |s: &super::SideReads| {
        let (cum, n) = s.latency_counts();
        (s.answered.get(), s.errors.get(), cum, n)
    };
    Raw {
        statements: CLASSES.iter().map(|c| state.metrics().statements(*c)).sum(),
        matched: l(&sh.matched),
        mismatched: l(&sh.mismatched),
        transient: l(&sh.transient),
        sides: [
            side(&state.cockpit().old_reads),
            side(&state.cockpit().new_reads),
        ],
    }
}

fn side_sample(
    now: &(u64, u64, Vec<u64>, u64),
    before: &(u64, u64, Vec<u64>, u64),
    secs: f64,
) -> SideSample {
    let answered = now.0.saturating_sub(before.0);
    let errors = now.1.saturating_sub(before.1);
    let buckets = super::delta(&now.2, &before.2);
    SideSample {
        reads_per_s: answered as f64 / secs,
        error_ratio: if answered == 0 {
            0.0
        } else {
            errors as f64 / answered as f64
        },
        p95_ms: super::quantile_ms(&buckets, now.3.saturating_sub(before.3), 0.95),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Samples every `every` (at least one second) until `shutdown`.
pub async fn run<S: super::Handles>(state: Arc<S>, shutdown: CancellationToken, every: Duration) {
    let every = every.max(Duration::from_secs(1));
    let mut before = raw(&*state);
    let mut at = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let now = raw(&*state);
        let secs = at.elapsed().as_secs_f64().max(0.001);
        at = Instant::now();
        let snapshot = state.snapshot().load();
        let config = &snapshot.config;
        let (position, paused) = {
            let v = state.cockpit().ramp.view(config.reads.ramp.as_ref());
            (v.position, v.paused.is_some())
        };
        let mirror = state.mirror().load_full();
        let per_min = |a: u64, b: u64| a.saturating_sub(b) as f64 * 60.0 / secs;
        state.cockpit().timeline.push(Sample {
            t: unix_now(),
            phase: config.phase.as_str(),
            read_share_percent: state.cockpit().read_share(config),
            ramp_position: position,
            ramp_paused: paused,
            shadow_match_per_min: per_min(now.matched, before.matched),
            shadow_mismatch_per_min: per_min(now.mismatched, before.mismatched),
            shadow_transient_per_min: per_min(now.transient, before.transient),
            mirror_lag_ms: mirror
                .as_ref()
                .map(|m| m.stats.last_lag_us.load(Ordering::Relaxed) as f64 / 1000.0),
            mirror_queue: mirror
                .as_ref()
                .map(|m| m.stats.queued.load(Ordering::Relaxed)),
            statements_per_s: now.statements.saturating_sub(before.statements) as f64 / secs,
            old: side_sample(&now.sides[0], &before.sides[0], secs),
            new: side_sample(&now.sides[1], &before.sides[1], secs),
        });
        before = now;
    }
}
