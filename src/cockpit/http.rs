//! The cockpit's routes on the admin listener, and the tiny HTTP client the
//! `tandem status` and `tandem ramp` commands use to reach them.
//!
//! - `GET /` the dashboard (one self-contained page, embedded in the binary)
//! - `GET /timeline?since=UNIX` samples newer than `since`, with the ramp
//! - `GET /overview` phase, share, ramp, the latest sample and the slow facts
//! - `GET /ramp`, `POST /ramp/pause`, `POST /ramp/resume`

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DASHBOARD: &str = include_str!("dashboard.html");
/// Comparisons a statement needs before its latencies are listed.
const SLOW_MIN_COMPARED: u64 = 20;

/// (status line, content type, body).
pub type Response = (&'static str, &'static str, String);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the admin endpoint at {addr} (is `tandem serve` running with [admin] listen = \"{addr}\"?)")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("admin endpoint {addr} failed mid-answer")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("admin endpoint {addr} did not answer within {secs}s")]
    Timeout { addr: String, secs: u64 },
    #[error("admin endpoint {addr} sent a malformed answer")]
    Malformed { addr: String },
}

/// Answers a cockpit route, or `None` for routes admin.rs serves itself.
pub async fn handle<S: super::Handles>(
    state: &Arc<S>,
    method: &str,
    target: &str,
) -> Option<Response> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let json = |v: serde_json::Value| ("200 OK", "application/json", v.to_string());
    let snapshot = state.snapshot().load_full();
    let config = &snapshot.config;
    let ramp_cfg = config.reads.ramp.as_ref();
    Some(match (method, path) {
        ("GET", "/") | ("GET", "/dashboard") => {
            ("200 OK", "text/html; charset=utf-8", DASHBOARD.to_string())
        }
        ("GET", "/timeline") => {
            let since = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            json(json!({
                "samples": state.cockpit().timeline.since(since),
                "ramp": state.cockpit().ramp.view(ramp_cfg),
            }))
        }
        ("GET", "/ramp") => json(json!(state.cockpit().ramp.view(ramp_cfg))),
        ("POST", "/ramp/pause") | ("POST", "/ramp/resume") => {
            let Some(cfg) = ramp_cfg else {
                return Some((
                    "409 Conflict",
                    "application/json",
                    json!({"error": "no [reads.ramp] in the running config"}).to_string(),
                ));
            };
            let changed = if path.ends_with("pause") {
                state.cockpit().ramp.pause("paused by the operator")
            } else {
                state.cockpit().ramp.resume(cfg)
            };
            json(json!({ "changed": changed, "ramp": state.cockpit().ramp.view(ramp_cfg) }))
        }
        ("GET", "/overview") => {
            let facts = state.cockpit().facts.get(config).await;
            let sh = state.shadow().stats.outcomes();
            json(json!({
                "phase": config.phase.as_str(),
                "config_version": state.config_version(),
                "uptime_s": state.started().elapsed().as_secs(),
                "read_share_percent": state.cockpit().read_share(config),
                "shadow_sample_percent": config.shadow.sample_percent,
                "shadow_outcomes": sh.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "ramp": state.cockpit().ramp.view(ramp_cfg),
                "latest": state.cockpit().timeline.latest(),
                "slow_on_new": state.cockpit().statements.slowest_on_new(SLOW_MIN_COMPARED, 10),
                "facts": facts,
            }))
        }
        ("POST", _) => (
            "404 Not Found",
            "text/plain",
            "POST /ramp/pause or /ramp/resume\n".into(),
        ),
        _ => return None,
    })
}

/// One request to the admin listener at `addr`; returns (status code, body).
pub async fn request(addr: &str, method: &str, path: &str) -> Result<(u16, String), ClientError> {
    let secs = 10;
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.into(),
                source,
            })?;
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let io = |source| ClientError::Io {
            addr: addr.into(),
            source,
        };
        s.write_all(req.as_bytes()).await.map_err(io)?;
        let mut buf = Vec::new();
        // The server closes after one answer; bound what we keep.
        s.take(64 << 20).read_to_end(&mut buf).await.map_err(io)?;
        Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(secs), work)
        .await
        .map_err(|_| ClientError::Timeout {
            addr: addr.into(),
            secs,
        })??;
    let text = String::from_utf8_lossy(&buf);
    let malformed = || ClientError::Malformed { addr: addr.into() };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(malformed)?;
    Ok((code, body.to_string()))
}
