//! The session handover at a fleet cutover (`tandem cutover`, issue 12
//! step c). A session relayed to MySQL whose write was held at the fence and
//! then released to PostgreSQL used to get error 1290 and had to reconnect.
//! Instead, at a transaction boundary, the session moves to a PostgreSQL
//! connection of its own and the held statement runs there, in the same
//! client connection, with no error.
//!
//! What moves: the current database, autocommit, and the prepared statements
//! the client holds. Their ids were assigned by MariaDB and stay the ids the
//! PostgreSQL side answers to: the PostgreSQL side executes a prepared
//! statement from the text the session kept at COM_STMT_PREPARE (parameters
//! inlined, see `pg_primary::statement`), so nothing has to be prepared on
//! PostgreSQL again; each text is translated once here to make sure it can
//! run there. The MySQL backend connection goes back to the pool.
//!
//! What keeps today's 1290 (the client reconnects): [`blocked`] lists it.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::backend::pg_mysql::PgSession;
use crate::metrics::Metrics;
use crate::route::Target;
use crate::server::AppState;
use crate::session::Session;
use crate::wire::StatusFlags;

/// Why a session cannot be handed over to PostgreSQL, if it cannot.
pub(super) fn blocked(session: &Session, state: &AppState) -> Option<&'static str> {
    let snapshot = state.snapshot.load();
    if !state.fleet.enabled() {
        // A plain phase edit closes sessions at their next boundary.
        return Some("no fleet");
    }
    if crate::proxy::decide::authoritative(snapshot.config.phase) != Target::New {
        return Some("PostgreSQL is not authoritative");
    }
    if state.old.passthrough() {
        return Some("passthrough auth: no PostgreSQL login for this client");
    }
    if session.in_transaction() {
        return Some("a transaction is open on MySQL");
    }
    if session.protocol_changed {
        return Some("the client changed protocol options (COM_SET_OPTION)");
    }
    if !session.sql_prepared.is_empty() {
        return Some("SQL-level prepared statements (PREPARE … FROM) are held on MySQL");
    }
    if session
        .prepared
        .values()
        .any(|p| p.long_data.iter().any(|l| *l))
    {
        return Some("a prepared statement has long data sent to MySQL");
    }
    if session
        .prepared
        .values()
        .any(|p| super::pg_primary::translate_one(&p.sql, state).is_err())
    {
        return Some("a prepared statement cannot run on PostgreSQL");
    }
    None
}

/// A PostgreSQL connection for the session (its routed-read connection if
/// it has a usable one), and the session state adjusted to be served there.
/// `None`: no connection or slot; the caller refuses as before.
pub(super) async fn connect(
    session: &mut Session,
    state: &Arc<AppState>,
) -> Option<(PgSession, OwnedSemaphorePermit)> {
    let snapshot = state.snapshot.load_full();
    let new = snapshot.config.backends.new.as_ref()?;
    let target = new.target().ok()?;
    let reusable = session
        .read_pg
        .take()
        .filter(|c| !c.pg.is_closed() && c.target == target);
    let (pg, permit) = match reusable {
        Some(c) => (c.pg, c._permit),
        None => {
            let permit = tokio::time::timeout(
                new.acquire_timeout(),
                Arc::clone(&state.pg_slots).acquire_owned(),
            )
            .await
            .ok()?
            .ok()?;
            let role = snapshot.config.auth.role_for(&session.user);
            match super::reads::connect_as(&target, new.connect_timeout(), role).await {
                Ok(pg) => (pg, permit),
                Err(e) => {
                    Metrics::incr(&state.metrics.backend_errors);
                    tracing::warn!(error = %e, "handover: cannot reach PostgreSQL");
                    return None;
                }
            }
        }
    };
    // At a boundary: only autocommit carries over (the PostgreSQL side
    // keeps no other server status). LAST_INSERT_ID() starts again at 0:
    // the relay does not track MySQL's.
    if session.database.is_empty() {
        // As a PostgreSQL-served login without a database (`pg_primary`).
        session.database = state.old.target.database.clone().unwrap_or_default();
    }
    let autocommit = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
    session.status &= autocommit;
    session.auto_increment_increment = Some(1);
    session.last_insert_id = 0;
    state
        .fleet
        .handed_over
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some((pg, permit))
}
