//! The drift log: every write the secondary did not apply as the primary did
//! (an error there, an untranslatable statement, a full queue, a secondary
//! that was down), one JSON object per line (see `jsonl`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::jsonl::JsonLines;
use serde::Serialize;

/// Why a write is drift.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The secondary returned an error.
    Error,
    /// The statement cannot be translated for the secondary.
    Untranslatable,
    /// The session's mirror queue was full (overflow = "drop").
    QueueFull,
    /// The secondary was unreachable.
    SecondaryDown,
    /// Skipped because an earlier statement of the same transaction failed on
    /// the secondary (PostgreSQL aborts the whole transaction).
    Skipped,
    /// LOAD DATA rows the primary loaded from a file the statement mirror
    /// cannot replay.
    LoadData,
    /// A foreign key was held back on the secondary (taken off because a
    /// write the primary accepted violates it, or never added while the
    /// mirror ran); it waits in `tandem_pending_foreign_keys`.
    ForeignKeyHeld,
    /// The proxy shut down before the secondary applied the write (still
    /// queued when the shutdown bound ran out, or being applied then:
    /// whether the secondary committed that one is unknown).
    Shutdown,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftEvent {
    pub time: String,
    pub session: u64,
    pub phase: &'static str,
    pub kind: DriftKind,
    pub statement: String,
    pub translated: Option<String>,
    pub error: String,
}

/// Handle to the drift log writer. Cheap to clone.
#[derive(Clone)]
pub struct DriftLog {
    out: JsonLines<DriftEvent>,
    pub recorded: Arc<AtomicU64>,
    /// Events lost because the writer could not keep up (bounded channel).
    pub lost: Arc<AtomicU64>,
}

impl DriftLog {
    /// Starts the writer task appending to `path`.
    pub fn start(path: PathBuf) -> Self {
        let out = JsonLines::start(path, "drift log");
        Self {
            lost: Arc::clone(&out.lost),
            out,
            recorded: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn record(&self, ev: DriftEvent) {
        self.recorded.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(session = ev.session, kind = ?ev.kind, error = %ev.error, "drift");
        self.out.record(ev);
    }

    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Waits (at most `bound`) until every event recorded so far is in the
    /// file: the last step of a mirror's shutdown.
    pub async fn flush(&self, bound: std::time::Duration) -> bool {
        self.out.flush(bound).await
    }
}

pub use crate::value::temporal::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
        assert_eq!(&t[10..11], "T");
    }

    #[tokio::test]
    async fn events_reach_the_file_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drift.jsonl");
        let log = DriftLog::start(path.clone());
        for i in 0..3 {
            log.record(DriftEvent {
                time: now_rfc3339(),
                session: i,
                phase: "dual_write",
                kind: DriftKind::Error,
                statement: "INSERT INTO t VALUES (1)".into(),
                translated: Some("INSERT INTO t VALUES (1)".into()),
                error: "duplicate key".into(),
            });
        }
        let mut lines = Vec::new();
        for _ in 0..100 {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            lines = text.lines().map(String::from).collect();
            if lines.len() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(lines.len(), 3);
        let v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(v["session"], 2);
        assert_eq!(v["kind"], "error");
        assert_eq!(log.recorded(), 3);
    }
}
