use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use tandem::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Zero-downtime database migration proxy (MySQL protocol)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
        /// Overrides `[log] format`.
        #[arg(long)]
        log_format: Option<LogFormatArg>,
    },
    /// Validate the config and reach both backends.
    Check {
        #[arg(long, short, default_value = "proxy.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The runtime's size comes from the config; a config that doesn't load is
    // reported by the command itself.
    let threads = match &cli.command {
        Command::Serve { config, .. } => Config::load(config)
            .map(|c| c.runtime.worker_threads)
            .unwrap_or(0),
        Command::Check { .. } => 1,
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads as usize);
        }
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, log_format } => serve(config, log_format).await,
            Command::Check { config } => check(config).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("invalid config {}", path.display()))
}

fn init_logging(config: &Config, format: Option<LogFormatArg>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => config.log.format == LogFormat::Json,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(path: PathBuf, format: Option<LogFormatArg>) -> anyhow::Result<ExitCode> {
    let config = load(&path)?;
    init_logging(&config, format);
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
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    let admin = state.snapshot.load().config.admin.listen.clone();
    if !admin.is_empty() {
        match tandem::admin::start(&admin, state.clone(), shutdown.clone()).await {
            Ok(addr) => tracing::info!(%addr, "admin endpoint (/metrics, /status)"),
            // The proxy is more important than its metrics: keep serving.
            Err(e) => tracing::warn!(error = %e, addr = admin, "admin endpoint not started"),
        }
    }
    tandem::reload::spawn(path.clone(), state.clone(), shutdown.clone());
    tandem::server::run(listener, state, shutdown).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or Ctrl-C: stop accepting and drain.
async fn signals(shutdown: CancellationToken) {
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

async fn check(path: PathBuf) -> anyhow::Result<ExitCode> {
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
