//! `tandem serve`, `tandem mirror` and `tandem check`: the long-running
//! proxy and change stream, and the config check.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use tandem::config::Config;

use super::{init_logging, load};
use crate::LogFormatArg;

pub async fn serve(path: PathBuf, format: Option<LogFormatArg>) -> anyhow::Result<ExitCode> {
    let mut config = load(&path)?;
    init_logging(&config, format);
    tandem::stream::source::resolve(&mut config).await;
    let (listener, addr) = tandem::server::bind(&config)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let state = tandem::server::AppState::new(config).map_err(anyhow::Error::msg)?;
    {
        // Auto-increment columns and keys, for mirroring with identical ids.
        if let Err(e) = state.refresh_schema().await {
            tracing::warn!(error = %e, "cannot read the schema from the old backend yet; ids are pinned once it is readable");
        }
    }
    tracing::info!(%addr, phase = state.snapshot.load().config.phase.as_str(), "tandem listening");
    let shutdown = start_signals_and_admin(&state).await;
    tandem::reload::spawn(path.clone(), state.clone(), shutdown.clone());
    // Owned background work: the cockpit (ramp, timeline) and the change
    // stream (source = "binlog"), stopped with the proxy after committing
    // what it received.
    let cockpit = tandem::cockpit::start(&state, shutdown.clone(), Default::default());
    let tasks = tokio_util::task::TaskTracker::new();
    if let Err(e) = tandem::stream::source::spawn(&state, &tasks, shutdown.clone(), false).await {
        tracing::error!(error = %e, "the change stream cannot start");
    }
    // Fleet membership ([fleet] enabled): registers, follows the control
    // row, deregisters at shutdown.
    if let Err(e) =
        tandem::fleet::member::spawn(&state, &tasks, shutdown.clone(), addr.to_string()).await
    {
        tracing::error!(error = %e, "fleet membership cannot start");
    }
    tasks.close();
    let threads = state.snapshot.load().config.runtime.worker_threads as usize;
    // One session thread per core unless the config asks for a single event
    // loop (then sessions run on the main runtime, itself single-threaded).
    let workers = match threads {
        1 => None,
        0 => Some(std::thread::available_parallelism().map_or(2, |n| n.get())),
        n => Some(n),
    }
    .map(tandem::workers::Workers::start)
    .transpose()
    .context("cannot start the session threads")?;
    tandem::server::run_on(listener, state, shutdown, workers.as_ref()).await;
    tasks.wait().await;
    cockpit.wait().await;
    drop(workers);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `tandem mirror`: the change stream alone, with the admin endpoint.
pub async fn mirror(path: PathBuf, format: Option<LogFormatArg>) -> anyhow::Result<ExitCode> {
    use tandem::config::StreamSourceKind;
    let mut config = load(&path)?;
    init_logging(&config, format);
    if config.backends.new.is_none() {
        anyhow::bail!("[backends.new] is not configured: the change stream needs a target");
    }
    if config.mirror.source == StreamSourceKind::Statements {
        anyhow::bail!("[mirror] source = \"statements\": `tandem mirror` applies the binlog (or, in new_primary, PostgreSQL's logical slot back to MySQL); set source = \"binlog\" (or \"auto\")");
    }
    tandem::stream::source::resolve(&mut config).await;
    if config.mirror.source != StreamSourceKind::Binlog {
        anyhow::bail!(
            "the old backend's binlog cannot be used (run `tandem check` for what to change)"
        );
    }
    let state = tandem::server::AppState::new(config).map_err(anyhow::Error::msg)?;
    if let Err(e) = state.refresh_schema().await {
        tracing::warn!(error = %e, "cannot read the schema from the old backend yet (needed to translate DDL)");
    }
    let shutdown = start_signals_and_admin(&state).await;
    let tasks = tokio_util::task::TaskTracker::new();
    tandem::stream::source::spawn(&state, &tasks, shutdown.clone(), true)
        .await
        .map_err(anyhow::Error::msg)?;
    tasks.close();
    tasks.wait().await;
    // The direction that ran: the reverse stream in new_primary.
    let snap = if state.snapshot.load().config.phase == tandem::config::Phase::NewPrimary {
        state.reverse.snapshot()
    } else {
        state.stream.snapshot()
    };
    match snap.error {
        Some(e) if snap.state == "stopped" => {
            eprintln!("error: the change stream stopped: {e}");
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// SIGTERM or Ctrl-C: stop accepting and drain.
pub async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        tracing::error!("cannot install the SIGTERM handler");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
    shutdown.cancel();
}

pub async fn check(path: PathBuf) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            println!("config {}: FAILED: {e}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = tandem::check::run(&config).await;
    for line in &report.lines {
        println!("{line}");
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The shutdown token SIGTERM/SIGINT cancel, and the admin endpoint when
/// `[admin] listen` is set (both `serve` and `mirror` run them).
async fn start_signals_and_admin(state: &Arc<tandem::server::AppState>) -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let admin = state.snapshot.load().config.admin.listen.clone();
    if !admin.is_empty() {
        match tandem::admin::start(&admin, state.clone(), shutdown.clone()).await {
            Ok(addr) => tracing::info!(%addr, "admin endpoint (/metrics, /status)"),
            // The process is more important than its metrics: keep running.
            Err(e) => tracing::warn!(error = %e, addr = admin, "admin endpoint not started"),
        }
    }
    shutdown
}
