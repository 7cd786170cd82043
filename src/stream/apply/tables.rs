//! Source tables lined up with their target tables.
//!
//! The binlog names a table by its table map (database, name, columns in
//! ordinal order, key); the target has its own catalog. Both are turned into
//! the migrate commands' [`TableDef`]s and lined up by [`catalog::plan`], so
//! the stream writes exactly the columns, names and types that `backfill`
//! and `verify` use. A plan is cached per source table and dropped when DDL
//! runs or the table map changes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::NoKey;
use crate::migrate::catalog::{self, ColType, ColumnDef, TableDef, TablePlan};
use crate::migrate::sqltext::{ident, Dialect};
use crate::migrate::Side;
use crate::stream::SourceTable;
use crate::value::Value;

use super::ApplyError;

/// One source table mapped onto its target table.
pub struct Mapped {
    pub source: Arc<SourceTable>,
    pub plan: TablePlan,
    /// For each plan column, its position in the source row.
    pub proj: Vec<usize>,
    /// Plan columns written on the target (not generated there).
    pub written: Vec<usize>,
    /// The target has a unique index on the key (ON CONFLICT works).
    pub unique: bool,
    /// The table is addressed by key (else by all columns, or skipped).
    pub keyed: bool,
    pub skip: bool,
    pub target: String,
}

impl Mapped {
    /// The plan-ordered row of a source row image.
    pub fn project(&self, row: &[Value]) -> Result<Vec<Value>, ApplyError> {
        if row.len() != self.source.columns.len() {
            return Err(ApplyError::Schema(format!(
                "table {}.{}: a row image has {} columns where the table map has {}",
                self.source.database,
                self.source.name,
                row.len(),
                self.source.columns.len()
            )));
        }
        Ok(self
            .proj
            .iter()
            .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
            .collect())
    }

    /// The key values of a plan-ordered row.
    pub fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.plan
            .key
            .iter()
            .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
            .collect()
    }

    pub fn col_ty(&self, i: usize) -> ColType {
        self.plan.columns[i].ty(Side::New)
    }

    pub fn col_name(&self, d: Dialect, i: usize) -> String {
        ident(d, self.plan.columns[i].name(Side::New))
    }
}

/// The target catalog and the plans built from it.
#[derive(Default)]
pub struct Tables {
    target: Option<Vec<TableDef>>,
    mapped: HashMap<(String, String), Arc<Mapped>>,
    /// Tables already reported (no key, missing columns), once each.
    reported: std::collections::HashSet<String>,
}

impl Tables {
    /// Forgets every plan and the target catalog (after DDL).
    pub fn invalidate(&mut self) {
        self.target = None;
        self.mapped.clear();
    }

    pub fn has_catalog(&self) -> bool {
        self.target.is_some()
    }

    pub fn set_catalog(&mut self, defs: Vec<TableDef>) {
        self.target = Some(defs);
        self.mapped.clear();
    }

    /// The cached mapping for `t`, if its table map did not change.
    pub fn cached(&self, t: &Arc<SourceTable>) -> Option<Arc<Mapped>> {
        let m = self.mapped.get(&(t.database.clone(), t.name.clone()))?;
        (Arc::ptr_eq(&m.source, t) || *m.source == **t).then(|| Arc::clone(m))
    }

    /// A mapping exists for `t`'s table but from another table map: the
    /// source's columns changed without DDL through the stream (the reverse
    /// stream's marker-less DDL), so the target catalog may be stale too.
    pub fn changed(&self, t: &SourceTable) -> bool {
        self.mapped
            .get(&(t.database.clone(), t.name.clone()))
            .is_some_and(|m| *m.source != *t)
    }

    /// Maps `t` onto the target catalog (which must be loaded).
    pub fn map(&mut self, t: &Arc<SourceTable>, no_key: NoKey) -> Result<Arc<Mapped>, ApplyError> {
        let defs = self.target.as_deref().unwrap_or(&[]);
        let Some(new) = catalog::find(defs, &t.name) else {
            return Err(ApplyError::Schema(format!(
                "table {} does not exist on the new backend: create it (`tandem schema --apply`) and restart the stream",
                t.name
            )));
        };
        let old = source_def(t);
        let plan = catalog::plan(&old, new);
        let proj: Vec<usize> = plan
            .columns
            .iter()
            .map(|c| {
                t.columns
                    .iter()
                    .position(|s| s.name == c.old_name)
                    .unwrap_or(0)
            })
            .collect();
        let written: Vec<usize> = (0..plan.columns.len())
            .filter(|&i| plan.columns[i].writable(Side::New))
            .collect();
        let keyed = !plan.key.is_empty();
        let unique = plan.unique_on[Side::New as usize];
        let label = format!("{}.{}", t.database, t.name);
        if !self.reported.contains(&label) {
            if !plan.only_old.is_empty() {
                tracing::warn!(table = %label, columns = ?plan.only_old, "columns missing on the new backend are not applied");
            }
            if !keyed {
                match no_key {
                    NoKey::AllColumns => {
                        tracing::warn!(table = %label, "table has no primary key: its rows are matched on all columns ([mirror] no_key = \"all_columns\")")
                    }
                    NoKey::Skip => {
                        tracing::warn!(table = %label, "table has no primary key: its changes are not applied ([mirror] no_key = \"skip\")")
                    }
                }
            } else if !unique {
                tracing::warn!(table = %label, "the key is not unique on the new backend: rows are replaced by delete + insert");
            }
            self.reported.insert(label);
        }
        let m = Arc::new(Mapped {
            source: Arc::clone(t),
            target: plan.new_name.clone(),
            skip: !keyed && no_key == NoKey::Skip,
            plan,
            proj,
            written,
            unique,
            keyed,
        });
        self.mapped
            .insert((t.database.clone(), t.name.clone()), Arc::clone(&m));
        Ok(m)
    }
}

/// The source table as a catalog definition.
fn source_def(t: &SourceTable) -> TableDef {
    let key: Vec<String> = t
        .key
        .iter()
        .filter_map(|&i| t.columns.get(i).map(|c| c.name.clone()))
        .collect();
    TableDef {
        name: t.name.clone(),
        columns: t
            .columns
            .iter()
            .map(|c| ColumnDef {
                name: c.name.clone(),
                ty: ColType::My(c.ty),
                type_name: c.column_type.clone(),
                nullable: true,
                generated: false,
                auto: false,
            })
            .collect(),
        key_source: if key.is_empty() {
            String::new()
        } else {
            "primary key".into()
        },
        unique_keys: if key.is_empty() {
            Vec::new()
        } else {
            vec![key.clone()]
        },
        key,
        est_rows: 0,
    }
}
