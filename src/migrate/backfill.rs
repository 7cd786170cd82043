//! `tandem backfill`: copies every table old → new in key order.
//!
//! Per table, a reader task walks the old side with keyset pagination
//! (`WHERE key > last ORDER BY key LIMIT n`, never OFFSET), turns rows into
//! the target's bulk format and hands them over a small bounded channel to
//! the writer, which applies each chunk in one target transaction:
//! COPY into a staging table, `INSERT … SELECT … ON CONFLICT DO NOTHING`
//! (insert-if-absent: rows dual writes already put there win, see the race
//! rule in [`crate::migrate`]), and the table's checkpoint row (last key,
//! rows copied) in `tandem_backfill_checkpoint`. A killed backfill therefore
//! resumes after the last committed chunk: nothing lost, nothing twice.
//! Memory per table is the channel (a few 256 KiB blocks) plus one row.
//!
//! Each chunk is read inside a consistent snapshot whose binlog coordinates
//! the report gives; on PostgreSQL each chunk transaction takes the table's
//! advisory lock and leaves out keys the change stream tombstoned, so a
//! backfill racing the binlog stream ends identical
//! ([`super::streamsync`] has the argument).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::value::Value;

use super::catalog::TablePlan;
use super::checkpoint::{
    checkpoint_upsert, ensure_checkpoint_table, text_literal, trusted_checkpoint,
};
use super::chunks::{read_chunks, restage, Block};
use super::db::{scalar_i128, Db};
use super::progress::{Progress, RateLimiter, TableProgress};
use super::sqltext::{ident, Dialect};
use super::streamsync::{self, Coordinates};
use super::write::{OnConflict, Writer};
use super::{MigrateError, Side, Sides, CHECKPOINT_TABLE};

#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub tables: Option<Vec<String>>,
    pub chunk_rows: u64,
    /// Total rows per second across tables.
    pub rate: Option<u64>,
    pub parallel: usize,
    pub allow_no_pk: bool,
    /// Forget checkpoints and copy from the start.
    pub restart: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Copied,
    AlreadyDone,
    SkippedNoKey,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct TableOutcome {
    pub table: String,
    /// Rows read from the old side in this run.
    pub rows: u64,
    /// Of those, rows that were not on the new side yet.
    pub inserted: u64,
    pub seconds: f64,
    pub status: Status,
    /// Binlog coordinates of the first and last chunk's snapshot.
    pub snapshots: Option<(Coordinates, Coordinates)>,
    /// Rows left out because the change stream had deleted them.
    pub tombstoned: u64,
}

#[derive(Debug, Default)]
pub struct BackfillReport {
    pub tables: Vec<TableOutcome>,
    /// Pending foreign keys, added once every table is copied.
    pub foreign_keys: super::fk::FkStep,
}

impl BackfillReport {
    pub fn ok(&self) -> bool {
        self.tables
            .iter()
            .all(|t| matches!(t.status, Status::Copied | Status::AlreadyDone))
            && self.foreign_keys.ok()
    }
}

pub async fn run(sides: &Sides, opts: &BackfillOptions) -> Result<BackfillReport, MigrateError> {
    let plans = super::plan_tables(sides, opts.tables.as_deref()).await?;
    let mut problems = Vec::new();
    for p in &plans {
        if !p.only_old.is_empty() {
            problems.push(format!(
                "{}: column(s) {} missing on the new side",
                p.old_name,
                p.only_old.join(", ")
            ));
        }
        if !p.key.is_empty() && !p.unique_on[Side::New as usize] {
            problems.push(format!(
                "{}: the new side has no primary key or unique constraint on ({}), which insert-if-absent needs",
                p.old_name,
                p.key_names()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(MigrateError::Schema(format!(
            "the new side's schema does not match (fix it, e.g. with `tandem schema --apply`):\n  {}",
            problems.join("\n  ")
        )));
    }

    let mut target = sides.connect(Side::New).await?;
    ensure_checkpoint_table(&mut target).await?;
    if opts.restart {
        for p in &plans {
            target
                .execute(&format!(
                    "DELETE FROM {} WHERE table_name = {}",
                    ident(target.dialect(), CHECKPOINT_TABLE),
                    text_literal(target.dialect(), &p.old_name)
                ))
                .await?;
        }
    }
    drop(target);

    let progress = Progress::new("backfill");
    let stop = CancellationToken::new();
    let ticker = progress.spawn_ticker(stop.clone());
    let limiter = opts.rate.map(RateLimiter::new);
    let permits = Arc::new(Semaphore::new(opts.parallel.max(1)));
    let mut tasks = Vec::new();
    let mut report = BackfillReport::default();
    for (n, plan) in plans.into_iter().enumerate() {
        if plan.key.is_empty() && !opts.allow_no_pk {
            tracing::warn!(table = %plan.old_name, "no primary key or NOT NULL unique key: skipped (use --allow-no-pk)");
            report.tables.push(TableOutcome {
                table: plan.old_name.clone(),
                rows: 0,
                inserted: 0,
                seconds: 0.0,
                status: Status::SkippedNoKey,
                snapshots: None,
                tombstoned: 0,
            });
            continue;
        }
        let (sides, opts, progress, limiter, permits) = (
            sides.clone(),
            opts.clone(),
            progress.clone(),
            limiter.clone(),
            permits.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started = Instant::now();
            let name = plan.old_name.clone();
            let result = copy_table(&sides, Arc::new(plan), &opts, &progress, limiter, n).await;
            let seconds = started.elapsed().as_secs_f64();
            match result {
                Ok(done) => TableOutcome {
                    table: name,
                    rows: done.rows,
                    inserted: done.inserted,
                    seconds,
                    status: done.status,
                    snapshots: done.snapshots,
                    tombstoned: done.tombstoned,
                },
                Err(e) => TableOutcome {
                    table: name,
                    rows: 0,
                    inserted: 0,
                    seconds,
                    status: Status::Failed(e.to_string()),
                    snapshots: None,
                    tombstoned: 0,
                },
            }
        }));
    }
    for t in tasks {
        match t.await {
            Ok(outcome) => report.tables.push(outcome),
            Err(e) => return Err(MigrateError::Task(e.to_string())),
        }
    }
    stop.cancel();
    let _ = ticker.await;
    if report.ok() {
        report.foreign_keys = super::fk::add_when_complete(sides).await?;
    }
    Ok(report)
}

/// What copying one table did.
struct Copied {
    rows: u64,
    inserted: u64,
    status: Status,
    snapshots: Option<(Coordinates, Coordinates)>,
    tombstoned: u64,
}

/// What the writer learned while applying chunks.
#[derive(Default)]
struct Written {
    inserted: u64,
    tombstoned: u64,
    first: Option<Coordinates>,
    last: Option<Coordinates>,
}

async fn copy_table(
    sides: &Sides,
    plan: Arc<TablePlan>,
    opts: &BackfillOptions,
    progress: &Progress,
    limiter: Option<Arc<RateLimiter>>,
    tag: usize,
) -> Result<Copied, MigrateError> {
    let mut target = sides.connect(Side::New).await?;
    let checkpoint = trusted_checkpoint(&mut target, sides, &plan).await?;
    if checkpoint.done {
        tracing::info!(table = %plan.old_name, rows = checkpoint.rows_copied, "already copied (checkpoint says done; --restart copies again)");
        return Ok(Copied {
            rows: 0,
            inserted: 0,
            status: Status::AlreadyDone,
            snapshots: None,
            tombstoned: 0,
        });
    }
    let keyless = plan.key.is_empty();
    if joins_stream(target.dialect(), &plan) {
        // Committed before the first snapshot is taken (the argument in
        // `streamsync` depends on that order).
        target
            .execute(&streamsync::create_tomb_sql(
                plan.name(Side::New),
                &pg_key_cols(&plan),
            ))
            .await?;
    }
    // A keyless table is copied in one transaction, so a partial copy never
    // commits and a rerun starts from scratch.
    let resume = if keyless {
        None
    } else {
        checkpoint.last_key.clone()
    };
    let start = resume.clone();
    let writer = Writer::new(&plan, Side::New, target.dialect(), &tag.to_string());
    writer.create_stage(&mut target).await?;
    super::write::prepare_writer_session(&mut target).await;
    let table_progress = progress.table(
        &plan.old_name,
        plan.est_rows,
        if keyless { 0 } else { checkpoint.rows_copied },
    );
    if resume.is_some() {
        tracing::info!(table = %plan.old_name, rows = checkpoint.rows_copied, "resuming after the last checkpoint");
    }

    let (tx, rx) = mpsc::channel(8);
    let reader = {
        let (sides, plan, limiter) = (sides.clone(), plan.clone(), limiter.clone());
        let chunk = if keyless {
            u64::MAX
        } else {
            opts.chunk_rows.max(1)
        };
        let encoder = (target.dialect() == Dialect::Postgres).then(|| writer.clone());
        tokio::spawn(async move {
            if let Err(e) = read_chunks(&sides, &plan, chunk, resume, limiter, encoder, &tx).await {
                let _ = tx.send(Block::Failed(e)).await;
            }
        })
    };
    let result = write_chunks(
        sides,
        &mut target,
        &plan,
        &writer,
        start,
        rx,
        &table_progress,
    )
    .await;
    reader.abort();
    match result {
        Ok(w) => {
            let rows = table_progress.done();
            let inserted = w.inserted;
            let snapshots = w.first.zip(w.last);
            if let Some((first, last)) = &snapshots {
                tracing::info!(table = %plan.old_name, first = %first, last = %last, tombstoned = w.tombstoned, "copied from consistent snapshots at these binlog coordinates");
            }
            progress.finish(
                &table_progress,
                &format!(
                    "({inserted} inserted, {} already present or deleted since)",
                    rows - inserted.min(rows)
                ),
            );
            Ok(Copied {
                rows,
                inserted,
                status: Status::Copied,
                snapshots,
                tombstoned: w.tombstoned,
            })
        }
        Err(e) => {
            progress.finish(&table_progress, "FAILED");
            Err(e)
        }
    }
}

/// How a chunk's COPY data reaches the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// COPY straight into the table, under a savepoint. The cheapest path
    /// (no staging table, no per-row conflict check); a row that is already
    /// there fails the COPY instead of being overwritten.
    Direct,
    /// COPY into the staging table, then `INSERT … ON CONFLICT DO NOTHING`.
    Staged,
}

/// The state of one chunk's COPY while its blocks arrive.
struct ChunkCopy {
    sink: Option<std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>>,
    error: Option<tokio_postgres::Error>,
}

impl ChunkCopy {
    async fn send(&mut self, client: &tokio_postgres::Client, sql: &str, bytes: Bytes) {
        if self.error.is_some() {
            return; // the COPY failed; drain the chunk's remaining blocks
        }
        if self.sink.is_none() {
            match client.copy_in::<_, Bytes>(sql).await {
                Ok(s) => self.sink = Some(Box::pin(s)),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        if let Some(s) = self.sink.as_mut() {
            if let Err(e) = s.send(bytes).await {
                self.error = Some(e);
                self.sink = None;
            }
        }
    }

    /// Ends the COPY: rows copied, or the COPY's error.
    async fn finish(mut self) -> Result<u64, tokio_postgres::Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match self.sink.take() {
            Some(mut s) => s.as_mut().finish().await,
            None => Ok(0),
        }
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Applies chunks as they arrive, one transaction each; returns how many
/// rows were inserted (the rest were already present).
///
/// PostgreSQL chunks go in [`Mode::Direct`] until one hits a row that is
/// already there (a dual write got it first); that chunk is rolled back to
/// its savepoint, read again from the old side and staged, and the rest of
/// the table is staged too.
async fn write_chunks(
    sides: &Sides,
    target: &mut Db,
    plan: &TablePlan,
    writer: &Writer,
    mut after: Option<Vec<Value>>,
    mut rx: mpsc::Receiver<Block>,
    progress: &TableProgress,
) -> Result<Written, MigrateError> {
    let d = target.dialect();
    let joined = joins_stream(d, plan);
    let table = plan.name(Side::New);
    let key_cols = pg_key_cols(plan);
    let mut w = Written::default();
    let mut inserted = 0u64;
    let mut mode = if plan.unique_on[Side::New as usize] {
        Mode::Direct
    } else {
        Mode::Staged
    };
    let mut old: Option<Db> = None;
    loop {
        let mut in_tx = false;
        let mut copy = ChunkCopy {
            sink: None,
            error: None,
        };
        let mut copied_blocks = 0usize;
        let end = loop {
            let Some(block) = rx.recv().await else {
                return Err(MigrateError::Task(
                    "the reader stopped without finishing the table".into(),
                ));
            };
            if !in_tx && !matches!(block, Block::Failed(_)) {
                target.begin().await?;
                if joined {
                    target.execute(&streamsync::chunk_lock_sql(table)).await?;
                    let any = scalar_i128(target, &streamsync::any_tomb_sql(table)).await?;
                    if mode == Mode::Direct && any.unwrap_or(0) > 0 {
                        tracing::info!(table = %plan.old_name, "the change stream deleted rows of this table: staging from here on to leave them out");
                        mode = Mode::Staged;
                    }
                }
                if mode == Mode::Direct && d == Dialect::Postgres {
                    target.execute("SAVEPOINT tandem_chunk").await?;
                }
                in_tx = true;
            }
            match block {
                Block::Copy(bytes) => {
                    let Db::Pg(pg) = &*target else {
                        return Err(MigrateError::Task(
                            "COPY data for a target that is not PostgreSQL".into(),
                        ));
                    };
                    let sql = match mode {
                        Mode::Direct => writer.direct_copy_statement(),
                        Mode::Staged => writer.copy_statement(),
                    };
                    copy.send(&pg.client, &sql, bytes).await;
                    copied_blocks += 1;
                }
                Block::Rows(rows) => {
                    inserted += writer
                        .write_rows(target, plan, &rows, OnConflict::Keep)
                        .await?;
                }
                Block::ChunkEnd {
                    last_key,
                    rows,
                    done,
                    snapshot,
                } => {
                    if w.first.is_none() {
                        w.first = snapshot.clone();
                    }
                    w.last = snapshot.or(w.last.take());
                    break (last_key, rows, done);
                }
                Block::Failed(e) => {
                    drop(copy);
                    if in_tx {
                        let _ = target.execute("ROLLBACK").await;
                    }
                    return Err(e);
                }
            }
        };
        let (last_key, rows, done) = end;
        if copied_blocks > 0 {
            match (mode, copy.finish().await) {
                (Mode::Direct, Ok(n)) => inserted += n,
                (Mode::Direct, Err(e)) if is_unique_violation(&e) => {
                    tracing::info!(table = %plan.old_name, "rows already on the new side (dual writes): staging from here on");
                    target.execute("ROLLBACK TO SAVEPOINT tandem_chunk").await?;
                    mode = Mode::Staged;
                    let Some(upto) = last_key.as_deref() else {
                        return Err(MigrateError::Task(
                            "a keyed chunk without a last key".into(),
                        ));
                    };
                    if old.is_none() {
                        old = Some(sides.connect(Side::Old).await?);
                    }
                    if let (Some(old), Db::Pg(pg)) = (old.as_mut(), &*target) {
                        restage(old, &pg.client, plan, writer, after.as_deref(), upto).await?;
                    }
                    if joined {
                        w.tombstoned += target
                            .execute_count(&streamsync::filter_stage_sql(
                                table,
                                &writer.stage(),
                                &key_cols,
                            ))
                            .await?;
                    }
                    inserted += target
                        .execute_count(&writer.merge_statement(OnConflict::Keep))
                        .await?;
                }
                (Mode::Direct, Err(e)) => return Err(e.into()),
                (Mode::Staged, result) => {
                    result?;
                    if joined {
                        w.tombstoned += target
                            .execute_count(&streamsync::filter_stage_sql(
                                table,
                                &writer.stage(),
                                &key_cols,
                            ))
                            .await?;
                    }
                    inserted += target
                        .execute_count(&writer.merge_statement(OnConflict::Keep))
                        .await?;
                }
            }
        }
        target
            .execute(&checkpoint_upsert(
                d,
                &plan.old_name,
                last_key.as_deref(),
                rows,
                done,
            ))
            .await?;
        if done && joined {
            target.execute(&streamsync::drop_tomb_sql(table)).await?;
        }
        target.execute("COMMIT").await?;
        progress.add(rows);
        if done {
            w.inserted = inserted;
            return Ok(w);
        }
        after = last_key;
    }
}

/// Whether chunks of `plan` take part in the change stream's protocol
/// (PostgreSQL target, keyed table).
fn joins_stream(d: Dialect, plan: &TablePlan) -> bool {
    d == Dialect::Postgres && !plan.key.is_empty()
}

/// The key's column names on the new side, quoted for PostgreSQL.
fn pg_key_cols(plan: &TablePlan) -> Vec<String> {
    plan.key_columns()
        .map(|c| ident(Dialect::Postgres, c.name(Side::New)))
        .collect()
}
