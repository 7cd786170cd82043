//! `tandem status` and `tandem ramp`: the dashboard's numbers as terminal
//! text, rendered from the admin endpoint's JSON (`/overview`, `/ramp`), so
//! the command needs nothing but the admin address.

use std::fmt::Write as _;

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.1}ms"))
}

/// `tandem status` from `/overview`.
pub fn render(o: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "phase {}   read share {}%   config v{}   up {}s",
        s(&o["phase"]),
        f(&o["read_share_percent"]),
        o["config_version"],
        o["uptime_s"]
    );
    out.push_str(&render_ramp_line(&o["ramp"]));
    let sh = &o["shadow_outcomes"];
    let _ = writeln!(
        out,
        "shadow ({}% sampled): {} match, {} mismatch, {} transient, {} skipped, {} failed",
        f(&o["shadow_sample_percent"]),
        sh["match"],
        sh["mismatch"],
        sh["transient"],
        sh["skipped_nondeterministic"].as_u64().unwrap_or(0)
            + sh["skipped_transaction"].as_u64().unwrap_or(0)
            + sh["skipped_unsupported"].as_u64().unwrap_or(0)
            + sh["dropped"].as_u64().unwrap_or(0),
        sh["failed"],
    );
    let l = &o["latest"];
    if l.is_object() {
        let _ = writeln!(
            out,
            "last sample: {:.1} statements/s, mirror lag {}, shadow {:.0} match/min {:.0} mismatch/min",
            f(&l["statements_per_s"]),
            ms(&l["mirror_lag_ms"]),
            f(&l["shadow_match_per_min"]),
            f(&l["shadow_mismatch_per_min"]),
        );
        for side in ["old", "new"] {
            let b = &l[side];
            let _ = writeln!(
                out,
                "  {side:<3} reads {:>8.1}/s   errors {:>6.2}%   p95 {}",
                f(&b["reads_per_s"]),
                f(&b["error_ratio"]) * 100.0,
                ms(&b["p95_ms"]),
            );
        }
    }
    if let Some(slow) = o["slow_on_new"].as_array() {
        for r in slow.iter().filter(|r| f(&r["ratio"]) >= 2.0).take(3) {
            let _ = writeln!(
                out,
                "slower on new: {:.1}x p95 {} vs {}  {}",
                f(&r["ratio"]),
                ms(&r["new_p95_ms"]),
                ms(&r["old_p95_ms"]),
                s(&r["fingerprint"])
            );
        }
    }
    let facts = &o["facts"];
    if let Some(tables) = facts["backfill"]["tables"].as_array() {
        let done = tables.iter().filter(|t| t["done"] == true).count();
        let _ = writeln!(out, "backfill: {done}/{} tables complete", tables.len());
        for t in tables.iter().filter(|t| t["done"] != true) {
            let _ = writeln!(
                out,
                "  {:<30} {:>5.1}%  {} rows copied",
                s(&t["table"]),
                f(&t["percent"]),
                t["rows_copied"]
            );
        }
    } else if let Some(e) = facts["backfill"]["error"].as_str() {
        let _ = writeln!(out, "backfill: unknown ({e})");
    }
    let v = &facts["verify"];
    if v.is_object() {
        let _ = writeln!(
            out,
            "last verify: #{} started {} {} ({} differences)",
            s(&v["id"]),
            s(&v["started_at"]),
            if v["clean"] == true {
                "clean"
            } else {
                "DIFFERENCES"
            },
            v["differences"]
        );
    } else {
        let _ = writeln!(out, "last verify: none recorded");
    }
    let m = &facts["mismatches"];
    if let Some(top) = m["top"].as_array().filter(|t| !t.is_empty()) {
        let _ = writeln!(out, "top mismatching statements ({} logged):", m["total"]);
        for g in top {
            let _ = writeln!(out, "  {:>6}  {}", g["count"], s(&g["fingerprint"]));
        }
    }
    out
}

fn render_ramp_line(r: &Value) -> String {
    if r["configured"] != true {
        return "ramp: not configured ([reads.ramp])\n".into();
    }
    let steps: Vec<String> = r["steps"]
        .as_array()
        .map(|a| a.iter().map(|x| format!("{}", f(x))).collect())
        .unwrap_or_default();
    let state = match r["paused"].as_str() {
        Some(why) => format!("PAUSED ({why})"),
        None => match r["last_decision"]["action"].as_str() {
            Some(a) => a.replace('_', " "),
            None => "starting".into(),
        },
    };
    format!(
        "ramp: {}% (step {} of [{}]), {state}, hold {}s\n",
        f(&r["share_percent"]),
        r["position"],
        steps.join(", "),
        f(&r["hold_s"])
    )
}

/// `tandem ramp status|pause|resume` from `/ramp` (or its POST answer).
pub fn render_ramp(v: &Value) -> String {
    let r = if v["ramp"].is_object() { &v["ramp"] } else { v };
    let mut out = String::new();
    if let Some(changed) = v["changed"].as_bool() {
        out.push_str(if changed {
            "done\n"
        } else {
            "no change (already so)\n"
        });
    }
    out.push_str(&render_ramp_line(r));
    if let Some(gates) = r["last_decision"]["gates"].as_array() {
        for g in gates {
            let _ = writeln!(
                out,
                "  {:<24} {:>10.4} (limit {}) over {} reads: {}",
                s(&g["name"]),
                f(&g["value"]),
                f(&g["limit"]),
                g["samples"],
                s(&g["verdict"])
            );
        }
    }
    if let Some(h) = r["history"].as_array() {
        for m in h.iter().rev().take(10) {
            let _ = writeln!(
                out,
                "  {} {:<9} {}% -> {}%: {}",
                s(&m["at"]),
                s(&m["kind"]),
                f(&m["from_percent"]),
                f(&m["to_percent"]),
                s(&m["reason"])
            );
        }
    }
    out
}
