//! Table metadata for decoding: the table map (what the binlog says about
//! the table as of the event) joined with `information_schema` (what only
//! the catalog knows: `COLUMN_TYPE` such as `tinyint(1)` or `int(10)
//! unsigned`, and the column charset).
//!
//! The table map is the authority for the column count, order and names;
//! the catalog is read once per table, cached, and dropped after DDL. When
//! the two disagree (the catalog is already ahead of the event, after a DDL
//! the stream has not reached yet) the table map alone is used and the column
//! types are derived from it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::mysql::BackendConn;
use crate::backend::BackendError;
use crate::stream::{SourceColumn, SourceTable};
use crate::value::mysql::{MysqlKind, MysqlType};

use super::rows::{Charset, ColumnCodec};
use super::tablemap::{ty, MapColumn, TableMap};

/// One column as `information_schema.COLUMNS` has it.
#[derive(Debug, Clone)]
pub struct CatalogColumn {
    pub name: String,
    pub column_type: String,
    pub charset: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CatalogTable {
    pub columns: Vec<CatalogColumn>,
    /// Primary key column names in key order.
    pub key: Vec<String>,
}

/// A decoded table map, ready to decode rows.
#[derive(Debug)]
pub struct MappedTable {
    pub source: Arc<SourceTable>,
    pub codecs: Vec<ColumnCodec>,
}

/// `information_schema` reads, cached per table until the next DDL.
#[derive(Default)]
pub struct Catalog {
    tables: HashMap<(String, String), Option<Arc<CatalogTable>>>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

impl Catalog {
    pub fn invalidate(&mut self) {
        self.tables.clear();
    }

    pub async fn get(
        &mut self,
        conn: &mut BackendConn,
        database: &str,
        table: &str,
    ) -> Result<Option<Arc<CatalogTable>>, BackendError> {
        let key = (database.to_string(), table.to_string());
        if let Some(t) = self.tables.get(&key) {
            return Ok(t.clone());
        }
        let (db, t) = (quote(database), quote(table));
        let rows = conn
            .query_rows(&format!(
                "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = {t} ORDER BY ORDINAL_POSITION"
            ))
            .await?;
        let columns: Vec<CatalogColumn> = rows
            .into_iter()
            .map(|r| {
                let name = r.first().cloned().flatten().unwrap_or_default();
                let column_type = r.get(1).cloned().flatten().unwrap_or_default();
                let charset = r.get(2).cloned().flatten();
                CatalogColumn {
                    name,
                    column_type,
                    charset,
                }
            })
            .collect();
        let found = if columns.is_empty() {
            None
        } else {
            let key = conn
                .query_rows(&format!(
                    "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
                     WHERE TABLE_SCHEMA = {db} AND TABLE_NAME = {t} AND INDEX_NAME = 'PRIMARY' \
                     ORDER BY SEQ_IN_INDEX"
                ))
                .await?
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect();
            Some(Arc::new(CatalogTable { columns, key }))
        };
        self.tables.insert(key, found.clone());
        Ok(found)
    }
}

/// Joins a table map with the catalog's view of the table.
pub fn build(map: &TableMap, catalog: Option<&CatalogTable>) -> MappedTable {
    let names: Vec<String> = if !map.names.is_empty() {
        map.names.clone()
    } else if let Some(c) = catalog.filter(|c| c.columns.len() == map.columns.len()) {
        c.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        (1..=map.columns.len()).map(|i| format!("@{i}")).collect()
    };
    // Use the catalog only if it describes exactly these columns, with
    // types the binlog agrees with (a later ALTER … MODIFY would not).
    let catalog = catalog.filter(|c| {
        c.columns.len() == map.columns.len()
            && c.columns
                .iter()
                .zip(&names)
                .zip(&map.columns)
                .all(|((c, n), mc)| {
                    c.name.eq_ignore_ascii_case(n)
                        && compatible(
                            MysqlType::from_column_type(&c.column_type).kind,
                            MysqlType::from_column_type(&derived_column_type(mc)).kind,
                        )
                })
    });
    if catalog.is_none() {
        tracing::debug!(
            database = %map.database,
            table = %map.table,
            "catalog does not match the table map; deriving column types from the binlog"
        );
    }
    let mut columns = Vec::with_capacity(map.columns.len());
    let mut codecs = Vec::with_capacity(map.columns.len());
    for (i, (mc, name)) in map.columns.iter().zip(&names).enumerate() {
        let cat = catalog.and_then(|c| c.columns.get(i));
        let column_type = match cat {
            Some(c) => c.column_type.clone(),
            None => derived_column_type(mc),
        };
        let value_type = MysqlType::from_column_type(&column_type);
        let charset = match (cat, mc.collation) {
            (Some(c), _) => Charset::from_name(c.charset.as_deref()),
            (None, Some(id)) => Charset::from_collation(id),
            (None, None) if value_type.kind == MysqlKind::Binary => Charset::Binary,
            (None, None) => Charset::Utf8,
        };
        let members = match &mc.members {
            Some(m) => m
                .iter()
                .map(|b| String::from_utf8_lossy(&charset.decode(b)).into_owned())
                .collect(),
            None => members_of(&column_type),
        };
        codecs.push(ColumnCodec {
            ty: mc.ty,
            meta: mc.meta,
            unsigned: value_type.unsigned || mc.unsigned == Some(true),
            charset,
            members,
            value_type,
        });
        columns.push(SourceColumn {
            name: name.clone(),
            ty: value_type,
            column_type,
        });
    }
    let key = match catalog {
        Some(c) if !c.key.is_empty() => c
            .key
            .iter()
            .filter_map(|k| names.iter().position(|n| n.eq_ignore_ascii_case(k)))
            .collect(),
        _ => map.primary_key.clone(),
    };
    MappedTable {
        source: Arc::new(SourceTable {
            database: map.database.clone(),
            name: map.table.clone(),
            columns,
            key,
        }),
        codecs,
    }
}

/// Whether a catalog column kind can describe a binlog column kind (the
/// binlog cannot tell TINYINT(1) from TINYINT, nor — without metadata — a
/// binary string from a text one).
fn compatible(catalog: MysqlKind, binlog: MysqlKind) -> bool {
    use MysqlKind::*;
    catalog == binlog
        || matches!(
            (catalog, binlog),
            (Bool, Int) | (Text | Binary | Json | Other, Text | Binary | Other)
        )
}

/// ENUM/SET members from a `COLUMN_TYPE` such as `enum('a','it''s')`.
pub fn members_of(column_type: &str) -> Vec<String> {
    let Some(start) = column_type.find('(') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut chars = column_type[start + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut member = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    member.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        member.push(n);
                    }
                }
                c => member.push(c),
            }
        }
        out.push(member);
    }
    out
}

/// A `COLUMN_TYPE` spelled from the binlog alone (when the catalog cannot be
/// matched): the base type with signedness and what the metadata gives.
fn derived_column_type(c: &MapColumn) -> String {
    let unsigned = if c.unsigned == Some(true) {
        " unsigned"
    } else {
        ""
    };
    let binary = c.collation == Some(63);
    match c.ty {
        ty::TINY => format!("tinyint{unsigned}"),
        ty::SHORT => format!("smallint{unsigned}"),
        ty::INT24 => format!("mediumint{unsigned}"),
        ty::LONG => format!("int{unsigned}"),
        ty::LONGLONG => format!("bigint{unsigned}"),
        ty::FLOAT => "float".into(),
        ty::DOUBLE => "double".into(),
        ty::NEWDECIMAL | ty::DECIMAL => {
            format!("decimal({},{}){unsigned}", c.meta & 0xff, c.meta >> 8)
        }
        ty::YEAR => "year".into(),
        ty::DATE | ty::NEWDATE => "date".into(),
        ty::TIME | ty::TIME2 => format!("time({})", c.meta),
        ty::DATETIME | ty::DATETIME2 => format!("datetime({})", c.meta),
        ty::TIMESTAMP | ty::TIMESTAMP2 => format!("timestamp({})", c.meta),
        ty::BIT => format!("bit({})", (c.meta >> 8) * 8 + (c.meta & 0xff)),
        ty::VARCHAR | ty::VAR_STRING if binary => format!("varbinary({})", c.meta),
        ty::VARCHAR | ty::VAR_STRING => "varchar".into(),
        ty::STRING if binary => format!("binary({})", c.meta),
        ty::STRING => "char".into(),
        ty::BLOB | ty::TINY_BLOB | ty::MEDIUM_BLOB | ty::LONG_BLOB if binary => "blob".into(),
        ty::BLOB | ty::TINY_BLOB | ty::MEDIUM_BLOB | ty::LONG_BLOB => "text".into(),
        ty::ENUM | ty::SET => {
            let list: Vec<String> = c
                .members
                .iter()
                .flatten()
                .map(|m| format!("'{}'", String::from_utf8_lossy(m).replace('\'', "''")))
                .collect();
            let kind = if c.ty == ty::ENUM { "enum" } else { "set" };
            format!("{kind}({})", list.join(","))
        }
        ty::JSON => "json".into(),
        ty::GEOMETRY => "geometry".into(),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(ty: u8, name: &str) -> TableMap {
        TableMap {
            table_id: 1,
            database: "d".into(),
            table: "t".into(),
            columns: vec![MapColumn {
                ty,
                meta: 0,
                nullable: true,
                unsigned: Some(false),
                collation: None,
                members: None,
            }],
            names: vec![name.into()],
            primary_key: vec![0],
        }
    }

    fn catalog_of(name: &str, column_type: &str) -> CatalogTable {
        CatalogTable {
            columns: vec![CatalogColumn {
                name: name.into(),
                column_type: column_type.into(),
                charset: None,
            }],
            key: vec![name.into()],
        }
    }

    #[test]
    fn catalog_is_used_only_when_it_matches_the_table_map() {
        let map = map_of(ty::TINY, "flag");
        let built = build(&map, Some(&catalog_of("flag", "tinyint(1)")));
        assert_eq!(built.source.columns[0].column_type, "tinyint(1)");
        assert_eq!(built.source.columns[0].ty.kind, MysqlKind::Bool);
        // Renamed or retyped since the event: the binlog alone decides.
        let built = build(&map, Some(&catalog_of("other", "tinyint(1)")));
        assert_eq!(built.source.columns[0].column_type, "tinyint");
        let built = build(&map, Some(&catalog_of("flag", "varchar(10)")));
        assert_eq!(built.source.columns[0].ty.kind, MysqlKind::Int);
        assert_eq!(built.source.key, vec![0]);
    }

    #[test]
    fn enum_members() {
        assert_eq!(members_of("enum('a','it''s','')"), vec!["a", "it's", ""]);
        assert_eq!(members_of("set('x,y'"), vec!["x,y"]);
        assert!(members_of("int(11)").is_empty());
    }
}
