//! Change streams: what the old database committed, read from its binlog (ROW
//! format) and applied to the new one — and later the reverse direction.
//!
//! A statement mirror must re-derive every value the primary decided (ids,
//! clocks, triggers, `INSERT … SELECT`), and every gap is a wrong row; the
//! binlog carries the rows the primary actually wrote, in the order it
//! committed them. The reverse direction (`reverse`: PostgreSQL logical
//! decoding → MySQL, which keeps the way back open after the cutover) yields
//! the same items. Two halves meet at the types below:
//!
//! * a *source* (`binlog`) connects as a replica, decodes events through
//!   their table maps into the one value model and yields [`Item`]s in commit
//!   order, each transaction between a [`Item::Begin`] and its
//!   [`Item::Commit`];
//! * an *applier* (`apply`) writes each source transaction atomically on the
//!   target, with the [`Position`] it ends at committed in the same target
//!   transaction (the checkpoint), so a restart resumes exactly once. With
//!   `[mirror] apply_workers` > 1 independent transactions (disjoint
//!   writesets) commit side by side on several connections, each with a
//!   marker, and the checkpoint is their low-water mark (`apply::parallel`).
//!
//! Items flow through a bounded channel: a transaction is streamed, never
//! held whole by the source, so memory stays bounded by the channel.

pub mod apply;
pub mod binlog;
pub mod cutover;
pub mod lease;
pub mod reverse;
pub mod run;
pub mod source;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::mysql::MysqlType;
use crate::value::Row;

/// The stream's id in the checkpoint table: the old backend's database (one
/// stream per migrated database).
pub fn stream_id(config: &crate::config::Config) -> String {
    config
        .backends
        .old
        .target()
        .ok()
        .and_then(|t| t.database)
        .unwrap_or_default()
}

/// A point in the primary's log: where a checkpoint resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Binlog file name (`mariadb-bin.000003`).
    pub file: String,
    /// Offset of the next event to read in `file` (the end of the last event
    /// this position covers).
    pub offset: u64,
    /// The GTID state after the covered transaction, in the server's own
    /// notation: MariaDB `domain-server-seq[,…]` (one entry per domain, as
    /// `@@gtid_binlog_pos` prints it), MySQL `uuid:1-n[,…]` (an executed set).
    /// `None` when the server has no GTIDs.
    pub gtid: Option<String>,
}

/// `Position::file` of a PostgreSQL WAL position (the reverse stream): the
/// LSN is `offset`, and `gtid` carries its `X/Y` text for people.
pub const LSN_FILE: &str = "pg-wal";

impl Position {
    /// A PostgreSQL log sequence number as a position. The checkpoint table,
    /// `/status` and the stream task then work unchanged for both
    /// directions; byte lag is the LSN difference (one "file").
    pub fn lsn(lsn: u64) -> Position {
        Position {
            file: LSN_FILE.into(),
            offset: lsn,
            gtid: Some(lsn_text(lsn)),
        }
    }

    /// The LSN of a position made by [`Position::lsn`].
    pub fn as_lsn(&self) -> Option<u64> {
        (self.file == LSN_FILE).then_some(self.offset)
    }
}

/// An LSN as PostgreSQL prints it (`16/B374D848`).
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Parses PostgreSQL's `X/Y` LSN text.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    (hi <= 0xFFFF_FFFF && lo <= 0xFFFF_FFFF).then_some((hi << 32) | lo)
}

/// A source table as of the event that names it: database, name and columns
/// in binlog order (the table's ordinal order), with the key the applier
/// addresses rows by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub database: String,
    pub name: String,
    pub columns: Vec<SourceColumn>,
    /// Positions in `columns` of the primary key (empty: the table has none;
    /// the applier reports it and follows `[mirror] no_key`).
    pub key: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceColumn {
    pub name: String,
    /// How values of this column are normalized.
    pub ty: MysqlType,
    /// `information_schema.COLUMNS.COLUMN_TYPE` (`int(10) unsigned`), for
    /// the applier's type mapping.
    pub column_type: String,
}

/// One row image change. Rows hold every column of the table in `columns`
/// order (the binlog runs with `binlog_row_image=FULL`).
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    Insert { after: Row },
    Update { before: Row, after: Row },
    Delete { before: Row },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub table: Arc<SourceTable>,
    pub change: RowChange,
}

/// What a source yields, in the primary's commit order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A transaction starts. `gtid` is this transaction's own GTID
    /// (`0-1-42` on MariaDB, `uuid:42` on MySQL), when the server has them.
    Begin {
        gtid: Option<String>,
        timestamp: u32,
    },
    /// Row changes of the open transaction, in the order they were logged
    /// (a batch per rows event).
    Rows(Vec<Change>),
    /// The open transaction committed; `position` is just past it.
    Commit { position: Position },
    /// DDL (its own transaction in the binlog, committed implicitly): the
    /// statement as the primary logged it, in the database it ran in.
    ///
    /// One exception, from the source (`binlog`): a `Ddl` between `Begin`
    /// and `Commit` belongs to that transaction — MariaDB logs
    /// `CREATE TABLE … SELECT` as one transaction of the CREATE and its rows.
    /// Apply it inside the target transaction; its `gtid` is `None` and its
    /// `position` is where the transaction started (not a checkpoint).
    Ddl {
        database: String,
        sql: String,
        gtid: Option<String>,
        position: Position,
    },
    /// Nothing to apply, but the source has read up to `position` (rotate,
    /// heartbeat, a transaction on a database outside the migration): the
    /// applier may advance its checkpoint and lag measurement.
    Progress { position: Position, timestamp: u32 },
}

/// Whether the GTID state `applied` includes `wanted` (both as MariaDB's
/// `@@gtid_binlog_pos` prints them: `domain-server-seq` per domain, comma
/// separated): every domain of `wanted` is applied up to its sequence
/// number. `None` when either is not in that form (MySQL's `uuid:1-n` sets
/// are not compared here).
pub fn gtid_covers(applied: &str, wanted: &str) -> Option<bool> {
    fn parse(s: &str) -> Option<Vec<(u32, u64)>> {
        s.split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| {
                let mut parts = g.split('-');
                let domain = parts.next()?.parse().ok()?;
                let _server: u32 = parts.next()?.parse().ok()?;
                let seq = parts.next()?.parse().ok()?;
                parts.next().is_none().then_some((domain, seq))
            })
            .collect()
    }
    let applied = parse(applied)?;
    let wanted = parse(wanted)?;
    Some(
        wanted
            .iter()
            .all(|(domain, seq)| applied.iter().any(|(d, s)| d == domain && s >= seq)),
    )
}

#[cfg(test)]
mod tests {
    use super::gtid_covers;

    #[test]
    fn lsn_positions_round_trip() {
        let p = super::Position::lsn(0x16_B374_D848);
        assert_eq!(p.gtid.as_deref(), Some("16/B374D848"));
        assert_eq!(p.as_lsn(), Some(0x16_B374_D848));
        assert_eq!(super::parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(super::parse_lsn("0/0"), Some(0));
        assert_eq!(super::parse_lsn("x/1"), None);
        assert_eq!(super::parse_lsn("1/100000000"), None);
    }

    #[test]
    fn gtid_coverage_is_per_domain() {
        assert_eq!(gtid_covers("0-1-42", "0-1-42"), Some(true));
        assert_eq!(gtid_covers("0-1-43", "0-1-42"), Some(true));
        assert_eq!(gtid_covers("0-1-41", "0-1-42"), Some(false));
        // The server id may change (failover); the sequence decides.
        assert_eq!(gtid_covers("0-2-50", "0-1-42"), Some(true));
        assert_eq!(gtid_covers("0-1-50,1-1-3", "0-1-42,1-1-4"), Some(false));
        assert_eq!(gtid_covers("0-1-50,1-1-4", "1-1-4,0-1-42"), Some(true));
        assert_eq!(gtid_covers("0-1-50", "0-1-42,1-1-1"), Some(false));
        assert_eq!(gtid_covers("0-1-50", ""), Some(true));
        assert_eq!(
            gtid_covers("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "0-1-1"),
            None
        );
    }
}
