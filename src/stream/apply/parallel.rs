//! Parallel apply: independent source transactions committed side by side
//! on several target connections, dependent ones in commit order.
//!
//! The dispatcher ([`Pool`]) buffers each source transaction whole, names
//! the rows it touches ([`super::writeset`]) and hands it to a worker: to
//! the worker already holding the in-flight transactions it depends on
//! (its queue is applied in order), to the least busy one when it depends
//! on none, and when it depends on transactions held by two or more
//! workers, only after all but one of those have committed. A barrier
//! (DDL, a table without a key, a transaction too large to buffer) waits
//! until everything before it has committed and is applied by the
//! dispatcher's own connection; nothing after it starts before it ends.
//! Each worker groups what is queued for it into one target transaction,
//! as the serial applier does. So per row, transactions commit in the
//! primary's order, and each source transaction commits whole (alone or in
//! a group).
//!
//! ## Exactly once across crashes
//!
//! Every source transaction is identified by its end position, which the
//! binlog orders. A worker commits, in the same target transaction as the
//! rows, one marker per source transaction ([`super::markers`]). The
//! dispatcher numbers everything it reads (transactions, DDL, progress) and
//! knows which numbers are committed; the *low-water mark* L is the end of
//! the longest committed prefix. A checkpointer task stores L in the
//! stream's checkpoint row and deletes the markers at or below L, in one
//! transaction (a single task: L only grows). Hence at any instant the
//! target holds: every transaction ≤ L committed (L was only stored after
//! they were), and above L exactly the transactions that have a marker
//! (rows and marker commit together). On restart the stream resumes at L
//! and drops every transaction whose end position has a marker, applying
//! the others: none is lost (everything above L without a marker was not
//! committed, and is read again) and none is applied twice. Markers also
//! survive a switch to `apply_workers = 1`: the serial session hands over
//! to this one while any remain. Readers of the checkpoint row (reads on
//! exact positions, the cutover) see L, a position the target has fully
//! reached.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};

use super::workers::{checkpointer, worker, CheckpointState, Done, Txn};
use super::writeset::{self, Tracker, Writeset};
use super::{Applier, ApplyError, ApplyOptions, Checkpoint, StreamStats};
use crate::config::BackendConfig;
use crate::dualwrite::drift::DriftLog;
use crate::migrate::db;
use crate::stream::{Change, Position};

/// Source transactions dispatched and not yet committed, at most.
const MAX_IN_FLIGHT: usize = 256;
/// Row changes held in dispatched transactions, at most.
const MAX_IN_FLIGHT_CHANGES: usize = 100_000;
/// A transaction with more row changes is not buffered: it is a barrier,
/// streamed through the dispatcher's own connection.
const MAX_BUFFERED_CHANGES: usize = 5_000;
/// Entries kept for the low-water mark, at most (bounds a backlog of
/// progress behind a slow transaction).
const MAX_ORDER: usize = 100_000;

struct Worker {
    tx: mpsc::Sender<Txn>,
    /// Dispatched transactions not yet committed.
    in_flight: usize,
}

/// One numbered entry of what was read, for the low-water mark.
struct Entry {
    seq: u64,
    end: Checkpoint,
    /// The transaction has a marker to delete once L passes it.
    marked: bool,
    done: bool,
}

/// The transaction being read.
struct Open {
    gtid: Option<String>,
    timestamp: u32,
    changes: Vec<Change>,
    writeset: Writeset,
    /// Too large to buffer, or holding DDL: its rows stream into the
    /// dispatcher's own connection, everything before it already committed.
    streaming: bool,
    /// The target refused it while streaming (`on_error = "skip"`): skipped
    /// at its commit.
    refused: Option<ApplyError>,
}

/// Aborts the pool's tasks if it is dropped before [`Pool::finish`].
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

pub struct Pool {
    own: Applier,
    workers: Vec<Worker>,
    done_rx: mpsc::Receiver<Done>,
    tracker: Tracker,
    next_seq: u64,
    /// Seq → (worker, row changes) of dispatched transactions.
    dispatched: HashMap<u64, (usize, usize)>,
    in_flight_changes: usize,
    order: VecDeque<Entry>,
    /// Transactions above the checkpoint committed before the last stop.
    applied: HashSet<(String, u64)>,
    open: Option<Open>,
    ckpt: Arc<(Mutex<CheckpointState>, Notify)>,
    tasks: Tasks,
    skip: bool,
    /// Source database applied (others are progress).
    database: Option<String>,
    /// Bumped after DDL: workers re-read the target catalog.
    schema_epoch: Arc<AtomicU64>,
}

impl Pool {
    /// Connects `opts.workers` workers, the dispatcher's own connection and
    /// the checkpointer. `own` is the applier the session already holds;
    /// `applied` the markers it read.
    pub async fn start(
        target: &BackendConfig,
        opts: &ApplyOptions,
        mut own: Applier,
        applied: Vec<Position>,
        stats: &Arc<StreamStats>,
        drift: Option<DriftLog>,
    ) -> Result<Pool, ApplyError> {
        own.set_parallel();
        let n = opts.workers.max(1);
        let (done_tx, done_rx) = mpsc::channel(MAX_IN_FLIGHT + 2);
        let mut tasks = Tasks(Vec::new());
        let mut workers = Vec::with_capacity(n);
        let skip = opts.on_error == super::OnError::Skip;
        let schema_epoch = Arc::new(AtomicU64::new(0));
        for _ in 0..n {
            let mut a =
                Applier::connect(target, opts.clone(), Arc::clone(stats), drift.clone()).await?;
            a.set_parallel();
            a.set_schema(Arc::clone(&own.schema));
            let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
            tasks.0.push(tokio::spawn(worker(
                a,
                rx,
                done_tx.clone(),
                skip,
                opts.max_batch_changes,
                Arc::clone(&schema_epoch),
            )));
            workers.push(Worker { tx, in_flight: 0 });
        }
        let db = db::connect(target, "backends.new")
            .await
            .map_err(ApplyError::Unavailable)?;
        let ckpt = Arc::new((Mutex::new(CheckpointState::default()), Notify::new()));
        tasks.0.push(tokio::spawn(checkpointer(
            db,
            opts.stream_id.clone(),
            Arc::clone(&ckpt),
            Arc::clone(stats),
            done_tx,
        )));
        tracing::info!(
            workers = n,
            committed_above_checkpoint = applied.len(),
            "parallel apply started"
        );
        Ok(Pool {
            own,
            workers,
            done_rx,
            tracker: Tracker::default(),
            next_seq: 0,
            dispatched: HashMap::new(),
            in_flight_changes: 0,
            order: VecDeque::new(),
            applied: applied.into_iter().map(|p| (p.file, p.offset)).collect(),
            open: None,
            ckpt,
            tasks,
            skip,
            database: opts.database.clone(),
            schema_epoch,
        })
    }

    /// Whether a source transaction is being read.
    pub fn in_txn(&self) -> bool {
        self.open.is_some()
    }

    /// A worker's commit or failure (for the session's select loop).
    pub async fn next_done(&mut self) -> Result<(), ApplyError> {
        match self.done_rx.recv().await {
            Some(d) => self.handle(d),
            None => Err(ApplyError::Schema("parallel apply workers ended".into())),
        }
    }

    fn handle(&mut self, d: Done) -> Result<(), ApplyError> {
        match d {
            Done::Failed(e) => Err(e),
            Done::Committed(seqs) => {
                for seq in seqs {
                    if let Some((w, changes)) = self.dispatched.remove(&seq) {
                        if let Some(wk) = self.workers.get_mut(w) {
                            wk.in_flight = wk.in_flight.saturating_sub(1);
                        }
                        self.in_flight_changes = self.in_flight_changes.saturating_sub(changes);
                    }
                    self.tracker.done(seq);
                    // Entries are in seq order: find by offset from the front.
                    let front = self.order.front().map_or(0, |e| e.seq);
                    if let Some(e) = seq
                        .checked_sub(front)
                        .and_then(|i| self.order.get_mut(i as usize))
                    {
                        if e.seq == seq {
                            e.done = true;
                        }
                    }
                }
                self.advance();
                Ok(())
            }
        }
    }

    /// Moves the low-water mark over the committed prefix.
    fn advance(&mut self) {
        let mut latest = None;
        let mut unmark = Vec::new();
        while self.order.front().is_some_and(|e| e.done) {
            if let Some(e) = self.order.pop_front() {
                if e.marked {
                    self.applied
                        .remove(&(e.end.position.file.clone(), e.end.position.offset));
                    unmark.push(e.end.position.clone());
                }
                latest = Some(e.end);
            }
        }
        if let Some(cp) = latest {
            let (state, notify) = &*self.ckpt;
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.latest = Some(cp);
            s.unmark.extend(unmark);
            drop(s);
            notify.notify_one();
        }
    }

    fn push_entry(&mut self, end: Checkpoint, marked: bool, done: bool) -> u64 {
        // Consecutive progress collapses into one entry.
        if !marked && done {
            if let Some(back) = self.order.back_mut() {
                if back.done && !back.marked {
                    back.end = end;
                    return back.seq;
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.push_back(Entry {
            seq,
            end,
            marked,
            done,
        });
        seq
    }

    /// Waits for commits until `cond` holds.
    async fn wait_until(&mut self, cond: impl Fn(&Pool) -> bool) -> Result<(), ApplyError> {
        while !cond(self) {
            self.next_done().await?;
        }
        Ok(())
    }

    /// Waits until every dispatched transaction has committed.
    async fn drain(&mut self) -> Result<(), ApplyError> {
        self.wait_until(|p| p.dispatched.is_empty()).await
    }

    pub fn begin(&mut self, gtid: Option<String>, timestamp: u32) {
        self.open = Some(Open {
            gtid,
            timestamp,
            changes: Vec::new(),
            writeset: Some(HashSet::new()),
            streaming: false,
            refused: None,
        });
    }

    /// Row changes of the open transaction.
    pub async fn rows(&mut self, mut changes: Vec<Change>) -> Result<(), ApplyError> {
        if let Some(db) = self.database.as_deref() {
            changes.retain(|c| c.table.database == db);
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        if open.refused.is_some() {
            return Ok(());
        }
        if open.streaming {
            let r = self.own.rows(&changes).await;
            return self.streamed(r);
        }
        writeset::add(&mut open.writeset, &changes);
        open.changes.extend(changes);
        if open.changes.len() > MAX_BUFFERED_CHANGES {
            self.start_streaming().await?;
        }
        Ok(())
    }

    /// Everything before the open transaction commits first, then its rows
    /// go to the dispatcher's connection as they arrive.
    async fn start_streaming(&mut self) -> Result<(), ApplyError> {
        self.drain().await?;
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.streaming = true;
        let held = std::mem::take(&mut open.changes);
        self.own.begin(open.gtid.clone(), open.timestamp);
        let r = self.own.rows(&held).await;
        self.streamed(r)
    }

    /// A refusal of a streamed transaction: stop, or skip it at its commit.
    fn streamed(&mut self, r: Result<(), ApplyError>) -> Result<(), ApplyError> {
        match r {
            Err(e) if !e.is_unavailable() && self.skip => {
                if let Some(open) = self.open.as_mut() {
                    open.refused = Some(e);
                }
                Ok(())
            }
            r => r,
        }
    }

    /// DDL inside the open transaction: it is streamed (a barrier).
    pub async fn ddl_in_txn(&mut self, database: &str, sql: &str) -> Result<(), ApplyError> {
        let Some(open) = self.open.as_ref() else {
            return Ok(());
        };
        if open.refused.is_some() {
            return Ok(());
        }
        if !open.streaming {
            self.start_streaming().await?;
        }
        let r = self.own.ddl_in_txn(database, sql).await;
        // Workers are idle until this transaction ends; they re-read plans.
        self.schema_epoch.fetch_add(1, Ordering::Release);
        self.streamed(r)
    }

    /// The open transaction committed at `position`: dispatch it.
    pub async fn commit(&mut self, position: Position) -> Result<(), ApplyError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let end = Checkpoint {
            position: position.clone(),
            source_ts: open.timestamp,
        };
        let already = self
            .applied
            .contains(&(position.file.clone(), position.offset));
        if already {
            if open.streaming {
                self.own.rollback().await;
            }
            self.push_entry(end, true, true);
            self.advance();
            return Ok(());
        }
        if let Some(e) = open.refused {
            self.own.begin(open.gtid, open.timestamp);
            self.own.skip_txn(position, &e).await?;
            self.push_entry(end, true, true);
            self.advance();
            return Ok(());
        }
        if open.streaming {
            self.own.commit_txn(position.clone());
            self.commit_own(position, open.gtid).await?;
            self.push_entry(end, true, true);
            self.advance();
            return Ok(());
        }
        if open.changes.is_empty() {
            // Nothing of ours (filtered rows): progress.
            self.push_entry(end, false, true);
            self.advance();
            return Ok(());
        }
        let Some(keys) = open.writeset else {
            // Barrier: everything before commits first.
            self.drain().await?;
            self.own.begin(open.gtid.clone(), open.timestamp);
            match self.own.rows(&open.changes).await {
                Ok(()) => {
                    self.own.commit_txn(position.clone());
                    self.commit_own(position, open.gtid).await?;
                }
                Err(e) if e.is_unavailable() || !self.skip => return Err(e),
                Err(e) => self.own.skip_txn(position, &e).await?,
            }
            self.push_entry(end, true, true);
            self.advance();
            return Ok(());
        };
        let n = open.changes.len();
        self.wait_until(|p| {
            p.dispatched.len() < MAX_IN_FLIGHT
                && p.order.len() < MAX_ORDER
                && (p.in_flight_changes + n <= MAX_IN_FLIGHT_CHANGES || p.dispatched.is_empty())
        })
        .await?;
        // Wait until the transactions it depends on sit on one worker at most.
        let worker = loop {
            let deps = self.tracker.dependencies(&keys);
            let on: HashSet<usize> = deps
                .iter()
                .filter_map(|s| self.dispatched.get(s).map(|d| d.0))
                .collect();
            match on.len() {
                0 => {
                    break (0..self.workers.len())
                        .min_by_key(|&w| self.workers.get(w).map_or(usize::MAX, |k| k.in_flight))
                        .unwrap_or(0)
                }
                1 => break on.into_iter().next().unwrap_or(0),
                _ => self.next_done().await?,
            }
        };
        let seq = self.push_entry(end, true, false);
        self.tracker.dispatched(seq, keys);
        self.dispatched.insert(seq, (worker, n));
        self.in_flight_changes += n;
        let txn = Txn {
            seq,
            gtid: open.gtid,
            timestamp: open.timestamp,
            changes: open.changes,
            position,
        };
        let Some(w) = self.workers.get_mut(worker) else {
            return Err(ApplyError::Schema("no parallel apply worker".into()));
        };
        w.in_flight += 1;
        w.tx.send(txn)
            .await
            .map_err(|_| ApplyError::Schema("a parallel apply worker ended".into()))
    }

    /// Commits the dispatcher's own open transaction; a refusal stops the
    /// stream or is skipped per `on_error`.
    async fn commit_own(
        &mut self,
        position: Position,
        gtid: Option<String>,
    ) -> Result<(), ApplyError> {
        match self.own.commit().await {
            Ok(()) => Ok(()),
            Err(e) if e.is_unavailable() || !self.skip => Err(e),
            Err(e) => {
                self.own.begin(gtid, 0);
                self.own.skip_txn(position, &e).await
            }
        }
    }

    /// DDL outside a transaction: a barrier.
    pub async fn ddl(
        &mut self,
        database: &str,
        sql: &str,
        gtid: Option<String>,
        position: Position,
    ) -> Result<(), ApplyError> {
        let end = Checkpoint {
            position: position.clone(),
            source_ts: 0,
        };
        if !self
            .applied
            .contains(&(position.file.clone(), position.offset))
        {
            self.drain().await?;
            if let Err(e) = self
                .own
                .ddl(database, sql, gtid.clone(), position.clone())
                .await
            {
                if e.is_unavailable() || !self.skip {
                    return Err(e);
                }
                self.own.begin(gtid, 0);
                self.own.skip_txn(position, &e).await?;
            }
            self.schema_epoch.fetch_add(1, Ordering::Release);
        }
        self.push_entry(end, true, true);
        self.advance();
        Ok(())
    }

    /// Nothing to apply up to `position`.
    pub fn progress(&mut self, position: Position, timestamp: u32) {
        if self.open.is_some() {
            return;
        }
        self.push_entry(
            Checkpoint {
                position,
                source_ts: timestamp,
            },
            false,
            true,
        );
        self.advance();
    }

    /// Commits everything dispatched, stores the final checkpoint and stops
    /// the tasks. A transaction still being read is dropped (read again at
    /// the next start).
    pub async fn finish(mut self) -> Result<(), ApplyError> {
        if self.open.take().is_some_and(|o| o.streaming) {
            self.own.rollback().await;
        }
        self.drain().await?;
        {
            let (state, notify) = &*self.ckpt;
            state.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            notify.notify_one();
        }
        self.workers.clear();
        // The checkpointer reports a failure on the channel; then it ends.
        let tasks = std::mem::take(&mut self.tasks.0);
        for t in tasks {
            let _ = t.await;
        }
        while let Ok(d) = self.done_rx.try_recv() {
            self.handle(d)?;
        }
        Ok(())
    }
}
