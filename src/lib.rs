//! Tandem: a zero-downtime database migration proxy speaking the MySQL
//! protocol.
//!
//! Dataflow, top to bottom: `server` accepts a client and hands it to
//! `frontend::mysql` (handshake, one command loop, relay), which asks `sql` what a
//! statement is and `proxy` what to do with it (`proxy::decide`), and talks to
//! `backend` connections; `dualwrite` and `stream` carry writes to the new side.

pub mod admin;
pub mod admin_client;
pub mod alloc_count;
pub mod auth;
pub mod backend;
pub mod background;
pub mod check;
pub mod cockpit;
pub mod config;
pub mod dualwrite;
pub mod fleet;
pub mod foreign_keys;
pub mod frontend;
pub mod jsonl;
pub mod metrics;
pub mod migrate;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod shadow;
pub mod snapshot;
pub mod sql;
pub mod state;
pub mod stream;
pub mod tls;
pub mod value;
pub mod wire;
pub mod workers;
