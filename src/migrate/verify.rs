//! `tandem verify [--repair]`: proves both sides hold the same rows.
//!
//! Per table: row counts; then both sides are walked in key order, `n` rows
//! at a time, each row reduced to its key and a fingerprint of its
//! normalized values. Chunk checksums (order-independent sums of the
//! fingerprints) are compared; a mismatching chunk gets a merge walk naming
//! missing, extra and different keys, and "different" rows are re-read and
//! compared value by value (floats within tolerance) so rounding noise is
//! not reported. A reservoir sample of `--sample` keys is compared value by
//! value at the end. Memory: two chunks of keys and fingerprints, whatever
//! the table size.
//!
//! Text keys are ordered by their UTF-8 bytes on both engines (collations
//! differ between MySQL and PostgreSQL), which on MySQL costs the index for
//! such keys: a table keyed by a string is scanned once per chunk.

use std::time::Instant;

use crate::value::{row_fingerprint, Row, Value};

use super::catalog::TablePlan;
use super::db::{scalar_i128, Db};
use super::diff::{
    checksum, chunk_end, diff_sorted, first_out_of_order, truncate_after, Fingerprinted,
};
use super::progress::{Progress, TableProgress};
use super::sqltext::{ident, read_types, select_range, Bounds};
use super::write::key_text;
use super::{repair::Repairer, MigrateError, Side, Sides, VERIFY_RUNS_TABLE};

pub use super::differences::{
    confirm_different, rows_by_key, ColumnDifference, RepairStats, RowDifference, TableReport,
    VerifyReport, KEY_BATCH, LISTED,
};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub tables: Option<Vec<String>>,
    pub sample: u64,
    pub chunk_rows: u64,
    pub repair: bool,
    /// The side whose rows are right; `--repair` changes the other one.
    pub authoritative: Side,
    /// With a change stream applying into the new side, wait up to this long
    /// for it to reach the old side's binlog end first (0: do not wait).
    pub stream_wait_ms: u64,
}

/// Rows the change stream has not applied yet would show as differences:
/// waits (bounded) until it has reached the old side's binlog end.
async fn wait_for_stream(sides: &Sides, wait_ms: u64) -> Result<Option<String>, MigrateError> {
    use super::streamsync::StreamWait;
    if wait_ms == 0 {
        return Ok(None);
    }
    let mut old = sides.connect(Side::Old).await?;
    let mut new = sides.connect(Side::New).await?;
    let bound = std::time::Duration::from_millis(wait_ms);
    Ok(
        match super::streamsync::wait_for_stream(&mut old, &mut new, bound).await? {
            StreamWait::NoStream => None,
            StreamWait::Reached { at, waited_ms } => {
                tracing::info!(binlog = %at, waited_ms, "the change stream has applied everything up to the old side's binlog end");
                Some(format!("stream reached {at} after {waited_ms} ms"))
            }
            StreamWait::Behind { want, stream } => {
                tracing::warn!(want = %want, stream = %stream, "the change stream did not reach the old side's binlog end in time: rows it has not applied yet show as differences");
                Some(format!(
                    "stream at {stream}, behind the old side's {want} after {wait_ms} ms"
                ))
            }
        },
    )
}

pub async fn run(sides: &Sides, opts: &VerifyOptions) -> Result<VerifyReport, MigrateError> {
    let stream = wait_for_stream(sides, opts.stream_wait_ms).await?;
    let started = now_micros();
    let plans = super::plan_tables(sides, opts.tables.as_deref()).await?;
    let progress = Progress::new("verify");
    let stop = tokio_util::sync::CancellationToken::new();
    let ticker = progress.spawn_ticker(stop.clone());
    let mut tables = Vec::new();
    for plan in &plans {
        let t0 = Instant::now();
        let tp = progress.table(&plan.old_name, plan.est_rows, 0);
        let mut report = TableReport {
            table: plan.old_name.clone(),
            key: if plan.key.is_empty() {
                "none".into()
            } else {
                format!("{} ({})", plan.key_source, plan.key_names())
            },
            columns_only_old: plan.only_old.clone(),
            columns_only_new: plan.only_new.clone(),
            ..TableReport::default()
        };
        if let Err(e) = verify_table(sides, plan, opts, &tp, &mut report).await {
            report.error = Some(e.to_string());
        }
        report.seconds = t0.elapsed().as_secs_f64();
        progress.finish(&tp, if report.clean() { "clean" } else { "DIFFERENT" });
        tables.push(report);
    }
    stop.cancel();
    let _ = ticker.await;
    let report = VerifyReport {
        clean: tables.iter().all(TableReport::clean),
        all_tables: opts.tables.is_none(),
        repair: opts.repair,
        tables,
        stream,
    };
    if let Err(e) = super::report::record_run(sides, &report, started).await {
        tracing::warn!(error = %e, "could not record this verify run in {VERIFY_RUNS_TABLE}; cutover-check will not see it");
    }
    Ok(report)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

async fn count(db: &mut Db, plan: &TablePlan, side: Side) -> Result<u64, MigrateError> {
    let sql = format!(
        "SELECT COUNT(*) FROM {}",
        ident(db.dialect(), plan.name(side))
    );
    Ok(scalar_i128(db, &sql).await?.unwrap_or(0).max(0) as u64)
}

/// The next `limit` rows after `after`, as (key, fingerprint).
async fn fetch(
    db: &mut Db,
    plan: &TablePlan,
    side: Side,
    after: Option<&[Value]>,
    limit: u64,
) -> Result<Vec<Fingerprinted>, MigrateError> {
    let types = read_types(plan, side);
    let sql = select_range(
        db.dialect(),
        plan,
        side,
        Bounds { after, upto: None },
        Some(limit),
        true,
    );
    let mut cursor = db.cursor(&sql, &types).await?;
    let mut out = Vec::with_capacity(limit.min(100_000) as usize);
    let mut buf = Vec::new();
    while let Some(row) = cursor.next().await? {
        out.push(Fingerprinted {
            key: plan.key_of(&row),
            fp: row_fingerprint(&row, &mut buf),
        });
    }
    Ok(out)
}

async fn verify_table(
    sides: &Sides,
    plan: &TablePlan,
    opts: &VerifyOptions,
    progress: &TableProgress,
    report: &mut TableReport,
) -> Result<(), MigrateError> {
    let mut old = sides.connect(Side::Old).await?;
    let mut new = sides.connect(Side::New).await?;
    let (rows_old, rows_new) = tokio::try_join!(
        count(&mut old, plan, Side::Old),
        count(&mut new, plan, Side::New)
    )?;
    report.rows_old = rows_old;
    report.rows_new = rows_new;
    if plan.key.is_empty() {
        return verify_keyless(&mut old, &mut new, plan, report).await;
    }
    let mut repairer = match opts.repair {
        true => Some(
            Repairer::new(
                plan,
                opts.authoritative,
                if opts.authoritative == Side::Old {
                    &mut new
                } else {
                    &mut old
                },
            )
            .await?,
        ),
        false => None,
    };
    let limit = opts.chunk_rows.max(1);
    let mut sample = Reservoir::new(opts.sample as usize);
    let mut after: Option<Row> = None;
    loop {
        let (mut o, mut n) = tokio::try_join!(
            fetch(&mut old, plan, Side::Old, after.as_deref(), limit),
            fetch(&mut new, plan, Side::New, after.as_deref(), limit)
        )?;
        for (side, rows) in [(Side::Old, &o), (Side::New, &n)] {
            if let Some(i) = first_out_of_order(rows) {
                return Err(MigrateError::Unsupported(format!(
                    "comparing {}: the {} side returned key {} after {} (its ordering of ({}) differs from Tandem's)",
                    plan.old_name,
                    side.label(),
                    key_text(&rows[i].key),
                    key_text(&rows[i - 1].key),
                    plan.key_names()
                )));
            }
        }
        let end = chunk_end(&o, &n, limit as usize).cloned();
        truncate_after(&mut o, end.as_ref());
        truncate_after(&mut n, end.as_ref());
        report.chunks += 1;
        progress.add(o.len() as u64);
        for r in &o {
            sample.offer(&r.key);
        }
        if checksum(&o) != checksum(&n) {
            report.mismatched_chunks += 1;
            let d = diff_sorted(&o, &n);
            let confirmed = confirm_different(&mut old, &mut new, plan, &d.different).await?;
            report.missing += d.missing.len() as u64;
            report.extra += d.extra.len() as u64;
            report.different += confirmed.len() as u64;
            list(
                &mut report.missing_keys,
                d.missing.iter().map(|k| key_text(k)),
            );
            list(&mut report.extra_keys, d.extra.iter().map(|k| key_text(k)));
            list(
                &mut report.different_rows,
                confirmed.iter().map(|(_, diff)| diff.clone()),
            );
            if let Some(r) = repairer.as_mut() {
                let different: Vec<Row> = confirmed.into_iter().map(|(k, _)| k).collect();
                r.repair(&mut old, &mut new, plan, &d.missing, &d.extra, &different)
                    .await?;
            }
        }
        match end {
            None => break,
            Some(end) => after = Some(end),
        }
    }
    let keys = sample.into_keys();
    report.sampled = keys.len() as u64;
    for batch in keys.chunks(KEY_BATCH) {
        report.sample_mismatches += confirm_different(&mut old, &mut new, plan, batch)
            .await?
            .len() as u64;
    }
    if let Some(r) = repairer {
        report.repair = Some(r.into_stats());
        // Rows counted before the repair no longer describe the new state.
        let (a, b) = tokio::try_join!(
            count(&mut old, plan, Side::Old),
            count(&mut new, plan, Side::New)
        )?;
        report.rows_old = a;
        report.rows_new = b;
    }
    Ok(())
}

fn list<T>(into: &mut Vec<T>, items: impl Iterator<Item = T>) {
    let room = LISTED.saturating_sub(into.len());
    into.extend(items.take(room));
}

/// Without a key rows cannot be lined up: compare counts and an
/// order-independent checksum of all rows.
async fn verify_keyless(
    old: &mut Db,
    new: &mut Db,
    plan: &TablePlan,
    report: &mut TableReport,
) -> Result<(), MigrateError> {
    async fn sum(db: &mut Db, plan: &TablePlan, side: Side) -> Result<(u64, u128), MigrateError> {
        let types = read_types(plan, side);
        let sql = select_range(db.dialect(), plan, side, Bounds::default(), None, false);
        let mut cursor = db.cursor(&sql, &types).await?;
        let (mut n, mut total, mut buf) = (0u64, 0u128, Vec::new());
        while let Some(row) = cursor.next().await? {
            n += 1;
            total = total.wrapping_add(row_fingerprint(&row, &mut buf));
        }
        Ok((n, total))
    }
    let (a, b) = tokio::try_join!(sum(old, plan, Side::Old), sum(new, plan, Side::New))?;
    report.chunks = 1;
    report.note = Some("no primary or unique key: compared as a whole-table checksum; differing rows cannot be located or repaired".into());
    if a != b {
        report.mismatched_chunks = 1;
        report.unlocated_difference = true;
    }
    Ok(())
}

/// Uniform random sample of keys seen during the scan (Algorithm R).
struct Reservoir {
    cap: usize,
    seen: u64,
    keys: Vec<Row>,
}

impl Reservoir {
    fn new(cap: usize) -> Self {
        Reservoir {
            cap,
            seen: 0,
            keys: Vec::with_capacity(cap.min(10_000)),
        }
    }

    fn offer(&mut self, key: &Row) {
        self.seen += 1;
        if self.keys.len() < self.cap {
            self.keys.push(key.clone());
        } else if self.cap > 0 {
            let slot = rand::random::<u64>() % self.seen;
            if (slot as usize) < self.cap {
                self.keys[slot as usize] = key.clone();
            }
        }
    }

    fn into_keys(self) -> Vec<Row> {
        self.keys
    }
}
