//! The protocol-free core of the proxy: what happens to one statement is
//! decided here, once, as a value (`decide::Plan`) that the front end then
//! carries out. Nothing here opens a socket or reads a packet, so every
//! decision can be tested as a table.

pub mod decide;
