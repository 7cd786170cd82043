//! One connected run of the stream with one applier: connect it, resume
//! from its checkpoint, open the source there and apply what it reads,
//! grouping transactions (see [`GROUP_LINGER`]), isolating a refused one,
//! until an error or cancellation. With parallel workers configured, or
//! markers of theirs above the checkpoint, the run goes on in
//! `parallel::session` instead.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    read_items, received, refresh_retention, source_step, OpenSource, Reader, RunConfig, Step,
    RETENTION_EVERY,
};
use crate::dualwrite::drift::DriftLog;
use crate::stream::apply::{Applier, ApplyError, OnError, StreamStats};
use crate::stream::lease::Lease;
use crate::stream::{Item, Position};

/// Longest a group stays open while transactions keep arriving: bounds the
/// lag grouping adds under a steady trickle.
const MAX_GROUP_DELAY: Duration = Duration::from_millis(20);

/// How long a group whose last transaction committed waits for the next
/// one before it commits on its own (serial apply). Under a steady load of
/// small transactions (sysbench: ~4 rows each, one every 0.5–2 ms) this
/// turns one target transaction per source transaction — each with its
/// lock, checkpoint update, commit and round trip — into one per few,
/// which is most of what the target and the applier spend per row; an idle
/// stream's lag grows by at most this much.
pub const GROUP_LINGER: Duration = Duration::from_millis(5);

/// One connected run: applier + source, until an error or cancellation.
pub(super) async fn session(
    cfg: &RunConfig,
    source: &Arc<dyn OpenSource>,
    stats: &Arc<StreamStats>,
    drift: Option<DriftLog>,
    lease: &mut Lease,
    cancel: &CancellationToken,
    single: &mut u64,
) -> Result<(), Step> {
    let drift_for_pool = drift.clone();
    let mut applier =
        Applier::connect(&cfg.target, cfg.apply.clone(), Arc::clone(stats), drift).await?;
    applier.set_schema(Arc::clone(&cfg.schema));
    let start = match applier.checkpoint().await? {
        Some(cp) => {
            tracing::info!(file = %cp.position.file, offset = cp.position.offset, gtid = cp.position.gtid.as_deref().unwrap_or(""), "change stream resumes from its checkpoint");
            cp.position
        }
        None => {
            let p = source.current_position().await.map_err(source_step)?;
            tracing::warn!(file = %p.file, offset = p.offset, "no checkpoint on the new backend: the stream starts at the primary's current position; rows written before it must be copied with `tandem backfill` (then `tandem verify`)");
            p
        }
    };
    // Markers left by parallel workers: only the parallel session knows
    // which transactions above the checkpoint to skip.
    let applied = applier.applied_markers().await?;
    if cfg.apply.workers > 1 || !applied.is_empty() {
        return super::parallel::session(
            cfg,
            source,
            stats,
            drift_for_pool,
            lease,
            cancel,
            applier,
            start,
            applied,
        )
        .await;
    }
    let src = source.open(start).await.map_err(source_step)?;
    let (tx, mut rx) = mpsc::channel(cfg.channel_items.max(1));
    let _reader = Reader(tokio::spawn(read_items(src, tx)));
    let mut heartbeat = tokio::time::interval(crate::stream::lease::INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_txn = false;
    let mut group_started: Option<std::time::Instant> = None;
    // The group holds committed transactions and waits (`GROUP_LINGER`)
    // for more: when it commits, and where its last transaction ended.
    let mut linger: Option<(tokio::time::Instant, Position)> = None;
    // The target refused the open transaction (committed alone): skip it at
    // its commit.
    let mut refused: Option<ApplyError> = None;
    let skip = cfg.apply.on_error == OnError::Skip;
    loop {
        let linger_until = linger.as_ref().map(|(at, _)| *at);
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                if in_txn {
                    applier.rollback().await;
                } else {
                    applier.commit().await?;
                }
                return Ok(());
            }
            // Not inside a source transaction: its rows are in the group.
            _ = sleep_until_some(linger_until), if !in_txn && linger_until.is_some() => {
                if let Some((_, position)) = linger.take() {
                    group_started = None;
                    commit_group(&mut applier, position, skip).await?;
                }
                continue;
            }
            _ = heartbeat.tick() => {
                lease.heartbeat().await.map_err(|e| Step::Retry(e.into()))?;
                continue;
            }
            _ = retention.tick() => {
                refresh_retention(source, stats).await;
                continue;
            }
            item = rx.recv() => item,
        };
        let item = match (received(item), linger.take()) {
            (Ok(item), held) => {
                linger = held;
                item
            }
            // The source failed: what it delivered whole is applied first.
            (Err(step), Some((_, at))) if !in_txn => {
                commit_group(&mut applier, at, skip).await?;
                return Err(step);
            }
            (Err(step), _) => return Err(step),
        };
        match item {
            Item::Begin { gtid, timestamp } => {
                in_txn = true;
                if timestamp != 0 {
                    stats
                        .read_source_ts
                        .store(timestamp, std::sync::atomic::Ordering::Relaxed);
                }
                applier.begin(gtid, timestamp);
            }
            Item::Rows(changes) => {
                if refused.is_some() {
                    continue;
                }
                if let Err(e) = applier.rows(&changes).await {
                    let txns = applier.group_txns() + 1;
                    refused = Some(decide(e, txns, *single > 0, skip)?);
                }
            }
            Item::Commit { position } => {
                in_txn = false;
                stats.read(&position, 0);
                if let Some(e) = refused.take() {
                    applier.skip_txn(position, &e).await?;
                    *single = single.saturating_sub(1);
                    continue;
                }
                applier.commit_txn(position.clone());
                let alone = *single > 0;
                let started = *group_started.get_or_insert_with(std::time::Instant::now);
                let now = tokio::time::Instant::now();
                let waited_enough = linger.as_ref().is_some_and(|(at, _)| *at <= now);
                if alone
                    || (cfg.group_linger.is_zero() && rx.is_empty())
                    || applier.group_full()
                    || waited_enough
                    || started.elapsed() >= MAX_GROUP_DELAY
                {
                    linger = None;
                    group_started = None;
                    let txns = applier.group_txns();
                    if let Err(e) = applier.commit().await {
                        let e = decide(e, txns, alone, skip)?;
                        applier.skip_txn(position, &e).await?;
                    }
                    *single = single.saturating_sub(txns.min(*single));
                } else if rx.is_empty() {
                    // Nothing else waiting: commit unless another
                    // transaction arrives within the linger.
                    let at = linger
                        .as_ref()
                        .map_or(now + cfg.group_linger, |(at, _)| *at);
                    linger = Some((at, position));
                }
            }
            Item::Ddl { database, sql, .. } if in_txn => {
                if refused.is_some() {
                    continue;
                }
                if let Err(e) = applier.ddl_in_txn(&database, &sql).await {
                    let txns = applier.group_txns() + 1;
                    refused = Some(decide(e, txns, *single > 0, skip)?);
                }
            }
            Item::Ddl {
                database,
                sql,
                gtid,
                position,
            } => {
                stats.read(&position, 0);
                group_started = None;
                if let Some((_, at)) = linger.take() {
                    commit_group(&mut applier, at, skip).await?;
                }
                if let Err(e) = applier
                    .ddl(&database, &sql, gtid.clone(), position.clone())
                    .await
                {
                    if e.is_unavailable() || !skip {
                        return Err(e.into());
                    }
                    applier.begin(gtid, 0);
                    applier.skip_txn(position, &e).await?;
                }
            }
            Item::Progress {
                position,
                timestamp,
            } => {
                stats.read(&position, timestamp);
                if !in_txn {
                    if let Some((_, at)) = linger.as_mut() {
                        *at = position.clone();
                    }
                    applier.progress(position, timestamp);
                    // Transactions of other databases may arrive without a
                    // pause: the checkpoint still moves every few ms.
                    let started = *group_started.get_or_insert_with(std::time::Instant::now);
                    if rx.is_empty() || started.elapsed() >= MAX_GROUP_DELAY {
                        group_started = None;
                        linger = None;
                        let txns = applier.group_txns();
                        if let Err(e) = applier.commit().await {
                            // The group may hold transactions of ours.
                            let e = decide(e, txns.max(2), *single > 0, skip)?;
                            return Err(Step::Stop(e.into()));
                        }
                    }
                }
            }
        }
    }
}

/// Commits the lingering group (its last transaction ended at `position`):
/// a refusal is handled as at that transaction's commit.
async fn commit_group(applier: &mut Applier, position: Position, skip: bool) -> Result<(), Step> {
    let txns = applier.group_txns();
    if let Err(e) = applier.commit().await {
        let e = decide(e, txns, false, skip)?;
        applier.skip_txn(position, &e).await?;
    }
    Ok(())
}

/// Sleeps until `at`; never returns for `None` (a disabled select branch).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The target failed a group of `txns` source transactions (`alone`: the
/// stream was already applying them one by one): retry later, isolate the
/// failing transaction, stop, or skip it (`Ok`, the error to log).
fn decide(e: ApplyError, txns: u64, alone: bool, skip: bool) -> Result<ApplyError, Step> {
    if e.is_unavailable() {
        return Err(e.into());
    }
    if txns > 1 && !alone {
        return Err(Step::Isolate(txns));
    }
    if skip {
        Ok(e)
    } else {
        Err(e.into())
    }
}
