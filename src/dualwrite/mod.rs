//! The dual-write core: what happens to a write after the primary answered
//! it. `mirror` queues it in the primary's commit order and applies it on the
//! secondary (translated for PostgreSQL, with the primary's ids and pinned
//! values); `drift` records every write the secondary did not apply as the
//! primary did — including, at shutdown, what the bound left unapplied.
//!
//! The per-statement side of dual writing (`crate::dual`: pins and id replay;
//! `crate::route`, `crate::session`) decides what is handed over; it stays
//! with the front end's statement pipeline.

pub mod drift;
pub mod mirror;
