//! The fleet's write gate at the front end: before a write (or anything
//! else in a transaction that already wrote) is relayed, the session waits
//! at `fleet::Fleet::admit` and keeps the guard until its transaction ends,
//! so a cutover fence is acknowledged only once no write is in flight.
//! A refused write gets a MySQL error and is not executed, unless the
//! session is handed over to the side that now answers (`handover`);
//! reads pass.

use std::sync::Arc;

use super::relay::RelayError;
use super::reply::reply_error;
use crate::fleet::{Refusal, WriteGuard};
use crate::proxy::route::Target;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::io::PacketIo;
use crate::wire::packets::ServerError;

/// Passes the command through the gate (`may_write`: the statement's plan
/// says it may change data, see `pipeline::may_write`). `Err`: refused and
/// not answered yet — the caller hands the session over or calls
/// [`refuse`]. `hold` keeps the guard while the transaction is open.
pub(super) async fn gate(
    state: &Arc<AppState>,
    may_write: bool,
    hold: &mut Option<WriteGuard>,
    side: Target,
) -> Result<(), Refusal> {
    if !state.fleet.enabled() || hold.is_some() || !may_write {
        return Ok(());
    }
    let guard = state.fleet.admit(side).await?;
    *hold = Some(guard);
    Ok(())
}

/// Answers a refused write with MySQL error 1290; it was not executed.
pub(super) async fn refuse(client: &mut PacketIo, refusal: &Refusal) -> Result<(), RelayError> {
    tracing::info!(%refusal, "fleet: write refused");
    let err = ServerError::new(Refusal::CODE, b"HY000", refusal.to_string());
    reply_error(client, 1, &err).await
}

/// After the command: the guard goes once no transaction is open.
pub(super) fn after(session: &Session, hold: &mut Option<WriteGuard>) {
    if !session.in_transaction() {
        *hold = None;
    }
}
