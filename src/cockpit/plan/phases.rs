//! The phases of a Tandem migration with the exact commands and config
//! edits, each with its gate in numbers and its rollback, and the
//! communication timeline around them. Numbers come from this proxy's config
//! (the ramp's gates) and the backfill estimate.

use crate::config::ramp::RampConfig;
use crate::config::Config;

use super::risks::Risk;
use super::Phase;

pub fn human(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn phases(config: &Config, backfill_s: f64, risks: &[Risk]) -> Vec<Phase> {
    let ramp = config.reads.ramp.clone().unwrap_or_default();
    let hold = ramp.hold();
    let steps: Vec<String> = ramp.steps.iter().map(|s| format!("{s}")).collect();
    // One full hold at 0% and at each step below the last.
    let ramp_time = hold.as_secs_f64() * ramp.steps.len() as f64;
    let blockers: Vec<&str> = risks
        .iter()
        .filter(|r| matches!(r.kind, "untranslatable" | "no_primary_key" | "zero_dates"))
        .map(|r| r.table.as_str())
        .collect();
    vec![
        Phase {
            name: "0. prepare",
            goal: "the new side has every table; the proxy config is valid and reaches both databases".into(),
            steps: vec![
                "fix the blocking risks below first (tables without a key, untranslatable tables, zero dates)".into(),
                "tandem check -c proxy.toml".into(),
                "tandem schema -c proxy.toml            # review the translated DDL".into(),
                "tandem schema -c proxy.toml --apply".into(),
            ],
            gate: vec![
                "`tandem check` exits 0".into(),
                format!("`tandem schema --apply` creates every table (blocking risks now: {})", if blockers.is_empty() { "none".to_string() } else { blockers.join(", ") }),
            ],
            rollback: "trivial: drop the new database; nothing has touched the old one".into(),
            estimate: "minutes".into(),
        },
        Phase {
            name: "1. proxy in front (primary_only)",
            goal: "clients connect through Tandem; it only relays to the old database".into(),
            steps: vec![
                "phase = \"primary_only\" in proxy.toml; tandem serve -c proxy.toml".into(),
                "point the application's MySQL host/port at the proxy (rolling restart)".into(),
                "tandem status   # statements/s should match the application's traffic".into(),
            ],
            gate: vec![
                "p95 read latency through the proxy within 1 ms of direct (dashboard: Read p95)".into(),
                "no client errors added (tandem_backend_errors_total stays 0)".into(),
            ],
            rollback: "easy: point the application back at the old database; nothing is lost".into(),
            estimate: "one deploy".into(),
        },
        Phase {
            name: "2. dual write and backfill (dual_write)",
            goal: "every write reaches both sides; existing rows are copied; both sides verify equal".into(),
            steps: vec![
                "phase = \"dual_write\" in proxy.toml (hot reload, no restart)".into(),
                "tandem backfill -c proxy.toml [--rate ROWS/S]   # resumable".into(),
                "tandem verify -c proxy.toml [--repair]".into(),
            ],
            gate: vec![
                "backfill complete for every table (tandem status: backfill N/N)".into(),
                "`tandem verify` over all tables clean (exit 0)".into(),
                "drift events 0 (tandem_drift_events_total) and mirror lag under 1 s".into(),
            ],
            rollback: "easy: phase = \"primary_only\" (hot reload); the old side has every write; drop the new database to start over".into(),
            estimate: format!("backfill about {} at {} rows/s planning rate", human(backfill_s), super::PLANNING_COPY_ROWS_PER_S),
        },
        Phase {
            name: "3. reads on the new side (dual_write + shadow + ramp)",
            goal: "the new side answers reads, proven by shadow comparisons and a gated ramp".into(),
            steps: vec![
                "[shadow] sample_percent = 10 (hot reload); tandem mismatches".into(),
                format!("[reads.ramp] steps = [{}], hold = \"{}\" (hot reload)", steps.join(", "), ramp.hold),
                "tandem ramp status   # pause / resume by hand if needed".into(),
            ],
            gate: gate_lines(&ramp),
            rollback: "easy: tandem ramp pause and [reads] new_percent = 0 (hot reload); writes never left the old side".into(),
            estimate: format!("at least {} to reach 100% ({} clean holds of {})", human(ramp_time), ramp.steps.len(), ramp.hold),
        },
        Phase {
            name: "4. new side authoritative (new_primary)",
            goal: "the new side takes the writes; the old one is kept in step for rollback".into(),
            steps: vec![
                "tandem cutover-check -c proxy.toml [--fix]   # sequences past the largest ids".into(),
                "phase = \"new_primary\" in proxy.toml (hot reload)".into(),
            ],
            gate: vec![
                "`tandem cutover-check` all OK before the switch".into(),
                "after it: client error rate unchanged, drift events 0 on the way back to old, p95 within the phase-3 limits".into(),
            ],
            rollback: "moderate: phase = \"dual_write\" (hot reload); the old side received every write through the reverse mirror — check drift events are 0 first".into(),
            estimate: "a day to a week of observation".into(),
        },
        Phase {
            name: "5. decommission (new_only)",
            goal: "the old database leaves the path".into(),
            steps: vec![
                "phase = \"new_only\" in proxy.toml".into(),
                "keep a final dump of the old database; switch it off after the retention period".into(),
            ],
            gate: vec!["a week in new_primary without drift or rollback".into()],
            rollback: if config.backends.new.is_some() {
                "hard: the old side stops receiving writes — going back needs a reverse backfill (tandem backfill with the sides swapped) and loses nothing only if writes are paused".into()
            } else {
                "hard: see above".into()
            },
            estimate: "one change".into(),
        },
    ]
}

fn gate_lines(r: &RampConfig) -> Vec<String> {
    let mut g = vec![
        format!(
            "shadow mismatch rate ≤ {} of compared reads per hold window",
            r.max_mismatch_rate
        ),
        format!(
            "new-side read error/fallback rate ≤ old side's + {}",
            r.max_error_rate_increase
        ),
    ];
    if r.max_p95_ms > 0.0 {
        g.push(format!("new-side read p95 ≤ {} ms", r.max_p95_ms));
    }
    g.push(format!(
        "at least {} reads per window (else the ramp holds)",
        r.min_samples
    ));
    g
}

pub fn communication(backfill_s: f64, config: &Config) -> Vec<String> {
    let hold = config.reads.ramp.clone().unwrap_or_default().hold;
    vec![
        "T-7 days: announce the migration, its phases and that no downtime is planned; name the owner and the rollback contact".into(),
        "T-1 day: confirm the proxy is deployed in primary_only with no latency regression (phase 1 gate)".into(),
        format!("T0: dual_write on; backfill running (about {}); status posts at start, 50% and end", human(backfill_s)),
        format!("T0 + backfill: verify result posted; read ramp starts (each step holds {hold}); every ramp move is in `tandem ramp status`"),
        "cutover day: announce the new_primary window 24 h ahead; post the cutover-check output; post again after one hour of clean metrics".into(),
        "T+7 days: announce the decommission of the old database and the retention of its last dump".into(),
    ]
}
