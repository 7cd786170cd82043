//! Per-client state.
//!
//! A session moves through: handshake → authenticated (backend leased and
//! logged in with the client's capabilities, charset and database) → command
//! loop → closed (backend reset and returned to the pool, or dropped if its
//! state is unknown). Transaction and autocommit state are the backend's own
//! (tracked from the status flags of every OK/EOF it sends), because the
//! session is pinned to one backend connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::dualwrite::mirror::SessionMirror;
use crate::sql::classify::Classified;
use crate::wire::execute::ParamType;
use crate::wire::{CapabilityFlags as Caps, StatusFlags};

pub struct Prepared {
    pub classified: Arc<Classified>,
    pub params: u16,
    /// The statement text (needed to mirror its executions as text).
    pub sql: String,
    /// Parameter types bound by the last execute (clients may omit them).
    pub param_types: Vec<ParamType>,
    /// Parameters sent with COM_STMT_SEND_LONG_DATA since the last execute.
    pub long_data: Vec<bool>,
}

pub struct Session {
    pub id: u64,
    pub peer: SocketAddr,
    pub user: String,
    /// Capabilities negotiated with the client.
    pub client_caps: Caps,
    /// The salt sent in our greeting; COM_CHANGE_USER answers are made with it.
    pub salt: Vec<u8>,
    pub collation: u8,
    /// Status flags from the backend's last OK/EOF.
    pub status: u16,
    pub prepared: HashMap<u32, Prepared, StatementIds>,
    /// SQL-level prepared statements (`PREPARE s FROM …`) by lower-cased
    /// name: their text, `None` when the proxy could not learn it (bounded,
    /// see `frontend::mysql::sql_prepared`).
    pub sql_prepared: HashMap<String, Option<String>>,
    /// Set when the client changed protocol options (COM_SET_OPTION): the
    /// backend connection is then not reused after this session.
    pub protocol_changed: bool,
    /// This session's queue to the secondary (dual_write).
    pub mirror: Option<SessionMirror>,
    /// A transaction is open on the secondary for this session.
    pub mirror_txn_open: bool,
    /// The primary's @@auto_increment_increment, fetched when first needed.
    pub auto_increment_increment: Option<u64>,
    /// MariaDB extended capabilities the client asked for.
    pub mariadb_caps: u32,
    /// The database the client works in (as it names it).
    pub database: String,
    /// LAST_INSERT_ID() when PostgreSQL is authoritative.
    pub last_insert_id: u64,
    /// Reads routed so far (the routing sequence position).
    pub reads: u64,
    /// PostgreSQL connection for reads routed to the new backend
    /// (dual_write with `[reads] new_percent`), opened on first use.
    pub read_pg: Option<ReadConn>,
    /// The session ran something other than a read since its routed reads
    /// last caught up with the change stream: before the next read goes to
    /// the new backend, the stream must have applied the primary's position
    /// (read-your-writes with `[mirror] source = "binlog"`).
    pub stream_wrote: bool,
}

/// A session's PostgreSQL connection for routed reads, with its slot.
pub struct ReadConn {
    pub pg: crate::backend::pg_mysql::PgSession,
    /// Where it is connected (a reload may move `[backends.new]`).
    pub target: crate::config::BackendTarget,
    pub _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Session {
    pub fn deprecate_eof(&self) -> bool {
        self.client_caps.contains(Caps::CLIENT_DEPRECATE_EOF)
    }

    pub fn in_transaction(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
    }

    pub fn autocommit(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits() != 0
    }

    /// False under sql_mode NO_BACKSLASH_ESCAPES.
    pub fn backslash_escapes(&self) -> bool {
        self.status & StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES.bits() == 0
    }

    pub fn note_status(&mut self, status: Option<u16>) {
        if let Some(s) = status {
            self.status = s;
        }
    }
}

/// Hashes the server's prepared-statement ids for [`Session::prepared`],
/// looked up on every COM_STMT_EXECUTE: the ids are small counters the
/// server chose, not attacker-controlled keys, so SipHash's flooding
/// resistance buys nothing there and one multiply spreads them well.
pub type StatementIds = std::hash::BuildHasherDefault<StatementIdHasher>;

#[derive(Default)]
pub struct StatementIdHasher(u64);

impl std::hash::Hasher for StatementIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
