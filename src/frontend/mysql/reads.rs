//! Reads routed to the new backend in `dual_write` (`[reads] new_percent`):
//! the choice is `proxy::decide`'s, the answer PostgreSQL's in MySQL form.
//! A read that cannot be served there (no free connection, untranslatable,
//! PostgreSQL down) falls back to the old backend: routing never costs the
//! client an error.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::backend::mysql::BackendConn;
use crate::backend::pg_mysql::{ClientContext, PgError, PgSession, Request};
use crate::metrics::Metrics;
use crate::proxy::session::{ReadConn, Session};
use crate::sql::parse::{Ast, Parsed};
use crate::sql::translate;
use crate::state::AppState;
use crate::wire::io::PacketIo;

use super::relay::RelayError;

/// Serves a read that `proxy::decide` routed to the new backend. True when
/// the client has been answered there (with rows, or with PostgreSQL's
/// error); false when the old backend must serve it after all.
pub async fn serve_from_new(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    sql: Text<'_>,
) -> Result<bool, RelayError> {
    match try_new(client, backend, session, state, sql).await {
        Ok(served) => Ok(served),
        Err(PgError::Client(e)) => Err(RelayError::Client(e)),
        // PostgreSQL failed mid-answer: the client got an ERR; the session
        // goes on (the next routed read reconnects).
        Err(e) => {
            tracing::warn!(error = %e, "routed read failed on the new backend");
            session.read_pg = None;
            Ok(true)
        }
    }
}

/// The statement of a routed read: COM_QUERY text, or a prepared statement
/// whose parameters are inlined only once it is known to be routed.
pub enum Text<'a> {
    /// COM_QUERY text, with the AST its classification parsed, if any.
    Raw(&'a [u8], Option<Ast>),
    /// A COM_STMT_EXECUTE of statement `id`.
    Prepared { payload: &'a [u8], id: u32 },
}

async fn try_new(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    sql: Text<'_>,
) -> Result<bool, PgError> {
    // Prepared statements are answered in the binary protocol.
    let binary = matches!(sql, Text::Prepared { .. });
    let snapshot = state.snapshot.load();
    let config = &snapshot.config;
    // Whose privileges a read has on PostgreSQL: the user's mapped role; in
    // passthrough mode an unmapped user's reads stay on MySQL (the new URL
    // account would read what the user may not).
    let role = config.auth.role_for(&session.user).map(str::to_owned);
    if role.is_none() && state.old.passthrough() {
        return Ok(false);
    }
    let schema = state.schema.load_full();
    let (text, ast) = match sql {
        Text::Raw(raw, ast) => (std::str::from_utf8(raw).ok().map(str::to_owned), ast),
        Text::Prepared { payload, id } => {
            let escapes = session.backslash_escapes();
            (inline_execute(session, payload, id, escapes), None)
        }
    };
    let Some(text) = text else {
        Metrics::incr(&state.metrics.reads_fallback);
        return Ok(false);
    };
    // Translated from the AST classification parsed, when it had to.
    let translated = translate::to_postgres_parsed(&mut Parsed::resume(&text, ast), &schema, &[]);
    let pg_sql = match translated {
        Ok(t) if t.statements.len() == 1 => t.statements.into_iter().next().unwrap_or_default(),
        _ => {
            Metrics::incr(&state.metrics.reads_fallback);
            return Ok(false);
        }
    };
    let Some(new) = config.backends.new.as_ref() else {
        return Ok(false);
    };
    let Ok(target) = new.target() else {
        return Ok(false);
    };
    // A reload that moved the new backend moves routed reads with it (reads
    // run outside transactions, so any read is a boundary).
    if session
        .read_pg
        .as_ref()
        .is_none_or(|c| c.pg.is_closed() || c.target != target)
    {
        session.read_pg = None;
        let Ok(permit) = Arc::clone(&state.pg_slots).try_acquire_owned() else {
            Metrics::incr(&state.metrics.reads_fallback);
            return Ok(false);
        };
        match connect_as(&target, new.connect_timeout(), role.as_deref()).await {
            Ok(pg) => {
                session.read_pg = Some(ReadConn {
                    pg,
                    target,
                    _permit: permit,
                })
            }
            Err(e) => {
                tracing::debug!(error = %e, "new backend unavailable for reads");
                Metrics::incr(&state.metrics.reads_fallback);
                return Ok(false);
            }
        }
    }
    let Some(conn) = session.read_pg.as_mut() else {
        return Ok(false);
    };
    // With the change stream (no statement mirror), a session that wrote
    // reads on the new backend only once the stream applied the primary's
    // position as of now, which covers the session's own writes.
    if session.stream_wrote && session.mirror.is_none() {
        // The stream is named after the database it mirrors.
        let stream_id = state.old.target.database.as_deref().unwrap_or_default();
        if !stream_caught_up(backend, &conn.pg, stream_id).await {
            Metrics::incr(&state.metrics.reads_kept_for_consistency);
            return Ok(false);
        }
        session.stream_wrote = false;
    }
    let cx = ClientContext {
        capabilities: session.client_caps,
        mariadb_caps: session.mariadb_caps,
        collation: u16::from(session.collation),
        schema: &session.database,
    };
    let req = Request {
        sql: &pg_sql,
        params: &[],
        binary,
        returning_id: false,
        status: session.status,
    };
    let started = std::time::Instant::now();
    let summary = conn.pg.query_to_mysql(&req, &cx, &*schema, client, 1).await;
    let new_reads = &state.cockpit.new_reads;
    new_reads.record(
        started.elapsed(),
        summary.as_ref().map_or(true, |s| s.error.is_some()),
    );
    summary?;
    client.flush().await?;
    state.metrics.reads_to_new.fetch_add(1, Ordering::Relaxed);
    Ok(true)
}

/// Longest a routed read waits for the change stream to apply its session's
/// writes before the old backend serves it instead.
const STREAM_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether the stream's checkpoint on the new backend covers the primary's
/// GTID position as read now (bounded wait). Unknown positions (a MySQL GTID
/// set, no checkpoint yet, a failed query) count as not covered: the read
/// then stays on the old backend, which is always correct.
async fn stream_caught_up(backend: &mut BackendConn, pg: &PgSession, stream_id: &str) -> bool {
    let wanted = match backend.query_rows("SELECT @@gtid_binlog_pos").await {
        Ok(rows) => rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()),
        Err(_) => None,
    };
    let Some(wanted) = wanted else {
        return false;
    };
    let sql = crate::stream::apply::checkpoint::gtid_sql(
        crate::migrate::sqltext::Dialect::Postgres,
        stream_id,
    );
    let deadline = std::time::Instant::now() + STREAM_WAIT;
    loop {
        let applied = pg.first_text(&sql).await.ok().flatten();
        match applied
            .as_deref()
            .map(|a| crate::stream::gtid_covers(a, &wanted))
        {
            Some(Some(true)) => return true,
            Some(None) => return false,
            _ => {}
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A prepared statement's text with this execute's parameters written in;
/// `None` when they cannot be (malformed, long data).
pub(super) fn inline_execute(
    session: &mut Session,
    payload: &[u8],
    id: u32,
    escapes: bool,
) -> Option<String> {
    let prepared = session.prepared.get_mut(&id)?;
    let values = crate::wire::execute::parse_params(
        payload,
        usize::from(prepared.params),
        &mut prepared.param_types,
        &prepared.long_data,
    )
    .ok()?;
    crate::dualwrite::statement::inline_params(&prepared.sql, &values, escapes).ok()
}

/// A PostgreSQL session running as `role` (`SET ROLE`) when one is mapped.
pub(super) async fn connect_as(
    target: &crate::config::BackendTarget,
    timeout: std::time::Duration,
    role: Option<&str>,
) -> Result<PgSession, PgError> {
    let mut pg = PgSession::connect(target, timeout).await?;
    if let Some(role) = role {
        // The role name was checked to be a plain identifier (config).
        pg.execute_silently(&format!("SET ROLE \"{role}\""))
            .await
            .map_err(PgError::Backend)?;
    }
    Ok(pg)
}
