//! The plan as Markdown (the JSON form is the `Plan` struct itself).

use std::fmt::Write as _;

use super::phases::human;
use super::Plan;

fn gib(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    }
}

pub fn render_markdown(p: &Plan) -> String {
    let mut o = String::new();
    let ov = &p.overview;
    let _ = writeln!(o, "# Migration plan: `{}`\n", ov.database);
    let _ = writeln!(
        o,
        "Generated {} by `tandem plan` from the live system; re-run it to update the statuses.\n",
        p.generated_at
    );
    let _ = writeln!(o, "## Overview\n");
    let _ = writeln!(o, "- From: {}", ov.old);
    let _ = writeln!(
        o,
        "- To: {}",
        ov.new
            .as_deref()
            .unwrap_or("(no [backends.new] configured yet)")
    );
    let _ = writeln!(
        o,
        "- Size: {} tables, about {} rows, {}",
        ov.tables,
        ov.rows,
        gib(ov.bytes)
    );
    let _ = writeln!(
        o,
        "- Risk level: **{}** ({} risks found, below)",
        ov.risk_level,
        p.risks.len()
    );
    match (&ov.current_phase, ov.read_share_percent) {
        (Some(ph), Some(s)) => {
            let _ = writeln!(
                o,
                "- Current state: proxy running in `{ph}`, {s}% of reads on the new side"
            );
        }
        _ => {
            let _ = writeln!(
                o,
                "- Current state: no proxy answering on the admin endpoint"
            );
        }
    }
    if let Some(r) = &p.rates {
        let _ = writeln!(
            o,
            "- Traffic ({}): {:.1} reads/s, {:.1} writes/s",
            if r.source == "proxy" {
                "measured by the proxy"
            } else {
                "server counters since start"
            },
            r.reads_per_s,
            r.writes_per_s
        );
    }
    let _ = writeln!(
        o,
        "- Backfill estimate: about {}\n",
        human(p.backfill_estimate_s)
    );
    let _ = writeln!(
        o,
        "## Tables\n\n| table | rows (est.) | size | backfill |\n|---|---:|---:|---:|"
    );
    for t in &p.sizes {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} |",
            t.table,
            t.rows,
            gib(t.bytes),
            human(t.backfill_s)
        );
    }
    let _ = writeln!(o, "\n## Phases\n");
    for ph in &p.phases {
        let _ = writeln!(o, "### {}\n\n{}\n\nSteps:\n", ph.name, ph.goal);
        for s in &ph.steps {
            let _ = writeln!(o, "- `{s}`");
        }
        let _ = writeln!(o, "\nGate:\n");
        for g in &ph.gate {
            let _ = writeln!(o, "- {g}");
        }
        let _ = writeln!(
            o,
            "\nRollback: {}\n\nEstimate: {}\n",
            ph.rollback, ph.estimate
        );
    }
    let _ = writeln!(o, "## Risks in this schema\n");
    if p.risks.is_empty() {
        let _ = writeln!(o, "None found.\n");
    } else {
        let _ = writeln!(
            o,
            "| risk | table | detail | mitigation |\n|---|---|---|---|"
        );
        for r in &p.risks {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                r.kind,
                r.table,
                r.detail.replace('|', "\\|"),
                r.mitigation
            );
        }
        o.push('\n');
    }
    if !p.slow_on_new.is_empty() {
        let _ = writeln!(o, "## Statements slower on the new side\n\nFrom the proxy's shadow comparisons; EXPLAIN the translated text on the new side.\n\n| statement | p95 old | p95 new | ratio | translated |\n|---|---:|---:|---:|---|");
        for r in &p.slow_on_new {
            let ms =
                |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2} ms"));
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {:.1}× | `{}` |",
                r["fingerprint"].as_str().unwrap_or(""),
                ms(&r["old_p95_ms"]),
                ms(&r["new_p95_ms"]),
                r["ratio"].as_f64().unwrap_or(0.0),
                r["translated"].as_str().unwrap_or("")
            );
        }
        o.push('\n');
    }
    let _ = writeln!(o, "## Communication timeline\n");
    for c in &p.communication {
        let _ = writeln!(o, "- {c}");
    }
    let _ = writeln!(o, "\n## Testing checklist\n");
    for c in &p.checklist {
        let mark = match c.status {
            "done" => "[x]",
            "pending" => "[ ]",
            _ => "[?]",
        };
        let _ = writeln!(o, "- {mark} {} — `{}`", c.item, c.command);
    }
    o
}
