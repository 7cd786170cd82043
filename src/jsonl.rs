//! Append-only JSON-lines files written by one background thread, so that
//! sessions and workers never wait on the disk. The channel is bounded: when
//! the writer cannot keep up, records are counted as lost, never queued
//! without limit.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

const CHANNEL: usize = 10_000;

/// Handle to one log file's writer. Cheap to clone.
pub struct JsonLines<T> {
    tx: mpsc::Sender<T>,
    /// Records not written because the writer lagged.
    pub lost: Arc<AtomicU64>,
}

impl<T> Clone for JsonLines<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            lost: Arc::clone(&self.lost),
        }
    }
}

impl<T: Serialize + Send + 'static> JsonLines<T> {
    /// Starts the writer appending to `path`; `what` names the log in
    /// error messages.
    pub fn start(path: PathBuf, what: &'static str) -> Self {
        let (tx, mut rx) = mpsc::channel::<T>(CHANNEL);
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
            let mut out = match file {
                Ok(f) => std::io::BufWriter::new(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the {what}; its events are only counted");
                    while rx.blocking_recv().is_some() {}
                    return;
                }
            };
            while let Some(first) = rx.blocking_recv() {
                let mut pending = Some(first);
                let mut written = 0;
                while let Some(ev) = pending.take() {
                    if let Ok(line) = serde_json::to_string(&ev) {
                        let _ = writeln!(out, "{line}");
                    }
                    written += 1;
                    if written < 256 {
                        pending = rx.try_recv().ok();
                    }
                }
                if let Err(e) = out.flush() {
                    tracing::warn!(path = %path.display(), error = %e, "{what} write failed");
                }
            }
        });
        Self {
            tx,
            lost: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues one record; false (and counted as lost) when the writer lags.
    pub fn record(&self, ev: T) -> bool {
        let sent = self.tx.try_send(ev).is_ok();
        if !sent {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}
