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
//!
//! This module is the supervisor and the source plumbing both sessions
//! share; one connected run is `serial::session` (which hands over to
//! `parallel::session` when `[mirror] apply_workers` > 1).

mod parallel;
mod serial;

pub use serial::GROUP_LINGER;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::apply::{ApplyError, ApplyOptions, StreamStats};
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
    /// How long the serial session holds a committed group open for more
    /// transactions (`serial::GROUP_LINGER` for the binlog; zero commits at
    /// once).
    pub group_linger: Duration,
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
            match serial::session(
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
        group_linger: GROUP_LINGER,
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
