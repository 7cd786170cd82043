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

/// What the writer thread receives.
enum Msg<T> {
    Record(T),
    /// Answered once every record sent before it is on disk (shutdown).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Handle to one log file's writer. Cheap to clone. The writer thread ends
/// when the last handle is dropped, after writing what it was sent.
pub struct JsonLines<T> {
    tx: mpsc::Sender<Msg<T>>,
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
        let (tx, mut rx) = mpsc::channel::<Msg<T>>(CHANNEL);
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
            let mut out = match file {
                Ok(f) => std::io::BufWriter::new(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the {what}; its events are only counted");
                    while let Some(msg) = rx.blocking_recv() {
                        if let Msg::Flush(done) = msg {
                            let _ = done.send(());
                        }
                    }
                    return;
                }
            };
            while let Some(first) = rx.blocking_recv() {
                let mut pending = Some(first);
                let mut written = 0;
                let mut flushed = Vec::new();
                while let Some(msg) = pending.take() {
                    match msg {
                        Msg::Record(ev) => {
                            if let Ok(line) = serde_json::to_string(&ev) {
                                let _ = writeln!(out, "{line}");
                            }
                        }
                        Msg::Flush(done) => flushed.push(done),
                    }
                    written += 1;
                    if written < 256 {
                        pending = rx.try_recv().ok();
                    }
                }
                if let Err(e) = out.flush() {
                    tracing::warn!(path = %path.display(), error = %e, "{what} write failed");
                }
                for done in flushed {
                    let _ = done.send(());
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
        let sent = self.tx.try_send(Msg::Record(ev)).is_ok();
        if !sent {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }

    /// Waits (at most `bound`) until everything recorded so far is written
    /// and flushed to the file. False when the bound ran out first.
    pub async fn flush(&self, bound: std::time::Duration) -> bool {
        let (done, wait) = tokio::sync::oneshot::channel();
        let asked = async { self.tx.send(Msg::Flush(done)).await.is_ok() && wait.await.is_ok() };
        tokio::time::timeout(bound, asked).await.unwrap_or(false)
    }
}
