//! Process-wide counters (lock-free), exported by the admin endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sql::classify::StatementClass;

pub const CLASSES: [StatementClass; 6] = [
    StatementClass::Read,
    StatementClass::Write,
    StatementClass::Ddl,
    StatementClass::Transaction,
    StatementClass::Session,
    StatementClass::Other,
];

pub fn class_name(c: StatementClass) -> &'static str {
    match c {
        StatementClass::Read => "read",
        StatementClass::Write => "write",
        StatementClass::Ddl => "ddl",
        StatementClass::Transaction => "transaction",
        StatementClass::Session => "session",
        StatementClass::Other => "other",
    }
}

fn class_index(c: StatementClass) -> usize {
    CLASSES.iter().position(|x| *x == c).unwrap_or(5)
}

#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
    pub auth_failures: AtomicU64,
    pub backend_errors: AtomicU64,
    pub reloads: AtomicU64,
    /// Reads served by the new backend (dual_write, `[reads] new_percent`).
    pub reads_to_new: AtomicU64,
    /// Reads that would have gone to the new backend but stayed on the
    /// authoritative one for read-your-writes (open transaction or mirrored
    /// writes in flight).
    pub reads_kept_for_consistency: AtomicU64,
    /// Reads chosen for the new backend that it could not take (no free
    /// connection, untranslatable): served by the old one instead.
    pub reads_fallback: AtomicU64,
    pub reload_failures: AtomicU64,
    /// Statements received, by class (COM_QUERY and COM_STMT_EXECUTE).
    statements: [AtomicU64; 6],
    /// Time from a statement's arrival to the end of its answer, by class.
    pub latency: [Histogram; 6],
}

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// A fixed-bucket histogram updated with relaxed atomics (Prometheus style:
/// counts per upper bound, plus sum and count).
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; 14],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative bucket counts, sum in seconds, count)
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (
            cumulative,
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

impl Metrics {
    pub fn count_statement(&self, class: StatementClass) {
        self.statements[class_index(class)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_latency(&self, class: StatementClass, d: std::time::Duration) {
        self.latency[class_index(class)].observe(d);
    }

    pub fn statements(&self, class: StatementClass) -> u64 {
        self.statements[class_index(class)].load(Ordering::Relaxed)
    }

    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
