//! PostgreSQL answering in MySQL form: in the phases where PostgreSQL serves
//! a statement (already translated to PostgreSQL SQL), the client still gets
//! exactly the packets MySQL would have sent — column definitions as MySQL
//! describes its column types, text or binary rows, OK packets with affected
//! rows and insert id, ERR packets with MySQL's codes.
//!
//! Pieces: `crate::value::pg_binary` decodes PostgreSQL's binary format without loss,
//! `render` prints values as MySQL does, `columns` builds column definitions
//! from MySQL type hints or the PostgreSQL type, `catalog` finds where result
//! columns come from, `errors` maps SQLSTATEs, `respond` writes the packets.
//!
//! Contracts with the caller:
//! - **Parameters** are bytes bound in PostgreSQL's text format (`$1` …), so
//!   the server parses them for whatever type it inferred (see
//!   `postgres::TextParam`).
//! - **Insert ids**: for an INSERT into a table with an identity column the
//!   caller appends `RETURNING "id"` and sets `Request::returning_id`; the rows
//!   are not sent, the first returned id becomes the OK packet's
//!   last_insert_id (MySQL reports the first id of a multi-row insert).
//! - **Transactions**: tokio-postgres does not expose ReadyForQuery's
//!   transaction status, so the session tracks it from the statements it
//!   runs: BEGIN / START TRANSACTION open one, COMMIT / END / ROLLBACK /
//!   ABORT / PREPARE TRANSACTION close it (also when they fail: PostgreSQL
//!   ends the transaction anyway), `… AND CHAIN` and `ROLLBACK TO` keep it.
//!   SERVER_STATUS_IN_TRANS follows that; the other status bits (AUTOCOMMIT)
//!   are the caller's, passed in `Request::status`. Statements must not
//!   change the transaction state in other ways (no `DO` blocks committing).
//! - **Response end**: the last packets stay in `out`'s buffer; the caller
//!   flushes (a sync mirror may hold the answer). Rows stream as they come.
//! - On `Err(PgError::Backend)` the client already has an ERR (2013); drop
//!   this session. On `Err(PgError::Client)` the client is gone.

mod catalog;
pub mod columns;
#[cfg(test)]
mod decoder_prop;
pub mod errors;
pub mod hints;
mod numbers;
pub mod render;
mod respond;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use tokio_postgres::Statement;

pub use columns::ColumnDef;
pub use errors::{map_error, map_error_in, ErrorContext};
pub use hints::{ColumnAttrs, ColumnHints, KeyFlags, MysqlColumnType, MysqlKind, NoHints};

use crate::backend::postgres::{self, ConnectError};
use crate::config::BackendTarget;
use crate::wire::io::{PacketIo, WireError};
use crate::wire::packets::ServerError;
use crate::wire::{CapabilityFlags, MariadbCapabilities, StatusFlags};
use catalog::Catalog;
use columns::{ColumnPlan, DefContext, Origin};

/// Prepared statements kept per session (by SQL text). Evicted ones are
/// closed on the server.
pub const STATEMENT_CACHE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The PostgreSQL connection failed; the client got ERR 2013.
    #[error("PostgreSQL connection lost: {0}")]
    Backend(tokio_postgres::Error),
    /// Writing to the client failed.
    #[error("client connection failed: {0}")]
    Client(#[from] WireError),
}

/// One statement to run.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// PostgreSQL SQL, parameters as `$1` …; one statement.
    pub sql: &'a str,
    /// Parameter values as bytes in text form (`b"42"`, `b"2024-01-02"`,
    /// raw bytes for bytea); `None` is NULL.
    pub params: &'a [Option<&'a [u8]>],
    /// COM_STMT_EXECUTE (binary rows) rather than COM_QUERY (text rows).
    pub binary: bool,
    /// The statement ends with `RETURNING <identity column>` added by the
    /// caller: answer with an OK carrying the first id, not with rows.
    pub returning_id: bool,
    /// The session's status flags (AUTOCOMMIT …); IN_TRANS is set from the
    /// tracked transaction state.
    pub status: u16,
}

/// What shapes the packets for this client.
#[derive(Debug, Clone, Copy)]
pub struct ClientContext<'a> {
    /// Capabilities negotiated with the client (CLIENT_DEPRECATE_EOF is the
    /// one that changes the packets written here).
    pub capabilities: CapabilityFlags,
    /// MariaDB extended capabilities (MARIADB_CLIENT_EXTENDED_METADATA).
    pub mariadb_caps: u32,
    /// The connection collation (45 = utf8mb4_general_ci).
    pub collation: u16,
    /// The MySQL database the client uses: reported as the schema of table
    /// columns and named in error messages.
    pub schema: &'a str,
}

impl ClientContext<'_> {
    pub fn deprecate_eof(&self) -> bool {
        self.capabilities
            .contains(CapabilityFlags::CLIENT_DEPRECATE_EOF)
    }

    fn extended_metadata(&self) -> bool {
        self.mariadb_caps & MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA.bits() != 0
    }
}

/// What was sent for one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    /// The session's status flags after the statement (those its OK or
    /// EOF carried).
    pub status: u16,
    pub warnings: u16,
    /// Rows sent in a result set.
    pub rows: u64,
    /// Set when the answer was (or ended with) an ERR packet.
    pub error: Option<ServerError>,
}

/// What COM_STMT_PREPARE answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareSummary {
    pub params: u16,
    pub columns: u16,
    pub error: Option<ServerError>,
}

/// A cached statement and where its result columns come from.
struct Prepared {
    stmt: Statement,
    origins: Vec<Option<Origin>>,
}

/// One PostgreSQL connection serving one MySQL client session.
pub struct PgSession {
    client: tokio_postgres::Client,
    statements: LruCache<String, Arc<Prepared>>,
    catalog: Catalog,
    in_transaction: bool,
}

/// A statement-level failure, before or during execution.
enum Failure {
    /// PostgreSQL refused the statement (or the connection broke).
    Pg(tokio_postgres::Error),
    /// Refused by this layer before anything ran.
    Refused(ServerError),
}

impl PgSession {
    pub async fn connect(target: &BackendTarget, timeout: Duration) -> Result<Self, PgError> {
        let client = postgres::connect(target, timeout).await?;
        Ok(Self::new(client))
    }

    /// Wraps an open connection (whose I/O task the caller has spawned).
    pub fn new(client: tokio_postgres::Client) -> Self {
        Self {
            client,
            statements: LruCache::new(
                NonZeroUsize::new(STATEMENT_CACHE).unwrap_or(NonZeroUsize::MIN),
            ),
            catalog: Catalog::default(),
            in_transaction: false,
        }
    }

    /// Inside an explicit transaction (as tracked; see the module notes).
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The first column of the first row of `sql` as text (`None`: no row
    /// or NULL), for the proxy's own bookkeeping queries.
    pub async fn first_text(&self, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
        for message in self.client.simple_query(sql).await? {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                return Ok(row.get(0).map(str::to_owned));
            }
        }
        Ok(None)
    }

    /// Runs statements whose answer the client does not see (an implicit
    /// BEGIN under autocommit=0, the extra statements of a translated DDL),
    /// keeping the tracked transaction state.
    pub async fn execute_silently(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let effect = Effect::of(sql);
        let result = self.client.batch_execute(sql).await;
        self.apply(effect, result.is_ok());
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(
            first.as_str(),
            "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "COMMENT"
        ) {
            // DDL may have changed what cached statements describe.
            self.statements.clear();
        }
        result
    }

    /// Runs one statement and writes the whole MySQL response to `out`,
    /// starting at sequence id `seq`: ERR, OK, or a result set in text or
    /// binary form.
    pub async fn query_to_mysql(
        &mut self,
        req: &Request<'_>,
        cx: &ClientContext<'_>,
        hints: &dyn ColumnHints,
        out: &mut PacketIo,
        seq: u8,
    ) -> Result<Summary, PgError> {
        if is_blank(req.sql) {
            // Only blanks and comments: what MySQL answers, not PostgreSQL's
            // empty OK.
            let err = ServerError::new(1065, b"42000", "Query was empty");
            out.write_packet(seq, &err.encode());
            return Ok(Summary {
                error: Some(err),
                status: self.status(self.in_transaction, req.status),
                ..Default::default()
            });
        }
        let effect = Effect::of(req.sql);
        let status = self.status(effect.in_transaction_after(self.in_transaction), req.status);
        let mut retried = false;
        let result = loop {
            let (prepared, plans) = match self.prepare_and_plan(req, cx, hints).await {
                Ok(p) => p,
                Err(f) => break Err(f),
            };
            if req.params.len() != prepared.stmt.params().len() {
                break Err(Failure::Refused(ServerError::new(
                    1210,
                    b"HY000",
                    format!(
                        "Incorrect arguments to mysqld_stmt_execute: {} parameters for {} placeholders",
                        req.params.len(),
                        prepared.stmt.params().len()
                    ),
                )));
            }
            let reply = respond::Reply {
                plans: &plans,
                req,
                cx,
                status,
            };
            match respond::run(&self.client, &prepared.stmt, &reply, out, seq).await {
                Err(respond::RunError::Start(e)) if !retried && self.stale_statement(&e) => {
                    // The cached statement went stale (DDL elsewhere); nothing
                    // ran, so prepare it again once.
                    self.statements.pop(req.sql);
                    retried = true;
                }
                Err(respond::RunError::Start(e)) => break Err(Failure::Pg(e)),
                Err(respond::RunError::Lost(e)) => {
                    self.apply(effect, false);
                    return Err(PgError::Backend(e));
                }
                Err(respond::RunError::Client(e)) => {
                    self.apply(effect, false);
                    return Err(PgError::Client(e));
                }
                Ok(summary) => break Ok(summary),
            }
        };
        let mut summary = match result {
            Ok(summary) => {
                self.apply(effect, summary.error.is_none());
                summary
            }
            Err(f) => {
                self.apply(effect, false);
                self.fail(f, cx, out, seq).await?
            }
        };
        summary.status = self.status(self.in_transaction, req.status);
        Ok(summary)
    }

    /// Prepares a statement for COM_STMT_PREPARE and writes PREPARE_OK with
    /// parameter and column definitions (or ERR). `statement_id` is the id the
    /// caller gives the client.
    pub async fn prepare_to_mysql(
        &mut self,
        req: &Request<'_>,
        statement_id: u32,
        cx: &ClientContext<'_>,
        hints: &dyn ColumnHints,
        out: &mut PacketIo,
        seq: u8,
    ) -> Result<PrepareSummary, PgError> {
        match self.prepare_and_plan(req, cx, hints).await {
            Ok((prepared, plans)) => {
                let params = prepared.stmt.params().len();
                let reply = respond::Reply {
                    plans: &plans,
                    req,
                    cx,
                    status: self.status(self.in_transaction, req.status),
                };
                respond::prepare_ok(statement_id, params, &reply, out, seq).await?;
                Ok(PrepareSummary {
                    params: u16::try_from(params).unwrap_or(u16::MAX),
                    columns: if req.returning_id {
                        0
                    } else {
                        plans.len() as u16
                    },
                    error: None,
                })
            }
            Err(f) => {
                let s = self.fail(f, cx, out, seq).await?;
                Ok(PrepareSummary {
                    error: s.error,
                    ..Default::default()
                })
            }
        }
    }

    async fn prepare_and_plan(
        &mut self,
        req: &Request<'_>,
        cx: &ClientContext<'_>,
        hints: &dyn ColumnHints,
    ) -> Result<(Arc<Prepared>, Vec<ColumnPlan>), Failure> {
        let prepared = match self.statements.get(req.sql) {
            Some(p) => p.clone(),
            None => {
                let stmt = self.client.prepare(req.sql).await.map_err(Failure::Pg)?;
                let origins = self
                    .catalog
                    .origins(&self.client, stmt.columns())
                    .await
                    .map_err(Failure::Pg)?;
                let p = Arc::new(Prepared { stmt, origins });
                self.statements.put(req.sql.to_string(), p.clone());
                p
            }
        };
        let ctx = DefContext {
            schema: cx.schema,
            collation: cx.collation,
        };
        let mut plans = Vec::with_capacity(prepared.stmt.columns().len());
        for (col, origin) in prepared.stmt.columns().iter().zip(&prepared.origins) {
            let hint = origin
                .as_ref()
                .and_then(|o| hints.mysql_column(&o.table, &o.column));
            let plan = columns::plan(
                col.name(),
                col.type_(),
                col.type_modifier(),
                origin.as_ref(),
                hint,
                ctx,
            )
            .map_err(|pg_type| {
                Failure::Refused(ServerError::new(
                    1105,
                    b"HY000",
                    format!(
                        "column '{}' has PostgreSQL type {pg_type}, which has no MySQL form; cast it to text",
                        col.name()
                    ),
                ))
            })?;
            plans.push(plan);
        }
        Ok((prepared, plans))
    }

    /// Errors that mean the cached statement no longer matches the server:
    /// retried once outside transactions (inside one, the error has already
    /// aborted it).
    fn stale_statement(&self, e: &tokio_postgres::Error) -> bool {
        !self.in_transaction
            && e.as_db_error().is_some_and(|db| {
                let code = db.code().code();
                code == "26000"
                    || (code == "0A000" && db.message().contains("cached plan must not change"))
            })
    }

    fn status(&self, in_transaction: bool, caller: u16) -> u16 {
        let in_trans = StatusFlags::SERVER_STATUS_IN_TRANS.bits();
        (caller & !in_trans) | if in_transaction { in_trans } else { 0 }
    }

    /// Transaction tracking and cache invalidation once a statement finished.
    fn apply(&mut self, effect: Effect, succeeded: bool) {
        match effect {
            Effect::Begin if succeeded => self.in_transaction = true,
            Effect::End => self.in_transaction = false,
            Effect::SchemaChange if succeeded => {
                self.statements.clear();
                self.catalog.clear();
            }
            _ => {}
        }
    }

    /// Writes the ERR for a failure; `Err` when the connection itself is gone.
    async fn fail(
        &mut self,
        f: Failure,
        cx: &ClientContext<'_>,
        out: &mut PacketIo,
        seq: u8,
    ) -> Result<Summary, PgError> {
        let err = match &f {
            Failure::Refused(e) => e.clone(),
            Failure::Pg(e) => errors::map_error_in(e, ErrorContext { schema: cx.schema }),
        };
        out.write_packet(seq, &err.encode());
        if let Failure::Pg(e) = f {
            if e.as_db_error().is_none() || self.client.is_closed() {
                return Err(PgError::Backend(e));
            }
        }
        Ok(Summary {
            error: Some(err),
            ..Default::default()
        })
    }
}

/// What a statement does to the session beyond its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    None,
    /// BEGIN / START TRANSACTION.
    Begin,
    /// COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION (not `AND CHAIN`,
    /// not `ROLLBACK TO`): the transaction is over even if they fail.
    End,
    /// DDL, DISCARD, DEALLOCATE: cached statements and catalog facts may be
    /// stale.
    SchemaChange,
}

impl Effect {
    fn of(sql: &str) -> Self {
        let words = leading_words(sql, 8);
        let word = |i: usize| words.get(i).map_or("", String::as_str);
        let chain = words.windows(2).any(|w| w[0] == "AND" && w[1] == "CHAIN");
        match word(0) {
            "BEGIN" | "START" => Effect::Begin,
            "COMMIT" | "END" | "ABORT" if !chain => Effect::End,
            "ROLLBACK" if word(1) != "TO" && !chain => Effect::End,
            "PREPARE" if word(1) == "TRANSACTION" => Effect::End,
            "CREATE" | "ALTER" | "DROP" | "DISCARD" | "DEALLOCATE" => Effect::SchemaChange,
            _ => Effect::None,
        }
    }

    /// The transaction state if the statement succeeds.
    fn in_transaction_after(self, now: bool) -> bool {
        match self {
            Effect::Begin => true,
            Effect::End => false,
            _ => now,
        }
    }
}

/// Only whitespace, comments and semicolons.
fn is_blank(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return rest.is_empty();
        }
    }
}

/// The first `n` words of `sql`, upper-cased, skipping comments.
fn leading_words(sql: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = sql;
    while words.len() < n {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(' || c == ';');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            words.push(rest[..end].to_ascii_uppercase());
            rest = &rest[end..];
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_effects() {
        assert_eq!(Effect::of("BEGIN"), Effect::Begin);
        assert_eq!(Effect::of("start transaction read only"), Effect::Begin);
        assert_eq!(Effect::of("COMMIT"), Effect::End);
        assert_eq!(Effect::of("COMMIT AND CHAIN"), Effect::None);
        assert_eq!(Effect::of("rollback"), Effect::End);
        assert_eq!(Effect::of("ROLLBACK TO SAVEPOINT s1"), Effect::None);
        assert_eq!(Effect::of("PREPARE TRANSACTION 'x'"), Effect::End);
        assert_eq!(Effect::of("ALTER TABLE t ADD c int"), Effect::SchemaChange);
        assert_eq!(Effect::of("SELECT 1"), Effect::None);
        assert!(!Effect::End.in_transaction_after(true));
        assert!(Effect::None.in_transaction_after(true));
    }

    #[test]
    fn leading_words_skip_comments() {
        assert_eq!(leading_words("  /* x */ begin;", 2), vec!["BEGIN"]);
        assert_eq!(
            leading_words("-- c\nROLLBACK TO SAVEPOINT a", 3),
            vec!["ROLLBACK", "TO", "SAVEPOINT"]
        );
        assert_eq!(leading_words("(SELECT 1)", 1), vec!["SELECT"]);
        assert!(leading_words("", 2).is_empty());
        assert!(leading_words("/* open", 2).is_empty());
        assert!(is_blank(" ; -- x\n /* y */"));
        assert!(!is_blank("/* y */ $1"));
    }
}
