//! The stream's checkpoint, kept in the target database itself.
//!
//! Each applied batch writes its end position into
//! `tandem_stream_checkpoint` inside the same target transaction as its
//! rows: either both are committed or neither, so a restart that resumes
//! from the stored position applies every source transaction exactly once,
//! whatever the moment the stream died.

use crate::migrate::sqltext::{ident, pg_string, Dialect};
use crate::stream::Position;

pub const TABLE: &str = crate::migrate::STREAM_CHECKPOINT_TABLE;

/// What the checkpoint table holds for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: Position,
    /// Source commit time (seconds since the epoch) of the last applied
    /// transaction; 0 if unknown.
    pub source_ts: u32,
}

pub fn create_sql(d: Dialect) -> String {
    match d {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (stream_id text PRIMARY KEY, file text NOT NULL, \
             \"offset\" bigint NOT NULL, gtid text, source_ts bigint NOT NULL DEFAULT 0, \
             applied_at timestamptz NOT NULL DEFAULT now())"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (stream_id varchar(191) PRIMARY KEY, \
             file varchar(512) NOT NULL, `offset` bigint unsigned NOT NULL, gtid text, \
             source_ts bigint NOT NULL DEFAULT 0, applied_at datetime(6) NOT NULL)"
        ),
    }
}

fn text(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Postgres => pg_string(s),
        Dialect::Mysql => {
            if s.is_empty() {
                "''".into()
            } else {
                format!("_utf8mb4 X'{}'", crate::migrate::sqltext::hex(s.as_bytes()))
            }
        }
    }
}

pub fn select_sql(d: Dialect, stream_id: &str) -> String {
    format!(
        "SELECT file, {}, gtid, source_ts FROM {TABLE} WHERE stream_id = {}",
        ident(d, "offset"),
        text(d, stream_id)
    )
}

/// The GTID state the checkpoint of `stream_id` covers (one text column).
pub fn gtid_sql(d: Dialect, stream_id: &str) -> String {
    format!(
        "SELECT gtid FROM {TABLE} WHERE stream_id = {}",
        text(d, stream_id)
    )
}

/// Counts 1 when the checkpoint of `stream_id` is at or past `target`'s file
/// and offset (binlog file names share a prefix and a zero-padded sequence
/// number, so the pair orders positions), else 0.
pub fn reached_sql(d: Dialect, stream_id: &str, target: &Position) -> String {
    let offset = ident(d, "offset");
    let file = text(d, &target.file);
    format!(
        "SELECT COUNT(*) FROM {TABLE} WHERE stream_id = {} AND (file > {file} OR (file = {file} AND {offset} >= {}))",
        text(d, stream_id),
        target.offset
    )
}

/// The statement that stores `cp` for `stream_id` (an upsert).
pub fn store_sql(d: Dialect, stream_id: &str, cp: &Checkpoint) -> String {
    let gtid = cp
        .position
        .gtid
        .as_deref()
        .map_or_else(|| "NULL".to_string(), |g| text(d, g));
    let values = format!(
        "{}, {}, {}, {gtid}, {}",
        text(d, stream_id),
        text(d, &cp.position.file),
        cp.position.offset,
        cp.source_ts
    );
    match d {
        Dialect::Postgres => format!(
            "INSERT INTO {TABLE} (stream_id, file, \"offset\", gtid, source_ts, applied_at) \
             VALUES ({values}, now()) ON CONFLICT (stream_id) DO UPDATE SET file = EXCLUDED.file, \
             \"offset\" = EXCLUDED.\"offset\", gtid = EXCLUDED.gtid, source_ts = EXCLUDED.source_ts, \
             applied_at = EXCLUDED.applied_at"
        ),
        Dialect::Mysql => format!(
            "INSERT INTO {TABLE} (stream_id, file, `offset`, gtid, source_ts, applied_at) \
             VALUES ({values}, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE file = VALUES(file), \
             `offset` = VALUES(`offset`), gtid = VALUES(gtid), source_ts = VALUES(source_ts), \
             applied_at = VALUES(applied_at)"
        ),
    }
}
