//! Progress per table (rows, rows/s, ETA) and the `--rate` throttle.
//!
//! On a terminal, one line redrawn in place (carriage return) twice a
//! second; otherwise (a log file, CI) a plain log line per table every ten
//! seconds, so logs stay readable.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub struct TableProgress {
    pub name: String,
    est_total: u64,
    /// Rows done before this run (a resumed backfill).
    resumed: u64,
    done: AtomicU64,
    started: Instant,
    finished: AtomicBool,
}

impl TableProgress {
    pub fn add(&self, rows: u64) {
        self.done.fetch_add(rows, Ordering::Relaxed);
    }

    /// Rows done in this run.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.done() as f64 / secs
        } else {
            0.0
        }
    }

    fn describe(&self) -> String {
        let done = self.done() + self.resumed;
        let rate = self.rate();
        let eta = if rate > 0.0 && self.est_total > done {
            format_duration(Duration::from_secs_f64(
                (self.est_total - done) as f64 / rate,
            ))
        } else {
            "?".into()
        };
        format!(
            "{} {}/~{} rows {:.0} rows/s ETA {eta}",
            self.name,
            done,
            self.est_total.max(done),
            rate
        )
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub struct Progress {
    verb: &'static str,
    tty: bool,
    tables: Mutex<Vec<Arc<TableProgress>>>,
}

impl Progress {
    pub fn new(verb: &'static str) -> Arc<Progress> {
        Arc::new(Progress {
            verb,
            tty: std::io::stderr().is_terminal(),
            tables: Mutex::new(Vec::new()),
        })
    }

    pub fn table(&self, name: &str, est_total: u64, resumed: u64) -> Arc<TableProgress> {
        let t = Arc::new(TableProgress {
            name: name.to_string(),
            est_total,
            resumed,
            done: AtomicU64::new(0),
            started: Instant::now(),
            finished: AtomicBool::new(false),
        });
        if let Ok(mut tables) = self.tables.lock() {
            tables.push(t.clone());
        }
        t
    }

    /// Marks a table finished and prints its final line.
    pub fn finish(&self, t: &TableProgress, outcome: &str) {
        t.finished.store(true, Ordering::Relaxed);
        let secs = t.started.elapsed().as_secs_f64();
        let line = format!(
            "{} {}: {} rows in {:.1}s ({:.0} rows/s) {outcome}",
            self.verb,
            t.name,
            t.done(),
            secs,
            t.rate()
        );
        if self.tty {
            eprintln!("\r\x1b[K{line}");
        } else {
            tracing::info!("{line}");
        }
    }

    fn active(&self) -> Vec<Arc<TableProgress>> {
        self.tables
            .lock()
            .map(|t| {
                t.iter()
                    .filter(|t| !t.finished.load(Ordering::Relaxed))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Redraws (terminal) or logs (otherwise) until `stop` is cancelled.
    pub fn spawn_ticker(self: &Arc<Self>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let period = if this.tty {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(10)
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(period) => {}
                }
                let active = this.active();
                if this.tty {
                    let line: Vec<String> = active.iter().map(|t| t.describe()).collect();
                    eprint!("\r\x1b[K{} {}", this.verb, line.join(" | "));
                } else {
                    for t in active {
                        tracing::info!("{} {}", this.verb, t.describe());
                    }
                }
            }
            if this.tty {
                eprint!("\r\x1b[K");
            }
        })
    }
}

/// Caps the total rows per second across all tables (`--rate`).
pub struct RateLimiter {
    rows_per_sec: f64,
    state: tokio::sync::Mutex<(Instant, f64)>,
}

impl RateLimiter {
    pub fn new(rows_per_sec: u64) -> Arc<RateLimiter> {
        Arc::new(RateLimiter {
            rows_per_sec: rows_per_sec.max(1) as f64,
            state: tokio::sync::Mutex::new((Instant::now(), 0.0)),
        })
    }

    /// Waits until `rows` more rows fit in the budget. After a stall the
    /// budget does not pile up beyond one second's worth (no bursts).
    pub async fn acquire(&self, rows: u64) {
        let wait = {
            let mut s = self.state.lock().await;
            let now = Instant::now();
            let due = s.0 + Duration::from_secs_f64(s.1 / self.rows_per_sec);
            if due + Duration::from_secs(1) < now {
                *s = (now - Duration::from_secs(1), 0.0);
            }
            s.1 += rows as f64;
            (s.0 + Duration::from_secs_f64(s.1 / self.rows_per_sec)).saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_limiter_spreads_rows() {
        let limiter = RateLimiter::new(10_000);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire(500).await;
        }
        let elapsed = start.elapsed();
        // 5000 rows at 10000 rows/s.
        assert!(
            elapsed >= Duration::from_millis(450) && elapsed <= Duration::from_millis(900),
            "{elapsed:?}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_secs(59)), "59s");
        assert_eq!(format_duration(Duration::from_secs(61)), "1m01s");
        assert_eq!(format_duration(Duration::from_secs(3700)), "1h01m");
    }
}
