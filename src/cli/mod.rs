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
