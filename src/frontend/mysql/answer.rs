//! What the two answering sides (the MySQL relay in `command`, PostgreSQL
//! in `pg_primary`) have in common, below both of them and below the loop
//! that drives them (`session_loop`): the `Answer` trait, how a loop stops,
//! the side a session moves to (`handover` builds it) and reading the next
//! command.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::pipeline::Incoming;
use crate::backend::mysql::BackendConn;
use crate::backend::pg_mysql::PgSession;
use crate::backend::pool::LeasePermit;
use crate::proxy::route::Target;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::io::{Packet, PacketIo, PeerState};
use crate::wire::packets::ServerError;

/// Why a session's loop stopped, which decides what happens to the side's
/// connection (`Answer::end`).
pub(super) enum Stop {
    /// Between commands: the connection is clean (a MySQL one can be pooled).
    Clean,
    /// Mid-command or protocol state unknown: close the connection.
    Dirty,
    /// The backend closed the idle connection: close the client's alike.
    BackendGone(PeerState),
}

/// What became of one command.
pub(super) enum Step {
    Continue,
    Stop(Stop),
}

/// The side that answers a session: the per-command operations the loop
/// hands execution to.
pub(super) trait Answer: Sized {
    /// Which database this side is (`proxy::decide`'s session side).
    const SIDE: Target;

    /// Waits for the client's next command (or the reason to stop;
    /// `shutdown` is `None` inside a transaction, which shutdown waits
    /// for). A side that watches its backend connection while idle (the
    /// relay) overrides this.
    async fn next(
        &mut self,
        client: &mut PacketIo,
        shutdown: Option<&mut ShutdownWatch>,
    ) -> Result<Packet, Stop> {
        read_command(client, shutdown).await
    }

    /// Carries out one decided command and answers the client.
    async fn dispatch(
        &mut self,
        client: &mut PacketIo,
        session: &mut Session,
        state: &Arc<AppState>,
        request: Incoming<'_>,
    ) -> Step;

    /// A connection on the other side for this session, if it can move there
    /// now (`handover`).
    async fn other_side(&mut self, session: &mut Session, state: &Arc<AppState>) -> Option<Side>;

    /// The session goes on on the other side: give this side's connection
    /// back.
    async fn leave(self, state: &Arc<AppState>, session: &Session);

    /// The session ends.
    async fn end(self, client: PacketIo, session: &Session, state: &Arc<AppState>, how: Stop);
}

/// The side a session moves to, with its connection and slot.
pub(super) enum Side {
    Relay(BackendConn, LeasePermit),
    Postgres(PgSession, OwnedSemaphorePermit),
}

/// A session leaving one command loop for the other (`mod::serve` runs it),
/// with the held command if there is one.
pub(super) struct Moved {
    pub client: PacketIo,
    pub session: Session,
    pub side: Side,
    pub held: Option<Packet>,
}

/// The server's shutdown signal as one session waits on it between
/// commands: registered once for the session's life. (`cancelled()` on the
/// token registers a waiter and removes it again, each under a lock, on
/// every command; that showed in the per-statement profile.)
pub(super) struct ShutdownWatch {
    token: CancellationToken,
    wait: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl ShutdownWatch {
    pub fn new(token: &CancellationToken) -> Self {
        Self {
            token: token.clone(),
            wait: Box::pin(token.clone().cancelled_owned()),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Ready once shutdown has begun (and on every poll after).
    pub fn poll_cancelled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.wait.as_mut().poll(cx)
    }

    pub async fn cancelled(&mut self) {
        poll_fn(|cx| self.poll_cancelled(cx)).await
    }
}

/// Reads the client's next command (both sides, once their own idle watch
/// let it through). A packet over `limits.max_packet_bytes` is answered with
/// MariaDB's 1153 and ends the session, as the server ends it.
pub(super) async fn read_command(
    client: &mut PacketIo,
    shutdown: Option<&mut ShutdownWatch>,
) -> Result<Packet, Stop> {
    let pkt = match shutdown {
        Some(watch) => tokio::select! {
            biased;
            r = client.read_packet() => r,
            _ = watch.cancelled() => return Err(Stop::Clean),
        },
        None => client.read_packet().await,
    };
    match pkt {
        Ok(p) => Ok(p),
        Err(crate::wire::io::WireError::TooLarge { len, max }) => {
            tracing::warn!(len, max, "client packet over limits.max_packet_bytes");
            let err = ServerError::new(
                1153,
                b"08S01",
                "Got a packet bigger than 'max_allowed_packet' bytes",
            );
            let _ = client.write_and_flush(1, &err.encode()).await;
            Err(Stop::Clean)
        }
        Err(e) => {
            if !e.is_disconnect() {
                tracing::info!(error = %e, "client connection failed");
            }
            Err(Stop::Clean)
        }
    }
}
