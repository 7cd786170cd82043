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
//!
//! `tandem cutover --back` moves PostgreSQL-served sessions to MySQL the
//! same way ([`connect_back`]: a pooled connection logged in with the
//! session's capabilities, charset and database, autocommit set), except
//! sessions holding prepared statements ([`blocked_back`]).
//!
//! The side a session moves to (`Side`, `Moved`) is in `answer.rs`; the
//! translation check is `pg_translate::translate_one`, so this module sits
//! below both answering sides, which call it to move.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use super::answer::Side;
use crate::backend::mysql::{negotiate, BackendConn, SessionOpts};
use crate::backend::pg_mysql::PgSession;
use crate::backend::pool::{Checkout, LeasePermit};
use crate::metrics::Metrics;
use crate::proxy::route::Target;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::packets::OkInfo;
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
        .any(|p| super::pg_translate::translate_one(&p.sql, state).is_err())
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

/// Why a PostgreSQL-served session cannot move back to MySQL (`tandem
/// cutover --back`), if it cannot.
pub(super) fn blocked_back(
    session: &Session,
    pg_in_transaction: bool,
    state: &AppState,
) -> Option<&'static str> {
    if !state.fleet.enabled() {
        return Some("no fleet");
    }
    if crate::proxy::decide::authoritative(state.snapshot.load().config.phase) != Target::Old {
        return Some("MySQL is not authoritative");
    }
    if pg_in_transaction || session.in_transaction() {
        return Some("a transaction is open on PostgreSQL");
    }
    if !session.prepared.is_empty() {
        // Their ids were assigned by this proxy; MariaDB would assign
        // others and the relay passes ids through unchanged.
        return Some("the client holds prepared statements");
    }
    None
}

/// A MySQL connection logged in with the session's options (as at its
/// login), the session state adjusted to be relayed there.
pub(super) async fn connect_back(
    session: &mut Session,
    state: &Arc<AppState>,
) -> Option<(BackendConn, LeasePermit)> {
    let pool = &state.old;
    let mut lease = match pool.lease().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "handover: no MySQL connection");
            return None;
        }
    };
    let max_packet = state.snapshot.load().config.limits.max_packet_bytes;
    let opts = SessionOpts {
        capabilities: session.client_caps.bits(),
        mariadb_caps: session.mariadb_caps,
        collation: session.collation,
        database: (!session.database.is_empty()).then(|| session.database.clone().into_bytes()),
        max_packet: u32::try_from(max_packet).unwrap_or(u32::MAX),
    };
    let wanted = negotiate(opts.clone(), lease.checkout.greeting()).shape();
    pool.note_shape(wanted);
    if matches!(&lease.checkout, Checkout::Idle(c) if c.opts.shape() != wanted) {
        if let Err(e) = pool.replace(&mut lease).await {
            tracing::warn!(error = %e, "handover: no MySQL connection");
            pool.recycle(lease);
            return None;
        }
    }
    let (checkout, permit) = lease.into_parts();
    let login = match checkout {
        Checkout::Idle(mut conn) => conn
            .change_user(&pool.target, opts.collation, opts.database.clone())
            .await
            .map(|ok| (conn, ok)),
        Checkout::Fresh(greeted) => greeted.authenticate(&pool.target, opts).await,
    };
    let (mut backend, ok) = match login {
        Ok(x) => x,
        Err(e) => {
            Metrics::incr(&state.metrics.backend_errors);
            tracing::warn!(error = %e, "handover: MySQL login failed");
            return None;
        }
    };
    let mut status = OkInfo::parse(&ok.payload).map_or(session.status, |o| o.status);
    if !session.autocommit() {
        match backend.execute("SET autocommit = 0").await {
            Ok(ok) => status = ok.status,
            Err(e) => {
                tracing::warn!(error = %e, "handover: cannot turn autocommit off on MySQL");
                return None;
            }
        }
    }
    session.status = status;
    session.auto_increment_increment = None;
    state
        .fleet
        .handed_over
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some((backend, permit))
}

/// The session on PostgreSQL, if it can move there now.
pub(super) async fn to_postgres(session: &mut Session, state: &Arc<AppState>) -> Option<Side> {
    if let Some(why) = blocked(session, state) {
        tracing::info!(why, "fleet: session not handed over to PostgreSQL");
        return None;
    }
    let (pg, permit) = connect(session, state).await?;
    Some(Side::Postgres(pg, permit))
}

/// The session on MySQL, if it can move back there now.
pub(super) async fn to_mysql(
    session: &mut Session,
    pg_in_transaction: bool,
    state: &Arc<AppState>,
) -> Option<Side> {
    if let Some(why) = blocked_back(session, pg_in_transaction, state) {
        tracing::info!(why, "fleet: session not handed over to MySQL");
        return None;
    }
    let (backend, permit) = connect_back(session, state).await?;
    Some(Side::Relay(backend, permit))
}
