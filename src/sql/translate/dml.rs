//! INSERT shapes that PostgreSQL spells differently (INSERT IGNORE, ON
//! DUPLICATE KEY UPDATE, REPLACE, INSERT … SET) and the SET-list rules shared
//! with UPDATE. Runs on the MySQL AST before the expression pass
//! (`expr::rewrite`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    helpers::attached_token::AttachedToken, Assignment, AssignmentTarget, ConflictTarget, DoUpdate,
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Insert, ObjectName,
    ObjectNamePart, OnConflict, OnConflictAction, OnInsert, Query, SetExpr, TableObject, Values,
    VisitMut, VisitorMut,
};

use super::build::paren;
use super::literal::coerce;
use super::names::{last_ident, protect, protect_object_name, qualified, schema_ident};
use super::scope::Scope;
use super::{untranslatable, TranslateError};
use crate::sql::schema::{Schema, TableInfo};

pub(super) fn column_of(target: &AssignmentTarget) -> Result<Ident, TranslateError> {
    match target {
        AssignmentTarget::ColumnName(name) => last_ident(name)
            .cloned()
            .ok_or_else(|| untranslatable(format!("assignment to {name}"))),
        AssignmentTarget::Tuple(_) => Err(untranslatable("tuple assignment")),
    }
}

/// The qualifier of `t.c` in an assignment target, if any.
pub(super) fn qualifier_of(target: &AssignmentTarget) -> Option<String> {
    match target {
        AssignmentTarget::ColumnName(name) if name.0.len() >= 2 => {
            match &name.0[name.0.len() - 2] {
                ObjectNamePart::Identifier(i) => Some(i.value.clone()),
                ObjectNamePart::Function(_) => None,
            }
        }
        _ => None,
    }
}

/// PostgreSQL assignment targets are bare column names.
fn bare_target(mut column: Ident) -> AssignmentTarget {
    protect(&mut column);
    AssignmentTarget::ColumnName(ObjectName(vec![ObjectNamePart::Identifier(column)]))
}

/// Rewrites column references in one assignment value: `VALUES(c)` and the
/// row alias become `excluded.c` (ON DUPLICATE KEY only), the table's columns
/// get qualified when `qualify_with` is set (PostgreSQL finds bare names
/// ambiguous in DO UPDATE), and columns assigned earlier in the same SET are
/// replaced by their new value, since MySQL evaluates single-table
/// assignments left to right. Subqueries are left alone.
struct ColumnRefs<'a> {
    table: Option<&'a TableInfo>,
    binding: &'a str,
    qualify_with: Option<Ident>,
    upsert: bool,
    row_alias: Option<&'a str>,
    assigned: &'a [(String, Expr)],
    depth: usize,
    /// Bytes of SQL that substitutions may still add: `SET a = a + a,
    /// b = a + a, …` doubles at every step.
    budget: &'a mut usize,
}

/// Most SQL text the left-to-right substitutions of one SET list may add.
const SUBSTITUTION_BUDGET: usize = 64 * 1024;

impl ColumnRefs<'_> {
    fn is_column(&self, name: &str) -> bool {
        self.table.is_some_and(|t| t.column(name).is_some())
            || self
                .assigned
                .iter()
                .any(|(a, _)| a.eq_ignore_ascii_case(name))
    }

    fn replacement(&mut self, column: &Ident) -> Result<Option<Expr>, TranslateError> {
        if let Some((_, value)) = self
            .assigned
            .iter()
            .rev()
            .find(|(c, _)| c.eq_ignore_ascii_case(&column.value))
        {
            let size = value.to_string().len();
            *self.budget = self.budget.checked_sub(size).ok_or_else(|| {
                untranslatable("SET list whose left-to-right evaluation grows too large")
            })?;
            return Ok(Some(paren(value.clone())));
        }
        Ok(self
            .qualify_with
            .clone()
            .map(|q| qualified(q, column.clone())))
    }
}

fn excluded(column: Ident) -> Expr {
    qualified(Ident::new("excluded"), column)
}

impl VisitorMut for ColumnRefs<'_> {
    type Break = TranslateError;

    fn pre_visit_query(&mut self, _q: &mut Query) -> ControlFlow<TranslateError> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<TranslateError> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    /// The new row's values, before the columns inside them get rewritten.
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<TranslateError> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        let replacement = match expr {
            Expr::Function(f) if is_values_call(f) => match values_arg(f) {
                Some(c) if self.upsert => excluded(c),
                _ => {
                    return ControlFlow::Break(untranslatable(
                        "VALUES(…) outside ON DUPLICATE KEY UPDATE",
                    ))
                }
            },
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2
                    && self
                        .row_alias
                        .is_some_and(|a| a.eq_ignore_ascii_case(&parts[0].value)) =>
            {
                excluded(parts[1].clone())
            }
            _ => return ControlFlow::Continue(()),
        };
        *expr = replacement;
        ControlFlow::Continue(())
    }

    /// Columns of the target row. Done after the children, so a substituted
    /// value is not rewritten a second time.
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<TranslateError> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        let replacement = match expr {
            Expr::Identifier(c)
                if (c.quote_style.is_some() || !c.value.eq_ignore_ascii_case("DEFAULT"))
                    && self.is_column(&c.value) =>
            {
                self.replacement(c)
            }
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(self.binding) =>
            {
                self.replacement(&parts[1])
            }
            _ => Ok(None),
        };
        match replacement {
            Ok(Some(r)) => *expr = r,
            Ok(None) => {}
            Err(e) => return ControlFlow::Break(e),
        }
        ControlFlow::Continue(())
    }
}

fn is_values_call(f: &Function) -> bool {
    matches!(f.name.0.as_slice(), [ObjectNamePart::Identifier(i)] if i.value.eq_ignore_ascii_case("VALUES"))
}

fn values_arg(f: &Function) -> Option<Ident> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(c)))] => Some(c.clone()),
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::CompoundIdentifier(p)))] => {
            p.last().cloned()
        }
        _ => None,
    }
}

fn rewrite_refs(value: &mut Expr, refs: &mut ColumnRefs) -> Result<(), TranslateError> {
    match value.visit(refs) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}

/// Coerces assignment values for their columns and strips qualifiers.
pub(super) fn prepare_assignments(
    assignments: &mut [Assignment],
    table: Option<&TableInfo>,
) -> Result<(), TranslateError> {
    for a in assignments {
        let column = column_of(&a.target)?;
        if let Some(info) = table.and_then(|t| t.column(&column.value)) {
            coerce(
                &mut a.value,
                &info.kind(),
                &format!("{}.{}", table.map_or("", |t| &t.name), info.name),
            )?;
        }
        a.target = bare_target(column);
    }
    Ok(())
}

/// Applies left-to-right semantics (and, for an upsert, qualification and
/// `excluded`) to a SET list.
pub(super) fn sequential(
    assignments: &mut Vec<Assignment>,
    table: Option<&TableInfo>,
    binding: &str,
    upsert: Option<(Ident, Option<&str>)>,
) -> Result<(), TranslateError> {
    let mut assigned: Vec<(String, Expr)> = Vec::new();
    let mut budget = SUBSTITUTION_BUDGET;
    for a in assignments.iter_mut() {
        let column = column_of(&a.target)?;
        let mut refs = ColumnRefs {
            table,
            binding,
            qualify_with: upsert.as_ref().map(|(q, _)| q.clone()),
            upsert: upsert.is_some(),
            row_alias: upsert.as_ref().and_then(|(_, a)| *a),
            assigned: &assigned,
            depth: 0,
            budget: &mut budget,
        };
        rewrite_refs(&mut a.value, &mut refs)?;
        assigned.push((column.value.clone(), a.value.clone()));
    }
    // `SET a = 1, a = a + 1`: the last assignment already holds the earlier
    // ones (substituted above), and PostgreSQL rejects a column set twice.
    let mut seen: Vec<String> = Vec::new();
    for i in (0..assignments.len()).rev() {
        let column = column_of(&assignments[i].target)?.value.to_lowercase();
        if seen.contains(&column) {
            assignments.remove(i);
        } else {
            seen.push(column);
        }
    }
    Ok(())
}

fn conflict_target(table: &TableInfo, what: &str) -> Result<ConflictTarget, TranslateError> {
    let key = table.conflict_key().ok_or_else(|| {
        untranslatable(format!(
            "{what} on table {} without a primary or unique key",
            table.name
        ))
    })?;
    Ok(ConflictTarget::Columns {
        columns: key.iter().map(|c| schema_ident(c)).collect(),
        predicate: None,
    })
}

fn require_table<'s>(
    table: Option<&'s TableInfo>,
    name: &str,
    what: &str,
) -> Result<&'s TableInfo, TranslateError> {
    table.ok_or_else(|| {
        untranslatable(format!(
            "{what} on table {name}, which the schema does not know"
        ))
    })
}

pub(super) fn insert<'s>(
    ins: &mut Insert,
    schema: &'s Schema,
    scope: &mut Scope<'s>,
) -> Result<(), TranslateError> {
    if ins.or.is_some()
        || ins.overwrite
        || ins.partitioned.is_some()
        || !ins.after_columns.is_empty()
    {
        return Err(untranslatable(
            "INSERT … PARTITION or dialect-specific INSERT form",
        ));
    }
    ins.priority = None; // LOW_PRIORITY, DELAYED, HIGH_PRIORITY: scheduling only
    ins.optimizer_hints.clear();
    let TableObject::TableName(name) = &ins.table else {
        return Err(untranslatable("INSERT INTO TABLE FUNCTION"));
    };
    let ident = last_ident(name)
        .cloned()
        .ok_or_else(|| untranslatable(format!("table {name}")))?;
    let table = schema.table(&ident.value);
    if let Some(t) = table {
        scope.add(ident.value.clone(), t);
    }

    // INSERT … SET a = 1, b = 2 → INSERT … (a, b) VALUES (1, 2)
    if ins.source.is_none() && !ins.assignments.is_empty() {
        let mut row = Vec::new();
        for a in ins.assignments.drain(..) {
            let column = column_of(&a.target)?;
            ins.columns
                .push(ObjectName(vec![ObjectNamePart::Identifier(column)]));
            row.push(a.value);
        }
        ins.source = Some(Box::new(values_query(vec![row])));
    }
    if let Some(SetExpr::Values(values)) = ins.source.as_deref().map(|q| q.body.as_ref()) {
        if values.rows.iter().all(|r| r.content.is_empty()) && ins.columns.is_empty() {
            if values.rows.len() != 1 {
                return Err(untranslatable("multi-row INSERT of empty rows"));
            }
            ins.source = None; // prints DEFAULT VALUES
        }
    }
    // Without a column list the values go by position, and a column added
    // with FIRST/AFTER sits elsewhere in PostgreSQL: name the columns.
    if ins.columns.is_empty() && ins.source.is_some() {
        if let Some(t) = table {
            ins.columns = t
                .columns
                .iter()
                .map(|c| ObjectName(vec![ObjectNamePart::Identifier(schema_ident(&c.name))]))
                .collect();
        }
    }
    let columns: Vec<String> = ins
        .columns
        .iter()
        .map(|c| last_ident(c).map(|i| i.value.clone()).unwrap_or_default())
        .collect();
    if let Some(SetExpr::Values(values)) = ins.source.as_deref_mut().map(|q| q.body.as_mut()) {
        values.value_keyword = false;
    }
    if let (Some(t), Some(source)) = (table, ins.source.as_deref_mut()) {
        if let SetExpr::Values(values) = source.body.as_mut() {
            for row in &mut values.rows {
                for (value, column) in row.content.iter_mut().zip(&columns) {
                    if let Some(info) = t.column(column) {
                        coerce(value, &info.kind(), &format!("{}.{}", t.name, info.name))?;
                    }
                }
            }
        }
    }
    let on = ins.on.take();
    if ins.replace_into {
        let t = require_table(table, &ident.value, "REPLACE")?;
        ins.on = Some(replace_as_upsert(t, &columns)?);
    } else if let Some(on) = on {
        let OnInsert::DuplicateKeyUpdate(assignments) = on else {
            return Err(untranslatable("ON CONFLICT"));
        };
        let t = require_table(table, &ident.value, "ON DUPLICATE KEY UPDATE")?;
        let row_alias = match ins.insert_alias.take() {
            Some(a) if a.col_aliases.as_ref().is_some_and(|c| !c.is_empty()) => {
                return Err(untranslatable("INSERT … AS alias(columns)"))
            }
            Some(a) => last_ident(&a.row_alias).map(|i| i.value.clone()),
            None => None,
        };
        ins.on = Some(duplicate_key_update(
            assignments,
            t,
            &ident,
            row_alias.as_deref(),
        )?);
    } else if ins.ignore {
        ins.on = Some(OnInsert::OnConflict(OnConflict {
            conflict_target: None,
            action: OnConflictAction::DoNothing,
        }));
    }
    if ins.insert_alias.is_some() {
        return Err(untranslatable(
            "INSERT row alias without ON DUPLICATE KEY UPDATE",
        ));
    }
    ins.ignore = false;
    ins.replace_into = false;
    ins.columns.iter_mut().for_each(protect_object_name);
    Ok(())
}

/// `ON DUPLICATE KEY UPDATE …` → `ON CONFLICT (key) DO UPDATE SET …`.
fn duplicate_key_update(
    mut assignments: Vec<Assignment>,
    t: &TableInfo,
    table: &Ident,
    row_alias: Option<&str>,
) -> Result<OnInsert, TranslateError> {
    let target = conflict_target(t, "ON DUPLICATE KEY UPDATE")?;
    prepare_assignments(&mut assignments, Some(t))?;
    let mut qualifier = table.clone();
    protect(&mut qualifier);
    sequential(
        &mut assignments,
        Some(t),
        &table.value,
        Some((qualifier, row_alias)),
    )?;
    Ok(OnInsert::OnConflict(OnConflict {
        conflict_target: Some(target),
        action: OnConflictAction::DoUpdate(DoUpdate {
            assignments,
            selection: None,
        }),
    }))
}

fn values_query(rows: Vec<Vec<Expr>>) -> Query {
    query(SetExpr::Values(Values {
        explicit_row: false,
        value_keyword: false,
        rows: rows
            .into_iter()
            .map(|content| sqlparser::ast::Parens {
                opening_token: AttachedToken::empty(),
                content,
                closing_token: AttachedToken::empty(),
            })
            .collect(),
    }))
}

pub(super) fn query(body: SetExpr) -> Query {
    Query {
        with: None,
        body: Box::new(body),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}

/// REPLACE deletes the conflicting row and inserts a new one, so columns the
/// statement does not list go back to their defaults.
fn replace_as_upsert(t: &TableInfo, listed: &[String]) -> Result<OnInsert, TranslateError> {
    let target = conflict_target(t, "REPLACE")?;
    let key = t.conflict_key().unwrap_or_default();
    let mut assignments = Vec::new();
    for col in &t.columns {
        if key.iter().any(|k| k.eq_ignore_ascii_case(&col.name)) {
            continue;
        }
        let ident = schema_ident(&col.name);
        let value = if listed.iter().any(|l| l.eq_ignore_ascii_case(&col.name)) {
            qualified(Ident::new("excluded"), ident.clone())
        } else {
            Expr::Identifier(Ident::new("DEFAULT"))
        };
        assignments.push(Assignment {
            target: AssignmentTarget::ColumnName(ObjectName(vec![ObjectNamePart::Identifier(
                ident,
            )])),
            value,
        });
    }
    let action = if assignments.is_empty() {
        OnConflictAction::DoNothing
    } else {
        OnConflictAction::DoUpdate(DoUpdate {
            assignments,
            selection: None,
        })
    };
    Ok(OnInsert::OnConflict(OnConflict {
        conflict_target: Some(target),
        action,
    }))
}
