//! Tandem's server side of the MySQL protocol: handshake and authentication,
//! the command loop, and the verbatim relay of backend responses. It decodes
//! and encodes; what happens to a statement is `proxy::decide`'s decision,
//! made once per statement in `pipeline`.

mod answer;
mod auth_sha2;
mod command;
mod fence;
mod handover;
mod handshake;
mod idle;
mod load_data;
mod login;
mod passthrough;
mod pg_login;
mod pg_pinned;
mod pg_primary;
mod pg_translate;
mod pg_vars;
mod pipeline;
mod reads;
pub mod relay;
mod reply;
mod request;
mod session_loop;
mod sql_prepared;
mod tls;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::state::AppState;
use crate::wire::io::PacketIo;
use crate::wire::packets::ServerError;

/// Serves one client connection from accept to close.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) {
    let id = state.next_session_id();
    let span = tracing::info_span!("session", id, %peer, user = tracing::field::Empty);
    async move {
        Metrics::incr(&state.metrics.connections_accepted);
        state
            .metrics
            .connections_active
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let snapshot = state.snapshot.load_full();
        let limits = &snapshot.config.limits;
        let mut client = PacketIo::new(stream, limits.max_packet_bytes as usize);
        let timeout = Duration::from_millis(limits.handshake_timeout_ms);
        if crate::proxy::decide::authoritative(snapshot.config.phase)
            == crate::proxy::route::Target::New
        {
            // PostgreSQL answers; the old backend only receives mirrored writes.
            match tokio::time::timeout(timeout, pg_login::accept(&mut client, id, peer, &state))
                .await
            {
                Ok(Some((session, pg, permit))) => {
                    tracing::Span::current().record("user", session.user.as_str());
                    let side = answer::Side::Postgres(pg, permit);
                    serve_sides(client, session, side, &state, &shutdown).await;
                }
                Ok(None) => {}
                Err(_) => tracing::info!("handshake timed out"),
            }
            state
                .metrics
                .connections_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let accepted =
            tokio::time::timeout(timeout, handshake::accept(&mut client, id, peer, &state)).await;
        match accepted {
            Ok(Some((session, backend, permit))) => {
                tracing::Span::current().record("user", session.user.as_str());
                tracing::debug!(
                    backend_connection = backend.connection_id(),
                    "session started"
                );
                let side = answer::Side::Relay(backend, permit);
                serve_sides(client, session, side, &state, &shutdown).await;
            }
            Ok(None) => {}
            Err(_) => {
                tracing::info!("handshake timed out");
                let err = ServerError::new(1043, b"08S01", "Bad handshake");
                let _ = client.write_and_flush(2, &err.encode()).await;
            }
        }
        state
            .metrics
            .connections_active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
    .instrument(span)
    .await
}

/// Runs the session on the side that answers it, and on the other one when
/// a fleet cutover hands it over (`handover`), for as long as it lasts.
async fn serve_sides(
    client: PacketIo,
    session: crate::proxy::session::Session,
    side: answer::Side,
    state: &Arc<AppState>,
    shutdown: &CancellationToken,
) {
    let mut next = Some(answer::Moved {
        client,
        session,
        side,
        held: None,
    });
    while let Some(m) = next.take() {
        let (client, session, held) = (m.client, m.session, m.held);
        next = match m.side {
            answer::Side::Relay(backend, permit) => {
                let relay = command::Relay { backend, permit };
                session_loop::run(client, relay, session, state, shutdown, held).await
            }
            answer::Side::Postgres(pg, permit) => {
                let side = pg_primary::Postgres::new(pg, permit, &session);
                session_loop::run(client, side, session, state, shutdown, held).await
            }
        };
    }
}
