//! Mirroring of writes to the secondary, in the primary's commit order.
//!
//! Sessions hand over *units*: an autocommit write, or a whole transaction
//! once the primary acknowledged its COMMIT (a transaction's writes are held
//! in the session until then; a rolled-back transaction never reaches the
//! secondary). Units enter one global queue in the order the primary
//! acknowledged them, and one applier runs them on the secondary in that
//! order, each transaction as a single batch (one round trip). So two
//! sessions that write the same rows are applied in the order the primary
//! serialized them — per-session queues applied in parallel could not promise
//! that, and under contention produced duplicate keys and deadlocks on the
//! secondary.
//!
//! The secondary never slows the primary: handing over a unit is `try_send`
//! on a bounded queue; when it is full the overflow policy applies (`drop`:
//! drift event; `block`: the session waits). Failures on the secondary never
//! reach the client: they are drift events.

mod conn;
mod drain;
mod fk;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use crate::backend::mysql::BackendConn;
use crate::background::Background;
use crate::config::{BackendConfig, BackendKind, BackendTarget, MirrorConfig, OverflowPolicy};
use crate::dualwrite::drift::{now_rfc3339, DriftEvent, DriftKind, DriftLog};
use crate::sql::schema::Schema;
use crate::sql::translate;

/// What a session reports about its writes, in the primary's order.
#[derive(Debug)]
pub enum Op {
    /// A write that succeeded on the primary, as MySQL text with every
    /// non-deterministic value pinned. Text, not the AST the session parsed
    /// (`sql::parse`): the applier must translate with the schema as of this
    /// point of the queue (earlier DDL applied), and the queue is bounded by
    /// the bytes it holds — an AST is two orders of magnitude bigger than its
    /// text (a `sqlparser::ast::Statement` alone is 3,464 bytes, each boxed
    /// `Expr` 328), so carrying it would defeat that bound. The applier
    /// therefore parses each write once more, off the client's path.
    Write(String),
    /// The primary opened a transaction.
    Begin,
    /// The primary committed the open transaction.
    Commit,
    /// The primary rolled the open transaction back.
    Rollback,
}

/// One unit of work for the applier.
struct Unit {
    session: u64,
    /// MySQL statements; several when `transaction`.
    statements: Vec<String>,
    transaction: bool,
    enqueued: Instant,
    /// Answered once the unit was applied (sync mode).
    done: Option<oneshot::Sender<()>>,
    /// The session's progress (read-your-writes, shadow reads).
    in_flight: Arc<SessionProgress>,
}

/// Process-wide mirroring state: the queue and its applier.
pub struct Mirror {
    kind: BackendKind,
    config: MirrorConfig,
    tx: mpsc::Sender<Unit>,
    /// Table definitions for translation and id pinning (shared with the
    /// applier, refreshed after DDL).
    pub schema: Arc<ArcSwap<Schema>>,
    pub drift: DriftLog,
    pub stats: Arc<MirrorStats>,
    phase: &'static str,
}

#[derive(Default)]
pub struct MirrorStats {
    /// Bytes of open transactions held by sessions until their COMMIT.
    pub held_bytes: AtomicI64,
    /// Units applied on the secondary (successfully or as drift).
    pub applied: AtomicU64,
    /// Units queued or being applied.
    pub queued: AtomicI64,
    /// Units accepted into the queue so far: once `applied` reaches a value
    /// read here, everything queued before that read is on the secondary.
    pub accepted: AtomicU64,
    /// Microseconds from enqueue to apply of the last unit.
    pub last_lag_us: AtomicU64,
    pub max_lag_us: AtomicU64,
    /// Rows LOAD DATA put on the primary that the mirror could not carry
    /// (each load is also a drift event).
    pub load_data_rows: AtomicU64,
}

/// A transaction bigger than this is not held for ordered mirroring: it is
/// recorded as drift (write it in smaller transactions, or backfill).
const MAX_TRANSACTION_BYTES: usize = 64 << 20;

/// All sessions' held (not yet committed) transaction text together: memory
/// stays bounded however many sessions have transactions open.
const MAX_HELD_BYTES: usize = 256 << 20;

impl Mirror {
    /// Starts the applier for `secondary`. `phase` names the phase in drift
    /// events.
    pub fn new(
        secondary: &BackendConfig,
        config: MirrorConfig,
        max_packet: usize,
        phase: &'static str,
        schema: Arc<ArcSwap<Schema>>,
        background: &Background,
    ) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel(config.queue_capacity as usize);
        let drift = DriftLog::start(config.drift_log.clone());
        let stats = Arc::new(MirrorStats::default());
        let applier = Applier {
            schema: Arc::clone(&schema),
            kind: secondary.kind,
            target: secondary.target()?,
            connect_timeout: secondary.connect_timeout(),
            max_packet,
            max_backoff: Duration::from_millis(config.max_backoff_ms),
            conn: None,
            backoff: Duration::from_millis(50),
            down_until: None,
            drift: drift.clone(),
            stats: Arc::clone(&stats),
            phase,
            fks: fk::MirrorFks::default(),
            fk_violation: None,
        };
        let mirror = Self {
            kind: secondary.kind,
            config,
            tx,
            schema,
            drift,
            stats,
            phase,
        };
        // Owned: shutdown drains the queue within its bound (see `drain`).
        background.spawn(applier.run(rx, background.signal()));
        Ok(mirror)
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// The phase this mirror serves (dual_write: to new; new_primary: to old).
    pub fn phase(&self) -> &'static str {
        self.phase
    }

    pub fn is_sync(&self) -> bool {
        self.config.mode == crate::config::MirrorMode::Sync
    }

    pub fn session(self: &Arc<Self>, session: u64) -> SessionMirror {
        SessionMirror {
            mirror: Arc::clone(self),
            session,
            open: None,
            open_bytes: 0,
            oversized: false,
            last_done: None,
            in_flight: Arc::new(SessionProgress::default()),
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
            phase: self.phase,
            kind,
            statement: statement.to_string(),
            translated,
            error,
        });
    }

    async fn enqueue(&self, mut unit: Unit, sync: bool) -> Option<oneshot::Receiver<()>> {
        let rx = if sync {
            let (tx, rx) = oneshot::channel();
            unit.done = Some(tx);
            Some(rx)
        } else {
            None
        };
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        let result = match self.config.overflow {
            OverflowPolicy::Block => self.tx.send(unit).await.map_err(|e| e.0),
            OverflowPolicy::Drop => self.tx.try_send(unit).map_err(|e| match e {
                mpsc::error::TrySendError::Full(u) | mpsc::error::TrySendError::Closed(u) => u,
            }),
        };
        match result {
            Ok(()) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                rx
            }
            Err(unit) => {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                unit.in_flight.done.fetch_add(1, Ordering::Relaxed);
                let (kind, why) = if self.tx.is_closed() {
                    (
                        DriftKind::Shutdown,
                        "the mirror stopped (shutdown); write not mirrored",
                    )
                } else {
                    (
                        DriftKind::QueueFull,
                        "mirror queue full; write not mirrored",
                    )
                };
                self.record(
                    unit.session,
                    kind,
                    &unit.statements.join(";\n"),
                    None,
                    why.into(),
                );
                None
            }
        }
    }
}

/// A session's side of mirroring: holds its open transaction's writes until
/// the primary commits. Dropping it (session end) discards an open
/// transaction, as the primary rolls it back.
pub struct SessionMirror {
    mirror: Arc<Mirror>,
    session: u64,
    /// Writes of the open transaction (None outside a transaction).
    open: Option<Vec<String>>,
    open_bytes: usize,
    oversized: bool,
    /// Completion of the last unit handed over (sync mode).
    last_done: Option<oneshot::Receiver<()>>,
    /// Units of this session handed over and applied.
    in_flight: Arc<SessionProgress>,
}

impl Drop for SessionMirror {
    fn drop(&mut self) {
        self.release_held();
    }
}

impl SessionMirror {
    /// Does this session feed `mirror`?
    pub fn is_of(&self, mirror: &Arc<Mirror>) -> bool {
        Arc::ptr_eq(&self.mirror, mirror)
    }

    pub async fn send(&mut self, op: Op) {
        let sync = self.mirror.is_sync();
        match op {
            Op::Begin => {
                self.release_held();
                self.open = Some(Vec::new());
                self.oversized = false;
            }
            Op::Write(sql) => match &mut self.open {
                Some(buf) if !self.oversized => {
                    self.open_bytes += sql.len();
                    let held_total = self
                        .mirror
                        .stats
                        .held_bytes
                        .fetch_add(sql.len() as i64, Ordering::Relaxed);
                    if self.open_bytes > MAX_TRANSACTION_BYTES
                        || held_total as usize > MAX_HELD_BYTES
                    {
                        self.oversized = true;
                        let held = std::mem::take(buf);
                        self.mirror.record(
                            self.session,
                            DriftKind::Error,
                            &format!("{} statements", held.len() + 1),
                            None,
                            format!(
                                "transaction not mirrored: larger than {MAX_TRANSACTION_BYTES} bytes, or open \
                                 transactions hold more than {MAX_HELD_BYTES} bytes together"
                            ),
                        );
                    } else {
                        buf.push(sql);
                    }
                }
                Some(_) => {}
                None => {
                    let unit = self.unit(vec![sql], false);
                    self.last_done = self.mirror.enqueue(unit, sync).await;
                }
            },
            Op::Commit => {
                self.release_held();
                if let Some(statements) = self.open.take() {
                    if !statements.is_empty() && !self.oversized {
                        let unit = self.unit(statements, true);
                        self.last_done = self.mirror.enqueue(unit, sync).await;
                    }
                }
            }
            Op::Rollback => {
                self.release_held();
                self.open = None;
            }
        }
    }

    /// The open transaction's bytes leave the global budget.
    fn release_held(&mut self) {
        let bytes = std::mem::take(&mut self.open_bytes) as i64;
        self.mirror
            .stats
            .held_bytes
            .fetch_sub(bytes, Ordering::Relaxed);
    }

    fn unit(&self, statements: Vec<String>, transaction: bool) -> Unit {
        self.in_flight.handed.fetch_add(1, Ordering::Relaxed);
        Unit {
            session: self.session,
            statements,
            transaction,
            enqueued: Instant::now(),
            done: None,
            in_flight: Arc::clone(&self.in_flight),
        }
    }

    pub fn is_sync(&self) -> bool {
        self.mirror.is_sync()
    }

    /// Sync mode: waits until the last unit handed over was applied (or
    /// failed) on the secondary, at most `timeout`.
    pub async fn wait_applied(&mut self, timeout: Duration) -> bool {
        match self.last_done.take() {
            Some(rx) => matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(()))),
            None => true,
        }
    }

    /// This session's progress, and the number of units it has handed over
    /// so far: once `done` reaches that number, every write the session made
    /// before this call is on the secondary.
    pub fn progress(&self) -> (Arc<SessionProgress>, u64) {
        let handed = self.in_flight.handed.load(Ordering::Relaxed);
        (Arc::clone(&self.in_flight), handed)
    }

    /// True while writes of this session may not be on the secondary yet.
    pub fn has_pending(&self) -> bool {
        let handed = self.in_flight.handed.load(Ordering::Relaxed);
        self.open.as_ref().is_some_and(|b| !b.is_empty()) || !self.in_flight.reached(handed)
    }
}

/// Units of one session handed to the queue, and finished (applied, failed
/// as drift, or dropped): both only grow.
#[derive(Default)]
pub struct SessionProgress {
    handed: AtomicU64,
    pub done: AtomicU64,
}

impl SessionProgress {
    /// Whether the first `handed` units of the session are finished.
    pub fn reached(&self, handed: u64) -> bool {
        self.done.load(Ordering::Relaxed) >= handed
    }
}

struct InFlightGuard(Arc<SessionProgress>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.done.fetch_add(1, Ordering::Relaxed);
    }
}

enum SecondaryConn {
    Postgres(tokio_postgres::Client),
    Mysql(Box<BackendConn>),
}

struct Applier {
    schema: Arc<ArcSwap<Schema>>,
    kind: BackendKind,
    target: BackendTarget,
    connect_timeout: Duration,
    max_packet: usize,
    max_backoff: Duration,
    conn: Option<SecondaryConn>,
    backoff: Duration,
    down_until: Option<Instant>,
    drift: DriftLog,
    stats: Arc<MirrorStats>,
    phase: &'static str,
    /// Foreign keys held back on a PostgreSQL secondary (see `fk`).
    fks: fk::MirrorFks,
    /// (table, constraint) of the last foreign-key violation `exec` met.
    fk_violation: Option<(String, String)>,
}

/// Most foreign keys one unit may take off the secondary before it is drift.
const MAX_DEMOTIONS_PER_UNIT: usize = 8;

/// Prefix of errors that mean the secondary is unreachable.
const DOWN: &str = "secondary unreachable";

impl Applier {
    fn record(
        &self,
        session: u64,
        kind: DriftKind,
        statement: String,
        translated: Option<String>,
        error: String,
    ) {
        self.drift.record(DriftEvent {
            time: now_rfc3339(),
            session,
            phase: self.phase,
            kind,
            statement,
            translated,
            error,
        });
    }

    /// Applies one unit. It borrows the unit so that a caller which gives
    /// up on it (the shutdown bound) can still record what it held.
    async fn apply(&mut self, unit: &mut Unit) {
        let session = unit.session;
        let transaction = unit.transaction;
        let enqueued = unit.enqueued;
        let done = unit.done.take();
        let statements = &unit.statements;
        // Counted down whatever the outcome (or if the apply is abandoned at
        // shutdown): a failed write is drift, and the session's reads need
        // not wait for it.
        let _applied = InFlightGuard(Arc::clone(&unit.in_flight));
        let (batch, fks) = match self.prepare(statements) {
            Ok(b) => b,
            Err((stmt, e)) => {
                // One untranslatable statement: the whole unit is skipped so
                // the transaction is never applied in part.
                self.record(session, DriftKind::Untranslatable, stmt, None, e);
                if transaction && statements.len() > 1 {
                    self.record(
                        session,
                        DriftKind::Skipped,
                        statements.join(";\n"),
                        None,
                        "transaction not applied: a statement in it cannot be translated".into(),
                    );
                }
                self.finish(enqueued, done);
                return;
            }
        };
        let text = if transaction {
            let (begin, commit) = match self.kind {
                BackendKind::Postgres => ("BEGIN", "COMMIT"),
                BackendKind::Mysql => ("START TRANSACTION", "COMMIT"),
            };
            format!("{begin};\n{};\n{commit}", batch.join(";\n"))
        } else {
            batch.join(";\n")
        };
        let mut result = self.exec(&text).await;
        let mut demoted = 0;
        while result.is_err() && demoted < MAX_DEMOTIONS_PER_UNIT {
            let Some((table, constraint)) = self.fk_violation.take() else {
                break;
            };
            if transaction {
                let _ = self.exec("ROLLBACK").await;
            }
            if !self.demote(session, statements, &table, &constraint).await {
                break;
            }
            demoted += 1;
            result = self.exec(&text).await;
        }
        if result.is_ok() && fk::changes_schema(&batch, &fks) {
            self.after_ddl(session, fks).await;
        }
        if let Err(e) = result {
            let kind = if e.starts_with(DOWN) {
                DriftKind::SecondaryDown
            } else {
                DriftKind::Error
            };
            if transaction && !e.starts_with(DOWN) {
                // Leave the failed transaction before the next unit.
                let _ = self.exec("ROLLBACK").await;
            }
            self.record(session, kind, statements.join(";\n"), Some(text), e);
        }
        self.finish(enqueued, done);
    }

    fn finish(&self, enqueued: Instant, done: Option<oneshot::Sender<()>>) {
        let lag = enqueued.elapsed().as_micros() as u64;
        self.stats.last_lag_us.store(lag, Ordering::Relaxed);
        self.stats.max_lag_us.fetch_max(lag, Ordering::Relaxed);
        self.stats.applied.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = done {
            let _ = d.send(());
        }
    }

    /// A write was refused for a foreign key the primary did not enforce:
    /// the key is held back (drift) and the write may run again.
    async fn demote(
        &mut self,
        session: u64,
        statements: &[String],
        table: &str,
        key: &str,
    ) -> bool {
        let Some(SecondaryConn::Postgres(client)) = self.conn.as_ref() else {
            return false;
        };
        let Some(message) = self.fks.demote(client, table, key).await else {
            return false;
        };
        self.record(
            session,
            DriftKind::ForeignKeyHeld,
            statements.join(";\n"),
            None,
            message,
        );
        true
    }

    /// After a unit changed the schema: its tables' foreign keys, and those
    /// waiting for a table.
    async fn after_ddl(&mut self, session: u64, created: Vec<translate::ForeignKey>) {
        let Some(SecondaryConn::Postgres(client)) = self.conn.as_ref() else {
            return;
        };
        if let Some((text, error)) = self.fks.after_ddl(client, created).await {
            self.record(session, DriftKind::ForeignKeyHeld, text, None, error);
        }
    }

    /// The statements as the secondary runs them, and the foreign keys of
    /// the tables they create (added after them, see `fk`).
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        statements: &[String],
    ) -> Result<(Vec<String>, Vec<translate::ForeignKey>), (String, String)> {
        match self.kind {
            BackendKind::Mysql => Ok((statements.to_vec(), Vec::new())),
            BackendKind::Postgres => {
                let mut out = Vec::with_capacity(statements.len());
                let mut fks = Vec::new();
                let schema = self.schema.load();
                for s in statements {
                    let translated = translate::to_postgres(s, &schema)
                        .map_err(|e| (s.clone(), e.to_string()))?;
                    let (statements, keys) = translated.split_foreign_keys();
                    out.extend(statements);
                    fks.extend(keys);
                }
                Ok((out, fks))
            }
        }
    }
}
