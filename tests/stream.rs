//! The change stream against real servers: the applier fed with hand-built
//! source transactions (the items a binlog source yields) writing into a
//! real PostgreSQL (and MariaDB as a MySQL target), the checkpoint, replays,
//! grouping and refused transactions; and the reverse stream (PostgreSQL
//! logical decoding → MariaDB).

#[path = "stream/apply.rs"]
mod apply;
#[path = "stream/backfill_race.rs"]
mod backfill_race;
mod common;
#[path = "stream/e2e.rs"]
mod e2e;
#[path = "stream/outage.rs"]
mod outage;
#[path = "stream/parallel.rs"]
mod parallel;
#[path = "stream/processes.rs"]
mod processes;
#[path = "stream/reverse.rs"]
mod reverse;
#[path = "stream/run.rs"]
mod run;
