//! Process-wide counters (lock-free), exported by the admin endpoint.
//!
//! Counters touched on every statement are sharded: each session thread adds
//! to its own cache line and a scrape sums the shards. One shared atomic per
//! counter made both cores pull the same line back and forth on every
//! statement, a cost a byte-forwarding hop does not pay.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    statements: [Counter; 6],
    /// Time from a statement's arrival to the end of its answer, by class.
    pub latency: [Histogram; 6],
}

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// Shards per hot counter: more than the session threads a proxy runs on
/// the machines it is meant for; threads beyond that share shards (still
/// correct, only less spread).
const SHARDS: usize = 8;

/// The shard of the calling thread, handed out round-robin on first use.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|m| {
        let mut i = m.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            m.set(i);
        }
        i
    })
}

/// Keeps each shard on its own cache line (128 bytes: two lines on x86, where
/// the adjacent-line prefetcher pairs them).
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A counter incremented on the request path: relaxed adds to the calling
/// thread's shard, summed when read.
#[derive(Default)]
pub struct Counter {
    shards: [Padded<AtomicU64>; SHARDS],
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.shards[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn incr(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// A fixed-bucket histogram (Prometheus style: counts per upper bound, plus
/// sum and count), sharded like [`Counter`]: one observation touches one
/// cache line of the calling thread's shard.
#[derive(Default)]
pub struct Histogram {
    shards: [Padded<HistogramShard>; SHARDS],
}

#[derive(Default)]
struct HistogramShard {
    buckets: [AtomicU64; 14],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let shard = &self.shards[shard()].0;
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            shard.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        shard
            .sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        shard.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (cumulative bucket counts, sum in seconds, count)
    pub fn snapshot(&self) -> (Vec<u64>, f64, u64) {
        let mut buckets = [0u64; 14];
        let (mut sum_us, mut count) = (0u64, 0u64);
        for s in &self.shards {
            for (total, b) in buckets.iter_mut().zip(&s.0.buckets) {
                *total += b.load(Ordering::Relaxed);
            }
            sum_us += s.0.sum_us.load(Ordering::Relaxed);
            count += s.0.count.load(Ordering::Relaxed);
        }
        let mut acc = 0;
        let cumulative = buckets
            .iter()
            .map(|b| {
                acc += b;
                acc
            })
            .collect();
        (cumulative, sum_us as f64 / 1e6, count)
    }
}

impl Metrics {
    pub fn count_statement(&self, class: StatementClass) {
        self.statements[class_index(class)].incr();
    }

    pub fn observe_latency(&self, class: StatementClass, d: std::time::Duration) {
        self.latency[class_index(class)].observe(d);
    }

    pub fn statements(&self, class: StatementClass) -> u64 {
        self.statements[class_index(class)].get()
    }

    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_sum_across_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (c, h) = (c.clone(), h.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.incr();
                        h.observe(std::time::Duration::from_micros(300));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 12_000);
        let (cum, sum, count) = h.snapshot();
        assert_eq!(count, 12_000);
        assert_eq!(cum[1], 0, "300 µs is above the 250 µs bound");
        assert_eq!(cum[2], 12_000);
        assert!((sum - 3.6).abs() < 1e-9, "{sum}");
    }
}
