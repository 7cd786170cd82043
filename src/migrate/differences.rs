//! What `verify` finds, and how a difference is confirmed: the report types
//! that verify fills, `--repair` acts on and the run report stores, and the
//! re-read by key both verify and repair use to tell a real difference from
//! a row that was changing while it was read. Its own module so that verify,
//! repair and report depend on it instead of on each other in a circle.

use std::collections::HashMap;

use serde::Serialize;

use crate::value::{Row, Value};

use super::catalog::TablePlan;
use super::db::Db;
use super::sqltext::{read_types, select_keys};
use super::write::key_text;
use super::{MigrateError, Side};

/// How many keys of each kind a report lists (counts are always complete).
pub const LISTED: usize = 100;
/// Keys fetched per statement when re-reading rows.
pub const KEY_BATCH: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct ColumnDifference {
    pub column: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowDifference {
    pub key: String,
    pub columns: Vec<ColumnDifference>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairStats {
    /// Rows written to the non-authoritative side.
    pub upserted: u64,
    pub deleted: u64,
    /// Rows that still differ after the repair (re-compared by key).
    pub still_different: u64,
    pub still_different_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TableReport {
    pub table: String,
    pub key: String,
    pub rows_old: u64,
    pub rows_new: u64,
    pub chunks: u64,
    pub mismatched_chunks: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    /// On the old side only (first [`LISTED`]).
    pub missing_keys: Vec<String>,
    /// On the new side only.
    pub extra_keys: Vec<String>,
    pub different_rows: Vec<RowDifference>,
    pub sampled: u64,
    pub sample_mismatches: u64,
    pub columns_only_old: Vec<String>,
    pub columns_only_new: Vec<String>,
    pub repair: Option<RepairStats>,
    /// A table without a key whose checksums differ: the differing rows
    /// cannot be named.
    pub unlocated_difference: bool,
    pub note: Option<String>,
    pub error: Option<String>,
    pub seconds: f64,
}

impl TableReport {
    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.different + self.sample_mismatches
    }

    /// Nothing differs (after the repair, when one ran).
    pub fn clean(&self) -> bool {
        if self.error.is_some() || !self.columns_only_old.is_empty() || self.unlocated_difference {
            return false;
        }
        match &self.repair {
            Some(r) => r.still_different == 0 && self.sample_mismatches == 0,
            // A mismatched chunk whose rows all compare equal value by value
            // is float rounding noise, not a difference.
            None => self.differences() == 0 && self.rows_old == self.rows_new,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub clean: bool,
    pub all_tables: bool,
    pub repair: bool,
    pub tables: Vec<TableReport>,
    /// What waiting for the change stream found, when one applies.
    pub stream: Option<String>,
}

/// A value in a report: text quoted, so an empty string is visible.
fn shown(v: &Value) -> String {
    match v {
        Value::Text(_) => format!("'{}'", v.short()),
        _ => v.short(),
    }
}

/// Re-reads the rows with `keys` on both sides and compares them value by
/// value; returns the keys (with their differing columns) that really
/// differ, including keys now missing on one side.
pub async fn confirm_different(
    old: &mut Db,
    new: &mut Db,
    plan: &TablePlan,
    keys: &[Row],
) -> Result<Vec<(Row, RowDifference)>, MigrateError> {
    let mut out = Vec::new();
    for batch in keys.chunks(KEY_BATCH) {
        let (old_rows, new_rows) = tokio::try_join!(
            rows_by_key(old, plan, Side::Old, batch),
            rows_by_key(new, plan, Side::New, batch)
        )?;
        for key in batch {
            let (a, b) = (old_rows.get(key), new_rows.get(key));
            let columns: Vec<ColumnDifference> = match (a, b) {
                (Some(a), Some(b)) => plan
                    .columns
                    .iter()
                    .zip(a.iter().zip(b))
                    .filter(|(_, (x, y))| !x.approx_eq(y))
                    .map(|(c, (x, y))| ColumnDifference {
                        column: c.old_name.clone(),
                        old: shown(x),
                        new: shown(y),
                    })
                    .collect(),
                (None, None) => continue,
                (a, b) => vec![ColumnDifference {
                    column: "(row)".into(),
                    old: if a.is_some() { "present" } else { "absent" }.into(),
                    new: if b.is_some() { "present" } else { "absent" }.into(),
                }],
            };
            if !columns.is_empty() {
                out.push((
                    key.clone(),
                    RowDifference {
                        key: key_text(key),
                        columns,
                    },
                ));
            }
        }
    }
    Ok(out)
}

/// The rows with `keys` on one side, by key.
pub async fn rows_by_key(
    db: &mut Db,
    plan: &TablePlan,
    side: Side,
    keys: &[Row],
) -> Result<HashMap<Row, Row>, MigrateError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let types = read_types(plan, side);
    let sql = select_keys(db.dialect(), plan, side, keys);
    let rows = db.rows(&sql, &types).await?;
    Ok(rows.into_iter().map(|r| (plan.key_of(&r), r)).collect())
}
