//! The replica side of the protocol: log in with our own wire layer, tell
//! the server what we can read (checksums, MariaDB GTID events, heartbeats),
//! register so `SHOW SLAVE HOSTS` lists us, and ask for the binlog from a
//! file:offset or a MariaDB GTID state. Then every packet is one event.
//!
//! Our own wire layer rather than mysql_async's binlog stream: it gives us the
//! raw ERR packet of the dump (1236 → [`StreamError::Purged`]), the exact
//! session variables MariaDB needs before the dump, and the event bytes
//! without a second copy.

use std::time::Duration;

use bytes::Bytes;

use crate::backend::mysql::{self, BackendConn};
use crate::config::BackendTarget;
use crate::wire::packets::{self, ServerError};

use super::error::StreamError;

const COM_BINLOG_DUMP: u8 = 0x12;
const COM_REGISTER_SLAVE: u8 = 0x15;
/// Largest event we accept (MariaDB's `max_allowed_packet` tops out at 1 GiB).
const MAX_EVENT: usize = 1 << 30;

/// Where the dump starts.
#[derive(Debug, Clone)]
pub enum DumpFrom {
    File {
        file: String,
        offset: u64,
    },
    /// MariaDB GTID state (`@slave_connect_state`).
    Gtid(String),
}

pub async fn login(target: &BackendTarget) -> Result<BackendConn, StreamError> {
    let greeted = mysql::connect(target, MAX_EVENT)
        .await
        .map_err(|e| StreamError::from_backend(e, &target.user))?;
    let (conn, _) = greeted
        .authenticate(target, mysql::default_opts(None))
        .await
        .map_err(|e| StreamError::from_backend(e, &target.user))?;
    Ok(conn)
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Prepares the session and sends COM_REGISTER_SLAVE and COM_BINLOG_DUMP.
/// The caller reads events with [`read_event`].
pub async fn start_dump(
    conn: &mut BackendConn,
    user: &str,
    server_id: u32,
    from: &DumpFrom,
    heartbeat: Option<Duration>,
) -> Result<(), StreamError> {
    let fail = |e| StreamError::from_backend(e, user);
    // Checksums as the server writes them; MariaDB: send GTID events and no
    // dummy events (capability 4). MySQL ignores the MariaDB variables.
    let mut set = String::from(
        "SET @master_binlog_checksum = @@global.binlog_checksum, \
         @source_binlog_checksum = @@global.binlog_checksum, @mariadb_slave_capability = 4",
    );
    if let Some(h) = heartbeat {
        set.push_str(&format!(
            ", @master_heartbeat_period = {}",
            h.as_nanos().min(u128::from(u64::MAX))
        ));
    }
    if let DumpFrom::Gtid(state) = from {
        set.push_str(&format!(
            ", @slave_connect_state = {}, @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0",
            quote(state)
        ));
    }
    conn.execute(&set).await.map_err(fail)?;

    let mut reg = vec![COM_REGISTER_SLAVE];
    reg.extend_from_slice(&server_id.to_le_bytes());
    let host = b"tandem";
    reg.push(host.len() as u8);
    reg.extend_from_slice(host);
    reg.push(0); // user
    reg.push(0); // password
    reg.extend_from_slice(&0u16.to_le_bytes()); // port
    reg.extend_from_slice(&0u32.to_le_bytes()); // rank
    reg.extend_from_slice(&0u32.to_le_bytes()); // master id
    conn.io
        .write_and_flush(0, &reg)
        .await
        .map_err(|e| StreamError::Disconnected(e.to_string()))?;
    let ok = conn
        .io
        .read_packet()
        .await
        .map_err(|e| StreamError::Disconnected(e.to_string()))?;
    if let Some(e) = ServerError::parse(&ok.payload) {
        return Err(StreamError::from_server(e, user));
    }

    let (file, offset) = match from {
        DumpFrom::File { file, offset } => (file.as_str(), *offset),
        DumpFrom::Gtid(_) => ("", 4),
    };
    let offset = u32::try_from(offset).map_err(|_| {
        StreamError::Unsupported(format!(
            "binlog offset {offset} above 4 GiB (COM_BINLOG_DUMP carries 32 bits)"
        ))
    })?;
    let mut dump = vec![COM_BINLOG_DUMP];
    dump.extend_from_slice(&offset.to_le_bytes());
    dump.extend_from_slice(&0u16.to_le_bytes()); // flags: block at the end
    dump.extend_from_slice(&server_id.to_le_bytes());
    dump.extend_from_slice(file.as_bytes());
    conn.io
        .write_and_flush(0, &dump)
        .await
        .map_err(|e| StreamError::Disconnected(e.to_string()))?;
    Ok(())
}

/// What one packet of the dump holds.
pub enum Packet {
    Event(Bytes),
    /// The server ended the stream (EOF packet).
    End,
    Error(ServerError),
}

/// Reads the next packet of the dump; `idle` bounds the wait (heartbeats
/// arrive well within it on a live connection).
pub async fn read_event(
    conn: &mut BackendConn,
    idle: Option<Duration>,
) -> Result<Packet, StreamError> {
    let read = conn.io.read_packet();
    let pkt = match idle {
        Some(limit) => tokio::time::timeout(limit, read).await.map_err(|_| {
            StreamError::Disconnected(format!(
                "no event or heartbeat from the primary for {} ms",
                limit.as_millis()
            ))
        })?,
        None => read.await,
    }
    .map_err(|e| StreamError::Disconnected(e.to_string()))?;
    match pkt.payload.first() {
        Some(&packets::OK) => Ok(Packet::Event(pkt.payload.slice(1..))),
        Some(&packets::ERR) => Ok(Packet::Error(
            ServerError::parse(&pkt.payload)
                .unwrap_or_else(|| ServerError::new(2027, b"HY000", "malformed error packet")),
        )),
        Some(&packets::EOF) if pkt.payload.len() < 9 => Ok(Packet::End),
        _ => Err(StreamError::Malformed {
            at: "binlog stream".into(),
            what: "packet is neither event, EOF nor error".into(),
        }),
    }
}
