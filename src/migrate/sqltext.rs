//! SQL text for both engines: quoting, literals from normalized values, and
//! the keyset-paginated SELECTs the commands run.
//!
//! Keys are written as literals rather than bound parameters: tokio-postgres
//! infers parameter types from the statement and refuses mismatched Rust
//! types, and one literal per chunk boundary costs nothing next to the chunk.
//! MySQL text literals use hex with a charset introducer, so no escaping rule
//! (or `NO_BACKSLASH_ESCAPES`) can change their meaning.

use std::fmt::Write as _;

use crate::value::mysql::MysqlKind;
use crate::value::pg::PgType;
use crate::value::{temporal, Value};

use super::catalog::{ColType, PlanColumn, TablePlan};
pub use super::types::Dialect;
use super::Side;

pub fn ident(d: Dialect, name: &str) -> String {
    match d {
        Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
        Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// A PostgreSQL string literal (standard_conforming_strings is on).
pub fn pg_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn mysql_text(s: &str) -> String {
    if s.is_empty() {
        "''".into()
    } else {
        format!("_utf8mb4 X'{}'", hex(s.as_bytes()))
    }
}

/// `v` as a literal for a column of type `ty` in dialect `d`.
pub fn literal(d: Dialect, v: &Value, ty: ColType) -> String {
    match d {
        Dialect::Mysql => mysql_literal(v),
        Dialect::Postgres => pg_literal(v, ty),
    }
}

fn mysql_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) => (*b as u8).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Float(f) => format!("{f:e}"),
        Value::Date(d) => format!("'{}'", temporal::format_date(*d)),
        Value::Time(t) => format!("'{}'", temporal::format_time(*t)),
        Value::Timestamp(t) => format!("'{}'", temporal::format_timestamp(*t)),
        Value::Text(s) | Value::Json(s) => mysql_text(s),
        Value::Bytes(b) => format!("X'{}'", hex(b)),
    }
}

fn pg_literal(v: &Value, ty: ColType) -> String {
    let pg = match ty {
        ColType::Pg(t) => t,
        ColType::My(_) => PgType::Other,
    };
    match v {
        Value::Null => "NULL".into(),
        Value::Bool(b) if pg == PgType::Bool => b.to_string(),
        Value::Bool(b) => (*b as u8).to_string(),
        Value::Int(i) if pg == PgType::Bool => (*i != 0).to_string(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) if d.parse::<f64>().is_ok() && !d.contains(char::is_alphabetic) => {
            d.to_string()
        }
        Value::Decimal(d) => format!("'{d}'::{}", pg.sql_name()),
        Value::Float(f) => format!("'{}'::float8", float_text(*f)),
        Value::Date(d) => format!("'{}'::date", temporal::format_date(*d)),
        Value::Time(t) => {
            let cast = if pg == PgType::Interval {
                "interval"
            } else {
                "time"
            };
            format!("'{}'::{cast}", temporal::format_time(*t))
        }
        Value::Timestamp(t) if pg == PgType::Timestamptz => {
            format!("'{}+00'::timestamptz", temporal::format_timestamp(*t))
        }
        Value::Timestamp(t) => format!("'{}'::timestamp", temporal::format_timestamp(*t)),
        Value::Text(s) if pg == PgType::Bytea => format!("'\\x{}'::bytea", hex(s.as_bytes())),
        Value::Text(s) | Value::Json(s) => pg_string(s),
        Value::Bytes(b) if pg == PgType::Bytea => format!("'\\x{}'::bytea", hex(b)),
        Value::Bytes(b) => format!("convert_from('\\x{}'::bytea, 'UTF8')", hex(b)),
    }
}

/// A float as text both engines read back to the same bits.
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{f:e}")
    }
}

/// Whether a key column is compared through its UTF-8 bytes on this side.
fn bytewise(col: &PlanColumn, side: Side, byte_order: bool) -> bool {
    match col.ty(side) {
        // ENUM sorts by member index but compares as a string: only the
        // string form gives a keyset order consistent with its comparisons.
        ColType::My(t) if matches!(t.kind, MysqlKind::Enum | MysqlKind::Set) => true,
        ColType::Pg(PgType::Other | PgType::Uuid) => true,
        ty => byte_order && ty.is_textual(),
    }
}

/// The expression a key column is ordered and compared by.
fn order_expr(d: Dialect, col: &PlanColumn, side: Side, byte_order: bool) -> String {
    let name = ident(d, col.name(side));
    if !bytewise(col, side, byte_order) {
        return name;
    }
    match d {
        Dialect::Mysql => format!("CAST(CONVERT({name} USING utf8mb4) AS BINARY)"),
        Dialect::Postgres => format!("({name}::text) COLLATE \"C\""),
    }
}

fn order_literal(d: Dialect, v: &Value, col: &PlanColumn, side: Side, byte_order: bool) -> String {
    if bytewise(col, side, byte_order) {
        let bytes = v
            .as_bytes()
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| v.to_string().into_bytes());
        return match d {
            Dialect::Mysql => format!("X'{}'", hex(&bytes)),
            Dialect::Postgres => pg_string(&String::from_utf8_lossy(&bytes)),
        };
    }
    literal(d, v, col.ty(side))
}

/// The expression a column is read with: MySQL FLOAT through DOUBLE (its
/// text form keeps only 6 digits), PostgreSQL types without a binary decoder
/// as text.
pub fn read_expr(d: Dialect, col: &PlanColumn, side: Side) -> String {
    let name = ident(d, col.name(side));
    match col.ty(side) {
        ColType::My(t) if t.kind == MysqlKind::Float => format!("CAST({name} AS DOUBLE)"),
        ColType::Pg(t) if t.needs_text_cast() => format!("{name}::text"),
        _ => name,
    }
}

/// Types of the columns as `select_*` return them on `side`.
pub fn read_types(plan: &TablePlan, side: Side) -> Vec<ColType> {
    plan.columns.iter().map(|c| c.ty(side)).collect()
}

/// Which rows of the key order a scan returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds<'a> {
    /// Strictly after this key.
    pub after: Option<&'a [Value]>,
    /// Up to and including this key.
    pub upto: Option<&'a [Value]>,
}

/// `SELECT <all columns> FROM t WHERE <bounds> ORDER BY <key> LIMIT n`.
/// `byte_order` orders text keys by their bytes (needed when two engines'
/// scans must line up; costs the index on MySQL text keys).
pub fn select_range(
    d: Dialect,
    plan: &TablePlan,
    side: Side,
    bounds: Bounds<'_>,
    limit: Option<u64>,
    byte_order: bool,
) -> String {
    let mut sql = select_head(d, plan, side);
    let mut conds = Vec::new();
    if let Some(after) = bounds.after {
        conds.push(compare(d, plan, side, after, ">", byte_order));
    }
    if let Some(upto) = bounds.upto {
        conds.push(compare(d, plan, side, upto, "<=", byte_order));
    }
    if !conds.is_empty() {
        let _ = write!(sql, " WHERE {}", conds.join(" AND "));
    }
    if !plan.key.is_empty() {
        let order: Vec<String> = plan
            .key_columns()
            .map(|c| order_expr(d, c, side, byte_order))
            .collect();
        let _ = write!(sql, " ORDER BY {}", order.join(", "));
    }
    if let Some(n) = limit {
        let _ = write!(sql, " LIMIT {n}");
    }
    sql
}

fn select_head(d: Dialect, plan: &TablePlan, side: Side) -> String {
    let cols: Vec<String> = plan.columns.iter().map(|c| read_expr(d, c, side)).collect();
    format!(
        "SELECT {} FROM {}",
        cols.join(", "),
        ident(d, plan.name(side))
    )
}

/// `key <op> bound` in key order, `op` being `>` or `<=`. PostgreSQL gets a
/// row comparison; MySQL the expanded form its range optimizer handles.
fn compare(
    d: Dialect,
    plan: &TablePlan,
    side: Side,
    bound: &[Value],
    op: &str,
    byte_order: bool,
) -> String {
    let cols: Vec<&PlanColumn> = plan.key_columns().collect();
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| order_expr(d, c, side, byte_order))
        .collect();
    let lits: Vec<String> = cols
        .iter()
        .zip(bound)
        .map(|(c, v)| order_literal(d, v, c, side, byte_order))
        .collect();
    if exprs.len() == 1 {
        return format!("{} {op} {}", exprs[0], lits[0]);
    }
    if d == Dialect::Postgres {
        return format!("({}) {op} ({})", exprs.join(", "), lits.join(", "));
    }
    let strict = if op == ">" { ">" } else { "<" };
    let mut alternatives = Vec::new();
    for i in 0..exprs.len() {
        let mut terms: Vec<String> = (0..i)
            .map(|j| format!("{} = {}", exprs[j], lits[j]))
            .collect();
        terms.push(format!("{} {strict} {}", exprs[i], lits[i]));
        alternatives.push(format!("({})", terms.join(" AND ")));
    }
    if op == "<=" {
        let all: Vec<String> = (0..exprs.len())
            .map(|j| format!("{} = {}", exprs[j], lits[j]))
            .collect();
        alternatives.push(format!("({})", all.join(" AND ")));
    }
    format!("({})", alternatives.join(" OR "))
}

/// `(k1, k2) IN ((…), (…))` over the key columns' plain names.
pub fn key_in(d: Dialect, plan: &TablePlan, side: Side, keys: &[Vec<Value>]) -> String {
    let cols: Vec<&PlanColumn> = plan.key_columns().collect();
    let names: Vec<String> = cols.iter().map(|c| ident(d, c.name(side))).collect();
    let tuples: Vec<String> = keys
        .iter()
        .map(|k| {
            let lits: Vec<String> = cols
                .iter()
                .zip(k)
                .map(|(c, v)| literal(d, v, c.ty(side)))
                .collect();
            if lits.len() == 1 {
                lits[0].clone()
            } else {
                format!("({})", lits.join(", "))
            }
        })
        .collect();
    let lhs = if names.len() == 1 {
        names[0].clone()
    } else {
        format!("({})", names.join(", "))
    };
    format!("{lhs} IN ({})", tuples.join(", "))
}

/// The rows with the given keys.
pub fn select_keys(d: Dialect, plan: &TablePlan, side: Side, keys: &[Vec<Value>]) -> String {
    format!(
        "{} WHERE {}",
        select_head(d, plan, side),
        key_in(d, plan, side, keys)
    )
}

pub fn delete_keys(d: Dialect, plan: &TablePlan, side: Side, keys: &[Vec<Value>]) -> String {
    format!(
        "DELETE FROM {} WHERE {}",
        ident(d, plan.name(side)),
        key_in(d, plan, side, keys)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::mysql::MysqlType;

    fn col(name: &str, my: &str, pg: PgType) -> PlanColumn {
        PlanColumn {
            old_name: name.into(),
            new_name: name.into(),
            old_ty: ColType::My(MysqlType::from_column_type(my)),
            new_ty: ColType::Pg(pg),
            old_generated: false,
            new_generated: false,
            new_auto: false,
            old_auto: false,
        }
    }

    fn plan() -> TablePlan {
        TablePlan {
            old_name: "t`x".into(),
            new_name: "t\"x".into(),
            columns: vec![
                col("a", "int", PgType::Int4),
                col("b", "varchar(10)", PgType::Text),
                col("f", "float", PgType::Float4),
            ],
            key: vec![0, 1],
            key_source: "primary key".into(),
            unique_on: [true, true],
            only_old: vec![],
            only_new: vec![],
            est_rows: 0,
        }
    }

    #[test]
    fn keyset_select_mysql() {
        let key = [Value::Int(5), Value::Text("é'".into())];
        let sql = select_range(
            Dialect::Mysql,
            &plan(),
            Side::Old,
            Bounds {
                after: Some(&key),
                upto: None,
            },
            Some(100),
            true,
        );
        assert_eq!(
            sql,
            "SELECT `a`, `b`, CAST(`f` AS DOUBLE) FROM `t``x` WHERE ((`a` > 5) OR (`a` = 5 AND \
             CAST(CONVERT(`b` USING utf8mb4) AS BINARY) > X'c3a927')) ORDER BY `a`, \
             CAST(CONVERT(`b` USING utf8mb4) AS BINARY) LIMIT 100"
        );
        let native = select_range(
            Dialect::Mysql,
            &plan(),
            Side::Old,
            Bounds {
                after: Some(&key),
                upto: Some(&key),
            },
            None,
            false,
        );
        assert!(
            native.contains("(`a` = 5 AND `b` > _utf8mb4 X'c3a927')"),
            "{native}"
        );
        assert!(
            native.contains("OR (`a` = 5 AND `b` = _utf8mb4 X'c3a927'))"),
            "{native}"
        );
    }

    #[test]
    fn keyset_select_postgres() {
        let key = [Value::Int(5), Value::Text("é'".into())];
        let sql = select_range(
            Dialect::Postgres,
            &plan(),
            Side::New,
            Bounds {
                after: Some(&key),
                upto: Some(&key),
            },
            None,
            true,
        );
        assert_eq!(
            sql,
            "SELECT \"a\", \"b\", \"f\" FROM \"t\"\"x\" WHERE (\"a\", (\"b\"::text) COLLATE \"C\") > (5, 'é''') \
             AND (\"a\", (\"b\"::text) COLLATE \"C\") <= (5, 'é''') ORDER BY \"a\", (\"b\"::text) COLLATE \"C\""
        );
    }

    #[test]
    fn literals() {
        let ts = ColType::Pg(PgType::Timestamptz);
        assert_eq!(
            literal(Dialect::Postgres, &Value::Timestamp(0), ts),
            "'1970-01-01 00:00:00+00'::timestamptz"
        );
        assert_eq!(
            literal(Dialect::Postgres, &Value::Int(1), ColType::Pg(PgType::Bool)),
            "true"
        );
        assert_eq!(
            literal(
                Dialect::Postgres,
                &Value::Bytes(vec![1, 171]),
                ColType::Pg(PgType::Bytea)
            ),
            "'\\x01ab'::bytea"
        );
        assert_eq!(
            literal(Dialect::Mysql, &Value::Bytes(vec![1, 171]), ts),
            "X'01ab'"
        );
        assert_eq!(
            literal(Dialect::Mysql, &Value::Text(String::new()), ts),
            "''"
        );
        assert_eq!(
            literal(
                Dialect::Postgres,
                &Value::Decimal("NaN".into()),
                ColType::Pg(PgType::Numeric)
            ),
            "'NaN'::numeric"
        );
        assert_eq!(
            literal(
                Dialect::Postgres,
                &Value::Decimal("-1.5".into()),
                ColType::Pg(PgType::Numeric)
            ),
            "-1.5"
        );
        let keys = vec![
            vec![Value::Int(1), Value::Text("a".into())],
            vec![Value::Int(2), Value::Text("b".into())],
        ];
        assert_eq!(
            delete_keys(Dialect::Postgres, &plan(), Side::New, &keys),
            "DELETE FROM \"t\"\"x\" WHERE (\"a\", \"b\") IN ((1, 'a'), (2, 'b'))"
        );
    }
}
