//! A run of source transactions reduced to the statements that apply it.
//!
//! Rows are addressed by key and the batch commits as one target
//! transaction, so only the last image of each key matters: an insert
//! followed by updates becomes one upsert, a key change is a delete of the
//! old key plus an upsert of the new one, a row inserted and deleted again
//! becomes a delete that finds nothing. Each table then costs one
//! `DELETE … WHERE key IN (…)` and one multi-row
//! `INSERT … ON CONFLICT (key) DO UPDATE` (MySQL: `ON DUPLICATE KEY UPDATE`),
//! and replaying a batch twice leaves the same rows (idempotent). Tables
//! without a key are matched on all columns, change by change, in order.
//! Values are rendered by the migrate commands' `sqltext::literal`.
//!
//! On PostgreSQL each table's statements start with a shared advisory lock
//! and record deleted keys as tombstones while a backfill copies the table:
//! the protocol in [`crate::migrate::streamsync`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::migrate::sqltext::{ident, literal, Dialect};
use crate::migrate::streamsync;
use crate::value::to_tagged_json;
use crate::value::{Row, Value};

use super::tables::Mapped;
use super::ApplyError;
use crate::stream::RowChange;

/// Rows per generated statement.
const ROWS_PER_STATEMENT: usize = 1000;

/// Pending changes to one table.
struct TableRun {
    table: Arc<Mapped>,
    /// Key text → position in `images`.
    index: HashMap<String, usize>,
    /// Key and last image (`None`: deleted).
    images: Vec<(Vec<Value>, Option<Row>)>,
    /// Statements for a table without a key, in order.
    sequential: Vec<String>,
}

/// The changes of the open batch, not yet sent.
#[derive(Default)]
pub struct Batch {
    runs: Vec<TableRun>,
    by_table: HashMap<usize, usize>,
    /// Row changes added (for the flush bound).
    pub changes: usize,
    /// Approximate size of the row images added.
    pub bytes: usize,
}

fn approx_size(row: &[Value]) -> usize {
    row.iter()
        .map(|v| match v {
            Value::Text(s) | Value::Json(s) => s.len() + 4,
            Value::Bytes(b) => b.len() * 2 + 4,
            Value::Decimal(d) => d.len() + 2,
            _ => 12,
        })
        .sum()
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    fn run(&mut self, table: &Arc<Mapped>) -> &mut TableRun {
        let id = Arc::as_ptr(table) as usize;
        let n = match self.by_table.get(&id) {
            Some(&n) => n,
            None => {
                self.runs.push(TableRun {
                    table: Arc::clone(table),
                    index: HashMap::new(),
                    images: Vec::new(),
                    sequential: Vec::new(),
                });
                self.by_table.insert(id, self.runs.len() - 1);
                self.runs.len() - 1
            }
        };
        &mut self.runs[n]
    }

    /// Adds one row change of `table`.
    pub fn add(
        &mut self,
        d: Dialect,
        table: &Arc<Mapped>,
        change: &RowChange,
    ) -> Result<(), ApplyError> {
        if table.skip {
            return Ok(());
        }
        self.changes += 1;
        let (before, after) = match change {
            RowChange::Insert { after } => (None, Some(table.project(after)?)),
            RowChange::Update { before, after } => {
                (Some(table.project(before)?), Some(table.project(after)?))
            }
            RowChange::Delete { before } => (Some(table.project(before)?), None),
        };
        self.bytes +=
            before.as_deref().map_or(0, approx_size) + after.as_deref().map_or(0, approx_size);
        let run = self.run(table);
        if !table.keyed {
            let stmt = unkeyed(d, table, before.as_deref(), after.as_deref());
            run.sequential.push(stmt);
            return Ok(());
        }
        if let Some(b) = &before {
            let key = table.key_of(b);
            let moved = after
                .as_ref()
                .is_none_or(|a| to_tagged_json(&table.key_of(a)) != to_tagged_json(&key));
            if moved {
                run.set(key, None);
            }
        }
        if let Some(a) = after {
            run.set(table.key_of(&a), Some(a));
        }
        Ok(())
    }

    /// The statements applying every pending change; empties the batch.
    pub fn take_statements(&mut self, d: Dialect) -> Vec<String> {
        let mut out = Vec::new();
        for run in self.runs.drain(..) {
            run.statements(d, &mut out);
        }
        self.by_table.clear();
        self.changes = 0;
        self.bytes = 0;
        out
    }
}

impl TableRun {
    fn set(&mut self, key: Vec<Value>, image: Option<Row>) {
        let text = to_tagged_json(&key);
        match self.index.get(&text) {
            Some(&n) => self.images[n].1 = image,
            None => {
                self.index.insert(text, self.images.len());
                self.images.push((key, image));
            }
        }
    }

    fn statements(self, d: Dialect, out: &mut Vec<String>) {
        let t = &self.table;
        if self.sequential.is_empty() && self.images.is_empty() {
            return;
        }
        if d == Dialect::Postgres {
            // Excludes a concurrent backfill chunk of this table
            // (`migrate::streamsync`), before any row of it is touched.
            out.push(streamsync::applier_lock_sql(&t.target));
        }
        out.extend(self.sequential);
        if self.images.is_empty() {
            return;
        }
        if d == Dialect::Postgres && t.keyed {
            let deleted: Vec<&Vec<Value>> = self
                .images
                .iter()
                .filter(|(_, img)| img.is_none())
                .map(|(k, _)| k)
                .collect();
            let cols: Vec<String> = t.plan.key.iter().map(|&i| t.col_name(d, i)).collect();
            for chunk in deleted.chunks(ROWS_PER_STATEMENT) {
                let tuples: Vec<String> = chunk.iter().map(|k| key_tuple(d, t, k)).collect();
                out.push(streamsync::tombstone_sql(&t.target, &cols, &tuples));
            }
        }
        // Without a unique key on the target, an upsert is delete + insert.
        let deletes: Vec<&Vec<Value>> = self
            .images
            .iter()
            .filter(|(_, img)| img.is_none() || !t.unique)
            .map(|(k, _)| k)
            .collect();
        for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
            out.push(delete_keys(d, t, chunk));
        }
        let upserts: Vec<&Row> = self
            .images
            .iter()
            .filter_map(|(_, img)| img.as_ref())
            .collect();
        for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
            out.push(upsert(d, t, chunk));
        }
    }
}

fn key_lhs(d: Dialect, t: &Mapped) -> String {
    let names: Vec<String> = t.plan.key.iter().map(|&i| t.col_name(d, i)).collect();
    if names.len() == 1 {
        names.concat()
    } else {
        format!("({})", names.join(", "))
    }
}

/// A key's literals: `v` for one column, `(v1, v2)` for several.
fn key_literals(d: Dialect, t: &Mapped, k: &[Value]) -> String {
    let lits: Vec<String> = t
        .plan
        .key
        .iter()
        .zip(k.iter())
        .map(|(&i, v)| literal(d, v, t.col_ty(i)))
        .collect();
    if lits.len() == 1 {
        lits.concat()
    } else {
        format!("({})", lits.join(", "))
    }
}

/// A key as a `VALUES` row: always parenthesized.
fn key_tuple(d: Dialect, t: &Mapped, k: &[Value]) -> String {
    let lits = key_literals(d, t, k);
    if t.plan.key.len() == 1 {
        format!("({lits})")
    } else {
        lits
    }
}

fn delete_keys(d: Dialect, t: &Mapped, keys: &[&Vec<Value>]) -> String {
    let tuples: Vec<String> = keys.iter().map(|k| key_literals(d, t, k)).collect();
    format!(
        "DELETE FROM {} WHERE {} IN ({})",
        ident(d, &t.target),
        key_lhs(d, t),
        tuples.join(", ")
    )
}

fn values_tuple(d: Dialect, t: &Mapped, row: &[Value]) -> String {
    let lits: Vec<String> = t
        .written
        .iter()
        .map(|&i| literal(d, row.get(i).unwrap_or(&Value::Null), t.col_ty(i)))
        .collect();
    format!("({})", lits.join(", "))
}

fn upsert(d: Dialect, t: &Mapped, rows: &[&Row]) -> String {
    let cols: Vec<String> = t.written.iter().map(|&i| t.col_name(d, i)).collect();
    let mut sql = format!("INSERT INTO {} ({})", ident(d, &t.target), cols.join(", "));
    if d == Dialect::Postgres {
        sql.push_str(" OVERRIDING SYSTEM VALUE");
    }
    sql.push_str(" VALUES ");
    for (n, row) in rows.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&values_tuple(d, t, row));
    }
    if !t.unique {
        return sql;
    }
    let non_key: Vec<&String> = t
        .written
        .iter()
        .zip(&cols)
        .filter(|(i, _)| !t.plan.key.contains(i))
        .map(|(_, c)| c)
        .collect();
    match d {
        Dialect::Postgres => {
            let target: Vec<String> = t.plan.key.iter().map(|&i| t.col_name(d, i)).collect();
            let _ = write!(sql, " ON CONFLICT ({})", target.join(", "));
            if non_key.is_empty() {
                sql.push_str(" DO NOTHING");
            } else {
                let sets: Vec<String> = non_key
                    .iter()
                    .map(|c| format!("{c} = EXCLUDED.{c}"))
                    .collect();
                let _ = write!(sql, " DO UPDATE SET {}", sets.join(", "));
            }
        }
        Dialect::Mysql => {
            let sets: Vec<String> = if non_key.is_empty() {
                cols.iter().take(1).map(|c| format!("{c} = {c}")).collect()
            } else {
                non_key
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect()
            };
            let _ = write!(sql, " ON DUPLICATE KEY UPDATE {}", sets.join(", "));
        }
    }
    sql
}

/// `c1 = v1 AND c2 IS NULL …` over every column, for tables without a key.
fn match_all(d: Dialect, t: &Mapped, row: &[Value]) -> String {
    let conds: Vec<String> = (0..t.plan.columns.len())
        .map(|i| {
            let name = t.col_name(d, i);
            match row.get(i) {
                None | Some(Value::Null) => format!("{name} IS NULL"),
                Some(v) => format!("{name} = {}", literal(d, v, t.col_ty(i))),
            }
        })
        .collect();
    conds.join(" AND ")
}

/// One change to a table without a key: one matching row at most.
fn unkeyed(d: Dialect, t: &Mapped, before: Option<&[Value]>, after: Option<&[Value]>) -> String {
    let table = ident(d, &t.target);
    let one = |row: &[Value]| match d {
        Dialect::Postgres => format!(
            "ctid = (SELECT ctid FROM {table} WHERE {} LIMIT 1)",
            match_all(d, t, row)
        ),
        Dialect::Mysql => format!("{} LIMIT 1", match_all(d, t, row)),
    };
    match (before, after) {
        (None, Some(a)) => upsert_plain(d, t, a),
        (Some(b), None) => format!("DELETE FROM {table} WHERE {}", one(b)),
        (Some(b), Some(a)) => {
            let sets: Vec<String> = t
                .written
                .iter()
                .map(|&i| {
                    format!(
                        "{} = {}",
                        t.col_name(d, i),
                        literal(d, a.get(i).unwrap_or(&Value::Null), t.col_ty(i))
                    )
                })
                .collect();
            format!("UPDATE {table} SET {} WHERE {}", sets.join(", "), one(b))
        }
        (None, None) => String::new(),
    }
}

fn upsert_plain(d: Dialect, t: &Mapped, row: &[Value]) -> String {
    let cols: Vec<String> = t.written.iter().map(|&i| t.col_name(d, i)).collect();
    format!(
        "INSERT INTO {} ({}){} VALUES {}",
        ident(d, &t.target),
        cols.join(", "),
        if d == Dialect::Postgres {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        },
        values_tuple(d, t, row)
    )
}
