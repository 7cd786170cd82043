//! Every branch of the ramp decision, one situation per test.

use super::*;

fn cfg() -> RampConfig {
    RampConfig {
        steps: vec![1.0, 10.0, 50.0, 100.0],
        hold: "10s".into(),
        max_mismatch_rate: 0.01,
        max_error_rate_increase: 0.05,
        max_p95_ms: 20.0,
        min_samples: 100,
        step_back: StepBack::Previous,
    }
}

/// A window that passes every gate after the hold.
fn clean() -> Window {
    Window {
        elapsed_s: 10.0,
        compared: 500,
        mismatches: 0,
        routed: 500,
        new_failures: 0,
        old_reads: 1000,
        old_errors: 0,
        new_p95_ms: Some(3.0),
        new_answered: 500,
    }
}

fn verdict(d: &Decision, name: &str) -> Verdict {
    d.gates.iter().find(|g| g.name == name).unwrap().verdict
}

#[test]
fn shares_and_positions() {
    let c = cfg();
    assert_eq!(share_at(&c, 0), 0.0);
    assert_eq!(share_at(&c, 1), 1.0);
    assert_eq!(share_at(&c, 4), 100.0);
    assert_eq!(share_at(&c, 9), 0.0);
    assert_eq!(position_for(&c, 0.0), 0);
    assert_eq!(position_for(&c, 0.5), 0);
    assert_eq!(position_for(&c, 10.0), 2);
    assert_eq!(position_for(&c, 30.0), 2);
    assert_eq!(position_for(&c, 100.0), 4);
}

#[test]
fn clean_full_window_advances_one_step() {
    for pos in 0..4 {
        let d = decide(&cfg(), pos, &clean());
        assert_eq!((d.action, d.to), (Action::Advance, pos + 1), "from {pos}");
    }
}

#[test]
fn last_step_is_complete() {
    let d = decide(&cfg(), 4, &clean());
    assert_eq!((d.action, d.to), (Action::Complete, 4));
    // A position past the end (steps shortened by a reload) is clamped.
    let d = decide(&cfg(), 9, &clean());
    assert_eq!((d.action, d.to), (Action::Complete, 4));
}

#[test]
fn holds_until_the_window_is_full() {
    let w = Window {
        elapsed_s: 9.9,
        ..clean()
    };
    let d = decide(&cfg(), 2, &w);
    assert_eq!((d.action, d.to), (Action::Hold, 2));
}

#[test]
fn at_zero_only_the_mismatch_gate_applies_and_must_pass() {
    let w = Window {
        routed: 0,
        new_failures: 0,
        new_p95_ms: None,
        new_answered: 0,
        ..clean()
    };
    let d = decide(&cfg(), 0, &w);
    assert_eq!(d.action, Action::Advance);
    assert_eq!(verdict(&d, "max_error_rate_increase"), Verdict::Off);
    assert_eq!(verdict(&d, "max_p95_ms"), Verdict::Off);
    let w = Window { compared: 99, ..w };
    let d = decide(&cfg(), 0, &w);
    assert_eq!((d.action, d.to), (Action::WaitData, 0));
    assert_eq!(verdict(&d, "max_mismatch_rate"), Verdict::Insufficient);
}

#[test]
fn above_zero_routed_reads_must_be_enough() {
    let w = Window {
        routed: 50,
        new_answered: 50,
        ..clean()
    };
    let d = decide(&cfg(), 1, &w);
    assert_eq!((d.action, d.to), (Action::WaitData, 1));
    assert_eq!(
        verdict(&d, "max_error_rate_increase"),
        Verdict::Insufficient
    );
    assert_eq!(verdict(&d, "max_p95_ms"), Verdict::Insufficient);
    // Shadow comparisons are not needed above 0 % (few are left at 100 %).
    let w = Window {
        compared: 0,
        ..clean()
    };
    assert_eq!(decide(&cfg(), 3, &w).action, Action::Advance);
}

#[test]
fn a_mismatch_steps_back_at_once_even_inside_the_window() {
    // 2 mismatches over max(20, 100) reads = 2 % > 1 %.
    let w = Window {
        elapsed_s: 1.0,
        compared: 20,
        mismatches: 2,
        ..clean()
    };
    let d = decide(&cfg(), 3, &w);
    assert_eq!((d.action, d.to), (Action::StepBack, 2));
    assert_eq!(verdict(&d, "max_mismatch_rate"), Verdict::Fail);
    let g = &d.gates[0];
    assert_eq!((g.samples, g.value), (20, 0.1));
}

#[test]
fn few_samples_cannot_fail_a_rate_that_could_still_pass() {
    // 1 mismatch over max(20, 100) = 1 %, not above 1 %: keep watching.
    let w = Window {
        elapsed_s: 1.0,
        compared: 20,
        mismatches: 1,
        ..clean()
    };
    let d = decide(&cfg(), 3, &w);
    assert_eq!(d.action, Action::Hold);
    assert_eq!(verdict(&d, "max_mismatch_rate"), Verdict::Insufficient);
}

#[test]
fn step_back_to_zero_when_configured() {
    let mut c = cfg();
    c.step_back = StepBack::Zero;
    let w = Window {
        mismatches: 50,
        ..clean()
    };
    let d = decide(&c, 3, &w);
    assert_eq!((d.action, d.to), (Action::StepBack, 0));
}

#[test]
fn failing_at_zero_stays_at_zero() {
    let w = Window {
        mismatches: 50,
        ..clean()
    };
    let d = decide(&cfg(), 0, &w);
    assert_eq!((d.action, d.to), (Action::StepBack, 0));
}

#[test]
fn error_rate_is_judged_against_the_old_side() {
    // New: 40 failures / 500 = 8 %; old: 5 % → +3 %, within 5 %.
    let w = Window {
        new_failures: 40,
        old_errors: 50,
        ..clean()
    };
    assert_eq!(decide(&cfg(), 2, &w).action, Action::Advance);
    // Old clean: +8 % > 5 %.
    let w = Window {
        new_failures: 40,
        ..clean()
    };
    let d = decide(&cfg(), 2, &w);
    assert_eq!((d.action, d.to), (Action::StepBack, 1));
    assert_eq!(verdict(&d, "max_error_rate_increase"), Verdict::Fail);
    // Ten failures in the first ten routed reads already prove > 5 % over 100.
    let w = Window {
        elapsed_s: 0.5,
        routed: 10,
        new_failures: 10,
        new_answered: 0,
        new_p95_ms: None,
        ..clean()
    };
    assert_eq!(decide(&cfg(), 2, &w).action, Action::StepBack);
}

#[test]
fn slow_new_side_fails_the_p95_gate() {
    let w = Window {
        new_p95_ms: Some(25.0),
        ..clean()
    };
    let d = decide(&cfg(), 2, &w);
    assert_eq!((d.action, d.to), (Action::StepBack, 1));
    // Not judged on too few answers.
    let w = Window {
        new_p95_ms: Some(25.0),
        new_answered: 10,
        ..clean()
    };
    assert_eq!(decide(&cfg(), 2, &w).action, Action::WaitData);
    // Off when max_p95_ms = 0.
    let mut c = cfg();
    c.max_p95_ms = 0.0;
    let w = Window {
        new_p95_ms: Some(1e6),
        ..clean()
    };
    let d = decide(&c, 2, &w);
    assert_eq!(d.action, Action::Advance);
    assert_eq!(verdict(&d, "max_p95_ms"), Verdict::Off);
}

#[test]
fn any_failing_gate_wins_over_a_full_clean_hold() {
    for w in [
        Window {
            mismatches: 10,
            ..clean()
        },
        Window {
            new_failures: 100,
            ..clean()
        },
        Window {
            new_p95_ms: Some(100.0),
            ..clean()
        },
    ] {
        assert_eq!(decide(&cfg(), 4, &w).action, Action::StepBack, "{w:?}");
    }
}
