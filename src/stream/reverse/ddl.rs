//! DDL markers: how a MySQL-dialect DDL statement run through the proxy in
//! `new_primary` reaches the reverse stream.
//!
//! Logical replication carries no DDL, so the proxy records the client's
//! original MySQL text in PostgreSQL's WAL with a transactional
//! `pg_logical_emit_message(true, 'tandem.ddl', <json>)` in the same
//! transaction as the translated DDL. pgoutput (with `messages 'true'`,
//! proto_version 2) hands it to the reverse stream in commit order with the
//! row changes, and the stream applies the MySQL text on the old side.
//! A table the DDL creates joins the publication in that same transaction.
//! Column changes that arrive without a marker (DDL run on PostgreSQL
//! directly) are reported by [`Watch`].

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

/// What the proxy adds to a client's DDL on PostgreSQL so that the reverse
/// stream carries it back: the marker, and the publication a new table joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carry {
    pub marker: Marker,
    /// The reverse stream's publication (`None`: not derivable from the
    /// configuration; the marker is still written).
    pub publication: Option<String>,
    /// The statement creates a table (it must join the publication).
    pub creates_table: bool,
}

impl Carry {
    /// The marker for `mysql` (the client's text, pinned) run in `database`,
    /// with the tables the classifier found in it.
    pub fn new(
        config: &crate::config::Config,
        mysql: &str,
        database: &str,
        classified: &crate::sql::classify::Classified,
    ) -> Carry {
        Carry {
            marker: Marker {
                mysql: mysql.to_string(),
                database: database.to_string(),
                tables: classified
                    .statements
                    .iter()
                    .flat_map(|s| s.tables.iter().cloned())
                    .collect(),
            },
            publication: super::Names::from_config(config)
                .ok()
                .map(|n| n.publication),
            creates_table: creates_table(mysql),
        }
    }
}

/// Whether a MySQL statement is `CREATE TABLE …` (not `CREATE TEMPORARY
/// TABLE`: temporary tables are not carried, they live in one session).
fn creates_table(mysql: &str) -> bool {
    let (first, second) = first_two_words(mysql);
    first == "CREATE" && second == "TABLE"
}

/// `CREATE TEMPORARY TABLE` / `DROP TEMPORARY TABLE`.
fn temporary(mysql: &str) -> bool {
    let (first, second) = first_two_words(mysql);
    matches!(first.as_str(), "CREATE" | "DROP") && second == "TEMPORARY"
}

/// A statement's first two words, upper-cased ("" where there is none).
fn first_two_words(mysql: &str) -> (String, String) {
    let head: String = mysql
        .chars()
        .take(200)
        .collect::<String>()
        .to_ascii_uppercase();
    let mut words = head
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_string);
    (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    )
}

/// Tables created (or altered) in the current transaction that are in the
/// session's schema and not yet in publication `$1`, as a list for
/// `ALTER PUBLICATION … ADD TABLE`; no row when the publication does not
/// exist or nothing is missing.
const NEW_TABLES_SQL: &str = "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ') \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.xmin = pg_current_xact_id()::xid AND c.relkind IN ('r', 'p') \
     AND c.relpersistence = 'p' AND n.nspname = current_schema() \
     AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid \
                     WHERE pr.prrelid = c.oid AND p.pubname = $1) \
     HAVING EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)";

/// A string literal for PostgreSQL's simple-query text.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs a client's translated DDL on PostgreSQL with its marker in the same
/// transaction: its own transaction under autocommit (PostgreSQL DDL is
/// transactional), the client's when one is open. A created table joins the
/// publication in that transaction, so rows written right after the CREATE
/// follow it; if it cannot (not the publication's owner), the DDL still
/// succeeds and the gap is logged. On error, a transaction of our own is
/// rolled back; the client's is left as PostgreSQL left it.
pub async fn run_carried(
    pg: &mut crate::backend::pg_mysql::PgSession,
    carry: &Carry,
    translated: &[String],
) -> Result<(), tokio_postgres::Error> {
    let own = !pg.in_transaction();
    if own {
        pg.execute_silently("BEGIN").await?;
    }
    let result = run_in_transaction(pg, carry, translated).await;
    match (&result, own) {
        (Ok(()), true) => pg.execute_silently("COMMIT").await?,
        (Err(_), true) => {
            let _ = pg.execute_silently("ROLLBACK").await;
        }
        _ => {}
    }
    result
}

/// [`run_carried`], answered to the client in MySQL form: OK (with the
/// transaction flag as PostgreSQL now stands, written to `status`) or the
/// mapped error. `Ok(true)`: the DDL ran (the caller refreshes its schema).
pub async fn run_and_answer(
    client: &mut crate::wire::io::PacketIo,
    pg: &mut crate::backend::pg_mysql::PgSession,
    carry: &Carry,
    translated: &[String],
    status: &mut u16,
) -> Result<bool, crate::backend::pg_mysql::PgError> {
    use crate::backend::pg_mysql::PgError;
    let in_trans = crate::wire::StatusFlags::SERVER_STATUS_IN_TRANS.bits();
    let result = run_carried(pg, carry, translated).await;
    *status = (*status & !in_trans) | if pg.in_transaction() { in_trans } else { 0 };
    match result {
        Ok(()) => {
            let ok = crate::wire::packets::ok_packet(crate::wire::packets::OkInfo {
                status: *status,
                ..Default::default()
            });
            client.write_and_flush(1, &ok).await?;
            Ok(true)
        }
        Err(e) => {
            let err = crate::backend::pg_mysql::map_error(&e);
            client.write_and_flush(1, &err.encode()).await?;
            if pg.is_closed() {
                return Err(PgError::Backend(e));
            }
            Ok(false)
        }
    }
}

async fn run_in_transaction(
    pg: &mut crate::backend::pg_mysql::PgSession,
    carry: &Carry,
    translated: &[String],
) -> Result<(), tokio_postgres::Error> {
    for s in translated.iter().filter(|s| !s.trim().is_empty()) {
        pg.execute_silently(s).await?;
    }
    if temporary(&carry.marker.mysql) {
        // A temporary table lives in this session only: nothing to carry.
        return Ok(());
    }
    let emit = format!(
        "SELECT pg_logical_emit_message(true, {}, {})::text",
        literal(PREFIX),
        literal(&carry.marker.to_json())
    );
    pg.first_text(&emit).await?;
    let Some(publication) = carry.publication.as_deref().filter(|_| carry.creates_table) else {
        return Ok(());
    };
    let find = NEW_TABLES_SQL.replace("$1", &literal(publication));
    let Some(tables) = pg.first_text(&find).await? else {
        return Ok(());
    };
    let add = format!(
        "SAVEPOINT tandem_publication; ALTER PUBLICATION {} ADD TABLE {tables}; RELEASE SAVEPOINT tandem_publication",
        crate::migrate::sqltext::ident(crate::migrate::sqltext::Dialect::Postgres, publication)
    );
    if let Err(e) = pg.first_text(&add).await {
        tracing::warn!(error = %e, publication, tables, "reverse stream: a table created through the proxy could not join the publication; its rows are not copied back to MySQL (run the ALTER PUBLICATION as the publication's owner)");
        pg.first_text(
            "ROLLBACK TO SAVEPOINT tandem_publication; RELEASE SAVEPOINT tandem_publication",
        )
        .await?;
    } else {
        tracing::info!(
            publication,
            tables,
            "reverse stream: new table(s) joined the publication"
        );
    }
    Ok(())
}

/// Notices column changes the reverse stream was not told about: a table's
/// columns changed on PostgreSQL (pgoutput re-sends its Relation) with no
/// DDL marker naming the table since — DDL run directly on PostgreSQL, not
/// through the proxy. MySQL is not changed; the change is reported.
#[derive(Default)]
pub struct Watch {
    /// Tables named by markers, lower case, until their next Relation.
    marked: std::collections::HashSet<String>,
    /// Changes reported.
    pub unmarked: u64,
    /// Where each one is also recorded, when the stream has a drift log.
    pub drift: Option<crate::dualwrite::drift::DriftLog>,
}

/// Bound on remembered marker tables (DDL that changes no column, such as
/// CREATE INDEX, may never be followed by a changed Relation).
const WATCH_MAX: usize = 1024;

impl Watch {
    /// A marker was read.
    pub fn marked(&mut self, marker: &Marker) {
        if self.marked.len() >= WATCH_MAX {
            self.marked.clear();
        }
        for t in &marker.tables {
            // `db`.`t`, db.t, `t`: the table part.
            let name = t.rsplit('.').next().unwrap_or(t).trim_matches('`');
            self.marked.insert(name.to_ascii_lowercase());
        }
    }

    /// A Relation message for `table`: its columns as last known (`None`:
    /// first seen) and now. `true` when the change came without a marker
    /// (already logged).
    pub fn relation(&mut self, table: &str, before: Option<Vec<&str>>, after: Vec<&str>) -> bool {
        let was_marked = self.marked.remove(&table.to_ascii_lowercase());
        let Some(before) = before else {
            return false;
        };
        if before == after || was_marked {
            return false;
        }
        self.unmarked += 1;
        tracing::warn!(
            table,
            before = %before.join(","),
            after = %after.join(","),
            "reverse stream: the table's columns changed on PostgreSQL without a tandem DDL marker (DDL run on PostgreSQL directly, not through the proxy): MySQL is not changed and may drift; run the matching DDL on MySQL"
        );
        if let Some(d) = &self.drift {
            d.record(crate::dualwrite::drift::DriftEvent {
                time: crate::dualwrite::drift::now_rfc3339(),
                session: 0,
                phase: "reverse_stream",
                kind: crate::dualwrite::drift::DriftKind::Error,
                statement: format!(
                    "columns of table {table} changed on PostgreSQL from ({}) to ({})",
                    before.join(", "),
                    after.join(", ")
                ),
                translated: None,
                error: "DDL without a tandem.ddl marker (run on PostgreSQL directly): not carried back to MySQL".into(),
            });
        }
        true
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

    #[test]
    fn column_changes_without_a_marker_are_reported() {
        let mut w = Watch::default();
        assert!(!w.relation("t", None, vec!["id", "v"]));
        assert!(!w.relation("t", Some(vec!["id", "v"]), vec!["id", "v"]));
        assert!(w.relation("t", Some(vec!["id", "v"]), vec!["id", "v", "c"]));
        let m = Marker {
            mysql: "ALTER TABLE `app`.`T` ADD COLUMN d int".into(),
            database: "app".into(),
            tables: vec!["`app`.`T`".into()],
        };
        w.marked(&m);
        assert!(!w.relation("t", Some(vec!["id", "v", "c"]), vec!["id", "v", "c", "d"]));
        assert!(w.relation("t", Some(vec!["id"]), vec!["id", "e"]));
        assert_eq!(w.unmarked, 2);
    }

    #[test]
    fn only_create_table_joins_the_publication() {
        assert!(creates_table("create table t (id int)"));
        assert!(creates_table("  CREATE TABLE IF NOT EXISTS `t` (id int)"));
        assert!(!creates_table("CREATE TEMPORARY TABLE t (id int)"));
        assert!(temporary("create temporary table t (id int)"));
        assert!(temporary("DROP TEMPORARY TABLE IF EXISTS t"));
        assert!(!temporary("DROP TABLE t"));
        assert!(!creates_table("CREATE INDEX i ON t (v)"));
        assert!(!creates_table("ALTER TABLE t ADD COLUMN c int"));
        assert_eq!(literal("a'b"), "'a''b'");
    }
}
