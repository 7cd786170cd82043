//! The change stream against real servers: the applier fed with hand-built
//! source transactions (the items a binlog source yields) writing into a
//! real PostgreSQL (and MariaDB as a MySQL target), the checkpoint, replays,
//! grouping and refused transactions.

mod common;
#[path = "stream/apply.rs"]
mod apply;
#[path = "stream/run.rs"]
mod run;
