//! Between commands a session watches its backend connection as well as its
//! client. When the server drops an idle connection (`KILL`, `wait_timeout`,
//! shutdown) the client's connection is closed the same way at once, as it
//! would be without the proxy, so a pool learns of the loss when it happens
//! instead of on its next query.
//!
//! MariaDB 10.11 sends nothing before closing: `KILL` ends with a FIN,
//! `wait_timeout` with a reset (SO_LINGER 0). Whatever the backend does send
//! is passed on verbatim, and a reset is answered with a reset.
//!
//! The watch costs no system call per statement: it waits on the readiness
//! the runtime already tracks for both sockets, and reads the backend only
//! after it reported something.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::wire::io::{PacketIo, PeerState};

/// How long a backend that sent bytes unprompted gets to close its side.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What ended an idle wait.
pub enum Idle {
    /// The client sent something (or closed): read its command.
    Client,
    /// The backend closed its side (`Sent` when it only sent bytes).
    Backend(PeerState),
    Shutdown,
}

enum Woke {
    Client,
    Backend,
    Shutdown,
}

/// Waits until the client has input, the backend went away, or shutdown.
pub async fn wait(
    client: &mut PacketIo,
    backend: &mut PacketIo,
    shutdown: &CancellationToken,
) -> Idle {
    if client.has_buffered_input() {
        return Idle::Client;
    }
    loop {
        let woke = tokio::select! {
            biased;
            _ = client.readable() => Woke::Client,
            _ = backend.readable() => Woke::Backend,
            _ = shutdown.cancelled() => Woke::Shutdown,
        };
        match woke {
            // Read what woke us now (the command's read finds it buffered, so
            // this costs no extra system call); a stale readiness event must
            // not leave the backend unwatched while the read waits.
            Woke::Client => match client.check_idle_peer() {
                PeerState::Idle => continue,
                _ => return Idle::Client,
            },
            Woke::Shutdown => return Idle::Shutdown,
            Woke::Backend => match backend.check_idle_peer() {
                // A stale readiness event: nothing happened.
                PeerState::Idle => continue,
                PeerState::Sent => {
                    return Idle::Backend(backend.wait_peer_close(CLOSE_GRACE).await)
                }
                gone => return Idle::Backend(gone),
            },
        }
    }
}

/// Passes on what the backend sent before it went away, then closes the
/// client's connection as the backend closed ours.
pub async fn close_like_backend(mut client: PacketIo, backend: &mut PacketIo, how: PeerState) {
    tracing::info!(
        how = ?how,
        "the backend closed this idle session's connection; closing the client's the same way"
    );
    backend.relay_buffered(&mut client);
    match how {
        PeerState::Reset => client.abort().await,
        _ => client.shutdown().await,
    }
}
