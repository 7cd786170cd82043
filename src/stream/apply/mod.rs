//! The applier: source transactions written to the target in commit order,
//! atomically, with the checkpoint in the same target transaction.
//!
//! Consecutive source transactions are grouped into one target transaction
//! (the caller decides when a group ends: when nothing else is waiting, or it
//! is large); inside it rows are collapsed per key and written with one
//! statement per table and kind ([`batch`]). A small group is one round trip:
//! `BEGIN; DELETE …; INSERT … ON CONFLICT …; <checkpoint>; COMMIT`. A large
//! transaction is sent in parts inside its still-open target transaction, so
//! memory stays bounded by `max_batch_bytes`.
//!
//! When the target refuses a group, the caller cannot tell which source
//! transaction was at fault: it rolls back, restarts the source from the
//! checkpoint and applies transactions one per group until it has passed the
//! failure (see `run`). A single transaction that is refused stops the
//! stream (`on_error = "stop"`) or is written to the drift log with its GTID
//! and rows and skipped (`"skip"`): its checkpoint advances, its rows do not.

pub mod batch;
pub mod checkpoint;
mod ddl;
pub mod markers;
pub mod parallel;
pub mod stats;
pub mod tables;
mod workers;
pub mod writeset;

use std::sync::Arc;

use mysql_async::prelude::Queryable;

use crate::config::BackendConfig;
use crate::dualwrite::drift::{DriftEvent, DriftKind, DriftLog};
use crate::migrate::db::{self, Db};
use crate::migrate::sqltext::Dialect;
use crate::migrate::{catalog, MigrateError};
use crate::sql::schema::Schema;
use crate::sql::translate;

use super::{Change, Position};
pub use crate::config::{NoKey, OnError};
pub use checkpoint::Checkpoint;
pub use ddl::routine_ddl;
pub use stats::StreamStats;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The target could not be reached or the connection broke: retry.
    #[error("new backend unavailable: {0}")]
    Unavailable(MigrateError),
    /// The target refused what it was asked to apply.
    #[error("the new backend refused transaction {}: {message}", gtid.as_deref().unwrap_or("(no GTID)"))]
    Refused {
        gtid: Option<String>,
        message: String,
    },
    /// Source and target schemas do not line up.
    #[error("{0}")]
    Schema(String),
}

impl ApplyError {
    /// Whether retrying after a reconnect may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ApplyError::Unavailable(_))
    }

    fn from_target(e: MigrateError, gtid: Option<String>) -> ApplyError {
        let refused = match &e {
            // A server shutting down (`pg_ctl stop`: 57P01 admin_shutdown,
            // sent as an error before the socket closes) or a connection
            // failure is an outage, not a refusal: retry.
            MigrateError::Postgres(pg) => match pg.as_db_error() {
                Some(db) => !pg.is_closed() && !is_pg_outage(db.code().code()),
                None => false,
            },
            // 1053 server shutdown in progress, 1927 connection killed.
            MigrateError::Mysql(mysql_async::Error::Server(s)) => !matches!(s.code, 1053 | 1927),
            _ => false,
        };
        if refused {
            ApplyError::Refused {
                gtid,
                message: e.to_string(),
            }
        } else {
            ApplyError::Unavailable(e)
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Names this stream's checkpoint row.
    pub stream_id: String,
    /// Source database whose tables are applied; others are ignored.
    pub database: Option<String>,
    pub no_key: NoKey,
    pub on_error: OnError,
    /// Row changes held before they are sent inside the open transaction.
    pub max_batch_changes: usize,
    pub max_batch_bytes: usize,
    /// Target connections applying independent source transactions side by
    /// side (`[mirror] apply_workers`); 1 = one connection, in commit order.
    pub workers: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            stream_id: "default".into(),
            database: None,
            no_key: NoKey::default(),
            on_error: OnError::default(),
            max_batch_changes: 20_000,
            max_batch_bytes: 8 << 20,
            workers: 1,
        }
    }
}

/// Changes kept per transaction for the drift log when it is skipped.
const DRIFT_SAMPLE: usize = 20;

struct OpenTxn {
    gtid: Option<String>,
    timestamp: u32,
    sample: Vec<String>,
    changes: u64,
}

pub struct Applier {
    db: Db,
    dialect: Dialect,
    opts: ApplyOptions,
    tables: tables::Tables,
    batch: batch::Batch,
    /// `BEGIN` was sent: a target transaction is open.
    open: bool,
    txn: Option<OpenTxn>,
    /// The last source transaction committed into the group.
    last_txn: Option<OpenTxn>,
    /// Source transactions in the open group, and where the group ends.
    group_txns: u64,
    group_rows: u64,
    end: Option<Checkpoint>,
    last_gtid: Option<String>,
    schema: Arc<Schema>,
    stats: Arc<StreamStats>,
    drift: Option<DriftLog>,
    /// Parallel apply: the end positions of the group's source
    /// transactions, committed as markers instead of the stream checkpoint
    /// (see `parallel`). `None`: the serial checkpoint.
    markers: Option<Vec<Position>>,
}

impl Applier {
    /// Connects to the target and creates the checkpoint table if needed.
    pub async fn connect(
        target: &BackendConfig,
        opts: ApplyOptions,
        stats: Arc<StreamStats>,
        drift: Option<DriftLog>,
    ) -> Result<Applier, ApplyError> {
        let mut db = db::connect(target, "backends.new")
            .await
            .map_err(ApplyError::Unavailable)?;
        // The binlog already holds what triggers and cascades wrote on the
        // primary: they must not fire again on the target.
        crate::migrate::write::prepare_writer_session(&mut db).await;
        let dialect = db.dialect();
        for sql in [
            checkpoint::create_sql(dialect),
            markers::create_sql(dialect),
        ] {
            db.execute(&sql)
                .await
                .map_err(|e| ApplyError::from_target(e, None))?;
        }
        Ok(Applier {
            db,
            dialect,
            opts,
            tables: tables::Tables::default(),
            batch: batch::Batch::default(),
            open: false,
            txn: None,
            last_txn: None,
            group_txns: 0,
            group_rows: 0,
            end: None,
            last_gtid: None,
            schema: Arc::new(Schema::default()),
            stats,
            drift,
            markers: None,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The old backend's schema, for translating DDL.
    pub fn set_schema(&mut self, schema: Arc<Schema>) {
        self.schema = schema;
    }

    /// The stored checkpoint of this stream, if any.
    pub async fn checkpoint(&mut self) -> Result<Option<Checkpoint>, ApplyError> {
        let sql = checkpoint::select_sql(self.dialect, &self.opts.stream_id);
        let row: Option<(String, u64, Option<String>, i64)> = match &mut self.db {
            Db::Pg(pg) => pg
                .client
                .query_opt(&sql, &[])
                .await
                .map_err(|e| ApplyError::from_target(e.into(), None))?
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1).max(0) as u64,
                        r.get(2),
                        r.get(3),
                    )
                }),
            Db::My(c) => c
                .query_first(sql)
                .await
                .map_err(|e| ApplyError::from_target(e.into(), None))?,
        };
        Ok(row.map(|(file, offset, gtid, ts)| Checkpoint {
            position: Position { file, offset, gtid },
            source_ts: u32::try_from(ts).unwrap_or(0),
        }))
    }

    /// Source transactions in the open group.
    pub fn group_txns(&self) -> u64 {
        self.group_txns
    }

    /// Whether a group is open (rows, commits or progress not yet committed).
    pub fn has_pending(&self) -> bool {
        self.end.is_some() || self.open || !self.batch.is_empty()
    }

    /// The group is large enough to commit now.
    pub fn group_full(&self) -> bool {
        self.group_rows as usize >= self.opts.max_batch_changes
            || self.batch.bytes >= self.opts.max_batch_bytes
    }

    /// A source transaction starts.
    pub fn begin(&mut self, gtid: Option<String>, timestamp: u32) {
        self.txn = Some(OpenTxn {
            gtid,
            timestamp,
            sample: Vec::new(),
            changes: 0,
        });
    }

    fn in_scope(&self, c: &Change) -> bool {
        // Tandem's own tables (the other direction's checkpoint and lease
        // heartbeats land in the source's log too) are never applied.
        self.opts
            .database
            .as_deref()
            .is_none_or(|d| d == c.table.database)
            && !crate::migrate::is_internal_table(&c.table.name)
    }

    /// Row changes of the open source transaction.
    pub async fn rows(&mut self, changes: &[Change]) -> Result<(), ApplyError> {
        for c in changes {
            if !self.in_scope(c) {
                continue;
            }
            let mapped = match self.tables.cached(&c.table) {
                Some(m) => m,
                None => {
                    if !self.tables.has_catalog() || self.tables.changed(&c.table) {
                        self.load_catalog().await?;
                    }
                    self.tables.map(&c.table, self.opts.no_key)?
                }
            };
            self.batch.add(self.dialect, &mapped, &c.change)?;
            self.group_rows += 1;
            if let Some(t) = self.txn.as_mut() {
                t.changes += 1;
                if t.sample.len() < DRIFT_SAMPLE {
                    t.sample.push(format!("{}: {:?}", c.table.name, c.change));
                }
            }
            if self.batch.changes >= self.opts.max_batch_changes
                || self.batch.bytes >= self.opts.max_batch_bytes
            {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn load_catalog(&mut self) -> Result<(), ApplyError> {
        let defs = catalog::load(&mut self.db)
            .await
            .map_err(|e| ApplyError::from_target(e, None))?;
        self.tables.set_catalog(defs);
        Ok(())
    }

    fn current_gtid(&self) -> Option<String> {
        self.txn.as_ref().and_then(|t| t.gtid.clone())
    }

    /// Sends the pending rows inside the open target transaction.
    async fn flush(&mut self) -> Result<(), ApplyError> {
        let statements = self.batch.take_statements(self.dialect);
        if statements.is_empty() {
            return Ok(());
        }
        let mut sql = String::new();
        if !self.open {
            sql.push_str(begin_sql(self.dialect));
            sql.push_str(";\n");
        }
        sql.push_str(&statements.join(";\n"));
        self.open = true;
        let gtid = self.current_gtid();
        self.send(sql, gtid).await
    }

    async fn send(&mut self, sql: String, gtid: Option<String>) -> Result<(), ApplyError> {
        match self.db.execute(&sql).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = ApplyError::from_target(e, gtid);
                self.rollback().await;
                Err(err)
            }
        }
    }

    /// The open source transaction committed at `position`.
    pub fn commit_txn(&mut self, position: Position) {
        let ts = self.txn.as_ref().map_or(0, |t| t.timestamp);
        if let Some(t) = self.txn.take() {
            self.last_gtid = t.gtid.clone();
            self.last_txn = Some(t);
        }
        self.group_txns += 1;
        self.mark(&position);
        self.end = Some(Checkpoint {
            position,
            source_ts: ts,
        });
    }

    /// The source read up to `position` with nothing to apply.
    pub fn progress(&mut self, position: Position, timestamp: u32) {
        let source_ts = if timestamp == 0 {
            self.end.as_ref().map_or(0, |e| e.source_ts)
        } else {
            timestamp
        };
        self.end = Some(Checkpoint {
            position,
            source_ts,
        });
    }

    /// Commits the group: its rows and its checkpoint, in one transaction.
    pub async fn commit(&mut self) -> Result<(), ApplyError> {
        let Some(end) = self.end.clone() else {
            return Ok(());
        };
        let mut statements = self.batch.take_statements(self.dialect);
        match self.markers.as_mut() {
            Some(m) => statements.extend(markers::mark_sql(
                self.dialect,
                &self.opts.stream_id,
                &std::mem::take(m),
            )),
            None => statements.push(checkpoint::store_sql(
                self.dialect,
                &self.opts.stream_id,
                &end,
            )),
        }
        statements.push("COMMIT".into());
        let mut sql = String::new();
        if !self.open {
            sql.push_str(begin_sql(self.dialect));
            sql.push_str(";\n");
        }
        sql.push_str(&statements.join(";\n"));
        self.open = true;
        let gtid = self.last_gtid.clone();
        self.send(sql, gtid).await?;
        self.open = false;
        if self.markers.is_some() {
            self.stats.count(self.group_txns, self.group_rows);
        } else {
            self.stats.committed(&end, self.group_txns, self.group_rows);
        }
        self.group_txns = 0;
        self.group_rows = 0;
        self.end = None;
        Ok(())
    }

    /// Abandons the open group (the target rolls it back).
    pub async fn rollback(&mut self) {
        if self.open {
            let _ = self.db.execute("ROLLBACK").await;
        }
        self.open = false;
        self.batch.take_statements(self.dialect);
        self.group_txns = 0;
        self.group_rows = 0;
        self.end = None;
        if let Some(m) = self.markers.as_mut() {
            m.clear();
        }
    }

    /// Skips the open source transaction after the target refused it alone:
    /// the drift log gets its GTID, rows and the error, and the checkpoint
    /// moves past it.
    pub async fn skip_txn(
        &mut self,
        position: Position,
        error: &ApplyError,
    ) -> Result<(), ApplyError> {
        self.rollback().await;
        let txn = self.txn.take().or_else(|| self.last_txn.take());
        let (gtid, rows, changes) =
            txn.map_or((None, Vec::new(), 0), |t| (t.gtid, t.sample, t.changes));
        tracing::error!(gtid = gtid.as_deref().unwrap_or(""), changes, error = %error, "skipped a source transaction the new backend refused ([mirror] on_error = \"skip\")");
        if let Some(d) = &self.drift {
            d.record(DriftEvent {
                time: crate::dualwrite::drift::now_rfc3339(),
                session: 0,
                phase: "stream",
                kind: DriftKind::Error,
                statement: format!(
                    "binlog transaction {} at {}:{} ({changes} row changes): {}",
                    gtid.as_deref().unwrap_or("(no GTID)"),
                    position.file,
                    position.offset,
                    rows.join("; ")
                ),
                translated: None,
                error: error.to_string(),
            });
        }
        self.stats
            .skipped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.mark(&position);
        self.progress(position, 0);
        self.commit().await
    }
}

/// SQLSTATEs of a PostgreSQL going away rather than refusing a statement:
/// class 08 (connection exception) and 57P01-57P05 (admin/crash shutdown,
/// cannot connect now, idle session timeout, database dropped).
fn is_pg_outage(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P")
}

fn begin_sql(d: Dialect) -> &'static str {
    match d {
        Dialect::Mysql => "START TRANSACTION",
        Dialect::Postgres => "BEGIN",
    }
}

#[cfg(test)]
mod tests {
    use super::routine_ddl;

    #[test]
    fn shutdowns_are_outages() {
        assert!(super::is_pg_outage("57P01"));
        assert!(super::is_pg_outage("08006"));
        assert!(!super::is_pg_outage("23505"));
        assert!(!super::is_pg_outage("57014"));
    }

    #[test]
    fn triggers_and_routines_are_recognized() {
        assert_eq!(
            routine_ddl("CREATE DEFINER=`app`@`%` TRIGGER t_ai AFTER INSERT ON t FOR EACH ROW INSERT INTO audit VALUES (NEW.id)"),
            Some("TRIGGER")
        );
        assert_eq!(routine_ddl("drop procedure if exists p"), Some("PROCEDURE"));
        assert_eq!(
            routine_ddl("CREATE OR REPLACE FUNCTION f() RETURNS int RETURN 1"),
            Some("FUNCTION")
        );
        assert_eq!(routine_ddl("CREATE TABLE trigger_log (id int)"), None);
        assert_eq!(
            routine_ddl("ALTER TABLE t ADD COLUMN procedure_name text"),
            None
        );
        assert_eq!(routine_ddl("INSERT INTO t VALUES (1)"), None);
    }
}
