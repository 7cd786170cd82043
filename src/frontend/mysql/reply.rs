//! Leaf helpers every answering module shares (moved out of `command`,
//! which is the relay and sits above them): whether a command loop goes on,
//! classifying statement text, and writing an ERR packet to the client.

use std::sync::Arc;

use super::relay::RelayError;
use crate::sql::classify::Classified;
use crate::state::AppState;
use crate::wire::io::PacketIo;
use crate::wire::packets::ServerError;

/// Whether a command loop goes on after a command.
pub(super) enum Flow {
    Continue,
    Quit,
}

/// Classifies statement text (cached by the classifier).
pub(super) fn classify(state: &AppState, sql: &[u8]) -> Arc<Classified> {
    // Statements in a non-UTF-8 client charset are classified on a lossy copy;
    // the backend always receives the original bytes.
    match std::str::from_utf8(sql) {
        Ok(s) => state.classifier.classify(s),
        Err(_) => state.classifier.classify(&String::from_utf8_lossy(sql)),
    }
}

/// Writes `err` to the client as packet `seq`.
pub(super) async fn reply_error(
    client: &mut PacketIo,
    seq: u8,
    err: &ServerError,
) -> Result<(), RelayError> {
    client
        .write_and_flush(seq, &err.encode())
        .await
        .map(|_| ())
        .map_err(RelayError::Client)
}
