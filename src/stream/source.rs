//! Wiring of the change stream into the binaries: the binlog source behind
//! the stream task's [`OpenSource`], `[mirror] source = "auto"` resolved
//! against the primary, and the owned stream task of `serve` and
//! `tandem mirror`. The proxy state is reached through [`Handles`]
//! (implemented by `crate::state::AppState`, which sits above the stream).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::binlog::{self, BinlogSource, Severity, SourceFilter, SourceOptions, Start};
use super::run::{self, BoxFuture, ItemSource, OpenSource, SourceError};
use super::{Item, Position};
use crate::backend::mysql;
use crate::config::{BackendTarget, Config, Phase, StreamSourceKind};
use crate::dualwrite::drift::DriftLog;
use crate::snapshot::Snapshot;
use crate::sql::schema::Schema;

/// The pieces of the proxy's state the stream task reads (implemented by
/// `crate::state::AppState`, which sits above the stream).
pub trait Handles: Send + Sync + 'static {
    /// The live configuration.
    fn snapshot(&self) -> &arc_swap::ArcSwap<Snapshot>;
    /// The schema the stream resolves tables against.
    fn schema(&self) -> &arc_swap::ArcSwap<Schema>;
    /// The forward stream's counters.
    fn stream_stats(&self) -> &Arc<super::apply::StreamStats>;
    /// The reverse stream's counters.
    fn reverse_stats(&self) -> &Arc<super::apply::StreamStats>;
}

fn source_error(e: binlog::StreamError) -> SourceError {
    SourceError {
        retryable: e.is_retryable(),
        message: e.to_string(),
    }
}

/// The old backend's binlog, filtered to the database its URL names.
pub struct BinlogOpener {
    target: BackendTarget,
    server_id: u32,
    database: String,
}

impl BinlogOpener {
    pub fn from_config(config: &Config) -> Result<BinlogOpener, String> {
        let target = config
            .backends
            .old
            .target()
            .map_err(|e| format!("backends.old.url: {e}"))?;
        let database = target
            .database
            .clone()
            .ok_or("backends.old.url names no database: the change stream mirrors that database")?;
        Ok(BinlogOpener {
            target,
            server_id: config.mirror.server_id,
            database,
        })
    }
}

async fn login(target: &BackendTarget) -> Result<mysql::BackendConn, SourceError> {
    let fail = |e: crate::backend::BackendError| SourceError {
        retryable: !matches!(e, crate::backend::BackendError::Auth(_)),
        message: e.to_string(),
    };
    let greeted = mysql::connect(target, 16 << 20).await.map_err(fail)?;
    let (conn, _) = greeted
        .authenticate(target, mysql::default_opts(target.database.as_deref()))
        .await
        .map_err(fail)?;
    Ok(conn)
}

struct Items(BinlogSource);

impl ItemSource for Items {
    fn next_item(&mut self) -> BoxFuture<'_, Result<Item, SourceError>> {
        Box::pin(async move { self.0.next_item().await.map_err(source_error) })
    }
}

impl OpenSource for BinlogOpener {
    fn current_position(&self) -> BoxFuture<'_, Result<Position, SourceError>> {
        Box::pin(async move {
            let mut conn = login(&self.target).await?;
            let p = binlog::current_position(&mut conn)
                .await
                .map_err(source_error);
            conn.close().await;
            p
        })
    }

    fn open(&self, from: Position) -> BoxFuture<'_, Result<Box<dyn ItemSource>, SourceError>> {
        Box::pin(async move {
            let mut opts = SourceOptions::new(SourceFilter::databases([self.database.clone()]));
            opts.server_id = self.server_id;
            opts.start = Start::At(from);
            opts.heartbeat = Some(Duration::from_secs(1));
            let src = BinlogSource::connect(&self.target, opts)
                .await
                .map_err(source_error)?;
            Ok(Box::new(Items(src)) as Box<dyn ItemSource>)
        })
    }

    fn retention<'a>(&'a self, file: &'a str) -> BoxFuture<'a, Option<(u64, u64)>> {
        Box::pin(async move {
            let mut conn = login(&self.target).await.ok()?;
            let logs = conn.query_rows("SHOW BINARY LOGS").await;
            conn.close().await;
            let mut bytes = 0;
            for (files, row) in logs.ok()?.into_iter().enumerate() {
                let name = row.first().cloned().flatten().unwrap_or_default();
                if name == file {
                    return Some((files as u64, bytes));
                }
                bytes += row
                    .get(1)
                    .cloned()
                    .flatten()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            // The checkpoint's file is gone: nothing left to purge.
            Some((0, 0))
        })
    }
}

/// `tandem check`'s findings about the binlog, as `(ok, line)`.
pub async fn check_lines(config: &Config) -> Vec<(bool, String)> {
    let target = match config.backends.old.target() {
        Ok(t) => t,
        Err(e) => return vec![(false, format!("binlog: FAILED: backends.old.url: {e}"))],
    };
    let mut conn = match login(&target).await {
        Ok(c) => c,
        Err(e) => return vec![(false, format!("binlog: FAILED: {e}"))],
    };
    let findings = binlog::check(&mut conn, &target.user).await;
    conn.close().await;
    let needed = config.mirror.source == StreamSourceKind::Binlog;
    findings
        .iter()
        .map(|f| (f.severity != Severity::Error || !needed, f.to_string()))
        .collect()
}

/// Resolves `[mirror] source = "auto"`: binlog when the primary allows it,
/// else statements with a warning saying why. Call before building the
/// `AppState` (the statement mirror depends on it).
pub async fn resolve(config: &mut Config) {
    if config.mirror.source != StreamSourceKind::Auto {
        return;
    }
    if config.backends.new.is_none() {
        config.mirror.source = StreamSourceKind::Statements;
        return;
    }
    let blocking: Vec<String> = match config.backends.old.target() {
        Err(e) => vec![e],
        Ok(target) => match login(&target).await {
            Err(e) => vec![format!("cannot reach the old backend: {e}")],
            Ok(mut conn) => {
                let f = binlog::check(&mut conn, &target.user).await;
                conn.close().await;
                f.into_iter()
                    .filter(|f| f.severity == Severity::Error)
                    .map(|f| f.to_string())
                    .collect()
            }
        },
    };
    let mut blocking = blocking;
    if blocking.is_empty() && config.phase == Phase::NewPrimary {
        // Started after the cutover: the reverse stream must work, or the
        // statement mirror keeps the way back open instead.
        let mut probe = config.clone();
        probe.mirror.source = StreamSourceKind::Binlog;
        if super::reverse::applies(&probe) {
            blocking.extend(
                super::reverse::setup::check_lines(&probe, true)
                    .await
                    .into_iter()
                    .filter(|(ok, _)| !ok)
                    .map(|(_, line)| line),
            );
        }
    }
    if blocking.is_empty() {
        tracing::info!(
            "[mirror] source = \"auto\": the primary's binlog is usable, mirroring from it"
        );
        config.mirror.source = StreamSourceKind::Binlog;
    } else {
        tracing::warn!(why = %blocking.join("; "), "[mirror] source = \"auto\": the binlog cannot be used, mirroring statements instead (see `tandem check`)");
        config.mirror.source = StreamSourceKind::Statements;
    }
}

/// Starts the streams as tasks of `tracker` when the config mirrors from
/// the logs: the forward stream applies while the phase is `dual_write`, the
/// reverse stream (PostgreSQL → MySQL) while it is `new_primary`; each stops
/// (after committing what it received) when `shutdown` fires. `always`
/// (`tandem mirror`): the direction of the configured phase runs whatever
/// the phase later says.
pub async fn spawn<S: Handles>(
    state: &Arc<S>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    always: bool,
) -> Result<bool, String> {
    let config = state.snapshot().load_full().config.clone();
    if config.mirror.source != StreamSourceKind::Binlog || config.backends.new.is_none() {
        return Ok(false);
    }
    let reverse_phase = config.phase == Phase::NewPrimary;
    if always && reverse_phase && !super::reverse::applies(&config) {
        return Err("in new_primary `tandem mirror` runs the reverse stream (PostgreSQL logical decoding → MySQL): [backends.new] must be PostgreSQL".into());
    }
    let schema = state.schema().load_full();
    let drift = DriftLog::start(config.mirror.drift_log.clone());
    if !(always && reverse_phase) {
        let opener = Arc::new(BinlogOpener::from_config(&config)?);
        let cfg = run::config_from(&config, Arc::clone(&schema))?;
        let stats = Arc::clone(state.stream_stats());
        let watch = Arc::clone(state);
        let drift = drift.clone();
        let shutdown = shutdown.clone();
        let wanted = move || always || watch.snapshot().load().config.phase == Phase::DualWrite;
        tracker.spawn(async move {
            if let Err(e) = run::supervise(cfg, opener, stats, Some(drift), shutdown, wanted).await
            {
                tracing::error!(error = %e, "the change stream stopped");
            }
        });
        if always {
            return Ok(true);
        }
    }
    if super::reverse::applies(&config) {
        let stats = Arc::clone(state.reverse_stats());
        let opener = Arc::new(
            super::reverse::ReverseOpener::from_config(&config, Arc::clone(&stats))?
                .with_drift(drift.clone()),
        );
        let cfg = super::reverse::run_config(&config, schema)?;
        let watch = Arc::clone(state);
        let wanted = move || always || watch.snapshot().load().config.phase == Phase::NewPrimary;
        tracker.spawn(async move {
            if let Err(e) = run::supervise(cfg, opener, stats, Some(drift), shutdown, wanted).await
            {
                tracing::error!(error = %e, "the reverse stream (PostgreSQL → MySQL) stopped");
            }
        });
    }
    Ok(true)
}
