//! The dual-write core: what happens to a write after the primary answered
//! it. `mirror` queues it in the primary's commit order and applies it on the
//! secondary (translated for PostgreSQL, with the primary's ids and pinned
//! values); `drift` records every write the secondary did not apply as the
//! primary did — including, at shutdown, what the bound left unapplied.
//!
//! `statement` is the per-statement side, run by the front end's pipeline
//! before and after the primary answers: pins and id replay (what the
//! secondary is handed).

pub mod drift;
pub mod mirror;
pub mod statement;
