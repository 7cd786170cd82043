//! The one command loop of a client session, whichever side answers it
//! (issue 10: one front-end pipeline). Each turn is a straight line of named
//! steps: wait for the next command, follow the phase, decide the statement
//! (`pipeline`), pass the fleet's write gate (`fence`, where a session may be
//! handed over to the other side, `handover`), let the answering side carry
//! it out, release the gate at the transaction's end, and leave for the
//! other side when it became authoritative.
//!
//! Shutdown waits for a transaction boundary: a session idle outside a
//! transaction ends at once; one inside a transaction keeps being served
//! until it commits or rolls back (within the server's shutdown bound), so a
//! SIGTERM never cuts a client's transaction off between two statements. A
//! command that arrives outside a transaction once shutdown has begun is
//! answered with error 1053 ("Server shutdown in progress"), as MariaDB
//! answers it, and the session ends.
//!
//! What differs per side is behind `answer::Answer` (in `answer.rs`, below
//! both sides and this loop): the MySQL relay
//! (`command::Relay`) and PostgreSQL answering in MySQL form
//! (`pg_primary::Postgres`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::answer::{Answer, Moved, ShutdownWatch, Step, Stop};
use super::pipeline;
use super::write;
use crate::fleet::Refusal;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::io::{Packet, PacketIo};
use crate::wire::packets::ServerError;

/// Serves the session on `side` until it ends (`None`) or moves to the
/// other side (`Some`). `held`: a command already read, to run first.
pub(super) async fn run<A: Answer>(
    mut client: PacketIo,
    mut side: A,
    mut session: Session,
    state: &Arc<AppState>,
    shutdown: &CancellationToken,
    mut held: Option<Packet>,
) -> Option<Moved> {
    let mut fleet_hold = None;
    let mut shutdown = ShutdownWatch::new(shutdown);
    let (stop, moved) = loop {
        let pkt = match held.take() {
            Some(p) => p,
            None => {
                // Inside a transaction shutdown waits for its end.
                let stop_waiting = (!session.in_transaction()).then_some(&mut shutdown);
                match side.next(&mut client, stop_waiting).await {
                    Ok(p) => p,
                    Err(stop) => break (stop, None),
                }
            }
        };
        if shutdown.is_cancelled() && !session.in_transaction() {
            break (shutting_down(&mut client, &pkt).await, None);
        }
        write::follow_phase(&mut session, state);
        let request = pipeline::request(state, &session, &pkt.payload, A::SIDE);
        let may_write = pipeline::may_write(&request);
        let gated = super::fence::gate(state, may_write, &mut fleet_hold, A::SIDE);
        if let Err(refusal) = gated.await {
            // Released to the other side: the held statement runs there, in
            // this session, if it can move (else the client gets 1290).
            if matches!(refusal, Refusal::Moved(_)) {
                if let Some(to) = side.other_side(&mut session, state).await {
                    break (Stop::Clean, Some((to, Some(pkt))));
                }
            }
            if super::fence::refuse(&mut client, &refusal).await.is_err() {
                break (Stop::Dirty, None);
            }
            if !write::stays(&session, state, A::SIDE) {
                break (Stop::Clean, None);
            }
            continue;
        }
        // A write may have waited at the gate (a cutover fence): it is then
        // decided again with the phase and mirror that hold once admitted.
        let request = match may_write && state.fleet.enabled() {
            true => {
                write::follow_phase(&mut session, state);
                pipeline::request(state, &session, &pkt.payload, A::SIDE)
            }
            false => request,
        };
        let step = side
            .dispatch(&mut client, &mut session, state, request)
            .await;
        super::fence::after(&session, &mut fleet_hold);
        if shutdown.is_cancelled() && !session.in_transaction() {
            if let Step::Continue = step {
                break (Stop::Clean, None);
            }
        }
        match step {
            Step::Continue if !write::stays(&session, state, A::SIDE) => {
                if let Some(to) = side.other_side(&mut session, state).await {
                    break (Stop::Clean, Some((to, None)));
                }
                tracing::info!(
                    "phase changed: the other side is authoritative; closing this session"
                );
                break (Stop::Clean, None);
            }
            Step::Continue => {}
            Step::Stop(stop) => break (stop, None),
        }
    };
    match moved {
        Some((to, held)) => {
            side.leave(state, &session).await;
            tracing::info!(from = ?A::SIDE, "fleet: session handed over");
            Some(Moved {
                client,
                session,
                side: to,
                held,
            })
        }
        None => {
            side.end(client, &session, state, stop).await;
            None
        }
    }
}

/// A command read once shutdown has begun, outside a transaction: answered
/// with MariaDB's shutdown error (a COM_QUIT needs no answer).
async fn shutting_down(client: &mut PacketIo, pkt: &Packet) -> Stop {
    if pkt.payload.first() == Some(&crate::wire::cmd::QUIT) {
        return Stop::Clean;
    }
    let err = ServerError::new(1053, b"08S01", "Server shutdown in progress");
    match client
        .write_and_flush(pkt.seq.wrapping_add(1), &err.encode())
        .await
    {
        Ok(_) => Stop::Clean,
        Err(_) => Stop::Dirty,
    }
}
