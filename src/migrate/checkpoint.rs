//! `tandem_backfill_checkpoint`: one row per table in the target database,
//! written in the same transaction as each chunk, so it always names the
//! last chunk that really committed.
//!
//! A checkpoint describes one physical target table, not a name: a table
//! dropped and created again (`tandem schema --apply`) or truncated keeps its
//! name but lost its rows. The row therefore records the target's identity
//! when a copy starts (PostgreSQL: `oid:relfilenode`, which a new table and
//! a TRUNCATE both change; MySQL: information_schema's CREATE_TIME) and
//! [`stale_reason`] compares it before the checkpoint is trusted. Where the
//! identity cannot tell (a MySQL table recreated within the same second, a
//! checkpoint written before identities were recorded), a checkpoint with
//! copied rows whose target table is empty while the source is not is stale
//! too.

use crate::value::{from_tagged_json, to_tagged_json, Value};

use super::catalog::{ColType, TablePlan};
use super::db::Db;
use super::sqltext::{pg_string, Dialect};
use super::{MigrateError, Side, CHECKPOINT_TABLE};

pub(super) fn text_literal(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Postgres => pg_string(s),
        Dialect::Mysql => super::sqltext::literal(
            d,
            &Value::Text(s.to_string()),
            ColType::Pg(crate::value::pg::PgType::Text),
        ),
    }
}

pub async fn ensure_checkpoint_table(db: &mut Db) -> Result<(), MigrateError> {
    let sql = match db.dialect() {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (\
               table_name text PRIMARY KEY, last_key text, \
               rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, \
               updated_at timestamptz NOT NULL DEFAULT now(), target_id text); \
             ALTER TABLE {CHECKPOINT_TABLE} ADD COLUMN IF NOT EXISTS target_id text"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (\
               table_name varchar(255) PRIMARY KEY, last_key longtext, \
               rows_copied bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false, \
               updated_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), target_id text) ENGINE=InnoDB"
        ),
    };
    db.execute(&sql).await?;
    if db.dialect() == Dialect::Mysql {
        // A checkpoint table from before identities were recorded (MySQL has
        // no ADD COLUMN IF NOT EXISTS).
        let has = super::db::scalar_i128(
            db,
            &format!(
                "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME = '{CHECKPOINT_TABLE}' AND COLUMN_NAME = 'target_id'"
            ),
        )
        .await?;
        if has == Some(0) {
            db.execute(&format!(
                "ALTER TABLE {CHECKPOINT_TABLE} ADD COLUMN target_id text"
            ))
            .await?;
        }
    }
    Ok(())
}

/// A table's checkpoint: where the last committed chunk ended.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub last_key: Option<Vec<Value>>,
    pub rows_copied: u64,
    pub done: bool,
    /// The target table's identity when the copy started ([`target_identity`]).
    pub target_id: Option<String>,
}

pub async fn read_checkpoint(db: &mut Db, table: &str) -> Result<Option<Checkpoint>, MigrateError> {
    let d = db.dialect();
    let sql = format!(
        "SELECT last_key, rows_copied, done, target_id FROM {CHECKPOINT_TABLE} WHERE table_name = {}",
        text_literal(d, table)
    );
    let types = match d {
        Dialect::Postgres => {
            use crate::value::pg::PgType;
            [
                ColType::Pg(PgType::Text),
                ColType::Pg(PgType::Int8),
                ColType::Pg(PgType::Bool),
                ColType::Pg(PgType::Text),
            ]
        }
        Dialect::Mysql => {
            use crate::value::mysql::{MysqlKind, MysqlType};
            [
                ColType::My(MysqlType::new(MysqlKind::Text)),
                ColType::My(MysqlType::new(MysqlKind::Int)),
                ColType::My(MysqlType::new(MysqlKind::Bool)),
                ColType::My(MysqlType::new(MysqlKind::Text)),
            ]
        }
    };
    let Some(row) = db.rows(&sql, &types).await?.into_iter().next() else {
        return Ok(None);
    };
    let [last_key, rows_copied, done, target_id] = row.as_slice() else {
        return Err(MigrateError::Task(format!(
            "the checkpoint of {table} came back with {} columns",
            row.len()
        )));
    };
    let last_key = match last_key {
        Value::Null => None,
        Value::Text(t) => Some(from_tagged_json(t).ok_or_else(|| {
            MigrateError::Schema(format!(
                "the checkpoint of {table} is unreadable; rerun with --restart to copy the table again"
            ))
        })?),
        _ => None,
    };
    let rows_copied = match rows_copied {
        Value::Int(i) => (*i).max(0) as u64,
        _ => 0,
    };
    Ok(Some(Checkpoint {
        last_key,
        rows_copied,
        done: *done == Value::Bool(true),
        target_id: match target_id {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        },
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

/// The physical identity of the target table `name`, or `None` when it does
/// not exist. PostgreSQL: `oid:relfilenode` (a dropped and recreated table
/// gets a new oid; TRUNCATE, and also VACUUM FULL and CLUSTER, a new
/// relfilenode). MySQL: `created:` + CREATE_TIME.
pub async fn target_identity(db: &mut Db, name: &str) -> Result<Option<String>, MigrateError> {
    let d = db.dialect();
    let sql = match d {
        Dialect::Postgres => format!(
            "SELECT c.oid::text || ':' || c.relfilenode::text FROM pg_class c \
             WHERE c.oid = to_regclass({})",
            pg_string(&super::sqltext::ident(d, name))
        ),
        Dialect::Mysql => format!(
            "SELECT CONCAT('created:', COALESCE(CREATE_TIME, '')) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
            text_literal(d, name)
        ),
    };
    let types = [match d {
        Dialect::Postgres => ColType::Pg(crate::value::pg::PgType::Text),
        Dialect::Mysql => ColType::My(crate::value::mysql::MysqlType::new(
            crate::value::mysql::MysqlKind::Text,
        )),
    }];
    Ok(db
        .rows(&sql, &types)
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .and_then(|v| match v {
            Value::Text(t) => Some(t),
            _ => None,
        }))
}

/// Why `checkpoint` no longer describes the target table (`None`: it does).
/// `current` is the table's identity now; the emptiness probe reads one row
/// of each side, and the old side only when the target is empty.
pub async fn stale_reason(
    target: &mut Db,
    old: &super::Sides,
    plan: &TablePlan,
    checkpoint: &Checkpoint,
    current: Option<&str>,
) -> Result<Option<String>, MigrateError> {
    if let (Some(recorded), Some(now)) = (checkpoint.target_id.as_deref(), current) {
        if recorded != now {
            return Ok(Some(format!(
                "the target table is not the one the checkpoint was written for \
                 (identity {recorded} then, {now} now: dropped and created again, or truncated)"
            )));
        }
    }
    if checkpoint.rows_copied == 0 && !checkpoint.done {
        return Ok(None);
    }
    if has_a_row(target, plan, Side::New).await? {
        return Ok(None);
    }
    let mut source = old.connect(Side::Old).await?;
    if has_a_row(&mut source, plan, Side::Old).await? {
        return Ok(Some(format!(
            "the checkpoint counts {} copied row(s) but the target table is empty while the source is not",
            checkpoint.rows_copied
        )));
    }
    Ok(None)
}

async fn has_a_row(db: &mut Db, plan: &TablePlan, side: Side) -> Result<bool, MigrateError> {
    let sql = format!(
        "SELECT 1 FROM {} LIMIT 1",
        super::sqltext::ident(db.dialect(), plan.name(side))
    );
    Ok(super::db::scalar_i128(db, &sql).await?.is_some())
}

/// Records the target's identity with the table's checkpoint (creating the
/// row when needed) without touching `updated_at`, which `cutover-check`
/// compares with the last verify.
pub(super) async fn record_identity(
    db: &mut Db,
    table: &str,
    identity: &str,
) -> Result<(), MigrateError> {
    let d = db.dialect();
    let (name, id) = (text_literal(d, table), text_literal(d, identity));
    let sql = match d {
        Dialect::Postgres => format!(
            "INSERT INTO {CHECKPOINT_TABLE} AS c (table_name, target_id) VALUES ({name}, {id}) \
             ON CONFLICT (table_name) DO UPDATE SET target_id = EXCLUDED.target_id, updated_at = c.updated_at"
        ),
        Dialect::Mysql => format!(
            "INSERT INTO {CHECKPOINT_TABLE} (table_name, target_id) VALUES ({name}, {id}) \
             ON DUPLICATE KEY UPDATE target_id = VALUES(target_id), updated_at = updated_at"
        ),
    };
    db.execute(&sql).await
}

/// Forgets a table's checkpoint (the next copy starts from the beginning).
pub(super) async fn forget(db: &mut Db, table: &str) -> Result<(), MigrateError> {
    let d = db.dialect();
    db.execute(&format!(
        "DELETE FROM {} WHERE table_name = {}",
        super::sqltext::ident(d, CHECKPOINT_TABLE),
        text_literal(d, table)
    ))
    .await
}

/// The table's checkpoint as far as it still describes the target table:
/// a stale one is logged with its reason, forgotten, and the copy starts over
/// (insert-if-absent keeps whatever rows are still there). The target's
/// current identity is recorded with it.
pub(super) async fn trusted_checkpoint(
    target: &mut Db,
    sides: &super::Sides,
    plan: &TablePlan,
) -> Result<Checkpoint, MigrateError> {
    let mut checkpoint = read_checkpoint(target, &plan.old_name)
        .await?
        .unwrap_or_default();
    let identity = target_identity(target, &plan.new_name).await?;
    if let Some(why) = stale_reason(target, sides, plan, &checkpoint, identity.as_deref()).await? {
        tracing::warn!(table = %plan.old_name, reason = %why, "checkpoint no longer applies: copying the table again");
        forget(target, &plan.old_name).await?;
        checkpoint = Checkpoint::default();
    }
    if let Some(id) = identity {
        if checkpoint.target_id.as_deref() != Some(id.as_str()) {
            record_identity(target, &plan.old_name, &id).await?;
            checkpoint.target_id = Some(id);
        }
    }
    Ok(checkpoint)
}
