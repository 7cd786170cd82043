//! Backfill and the binlog change stream writing the same tables at once,
//! and why the new side ends identical without `verify --repair`.
//!
//! # The protocol (PostgreSQL target)
//!
//! * Before a table's first chunk, the backfill creates its **tombstone
//!   table** `tandem_tomb_<hash>` (the target table's key columns, unique)
//!   and commits. It is dropped in the transaction of the table's last chunk.
//! * Each chunk is read on the old side inside `START TRANSACTION WITH
//!   CONSISTENT SNAPSHOT`; the snapshot's binlog coordinates
//!   (`binlog_snapshot_file/position`) go into the backfill report.
//! * Each chunk is written in one target transaction that first takes the
//!   table's **exclusive** transaction-level advisory lock, then writes its
//!   rows insert-if-absent (`ON CONFLICT DO NOTHING`), leaving out every key
//!   in the tombstone table.
//! * The applier, in every target transaction, takes the same lock **shared**
//!   before its first statement on a table (so appliers never wait for each
//!   other, only for a chunk), and for the keys it deletes records
//!   tombstones, if the tombstone table exists, before its `DELETE`.
//!
//! # Why the end state is right, key by key
//!
//! Let a key `k` be copied by a chunk read at snapshot `S`, and let the
//! stream (which must already be running when the backfill starts, see the
//! README) eventually apply every source transaction past the end of the
//! backfill. Each stream write carries the full row image.
//!
//! 1. If the last source change of `k` is an insert or update, the stream
//!    writes that image by upsert: a chunk committed before it is
//!    overwritten, a chunk committed after it hits the row and does nothing.
//!    The final row is the source's.
//! 2. If the last change is a delete at or before `S`, the chunk did not read
//!    `k`: nothing resurrects it.
//! 3. If the last change is a delete after `S`: its source commit follows
//!    `S`, which follows the commit of the tombstone table, so the applier
//!    sees that table. The chunk and the applier's transaction exclude each
//!    other through the lock (READ COMMITTED: each statement sees what
//!    committed before it began, and the lock is taken before any of them).
//!    If the chunk commits first, the applier's `DELETE` removes the row. If
//!    the applier commits first, the chunk sees the tombstone and leaves `k`
//!    out. Tombstones are never cleared while the table is copied: a
//!    tombstoned key written again later falls under case 1.
//!
//! `tandem verify` waits (bounded) until the stream's checkpoint has reached
//! the old side's binlog end as it was when verify started: from then on
//! every change the backfill raced with is applied.
//!
//! The statement mirror (`source = "statements"`) takes no lock and records
//! no tombstones: with it the backfill behaves as before (the race rule in
//! [`crate::migrate`]). A MySQL/MariaDB target has no tombstones either (no
//! conditional SQL outside stored programs); README lists it as a gap.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::db::Db;
use super::sqltext::{ident, pg_string};
use super::MigrateError;

/// Prefix of the tombstone tables (internal: never migrated or verified).
pub const TOMB_PREFIX: &str = "tandem_tomb_";

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The tombstone table of target table `table` (unquoted).
pub fn tomb_table(table: &str) -> String {
    format!("{TOMB_PREFIX}{:016x}", fnv(table))
}

fn lock_key(table: &str) -> i64 {
    fnv(&format!("tandem_backfill:{table}")) as i64
}

/// The applier's lock on `table` for the rest of its transaction.
pub fn applier_lock_sql(table: &str) -> String {
    format!("SELECT pg_advisory_xact_lock_shared({})", lock_key(table))
}

/// A backfill chunk's lock on `table` for the rest of its transaction.
pub fn chunk_lock_sql(table: &str) -> String {
    format!("SELECT pg_advisory_xact_lock({})", lock_key(table))
}

/// Records deleted keys (`tuples`, rendered like the `DELETE`'s) as
/// tombstones when `table` is being backfilled. `key_cols` are quoted.
pub fn tombstone_sql(table: &str, key_cols: &[String], tuples: &[String]) -> String {
    let tomb = ident_pg(&tomb_table(table));
    let insert = format!(
        "INSERT INTO {tomb} ({}) VALUES {} ON CONFLICT DO NOTHING;",
        key_cols.join(", "),
        tuples.join(", ")
    );
    // A dollar quote the values cannot close.
    let mut tag = String::from("$tandem$");
    let mut n = 0u32;
    while insert.contains(&tag) {
        n += 1;
        tag = format!("$tandem{n}$");
    }
    format!(
        "DO {tag} BEGIN IF to_regclass({}) IS NOT NULL THEN {insert} END IF; END {tag}",
        pg_string(&tomb)
    )
}

fn ident_pg(name: &str) -> String {
    ident(super::sqltext::Dialect::Postgres, name)
}

/// Creates `table`'s tombstone table (key columns `key_cols`, quoted).
pub fn create_tomb_sql(table: &str, key_cols: &[String]) -> String {
    let tomb = ident_pg(&tomb_table(table));
    let cols = key_cols.join(", ");
    format!(
        "CREATE TABLE IF NOT EXISTS {tomb} AS SELECT {cols} FROM {} WITH NO DATA; \
         CREATE UNIQUE INDEX IF NOT EXISTS {} ON {tomb} ({cols})",
        ident_pg(table),
        ident_pg(&format!("{}_key", tomb_table(table)))
    )
}

pub fn drop_tomb_sql(table: &str) -> String {
    format!("DROP TABLE IF EXISTS {}", ident_pg(&tomb_table(table)))
}

/// Whether `table` has tombstones (call holding the chunk lock).
pub fn any_tomb_sql(table: &str) -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT 1) t",
        ident_pg(&tomb_table(table))
    )
}

/// Removes tombstoned keys from the staging table before its merge.
pub fn filter_stage_sql(table: &str, stage: &str, key_cols: &[String]) -> String {
    let tomb = ident_pg(&tomb_table(table));
    let on: Vec<String> = key_cols.iter().map(|c| format!("s.{c} = t.{c}")).collect();
    format!(
        "DELETE FROM {stage} s USING {tomb} t WHERE {}",
        on.join(" AND ")
    )
}

/// A binlog position as `file:offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinates {
    pub file: String,
    pub offset: u64,
}

impl std::fmt::Display for Coordinates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

impl Coordinates {
    /// Orders by the file's sequence number, then the offset.
    fn at_or_after(&self, other: &Coordinates) -> bool {
        let seq = |f: &str| {
            f.rsplit('.')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (seq(&self.file), self.offset) >= (seq(&other.file), other.offset)
    }
}

/// Opens a consistent snapshot on the old side and returns its binlog
/// coordinates (MariaDB reports them; MySQL does not: `None`). The caller
/// reads, then sends `COMMIT`.
pub async fn begin_snapshot(db: &mut Db) -> Result<Option<Coordinates>, MigrateError> {
    let Db::My(c) = db else {
        return Ok(None);
    };
    c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        .await?;
    let vars: Vec<(String, String)> = c.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await?;
    let get = |n: &str| {
        vars.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    Ok(
        match (get("binlog_snapshot_file"), get("binlog_snapshot_position")) {
            (Some(file), Some(pos)) if !file.is_empty() => {
                pos.parse().ok().map(|offset| Coordinates { file, offset })
            }
            _ => None,
        },
    )
}

/// The old side's binlog end now (`None` without a binlog).
async fn binlog_end(old: &mut Db) -> Result<Option<Coordinates>, MigrateError> {
    let Db::My(c) = old else {
        return Ok(None);
    };
    let row: Option<mysql_async::Row> = match c.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(_) => return Ok(None), // no privilege or no binlog: nothing to wait for
    };
    Ok(row.and_then(|r| {
        let file: Option<String> = r.get(0);
        let offset: Option<u64> = r.get(1);
        Some(Coordinates {
            file: file?,
            offset: offset?,
        })
    }))
}

/// The stream checkpoints stored on the new side (none: no stream).
async fn stream_checkpoints(new: &mut Db) -> Result<Vec<Coordinates>, MigrateError> {
    use super::STREAM_CHECKPOINT_TABLE as TABLE;
    let Db::Pg(p) = new else {
        let Db::My(c) = new else { return Ok(vec![]) };
        let exists: Option<u64> = c
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{TABLE}'"
            ))
            .await?;
        if exists.unwrap_or(0) == 0 {
            return Ok(vec![]);
        }
        let rows: Vec<(String, u64)> = c
            .query(format!("SELECT file, `offset` FROM {TABLE}"))
            .await?;
        return Ok(rows
            .into_iter()
            .map(|(file, offset)| Coordinates { file, offset })
            .collect());
    };
    let exists = p
        .client
        .query_one(&format!("SELECT to_regclass('{TABLE}') IS NOT NULL"), &[])
        .await?
        .get::<_, bool>(0);
    if !exists {
        return Ok(vec![]);
    }
    let rows = p
        .client
        .query(&format!("SELECT file, \"offset\" FROM {TABLE}"), &[])
        .await?;
    Ok(rows
        .iter()
        .map(|r| Coordinates {
            file: r.get(0),
            offset: r.get::<_, i64>(1).max(0) as u64,
        })
        .collect())
}

/// What waiting for the stream found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamWait {
    /// No change stream checkpoint on the new side: nothing to wait for.
    NoStream,
    /// The stream reached the old side's binlog end `at`.
    Reached { at: Coordinates, waited_ms: u64 },
    /// It did not within the bound.
    Behind {
        want: Coordinates,
        stream: Coordinates,
    },
}

/// Waits until a change stream applying into the new side has passed the
/// old side's binlog end as it is now (at most `bound`).
pub async fn wait_for_stream(
    old: &mut Db,
    new: &mut Db,
    bound: Duration,
) -> Result<StreamWait, MigrateError> {
    if stream_checkpoints(new).await?.is_empty() {
        return Ok(StreamWait::NoStream);
    }
    let Some(want) = binlog_end(old).await? else {
        return Ok(StreamWait::NoStream);
    };
    let started = Instant::now();
    loop {
        let points = stream_checkpoints(new).await?;
        if points.iter().any(|p| p.at_or_after(&want)) {
            return Ok(StreamWait::Reached {
                at: want,
                waited_ms: started.elapsed().as_millis() as u64,
            });
        }
        if started.elapsed() >= bound {
            let stream = points
                .into_iter()
                .reduce(|a, b| if a.at_or_after(&b) { a } else { b })
                .unwrap_or(Coordinates {
                    file: String::new(),
                    offset: 0,
                });
            return Ok(StreamWait::Behind { want, stream });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        assert!(tomb_table("orders").starts_with(TOMB_PREFIX));
        assert_eq!(tomb_table("orders"), tomb_table("orders"));
        assert_ne!(tomb_table("orders"), tomb_table("order"));
        assert!(tomb_table("a very long table name that goes on and on and on").len() < 63);
        let c = |f: &str, o| Coordinates {
            file: f.into(),
            offset: o,
        };
        assert!(c("bin.000010", 4).at_or_after(&c("bin.000009", 900)));
        assert!(c("bin.000009", 900).at_or_after(&c("bin.000009", 900)));
        assert!(!c("bin.000009", 899).at_or_after(&c("bin.000009", 900)));
    }

    #[test]
    fn tombstone_statement_cannot_be_closed_by_values() {
        let sql = tombstone_sql("t", &["\"id\"".into()], &["('$tandem$')".into()]);
        assert!(sql.starts_with("DO $tandem1$ "), "{sql}");
        assert!(sql.ends_with(" $tandem1$"), "{sql}");
        assert!(sql.contains("to_regclass('\"tandem_tomb_"), "{sql}");
    }
}
