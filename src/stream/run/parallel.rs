//! The stream session with parallel apply (`[mirror] apply_workers` > 1):
//! the same loop as the serial session (`serial`) — lease heartbeat,
//! retention, cancellation — feeding a [`Pool`] instead of one applier.
//! Refused transactions are isolated inside the workers (they still hold
//! the group's transactions), so no replay from the checkpoint is needed.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    read_items, received, refresh_retention, source_step, OpenSource, Reader, RunConfig, Step,
};
use crate::dualwrite::drift::DriftLog;
use crate::stream::apply::parallel::Pool;
use crate::stream::apply::{Applier, StreamStats};
use crate::stream::lease::Lease;
use crate::stream::{Item, Position};

/// One connected run with parallel apply, from `start`, skipping the
/// transactions in `applied` (committed above the checkpoint before).
#[allow(clippy::too_many_arguments)]
pub(super) async fn session(
    cfg: &RunConfig,
    source: &Arc<dyn OpenSource>,
    stats: &Arc<StreamStats>,
    drift: Option<DriftLog>,
    lease: &mut Lease,
    cancel: &CancellationToken,
    applier: Applier,
    start: Position,
    applied: Vec<Position>,
) -> Result<(), Step> {
    let mut pool = Pool::start(&cfg.target, &cfg.apply, applier, applied, stats, drift).await?;
    let src = source.open(start).await.map_err(source_step)?;
    let (tx, mut rx) = mpsc::channel(cfg.channel_items.max(1));
    let _reader = Reader(tokio::spawn(read_items(src, tx)));
    let mut heartbeat = tokio::time::interval(crate::stream::lease::INTERVAL);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retention = tokio::time::interval(super::RETENTION_EVERY);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                pool.finish().await?;
                return Ok(());
            }
            _ = heartbeat.tick() => {
                lease.heartbeat().await.map_err(|e| Step::Retry(e.into()))?;
                continue;
            }
            r = pool.next_done() => {
                r?;
                continue;
            }
            _ = retention.tick() => {
                refresh_retention(source, stats).await;
                continue;
            }
            item = rx.recv() => item,
        };
        let item = received(item)?;
        match item {
            Item::Begin { gtid, timestamp } => {
                if timestamp != 0 {
                    stats
                        .read_source_ts
                        .store(timestamp, std::sync::atomic::Ordering::Relaxed);
                }
                pool.begin(gtid, timestamp);
            }
            Item::Rows(changes) => pool.rows(changes).await?,
            Item::Commit { position } => {
                stats.read(&position, 0);
                pool.commit(position).await?;
            }
            Item::Ddl { database, sql, .. } if pool.in_txn() => {
                pool.ddl_in_txn(&database, &sql).await?;
            }
            Item::Ddl {
                database,
                sql,
                gtid,
                position,
            } => {
                stats.read(&position, 0);
                pool.ddl(&database, &sql, gtid, position).await?;
            }
            Item::Progress {
                position,
                timestamp,
            } => {
                stats.read(&position, timestamp);
                pool.progress(position, timestamp);
            }
        }
    }
}
