//! `tandem mismatches`: reads the shadow log; needs no runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use tandem::config::Config;

/// Exit 0 when nothing was logged, 1 when there are mismatches (like
/// `verify`), 2 when the log or the config cannot be read — so a script can
/// tell "differences" from "could not look".
pub fn mismatches(
    config: &std::path::Path,
    log: Option<PathBuf>,
    json: bool,
    limit: Option<usize>,
) -> ExitCode {
    let run = || -> anyhow::Result<tandem::shadow::summary::Summary> {
        let path = match log {
            Some(p) => p,
            None => {
                let (path, warning) = Config::shadow_log_lenient(config)
                    .with_context(|| format!("invalid config {}", config.display()))?;
                if let Some(w) = warning {
                    eprintln!(
                        "warning: {} is not a valid config ({w}); reading only [shadow] log = {}",
                        config.display(),
                        path.display()
                    );
                }
                path
            }
        };
        Ok(tandem::shadow::summary::read_log(&path)?)
    };
    let mut summary = match run() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if json {
        if let Some(n) = limit {
            summary.groups.truncate(n);
        }
        println!("{}", tandem::shadow::summary::render_json(&summary));
    } else {
        print!("{}", tandem::shadow::summary::render_text(&summary, limit));
    }
    if summary.total == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
