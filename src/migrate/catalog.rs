//! What tables exist on each side, their columns, types and keys, and how a
//! table on the old side lines up with its counterpart on the new side.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;

use crate::value::mysql::{MysqlKind, MysqlType};
use crate::value::pg::PgType;

use super::db::Db;
pub use super::types::ColType;
use super::{MigrateError, Side};

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub ty: ColType,
    /// The type as the catalog spells it, for messages.
    pub type_name: String,
    pub nullable: bool,
    /// Computed by the database: never written.
    pub generated: bool,
    /// AUTO_INCREMENT, identity or serial.
    pub auto: bool,
}

#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Primary key, or failing that the first unique key over NOT NULL
    /// columns; empty if neither exists.
    pub key: Vec<String>,
    pub key_source: String,
    /// Every primary/unique key (column lists), to check ON CONFLICT targets.
    pub unique_keys: Vec<Vec<String>>,
    /// The catalog's row estimate (for progress only).
    pub est_rows: u64,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Loads every base table of the connection's database (MySQL) or current
/// schema (PostgreSQL), except Tandem's own bookkeeping tables.
pub async fn load(db: &mut Db) -> Result<Vec<TableDef>, MigrateError> {
    let mut tables = match db {
        Db::My(conn) => load_mysql(conn).await?,
        Db::Pg(pg) => load_pg(&pg.client).await?,
    };
    tables.retain(|t| !super::is_internal_table(&t.name));
    for t in &mut tables {
        choose_key(t);
    }
    Ok(tables)
}

fn choose_key(t: &mut TableDef) {
    if !t.key.is_empty() {
        return;
    }
    let not_null = |cols: &Vec<String>| {
        cols.iter()
            .all(|c| t.column(c).is_some_and(|c| !c.nullable))
    };
    if let Some(k) = t.unique_keys.iter().find(|k| not_null(k)) {
        t.key = k.clone();
        t.key_source = format!("unique key ({})", k.join(", "));
    }
}

async fn load_mysql(conn: &mut mysql_async::Conn) -> Result<Vec<TableDef>, MigrateError> {
    let mut tables: Vec<TableDef> = conn
        .query::<(String, Option<u64>), _>(
            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        )
        .await?
        .into_iter()
        .map(|(name, rows)| TableDef {
            name,
            columns: Vec::new(),
            key: Vec::new(),
            key_source: String::new(),
            unique_keys: Vec::new(),
            est_rows: rows.unwrap_or(0),
        })
        .collect();
    let index: HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();

    // MariaDB spells JSON as LONGTEXT with a json_valid() check constraint.
    let checks: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE()",
        )
        .await
        .unwrap_or_default();
    let is_json = |table: &str, column: &str| {
        let needle = format!("json_valid(`{column}`)");
        checks
            .iter()
            .any(|(t, clause)| t == table && clause.contains(&needle))
    };

    let columns: Vec<(String, String, String, String, String)> = conn
        .query(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await?;
    for (table, name, column_type, nullable, extra) in columns {
        let Some(&i) = index.get(&table) else {
            continue;
        };
        let mut ty = MysqlType::from_column_type(&column_type);
        if ty.kind == MysqlKind::Text && is_json(&table, &name) {
            ty.kind = MysqlKind::Json;
        }
        let extra = extra.to_ascii_lowercase();
        tables[i].columns.push(ColumnDef {
            name,
            ty: ColType::My(ty),
            type_name: column_type,
            nullable: nullable == "YES",
            generated: extra.contains("generated"),
            auto: extra.contains("auto_increment"),
        });
    }

    let stats: Vec<(String, String, i64, String, Option<u64>)> = conn
        .query(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
        )
        .await?;
    let mut current: Option<(String, String, bool, Vec<String>)> = None;
    let flush = |cur: Option<(String, String, bool, Vec<String>)>, tables: &mut Vec<TableDef>| {
        let Some((table, index_name, usable, cols)) = cur else {
            return;
        };
        let Some(&i) = index.get(&table) else { return };
        if !usable {
            return;
        }
        if index_name == "PRIMARY" {
            tables[i].key = cols.clone();
            tables[i].key_source = "primary key".into();
        }
        tables[i].unique_keys.push(cols);
    };
    for (table, index_name, non_unique, column, sub_part) in stats {
        let same = matches!(&current, Some((t, n, _, _)) if *t == table && *n == index_name);
        if !same {
            flush(current.take(), &mut tables);
            current = Some((table, index_name, non_unique == 0, Vec::new()));
        }
        if let Some(cur) = current.as_mut() {
            // A prefix index does not make the whole column unique.
            if sub_part.is_some() {
                cur.2 = false;
            }
            cur.3.push(column);
        }
    }
    flush(current.take(), &mut tables);
    Ok(tables)
}

async fn load_pg(client: &tokio_postgres::Client) -> Result<Vec<TableDef>, MigrateError> {
    let rows = client
        .query(
            "SELECT c.relname::text, GREATEST(c.reltuples, 0)::bigint FROM pg_class c \
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
             ORDER BY 1",
            &[],
        )
        .await?;
    let mut tables: Vec<TableDef> = rows
        .iter()
        .map(|r| TableDef {
            name: r.get(0),
            columns: Vec::new(),
            key: Vec::new(),
            key_source: String::new(),
            unique_keys: Vec::new(),
            est_rows: r.get::<_, i64>(1) as u64,
        })
        .collect();
    let index: HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();

    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, udt_name::text, \
                    format_type(a.atttypid, a.atttypmod), is_nullable = 'YES', \
                    is_generated = 'ALWAYS', \
                    is_identity = 'YES' OR coalesce(column_default, '') LIKE 'nextval(%' \
             FROM information_schema.columns ic \
             JOIN pg_attribute a ON a.attrelid = format('%I.%I', ic.table_schema, ic.table_name)::regclass \
                                AND a.attname = ic.column_name \
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
            &[],
        )
        .await?;
    for r in &columns {
        let table: String = r.get(0);
        let Some(&i) = index.get(&table) else {
            continue;
        };
        let udt: String = r.get(2);
        tables[i].columns.push(ColumnDef {
            name: r.get(1),
            ty: ColType::Pg(PgType::from_udt_name(&udt)),
            type_name: r.get(3),
            nullable: r.get(4),
            generated: r.get(5),
            auto: r.get(6),
        });
    }

    let keys = client
        .query(
            "SELECT t.relname::text, ix.indisprimary, \
                    ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
             WHERE t.relnamespace = current_schema()::regnamespace AND ix.indisunique \
               AND ix.indpred IS NULL AND NOT (0 = ANY(ix.indkey::int2[])) \
             ORDER BY ix.indisprimary DESC, ix.indexrelid",
            &[],
        )
        .await?;
    for r in &keys {
        let table: String = r.get(0);
        let Some(&i) = index.get(&table) else {
            continue;
        };
        let cols: Vec<String> = r.get(2);
        if r.get::<_, bool>(1) {
            tables[i].key = cols.clone();
            tables[i].key_source = "primary key".into();
        }
        tables[i].unique_keys.push(cols);
    }
    Ok(tables)
}

/// One column present on both sides.
#[derive(Debug, Clone)]
pub struct PlanColumn {
    pub old_name: String,
    pub new_name: String,
    pub old_ty: ColType,
    pub new_ty: ColType,
    /// Generated on that side: read and compared, never written.
    pub old_generated: bool,
    pub new_generated: bool,
    pub new_auto: bool,
    pub old_auto: bool,
}

impl PlanColumn {
    pub fn name(&self, side: Side) -> &str {
        match side {
            Side::Old => &self.old_name,
            Side::New => &self.new_name,
        }
    }

    pub fn ty(&self, side: Side) -> ColType {
        match side {
            Side::Old => self.old_ty,
            Side::New => self.new_ty,
        }
    }

    pub fn writable(&self, side: Side) -> bool {
        !match side {
            Side::Old => self.old_generated,
            Side::New => self.new_generated,
        }
    }

    pub fn auto(&self, side: Side) -> bool {
        match side {
            Side::Old => self.old_auto,
            Side::New => self.new_auto,
        }
    }
}

/// How one table is read and written on both sides.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub old_name: String,
    pub new_name: String,
    /// Columns present on both sides, in the old side's order.
    pub columns: Vec<PlanColumn>,
    /// Positions in `columns` of the key; empty when the table has none.
    pub key: Vec<usize>,
    pub key_source: String,
    /// The key is unique on each side (ON CONFLICT / ON DUPLICATE KEY work).
    pub unique_on: [bool; 2],
    /// Columns only one side has.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
    pub est_rows: u64,
}

impl TablePlan {
    pub fn name(&self, side: Side) -> &str {
        match side {
            Side::Old => &self.old_name,
            Side::New => &self.new_name,
        }
    }

    pub fn key_columns(&self) -> impl Iterator<Item = &PlanColumn> {
        self.key.iter().map(|&i| &self.columns[i])
    }

    pub fn key_names(&self) -> String {
        self.key_columns()
            .map(|c| c.old_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key values of a row read with all `columns`.
    pub fn key_of(&self, row: &[crate::value::Value]) -> Vec<crate::value::Value> {
        self.key.iter().map(|&i| row[i].clone()).collect()
    }
}

/// Finds `name` among `tables`: exactly, else case-insensitively when that
/// is unambiguous (PostgreSQL DDL usually lower-cases MySQL's names).
pub fn find<'a>(tables: &'a [TableDef], name: &str) -> Option<&'a TableDef> {
    if let Some(t) = tables.iter().find(|t| t.name == name) {
        return Some(t);
    }
    let mut it = tables.iter().filter(|t| t.name.eq_ignore_ascii_case(name));
    match (it.next(), it.next()) {
        (Some(t), None) => Some(t),
        _ => None,
    }
}

fn find_column<'a>(t: &'a TableDef, name: &str) -> Option<&'a ColumnDef> {
    t.column(name).or_else(|| {
        let mut it = t
            .columns
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(name));
        match (it.next(), it.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    })
}

/// Lines `old` up with `new` column by column.
pub fn plan(old: &TableDef, new: &TableDef) -> TablePlan {
    let mut columns = Vec::new();
    let mut only_old = Vec::new();
    for c in &old.columns {
        match find_column(new, &c.name) {
            Some(n) => columns.push(PlanColumn {
                old_name: c.name.clone(),
                new_name: n.name.clone(),
                old_ty: c.ty,
                new_ty: n.ty,
                old_generated: c.generated,
                new_generated: n.generated,
                old_auto: c.auto,
                new_auto: n.auto,
            }),
            None => only_old.push(c.name.clone()),
        }
    }
    let only_new = new
        .columns
        .iter()
        .filter(|n| !columns.iter().any(|c: &PlanColumn| c.new_name == n.name))
        .map(|n| n.name.clone())
        .collect();
    let key: Vec<usize> = old
        .key
        .iter()
        .filter_map(|k| columns.iter().position(|c| c.old_name == *k))
        .collect();
    let key = if key.len() == old.key.len() {
        key
    } else {
        Vec::new()
    };
    let is_unique = |t: &TableDef, names: Vec<&str>| {
        !names.is_empty()
            && t.unique_keys
                .iter()
                .any(|u| u.len() == names.len() && u.iter().all(|c| names.contains(&c.as_str())))
    };
    let unique_on = [
        is_unique(
            old,
            key.iter().map(|&i| columns[i].old_name.as_str()).collect(),
        ),
        is_unique(
            new,
            key.iter().map(|&i| columns[i].new_name.as_str()).collect(),
        ),
    ];
    TablePlan {
        old_name: old.name.clone(),
        new_name: new.name.clone(),
        columns,
        key,
        key_source: old.key_source.clone(),
        unique_on,
        only_old,
        only_new,
        est_rows: old.est_rows,
    }
}
