//! Connections to the databases behind the proxy.

pub mod mysql;
pub mod mysql_async_conn;
pub mod pg_mysql;
pub mod pool;
pub mod postgres;

use crate::wire::io::WireError;
use crate::wire::packets::ServerError;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("no free backend connection within {0} ms (pool_size reached)")]
    PoolExhausted(u64),
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The server answered with an ERR packet.
    #[error("{0}")]
    Server(ServerError),
    #[error("authentication with the backend failed: {0}")]
    Auth(String),
    #[error("TLS with {addr}: {source}")]
    Tls {
        addr: String,
        source: crate::tls::TlsError,
    },
}

impl BackendError {
    /// The error a MySQL client should see for this failure.
    pub fn to_mysql_error(&self) -> ServerError {
        match self {
            BackendError::Server(e) => e.clone(),
            BackendError::PoolExhausted(_) => {
                ServerError::new(1040, b"08004", "Too many connections")
            }
            other => ServerError::new(
                2003,
                b"HY000",
                format!("Can't connect to the backend through tandem: {other}"),
            ),
        }
    }
}
