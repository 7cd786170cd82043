//! A fleet of three in-process proxies in front of real MariaDB and
//! PostgreSQL, the change stream running in each (one holds the lease), and
//! `tandem cutover` flipping them together under continuous client load:
//! no write lost, no write on the old side after the flip, the pause
//! measured; and a proxy that cannot see the control row cannot write.

mod common;
#[path = "fleet/flip.rs"]
mod flip;
#[path = "fleet/guard.rs"]
mod guard;
#[path = "fleet/handover.rs"]
mod handover;
#[path = "fleet/support.rs"]
mod support;
