//! The read ramp controller: an owned background task that gathers what
//! happened since the current step began (shadow outcomes, reads and errors
//! per backend, the new side's latency), asks `decide` what to do, and moves
//! the share the read path routes by (`RampState::share`, a runtime value;
//! the config file is never rewritten).
//!
//! A hand edit of `[reads] new_percent` (hot reload) wins: the share becomes
//! that value and the ramp pauses until `tandem ramp resume`, which restarts
//! from the highest step not above the current share. Every move is logged
//! with the numbers behind it and kept in a bounded history.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Phase;
use crate::dualwrite::drift::now_rfc3339;

use super::decide::{decide, position_for, share_at, Action, Decision, Window};
use crate::config::ramp::RampConfig;

/// Moves kept for `/ramp` and the dashboard.
pub const HISTORY: usize = 256;

#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub at: String,
    pub from_percent: f64,
    pub to_percent: f64,
    /// advance, step_back, pause, resume, manual.
    pub kind: &'static str,
    pub reason: String,
    pub window: Option<Window>,
    pub decision: Option<Decision>,
}

#[derive(Default)]
struct Inner {
    position: usize,
    paused: Option<String>,
    history: VecDeque<Move>,
    last: Option<Decision>,
    last_window: Option<Window>,
    /// Bumped by every move: the controller restarts its window.
    generation: u64,
}

/// The ramp's runtime state, shared by the controller, the read path and the
/// admin endpoints.
#[derive(Default)]
pub struct RampState {
    share_bits: AtomicU64,
    inner: Mutex<Inner>,
}

/// What `/ramp` answers.
#[derive(Debug, Clone, Serialize)]
pub struct RampView {
    pub configured: bool,
    pub share_percent: f64,
    pub position: usize,
    pub steps: Vec<f64>,
    pub paused: Option<String>,
    pub hold_s: f64,
    pub window: Option<Window>,
    pub last_decision: Option<Decision>,
    pub history: Vec<Move>,
}

impl RampState {
    /// The read share (percent) the ramp set.
    pub fn share(&self) -> f64 {
        f64::from_bits(self.share_bits.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding it leaves plain data: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, inner: &mut Inner, m: Move) {
        match m.kind {
            "step_back" | "manual" | "pause" => tracing::warn!(
                from = m.from_percent, to = m.to_percent, kind = m.kind,
                window = ?m.window, "read ramp: {}", m.reason
            ),
            _ => tracing::info!(
                from = m.from_percent, to = m.to_percent, kind = m.kind,
                window = ?m.window, "read ramp: {}", m.reason
            ),
        }
        if inner.history.len() >= HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(m);
        inner.generation += 1;
    }

    fn set_share(&self, share: f64) {
        self.share_bits.store(share.to_bits(), Ordering::Relaxed);
    }

    /// Stops the ramp where it is (`tandem ramp pause`).
    pub fn pause(&self, reason: &str) -> bool {
        let mut inner = self.lock();
        if inner.paused.is_some() {
            return false;
        }
        inner.paused = Some(reason.to_string());
        let share = self.share();
        self.record(&mut inner, moved("pause", share, share, reason.to_string()));
        true
    }

    /// Continues from the highest step not above the current share.
    pub fn resume(&self, cfg: &RampConfig) -> bool {
        let mut inner = self.lock();
        if inner.paused.take().is_none() {
            return false;
        }
        let from = self.share();
        inner.position = position_for(cfg, from);
        let to = share_at(cfg, inner.position);
        self.set_share(to);
        let reason = format!("resumed at step {} ({to}%)", inner.position);
        self.record(&mut inner, moved("resume", from, to, reason));
        true
    }

    /// A hand-set `new_percent`: route by it and pause.
    fn manual(&self, percent: f64) {
        let mut inner = self.lock();
        let from = self.share();
        self.set_share(percent);
        let reason = format!(
            "[reads] new_percent edited to {percent}: ramp paused (tandem ramp resume continues from the highest step not above it)"
        );
        inner.paused = Some("manual new_percent edit".into());
        self.record(&mut inner, moved("manual", from, percent, reason));
    }

    fn apply(&self, cfg: &RampConfig, w: Window, d: Decision) {
        let mut inner = self.lock();
        inner.last_window = Some(w);
        let from = self.share();
        let to = share_at(cfg, d.to);
        let kind = match d.action {
            Action::Advance => "advance",
            Action::StepBack => "step_back",
            _ => {
                inner.last = Some(d);
                return;
            }
        };
        let failed: Vec<String> = d
            .gates
            .iter()
            .filter(|g| g.verdict == super::decide::Verdict::Fail)
            .map(|g| {
                format!(
                    "{} {:.4} > {} over {} reads",
                    g.name, g.value, g.limit, g.samples
                )
            })
            .collect();
        let reason = if kind == "advance" {
            format!(
                "every gate passed for {:.0}s ({} compared, {} mismatches, {} routed, {} failed)",
                w.elapsed_s, w.compared, w.mismatches, w.routed, w.new_failures
            )
        } else {
            format!("gate failed: {}", failed.join("; "))
        };
        inner.position = d.to;
        self.set_share(to);
        if from == to {
            // Failing at 0 %: nothing to step back from. Start a new window
            // (the evidence must build up again before an advance) without
            // filling the history with non-moves.
            tracing::warn!(window = ?w, "read ramp held at 0%: {reason}");
            inner.last = Some(d);
            inner.generation += 1;
            return;
        }
        let mut m = moved(kind, from, to, reason);
        m.window = Some(w);
        m.decision = Some(d.clone());
        inner.last = Some(d);
        self.record(&mut inner, m);
    }

    pub fn view(&self, cfg: Option<&RampConfig>) -> RampView {
        let inner = self.lock();
        RampView {
            configured: cfg.is_some(),
            share_percent: self.share(),
            position: inner.position,
            steps: cfg.map(|c| c.steps.clone()).unwrap_or_default(),
            paused: inner.paused.clone(),
            hold_s: cfg.map_or(0.0, |c| c.hold().as_secs_f64()),
            window: inner.last_window,
            last_decision: inner.last.clone(),
            history: inner.history.iter().cloned().collect(),
        }
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn position(&self) -> (usize, bool) {
        let inner = self.lock();
        (inner.position, inner.paused.is_some())
    }
}

fn moved(kind: &'static str, from: f64, to: f64, reason: String) -> Move {
    Move {
        at: now_rfc3339(),
        from_percent: from,
        to_percent: to,
        kind,
        reason,
        window: None,
        decision: None,
    }
}

/// Cumulative counters the window is the difference of.
#[derive(Clone, Default)]
struct Counters {
    compared: u64,
    mismatches: u64,
    new_answered: u64,
    new_errors: u64,
    fallback: u64,
    old_answered: u64,
    old_errors: u64,
    new_latency: Vec<u64>,
    new_latency_count: u64,
}

impl Counters {
    fn read<S: super::Handles>(state: &S) -> Self {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sh = &state.shadow().stats;
        let c = state.cockpit();
        let (new_latency, new_latency_count) = c.new_reads.latency_counts();
        Self {
            compared: l(&sh.matched) + l(&sh.mismatched) + l(&sh.transient),
            mismatches: l(&sh.mismatched),
            new_answered: c.new_reads.answered.get(),
            new_errors: c.new_reads.errors.get(),
            fallback: l(&state.metrics().reads_fallback),
            old_answered: c.old_reads.answered.get(),
            old_errors: c.old_reads.errors.get(),
            new_latency,
            new_latency_count,
        }
    }

    fn window_since(&self, before: &Counters, elapsed: Duration) -> Window {
        let fallback = self.fallback.saturating_sub(before.fallback);
        let answered = self.new_answered.saturating_sub(before.new_answered);
        let count = self
            .new_latency_count
            .saturating_sub(before.new_latency_count);
        let buckets = super::delta(&self.new_latency, &before.new_latency);
        Window {
            elapsed_s: elapsed.as_secs_f64(),
            compared: self.compared.saturating_sub(before.compared),
            mismatches: self.mismatches.saturating_sub(before.mismatches),
            routed: answered + fallback,
            new_failures: self.new_errors.saturating_sub(before.new_errors) + fallback,
            old_reads: self.old_answered.saturating_sub(before.old_answered),
            old_errors: self.old_errors.saturating_sub(before.old_errors),
            new_p95_ms: super::quantile_ms(&buckets, count, 0.95),
            new_answered: answered,
        }
    }
}

/// The controller loop. Ticks ten times per hold (between 50 ms and 1 s).
pub async fn run<S: super::Handles>(state: Arc<S>, shutdown: CancellationToken) {
    let ramp = &state.cockpit().ramp;
    let mut manual = state.snapshot().load().config.reads.new_percent;
    let mut baseline = Counters::read(&*state);
    let mut started = Instant::now();
    let mut generation = ramp.generation();
    loop {
        let snapshot = state.snapshot().load_full();
        let config = &snapshot.config;
        let tick = config
            .reads
            .ramp
            .as_ref()
            .map_or(Duration::from_secs(1), |r| {
                (r.hold() / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
            });
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(tick) => {}
        }
        let Some(cfg) = config.reads.ramp.as_ref() else {
            manual = config.reads.new_percent;
            continue;
        };
        if config.reads.new_percent != manual {
            manual = config.reads.new_percent;
            ramp.manual(manual);
        }
        let now = Counters::read(&*state);
        let (position, paused) = ramp.position();
        if paused || config.phase != Phase::DualWrite || ramp.generation() != generation {
            generation = ramp.generation();
            baseline = now;
            started = Instant::now();
            continue;
        }
        let window = now.window_since(&baseline, started.elapsed());
        let decision = decide(cfg, position, &window);
        ramp.apply(cfg, window, decision);
    }
}
