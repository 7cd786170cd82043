//! Which table a column reference belongs to, for column-kind decisions
//! (boolean, binary, enum…) in expressions.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, TableFactor, Visit, Visitor};

use super::names::last_ident;
use crate::sql::schema::{ColumnKind, Schema, TableInfo};

/// The tables a statement reads or writes, by the name its columns are
/// qualified with (alias, else table name), for looking up column kinds.
#[derive(Default)]
pub(super) struct Scope<'s> {
    bindings: Vec<(String, &'s TableInfo)>,
}

impl<'s> Scope<'s> {
    /// Every table named anywhere in `node` (subqueries included).
    pub fn collect<V: Visit>(node: &V, schema: &'s Schema) -> Scope<'s> {
        struct Collect<'a, 's> {
            schema: &'s Schema,
            scope: &'a mut Scope<'s>,
        }
        impl Visitor for Collect<'_, '_> {
            type Break = ();
            fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
                if let TableFactor::Table { name, alias, .. } = tf {
                    if let Some(table) = last_ident(name).and_then(|i| self.schema.table(&i.value))
                    {
                        let binding = alias
                            .as_ref()
                            .map(|a| a.name.value.clone())
                            .unwrap_or_else(|| table.name.clone());
                        self.scope.add(binding, table);
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut scope = Scope::default();
        let _ = node.visit(&mut Collect {
            schema,
            scope: &mut scope,
        });
        scope
    }

    pub fn add(&mut self, binding: String, table: &'s TableInfo) {
        self.bindings.push((binding, table));
    }

    /// The kind of the column `expr` names, when the scope says so
    /// unambiguously.
    pub fn kind_of(&self, expr: &Expr) -> Option<ColumnKind> {
        match expr {
            Expr::Identifier(col) => {
                let mut kinds = self
                    .bindings
                    .iter()
                    .filter_map(|(_, t)| t.column(&col.value))
                    .map(|c| c.kind());
                let first = kinds.next()?;
                kinds.all(|k| k == first).then_some(first)
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let qualifier = &parts[parts.len() - 2].value;
                let col = &parts[parts.len() - 1].value;
                self.bindings
                    .iter()
                    .find(|(b, _)| b.eq_ignore_ascii_case(qualifier))
                    .and_then(|(_, t)| t.column(col))
                    .map(|c| c.kind())
            }
            Expr::Nested(inner) => self.kind_of(inner),
            _ => None,
        }
    }

    /// A column name for error messages.
    pub fn label(expr: &Expr) -> String {
        match expr {
            Expr::Identifier(i) => i.value.clone(),
            Expr::CompoundIdentifier(parts) => parts
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
            other => other.to_string(),
        }
    }
}
