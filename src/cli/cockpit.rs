//! The CLI of the operator's cockpit (`tandem status`, `tandem ramp`,
//! `tandem plan`): thin wrappers that ask the running proxy's admin endpoint
//! or the databases and print what `tandem::cockpit` renders. Kept out of
//! main.rs so the command list there stays readable.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::load;
use crate::{PlanFormat, RampAction};

/// `[admin] listen` of the config, or the override.
fn admin_addr(config: &std::path::Path, admin: Option<String>) -> anyhow::Result<String> {
    if let Some(a) = admin {
        return Ok(a);
    }
    let listen = load(config)?.admin.listen;
    anyhow::ensure!(
        !listen.is_empty(),
        "[admin] listen is empty in {}: the proxy has no admin endpoint to ask (pass --admin HOST:PORT)",
        config.display()
    );
    Ok(listen)
}

pub async fn status(
    config: PathBuf,
    admin: Option<String>,
    json: bool,
    watch: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let addr = admin_addr(&config, admin)?;
    loop {
        let (code, body) = tandem::cockpit::http::request(&addr, "GET", "/overview").await?;
        anyhow::ensure!(code == 200, "admin endpoint answered {code}: {body}");
        let overview: serde_json::Value = serde_json::from_str(&body)?;
        if watch.is_some() && !json {
            // Clear the screen and go home, like watch(1).
            print!("\x1b[2J\x1b[H");
        }
        if json {
            println!("{overview}");
        } else {
            print!("{}", tandem::cockpit::status::render(&overview));
        }
        let Some(every) = watch else { break };
        tokio::time::sleep(std::time::Duration::from_secs(every.max(1))).await;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ramp(
    config: PathBuf,
    admin: Option<String>,
    action: RampAction,
) -> anyhow::Result<ExitCode> {
    let addr = admin_addr(&config, admin)?;
    let (method, path) = match action {
        RampAction::Status => ("GET", "/ramp"),
        RampAction::Pause => ("POST", "/ramp/pause"),
        RampAction::Resume => ("POST", "/ramp/resume"),
    };
    let (code, body) = tandem::cockpit::http::request(&addr, method, path).await?;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    if code != 200 {
        eprintln!(
            "error: {}",
            value.get("error").and_then(|e| e.as_str()).unwrap_or(&body)
        );
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", tandem::cockpit::status::render_ramp(&value));
    Ok(ExitCode::SUCCESS)
}

pub async fn plan(
    config: PathBuf,
    format: PlanFormat,
    out: Option<PathBuf>,
    admin: Option<String>,
) -> anyhow::Result<ExitCode> {
    let cfg = load(&config)?;
    let admin = admin.or_else(|| Some(cfg.admin.listen.clone()).filter(|a| !a.is_empty()));
    let plan = tandem::cockpit::plan::build(&cfg, admin.as_deref()).await?;
    let text = match format {
        PlanFormat::Md => tandem::cockpit::plan::render_markdown(&plan),
        PlanFormat::Json => serde_json::to_string_pretty(&plan)?,
    };
    match out {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
