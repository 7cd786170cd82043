//! MySQL → PostgreSQL statement translation, for the dual-write mirror
//! (writes that succeeded on MySQL are replayed on PostgreSQL) and later
//! for reads routed to PostgreSQL.
//!
//! The MySQL text is parsed with sqlparser's MySQL dialect, the AST is
//! rewritten and printed; nothing is done by string substitution. What
//! cannot be carried over exactly is reported as
//! [`TranslateError::Untranslatable`] naming the construct, never changed in
//! meaning silently. README's "MySQL → PostgreSQL translation" section lists every rule.
//!
//! Layout: `dml` (INSERT shapes) and `update` (UPDATE/DELETE shapes) run
//! first on the MySQL AST; then `expr` rewrites every expression in one
//! visitor pass, with `func` for functions, `literal` for values, `query`
//! for SELECT-level clauses and `scope` to find the column a name refers to.
//! `ddl` and `alter` handle schema changes, `types` maps column types,
//! `names` identifiers.

mod alter;
mod build;
mod ddl;
mod dml;
mod expr;
mod func;
mod literal;
mod names;
mod pinned;
mod query;
mod scope;
mod types;
mod update;

#[cfg(test)]
mod tests;

use std::ops::{ControlFlow, Range};

use sqlparser::ast::{Statement, Value, ValueWithSpan, VisitMut, VisitorMut};
use sqlparser::tokenizer::Span;

use super::parse::Parsed;
use super::schema::Schema;
use scope::Scope;

/// The PostgreSQL statements for one MySQL text, to run in order (in one
/// transaction when there are several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translated {
    pub statements: Vec<String>,
    /// What a DDL translation dropped or approximated (FULLTEXT indexes,
    /// index prefix lengths, FIRST/AFTER…). Empty for DML.
    pub notes: Vec<String>,
    /// The foreign keys of a CREATE TABLE. Each is also in `statements` (as
    /// its `ALTER TABLE … ADD CONSTRAINT`, after the table and its indexes),
    /// so running `statements` gives the whole table; a caller that adds
    /// foreign keys later (schema, the dual-write mirror) takes them out with
    /// [`Translated::split_foreign_keys`].
    pub foreign_keys: Vec<ForeignKey>,
}

/// One foreign key of a translated CREATE TABLE, as PostgreSQL names things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing table's stored name.
    pub table: String,
    /// The constraint's name (MySQL's, or `<table>_ibfk_<n>` as MySQL names
    /// an unnamed one, so a later `DROP FOREIGN KEY` finds it).
    pub name: String,
    /// The referenced table's stored name.
    pub references: String,
    /// `FOREIGN KEY (…) REFERENCES …(…) [ON DELETE …]`.
    pub definition: String,
}

impl ForeignKey {
    /// `ALTER TABLE t ADD CONSTRAINT c <definition>`, `NOT VALID` when asked
    /// (checked for new rows only until `VALIDATE CONSTRAINT`).
    pub fn add_sql(&self, not_valid: bool) -> String {
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {}{}",
            quote(&self.table),
            quote(&self.name),
            self.definition,
            if not_valid { " NOT VALID" } else { "" }
        )
    }
}

/// A stored name as a PostgreSQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Translated {
    /// The statements without the foreign keys' `ALTER TABLE`s, and those
    /// foreign keys.
    pub fn split_foreign_keys(self) -> (Vec<String>, Vec<ForeignKey>) {
        let fks = self.foreign_keys;
        let added: Vec<String> = fks.iter().map(|f| f.add_sql(false)).collect();
        let statements = self
            .statements
            .into_iter()
            .filter(|s| !added.contains(s))
            .collect();
        (statements, fks)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot parse: {0}")]
    Parse(String),
    #[error("untranslatable: {construct}")]
    Untranslatable { construct: String },
}

fn untranslatable(construct: impl Into<String>) -> TranslateError {
    TranslateError::Untranslatable {
        construct: construct.into(),
    }
}

/// Translates MySQL SQL text (one or more statements) into PostgreSQL.
///
/// An INSERT that leaves the AUTO_INCREMENT column to the database gets
/// PostgreSQL's own identity value here; the mirror first writes MySQL's ids
/// into the text (`dual::replay_text` / `Plan::mirror_text`, the one
/// id-replay path) so both sides store the same ids.
pub fn to_postgres(mysql_sql: &str, schema: &Schema) -> Result<Translated, TranslateError> {
    guarded(mysql_sql, || translate(mysql_sql, schema))
}

/// [`to_postgres`] of a carried statement (`sql::parse`) with `edits` —
/// byte ranges of its text and the MySQL literals that replace them, as
/// `pin::apply_edits` takes them — applied: the AST the statement was parsed
/// into once is edited in place (`pinned`) and translated, without parsing
/// the edited text again. Takes the AST: translation is the last step.
pub fn to_postgres_parsed(
    parsed: &mut Parsed<'_>,
    schema: &Schema,
    edits: &[(Range<usize>, String)],
) -> Result<Translated, TranslateError> {
    let sql = parsed.text();
    let spliced = || to_postgres(&super::pin::apply_edits(sql, edits.to_vec()), schema);
    let mut statements = match parsed.take() {
        Some(Ok(statements)) => statements,
        Some(Err(e)) if edits.is_empty() => return Err(TranslateError::Parse(e)),
        Some(Err(_)) | None => return spliced(),
    };
    if !edits.is_empty() && pinned::substitute(sql, &mut statements, edits).is_none() {
        tracing::debug!("pinned values not placed in the AST; translating the edited text");
        return spliced();
    }
    guarded(sql, move || {
        let mut out = Translated::default();
        for statement in statements {
            translate_statement(statement, schema, &mut out)?;
        }
        Ok(out)
    })
}

/// sqlparser has had panics on odd input in the past, and a panic in the
/// rewrite would be a bug; either way the mirror must not lose its task over
/// one statement. Heavy text runs on a big-stack thread (`sql::parse`).
/// Tests call `translate` directly so that a panic there still fails them.
fn guarded(
    mysql_sql: &str,
    f: impl FnOnce() -> Result<Translated, TranslateError> + Send,
) -> Result<Translated, TranslateError> {
    match super::parse::guarded(super::parse::weight(mysql_sql), f) {
        Ok(result) => result,
        Err(super::parse::GuardError::Panicked) => Err(TranslateError::Parse(
            "the translator panicked on this text (a bug)".into(),
        )),
        Err(e) => Err(TranslateError::Parse(e.to_string())),
    }
}

fn translate(mysql_sql: &str, schema: &Schema) -> Result<Translated, TranslateError> {
    let statements =
        super::parse::statements(mysql_sql).map_err(|e| TranslateError::Parse(e.to_string()))?;
    let mut out = Translated::default();
    for statement in statements {
        translate_statement(statement, schema, &mut out)?;
    }
    Ok(out)
}

/// Numbers `?` placeholders `$1…$n` in the order they appear in the text,
/// before any rewrite moves them (`LIMIT ?, ?` → `LIMIT $2 OFFSET $1`).
fn number_placeholders(statement: &mut Statement) -> Result<(), TranslateError> {
    struct Positions(Vec<(u64, u64)>);
    impl VisitorMut for Positions {
        type Break = ();
        fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
            if matches!(&v.value, Value::Placeholder(p) if p == "?") {
                self.0.push((v.span.start.line, v.span.start.column));
            }
            ControlFlow::Continue(())
        }
    }
    struct Assign {
        numbers: Vec<usize>,
        next: usize,
    }
    impl VisitorMut for Assign {
        type Break = TranslateError;
        fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<TranslateError> {
            match &v.value {
                Value::Placeholder(p) if p == "?" => {
                    let n = self
                        .numbers
                        .get(self.next)
                        .copied()
                        .unwrap_or(self.next + 1);
                    self.next += 1;
                    v.value = Value::Placeholder(format!("${n}"));
                    v.span = Span::empty();
                }
                Value::Placeholder(p) => {
                    return ControlFlow::Break(untranslatable(format!("placeholder {p}")))
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut positions = Positions(Vec::new());
    let _ = statement.visit(&mut positions);
    let mut order: Vec<usize> = (0..positions.0.len()).collect();
    order.sort_by_key(|&i| (positions.0[i], i));
    let mut numbers = vec![0; order.len()];
    for (rank, &visit_index) in order.iter().enumerate() {
        numbers[visit_index] = rank + 1;
    }
    match statement.visit(&mut Assign { numbers, next: 0 }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}

fn translate_statement(
    mut statement: Statement,
    schema: &Schema,
    out: &mut Translated,
) -> Result<(), TranslateError> {
    number_placeholders(&mut statement)?;
    match &mut statement {
        Statement::Query(_) => {
            let scope = Scope::collect(&statement, schema);
            expr::rewrite(&mut statement, &scope)?;
        }
        Statement::Insert(insert) => {
            let mut scope = Scope::collect(&*insert, schema);
            dml::insert(insert, schema, &mut scope)?;
            expr::rewrite(&mut statement, &scope)?;
        }
        Statement::Update(update) => {
            let scope = Scope::collect(&*update, schema);
            update::update(update, schema)?;
            expr::rewrite(&mut statement, &scope)?;
        }
        Statement::Delete(delete) => {
            let scope = Scope::collect(&*delete, schema);
            update::delete(delete, schema)?;
            expr::rewrite(&mut statement, &scope)?;
        }
        _ => return ddl_or_other(statement, out),
    }
    out.statements.push(statement.to_string());
    Ok(())
}

fn ddl_or_other(statement: Statement, out: &mut Translated) -> Result<(), TranslateError> {
    let construct = match statement {
        Statement::CreateTable(ct) => return ddl::create_table(ct, out),
        Statement::AlterTable(at) => return alter::alter_table(at, out),
        Statement::CreateIndex(ci) => return alter::create_index_statement(ci, out),
        Statement::Drop {
            object_type,
            if_exists,
            names,
            table,
            ..
        } => return alter::drop(object_type, if_exists, names, table, out),
        Statement::Truncate(t) => return alter::truncate(t, out),
        Statement::RenameTable(r) => return alter::rename_tables(r, out),
        Statement::CreateDatabase { .. } | Statement::CreateSchema { .. } => {
            "CREATE DATABASE (database-level DDL is not mirrored)"
        }
        Statement::LockTables { .. } => "LOCK TABLES",
        Statement::UnlockTables => "UNLOCK TABLES",
        Statement::Set(_) => "SET statement",
        Statement::Call(_) => "CALL (stored procedure)",
        Statement::CreateProcedure { .. } | Statement::DropProcedure { .. } => "stored procedure",
        Statement::CreateFunction(_) | Statement::DropFunction(_) => "stored function",
        Statement::CreateTrigger(_) | Statement::DropTrigger(_) => "trigger",
        Statement::CreateView(_) | Statement::AlterView(_) => "view",
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => "transaction control",
        Statement::Use(_) => "USE statement",
        Statement::Explain { .. } | Statement::ExplainTable { .. } => "EXPLAIN",
        Statement::Grant(_) | Statement::Revoke(_) => "GRANT/REVOKE",
        Statement::CreateUser(_) | Statement::AlterUser(_) => "account management",
        Statement::Prepare { .. } | Statement::Execute { .. } | Statement::Deallocate { .. } => {
            "PREPARE/EXECUTE (SQL-level prepared statement)"
        }
        Statement::Kill { .. } => "KILL",
        Statement::Flush { .. } => "FLUSH",
        Statement::LoadData { .. } => "LOAD DATA",
        Statement::Analyze(_) | Statement::OptimizeTable { .. } => "table maintenance",
        other => {
            let text = other.to_string();
            let words: Vec<&str> = text.split_whitespace().take(2).collect();
            return Err(untranslatable(format!("{} statement", words.join(" "))));
        }
    };
    Err(untranslatable(construct))
}
