//! DDL markers: how a MySQL-dialect DDL statement run through the proxy in
//! `new_primary` reaches the reverse stream.
//!
//! Logical replication carries no DDL, so the proxy records the client's
//! original MySQL text in PostgreSQL's WAL with a transactional
//! `pg_logical_emit_message(true, 'tandem.ddl', <json>)` in the same
//! transaction as the translated DDL. pgoutput (with `messages 'true'`,
//! proto_version 2) hands it to the reverse stream in commit order with the
//! row changes, and the stream applies the MySQL text on the old side.

use serde::{Deserialize, Serialize};

/// The logical-message prefix of a DDL marker.
pub const PREFIX: &str = "tandem.ddl";

/// The statement the proxy emits, with the marker's JSON as `$1`.
pub const EMIT_SQL: &str = "SELECT pg_logical_emit_message(true, 'tandem.ddl', $1::text)";

/// One DDL statement as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The statement in MySQL dialect, as the client sent it.
    pub mysql: String,
    /// The MySQL database it ran in.
    pub database: String,
    /// Tables the statement creates, alters or drops.
    #[serde(default)]
    pub tables: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("DDL marker is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("DDL marker has an empty statement")]
    Empty,
}

impl Marker {
    pub fn to_json(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(content: &[u8]) -> Result<Marker, MarkerError> {
        let m: Marker = serde_json::from_slice(content)?;
        if m.mysql.trim().is_empty() {
            return Err(MarkerError::Empty);
        }
        Ok(m)
    }
}

/// MySQL errors that mean a re-applied DDL already took effect (the stream
/// crashed between the DDL's implicit commit and its checkpoint): table
/// exists (1050), duplicate column (1060), duplicate key name (1061),
/// can't drop a missing column/key (1091), unknown table (1051).
pub fn already_applied(code: u16) -> bool {
    matches!(code, 1050 | 1051 | 1060 | 1061 | 1091)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_bad_ones_are_errors() {
        let m = Marker {
            mysql: "ALTER TABLE `t` ADD COLUMN c INT".into(),
            database: "app".into(),
            tables: vec!["t".into()],
        };
        assert_eq!(Marker::parse(m.to_json().as_bytes()).expect("parse"), m);
        assert!(Marker::parse(b"{\"mysql\":\" \",\"database\":\"a\"}").is_err());
        assert!(Marker::parse(b"not json").is_err());
        let no_tables = Marker::parse(b"{\"mysql\":\"DROP TABLE x\",\"database\":\"a\"}");
        assert_eq!(no_tables.expect("parse").tables, Vec::<String>::new());
    }

    #[test]
    fn already_applied_codes() {
        assert!(already_applied(1050));
        assert!(already_applied(1091));
        assert!(!already_applied(1064));
    }
}
