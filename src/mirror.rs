//! Ordered, bounded, per-session mirroring of writes to the secondary.
//!
//! Each client session that writes gets a queue and a worker task. The session
//! enqueues, in the primary's order, every write that succeeded there (already
//! pinned: literal timestamps, UUIDs, explicit auto-increment ids) and the
//! transaction boundaries the primary went through. The worker applies them on
//! its own secondary connection, translating for PostgreSQL. Failures there
//! never reach the client: they are drift events.
//!
//! The secondary never slows the primary: enqueueing is `try_send` on a bounded
//! channel; when it is full the configured overflow policy applies (`drop`:
//! drift event; `block`: the session waits). Workers hold a secondary
//! connection only while they have work or an open transaction, so idle
//! sessions cost no connection; connections are capped by the secondary's
//! `pool_size`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::backend::mysql::{self, BackendConn};
use crate::config::{BackendConfig, BackendKind, BackendTarget, MirrorConfig, OverflowPolicy};
use crate::drift::{now_rfc3339, DriftEvent, DriftKind, DriftLog};
use crate::sql::schema::Schema;
use crate::sql::translate;

/// One unit of work for the secondary.
#[derive(Debug)]
pub enum Op {
    /// A write that succeeded on the primary, as MySQL text with every
    /// non-deterministic value pinned.
    Write(String),
    Begin,
    Commit,
    Rollback,
    /// Answered once everything queued before it was applied (sync mode).
    Barrier(oneshot::Sender<()>),
}

struct Item {
    op: Op,
    enqueued: Instant,
}

/// Process-wide mirroring state.
pub struct Mirror {
    kind: BackendKind,
    target: BackendTarget,
    connect_timeout: Duration,
    slots: Arc<Semaphore>,
    config: MirrorConfig,
    pub schema: ArcSwap<Schema>,
    pub drift: DriftLog,
    pub stats: MirrorStats,
    max_packet: usize,
}

#[derive(Default)]
pub struct MirrorStats {
    /// Operations applied on the secondary.
    pub applied: AtomicU64,
    /// Operations queued or being applied, over all sessions.
    pub queued: AtomicI64,
    /// Microseconds from enqueue to apply of the last applied write.
    pub last_lag_us: AtomicU64,
    pub max_lag_us: AtomicU64,
}

impl Mirror {
    pub fn new(
        secondary: &BackendConfig,
        config: MirrorConfig,
        max_packet: usize,
    ) -> Result<Self, String> {
        Ok(Self {
            kind: secondary.kind,
            target: secondary.target()?,
            connect_timeout: secondary.connect_timeout(),
            slots: Arc::new(Semaphore::new(secondary.pool_size as usize)),
            drift: DriftLog::start(config.drift_log.clone()),
            config,
            schema: ArcSwap::from_pointee(Schema::default()),
            stats: MirrorStats::default(),
            max_packet,
        })
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    pub fn is_sync(&self) -> bool {
        self.config.mode == crate::config::MirrorMode::Sync
    }

    /// Starts a session's queue and worker.
    pub fn session(self: &Arc<Self>, session: u64) -> SessionMirror {
        let (tx, rx) = mpsc::channel(self.config.queue_capacity as usize);
        let worker = Worker {
            mirror: Arc::clone(self),
            session,
            conn: None,
            txn_open: false,
            txn_failed: false,
            backoff: Duration::from_millis(50),
            down_until: None,
        };
        tokio::spawn(worker.run(rx));
        SessionMirror {
            tx,
            mirror: Arc::clone(self),
            session,
        }
    }

    pub fn record(
        &self,
        session: u64,
        kind: DriftKind,
        statement: &str,
        translated: Option<String>,
        error: String,
    ) {
        self.drift.record(DriftEvent {
            time: now_rfc3339(),
            session,
            phase: "dual_write",
            kind,
            statement: statement.to_string(),
            translated,
            error,
        });
    }
}

/// A session's end of its mirror queue. Dropping it lets the worker finish
/// what is queued and stop.
pub struct SessionMirror {
    tx: mpsc::Sender<Item>,
    mirror: Arc<Mirror>,
    session: u64,
}

impl SessionMirror {
    /// Does this queue feed `mirror`?
    pub fn is_of(&self, mirror: &Arc<Mirror>) -> bool {
        Arc::ptr_eq(&self.mirror, mirror)
    }

    /// Queues `op` under the overflow policy.
    pub async fn send(&self, op: Op) {
        let item = Item {
            op,
            enqueued: Instant::now(),
        };
        self.mirror.stats.queued.fetch_add(1, Ordering::Relaxed);
        let result = match self.mirror.config.overflow {
            OverflowPolicy::Block => self.tx.send(item).await.map_err(|e| e.0),
            OverflowPolicy::Drop => self.tx.try_send(item).map_err(|e| match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            }),
        };
        if let Err(item) = result {
            self.mirror.stats.queued.fetch_sub(1, Ordering::Relaxed);
            let statement = match &item.op {
                Op::Write(s) => s.as_str(),
                Op::Begin => "BEGIN",
                Op::Commit => "COMMIT",
                Op::Rollback => "ROLLBACK",
                Op::Barrier(_) => return,
            };
            self.mirror.record(
                self.session,
                DriftKind::QueueFull,
                statement,
                None,
                "mirror queue full; write not mirrored".into(),
            );
        }
    }

    /// Waits until everything queued so far was applied (or failed) on the
    /// secondary, at most `timeout`.
    pub async fn barrier(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Item {
                op: Op::Barrier(tx),
                enqueued: Instant::now(),
            })
            .await
            .is_err()
        {
            return false;
        }
        self.mirror.stats.queued.fetch_add(1, Ordering::Relaxed);
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
    }
}

enum SecondaryConn {
    Postgres(tokio_postgres::Client),
    Mysql(Box<BackendConn>),
}

struct Worker {
    mirror: Arc<Mirror>,
    session: u64,
    conn: Option<(SecondaryConn, OwnedSemaphorePermit)>,
    txn_open: bool,
    txn_failed: bool,
    backoff: Duration,
    /// While set, the secondary is considered down: writes are drift at once.
    down_until: Option<Instant>,
}

/// Workers give their connection back after this long without work.
const IDLE_RELEASE: Duration = Duration::from_millis(200);

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>) {
        loop {
            let next = if self.conn.is_some() && !self.txn_open {
                match tokio::time::timeout(IDLE_RELEASE, rx.recv()).await {
                    Ok(item) => item,
                    Err(_) => {
                        self.conn = None;
                        continue;
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(item) = next else { break };
            self.apply(item).await;
            // Counted down only once applied: 0 means the secondary caught up.
            self.mirror.stats.queued.fetch_sub(1, Ordering::Relaxed);
        }
        if self.txn_open {
            // The session ended inside a transaction: the primary rolled it back.
            let _ = self.exec_raw("ROLLBACK").await;
        }
    }

    async fn apply(&mut self, item: Item) {
        let Item { op, enqueued } = item;
        match op {
            Op::Barrier(done) => {
                let _ = done.send(());
                return;
            }
            Op::Begin => {
                self.txn_failed = false;
                self.txn_open = true;
                let sql = match self.mirror.kind {
                    BackendKind::Postgres => "BEGIN",
                    BackendKind::Mysql => "START TRANSACTION",
                };
                if let Err(e) = self.exec_raw(sql).await {
                    self.txn_failed = true;
                    self.mirror
                        .record(self.session, DriftKind::Error, "BEGIN", None, e);
                }
            }
            Op::Commit | Op::Rollback => {
                let commit = matches!(op, Op::Commit);
                let failed = self.txn_failed;
                self.txn_open = false;
                self.txn_failed = false;
                let sql = if commit && !failed {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                };
                match self.exec_raw(sql).await {
                    Ok(()) if commit && failed => self.mirror.record(
                        self.session,
                        DriftKind::Error,
                        "COMMIT",
                        Some("ROLLBACK".into()),
                        "transaction rolled back on the secondary because a statement in it failed"
                            .into(),
                    ),
                    Ok(()) => {}
                    Err(e) => self
                        .mirror
                        .record(self.session, DriftKind::Error, sql, None, e),
                }
            }
            Op::Write(sql) => {
                if self.txn_open && self.txn_failed {
                    self.mirror.record(
                        self.session,
                        DriftKind::Skipped,
                        &sql,
                        None,
                        "an earlier statement of this transaction failed on the secondary".into(),
                    );
                    return;
                }
                let statements = match self.mirror.kind {
                    BackendKind::Mysql => vec![sql.clone()],
                    BackendKind::Postgres => {
                        let schema = self.mirror.schema.load();
                        match translate::to_postgres(&sql, &schema) {
                            Ok(t) => t.statements,
                            Err(e) => {
                                self.txn_failed |= self.txn_open;
                                self.mirror.record(
                                    self.session,
                                    DriftKind::Untranslatable,
                                    &sql,
                                    None,
                                    e.to_string(),
                                );
                                return;
                            }
                        }
                    }
                };
                let joined = statements.join(";\n");
                if let Err(e) = self.exec_raw(&joined).await {
                    self.txn_failed |= self.txn_open;
                    let kind = if e.starts_with(DOWN) {
                        DriftKind::SecondaryDown
                    } else {
                        DriftKind::Error
                    };
                    self.mirror
                        .record(self.session, kind, &sql, Some(joined), e);
                    return;
                }
                let lag = enqueued.elapsed().as_micros() as u64;
                self.mirror.stats.last_lag_us.store(lag, Ordering::Relaxed);
                self.mirror
                    .stats
                    .max_lag_us
                    .fetch_max(lag, Ordering::Relaxed);
            }
        }
        self.mirror.stats.applied.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `sql` on the secondary, connecting first if needed.
    async fn exec_raw(&mut self, sql: &str) -> Result<(), String> {
        self.ensure_connected().await?;
        let Some((conn, _)) = self.conn.as_mut() else {
            return Err(format!("{DOWN}: no connection"));
        };
        let result = match conn {
            SecondaryConn::Postgres(client) => client.batch_execute(sql).await.map_err(|e| {
                let lost = e.is_closed();
                let msg = match e.as_db_error() {
                    Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                    None => e.to_string(),
                };
                (lost, msg)
            }),
            SecondaryConn::Mysql(c) => c.execute(sql).await.map(|_| ()).map_err(|e| {
                let lost = matches!(e, crate::backend::BackendError::Wire(_));
                (lost, e.to_string())
            }),
        };
        match result {
            Ok(()) => Ok(()),
            Err((lost, msg)) => {
                if lost {
                    // The connection is gone: its transaction with it.
                    self.conn = None;
                    self.txn_failed |= self.txn_open;
                    self.mark_down();
                    return Err(format!("{DOWN}: {msg}"));
                }
                Err(msg)
            }
        }
    }

    async fn ensure_connected(&mut self) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        if let Some(until) = self.down_until {
            if Instant::now() < until {
                return Err(format!("{DOWN}: reconnecting (backoff)"));
            }
        }
        let permit = Arc::clone(&self.mirror.slots)
            .acquire_owned()
            .await
            .map_err(|_| format!("{DOWN}: pool closed"))?;
        let connected = tokio::time::timeout(self.mirror.connect_timeout, self.connect()).await;
        match connected {
            Ok(Ok(conn)) => {
                self.conn = Some((conn, permit));
                self.down_until = None;
                self.backoff = Duration::from_millis(50);
                Ok(())
            }
            Ok(Err(e)) => {
                self.mark_down();
                Err(format!("{DOWN}: {e}"))
            }
            Err(_) => {
                self.mark_down();
                Err(format!("{DOWN}: connect timed out"))
            }
        }
    }

    fn mark_down(&mut self) {
        self.down_until = Some(Instant::now() + self.backoff);
        let max = Duration::from_millis(self.mirror.config.max_backoff_ms);
        self.backoff = (self.backoff * 2).min(max);
    }

    async fn connect(&self) -> Result<SecondaryConn, String> {
        let t = &self.mirror.target;
        match self.mirror.kind {
            BackendKind::Postgres => {
                let mut cfg = tokio_postgres::Config::new();
                cfg.host(&t.host)
                    .port(t.port)
                    .user(&t.user)
                    .password(&t.password);
                if let Some(db) = &t.database {
                    cfg.dbname(db);
                }
                // Pinned timestamps are written as the primary's session saw them.
                cfg.options("-c TimeZone=UTC");
                let (client, conn) = cfg
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(SecondaryConn::Postgres(client))
            }
            BackendKind::Mysql => {
                let greeted = mysql::connect(t, self.mirror.max_packet)
                    .await
                    .map_err(|e| e.to_string())?;
                let (conn, _) = greeted
                    .authenticate(t, mysql::default_opts(t.database.as_deref()))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(SecondaryConn::Mysql(Box::new(conn)))
            }
        }
    }
}

/// Prefix of errors that mean the secondary is unreachable.
const DOWN: &str = "secondary unreachable";
