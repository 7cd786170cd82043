//! The fleet's write gate at the front end: before a write (or anything
//! else in a transaction that already wrote) is relayed, the session waits
//! at `fleet::Fleet::admit` and keeps the guard until its transaction ends,
//! so a cutover fence is acknowledged only once no write is in flight.
//! A refused write gets a MySQL error and is not executed; reads pass.

use std::sync::Arc;

use super::command::{classify, reply_error};
use super::relay::RelayError;
use super::write;
use crate::fleet::{Refusal, WriteGuard};
use crate::route::Target;
use crate::server::AppState;
use crate::session::Session;
use crate::sql::classify::StatementClass;
use crate::wire::buf::Reader;
use crate::wire::cmd;
use crate::wire::io::PacketIo;
use crate::wire::packets::ServerError;

/// Whether this command may change data (the text or prepared statement is
/// a write, DDL or savepoint, as the mirror sees it).
fn writes(state: &AppState, session: &Session, payload: &[u8]) -> bool {
    match payload.first() {
        Some(&cmd::QUERY) => {
            let sql = payload.get(1..).unwrap_or_default();
            let c = classify(state, sql);
            write::mirrors(&c, sql)
        }
        Some(&cmd::STMT_EXECUTE) => payload
            .get(1..)
            .and_then(|p| Reader::new(p).u32())
            .and_then(|id| session.prepared.get(&id))
            .is_none_or(|p| {
                matches!(
                    p.classified.class,
                    StatementClass::Write | StatementClass::Ddl
                )
            }),
        _ => false,
    }
}

/// Passes the command through the gate. `Ok(false)`: refused, the client
/// has its error. `hold` keeps the guard while the transaction is open.
pub(super) async fn gate(
    client: &mut PacketIo,
    session: &Session,
    state: &Arc<AppState>,
    payload: &[u8],
    hold: &mut Option<WriteGuard>,
    side: Target,
) -> Result<bool, RelayError> {
    if !state.fleet.enabled() || hold.is_some() || !writes(state, session, payload) {
        return Ok(true);
    }
    match state.fleet.admit(side).await {
        Ok(guard) => {
            *hold = Some(guard);
            Ok(true)
        }
        Err(refusal) => {
            tracing::info!(%refusal, "fleet: write refused");
            let err = ServerError::new(Refusal::CODE, b"HY000", refusal.to_string());
            reply_error(client, 1, &err).await?;
            Ok(false)
        }
    }
}

/// After the command: the guard goes once no transaction is open.
pub(super) fn after(session: &Session, hold: &mut Option<WriteGuard>) {
    if !session.in_transaction() {
        *hold = None;
    }
}
