//! Shadow reads: a sample of the reads the authoritative backend answers is
//! also run on the other backend, in the background, and the two answers are
//! compared. The client never waits for any of it: sessions hand a job to a
//! bounded queue (dropped and counted when full) and go on.
//!
//! A job carries what the client was sent (copied while relayed, see
//! `capture`) or, when the answer was too large to copy or came from
//! PostgreSQL, nothing; then the worker runs the statement on the primary
//! itself. The other side runs after the session's mirrored writes were
//! applied, so the session's own writes are visible there too. A difference
//! is checked once more, both sides re-run after the mirror caught up, and
//! logged only if it persists; otherwise it was the mirror's lag (transient).

pub mod capture;
pub mod compare;
pub mod log;
mod side;
pub mod statements;
pub mod summary;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::Instrument;

use crate::background::{Background, StopSignal};
use crate::config::{ShadowConfig, StreamSourceKind};
use crate::dualwrite::drift::now_rfc3339;
use crate::dualwrite::mirror::Mirror;
use crate::dualwrite::mirror::SessionProgress;
use crate::jsonl::JsonLines;
use crate::proxy::route::Target;
use crate::snapshot::Snapshot;
use crate::sql::schema::Schema;
use statements::StatementLatency;

use capture::{Capture, Decoded};
use compare::{compare, Collected};
use log::{Category, MismatchRecord, PerSide, SideError};
use side::{Answer, RunError, SideConn};
use worker::Worker;

/// What became of sampled reads, for `/metrics` and `/status`.
#[derive(Default)]
pub struct ShadowStats {
    /// Both answers agreed.
    pub matched: AtomicU64,
    /// Differed, and still differed on the recheck: logged.
    pub mismatched: AtomicU64,
    /// Differed, then agreed on the recheck (the mirror's lag).
    pub transient: AtomicU64,
    /// Not compared: the output depends on more than the data (RAND(),
    /// NOW(), LIMIT without ORDER BY …).
    pub skipped_nondeterministic: AtomicU64,
    /// Not compared: a read inside a transaction sees its uncommitted writes.
    pub skipped_transaction: AtomicU64,
    /// Not compared: not a plain query, several result sets, untranslatable.
    pub skipped_unsupported: AtomicU64,
    /// Not compared: the queue of sampled reads was full.
    pub dropped: AtomicU64,
    /// Not compared: a backend was unreachable or too slow.
    pub failed: AtomicU64,
    /// Mismatches counted but not written (per-fingerprint log budget).
    pub log_suppressed: AtomicU64,
    /// Comparisons run before the change stream had applied what the old
    /// side had committed (not reached within the timeout, or unknown).
    pub stream_not_reached: AtomicU64,
    /// Sampled reads queued or being compared.
    pub queued: AtomicI64,
    /// Bytes those jobs hold (copied answers, statement text).
    pub queued_bytes: AtomicI64,
}

impl ShadowStats {
    /// (outcome label, count) pairs, for the metrics endpoint.
    pub fn outcomes(&self) -> [(&'static str, u64); 8] {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("match", l(&self.matched)),
            ("mismatch", l(&self.mismatched)),
            ("transient", l(&self.transient)),
            (
                "skipped_nondeterministic",
                l(&self.skipped_nondeterministic),
            ),
            ("skipped_transaction", l(&self.skipped_transaction)),
            ("skipped_unsupported", l(&self.skipped_unsupported)),
            ("dropped", l(&self.dropped)),
            ("failed", l(&self.failed)),
        ]
    }
}

/// The authoritative answer as relayed to the client.
pub struct Relayed {
    pub capture: Capture,
    pub binary: bool,
    pub deprecate_eof: bool,
    pub latency: Duration,
}

/// One sampled read.
pub struct Job {
    pub session: u64,
    pub fingerprint: String,
    /// MySQL text (a prepared statement with its parameters inlined).
    pub statement: String,
    /// The client's current database (MySQL side).
    pub database: String,
    pub ordered: bool,
    /// The authoritative backend when the read ran.
    pub primary: Target,
    /// What the client got; `None` when the worker must run the primary too.
    pub relayed: Option<Relayed>,
    /// The session's mirror progress and the point it had reached when the
    /// read ran: the other side is read only after that point was applied.
    pub session_writes: Option<(Arc<SessionProgress>, u64)>,
}

/// Most bytes queued jobs may hold together (copied answers up to
/// `capture_bytes` each): the queue's memory stays bounded whatever its
/// length and the answers' sizes.
const MAX_QUEUED_BYTES: i64 = 64 << 20;

impl Job {
    fn bytes(&self) -> usize {
        self.statement.len() + self.relayed.as_ref().map_or(0, |r| r.capture.len())
    }
}

/// What the comparers read from the rest of the proxy, handed to them at
/// start: the live configuration, the mirror (to wait for a session's writes),
/// the schema and the latency table. No back-reference into the server state.
#[derive(Clone)]
pub struct ShadowDeps {
    pub snapshot: Arc<arc_swap::ArcSwap<Snapshot>>,
    pub mirror: Arc<arc_swap::ArcSwapOption<Mirror>>,
    pub schema: Arc<arc_swap::ArcSwap<Schema>>,
    pub statements: Arc<StatementLatency>,
}

/// The process's shadow-read service: sampling, the job queue, the workers.
pub struct Shadow {
    tx: mpsc::Sender<Job>,
    pub stats: Arc<ShadowStats>,
    sequence: AtomicU64,
}

impl Shadow {
    /// Starts `config.workers` workers (they connect on first use) on their
    /// own thread, owned by `background`: at shutdown they stop between
    /// comparisons (queued samples are dropped, counted) and the thread ends.
    pub fn start(config: &ShadowConfig, deps: ShadowDeps, background: &Background) -> Self {
        let (shadow, shared) = Self::queue(config);
        let workers: Vec<Worker> = (0..config.workers.max(1))
            .map(|_| Worker {
                shared: Arc::clone(&shared),
                deps: deps.clone(),
                stop: background.signal(),
                old: None,
                new: None,
            })
            .collect();
        // The comparisons run on their own thread, at a lower CPU priority,
        // so a busy machine serves clients first and drops comparisons
        // (counted) rather than slowing the primary path.
        // The thread reports its end (by dropping this) to the owned task
        // that shutdown waits for.
        let (ended, thread_done) = tokio::sync::oneshot::channel::<()>();
        background.spawn(async move {
            let _ = thread_done.await;
        });
        let spawned = std::thread::Builder::new()
            .name("tandem-shadow".into())
            .spawn(move || {
                let _ended = ended;
                lower_thread_priority();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(async move {
                        let tasks: Vec<_> = workers.into_iter().map(|w| tokio::spawn(w.run())).collect();
                        for t in tasks {
                            let _ = t.await;
                        }
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot start the shadow-read thread; shadow reads are dropped"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the shadow-read thread; shadow reads are dropped");
        }
        shadow
    }

    /// The service and the queue's far end, without workers.
    fn queue(config: &ShadowConfig) -> (Self, Arc<Shared>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1) as usize);
        let stats = Arc::new(ShadowStats::default());
        let shared = Arc::new(Shared {
            rx: tokio::sync::Mutex::new(rx),
            stats: Arc::clone(&stats),
            log: Mutex::new(None),
            budget: Mutex::new(HashMap::new()),
        });
        let shadow = Self {
            tx,
            stats,
            sequence: AtomicU64::new(0),
        };
        (shadow, shared)
    }

    /// Whether this read is in the sample: a golden-ratio (Weyl) sequence
    /// over all reads, so the share matches the setting closely.
    pub fn sample(&self, percent: f64) -> bool {
        if percent <= 0.0 {
            return false;
        }
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        crate::proxy::route::golden_step(0.0, n) * 100.0 < percent
    }

    /// Whether a read answered by the authoritative backend is compared:
    /// draws the sample (at `percent`, from `proxy::decide::Plan`), then
    /// counts why a sampled read cannot be compared (`verdict`, from
    /// `proxy::decide::shadow_verdict`) or has no room in the queue.
    pub fn admit(&self, percent: f64, verdict: Result<(), crate::proxy::decide::Skip>) -> bool {
        use crate::proxy::decide::Skip;
        if !self.sample(percent) {
            return false;
        }
        let skip = |counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::Relaxed);
            false
        };
        match verdict {
            Err(Skip::Unsupported) => skip(&self.stats.skipped_unsupported),
            Err(Skip::Nondeterministic) => skip(&self.stats.skipped_nondeterministic),
            Err(Skip::Transaction) => skip(&self.stats.skipped_transaction),
            // No room for the job: don't copy the answer only to drop it.
            Ok(()) if self.tx.capacity() == 0 => skip(&self.stats.dropped),
            Ok(()) => true,
        }
    }

    /// Hands a job to the workers without waiting.
    pub fn submit(&self, job: Job) {
        let bytes = job.bytes() as i64;
        let held = self.stats.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if held + bytes > MAX_QUEUED_BYTES {
            self.stats.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.tx.try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            self.stats
                .queued_bytes
                .fetch_sub(job.bytes() as i64, Ordering::Relaxed);
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Nice +10 for the calling thread (Linux applies nice per thread).
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read their integer arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

struct Shared {
    rx: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    stats: Arc<ShadowStats>,
    /// The mismatch log writer, reopened when `[shadow] log` changes.
    log: Mutex<Option<(PathBuf, JsonLines<MismatchRecord>)>>,
    /// Mismatches logged per fingerprint in the current minute.
    budget: Mutex<HashMap<String, (u64, u32)>>,
}

/// Fingerprints tracked for the log budget; the map is cleared when full.
const MAX_BUDGET_ENTRIES: usize = 10_000;

impl Shared {
    fn write(&self, path: &PathBuf, record: MismatchRecord) {
        let Ok(mut log) = self.log.lock() else {
            return;
        };
        if log.as_ref().is_none_or(|(p, _)| p != path) {
            *log = Some((path.clone(), JsonLines::start(path.clone(), "mismatch log")));
        }
        if let Some((_, out)) = log.as_ref() {
            out.record(record);
        }
    }

    /// Whether another mismatch of `fingerprint` may be written this minute.
    fn allow(&self, fingerprint: &str, per_minute: u32) -> bool {
        let minute = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 60);
        let Ok(mut budget) = self.budget.lock() else {
            return true;
        };
        if budget.len() >= MAX_BUDGET_ENTRIES && !budget.contains_key(fingerprint) {
            budget.clear();
        }
        let entry = budget.entry(fingerprint.to_string()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the comparers read, for a service whose workers never run a job.
    fn test_deps() -> ShadowDeps {
        let config = crate::config::Config::from_toml(
            "listen = \"127.0.0.1:0\"\n[[users]]\nname = \"a\"\npassword = \"b\"\n[backends.old]\nkind = \"mysql\"\nurl = \"mysql://u:p@127.0.0.1:1/db\"\n",
            |_| None,
        )
        .expect("minimal config");
        ShadowDeps {
            snapshot: Arc::new(arc_swap::ArcSwap::from_pointee(Snapshot::new(config))),
            mirror: Arc::default(),
            schema: Arc::default(),
            statements: Arc::default(),
        }
    }

    fn job(capture_mib: usize) -> Job {
        let mut capture = Capture::new(64 << 20);
        for _ in 0..capture_mib {
            capture.push(&vec![0u8; 1 << 20]);
        }
        Job {
            session: 1,
            fingerprint: "SELECT ?".into(),
            statement: "SELECT 1".into(),
            database: String::new(),
            ordered: false,
            primary: Target::Old,
            relayed: Some(Relayed {
                capture,
                binary: false,
                deprecate_eof: true,
                latency: Duration::ZERO,
            }),
            session_writes: None,
        }
    }

    #[tokio::test]
    async fn queued_answers_are_bounded_in_bytes() {
        let config = ShadowConfig {
            queue_capacity: 100,
            ..ShadowConfig::default()
        };
        // No workers: the queue only fills.
        let (shadow, _queue) = Shadow::queue(&config);
        shadow.submit(job(40));
        shadow.submit(job(40));
        assert_eq!(shadow.stats.dropped.load(Ordering::Relaxed), 1);
        shadow.submit(job(1));
        assert_eq!(
            shadow.stats.dropped.load(Ordering::Relaxed),
            1,
            "small jobs still fit"
        );
    }

    #[test]
    fn sampling_matches_the_share() {
        let config = ShadowConfig::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let shadow = Shadow::start(&config, test_deps(), &Background::new());
        let picked = (0..10_000).filter(|_| shadow.sample(12.5)).count();
        assert!((1240..=1260).contains(&picked), "{picked}");
    }
}
