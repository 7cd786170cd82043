//! `tandem check`: validate the config and reach every backend, one line per
//! finding, so an operator sees all problems at once.

use std::fmt::Write as _;

use crate::backend::{mysql, postgres};
use crate::config::{BackendConfig, BackendKind, Config};

pub struct Report {
    pub lines: Vec<String>,
    pub ok: bool,
}

pub async fn run(config: &Config) -> Report {
    let mut lines = Vec::new();
    let mut ok = true;
    lines.push(format!(
        "config: ok (phase {}, listen {}, {} user(s))",
        config.phase.as_str(),
        config.listen,
        config.users.len()
    ));
    for (name, backend) in [
        ("old", Some(&config.backends.old)),
        ("new", config.backends.new.as_ref()),
    ] {
        let Some(b) = backend else {
            lines.push(format!("backends.{name}: not configured"));
            continue;
        };
        match probe(b, config.limits.max_packet_bytes as usize).await {
            Ok(version) => lines.push(format!("backends.{name}: ok ({version})")),
            Err(e) => {
                ok = false;
                lines.push(format!("backends.{name}: FAILED: {e}"));
            }
        }
    }
    // Whether the change stream can read the old backend's binlog.
    if config.backends.new.is_some()
        || config.mirror.source != crate::config::StreamSourceKind::Statements
    {
        lines.push(format!(
            "mirror.source: {}",
            match config.mirror.source {
                crate::config::StreamSourceKind::Binlog => "binlog",
                crate::config::StreamSourceKind::Statements =>
                    "statements (the binlog findings below are informative)",
                crate::config::StreamSourceKind::Auto =>
                    "auto (binlog when nothing below FAILED, else statements)",
            }
        ));
        for (fine, line) in crate::stream::source::check_lines(config).await {
            ok &= fine;
            lines.push(line);
        }
        // The reverse stream (PostgreSQL → MySQL after the cutover): its
        // findings count when this configuration runs it.
        if config
            .backends
            .new
            .as_ref()
            .is_some_and(|n| n.kind == BackendKind::Postgres)
        {
            let needed = crate::stream::reverse::applies(config);
            for (fine, line) in crate::stream::reverse::setup::check_lines(config, needed).await {
                ok &= fine;
                lines.push(line);
            }
        }
    }
    Report { lines, ok }
}

async fn probe(b: &BackendConfig, max_packet: usize) -> Result<String, String> {
    let target = b.target()?;
    let timeout = b.connect_timeout();
    let where_ = format!("{}@{}", target.user, target.addr());
    match b.kind {
        BackendKind::Mysql => {
            let work = async {
                let greeted = mysql::connect(&target, max_packet)
                    .await
                    .map_err(|e| e.to_string())?;
                let opts = mysql::default_opts(target.database.as_deref());
                let (mut conn, _) = greeted
                    .authenticate(&target, opts)
                    .await
                    .map_err(|e| e.to_string())?;
                let rows = conn
                    .query_rows("SELECT VERSION(), @@max_connections")
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await;
                let mut out = String::new();
                if let Some(r) = rows.first() {
                    let _ = write!(
                        out,
                        "{} at {where_}, max_connections {}",
                        r.first().cloned().flatten().unwrap_or_default(),
                        r.get(1).cloned().flatten().unwrap_or_default()
                    );
                    let max: u32 = r
                        .get(1)
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(u32::MAX);
                    if b.pool_size > max {
                        let _ = write!(
                            out,
                            "; WARNING pool_size {} exceeds the server's max_connections",
                            b.pool_size
                        );
                    }
                }
                Ok::<_, String>(out)
            };
            tokio::time::timeout(timeout * 2, work)
                .await
                .map_err(|_| format!("timed out reaching {where_}"))?
                .map_err(|e| format!("{where_}: {e}"))
        }
        BackendKind::Postgres => postgres::probe(&target, timeout)
            .await
            .map(|v| format!("{v} at {where_}"))
            .map_err(|e| format!("{where_}: {e}")),
    }
}
