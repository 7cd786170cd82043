//! The change stream's source: Tandem as a replica of the old MySQL/MariaDB
//! primary, turning its row-format binlog into [`Item`]s.
//!
//! `conn` speaks the replica protocol, `event`/`tablemap`/`rows` decode
//! events (by hand, bounds-checked: no input can panic the process),
//! `schema` joins table maps with the catalog, `gtid` keeps the GTID state a
//! [`Position`] carries, `source` is the state machine from events to items
//! and `check` is what `tandem check` asks the primary.
//!
//! Tested against MariaDB 10.11 (GTID event 162, rows events v1, FULL row
//! metadata). MySQL 8 is designed for but untested here: its GTID event (33)
//! and rows events v2 are decoded, binary JSON columns are refused,
//! resume is by file:offset (COM_BINLOG_DUMP_GTID is not implemented) and
//! TRANSACTION_PAYLOAD (`binlog_transaction_compression`) is refused.
//!
//! [`Item`]: crate::stream::Item
//! [`Position`]: crate::stream::Position

mod check;
mod conn;
mod error;
mod event;
#[cfg(test)]
mod fuzz;
mod gtid;
mod rows;
mod schema;
mod source;
mod tablemap;

use std::time::Duration;

pub use check::{check, current_position, Finding, Severity};
pub use error::StreamError;
pub use gtid::GtidState;
pub use source::BinlogSource;

use super::Position;

/// Which databases' changes the source yields; everything else becomes
/// `Item::Progress`.
#[derive(Debug, Clone, Default)]
pub struct SourceFilter {
    /// Database names, compared case-sensitively as MySQL does on Linux.
    /// Empty: every database except the system schemas.
    databases: Vec<String>,
}

impl SourceFilter {
    pub fn databases<I, S>(names: I) -> SourceFilter
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SourceFilter {
            databases: names.into_iter().map(Into::into).collect(),
        }
    }

    /// Every user database (not `mysql`, `sys`, `information_schema`,
    /// `performance_schema`).
    pub fn all() -> SourceFilter {
        SourceFilter::default()
    }

    pub fn matches(&self, database: &str) -> bool {
        if self.databases.is_empty() {
            !matches!(
                database,
                "mysql" | "sys" | "information_schema" | "performance_schema"
            )
        } else {
            self.databases.iter().any(|d| d == database)
        }
    }

    /// Whether a statement run in `database` concerns the filter: it ran
    /// there, or it names a filtered database (`ALTER TABLE app.t …` run from
    /// another default database).
    pub fn concerns(&self, database: &str, sql: &str) -> bool {
        if self.matches(database) {
            return true;
        }
        let lower = sql.to_ascii_lowercase();
        self.databases.iter().any(|d| {
            let d = d.to_ascii_lowercase();
            [format!("`{d}`."), format!("{d}.")].iter().any(|needle| {
                lower.match_indices(needle.as_str()).any(|(i, _)| {
                    // Not the tail of a longer name (`xapp.t` is not `app.t`).
                    !lower[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter() {
        let f = SourceFilter::databases(["app"]);
        assert!(f.matches("app") && !f.matches("other"));
        assert!(f.concerns("other", "ALTER TABLE `app`.`t` ADD c INT"));
        assert!(f.concerns("", "drop table app.t"));
        assert!(!f.concerns("other", "DROP TABLE xapp.t"));
        assert!(!f.concerns("other", "DROP TABLE t"));
        let all = SourceFilter::all();
        assert!(all.matches("anything") && !all.matches("mysql"));
    }
}

/// Where the stream starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// The primary's current end of binlog.
    Now,
    /// A saved position (a checkpoint): resumed by file and offset, the GTID
    /// state it carries continues from there.
    At(Position),
    /// A MariaDB GTID state (`0-1-42,…`): the server finds the file itself,
    /// which survives a failover to another MariaDB with the same GTIDs.
    Gtid(String),
}

#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// This replica's server id: unique among the primary's replicas (a
    /// second connection with the same id makes the server drop the first).
    pub server_id: u32,
    pub filter: SourceFilter,
    pub start: Start,
    /// Ask for a heartbeat event after this much idle time; the connection is
    /// considered lost after three missed heartbeats. `None`: no heartbeat,
    /// no idle timeout.
    pub heartbeat: Option<Duration>,
}

impl SourceOptions {
    /// Defaults: a random server id in a range replicas rarely use, a 1 s
    /// heartbeat, starting now.
    pub fn new(filter: SourceFilter) -> SourceOptions {
        SourceOptions {
            server_id: 0x7a00_0000 | (rand::random::<u32>() & 0x00ff_ffff),
            filter,
            start: Start::Now,
            heartbeat: Some(Duration::from_secs(1)),
        }
    }
}
