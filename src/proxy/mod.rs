//! The protocol-free core of the proxy: what happens to one statement is
//! decided here, once, as a value (`decide::Plan`) that the front end then
//! carries out. Nothing here opens a socket or reads a packet, so every
//! decision can be tested as a table. `route` is the read share and the
//! sides' names, `session` the per-client state the decision reads.

pub mod decide;
pub mod route;
pub mod session;
