//! Where result columns come from. PostgreSQL's RowDescription carries each
//! column's table oid and attribute number; the catalog turns them into table
//! and column names plus the facts MySQL reports as column flags (NOT NULL,
//! keys, default, identity). Looked up once per table and cached.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use tokio_postgres::{Client, Column, Statement};

use super::columns::Origin;
use super::hints::{ColumnAttrs, KeyFlags};

/// Tables remembered per session.
const TABLES: usize = 1024;

const COLUMNS_SQL: &str = "SELECT a.attrelid, c.relname::text, a.attnum, a.attname::text, \
    a.attnotnull, a.atthasdef, \
    a.attidentity <> '' OR COALESCE(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false) \
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
    WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped";

const INDEXES_SQL: &str = "SELECT indrelid, indisprimary, indisunique, indnkeyatts, \
    indkey::int2[] FROM pg_index WHERE indrelid = ANY($1::oid[])";

#[derive(Debug)]
struct TableMeta {
    name: String,
    columns: HashMap<i16, (String, ColumnAttrs)>,
}

pub struct Catalog {
    tables: LruCache<u32, Arc<TableMeta>>,
    statements: Option<(Statement, Statement)>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            tables: LruCache::new(NonZeroUsize::new(TABLES).unwrap_or(NonZeroUsize::MIN)),
            statements: None,
        }
    }
}

impl Catalog {
    /// Forgets every table (after DDL: names, keys and defaults may change).
    pub fn clear(&mut self) {
        self.tables.clear();
    }

    /// The origin of each column (`None` for expressions), querying the
    /// catalog for tables not seen yet.
    pub async fn origins(
        &mut self,
        client: &Client,
        columns: &[Column],
    ) -> Result<Vec<Option<Origin>>, tokio_postgres::Error> {
        let mut missing: Vec<u32> = columns
            .iter()
            .filter_map(|c| c.table_oid())
            .filter(|oid| *oid != 0 && !self.tables.contains(oid))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            self.load(client, &missing).await?;
        }
        Ok(columns
            .iter()
            .map(|c| {
                let meta = self.tables.get(&c.table_oid()?)?;
                let (column, attrs) = meta.columns.get(&c.column_id()?)?;
                Some(Origin {
                    table: meta.name.clone(),
                    column: column.clone(),
                    attrs: *attrs,
                })
            })
            .collect())
    }

    async fn load(&mut self, client: &Client, oids: &[u32]) -> Result<(), tokio_postgres::Error> {
        if self.statements.is_none() {
            let cols = client.prepare(COLUMNS_SQL).await?;
            let idx = client.prepare(INDEXES_SQL).await?;
            self.statements = Some((cols, idx));
        }
        let Some((cols_stmt, idx_stmt)) = &self.statements else {
            return Ok(());
        };
        let oids = oids.to_vec();
        let mut tables: HashMap<u32, TableMeta> = HashMap::new();
        for row in client.query(cols_stmt, &[&oids]).await? {
            let oid: u32 = row.try_get(0)?;
            let t = tables.entry(oid).or_insert_with(|| TableMeta {
                name: String::new(),
                columns: HashMap::new(),
            });
            t.name = row.try_get(1)?;
            let attrs = ColumnAttrs {
                not_null: row.try_get(4)?,
                has_default: row.try_get(5)?,
                auto_increment: row.try_get(6)?,
                keys: KeyFlags::default(),
            };
            t.columns.insert(row.try_get(2)?, (row.try_get(3)?, attrs));
        }
        for row in client.query(idx_stmt, &[&oids]).await? {
            let oid: u32 = row.try_get(0)?;
            let Some(t) = tables.get_mut(&oid) else {
                continue;
            };
            let primary: bool = row.try_get(1)?;
            let unique: bool = row.try_get(2)?;
            let nkey: i16 = row.try_get(3)?;
            let mut keys: Vec<i16> = row.try_get(4)?;
            keys.truncate(usize::try_from(nkey).unwrap_or(0));
            apply_index(t, primary, unique, &keys);
        }
        for (oid, meta) in tables {
            self.tables.put(oid, Arc::new(meta));
        }
        Ok(())
    }
}

/// MySQL's key flags for one index: every column of the primary key is
/// PRI_KEY; the only column of a unique index is UNIQUE_KEY; the first column
/// of any other index is MULTIPLE_KEY; all indexed columns are PART_KEY.
/// Expression parts (attnum 0) have no column.
fn apply_index(t: &mut TableMeta, primary: bool, unique: bool, keys: &[i16]) {
    for (i, attnum) in keys.iter().enumerate() {
        let Some((_, attrs)) = t.columns.get_mut(attnum) else {
            continue;
        };
        let k = &mut attrs.keys;
        k.part = true;
        if primary {
            k.primary = true;
        } else if i == 0 && unique && keys.len() == 1 {
            k.unique = true;
        } else if i == 0 {
            k.multiple = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_flags_follow_mysql() {
        let mut t = TableMeta {
            name: "t".into(),
            columns: (1..=6)
                .map(|n| (n, (format!("c{n}"), ColumnAttrs::default())))
                .collect(),
        };
        apply_index(&mut t, true, true, &[1, 2]);
        apply_index(&mut t, false, true, &[3]);
        apply_index(&mut t, false, true, &[4, 5]);
        apply_index(&mut t, false, false, &[6, 0, 99]);
        let k = |n: i16| t.columns[&n].1.keys;
        let kf = |primary, unique, multiple, part| KeyFlags {
            primary,
            unique,
            multiple,
            part,
        };
        assert_eq!(k(1), kf(true, false, false, true));
        assert_eq!(k(2), kf(true, false, false, true));
        assert_eq!(k(3), kf(false, true, false, true));
        assert_eq!(k(4), kf(false, false, true, true));
        assert_eq!(k(5), kf(false, false, false, true));
        assert_eq!(k(6), kf(false, false, true, true));
    }
}
