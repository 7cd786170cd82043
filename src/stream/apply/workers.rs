//! The tasks behind parallel apply ([`super::parallel`]): the workers, each
//! applying its queue of source transactions grouped into target
//! transactions, and the checkpointer storing the low-water mark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};

use super::{Applier, ApplyError, Checkpoint, StreamStats};
use crate::migrate::db::Db;
use crate::stream::{Change, Position};

/// A buffered source transaction handed to a worker.
pub(super) struct Txn {
    pub(super) seq: u64,
    pub(super) gtid: Option<String>,
    pub(super) timestamp: u32,
    pub(super) changes: Vec<Change>,
    pub(super) position: Position,
}

/// What a worker reports back: the sequence numbers it committed, or why it
/// stopped.
pub(super) enum Done {
    Committed(Vec<u64>),
    Failed(ApplyError),
}

/// What the dispatcher hands the checkpointer: the low-water mark to store
/// and the markers it passed.
#[derive(Default)]
pub(super) struct CheckpointState {
    pub(super) latest: Option<Checkpoint>,
    pub(super) unmark: Vec<Position>,
    pub(super) stop: bool,
}

/// Applies the transactions queued for it, grouped, until its queue closes.
pub(super) async fn worker(
    mut applier: Applier,
    mut rx: mpsc::Receiver<Txn>,
    done: mpsc::Sender<Done>,
    skip: bool,
    max_changes: usize,
    schema_epoch: Arc<AtomicU64>,
) {
    let mut epoch = schema_epoch.load(Ordering::Acquire);
    while let Some(first) = rx.recv().await {
        // DDL is a barrier: it ran before this transaction was dispatched.
        let now = schema_epoch.load(Ordering::Acquire);
        if now != epoch {
            epoch = now;
            applier.tables.invalidate();
        }
        let mut rows = first.changes.len();
        let mut group = vec![first];
        while rows < max_changes {
            match rx.try_recv() {
                Ok(t) => {
                    rows += t.changes.len();
                    group.push(t);
                }
                Err(_) => break,
            }
        }
        let msg = match apply_group(&mut applier, &group, skip).await {
            Ok(()) => Done::Committed(group.iter().map(|t| t.seq).collect()),
            Err(e) => Done::Failed(e),
        };
        let failed = matches!(msg, Done::Failed(_));
        if done.send(msg).await.is_err() || failed {
            return;
        }
    }
}

async fn apply_one(a: &mut Applier, t: &Txn) -> Result<(), ApplyError> {
    a.begin(t.gtid.clone(), t.timestamp);
    a.rows(&t.changes).await?;
    a.commit_txn(t.position.clone());
    Ok(())
}

/// One target transaction for the group; when the target refuses it, each
/// source transaction alone, to find (and stop at or skip) the one at fault.
async fn apply_group(a: &mut Applier, group: &[Txn], skip: bool) -> Result<(), ApplyError> {
    let mut result = Ok(());
    for t in group {
        result = apply_one(a, t).await;
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = a.commit().await;
    }
    match result {
        Ok(()) => return Ok(()),
        Err(e) if e.is_unavailable() => return Err(e),
        Err(e) if group.len() == 1 && !skip => return Err(e),
        Err(_) => a.rollback().await,
    }
    for t in group {
        let r = match apply_one(a, t).await {
            Ok(()) => a.commit().await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {}
            Err(e) if e.is_unavailable() || !skip => return Err(e),
            Err(e) => {
                a.begin(t.gtid.clone(), t.timestamp);
                a.skip_txn(t.position.clone(), &e).await?;
            }
        }
    }
    Ok(())
}

/// Stores the low-water mark and deletes the markers it covers, one
/// transaction at a time, until told to stop (after a last write).
pub(super) async fn checkpointer(
    mut db: Db,
    stream_id: String,
    shared: Arc<(Mutex<CheckpointState>, Notify)>,
    stats: Arc<StreamStats>,
    done: mpsc::Sender<Done>,
) {
    let d = db.dialect();
    loop {
        shared.1.notified().await;
        let (latest, unmark, stop) = {
            let mut s = shared.0.lock().unwrap_or_else(|p| p.into_inner());
            (s.latest.take(), std::mem::take(&mut s.unmark), s.stop)
        };
        if let Some(cp) = latest {
            let mut sql = vec![
                super::begin_sql(d).to_string(),
                super::checkpoint::store_sql(d, &stream_id, &cp),
            ];
            sql.extend(super::markers::unmark_sql(d, &stream_id, &unmark));
            sql.push("COMMIT".into());
            if let Err(e) = db.execute(&sql.join(";\n")).await {
                let _ = db.execute("ROLLBACK").await;
                let _ = done
                    .send(Done::Failed(ApplyError::from_target(e, None)))
                    .await;
                return;
            }
            stats.low_water(&cp);
        }
        if stop {
            return;
        }
    }
}
