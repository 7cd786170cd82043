//! The dual-write path of one statement: pin its non-deterministic values
//! before the primary runs it, then build the text the secondary gets from the
//! primary's answer (explicit auto-increment ids).
//!
//! Order of events for a write in `dual_write`:
//! 1. `plan`: find pins (`NOW()`, `UUID()`, …) and, if any, evaluate them on
//!    the primary connection itself (`SELECT NOW(), UUID()` — same session, so
//!    the session time zone and precision are respected) and substitute the
//!    literals: both backends get the same value.
//! 2. The primary runs the pinned text; its response is relayed to the client.
//! 3. `mirror_text`: if it succeeded, the same text plus the ids the primary
//!    assigned (from the OK packet) is queued for the secondary.

use std::ops::Range;

use crate::backend::mysql::BackendConn;
use crate::backend::BackendError;
use crate::sql::parse::Parsed;
use crate::sql::pin::{self, InsertShape, WriteShape};
use crate::sql::schema::{Schema, TableInfo};
use crate::wire::execute::ParamValue;
use crate::wire::packets::OkInfo;

/// A write ready to run on the primary.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The original statement text.
    pub original: String,
    /// Edits that turn `original` into the text both backends run.
    pub edits: Vec<(Range<usize>, String)>,
    pub shape: WriteShape,
    /// @@auto_increment_increment when it was fetched with the pins.
    pub increment: Option<u64>,
}

impl Plan {
    /// True when the primary must run a rewritten text (pins were found, or
    /// parameters were inlined).
    pub fn rewrites(&self) -> bool {
        !self.edits.is_empty()
    }

    /// The text the primary runs.
    pub fn primary_text(&self) -> String {
        pin::apply_edits(&self.original, self.edits.clone())
    }

    /// The text the secondary runs: the primary's, plus explicit
    /// auto-increment ids the primary generated, without a `RETURNING`
    /// clause (the secondary's rows would go nowhere). An error means the
    /// primary generated ids the proxy cannot know: the caller reports drift
    /// rather than let the secondary number the rows differently.
    pub fn mirror_text(
        &self,
        generated: Generated<'_>,
        table: Option<&TableInfo>,
        increment: u64,
    ) -> Result<String, String> {
        let mut edits = self.edits.clone();
        if let Some(r) = self.shape.returning.as_ref().and_then(|r| r.range.clone()) {
            edits.push((r, String::new()));
        }
        if let (Some(ins), Some(table)) = (&self.shape.insert, table) {
            if let Some(ids) = id_edits(
                &self.original,
                ins,
                table,
                generated,
                increment,
                &self.edits,
            )? {
                edits.extend(ids);
            }
        }
        Ok(pin::apply_edits(&self.original, edits))
    }
}

impl Plan {
    /// The plan of a text the primary ran as written (no pins, no
    /// parameters): what a replay of a finished write starts from.
    pub fn unpinned(sql: &str) -> Result<Plan, String> {
        Ok(Plan {
            original: sql.to_string(),
            edits: Vec::new(),
            shape: pin::analyze(sql)?,
            increment: None,
        })
    }
}

/// The one id-replay path: the text the secondary runs for `sql`, which the
/// primary ran unchanged and answered with `ok`, with the AUTO_INCREMENT ids
/// the primary generated written in (the table is looked up in `schema`).
/// Translating the result for PostgreSQL is the mirror's job, not this one's.
pub fn replay_text(
    sql: &str,
    ok: &OkInfo,
    schema: &Schema,
    increment: u64,
) -> Result<String, String> {
    let plan = Plan::unpinned(sql)?;
    let table = plan
        .shape
        .insert
        .as_ref()
        .and_then(|i| schema.table(&i.table));
    plan.mirror_text(Generated::Ok(ok), table, increment)
}

/// Where the auto-increment ids the primary generated for an INSERT come from.
#[derive(Debug, Clone, Copy)]
pub enum Generated<'a> {
    /// The OK packet: the first id; a multi-row insert's others follow it,
    /// stepping by @@auto_increment_increment.
    Ok(&'a OkInfo),
    /// The auto-increment column of the `RETURNING` rows, one per row
    /// inserted, in the order of the VALUES rows.
    Returned(&'a [u64]),
    /// The primary answered with rows that do not carry the ids (the reason).
    Unknown(&'a str),
}

/// Analyzes `sql`, inlines `params` (prepared statements) and evaluates pins on
/// the primary. `backslash_escapes` is the session's string-literal mode.
/// With `want_increment`, an INSERT also fetches @@auto_increment_increment in
/// the same round trip (before the write, so the client's ROW_COUNT() and
/// SHOW WARNINGS still describe its own statement).
///
/// The outer error is a broken primary connection; the inner one a reason the
/// statement cannot be mirrored (it still runs on the primary unchanged).
pub async fn plan(
    primary: &mut BackendConn,
    mut parsed: Parsed<'_>,
    params: Option<&[ParamValue]>,
    backslash_escapes: bool,
    want_increment: bool,
) -> Result<Result<Plan, String>, BackendError> {
    let sql = parsed.text();
    let shape = match pin::analyze_parsed(&mut parsed) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let mut edits = match params {
        Some(values) => match param_edits(&shape, values, backslash_escapes) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e)),
        },
        None => Vec::new(),
    };
    let fetch_increment = want_increment && shape.insert.is_some();
    let mut increment = None;
    if !shape.pins.is_empty() || fetch_increment {
        let mut exprs: Vec<&str> = shape.pins.iter().map(|p| p.expr.as_str()).collect();
        if fetch_increment {
            exprs.push("@@auto_increment_increment");
        }
        let rows = match primary
            .query_rows(&format!("SELECT {}", exprs.join(", ")))
            .await
        {
            Ok(rows) => rows,
            Err(BackendError::Server(e)) => {
                return Ok(Err(format!("evaluating pinned values failed: {e}")))
            }
            Err(other) => return Err(other),
        };
        let row = rows.into_iter().next().unwrap_or_default();
        for (i, p) in shape.pins.iter().enumerate() {
            let value = row.get(i).cloned().flatten();
            edits.push((p.range.clone(), pin::literal(p.kind, value.as_deref())));
        }
        if fetch_increment {
            increment = row.last().cloned().flatten().and_then(|v| v.parse().ok());
        }
    }
    Ok(Ok(Plan {
        original: sql.to_string(),
        edits,
        shape,
        increment,
    }))
}

/// The literal replacing each `?` placeholder of `shape`.
fn param_edits(
    shape: &pin::WriteShape,
    values: &[ParamValue],
    backslash_escapes: bool,
) -> Result<Vec<(std::ops::Range<usize>, String)>, String> {
    if values.len() != shape.placeholders.len() {
        return Err(format!(
            "{} parameters for {} placeholders",
            values.len(),
            shape.placeholders.len()
        ));
    }
    shape
        .placeholders
        .iter()
        .zip(values)
        .map(|(range, v)| match v.to_literal(backslash_escapes) {
            Some(lit) => Ok((range.clone(), lit)),
            None => Err("parameter sent with COM_STMT_SEND_LONG_DATA".into()),
        })
        .collect()
}

/// A prepared statement's text with its execute parameters written in as
/// literals (what a shadow read runs on the other backend).
pub fn inline_params(
    sql: &str,
    values: &[ParamValue],
    backslash_escapes: bool,
) -> Result<String, String> {
    let shape = pin::analyze(sql)?;
    let edits = param_edits(&shape, values, backslash_escapes)?;
    Ok(pin::apply_edits(sql, edits))
}

fn is_generated(value: &str) -> bool {
    let v = value.trim();
    v.eq_ignore_ascii_case("NULL") || v == "0" || v.eq_ignore_ascii_case("DEFAULT")
}

/// Text edits: byte range of the original, replacement.
type Edits = Vec<(Range<usize>, String)>;

/// Edits that write the ids the primary generated explicitly. `Ok(None)`:
/// nothing to write, or (OK packet only) the ids are ambiguous and the
/// secondary numbers the rows itself, as it always did. `Err`: the statement
/// answered with rows and the ids it generated are not known.
fn id_edits(
    sql: &str,
    ins: &InsertShape,
    table: &TableInfo,
    generated: Generated<'_>,
    increment: u64,
    existing: &[(Range<usize>, String)],
) -> Result<Option<Edits>, String> {
    let Some(col) = table.auto_increment_column() else {
        return Ok(None);
    };
    let rows = ins.rows.len();
    let position = if ins.columns.is_empty() {
        table
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&col.name))
    } else {
        ins.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(&col.name))
    };
    if ins.columns.is_empty() && position.is_none() {
        return Ok(None);
    }
    // Per row: the span of its id value, or None when the column is omitted.
    let mut slots: Vec<Option<Range<usize>>> = Vec::with_capacity(rows);
    let mut needed = false;
    for row in &ins.rows {
        match position {
            Some(pos) => {
                let Some(r) = row.get(pos).cloned() else {
                    return Ok(None);
                };
                // A value the proxy already replaced (a parameter or a pin).
                let replaced = existing
                    .iter()
                    .find(|(er, _)| *er == r)
                    .map(|(_, t)| t.as_str());
                let text = replaced.unwrap_or(sql.get(r.clone()).unwrap_or_default());
                if is_generated(text) {
                    needed = true;
                    slots.push(Some(r));
                } else {
                    slots.push(None);
                }
            }
            None => {
                needed = true;
                slots.push(None);
            }
        }
    }
    if !needed {
        return Ok(None);
    }
    let mut ids: Vec<u64> = Vec::with_capacity(rows);
    match generated {
        Generated::Ok(ok) => {
            if ok.last_insert_id == 0 {
                return Ok(None);
            }
            let affected = ok.affected_rows;
            // Did every VALUES row insert exactly one row (ids consecutive)?
            let certain = if ins.on_duplicate_key_update {
                // Counts 1 per insert, 2 per update, 0 per unchanged row.
                match rows {
                    1 if affected == 1 => true,
                    1 => return Ok(None), // updated or unchanged: no new row
                    _ => false,
                }
            } else if ins.replace {
                // Counts 2 for a row that replaced another.
                rows == 1 || affected == rows as u64
            } else if affected == 0 {
                return Ok(None); // INSERT IGNORE that skipped every row
            } else {
                affected == rows as u64
            };
            if !certain {
                return Err(format!(
                    "{affected} rows affected by {rows} VALUES rows (some skipped, updated or replaced): \
                     which generated `{}` belongs to which row is unknown",
                    col.name
                ));
            }
            let step = increment.max(1);
            let mut next = ok.last_insert_id;
            for slot in &slots {
                let generated_here = position.is_none() || slot.is_some();
                ids.push(if generated_here { next } else { 0 });
                if generated_here {
                    next = next.saturating_add(step);
                }
            }
        }
        Generated::Returned(returned) => {
            if returned.len() != rows {
                return Err(format!(
                    "{} rows in VALUES but {} returned (rows skipped or updated): \
                     which id belongs to which row is unknown",
                    rows,
                    returned.len()
                ));
            }
            ids.extend_from_slice(returned);
        }
        Generated::Unknown(reason) => {
            return Err(format!(
                "the primary generated `{}` values the proxy cannot see: {reason}",
                col.name
            ))
        }
    }
    let mut out = Vec::new();
    match position {
        Some(_) => {
            for (slot, id) in slots.into_iter().zip(&ids) {
                if let Some(r) = slot {
                    out.push((r, id.to_string()));
                }
            }
        }
        None => {
            let Some(at) = ins.first_column_at else {
                return Ok(None);
            };
            out.push((at..at, format!("`{}`, ", col.name.replace('`', "``"))));
            for (&start, id) in ins.row_starts.iter().zip(&ids) {
                out.push((start..start, format!("{id}, ")));
            }
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::schema::ColumnInfo;

    fn table() -> TableInfo {
        let col = |n: &str, ai: bool| ColumnInfo {
            name: n.into(),
            column_type: "int(11)".into(),
            nullable: !ai,
            auto_increment: ai,
        };
        TableInfo {
            name: "t".into(),
            columns: vec![col("id", true), col("a", false), col("b", false)],
            primary_key: vec!["id".into()],
            unique_keys: vec![],
        }
    }

    fn mirror(sql: &str, ok: OkInfo) -> String {
        let plan = Plan {
            original: sql.into(),
            edits: vec![],
            shape: pin::analyze(sql).unwrap(),
            increment: None,
        };
        plan.mirror_text(Generated::Ok(&ok), Some(&table()), 1)
            .unwrap()
    }

    fn returned(sql: &str, generated: Generated<'_>) -> Result<String, String> {
        let plan = Plan {
            original: sql.into(),
            edits: vec![],
            shape: pin::analyze(sql).unwrap(),
            increment: None,
        };
        plan.mirror_text(generated, Some(&table()), 1)
    }

    #[test]
    fn returning_rows_give_the_ids_and_the_clause_is_dropped() {
        assert_eq!(
            returned(
                "INSERT INTO t (a, b) VALUES (1, 2), (3, 4) RETURNING t.id",
                Generated::Returned(&[41, 57])
            )
            .unwrap(),
            "INSERT INTO t (`id`, a, b) VALUES (41, 1, 2), (57, 3, 4) "
        );
        assert_eq!(
            returned(
                "INSERT INTO t (id, a) VALUES (NULL, 1), (9, 2) RETURNING id, a",
                Generated::Returned(&[10, 9])
            )
            .unwrap(),
            "INSERT INTO t (id, a) VALUES (10, 1), (9, 2) "
        );
        // Explicit ids or a DELETE need none: the clause just goes.
        assert_eq!(
            returned(
                "DELETE FROM t WHERE a > 1 RETURNING id",
                Generated::Unknown("x")
            )
            .unwrap(),
            "DELETE FROM t WHERE a > 1 "
        );
        assert_eq!(
            returned(
                "INSERT INTO t (id, a) VALUES (3, 1) RETURNING a",
                Generated::Unknown("x")
            )
            .unwrap(),
            "INSERT INTO t (id, a) VALUES (3, 1) "
        );
    }

    #[test]
    fn returning_without_the_ids_is_an_error_not_a_guess() {
        let e = returned(
            "INSERT INTO t (a) VALUES (1), (2) RETURNING a",
            Generated::Unknown("RETURNING does not list it"),
        )
        .unwrap_err();
        assert!(
            e.contains("`id`") && e.contains("RETURNING does not list it"),
            "{e}"
        );
        let e = returned(
            "INSERT IGNORE INTO t (a) VALUES (1), (2) RETURNING id",
            Generated::Returned(&[5]),
        )
        .unwrap_err();
        assert!(e.contains("2 rows in VALUES but 1 returned"), "{e}");
    }

    fn ok(affected: u64, id: u64) -> OkInfo {
        OkInfo {
            affected_rows: affected,
            last_insert_id: id,
            ..Default::default()
        }
    }

    #[test]
    fn ids_added_when_the_column_is_omitted() {
        assert_eq!(
            mirror("INSERT INTO t (a, b) VALUES (1, 2), (3, 4)", ok(2, 41)),
            "INSERT INTO t (`id`, a, b) VALUES (41, 1, 2), (42, 3, 4)"
        );
    }

    #[test]
    fn null_and_zero_ids_replaced_explicit_kept() {
        assert_eq!(
            mirror("INSERT INTO t (id, a) VALUES (NULL, 1), (0, 2)", ok(2, 10)),
            "INSERT INTO t (id, a) VALUES (10, 1), (11, 2)"
        );
        assert_eq!(
            mirror("INSERT INTO t VALUES (NULL, 1, 2)", ok(1, 5)),
            "INSERT INTO t VALUES (5, 1, 2)"
        );
        let explicit = "INSERT INTO t (id, a) VALUES (99, 1)";
        assert_eq!(mirror(explicit, ok(1, 99)), explicit);
    }

    #[test]
    fn ambiguous_cases_are_reported_not_guessed() {
        let plan = |sql: &str| Plan {
            original: sql.into(),
            edits: vec![],
            shape: pin::analyze(sql).unwrap(),
            increment: None,
        };
        let ignore = "INSERT IGNORE INTO t (a) VALUES (1), (2)";
        let e = plan(ignore)
            .mirror_text(Generated::Ok(&ok(1, 7)), Some(&table()), 1)
            .unwrap_err();
        assert!(e.contains("1 rows affected by 2 VALUES rows"), "{e}");
        assert_eq!(mirror(ignore, ok(0, 0)), ignore, "nothing inserted");
        let odku = "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2";
        assert_eq!(mirror(odku, ok(2, 7)), odku, "updated, not inserted");
        assert_eq!(
            mirror(odku, ok(1, 7)),
            "INSERT INTO t (`id`, a) VALUES (7, 1) ON DUPLICATE KEY UPDATE a = 2"
        );
        let odku2 = "INSERT INTO t (a) VALUES (1), (2) ON DUPLICATE KEY UPDATE a = 2";
        assert!(plan(odku2)
            .mirror_text(Generated::Ok(&ok(2, 7)), Some(&table()), 1)
            .is_err());
        let replace = "REPLACE INTO t (a) VALUES (1), (2)";
        assert_eq!(
            mirror(replace, ok(2, 4)),
            "REPLACE INTO t (`id`, a) VALUES (4, 1), (5, 2)"
        );
        assert!(plan(replace)
            .mirror_text(Generated::Ok(&ok(3, 4)), Some(&table()), 1)
            .is_err());
        let update = "UPDATE t SET a = 1";
        assert_eq!(mirror(update, ok(3, 0)), update);
    }

    #[test]
    fn increment_is_respected() {
        let plan = Plan {
            original: "INSERT INTO t (a) VALUES (1), (2)".into(),
            edits: vec![],
            shape: pin::analyze("INSERT INTO t (a) VALUES (1), (2)").unwrap(),
            increment: None,
        };
        assert_eq!(
            plan.mirror_text(Generated::Ok(&ok(2, 3)), Some(&table()), 10)
                .unwrap(),
            "INSERT INTO t (`id`, a) VALUES (3, 1), (13, 2)"
        );
    }
}
