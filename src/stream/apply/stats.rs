//! Counters and state of a running stream, for `/metrics` and `/status`.
//! Written by the stream task, read by the admin endpoint; cheap to share.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::Checkpoint;
use crate::stream::Position;

#[derive(Default)]
pub struct StreamStats {
    pub transactions: AtomicU64,
    pub rows: AtomicU64,
    pub groups: AtomicU64,
    pub events: AtomicU64,
    pub skipped: AtomicU64,
    pub retries: AtomicU64,
    /// Source commit time of the last applied transaction (epoch seconds).
    pub applied_source_ts: AtomicU32,
    /// Source commit time of the last item read (epoch seconds).
    pub read_source_ts: AtomicU32,
    inner: Mutex<Inner>,
}

#[derive(Default, Clone, Serialize)]
pub struct Snapshot {
    /// `starting`, `standby`, `applying`, `retrying`, `stopped`.
    pub state: String,
    pub error: Option<String>,
    pub checkpoint: Option<Position>,
    pub read: Option<Position>,
    pub lease_holder: Option<String>,
    /// Binlog files the primary keeps before the checkpoint's file (how
    /// many it may purge before the stream loses its place); `None` when
    /// unknown.
    pub retention_files: Option<u64>,
    /// The same in bytes.
    pub retention_bytes: Option<u64>,
}

#[derive(Default)]
struct Inner {
    snap: Snapshot,
}

impl StreamStats {
    fn with<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g.snap)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| s.clone())
    }

    pub fn set_state(&self, state: &str, error: Option<String>) {
        self.with(|s| {
            s.state = state.to_string();
            s.error = error;
        });
    }

    pub fn set_lease_holder(&self, holder: Option<String>) {
        self.with(|s| s.lease_holder = holder);
    }

    pub fn set_retention(&self, kept: Option<(u64, u64)>) {
        self.with(|s| {
            s.retention_files = kept.map(|k| k.0);
            s.retention_bytes = kept.map(|k| k.1);
        });
    }

    pub fn read(&self, position: &Position, ts: u32) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if ts != 0 {
            self.read_source_ts.store(ts, Ordering::Relaxed);
        }
        self.with(|s| s.read = Some(position.clone()));
    }

    pub fn committed(&self, cp: &Checkpoint, txns: u64, rows: u64) {
        self.count(txns, rows);
        self.low_water(cp);
    }

    /// A group of `txns` source transactions (`rows` row changes) committed.
    pub fn count(&self, txns: u64, rows: u64) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.transactions.fetch_add(txns, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// Everything up to `cp` is applied (the stored checkpoint).
    pub fn low_water(&self, cp: &Checkpoint) {
        if cp.source_ts != 0 {
            self.applied_source_ts
                .store(cp.source_ts, Ordering::Relaxed);
        }
        self.with(|s| s.checkpoint = Some(cp.position.clone()));
    }

    /// Seconds between the last transaction read and the last applied
    /// (0 when the applier has caught up with what was read).
    pub fn lag_seconds(&self) -> u64 {
        let (read, applied) = self.with(|s| (s.read.clone(), s.checkpoint.clone()));
        if read.is_some() && read == applied {
            return 0;
        }
        let r = self.read_source_ts.load(Ordering::Relaxed);
        let a = self.applied_source_ts.load(Ordering::Relaxed);
        u64::from(r.saturating_sub(a))
    }

    /// Binlog bytes read but not yet applied, when both are in one file.
    pub fn lag_bytes(&self) -> Option<u64> {
        self.with(|s| match (&s.read, &s.checkpoint) {
            (Some(r), Some(c)) if r.file == c.file => Some(r.offset.saturating_sub(c.offset)),
            (Some(_), None) => None,
            (None, _) => Some(0),
            _ => None,
        })
    }
}
