//! Sends one command to the backend and copies its response to the client
//! packet by packet, unchanged: column definitions, rows, OK/ERR/EOF with their
//! flags and warnings all reach the client exactly as the server wrote them.
//! A LOAD DATA LOCAL file request is passed on the same way, and the file the
//! client then streams goes to the backend packet by packet.

use crate::shadow::capture::Capture;
use crate::wire::io::{PacketIo, WireError};
use crate::wire::response::{Expect, ResponseWalker, Step};
use crate::wire::MAX_PAYLOAD;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The backend failed or sent something unparsable: the connection (and
    /// the client's session) cannot continue.
    #[error("backend: {0}")]
    Backend(WireError),
    /// The client went away mid-response: the backend connection holds an
    /// unread remainder and must not be reused.
    #[error("client: {0}")]
    Client(WireError),
}

/// Writes `payload` as a command (sequence 0) and relays the whole response.
pub async fn command(
    backend: &mut PacketIo,
    client: &mut PacketIo,
    payload: &[u8],
    expect: Expect,
    deprecate_eof: bool,
) -> Result<ResponseWalker, RelayError> {
    let walker =
        relay_response(backend, client, payload, expect, deprecate_eof, false, None).await?;
    client.flush().await.map_err(RelayError::Client)?;
    Ok(walker)
}

/// Like `command`, but the end of the response stays in the client's buffer
/// until the caller flushes (sync mirroring answers only after the secondary).
pub async fn command_held(
    backend: &mut PacketIo,
    client: &mut PacketIo,
    payload: &[u8],
    expect: Expect,
    deprecate_eof: bool,
) -> Result<ResponseWalker, RelayError> {
    relay_response(backend, client, payload, expect, deprecate_eof, true, None).await
}

/// Like `command`, holding the end of the response until the caller
/// flushes when `hold_end` (a session with a statement mirror tells it of
/// the transaction's end first), and copying the response into `tap` when
/// given (a shadow read compares it later).
pub async fn command_tapped(
    backend: &mut PacketIo,
    client: &mut PacketIo,
    payload: &[u8],
    expect: Expect,
    deprecate_eof: bool,
    hold_end: bool,
    tap: Option<&mut Capture>,
) -> Result<ResponseWalker, RelayError> {
    relay_response(
        backend,
        client,
        payload,
        expect,
        deprecate_eof,
        hold_end,
        tap,
    )
    .await
}

async fn relay_response(
    backend: &mut PacketIo,
    client: &mut PacketIo,
    payload: &[u8],
    expect: Expect,
    deprecate_eof: bool,
    hold_end: bool,
    mut tap: Option<&mut Capture>,
) -> Result<ResponseWalker, RelayError> {
    backend.write_packet(0, payload);
    backend.flush().await.map_err(RelayError::Backend)?;
    let mut walker = ResponseWalker::new(expect, deprecate_eof);
    loop {
        if !backend.has_complete_packet() {
            // Don't hold relayed bytes while waiting for more.
            client.flush().await.map_err(RelayError::Client)?;
        }
        backend.fill_physical().await.map_err(RelayError::Backend)?;
        // Every whole packet already read goes on in one batch, up to the
        // end of the response or a file request. A run of plain rows needs
        // no look beyond each row's first byte (`skip_rows`) unless a tap
        // copies them: the walk stops where rows begin to skip them.
        let skipping = tap.is_none();
        let mut done = false;
        let mut bytes = 0;
        loop {
            if skipping {
                bytes += walker.skip_rows(backend.buffered_input().get(bytes..).unwrap_or(&[]));
            }
            let before = bytes;
            bytes = backend
                .visit_buffered_packets(bytes, |h, payload| {
                    let step = walker.feed(h.len, payload)?;
                    if let Some(tap) = tap.as_deref_mut() {
                        tap.push(payload);
                    }
                    done = step == Step::Done;
                    let pause = done || walker.wants_file() || (skipping && walker.in_rows());
                    Ok(!pause)
                })
                .map_err(RelayError::Backend)?;
            if bytes == before || done || walker.wants_file() {
                break;
            }
        }
        backend
            .forward(client, bytes, hold_end && done)
            .await
            .map_err(RelayError::Client)?;
        if done {
            break;
        }
        if walker.wants_file() {
            client.flush().await.map_err(RelayError::Client)?;
            relay_file(client, backend).await?;
            walker.file_sent();
        }
    }
    Ok(walker)
}

/// LOAD DATA LOCAL: copies the client's file packets to the backend as they
/// come, up to and including the empty packet that ends the file. Memory
/// stays bounded by one physical packet plus the write buffer's flush
/// threshold, whatever the file's size.
async fn relay_file(client: &mut PacketIo, backend: &mut PacketIo) -> Result<(), RelayError> {
    let mut continued = false;
    loop {
        if !client.has_complete_packet() {
            backend.flush().await.map_err(RelayError::Backend)?;
        }
        let h = client.fill_physical().await.map_err(RelayError::Client)?;
        let last = h.len == 0 && !continued;
        continued = h.len == MAX_PAYLOAD;
        client
            .relay_physical(h, backend)
            .await
            .map_err(RelayError::Backend)?;
        if last {
            return backend.flush().await.map_err(RelayError::Backend);
        }
    }
}

/// Writes a command that gets no response (COM_STMT_CLOSE, SEND_LONG_DATA).
pub async fn command_no_response(backend: &mut PacketIo, payload: &[u8]) -> Result<(), RelayError> {
    backend.write_packet(0, payload);
    backend.flush().await.map_err(RelayError::Backend)
}
