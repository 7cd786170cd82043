//! Latency by statement on both sides, from shadow comparisons: each compared
//! read has the authoritative side's time (as relayed to the client) and the
//! other side's (run by the shadow worker). Kept per fingerprint in a bounded
//! map; `slowest_on_new` lists the statements much slower on the new side
//! with the translated text to EXPLAIN there.
//!
//! The two times are not measured identically (the relayed one includes
//! writing the answer to the client), so small ratios mean little; the list
//! is for finding the statements that are several times slower.
//!
//! Lives under `shadow` (which fills it) rather than the cockpit (which
//! reads it), so the shadow layer stays below the cockpit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::LATENCY_BUCKETS;
use crate::proxy::route::Target;

/// Fingerprints tracked; later ones are counted in `untracked`.
pub const MAX_FINGERPRINTS: usize = 1000;
/// Longest translated text kept per fingerprint.
const MAX_TEXT: usize = 2000;

#[derive(Default, Clone)]
struct Buckets {
    counts: [u64; 14],
    over: u64,
    total: u64,
}

impl Buckets {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        match LATENCY_BUCKETS.iter().position(|b| s <= *b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
        self.total += 1;
    }

    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let mut acc = 0;
        let cum: Vec<u64> = self
            .counts
            .iter()
            .map(|c| {
                acc += c;
                acc
            })
            .collect();
        quantile_ms(&cum, self.total, q)
    }
}

#[derive(Default)]
struct Entry {
    old: Buckets,
    new: Buckets,
    translated: Option<String>,
}

#[derive(Default)]
pub struct StatementLatency {
    map: Mutex<HashMap<String, Entry>>,
    pub untracked: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementRow {
    pub fingerprint: String,
    pub compared: u64,
    pub old_p50_ms: Option<f64>,
    pub old_p95_ms: Option<f64>,
    pub new_p50_ms: Option<f64>,
    pub new_p95_ms: Option<f64>,
    /// new p95 / old p95.
    pub ratio: f64,
    /// The PostgreSQL text to EXPLAIN on the new side.
    pub translated: Option<String>,
}

impl StatementLatency {
    /// One compared read: `primary` answered in `primary_took`, the other
    /// side in `other_took`.
    pub fn record(
        &self,
        fingerprint: &str,
        primary: Target,
        primary_took: Duration,
        other_took: Duration,
        translated: Option<&str>,
    ) {
        let (old, new) = match primary {
            Target::Old => (primary_took, other_took),
            Target::New => (other_took, primary_took),
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(fingerprint) && map.len() >= MAX_FINGERPRINTS {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let e = map.entry(fingerprint.to_string()).or_default();
        e.old.observe(old);
        e.new.observe(new);
        if e.translated.is_none() {
            e.translated = translated.map(|t| t.chars().take(MAX_TEXT).collect());
        }
    }

    /// Statements compared at least `min` times, slowest on new (by p95
    /// ratio) first.
    pub fn slowest_on_new(&self, min: u64, limit: usize) -> Vec<StatementRow> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<StatementRow> = map
            .iter()
            .filter(|(_, e)| e.old.total >= min)
            .map(|(f, e)| {
                let (op95, np95) = (e.old.quantile_ms(0.95), e.new.quantile_ms(0.95));
                StatementRow {
                    fingerprint: f.clone(),
                    compared: e.old.total,
                    old_p50_ms: e.old.quantile_ms(0.5),
                    old_p95_ms: op95,
                    new_p50_ms: e.new.quantile_ms(0.5),
                    new_p95_ms: np95,
                    ratio: np95.unwrap_or(0.0) / op95.unwrap_or(0.0).max(0.001),
                    translated: e.translated.clone(),
                }
            })
            .collect();
        rows.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
        rows.truncate(limit);
        rows
    }
}

/// p-quantile (0–1) in milliseconds of a histogram delta (cumulative bucket
/// counts and total), interpolated inside the bucket; `None` when empty.
pub fn quantile_ms(cumulative: &[u64], count: u64, q: f64) -> Option<f64> {
    if count == 0 {
        return None;
    }
    let rank = (q * count as f64).ceil().max(1.0) as u64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for (upper, cum) in LATENCY_BUCKETS.iter().zip(cumulative) {
        if *cum >= rank {
            let inside = (cum - below).max(1) as f64;
            let frac = (rank - below) as f64 / inside;
            return Some((lower + (upper - lower) * frac) * 1000.0);
        }
        lower = *upper;
        below = *cum;
    }
    // Above the last bucket.
    Some(lower * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_statements_on_new_come_first_and_the_map_is_bounded() {
        let s = StatementLatency::default();
        for _ in 0..50 {
            s.record(
                "fast",
                Target::Old,
                Duration::from_millis(2),
                Duration::from_millis(2),
                Some("SELECT 1"),
            );
            s.record(
                "slow",
                Target::Old,
                Duration::from_millis(1),
                Duration::from_millis(40),
                Some("SELECT slow"),
            );
        }
        s.record(
            "rare",
            Target::Old,
            Duration::from_millis(1),
            Duration::from_secs(1),
            None,
        );
        let rows = s.slowest_on_new(10, 10);
        assert_eq!(
            rows.iter()
                .map(|r| r.fingerprint.as_str())
                .collect::<Vec<_>>(),
            ["slow", "fast"]
        );
        assert!(rows[0].ratio > 10.0, "{:?}", rows[0]);
        assert!(rows[0].new_p95_ms.unwrap() > 25.0);
        assert_eq!(rows[0].translated.as_deref(), Some("SELECT slow"));
        // new_primary: the primary's time is the new side's.
        s.record(
            "np",
            Target::New,
            Duration::from_millis(30),
            Duration::from_millis(1),
            None,
        );
        for i in 0..MAX_FINGERPRINTS + 5 {
            s.record(
                &format!("f{i}"),
                Target::Old,
                Duration::from_millis(1),
                Duration::from_millis(1),
                None,
            );
        }
        assert!(s.untracked.load(Ordering::Relaxed) >= 5);
        let rows = s.slowest_on_new(1, 2000);
        let np = rows.iter().find(|r| r.fingerprint == "np").unwrap();
        assert!(np.new_p95_ms > np.old_p95_ms);
    }
}
