//! `tandem plan`: the migration plan for THIS database, filled from live
//! facts — sizes from information_schema, rates from the proxy's admin
//! endpoint (or the server's counters), risks found in the schema and by the
//! translator, and a checklist whose items are marked done or pending by
//! asking the live system (the same checks `tandem cutover-check` runs).
//! Re-running it updates the statuses. `render` writes it as Markdown.

mod facts;
mod phases;
mod render;
pub mod risks;

use serde::Serialize;

use crate::config::Config;
use crate::migrate::db::connect;
use crate::migrate::{schema, Sides};
use crate::stream::cutover;

pub use render::render_markdown;
use risks::Risk;

/// Rows per second the backfill estimate assumes (README measures 248k–251k
/// rows/s for narrow rows on a small machine; wide rows copy slower).
pub const PLANNING_COPY_ROWS_PER_S: f64 = 50_000.0;
/// And bytes per second, whichever takes longer.
pub const PLANNING_COPY_BYTES_PER_S: f64 = 50.0 * 1024.0 * 1024.0;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read the old database: {0}")]
    Old(String),
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub database: String,
    pub old: String,
    pub new: Option<String>,
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
    /// low / medium / high, from the risks found.
    pub risk_level: &'static str,
    pub current_phase: Option<String>,
    pub read_share_percent: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Rates {
    /// "proxy" (admin endpoint) or "server" (status counters since start).
    pub source: &'static str,
    pub reads_per_s: f64,
    pub writes_per_s: f64,
}

#[derive(Debug, Serialize)]
pub struct TableSize {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub backfill_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub goal: String,
    pub steps: Vec<String>,
    pub gate: Vec<String>,
    pub rollback: String,
    pub estimate: String,
}

#[derive(Debug, Serialize)]
pub struct CheckItem {
    pub item: String,
    /// done, pending or unknown (could not be checked).
    pub status: &'static str,
    pub command: String,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub generated_at: String,
    pub overview: Overview,
    pub rates: Option<Rates>,
    pub sizes: Vec<TableSize>,
    pub backfill_estimate_s: f64,
    pub phases: Vec<Phase>,
    pub risks: Vec<Risk>,
    pub communication: Vec<String>,
    pub checklist: Vec<CheckItem>,
    /// Statements at least twice as slow (p95) on the new side, from the
    /// running proxy's shadow comparisons, with the text to EXPLAIN there.
    pub slow_on_new: Vec<serde_json::Value>,
}

/// Gathers the facts and builds the plan. Only the old database is
/// required; what else is unreachable is marked unknown.
pub async fn build(config: &Config, admin: Option<&str>) -> Result<Plan, PlanError> {
    let mut old = connect(&config.backends.old, "backends.old")
        .await
        .map_err(|e| PlanError::Old(e.to_string()))?;
    let mut schema_facts = facts::schema(&mut old).await.map_err(PlanError::Old)?;
    let mut checklist = vec![CheckItem {
        item: "old backend reachable, schema read".into(),
        status: "done",
        command: "tandem check".into(),
    }];
    // The proxy, when it runs.
    let overview_json = match admin {
        Some(a) => match crate::cockpit::http::request(a, "GET", "/overview").await {
            Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body).ok(),
            _ => None,
        },
        None => None,
    };
    let rates = match &overview_json {
        Some(o) if o["latest"].is_object() => {
            let l = &o["latest"];
            let reads = l["old"]["reads_per_s"].as_f64().unwrap_or(0.0)
                + l["new"]["reads_per_s"].as_f64().unwrap_or(0.0);
            let all = l["statements_per_s"].as_f64().unwrap_or(0.0);
            Some(Rates {
                source: "proxy",
                reads_per_s: reads,
                writes_per_s: (all - reads).max(0.0),
            })
        }
        _ => facts::server_rates(&mut old)
            .await
            .ok()
            .map(|(r, w)| Rates {
                source: "server",
                reads_per_s: r,
                writes_per_s: w,
            }),
    };
    drop(old);
    let sides = Sides::from_config(config).ok();
    if let Some(sides) = &sides {
        match schema::run(sides, false, schema::ForeignKeys::default()).await {
            Ok(report) => {
                schema_facts.untranslatable = report.untranslatable.clone();
                let all = report.existing.len() == report.tables.len()
                    && report.untranslatable.is_empty();
                checklist.push(CheckItem {
                    item: format!(
                        "schema created on the new side ({} of {} tables exist{})",
                        report.existing.len(),
                        report.tables.len() + report.untranslatable.len(),
                        if report.untranslatable.is_empty() {
                            String::new()
                        } else {
                            format!(", {} untranslatable", report.untranslatable.len())
                        }
                    ),
                    status: if all { "done" } else { "pending" },
                    command: "tandem schema --apply".into(),
                });
            }
            Err(e) => checklist.push(CheckItem {
                item: format!("schema on the new side (could not check: {e})"),
                status: "unknown",
                command: "tandem schema".into(),
            }),
        }
        match cutover::run(config, sides, false).await {
            Ok(report) => checklist.extend(report.items.into_iter().map(|i| CheckItem {
                item: i.text,
                status: if i.ok { "done" } else { "pending" },
                command: "tandem cutover-check".into(),
            })),
            Err(e) => checklist.push(CheckItem {
                item: format!("cutover readiness (could not check: {e})"),
                status: "unknown",
                command: "tandem cutover-check".into(),
            }),
        }
    } else {
        checklist.push(CheckItem {
            item: "[backends.new] configured".into(),
            status: "pending",
            command: "edit proxy.toml: [backends.new] kind, url".into(),
        });
    }
    let o = overview_json.as_ref();
    checklist.push(CheckItem {
        item: "proxy running in front of the old database (admin endpoint answers)".into(),
        status: if o.is_some() { "done" } else { "pending" },
        command: "tandem serve -c proxy.toml; tandem status".into(),
    });
    let phase = o.and_then(|o| o["phase"].as_str()).map(str::to_string);
    let sample = o
        .and_then(|o| o["shadow_sample_percent"].as_f64())
        .unwrap_or(0.0);
    let mismatches = o
        .and_then(|o| o["shadow_outcomes"]["mismatch"].as_u64())
        .unwrap_or(0);
    let matched = o
        .and_then(|o| o["shadow_outcomes"]["match"].as_u64())
        .unwrap_or(0);
    checklist.push(CheckItem {
        item: format!("shadow reads compare clean ({matched} matched, {mismatches} mismatched at {sample}% sampling)"),
        status: match o {
            None => "unknown",
            Some(_) if sample > 0.0 && matched > 0 && mismatches == 0 => "done",
            Some(_) => "pending",
        },
        command: "[shadow] sample_percent = 10; tandem mismatches".into(),
    });
    let share = o.and_then(|o| o["read_share_percent"].as_f64());
    checklist.push(CheckItem {
        item: format!(
            "reads served by the new backend at 100% (now {}%)",
            share.unwrap_or(0.0)
        ),
        status: match share {
            None => "unknown",
            Some(s) if s >= 100.0 => "done",
            Some(_) => "pending",
        },
        command: "[reads.ramp] steps = [1, 10, 50, 100]; tandem ramp status".into(),
    });

    let risks = risks::find(&schema_facts);
    let sizes: Vec<TableSize> = schema_facts
        .tables
        .iter()
        .map(|t| TableSize {
            table: t.name.clone(),
            rows: t.rows,
            bytes: t.bytes,
            backfill_s: (t.rows as f64 / PLANNING_COPY_ROWS_PER_S)
                .max(t.bytes as f64 / PLANNING_COPY_BYTES_PER_S),
        })
        .collect();
    let backfill_estimate_s = sizes.iter().map(|s| s.backfill_s).sum();
    let risk_level = match risks
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                "untranslatable" | "no_primary_key" | "zero_dates" | "large_table"
            )
        })
        .count()
    {
        0 if risks.is_empty() => "low",
        0 => "medium",
        _ => "high",
    };
    let target = config.backends.old.target().ok();
    let overview = Overview {
        database: target
            .as_ref()
            .and_then(|t| t.database.clone())
            .unwrap_or_default(),
        old: target
            .map(|t| format!("mysql {}", t.addr()))
            .unwrap_or_default(),
        new: config.backends.new.as_ref().and_then(|n| {
            n.target()
                .ok()
                .map(|t| format!("{:?} {}", n.kind, t.addr()).to_lowercase())
        }),
        tables: sizes.len(),
        rows: sizes.iter().map(|s| s.rows).sum(),
        bytes: sizes.iter().map(|s| s.bytes).sum(),
        risk_level,
        current_phase: phase,
        read_share_percent: share,
    };
    let slow_on_new = o
        .and_then(|o| o["slow_on_new"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["ratio"].as_f64().unwrap_or(0.0) >= 2.0)
        .collect();
    let phases = phases::phases(config, backfill_estimate_s, &risks);
    let communication = phases::communication(backfill_estimate_s, config);
    Ok(Plan {
        generated_at: crate::dualwrite::drift::now_rfc3339(),
        overview,
        rates,
        sizes,
        backfill_estimate_s,
        phases,
        risks,
        communication,
        checklist,
        slow_on_new,
    })
}
