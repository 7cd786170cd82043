//! The `tandem` commands, one file per group; `main.rs` only parses the
//! arguments and dispatches here. `anyhow` is used only in this module.

pub mod cockpit;
pub mod fleet;
pub mod migrate;
pub mod mismatches;
pub mod serve;

use anyhow::Context;

use tandem::config::{Config, LogFormat};

use crate::LogFormatArg;

pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("invalid config {}", path.display()))
}

pub fn init_logging(config: &Config, format: Option<LogFormatArg>) {
    let directives = std::env::var("TANDEM_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| config.log.level.clone());
    // An empty filter would silence everything; EnvFilter kept errors.
    let directives = match directives.trim().is_empty() {
        true => "error".to_string(),
        false => directives,
    };
    let json = match format {
        Some(LogFormatArg::Json) => true,
        Some(LogFormatArg::Text) => false,
        None => config.log.format == LogFormat::Json,
    };
    // Levels per target ("info", "tandem::stream=debug,warn") go through
    // `Targets`, which decides once per call site. `EnvFilter` also takes a
    // process-wide lock on every span enter and exit, i.e. on every poll of
    // every session (their span is at info): it is kept for directives only
    // it understands (span and field filters).
    match directives.parse::<tracing_subscriber::filter::Targets>() {
        Ok(targets) => install_logging(targets, json),
        Err(_) => {
            let filter = tracing_subscriber::EnvFilter::try_new(&directives)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
            install_logging(filter, json)
        }
    }
}

fn install_logging<F>(filter: F, json: bool)
where
    F: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    use std::io::IsTerminal;
    // Colours only for a person at a terminal, not in a file or the journal.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logging = tracing_subscriber::registry().with(filter);
    match json {
        true => logging.with(fmt.json()).init(),
        false => logging.with(fmt).init(),
    }
}
