//! The cockpit's Prometheus series, appended to `/metrics`: build info,
//! reads per backend (count, errors, latency histogram), the read share and
//! ramp position, the mirror lag in seconds. Base units and 0–1 ratios, as
//! the Prometheus naming conventions ask.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::metrics::LATENCY_BUCKETS;

pub fn render<S: super::Handles>(state: &S, out: &mut String) {
    let snapshot = state.snapshot().load();
    let config = &snapshot.config;
    let _ = writeln!(
        out,
        "# HELP tandem_build_info Tandem version (always 1).\n# TYPE tandem_build_info gauge\n\
         tandem_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let c = state.cockpit();
    let _ = writeln!(
        out,
        "# HELP tandem_reads_total Reads answered, per backend.\n# TYPE tandem_reads_total counter"
    );
    for (name, side) in [("old", &c.old_reads), ("new", &c.new_reads)] {
        let _ = writeln!(
            out,
            "tandem_reads_total{{backend=\"{name}\"}} {}",
            side.answered.get()
        );
    }
    let _ = writeln!(out, "# HELP tandem_read_errors_total Reads answered with an error or failed, per backend.\n# TYPE tandem_read_errors_total counter");
    for (name, side) in [("old", &c.old_reads), ("new", &c.new_reads)] {
        let _ = writeln!(
            out,
            "tandem_read_errors_total{{backend=\"{name}\"}} {}",
            side.errors.get()
        );
    }
    let _ = writeln!(out, "# HELP tandem_read_duration_seconds Read latency per backend.\n# TYPE tandem_read_duration_seconds histogram");
    for (name, side) in [("old", &c.old_reads), ("new", &c.new_reads)] {
        let (cum, sum, count) = side.latency.snapshot();
        for (b, v) in LATENCY_BUCKETS.iter().zip(&cum) {
            let _ = writeln!(
                out,
                "tandem_read_duration_seconds_bucket{{backend=\"{name}\",le=\"{b}\"}} {v}"
            );
        }
        let _ = writeln!(
            out,
            "tandem_read_duration_seconds_bucket{{backend=\"{name}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "tandem_read_duration_seconds_sum{{backend=\"{name}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "tandem_read_duration_seconds_count{{backend=\"{name}\"}} {count}"
        );
    }
    let view = c.ramp.view(config.reads.ramp.as_ref());
    let _ = writeln!(
        out,
        "# HELP tandem_read_share_ratio Share of reads routed to the new backend (0-1).\n# TYPE tandem_read_share_ratio gauge\n\
         tandem_read_share_ratio {}\n\
         # HELP tandem_ramp_position Read ramp step (0 = 0%).\n# TYPE tandem_ramp_position gauge\ntandem_ramp_position {}\n\
         # HELP tandem_ramp_paused 1 while the read ramp is paused.\n# TYPE tandem_ramp_paused gauge\ntandem_ramp_paused {}\n\
         # HELP tandem_ramp_moves_total Read ramp moves kept (advance, step back, pause, resume).\n# TYPE tandem_ramp_moves_total counter\n\
         tandem_ramp_moves_total {}",
        c.read_share(config) / 100.0,
        view.position,
        u8::from(view.paused.is_some()),
        view.history.len()
    );
    if let Some(m) = state.mirror().load_full() {
        let _ = writeln!(
            out,
            "# HELP tandem_mirror_lag_last_seconds Enqueue-to-apply time of the last mirrored write.\n# TYPE tandem_mirror_lag_last_seconds gauge\n\
             tandem_mirror_lag_last_seconds {}\n\
             # HELP tandem_mirror_lag_max_seconds Largest enqueue-to-apply time seen.\n# TYPE tandem_mirror_lag_max_seconds gauge\n\
             tandem_mirror_lag_max_seconds {}",
            m.stats.last_lag_us.load(Ordering::Relaxed) as f64 / 1e6,
            m.stats.max_lag_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
    }
}
