//! The read ramp's decision: a pure function of the ramp settings, the
//! current step and what was measured since the step began. It opens no
//! socket and reads no clock, so every case is unit-tested below; the
//! controller (`ramp.rs`) only gathers the window and carries out the answer.
//!
//! Rules, in order:
//! 1. A gate that fails moves the share back at once (no need to wait for the
//!    hold to end: bad evidence is acted on within the window it appears in).
//!    A rate is judged against `max(samples, min_samples)` reads, so a single
//!    early mismatch only fails the gate if it would still exceed the limit
//!    over `min_samples` reads: few samples can prove a failure, not a pass.
//! 2. Before the hold has elapsed, hold.
//! 3. After it, advance only if every gate that applies passed on enough
//!    data; otherwise keep holding (insufficient data).
//!
//! At 0 % nothing is routed, so only the shadow-mismatch gate applies and
//! must pass. Above 0 % the routed-read gates (errors, p95) must pass and the
//! mismatch gate must not fail (at high shares few reads are left to shadow).

use serde::Serialize;

use crate::config::ramp::{RampConfig, StepBack};

/// What happened since the current step began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Window {
    pub elapsed_s: f64,
    /// Shadow comparisons that completed (match, mismatch, transient).
    pub compared: u64,
    pub mismatches: u64,
    /// Reads routed to the new backend: answered, failed or fallen back.
    pub routed: u64,
    /// Of those, the ones that failed there or fell back to the old side.
    pub new_failures: u64,
    /// Reads the old backend answered, and how many with an error.
    pub old_reads: u64,
    pub old_errors: u64,
    /// p95 of reads the new backend answered, and over how many.
    pub new_p95_ms: Option<f64>,
    pub new_answered: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Insufficient,
    /// Does not apply at this step or is switched off.
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub name: &'static str,
    pub value: f64,
    pub limit: f64,
    pub samples: u64,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Inside the hold window, all gates fine so far.
    Hold,
    /// The hold elapsed without enough data to judge.
    WaitData,
    Advance,
    /// A gate failed: move to `to` (may equal the current step at 0 %, which
    /// restarts the window).
    StepBack,
    /// At the last step with every gate passing: nothing left to do.
    Complete,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub action: Action,
    /// Step index after the decision (0 = 0 %, k = `steps[k-1]`).
    pub to: usize,
    pub gates: Vec<Gate>,
}

/// Read share at step index `pos` (0 = 0 %).
pub fn share_at(cfg: &RampConfig, pos: usize) -> f64 {
    pos.checked_sub(1)
        .and_then(|i| cfg.steps.get(i))
        .copied()
        .unwrap_or(0.0)
}

/// The highest step index whose share is at most `share` (where resuming
/// from a hand-set share starts).
pub fn position_for(cfg: &RampConfig, share: f64) -> usize {
    cfg.steps.iter().take_while(|s| **s <= share).count()
}

pub fn decide(cfg: &RampConfig, pos: usize, w: &Window) -> Decision {
    let pos = pos.min(cfg.steps.len());
    let routed_gates = share_at(cfg, pos) > 0.0;
    let floor = cfg.min_samples.max(1);
    let gates = vec![
        mismatch_gate(cfg, w, floor),
        error_gate(cfg, w, floor, routed_gates),
        p95_gate(cfg, w, floor, routed_gates),
    ];
    let failed = gates.iter().any(|g| g.verdict == Verdict::Fail);
    let decision = |action, to| Decision {
        action,
        to,
        gates: gates.clone(),
    };
    if failed {
        let to = match cfg.step_back {
            StepBack::Previous => pos.saturating_sub(1),
            StepBack::Zero => 0,
        };
        return decision(Action::StepBack, to);
    }
    if w.elapsed_s < cfg.hold().as_secs_f64() {
        return decision(Action::Hold, pos);
    }
    let enough = if routed_gates {
        gates
            .iter()
            .skip(1)
            .all(|g| matches!(g.verdict, Verdict::Pass | Verdict::Off))
    } else {
        gates[0].verdict == Verdict::Pass
    };
    if !enough {
        return decision(Action::WaitData, pos);
    }
    if pos >= cfg.steps.len() {
        return decision(Action::Complete, pos);
    }
    decision(Action::Advance, pos + 1)
}

fn mismatch_gate(cfg: &RampConfig, w: &Window, floor: u64) -> Gate {
    let rate = w.mismatches as f64 / w.compared.max(floor) as f64;
    let verdict = if rate > cfg.max_mismatch_rate {
        Verdict::Fail
    } else if w.compared >= floor {
        Verdict::Pass
    } else {
        Verdict::Insufficient
    };
    Gate {
        name: "max_mismatch_rate",
        value: w.mismatches as f64 / w.compared.max(1) as f64,
        limit: cfg.max_mismatch_rate,
        samples: w.compared,
        verdict,
    }
}

fn error_gate(cfg: &RampConfig, w: &Window, floor: u64, applies: bool) -> Gate {
    let old_rate = w.old_errors as f64 / w.old_reads.max(1) as f64;
    let bound = w.new_failures as f64 / w.routed.max(floor) as f64 - old_rate;
    let verdict = if !applies {
        Verdict::Off
    } else if bound > cfg.max_error_rate_increase {
        Verdict::Fail
    } else if w.routed >= floor {
        Verdict::Pass
    } else {
        Verdict::Insufficient
    };
    Gate {
        name: "max_error_rate_increase",
        value: w.new_failures as f64 / w.routed.max(1) as f64 - old_rate,
        limit: cfg.max_error_rate_increase,
        samples: w.routed,
        verdict,
    }
}

fn p95_gate(cfg: &RampConfig, w: &Window, floor: u64, applies: bool) -> Gate {
    let verdict = match w.new_p95_ms {
        _ if !applies || cfg.max_p95_ms <= 0.0 => Verdict::Off,
        Some(p) if w.new_answered >= floor => {
            if p > cfg.max_p95_ms {
                Verdict::Fail
            } else {
                Verdict::Pass
            }
        }
        _ => Verdict::Insufficient,
    };
    Gate {
        name: "max_p95_ms",
        value: w.new_p95_ms.unwrap_or(0.0),
        limit: cfg.max_p95_ms,
        samples: w.new_answered,
        verdict,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
