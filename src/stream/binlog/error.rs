//! What can stop the binlog source, as variants an operator (or the applier's
//! retry loop) can act on.

use crate::backend::BackendError;
use crate::wire::packets::ServerError;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The binlog the stream needs was purged (server error 1236).
    #[error(
        "the primary no longer has the binlog at {wanted} (oldest binlog on the server: {oldest}); \
         the changes in between are lost to the stream: re-copy with `tandem backfill`, \
         check with `tandem verify`, then start the stream from the position the backfill reports"
    )]
    Purged { wanted: String, oldest: String },
    /// The primary does not log rows.
    #[error(
        "the primary logs binlog_format={format}; the change stream needs row events: \
         set `binlog_format=ROW` under [mysqld] (and `SET GLOBAL binlog_format=ROW`)"
    )]
    NotRow { format: String },
    /// The URL user may not read the binlog.
    #[error(
        "the user `{user}` may not read the binlog ({message}); run \
         `GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {user}` (MariaDB 10.5+) or \
         `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {user}` (MySQL, older MariaDB)"
    )]
    Privileges { user: String, message: String },
    /// The connection to the primary was lost or timed out. Retryable:
    /// reconnect from the last checkpoint.
    #[error("lost the binlog connection to the primary: {0} (retryable from the last checkpoint)")]
    Disconnected(String),
    /// Something the primary sent that this source does not decode.
    #[error("unsupported by the binlog source: {0}")]
    Unsupported(String),
    /// An event that does not parse (or fails its checksum).
    #[error("malformed binlog event at {at}: {what}")]
    Malformed { at: String, what: String },
    /// Any other error the primary answered with.
    #[error("the primary refused the binlog source: {0}")]
    Server(ServerError),
}

impl StreamError {
    /// True when reconnecting from the last checkpoint may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StreamError::Disconnected(_))
    }

    /// Maps a backend error of a connection made as `user`.
    pub fn from_backend(e: BackendError, user: &str) -> StreamError {
        match e {
            BackendError::Server(s) => StreamError::from_server(s, user),
            BackendError::Auth(m) => StreamError::Server(ServerError::new(1045, b"28000", m)),
            other => StreamError::Disconnected(other.to_string()),
        }
    }

    /// Maps an ERR packet; 1236 is handled by the caller (it needs the
    /// oldest binlog).
    pub fn from_server(s: ServerError, user: &str) -> StreamError {
        match s.code {
            // Access denied / needs REPLICATION SLAVE or BINLOG MONITOR.
            1227 | 1142 | 1044 => StreamError::Privileges {
                user: user.to_string(),
                message: s.message,
            },
            // Server shutting down, connection killed.
            1053 | 1927 | 2013 => StreamError::Disconnected(s.to_string()),
            _ => StreamError::Server(s),
        }
    }
}

/// Whether a 1236 error means the requested position is gone (as opposed to
/// another fatal read error such as a corrupt binlog).
pub fn is_purged_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("could not find first log file")
        || m.contains("not in the master's binlog")
        || m.contains("could not find gtid state")
        || m.contains("purged")
        || m.contains("could not open log file")
}
