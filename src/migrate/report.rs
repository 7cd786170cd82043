//! What verify leaves behind: the human-readable summary, and the run
//! record in `tandem_verify_runs` that `cutover-check` reads.

use crate::value::{pg::PgType, Value};

use super::catalog::ColType;
use super::db::Db;
use super::differences::{TableReport, VerifyReport};
use super::sqltext::{literal, Dialect};
use super::{MigrateError, Side, Sides, VERIFY_RUNS_TABLE};

pub async fn ensure_runs_table(db: &mut Db) -> Result<(), MigrateError> {
    let sql = match db.dialect() {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {VERIFY_RUNS_TABLE} (id bigserial PRIMARY KEY, \
             started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL DEFAULT now(), \
             all_tables boolean NOT NULL, repair boolean NOT NULL, clean boolean NOT NULL, \
             tables text NOT NULL, differences bigint NOT NULL, report text NOT NULL)"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {VERIFY_RUNS_TABLE} (id bigint AUTO_INCREMENT PRIMARY KEY, \
             started_at datetime(6) NOT NULL, finished_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
             all_tables boolean NOT NULL, repair boolean NOT NULL, clean boolean NOT NULL, \
             tables longtext NOT NULL, differences bigint NOT NULL, report longtext NOT NULL) ENGINE=InnoDB"
        ),
    };
    db.execute(&sql).await
}

/// Stores the run in the target database, where `cutover-check` looks.
pub(super) async fn record_run(
    sides: &Sides,
    report: &VerifyReport,
    started: i64,
) -> Result<(), MigrateError> {
    let mut db = sides.connect(Side::New).await?;
    ensure_runs_table(&mut db).await?;
    let d = db.dialect();
    let text = |s: &str| literal(d, &Value::Text(s.to_string()), ColType::Pg(PgType::Text));
    let ts = literal(
        d,
        &Value::Timestamp(started),
        ColType::Pg(PgType::Timestamptz),
    );
    let names: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    let json = serde_json::to_string(report).unwrap_or_default();
    let differences: u64 = report.tables.iter().map(TableReport::differences).sum();
    db.execute(&format!(
        "INSERT INTO {VERIFY_RUNS_TABLE} (started_at, all_tables, repair, clean, tables, differences, report) \
         VALUES ({ts}, {}, {}, {}, {}, {differences}, {})",
        report.all_tables,
        report.repair,
        report.clean,
        text(&names.join(",")),
        text(&json)
    ))
    .await
}

/// The human-readable summary: one line per table, then the listed keys.
pub fn render(report: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let width = report
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:>10}  {:>10}  {:>7}  {:>10}  {:>8}  {:>8}  {:>9}  {:>7}  status",
        "table",
        "rows old",
        "rows new",
        "chunks",
        "mismatched",
        "missing",
        "extra",
        "different",
        "sampled"
    );
    for t in &report.tables {
        let status = match (&t.error, t.clean(), &t.repair) {
            (Some(_), _, _) => "ERROR",
            (None, true, Some(r)) if r.upserted + r.deleted > 0 => "repaired",
            (None, true, _) => "ok",
            (None, false, _) => "DIFFERENT",
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>10}  {:>10}  {:>7}  {:>10}  {:>8}  {:>8}  {:>9}  {:>7}  {status}",
            t.table,
            t.rows_old,
            t.rows_new,
            t.chunks,
            t.mismatched_chunks,
            t.missing,
            t.extra,
            t.different,
            t.sampled
        );
    }
    for t in &report.tables {
        let mut lines = Vec::new();
        if let Some(e) = &t.error {
            lines.push(format!("error: {e}"));
        }
        if let Some(n) = &t.note {
            lines.push(format!("note: {n}"));
        }
        if !t.columns_only_old.is_empty() {
            lines.push(format!(
                "columns missing on the new side: {}",
                t.columns_only_old.join(", ")
            ));
        }
        if !t.missing_keys.is_empty() {
            lines.push(format!(
                "missing on new (key): {}",
                t.missing_keys.join(" ")
            ));
        }
        if !t.extra_keys.is_empty() {
            lines.push(format!("extra on new (key): {}", t.extra_keys.join(" ")));
        }
        for d in &t.different_rows {
            let cols: Vec<String> = d
                .columns
                .iter()
                .map(|c| format!("{}: {} | {}", c.column, c.old, c.new))
                .collect();
            lines.push(format!("different {}: {}", d.key, cols.join("; ")));
        }
        if t.sample_mismatches > 0 {
            lines.push(format!(
                "{} of {} sampled rows differ",
                t.sample_mismatches, t.sampled
            ));
        }
        if let Some(r) = &t.repair {
            lines.push(format!(
                "repair: {} rows written, {} deleted, {} still different {}",
                r.upserted,
                r.deleted,
                r.still_different,
                r.still_different_keys.join(" ")
            ));
        }
        if !lines.is_empty() {
            let _ = writeln!(out, "\n{}:", t.table);
            for l in lines {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        if report.clean {
            "verify: both sides match"
        } else {
            "verify: DIFFERENCES FOUND (rerun with --repair to copy the authoritative rows)"
        }
    );
    out
}
