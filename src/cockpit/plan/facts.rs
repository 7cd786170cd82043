//! What `tandem plan` reads from the old MySQL side: table sizes, columns,
//! keys, zero dates in the data (only on tables small enough to scan), and
//! the server's statement counters for rates when no proxy is running.

use crate::cockpit::facts::text_rows;
use crate::migrate::db::Db;

use super::risks::{ColumnFacts, IndexColumn, SchemaFacts, TableFacts};

/// Tables up to this many (estimated) rows are scanned for zero dates.
pub const ZERO_DATE_SCAN_ROWS: u64 = 1_000_000;

fn num(s: Option<&String>) -> u64 {
    s.and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn get(r: &[String], i: usize) -> String {
    r.get(i).cloned().unwrap_or_default()
}

pub async fn schema(old: &mut Db) -> Result<SchemaFacts, String> {
    let tables = text_rows(
        old,
        "SELECT TABLE_NAME, CAST(COALESCE(TABLE_ROWS, 0) AS CHAR), \
         CAST(COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) AS CHAR) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'tandem\\_%' ORDER BY TABLE_NAME",
        3,
    )
    .await?
    .into_iter()
    .map(|r| TableFacts {
        name: get(&r, 0),
        rows: num(r.get(1)),
        bytes: num(r.get(2)),
    })
    .collect::<Vec<_>>();
    let columns = text_rows(
        old,
        "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COALESCE(COLUMN_DEFAULT, ''), EXTRA, \
         COALESCE(COLLATION_NAME, ''), IS_NULLABLE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'tandem\\_%' \
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
        7,
    )
    .await?
    .into_iter()
    .map(|r| ColumnFacts {
        table: get(&r, 0),
        name: get(&r, 1),
        data_type: get(&r, 2),
        default: get(&r, 3).trim_matches('\'').to_string(),
        extra: get(&r, 4),
        collation: get(&r, 5),
        nullable: get(&r, 6) == "YES",
    })
    .collect::<Vec<_>>();
    let indexes = text_rows(
        old,
        "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, CAST(NON_UNIQUE AS CHAR) \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        4,
    )
    .await?
    .into_iter()
    .map(|r| IndexColumn {
        table: get(&r, 0),
        index: get(&r, 1),
        column: get(&r, 2),
        unique: get(&r, 3) == "0",
    })
    .collect();
    let mut zero_date_data = Vec::new();
    for c in columns
        .iter()
        .filter(|c| matches!(c.data_type.as_str(), "date" | "datetime" | "timestamp"))
    {
        let small = tables
            .iter()
            .any(|t| t.name == c.table && t.rows <= ZERO_DATE_SCAN_ROWS);
        if !small {
            continue;
        }
        let ident = |s: &str| format!("`{}`", s.replace('`', "``"));
        let sql = format!(
            "SELECT CAST(COUNT(*) AS CHAR) FROM (SELECT 1 FROM {} WHERE CAST({} AS CHAR) LIKE '0000-00-00%' LIMIT 1) z",
            ident(&c.table),
            ident(&c.name)
        );
        if text_rows(old, &sql, 1)
            .await?
            .first()
            .is_some_and(|r| num(r.first()) > 0)
        {
            zero_date_data.push(format!("{}.{}", c.table, c.name));
        }
    }
    Ok(SchemaFacts {
        tables,
        columns,
        indexes,
        zero_date_data,
        untranslatable: Vec::new(),
    })
}

/// (reads/s, writes/s) averaged since the server started, from its status
/// counters.
pub async fn server_rates(old: &mut Db) -> Result<(f64, f64), String> {
    let rows = text_rows(
        old,
        "SELECT UPPER(VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN \
         ('COM_SELECT', 'COM_INSERT', 'COM_UPDATE', 'COM_DELETE', 'COM_REPLACE', 'COM_INSERT_SELECT', 'UPTIME')",
        2,
    )
    .await?;
    let v = |name: &str| {
        rows.iter()
            .find(|r| r.first().is_some_and(|n| n == name))
            .map_or(0, |r| num(r.get(1)))
    };
    let uptime = v("UPTIME").max(1) as f64;
    let writes = v("COM_INSERT")
        + v("COM_UPDATE")
        + v("COM_DELETE")
        + v("COM_REPLACE")
        + v("COM_INSERT_SELECT");
    Ok((v("COM_SELECT") as f64 / uptime, writes as f64 / uptime))
}
