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

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use super::answer::ShutdownWatch;
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

/// Waits until the client has input, the backend went away, or shutdown
/// (`None`: not watched).
pub async fn wait(
    client: &mut PacketIo,
    backend: &mut PacketIo,
    mut shutdown: Option<&mut ShutdownWatch>,
) -> Idle {
    if client.has_buffered_input() {
        return Idle::Client;
    }
    // Under TLS, input already decrypted by the session raises no socket
    // readiness: look once before waiting on the socket.
    if client.is_encrypted() && client.check_idle_peer() != PeerState::Idle {
        return Idle::Client;
    }
    loop {
        // Polled in place: the sockets' readiness slots and the session's
        // standing shutdown registration, nothing registered anew per wait.
        let woke = poll_fn(|cx| {
            if client.poll_readable(cx).is_ready() {
                return Poll::Ready(Woke::Client);
            }
            if backend.poll_readable(cx).is_ready() {
                return Poll::Ready(Woke::Backend);
            }
            match shutdown.as_deref_mut().map(|s| s.poll_cancelled(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Woke::Shutdown),
                _ => Poll::Pending,
            }
        })
        .await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::sync::CancellationToken;

    /// A connected pair: (our end as PacketIo, the peer's raw stream).
    async fn pair() -> (PacketIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (PacketIo::new(ours.unwrap(), 1 << 20), theirs.unwrap().0)
    }

    async fn read_all(s: &mut TcpStream) -> (Vec<u8>, Option<std::io::ErrorKind>) {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(0)) => return (got, None),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return (got, Some(e.kind())),
                Err(_) => panic!("the client's connection stayed open"),
            }
        }
    }

    #[tokio::test]
    async fn bytes_then_close_are_passed_on_then_closed() {
        let (mut client, mut app) = pair().await;
        let (mut backend, mut server) = pair().await;
        let token = CancellationToken::new();
        let mut shutdown = ShutdownWatch::new(&token);
        let err = crate::wire::packets::ServerError::new(1927, b"70100", "Connection was killed");
        let mut packet = vec![0, 0, 0, 0];
        packet.extend_from_slice(&err.encode());
        packet[0] = (packet.len() - 4) as u8;
        server.write_all(&packet).await.unwrap();
        drop(server);
        let how = match wait(&mut client, &mut backend, Some(&mut shutdown)).await {
            Idle::Backend(how) => how,
            _ => panic!("expected the backend to be seen closing"),
        };
        assert_eq!(how, PeerState::Closed);
        close_like_backend(client, &mut backend, how).await;
        let (got, error) = read_all(&mut app).await;
        assert_eq!(
            got, packet,
            "the unprompted packet reaches the client verbatim"
        );
        assert_eq!(error, None, "then a normal close");
    }

    #[tokio::test]
    async fn a_reset_backend_resets_the_client() {
        let (mut client, mut app) = pair().await;
        let (mut backend, server) = pair().await;
        server.set_zero_linger().unwrap();
        drop(server);
        let token = CancellationToken::new();
        let mut shutdown = ShutdownWatch::new(&token);
        let how = match wait(&mut client, &mut backend, Some(&mut shutdown)).await {
            Idle::Backend(how) => how,
            _ => panic!("expected the backend to be seen closing"),
        };
        assert_eq!(how, PeerState::Reset);
        close_like_backend(client, &mut backend, how).await;
        let (got, error) = read_all(&mut app).await;
        assert!(got.is_empty());
        assert_eq!(error, Some(std::io::ErrorKind::ConnectionReset));
    }

    #[tokio::test]
    async fn client_input_wins_and_stays_buffered() {
        let (mut client, mut app) = pair().await;
        let (mut backend, _server) = pair().await;
        let token = CancellationToken::new();
        let mut shutdown = ShutdownWatch::new(&token);
        app.write_all(&[1, 0, 0, 0, 0x0e]).await.unwrap();
        assert!(matches!(
            wait(&mut client, &mut backend, Some(&mut shutdown)).await,
            Idle::Client
        ));
        let pkt = client.read_packet().await.unwrap();
        assert_eq!(
            &pkt.payload[..],
            &[0x0e],
            "COM_PING read whole after the wait"
        );
        token.cancel();
        assert!(matches!(
            wait(&mut client, &mut backend, Some(&mut shutdown)).await,
            Idle::Shutdown
        ));
    }

    #[tokio::test]
    async fn shutdown_ends_a_wait_that_watches_it_and_not_one_that_does_not() {
        let (mut client, mut app) = pair().await;
        let (mut backend, _server) = pair().await;
        let token = CancellationToken::new();
        let mut shutdown = ShutdownWatch::new(&token);
        let cancel = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        let woke = tokio::time::timeout(
            Duration::from_secs(5),
            wait(&mut client, &mut backend, Some(&mut shutdown)),
        )
        .await
        .expect("shutdown did not end the wait");
        assert!(matches!(woke, Idle::Shutdown));

        // Inside a transaction (no watch) the wait goes on until the client
        // sends its next command.
        let unwatched = tokio::time::timeout(
            Duration::from_millis(200),
            wait(&mut client, &mut backend, None),
        )
        .await;
        assert!(
            unwatched.is_err(),
            "a wait without the watch ended at shutdown"
        );
        app.write_all(&[1, 0, 0, 0, 0x0e]).await.unwrap();
        assert!(matches!(
            wait(&mut client, &mut backend, None).await,
            Idle::Client
        ));
    }
}
