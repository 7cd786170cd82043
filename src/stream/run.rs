//! The stream task: lease, then source → applier, until shutdown.
//!
//! One owned task (started by `serve` or `tandem mirror`, stopped through
//! its cancellation token) does, in a loop:
//!
//! 1. take the lease on the target ([`super::lease`]); standbys wait here;
//! 2. connect the applier, read the checkpoint (none: start at the primary's
//!    current position, and say that older history needs `tandem backfill`);
//! 3. open the source there; a reader task feeds items into a bounded
//!    channel, the applier drains it, grouping transactions while more are
//!    already waiting (so an idle stream commits each transaction at once,
//!    a catching-up one commits thousands together);
//! 4. on a lost target or source, roll back the open group, wait (exponential
//!    backoff) and start again at 2 — the checkpoint makes that exactly once;
//!    when the target refuses a group, replay from the checkpoint one
//!    transaction per group to find the one at fault, then stop or skip it
//!    per `[mirror] on_error`.
//!
//! At shutdown the transactions already received are committed, a partly
//! received one is rolled back (it is read again at the next start).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::apply::{Applier, ApplyError, ApplyOptions, OnError, StreamStats};
use super::lease::{Lease, LeaseError};
use super::{Item, Position};
use crate::config::BackendConfig;
use crate::dualwrite::drift::DriftLog;
use crate::sql::schema::Schema;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a source failed, and whether reconnecting from the checkpoint may
/// help (a lost connection) or not (the binlog was purged, no privileges).
#[derive(Debug, Clone)]
pub struct SourceError {
    pub message: String,
    pub retryable: bool,
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A stream of items in commit order (the binlog source).
pub trait ItemSource: Send {
    fn next_item(&mut self) -> BoxFuture<'_, Result<Item, SourceError>>;
}

/// Opens sources: where the primary is now, and a stream from a position.
pub trait OpenSource: Send + Sync {
    fn current_position(&self) -> BoxFuture<'_, Result<Position, SourceError>>;
    fn open(&self, from: Position) -> BoxFuture<'_, Result<Box<dyn ItemSource>, SourceError>>;
    /// Binlog the primary keeps before `file` (files, bytes): how much it
    /// may purge before the stream loses its place. `None` when unknown.
    fn retention<'a>(&'a self, _file: &'a str) -> BoxFuture<'a, Option<(u64, u64)>> {
        Box::pin(async { None })
    }
}

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
const GROUP_LINGER: Duration = Duration::from_millis(5);

/// How often the binlog retention headroom is measured.
pub(super) const RETENTION_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("change stream source: {0}")]
    Source(SourceError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

/// What the stream task needs, from the config.
#[derive(Clone)]
pub struct RunConfig {
    pub target: BackendConfig,
    pub apply: ApplyOptions,
    /// Identifies this process in the lease table.
    pub holder_id: String,
    pub address: String,
    pub max_backoff: Duration,
    /// Items buffered between source and applier.
    pub channel_items: usize,
    pub schema: Arc<Schema>,
}

/// Runs the stream until `cancel` (Ok) or a refused transaction with
/// `on_error = "stop"` (Err). Connection failures are retried forever.
pub async fn run(
    cfg: RunConfig,
    source: Arc<dyn OpenSource>,
    stats: Arc<StreamStats>,
    drift: Option<DriftLog>,
    cancel: CancellationToken,
) -> Result<(), StreamError> {
    let mut backoff = Backoff::new(cfg.max_backoff);
    stats.set_state("starting", None);
    loop {
        let st = Arc::clone(&stats);
        let lease = Lease::acquire(
            &cfg.target,
            &cfg.apply.stream_id,
            &cfg.holder_id,
            &cfg.address,
            &cancel,
            move |h| {
                st.set_state("standby", None);
                st.set_lease_holder(
                    h.map(|h| format!("{} ({}) since {}", h.id, h.address, h.since)),
                );
            },
        )
        .await;
        let mut lease = match lease {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e) => {
                stats.set_state("retrying", Some(e.to_string()));
                tracing::warn!(error = %e, "cannot take the stream lease; retrying");
                if backoff.wait(&cancel).await {
                    return Ok(());
                }
                continue;
            }
        };
        stats.set_lease_holder(Some(format!(
            "{} ({}) (this process)",
            cfg.holder_id, cfg.address
        )));
        let mut single = 0u64;
        let outcome = loop {
            stats.set_state("applying", None);
            match session(
                &cfg,
                &source,
                &stats,
                drift.clone(),
                &mut lease,
                &cancel,
                &mut single,
            )
            .await
            {
                Ok(()) => break Ok(()),
                Err(Step::Isolate(n)) => {
                    tracing::warn!(
                        transactions = n,
                        "the new backend refused a group: replaying it one transaction at a time"
                    );
                    single = n;
                }
                Err(Step::Retry(e)) => {
                    stats
                        .retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    stats.set_state("retrying", Some(e.to_string()));
                    tracing::warn!(error = %e, "change stream interrupted; resuming from the checkpoint");
                    if matches!(e, StreamError::Lease(_)) {
                        break Err(None);
                    }
                    if backoff.wait(&cancel).await {
                        break Ok(());
                    }
                }
                Err(Step::Stop(e)) => break Err(Some(e)),
            }
        };
        match outcome {
            Ok(()) => {
                lease.release().await;
                stats.set_state("stopped", None);
                return Ok(());
            }
            // Lease lost: stand by again.
            Err(None) => continue,
            Err(Some(e)) => {
                tracing::error!(error = %e, "change stream stopped: fix the cause on the new backend (or set [mirror] on_error = \"skip\") and restart");
                stats.set_state("stopped", Some(e.to_string()));
                lease.release().await;
                return Err(e);
            }
        }
    }
}

struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(100),
            max: max.max(Duration::from_millis(100)),
        }
    }

    /// Sleeps; true when cancelled meanwhile.
    async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        tokio::select! {
            _ = cancel.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

pub(super) enum Step {
    /// Start again from the checkpoint after a pause.
    Retry(StreamError),
    /// Start again from the checkpoint at once, committing the next `n`
    /// transactions one by one.
    Isolate(u64),
    Stop(StreamError),
}

impl From<ApplyError> for Step {
    fn from(e: ApplyError) -> Step {
        if e.is_unavailable() {
            Step::Retry(e.into())
        } else {
            Step::Stop(e.into())
        }
    }
}

/// Reads items into the channel until the source fails or the receiver goes.
pub(super) async fn read_items(
    mut src: Box<dyn ItemSource>,
    tx: mpsc::Sender<Result<Item, SourceError>>,
) {
    loop {
        let item = src.next_item().await;
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// The reader task, aborted when the session ends (it owns only the source).
pub(super) struct Reader(pub(super) tokio::task::JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connected run: applier + source, until an error or cancellation.
async fn session(
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
        return super::run_parallel::session(
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
    let mut heartbeat = tokio::time::interval(super::lease::INTERVAL);
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
                    let at = linger.as_ref().map_or(now + GROUP_LINGER, |(at, _)| *at);
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

/// Refreshes the binlog retention headroom `/status` shows (bounded: a slow
/// server only delays the next look).
pub(super) async fn refresh_retention(source: &Arc<dyn OpenSource>, stats: &StreamStats) {
    if let Some(cp) = stats.snapshot().checkpoint {
        let kept = tokio::time::timeout(Duration::from_secs(2), source.retention(&cp.file))
            .await
            .ok()
            .flatten();
        stats.set_retention(kept);
    }
}

/// What the source's channel gave: the next item, or why the session ends
/// (a closed channel is a source that ended: retry).
pub(super) fn received(item: Option<Result<Item, SourceError>>) -> Result<Item, Step> {
    match item {
        Some(Ok(item)) => Ok(item),
        Some(Err(e)) => Err(source_step(e)),
        None => Err(source_step(SourceError {
            message: "the source ended".into(),
            retryable: true,
        })),
    }
}

pub(super) fn source_step(e: SourceError) -> Step {
    if e.retryable {
        Step::Retry(StreamError::Source(e))
    } else {
        Step::Stop(StreamError::Source(e))
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

/// The stream's settings from proxy.toml: target `[backends.new]`, source
/// database the old backend's URL names, `[mirror]` keys.
pub fn config_from(
    config: &crate::config::Config,
    schema: Arc<Schema>,
) -> Result<RunConfig, String> {
    let target = config.backends.new.clone().ok_or_else(|| {
        "[backends.new] is not configured: the change stream needs a target".to_string()
    })?;
    let old = config
        .backends
        .old
        .target()
        .map_err(|e| format!("backends.old.url: {e}"))?;
    let database = old.database.clone().ok_or_else(|| {
        "backends.old.url names no database: the change stream mirrors that database".to_string()
    })?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    Ok(RunConfig {
        target,
        apply: ApplyOptions {
            stream_id: database.clone(),
            database: Some(database),
            no_key: config.mirror.no_key,
            on_error: config.mirror.on_error,
            workers: config.mirror.apply_workers as usize,
            ..ApplyOptions::default()
        },
        holder_id: format!("{host}:{}", std::process::id()),
        address: config.listen.clone(),
        max_backoff: Duration::from_millis(config.mirror.max_backoff_ms),
        channel_items: 4096,
        schema,
    })
}

/// Runs the stream while `wanted()` holds (checked every second: the phase
/// may change on reload), until `cancel`. Returns the error that stopped it
/// (`on_error = "stop"`), after which it is not restarted.
pub async fn supervise(
    cfg: RunConfig,
    source: Arc<dyn OpenSource>,
    stats: Arc<StreamStats>,
    drift: Option<DriftLog>,
    cancel: CancellationToken,
    wanted: impl Fn() -> bool + Send,
) -> Result<(), StreamError> {
    loop {
        while !wanted() {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(super::lease::INTERVAL) => {}
            }
        }
        let child = cancel.child_token();
        let task = run(
            cfg.clone(),
            Arc::clone(&source),
            Arc::clone(&stats),
            drift.clone(),
            child.clone(),
        );
        tokio::pin!(task);
        let result = loop {
            tokio::select! {
                r = &mut task => break r,
                _ = tokio::time::sleep(super::lease::INTERVAL) => {
                    if !wanted() {
                        tracing::info!("the phase no longer mirrors through the change stream: stopping it");
                        child.cancel();
                    }
                }
            }
        };
        result?;
        if cancel.is_cancelled() {
            return Ok(());
        }
    }
}
