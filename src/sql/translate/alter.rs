//! ALTER TABLE, CREATE/DROP INDEX, DROP TABLE, TRUNCATE, RENAME TABLE.
//!
//! One MySQL ALTER TABLE may become several PostgreSQL statements (an index
//! is its own statement, RENAME cannot share an ALTER TABLE); they should run
//! in one transaction.

use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ColumnOption, CreateIndex, Expr, Ident,
    ObjectName, ObjectType, RenameTableNameKind, Statement, TableConstraint, Truncate,
    TruncateIdentityOption,
};

use super::ddl::{column, create_index, default_expr, key_name, on_update_trigger};
use super::expr;
use super::names::{index_ident, last_ident, protect, protect_object_name, stored_name};
use super::scope::Scope;
use super::types::column_type;
use super::{untranslatable, TranslateError, Translated};
use crate::sql::schema::ColumnKind;

fn table_ident(name: &ObjectName) -> Result<Ident, TranslateError> {
    last_ident(name)
        .cloned()
        .ok_or_else(|| untranslatable(format!("table {name}")))
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn like_prefix(s: &str) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    sql_string(&format!("{escaped}\\_%"))
}

/// `ALTER TABLE old RENAME TO new`, plus renaming the `old_…` indexes this
/// translator created, so a later `DROP INDEX i ON new` finds `new_i`.
fn rename_table(
    old: &ObjectName,
    new: &ObjectName,
    out: &mut Translated,
) -> Result<(), TranslateError> {
    if new.0.len() > 1 || old.0.len() > 1 {
        return Err(untranslatable("RENAME TABLE across databases"));
    }
    let (old_ident, new_ident) = (table_ident(old)?, table_ident(new)?);
    out.statements
        .push(format!("ALTER TABLE {old} RENAME TO {new}"));
    out.statements.push(format!(
        "DO $$DECLARE r record; BEGIN FOR r IN SELECT indexname FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = {table} AND indexname LIKE {prefix} \
         LOOP EXECUTE format('ALTER INDEX %I RENAME TO %I', r.indexname, {new_prefix} || \
         substr(r.indexname, {skip})); END LOOP; END$$",
        table = sql_string(&stored_name(&new_ident)),
        prefix = like_prefix(&stored_name(&old_ident)),
        new_prefix = sql_string(&stored_name(&new_ident)),
        skip = stored_name(&old_ident).chars().count() + 1,
    ));
    Ok(())
}

fn alter(base: &AlterTable, operations: Vec<AlterTableOperation>) -> String {
    Statement::AlterTable(AlterTable {
        operations,
        ..base.clone()
    })
    .to_string()
}

/// MODIFY/CHANGE: PostgreSQL sets type, nullability and default one by one.
fn modify(
    base: &AlterTable,
    name: &Ident,
    data_type: &sqlparser::ast::DataType,
    options: &[ColumnOption],
    out: &mut Vec<String>,
) -> Result<(), TranslateError> {
    let table = table_ident(&base.name)?.value;
    let ty = column_type(data_type, false)?;
    if ty.non_negative || matches!(ty.kind, ColumnKind::Enum(_)) {
        return Err(untranslatable(
            "MODIFY to an UNSIGNED or ENUM type (its CHECK cannot follow)",
        ));
    }
    let mut column = name.clone();
    protect(&mut column);
    let mut ops = vec![AlterColumnOperation::SetDataType {
        data_type: ty.data_type.clone(),
        using: Some(super::build::cast(
            Expr::Identifier(column.clone()),
            ty.data_type.clone(),
        )),
        had_set: false,
    }];
    let mut not_null = false;
    let mut default = None;
    for o in options {
        match o {
            ColumnOption::NotNull => not_null = true,
            ColumnOption::Null
            | ColumnOption::Comment(_)
            | ColumnOption::CharacterSet(_)
            | ColumnOption::Collation(_) => {}
            ColumnOption::Default(e) => {
                default = Some(default_expr(
                    e.clone(),
                    &ty.kind,
                    &format!("{table}.{}", name.value),
                )?)
            }
            other => return Err(untranslatable(format!("MODIFY … {other}"))),
        }
    }
    // MODIFY restates the whole column: what it leaves out is gone.
    ops.push(if not_null {
        AlterColumnOperation::SetNotNull
    } else {
        AlterColumnOperation::DropNotNull
    });
    ops.push(match default {
        Some(value) => AlterColumnOperation::SetDefault { value },
        None => AlterColumnOperation::DropDefault,
    });
    let ops = ops
        .into_iter()
        .map(|op| AlterTableOperation::AlterColumn {
            column_name: column.clone(),
            op,
        })
        .collect();
    out.push(alter(base, ops));
    Ok(())
}

pub(super) fn alter_table(mut at: AlterTable, out: &mut Translated) -> Result<(), TranslateError> {
    if at.table_type.is_some() || at.on_cluster.is_some() || at.location.is_some() {
        return Err(untranslatable("ALTER TABLE variant"));
    }
    protect_object_name(&mut at.name);
    let table = table_ident(&at.name)?;
    let mut renames = Vec::new();
    // MySQL resolves every operation against the table as it was and applies
    // them at once; PostgreSQL runs them one by one. So: drop keys, change
    // columns (old names), rename columns, add keys (new names), rename table.
    let (mut drops, mut columns, mut renamed, mut keys) = (vec![], vec![], vec![], vec![]);
    let operations = std::mem::take(&mut at.operations);
    let mut used = Vec::new();
    for op in operations {
        match op {
            AlterTableOperation::AddColumn {
                column_def,
                column_position,
                if_not_exists,
                column_keyword,
            } => {
                if column_position.is_some() {
                    out.notes.push(format!(
                        "{}: column {} added last (FIRST/AFTER has no PostgreSQL equivalent)",
                        table.value, column_def.name.value
                    ));
                }
                let c = column(&column_def, &table.value, None, &mut out.notes)?;
                let name = c.def.name.clone();
                columns.push(alter(
                    &at,
                    vec![AlterTableOperation::AddColumn {
                        column_keyword,
                        if_not_exists,
                        column_def: c.def,
                        column_position: None,
                    }],
                ));
                if c.unique {
                    let cols = vec![sqlparser::ast::IndexColumn::from(column_def.name.clone())];
                    let key = key_name(None, &cols, &mut used);
                    keys.push(
                        create_index(&at.name, &key, true, &cols, false, &mut out.notes)?
                            .to_string(),
                    );
                }
                if c.on_update {
                    keys.extend(on_update_trigger(&at.name, &table, &name));
                }
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                has_column_keyword,
            } => {
                for mut name in column_names {
                    protect(&mut name);
                    columns.push(alter(
                        &at,
                        vec![AlterTableOperation::DropColumn {
                            has_column_keyword,
                            column_names: vec![name],
                            if_exists,
                            drop_behavior,
                        }],
                    ));
                }
            }
            AlterTableOperation::AddConstraint {
                constraint,
                not_valid,
            } => match constraint {
                TableConstraint::Index(i) => {
                    let key = key_name(i.name.as_ref(), &i.columns, &mut used);
                    keys.push(
                        create_index(&at.name, &key, false, &i.columns, false, &mut out.notes)?
                            .to_string(),
                    );
                }
                TableConstraint::Unique(u) => {
                    let key = key_name(
                        u.index_name.as_ref().or(u.name.as_ref()),
                        &u.columns,
                        &mut used,
                    );
                    keys.push(
                        create_index(&at.name, &key, true, &u.columns, false, &mut out.notes)?
                            .to_string(),
                    );
                }
                TableConstraint::FulltextOrSpatial(_) => {
                    out.notes
                        .push(format!("{}: FULLTEXT/SPATIAL index dropped", table.value));
                }
                TableConstraint::PrimaryKey(mut pk) => {
                    pk.index_name = None;
                    pk.index_type = None;
                    pk.index_options.clear();
                    for c in &mut pk.columns {
                        match &mut c.column.expr {
                            Expr::Identifier(i) => protect(i),
                            _ => return Err(untranslatable("PRIMARY KEY on a column prefix")),
                        }
                    }
                    keys.push(alter(
                        &at,
                        vec![AlterTableOperation::AddConstraint {
                            constraint: TableConstraint::PrimaryKey(pk),
                            not_valid,
                        }],
                    ));
                }
                TableConstraint::ForeignKey(mut fk) => {
                    fk.index_name = None;
                    fk.columns.iter_mut().for_each(protect);
                    fk.referred_columns.iter_mut().for_each(protect);
                    protect_object_name(&mut fk.foreign_table);
                    keys.push(alter(
                        &at,
                        vec![AlterTableOperation::AddConstraint {
                            constraint: TableConstraint::ForeignKey(fk),
                            not_valid,
                        }],
                    ));
                }
                TableConstraint::Check(mut c) => {
                    expr::rewrite(c.expr.as_mut(), &Scope::default())?;
                    keys.push(alter(
                        &at,
                        vec![AlterTableOperation::AddConstraint {
                            constraint: TableConstraint::Check(c),
                            not_valid,
                        }],
                    ));
                }
                #[allow(unreachable_patterns)]
                other => return Err(untranslatable(format!("ADD {other}"))),
            },
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                ..
            } => {
                modify(&at, &col_name, &data_type, &options, &mut columns)?;
            }
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                ..
            } => {
                let (mut old, mut new) = (old_name.clone(), new_name.clone());
                protect(&mut old);
                protect(&mut new);
                if old.value != new.value || old.quote_style != new.quote_style {
                    renamed.push(alter(
                        &at,
                        vec![AlterTableOperation::RenameColumn {
                            old_column_name: old,
                            new_column_name: new,
                        }],
                    ));
                }
                modify(&at, &old_name, &data_type, &options, &mut columns)?;
            }
            AlterTableOperation::RenameColumn {
                mut old_column_name,
                mut new_column_name,
            } => {
                protect(&mut old_column_name);
                protect(&mut new_column_name);
                renamed.push(alter(
                    &at,
                    vec![AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    }],
                ));
            }
            AlterTableOperation::AlterColumn {
                mut column_name,
                op,
            } => {
                protect(&mut column_name);
                let op = match op {
                    AlterColumnOperation::SetDefault { value } => {
                        AlterColumnOperation::SetDefault {
                            value: default_expr(value, &ColumnKind::Other, &column_name.value)?,
                        }
                    }
                    AlterColumnOperation::DropDefault => AlterColumnOperation::DropDefault,
                    other => return Err(untranslatable(format!("ALTER COLUMN … {other}"))),
                };
                columns.push(alter(
                    &at,
                    vec![AlterTableOperation::AlterColumn { column_name, op }],
                ));
            }
            AlterTableOperation::DropIndex { name } => {
                drops.push(format!("DROP INDEX {}", index_ident(&table, &name.value)));
            }
            // An unnamed PRIMARY KEY constraint is `<table>_pkey` in PostgreSQL.
            AlterTableOperation::DropPrimaryKey { .. } => {
                let name = Ident::with_quote('"', format!("{}_pkey", stored_name(&table)));
                drops.push(alter(
                    &at,
                    vec![AlterTableOperation::DropConstraint {
                        if_exists: false,
                        name,
                        drop_behavior: None,
                    }],
                ));
            }
            AlterTableOperation::DropForeignKey { mut name, .. }
            | AlterTableOperation::DropConstraint { mut name, .. } => {
                protect(&mut name);
                drops.push(alter(
                    &at,
                    vec![AlterTableOperation::DropConstraint {
                        if_exists: false,
                        name,
                        drop_behavior: None,
                    }],
                ));
            }
            AlterTableOperation::RenameTable { table_name } => {
                let (RenameTableNameKind::As(mut new) | RenameTableNameKind::To(mut new)) =
                    table_name;
                protect_object_name(&mut new);
                renames.push(new);
            }
            // ALGORITHM=…, LOCK=…: how MySQL runs the change, not what it does.
            AlterTableOperation::Algorithm { .. } | AlterTableOperation::Lock { .. } => {}
            other => return Err(untranslatable(format!("ALTER TABLE … {other}"))),
        }
    }
    out.statements
        .extend(drops.into_iter().chain(columns).chain(renamed).chain(keys));
    let mut current = at.name.clone();
    for new in renames {
        rename_table(&current, &new, out)?;
        current = new;
    }
    Ok(())
}

pub(super) fn create_index_statement(
    ci: CreateIndex,
    out: &mut Translated,
) -> Result<(), TranslateError> {
    if ci.predicate.is_some() || !ci.include.is_empty() || !ci.with.is_empty() {
        return Err(untranslatable("CREATE INDEX variant"));
    }
    let mut table = ci.table_name.clone();
    protect_object_name(&mut table);
    let name = ci
        .name
        .as_ref()
        .and_then(last_ident)
        .map(|i| i.value.clone())
        .ok_or_else(|| untranslatable("CREATE INDEX without a name"))?;
    let statement = create_index(
        &table,
        &name,
        ci.unique,
        &ci.columns,
        ci.if_not_exists,
        &mut out.notes,
    )?;
    out.statements.push(statement.to_string());
    Ok(())
}

pub(super) fn drop(
    object_type: ObjectType,
    if_exists: bool,
    mut names: Vec<ObjectName>,
    table: Option<ObjectName>,
    out: &mut Translated,
) -> Result<(), TranslateError> {
    match object_type {
        ObjectType::Table => {
            names.iter_mut().for_each(protect_object_name);
            // MySQL ignores CASCADE/RESTRICT; TEMPORARY has no PostgreSQL form.
            let list = names
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let if_exists = if if_exists { "IF EXISTS " } else { "" };
            out.statements.push(format!("DROP TABLE {if_exists}{list}"));
        }
        ObjectType::Index => {
            let mut table = table.ok_or_else(|| untranslatable("DROP INDEX without ON table"))?;
            protect_object_name(&mut table);
            let table = table_ident(&table)?;
            for n in &names {
                let index = last_ident(n).ok_or_else(|| untranslatable(format!("index {n}")))?;
                let if_exists = if if_exists { "IF EXISTS " } else { "" };
                out.statements.push(format!(
                    "DROP INDEX {if_exists}{}",
                    index_ident(&table, &index.value)
                ));
            }
        }
        ObjectType::Schema | ObjectType::Database => {
            return Err(untranslatable(
                "DROP DATABASE (database-level DDL is not mirrored)",
            ))
        }
        other => return Err(untranslatable(format!("DROP {other}"))),
    }
    Ok(())
}

/// MySQL's TRUNCATE resets AUTO_INCREMENT.
pub(super) fn truncate(mut t: Truncate, out: &mut Translated) -> Result<(), TranslateError> {
    if t.partitions.is_some() {
        return Err(untranslatable("TRUNCATE … PARTITION"));
    }
    for target in &mut t.table_names {
        protect_object_name(&mut target.name);
    }
    t.table = true;
    t.identity = Some(TruncateIdentityOption::Restart);
    out.statements.push(Statement::Truncate(t).to_string());
    Ok(())
}

pub(super) fn rename_tables(
    renames: Vec<sqlparser::ast::RenameTable>,
    out: &mut Translated,
) -> Result<(), TranslateError> {
    for mut r in renames {
        protect_object_name(&mut r.old_name);
        protect_object_name(&mut r.new_name);
        rename_table(&r.old_name, &r.new_name, out)?;
    }
    Ok(())
}
