//! Admin HTTP listener (loopback by default): `/metrics` in Prometheus text
//! format and `/status` as JSON; the cockpit's dashboard, timeline and ramp
//! routes (`cockpit::http`). A deliberately tiny HTTP/1.1 server: one
//! response per connection, bounded request size; optionally a bearer token
//! (`[admin] token`) and TLS (`[admin] tls`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::{class_name, CLASSES, LATENCY_BUCKETS};
use crate::state::AppState;

pub use crate::admin_client::get;

/// Binds `addr` and serves until `shutdown`. Returns the bound address.
pub async fn start(
    addr: &str,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // Its own certificate cache: [admin] may name other files than [tls].
    let tls = Arc::new(crate::tls::server::ServerTls::default());
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            };
            let state = Arc::clone(&state);
            let tls = Arc::clone(&tls);
            tokio::spawn(async move {
                // None: plain HTTP; Some(None): TLS wanted but no usable
                // certificate, so nothing is served (never plaintext).
                let acceptor = {
                    let snapshot = state.snapshot.load();
                    let (cert, key) = admin_tls_files(&snapshot.config);
                    cert.map(|c| tls.acceptor(Some(c), key))
                };
                match acceptor {
                    None => serve_one(stream, &state).await,
                    Some(None) => {
                        tracing::warn!(
                            "admin request refused: [admin] tls has no loadable certificate"
                        )
                    }
                    Some(Some(a)) => {
                        if let Ok(Ok(s)) =
                            tokio::time::timeout(Duration::from_secs(5), a.accept(stream)).await
                        {
                            serve_one(s, &state).await
                        }
                    }
                }
            });
        }
    });
    Ok(local)
}

/// The certificate the admin endpoint serves when `[admin] tls = true`: its
/// own `cert`/`key`, else the `[tls]` ones.
fn admin_tls_files(
    c: &crate::config::Config,
) -> (Option<&std::path::Path>, Option<&std::path::Path>) {
    if !c.admin.tls {
        return (None, None);
    }
    match (&c.admin.cert, &c.admin.key) {
        (Some(cert), Some(key)) => (Some(cert), Some(key)),
        _ => (c.tls.cert.as_deref(), c.tls.key.as_deref()),
    }
}

/// True when `[admin] token` is unset or the request carries it as
/// `Authorization: Bearer <token>` (compared in constant time).
fn authorized(head: &str, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let given = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.trim().eq_ignore_ascii_case("authorization") {
            return None;
        }
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some(given) = given else { return false };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads one request head, answers it, closes.
async fn serve_one<S>(mut stream: S, state: &Arc<AppState>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    // Read the request head (bounded; we only need the first line and the
    // Authorization header).
    while n < buf.len() {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[n..])).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(k)) => {
                n += k;
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let token = state.snapshot.load().config.admin.token.clone();
    if !authorized(&head, token.as_deref()) {
        let body = "missing or wrong bearer token\n";
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    let cockpit = crate::cockpit::http::handle(state, method, path).await;
    let (status, ctype, body) = match (cockpit, method, path) {
        (Some(answer), _, _) => answer,
        (None, "GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics(state)),
        (None, "GET", "/status") => ("200 OK", "application/json", status(state)),
        (None, "GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /, /metrics, /status, /overview, /timeline or /ramp\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET (or POST /ramp/…) only\n".into(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn metrics(state: &AppState) -> String {
    let m = &state.metrics;
    let mut out = String::with_capacity(4096);
    let mut counter = |name: &str, help: &str, kind: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP tandem_{name} {help}\n# TYPE tandem_{name} {kind}\ntandem_{name} {v}"
        );
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(
        "connections_accepted_total",
        "Client connections accepted.",
        "counter",
        load(&m.connections_accepted),
    );
    if let Some(n) = crate::alloc_count::total() {
        counter(
            "allocations_total",
            "Heap allocations (built with the count-allocs feature).",
            "counter",
            n,
        );
    }
    counter(
        "connections_active",
        "Client connections open.",
        "gauge",
        load(&m.connections_active),
    );
    counter(
        "auth_failures_total",
        "Failed client logins.",
        "counter",
        load(&m.auth_failures),
    );
    counter(
        "backend_errors_total",
        "Backend connection failures.",
        "counter",
        load(&m.backend_errors),
    );
    counter(
        "config_reloads_total",
        "Config reloads applied.",
        "counter",
        load(&m.reloads),
    );
    counter(
        "config_reload_failures_total",
        "Config reloads rejected.",
        "counter",
        load(&m.reload_failures),
    );
    counter(
        "config_version",
        "Version of the running config (1 at start).",
        "gauge",
        state.config_version.load(Ordering::Relaxed),
    );
    counter(
        "statements_unparsed_total",
        "Statements sqlparser could not parse.",
        "counter",
        state.classifier.parse_failures(),
    );
    counter(
        "pool_idle_connections",
        "Idle pooled connections to the old backend.",
        "gauge",
        state.old.idle_count() as u64,
    );
    counter(
        "pool_leased_connections",
        "Old-backend connections leased by sessions.",
        "gauge",
        state.old.leased_count() as u64,
    );
    if let Some(mirror) = state.mirror.load_full() {
        let s = &mirror.stats;
        counter(
            "mirror_queue_depth",
            "Writes queued or being applied on the secondary.",
            "gauge",
            s.queued.load(Ordering::Relaxed).max(0) as u64,
        );
        counter(
            "mirror_applied_total",
            "Operations applied on the secondary.",
            "counter",
            load(&s.applied),
        );
        counter(
            "drift_events_total",
            "Writes the secondary did not apply as the primary did.",
            "counter",
            mirror.drift.recorded(),
        );
        counter(
            "load_data_unmirrored_rows_total",
            "Rows LOAD DATA put on the old backend that the mirror could not carry (see the drift log).",
            "counter",
            load(&s.load_data_rows),
        );
        counter(
            "drift_log_lost_total",
            "Drift events not written because the log writer lagged.",
            "counter",
            mirror.drift.lost.load(Ordering::Relaxed),
        );
    }
    counter(
        "reads_to_new_total",
        "Reads answered by the new backend ([reads] new_percent).",
        "counter",
        load(&m.reads_to_new),
    );
    counter(
        "reads_kept_for_consistency_total",
        "Reads routed to the new backend but kept on the authoritative one (read-your-writes).",
        "counter",
        load(&m.reads_kept_for_consistency),
    );
    counter(
        "reads_fallback_total",
        "Reads routed to the new backend that it could not take (served by the old one).",
        "counter",
        load(&m.reads_fallback),
    );
    let sh = &state.shadow.stats;
    counter(
        "shadow_queue_depth",
        "Sampled reads waiting for a shadow worker.",
        "gauge",
        sh.queued.load(Ordering::Relaxed).max(0) as u64,
    );
    counter(
        "shadow_log_suppressed_total",
        "Mismatches counted but not logged (per-statement log budget).",
        "counter",
        load(&sh.log_suppressed),
    );
    let _ = writeln!(
        out,
        "# HELP tandem_shadow_reads_total Sampled reads by comparison outcome.\n# TYPE tandem_shadow_reads_total counter"
    );
    for (outcome, v) in sh.outcomes() {
        let _ = writeln!(
            out,
            "tandem_shadow_reads_total{{outcome=\"{outcome}\"}} {v}"
        );
    }
    let _ = writeln!(out, "# HELP tandem_statements_total Statements by class.\n# TYPE tandem_statements_total counter");
    for c in CLASSES {
        let _ = writeln!(
            out,
            "tandem_statements_total{{class=\"{}\",backend=\"old\"}} {}",
            class_name(c),
            m.statements(c)
        );
    }
    let _ = writeln!(
        out,
        "# HELP tandem_statement_duration_seconds Statement latency seen by clients.\n# TYPE tandem_statement_duration_seconds histogram"
    );
    for (i, c) in CLASSES.iter().enumerate() {
        let (cum, sum, count) = m.latency[i].snapshot();
        let class = class_name(*c);
        for (b, v) in LATENCY_BUCKETS.iter().zip(&cum) {
            let _ = writeln!(
                out,
                "tandem_statement_duration_seconds_bucket{{class=\"{class}\",le=\"{b}\"}} {v}"
            );
        }
        let _ = writeln!(
            out,
            "tandem_statement_duration_seconds_bucket{{class=\"{class}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "tandem_statement_duration_seconds_sum{{class=\"{class}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "tandem_statement_duration_seconds_count{{class=\"{class}\"}} {count}"
        );
    }
    crate::cockpit::metrics::render(state, &mut out);
    stream_metrics(&state.stream, "stream", &mut out);
    stream_metrics(&state.reverse, "reverse_stream", &mut out);
    out
}

fn status(state: &AppState) -> String {
    let snap = state.snapshot.load();
    let m = &state.metrics;
    let mut statements = serde_json::Map::new();
    for c in CLASSES {
        statements.insert(class_name(c).into(), m.statements(c).into());
    }
    let mirror = state.mirror.load_full().map(|mi| {
        serde_json::json!({
            "queue_depth": mi.stats.queued.load(Ordering::Relaxed).max(0),
            "applied": mi.stats.applied.load(Ordering::Relaxed),
            "lag_last_us": mi.stats.last_lag_us.load(Ordering::Relaxed),
            "lag_max_us": mi.stats.max_lag_us.load(Ordering::Relaxed),
            "drift_events": mi.drift.recorded(),
        })
    });
    serde_json::json!({
        "phase": snap.config.phase.as_str(),
        "config_version": state.config_version.load(Ordering::Relaxed),
        "uptime_s": state.started.elapsed().as_secs(),
        "connections_active": m.connections_active.load(Ordering::Relaxed),
        "connections_accepted": m.connections_accepted.load(Ordering::Relaxed),
        "auth_failures": m.auth_failures.load(Ordering::Relaxed),
        "statements": statements,
        "statements_unparsed": state.classifier.parse_failures(),
        "pool": { "idle": state.old.idle_count(), "leased": state.old.leased_count() },
        "mirror": mirror,
        "fleet": state.fleet.status(),
        "reads": {
            "new_percent": snap.config.reads.new_percent,
            "to_new": m.reads_to_new.load(Ordering::Relaxed),
            "kept_for_consistency": m.reads_kept_for_consistency.load(Ordering::Relaxed),
            "fallback": m.reads_fallback.load(Ordering::Relaxed),
        },
        "shadow": {
            "sample_percent": snap.config.shadow.sample_percent,
            "queue_depth": state.shadow.stats.queued.load(Ordering::Relaxed).max(0),
            "outcomes": state.shadow.stats.outcomes().into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v))).collect::<serde_json::Map<_, _>>(),
            "log_suppressed": state.shadow.stats.log_suppressed.load(Ordering::Relaxed),
            "stream_not_reached": state.shadow.stats.stream_not_reached.load(Ordering::Relaxed),
        },
        "reloads": m.reloads.load(Ordering::Relaxed),
        "reload_failures": m.reload_failures.load(Ordering::Relaxed),
        "stream": stream_status(&state.stream),
        "reverse_stream": reverse_status(&state.reverse),
    })
    .to_string()
}

/// The change stream on `/status`; `null` when none runs here.
fn stream_status(s: &crate::stream::apply::StreamStats) -> serde_json::Value {
    let snap = s.snapshot();
    if snap.state.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "state": snap.state,
        "error": snap.error,
        "lease_holder": snap.lease_holder,
        "checkpoint": snap.checkpoint,
        "read": snap.read,
        "lag_seconds": s.lag_seconds(),
        "lag_bytes": s.lag_bytes(),
        "binlog_retention_files": snap.retention_files,
        "binlog_retention_bytes": snap.retention_bytes,
        "transactions_applied": s.transactions.load(Ordering::Relaxed),
        "rows_applied": s.rows.load(Ordering::Relaxed),
        "events_read": s.events.load(Ordering::Relaxed),
        "transactions_skipped": s.skipped.load(Ordering::Relaxed),
        "retries": s.retries.load(Ordering::Relaxed),
    })
}

/// The reverse stream (PostgreSQL → MySQL) on `/status`: the forward
/// stream's fields, with the slot's retained WAL named as such (an orphaned
/// slot keeps WAL forever).
fn reverse_status(s: &crate::stream::apply::StreamStats) -> serde_json::Value {
    let mut v = stream_status(s);
    if let Some(o) = v.as_object_mut() {
        o.remove("binlog_retention_files");
        let kept = o.remove("binlog_retention_bytes");
        o.insert(
            "slot_retained_wal_bytes".into(),
            kept.unwrap_or(serde_json::Value::Null),
        );
    }
    v
}

/// The change stream's Prometheus lines (only when one runs here), named
/// `tandem_<prefix>_…` (`stream`, `reverse_stream`).
fn stream_metrics(s: &crate::stream::apply::StreamStats, prefix: &str, out: &mut String) {
    let snap = s.snapshot();
    if snap.state.is_empty() {
        return;
    }
    let mut line = |name: &str, help: &str, kind: &str, v: String| {
        let _ = writeln!(
            out,
            "# HELP tandem_{prefix}_{name} {help}\n# TYPE tandem_{prefix}_{name} {kind}\ntandem_{prefix}_{name} {v}"
        );
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    line(
        "lag_seconds",
        "Source commit time of the last transaction read minus that of the last applied.",
        "gauge",
        s.lag_seconds().to_string(),
    );
    if let Some(b) = s.lag_bytes() {
        line(
            "lag_bytes",
            "Binlog bytes read but not yet applied (same file).",
            "gauge",
            b.to_string(),
        );
    }
    line(
        "events_total",
        "Source items read.",
        "counter",
        load(&s.events),
    );
    line(
        "rows_applied_total",
        "Row changes applied to the new backend.",
        "counter",
        load(&s.rows),
    );
    line(
        "transactions_applied_total",
        "Source transactions applied.",
        "counter",
        load(&s.transactions),
    );
    line(
        "target_transactions_total",
        "Target transactions committed (groups).",
        "counter",
        load(&s.groups),
    );
    line(
        "transactions_skipped_total",
        "Source transactions refused by the new backend and skipped (on_error = skip).",
        "counter",
        load(&s.skipped),
    );
    line(
        "retries_total",
        "Restarts from the checkpoint after a lost connection.",
        "counter",
        load(&s.retries),
    );
    line(
        "applying",
        "1 when this process holds the lease and applies.",
        "gauge",
        u8::from(snap.state == "applying").to_string(),
    );
    line(
        "stopped",
        "1 when the stream stopped on an error.",
        "gauge",
        u8::from(snap.state == "stopped" && snap.error.is_some()).to_string(),
    );
    if let (Some(b), "reverse_stream") = (snap.retention_bytes, prefix) {
        line(
            "slot_retained_wal_bytes",
            "WAL the replication slot keeps (an unused slot keeps WAL forever).",
            "gauge",
            b.to_string(),
        );
    }
    if let (Some(f), "stream") = (snap.retention_files, prefix) {
        line(
            "binlog_retention_files",
            "Binlog files the primary keeps before the checkpoint's file.",
            "gauge",
            f.to_string(),
        );
    }
}
