//! `tandem_backfill_checkpoint`: one row per table in the target database,
//! written in the same transaction as each chunk, so it always names the
//! last chunk that really committed.

use crate::backend::value::{from_tagged_json, to_tagged_json, Value};

use super::catalog::ColType;
use super::db::Db;
use super::sqltext::{pg_string, Dialect};
use super::{MigrateError, CHECKPOINT_TABLE};

pub(super) fn text_literal(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Postgres => pg_string(s),
        Dialect::Mysql => super::sqltext::literal(
            d,
            &Value::Text(s.to_string()),
            ColType::Pg(crate::backend::value::pg::PgType::Text),
        ),
    }
}

pub async fn ensure_checkpoint_table(db: &mut Db) -> Result<(), MigrateError> {
    let sql = match db.dialect() {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (\
               table_name text PRIMARY KEY, last_key text, \
               rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, \
               updated_at timestamptz NOT NULL DEFAULT now())"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (\
               table_name varchar(255) PRIMARY KEY, last_key longtext, \
               rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, \
               updated_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB"
        ),
    };
    db.execute(&sql).await
}

/// A table's checkpoint: where the last committed chunk ended.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub last_key: Option<Vec<Value>>,
    pub rows_copied: u64,
    pub done: bool,
}

pub async fn read_checkpoint(db: &mut Db, table: &str) -> Result<Option<Checkpoint>, MigrateError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT last_key, rows_copied, done FROM {CHECKPOINT_TABLE} WHERE table_name = {}",
        text_literal(d, table)
    );
    let types = match d {
        Dialect::Postgres => {
            use crate::backend::value::pg::PgType;
            [
                ColType::Pg(PgType::Text),
                ColType::Pg(PgType::Int8),
                ColType::Pg(PgType::Bool),
            ]
        }
        Dialect::Mysql => {
            use crate::backend::value::mysql::{MysqlKind, MysqlType};
            [
                ColType::My(MysqlType::new(MysqlKind::Text)),
                ColType::My(MysqlType::new(MysqlKind::Int)),
                ColType::My(MysqlType::new(MysqlKind::Bool)),
            ]
        }
    };
    let Some(row) = db.rows(&sql, &types).await?.into_iter().next() else {
        return Ok(None);
    };
    let last_key = match &row[0] {
        Value::Null => None,
        Value::Text(t) => Some(from_tagged_json(t).ok_or_else(|| {
            MigrateError::Schema(format!(
                "the checkpoint of {table} is unreadable; rerun with --restart to copy the table again"
            ))
        })?),
        _ => None,
    };
    let rows_copied = match row[1] {
        Value::Int(i) => i.max(0) as u64,
        _ => 0,
    };
    Ok(Some(Checkpoint {
        last_key,
        rows_copied,
        done: row[2] == Value::Bool(true),
    }))
}

pub(super) fn checkpoint_upsert(
    d: Dialect,
    table: &str,
    last_key: Option<&[Value]>,
    rows: u64,
    done: bool,
) -> String {
    let key = last_key.map_or("NULL".to_string(), |k| text_literal(d, &to_tagged_json(k)));
    let name = text_literal(d, table);
    match d {
        Dialect::Postgres => format!(
            "INSERT INTO {CHECKPOINT_TABLE} AS c (table_name, last_key, rows_copied, done) \
             VALUES ({name}, {key}, {rows}, {done}) ON CONFLICT (table_name) DO UPDATE SET \
             last_key = COALESCE(EXCLUDED.last_key, c.last_key), rows_copied = c.rows_copied + EXCLUDED.rows_copied, \
             done = EXCLUDED.done, updated_at = now()"
        ),
        Dialect::Mysql => format!(
            "INSERT INTO {CHECKPOINT_TABLE} (table_name, last_key, rows_copied, done) \
             VALUES ({name}, {key}, {rows}, {done}) ON DUPLICATE KEY UPDATE \
             last_key = COALESCE(VALUES(last_key), last_key), rows_copied = rows_copied + VALUES(rows_copied), \
             done = VALUES(done), updated_at = CURRENT_TIMESTAMP(6)"
        ),
    }
}
