//! Applied-transaction markers for parallel apply, kept in the target.
//!
//! With several workers committing independently, "the last position" is
//! no longer a checkpoint: a later transaction may commit before an earlier
//! one. Each worker therefore inserts one row per source transaction it
//! applies into `tandem_stream_applied` (the transaction's end position),
//! in the same target transaction as its rows. The stream's checkpoint row
//! keeps the *low-water mark*: a position before which every transaction is
//! committed; when it advances, the markers it covers are deleted in the
//! same transaction that stores it. See `parallel` for the argument.

use mysql_async::prelude::Queryable;

use super::{Applier, ApplyError};
use crate::migrate::db::Db;
use crate::migrate::sqltext::{ident, pg_string, Dialect};
use crate::stream::Position;

pub const TABLE: &str = crate::migrate::STREAM_APPLIED_TABLE;

/// Markers per generated statement.
const PER_STATEMENT: usize = 500;

pub fn create_sql(d: Dialect) -> String {
    match d {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (stream_id text NOT NULL, file text NOT NULL, \
             \"offset\" bigint NOT NULL, PRIMARY KEY (stream_id, file, \"offset\"))"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (stream_id varchar(191) NOT NULL, \
             file varchar(255) NOT NULL, `offset` bigint unsigned NOT NULL, \
             PRIMARY KEY (stream_id, file, `offset`))"
        ),
    }
}

fn text(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Postgres => pg_string(s),
        Dialect::Mysql if s.is_empty() => "''".into(),
        Dialect::Mysql => format!("_utf8mb4 X'{}'", crate::migrate::sqltext::hex(s.as_bytes())),
    }
}

/// Inserts a marker per position (idempotent).
pub fn mark_sql(d: Dialect, stream_id: &str, positions: &[Position]) -> Vec<String> {
    positions
        .chunks(PER_STATEMENT)
        .map(|chunk| {
            let values: Vec<String> = chunk
                .iter()
                .map(|p| {
                    format!(
                        "({}, {}, {})",
                        text(d, stream_id),
                        text(d, &p.file),
                        p.offset
                    )
                })
                .collect();
            let head = format!(
                "INSERT INTO {TABLE} (stream_id, file, {}) VALUES {}",
                ident(d, "offset"),
                values.join(", ")
            );
            match d {
                Dialect::Postgres => format!("{head} ON CONFLICT DO NOTHING"),
                Dialect::Mysql => format!("{head} ON DUPLICATE KEY UPDATE stream_id = stream_id"),
            }
        })
        .collect()
}

/// Deletes the markers of `positions`.
pub fn unmark_sql(d: Dialect, stream_id: &str, positions: &[Position]) -> Vec<String> {
    positions
        .chunks(PER_STATEMENT)
        .map(|chunk| {
            let tuples: Vec<String> = chunk
                .iter()
                .map(|p| format!("({}, {})", text(d, &p.file), p.offset))
                .collect();
            format!(
                "DELETE FROM {TABLE} WHERE stream_id = {} AND (file, {}) IN ({})",
                text(d, stream_id),
                ident(d, "offset"),
                tuples.join(", ")
            )
        })
        .collect()
}

pub fn select_sql(d: Dialect, stream_id: &str) -> String {
    format!(
        "SELECT file, {} FROM {TABLE} WHERE stream_id = {}",
        ident(d, "offset"),
        text(d, stream_id)
    )
}

impl Applier {
    /// Commits markers of applied transactions instead of the stream
    /// checkpoint (a worker of parallel apply).
    pub fn set_parallel(&mut self) {
        self.markers = Some(Vec::new());
    }

    /// Markers of transactions applied above the checkpoint by parallel
    /// workers before the last stop.
    pub async fn applied_markers(&mut self) -> Result<Vec<Position>, ApplyError> {
        let sql = select_sql(self.dialect, &self.opts.stream_id);
        let rows: Vec<(String, u64)> = match &mut self.db {
            Db::Pg(pg) => pg
                .client
                .query(&sql, &[])
                .await
                .map_err(|e| ApplyError::from_target(e.into(), None))?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
                .collect(),
            Db::My(c) => c
                .query(sql)
                .await
                .map_err(|e| ApplyError::from_target(e.into(), None))?,
        };
        Ok(rows
            .into_iter()
            .map(|(file, offset)| Position {
                file,
                offset,
                gtid: None,
            })
            .collect())
    }

    pub(super) fn mark(&mut self, position: &Position) {
        if let Some(m) = self.markers.as_mut() {
            m.push(position.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_chunked_and_quoted() {
        let ps: Vec<Position> = (0..1001)
            .map(|n| Position {
                file: "bin.000001".into(),
                offset: n,
                gtid: None,
            })
            .collect();
        let m = mark_sql(Dialect::Postgres, "s'x", &ps);
        assert_eq!(m.len(), 3);
        assert!(m[0].contains("('s''x', 'bin.000001', 0)"));
        let u = unmark_sql(Dialect::Mysql, "s", &ps[..2]);
        assert_eq!(u.len(), 1);
        assert!(u[0].contains("(file, `offset`) IN ("));
    }
}
