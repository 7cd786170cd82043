//! PostgreSQL as the side that answers a session (`new_primary`,
//! `new_only`; `session_loop` runs the loop, `pg_login` the login): the
//! client still speaks MySQL; each statement is translated, run on the
//! session's own PostgreSQL connection and answered in MySQL form
//! (`backend::pg_mysql`).
//! In `new_primary`, writes that succeeded are mirrored back to the old MySQL
//! backend — with the ids PostgreSQL assigned and the values the proxy pinned
//! — so that going back to `dual_write` stays possible.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::answer::{Answer, Side, Step, Stop};
use super::pg_pinned;
use super::pg_translate::translate_one_parsed;
use super::pg_vars;
use super::pipeline::{self, Incoming, Statement};
use super::request::Command;
use super::write;
use crate::backend::pg_mysql::{ClientContext, PgError, PgSession, Request};
use crate::dualwrite::mirror::Op;
use crate::proxy::decide::{Mirror, Plan};
use crate::proxy::route::Target;
use crate::proxy::session::{Prepared, Session};
use crate::sql::classify::{Classified, StatementClass, TxnOp};
use crate::sql::parse::Parsed;
use crate::state::AppState;
use crate::stream::reverse::ddl;
use crate::wire::execute::{parse_params, ParamValue};
use crate::wire::io::{PacketIo, WireError};
use crate::wire::packets::{ok_packet, OkInfo, ServerError};
use crate::wire::StatusFlags;

const AUTOCOMMIT: u16 = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
const IN_TRANS: u16 = StatusFlags::SERVER_STATUS_IN_TRANS.bits();

/// PostgreSQL as the side that answers (`session_loop::Answer`): the
/// session's own connection, its slot, and the next statement id to give.
pub(super) struct Postgres {
    pub pg: PgSession,
    pub permit: OwnedSemaphorePermit,
    next_statement: u32,
}

impl Postgres {
    pub fn new(pg: PgSession, permit: OwnedSemaphorePermit, session: &Session) -> Self {
        // A session handed over keeps the ids MariaDB gave its statements.
        let next_statement = session
            .prepared
            .keys()
            .max()
            .map_or(1, |m| m.wrapping_add(1).max(1));
        Self {
            pg,
            permit,
            next_statement,
        }
    }
}

impl Answer for Postgres {
    const SIDE: Target = Target::New;

    async fn dispatch(
        &mut self,
        client: &mut PacketIo,
        session: &mut Session,
        state: &Arc<AppState>,
        request: Incoming<'_>,
    ) -> Step {
        let next = &mut self.next_statement;
        match dispatch(client, &mut self.pg, session, state, request, next).await {
            Ok(true) => Step::Continue,
            Ok(false) => Step::Stop(Stop::Clean),
            Err(e) => {
                tracing::info!(error = %e, "PostgreSQL-served session ended");
                Step::Stop(Stop::Dirty)
            }
        }
    }

    async fn other_side(&mut self, session: &mut Session, state: &Arc<AppState>) -> Option<Side> {
        super::handover::to_mysql(session, self.pg.in_transaction(), state).await
    }

    async fn leave(self, _state: &Arc<AppState>, _session: &Session) {
        // Not in a transaction (`handover::blocked_back`): closed as is.
        drop((self.pg, self.permit));
    }

    async fn end(mut self, mut client: PacketIo, _: &Session, _: &Arc<AppState>, _: Stop) {
        if self.pg.in_transaction() {
            let _ = self.pg.execute_silently("ROLLBACK").await;
        }
        client.shutdown().await;
    }
}

/// One command. `Ok(false)` ends the session.
async fn dispatch(
    client: &mut PacketIo,
    pg: &mut PgSession,
    session: &mut Session,
    state: &Arc<AppState>,
    request: Incoming<'_>,
    next_statement: &mut u32,
) -> Result<bool, PgError> {
    let Incoming {
        payload,
        command,
        statement: stmt,
    } = request;
    match command {
        Command::Empty => {
            reply(
                client,
                1,
                &ServerError::new(1047, b"08S01", "Unknown command").encode(),
            )
            .await?;
        }
        Command::Quit => return Ok(false),
        Command::Ping => ok(client, session).await?,
        Command::InitDb(db) => {
            session.database = String::from_utf8_lossy(db).into_owned();
            ok(client, session).await?;
        }
        Command::ResetConnection => {
            if pg.in_transaction() {
                let _ = pg.execute_silently("ROLLBACK").await;
            }
            session.prepared.clear();
            session.status = AUTOCOMMIT;
            ok(client, session).await?;
        }
        Command::Query(text) => {
            let mut stmt = stmt.unwrap_or_else(|| {
                let (classified, ast) = pipeline::classify_keeping_ast(state, text);
                let mut stmt = pipeline::statement(state, session, classified, text, Target::New);
                stmt.ast = ast;
                stmt
            });
            state.metrics.count_statement(stmt.classified.class);
            let sql = String::from_utf8_lossy(text).into_owned();
            let parsed = Parsed::resume(&sql, stmt.ast.take());
            statement(client, pg, session, state, parsed, &stmt, None).await?;
        }
        Command::Prepare(text) => {
            let sql = String::from_utf8_lossy(text).into_owned();
            let mut parsed = Parsed::new(&sql);
            let classified = state.classifier.classify_parsed(&mut parsed);
            let id = *next_statement;
            *next_statement = next_statement.wrapping_add(1).max(1);
            let pg_sql = match translate_one_parsed(&mut parsed, state) {
                Ok(s) => s,
                Err(e) => {
                    reply(client, 1, &e.encode()).await?;
                    return Ok(true);
                }
            };
            let hints = schema(state);
            let cx = context(session);
            let req = Request {
                sql: &pg_sql,
                params: &[],
                binary: true,
                returning_id: false,
                status: session.status,
            };
            let summary = pg
                .prepare_to_mysql(&req, id, &cx, &*hints, client, 1)
                .await?;
            client.flush().await?;
            if summary.error.is_none() {
                session.prepared.insert(
                    id,
                    Prepared {
                        classified,
                        params: summary.params,
                        sql,
                        param_types: Vec::new(),
                        long_data: vec![false; usize::from(summary.params)],
                    },
                );
            }
        }
        Command::Execute(id) => {
            let Some(id) = id else {
                return Ok(true);
            };
            let Some(p) = session.prepared.get_mut(&id) else {
                let err = ServerError::new(
                    1243,
                    b"HY000",
                    "Unknown prepared statement handler given to mysqld_stmt_execute",
                );
                reply(client, 1, &err.encode()).await?;
                return Ok(true);
            };
            let values = match parse_params(
                payload,
                usize::from(p.params),
                &mut p.param_types,
                &p.long_data,
            ) {
                Ok(v) => v,
                Err(e) => {
                    reply(
                        client,
                        1,
                        &ServerError::new(1210, b"HY000", e.to_string()).encode(),
                    )
                    .await?;
                    return Ok(true);
                }
            };
            let sql = p.sql.clone();
            let stmt = match stmt {
                Some(s) => s,
                None => {
                    let classified = Arc::clone(&p.classified);
                    pipeline::statement(state, session, classified, sql.as_bytes(), Target::New)
                }
            };
            state.metrics.count_statement(stmt.classified.class);
            let parsed = Parsed::new(&sql);
            statement(client, pg, session, state, parsed, &stmt, Some(&values)).await?;
        }
        Command::Close(id) => {
            if let Some(id) = id {
                session.prepared.remove(&id);
            }
        }
        Command::Reset(_) => ok(client, session).await?,
        Command::LongData(_) => {}
        Command::Fetch
        | Command::SetOption
        | Command::ChangeUser
        | Command::FieldList
        | Command::ProcessInfo
        | Command::Simple(_)
        | Command::Unsupported(_) => {
            let err = ServerError::new(
                1047,
                b"08S01",
                "Unknown command (not available while PostgreSQL is authoritative)",
            );
            reply(client, 1, &err.encode()).await?;
        }
    }
    Ok(true)
}

/// Runs one client statement (text, or a prepared one with `params`).
async fn statement(
    client: &mut PacketIo,
    pg: &mut PgSession,
    session: &mut Session,
    state: &Arc<AppState>,
    mut parsed: Parsed<'_>,
    stmt: &Statement,
    params: Option<&[ParamValue]>,
) -> Result<(), PgError> {
    let sql = parsed.text();
    let (classified, plan) = (&*stmt.classified, stmt.plan);
    let binary = params.is_some();
    match classified.class {
        StatementClass::Session => return session_statement(client, pg, session, sql).await,
        StatementClass::Transaction => {
            return transaction_statement(client, pg, session, classified, &plan, sql).await
        }
        _ => {}
    }
    if classified.class == StatementClass::Read {
        if let Some(vars) = pg_vars::system_variables(sql) {
            return pg_vars::answer_variables(client, session, state, &vars).await;
        }
    }
    // Writes and DDL run with pinned values (see `proxy::decide`).
    let writes = plan.pin;
    let schema = schema(state);
    let pg_pinned::Pinned {
        shape,
        mysql_text,
        edits,
        translated,
    } = pg_pinned::pin_and_translate(&mut parsed, params, writes, session.last_insert_id, &schema);
    let translated = match translated {
        Ok(t) if !t.statements.is_empty() => t.statements,
        Ok(_) => vec![String::new()],
        Err(e) => {
            let err = ServerError::new(
                1235,
                b"42000",
                format!("This statement cannot be run on PostgreSQL by tandem: {e}"),
            );
            reply(client, 1, &err.encode()).await?;
            return Ok(());
        }
    };
    // autocommit=0: the first statement opens the transaction, as in MySQL.
    if session.status & AUTOCOMMIT == 0
        && !pg.in_transaction()
        && classified.class != StatementClass::Other
    {
        let _ = pg.execute_silently("BEGIN").await;
    }
    if classified.class == StatementClass::Ddl && plan.mirror == Mirror::Stream {
        // The reverse stream carries it back: a marker in the same transaction.
        let carry = ddl::Carry::new(
            &state.snapshot.load().config,
            &mysql_text,
            &session.database,
            classified,
        );
        if ddl::run_and_answer(client, pg, &carry, &translated, &mut session.status).await? {
            write::refresh_schema_after_ddl(state).await;
        }
        return Ok(());
    }
    let (last, before) = translated
        .split_last()
        .map(|(l, b)| (l.clone(), b.to_vec()))
        .unwrap_or_default();
    for extra in &before {
        if let Err(e) = pg.execute_silently(extra).await {
            let err = crate::backend::pg_mysql::map_error(&e);
            reply(client, 1, &err.encode()).await?;
            return Ok(());
        }
    }
    let insert = shape.as_ref().and_then(|s| s.insert.clone());
    let table = insert.as_ref().and_then(|i| schema.table(&i.table));
    let id_column = table
        .and_then(|t| t.auto_increment_column())
        .map(|c| c.name.clone());
    let returning_id = classified.class == StatementClass::Write
        && id_column.is_some()
        && !last.to_ascii_uppercase().contains(" RETURNING ");
    let pg_sql = match (&id_column, returning_id) {
        (Some(col), true) => format!("{last} RETURNING \"{}\"", col.replace('"', "\"\"")),
        _ => last,
    };
    let cx = context(session);
    // Parameters were inlined into the text, which keeps the pinned values
    // and the mirrored text identical; the answer is still binary for
    // COM_STMT_EXECUTE.
    let req = Request {
        sql: &pg_sql,
        params: &[],
        binary,
        returning_id,
        status: session.status,
    };
    let summary = pg.query_to_mysql(&req, &cx, &*schema, client, 1).await?;
    session.status = summary.status;
    if classified.class == StatementClass::Read && pipeline::shadow_sampled(state, session, stmt) {
        // PostgreSQL's answer was rendered, not relayed: the worker runs the
        // statement on both sides.
        pipeline::shadow_submit(
            state,
            session,
            classified,
            mysql_text.clone(),
            crate::proxy::route::Target::New,
            None,
        );
    }
    if summary.error.is_none() && summary.last_insert_id != 0 {
        session.last_insert_id = summary.last_insert_id;
    }
    if summary.error.is_none() && plan.mirror == Mirror::Statements {
        // Mirror to the old backend with PostgreSQL's ids.
        write::after_other(session, None).await;
        if session.status & IN_TRANS != 0 && !session.mirror_txn_open {
            session.mirror_txn_open = true;
            if let Some(m) = session.mirror.as_mut() {
                m.send(Op::Begin).await;
            }
        }
        let text = match &shape {
            Some(s) => {
                let plan = crate::dualwrite::statement::Plan {
                    original: sql.to_string(),
                    edits,
                    shape: s.clone(),
                    increment: Some(1),
                };
                let ok = OkInfo {
                    affected_rows: summary.affected_rows,
                    last_insert_id: summary.last_insert_id,
                    ..Default::default()
                };
                // Ids from an OK packet are never an error (ambiguous ones
                // are left to the server).
                plan.mirror_text(crate::dualwrite::statement::Generated::Ok(&ok), table, 1)
                    .unwrap_or_else(|_| sql.to_string())
            }
            None => mysql_text,
        };
        if let Some(m) = session.mirror.as_mut() {
            m.send(Op::Write(text)).await;
        }
    }
    if summary.error.is_none() && classified.class == StatementClass::Ddl {
        write::refresh_schema_after_ddl(state).await;
    }
    if let Some(mirror) = state.mirror.load_full() {
        if summary.error.is_some() && writes {
            let _ = mirror;
        } else if mirror.is_sync() {
            if let Some(m) = session.mirror.as_mut() {
                m.wait_applied(Duration::from_secs(30)).await;
            }
        }
    }
    client.flush().await?;
    Ok(())
}

/// The PostgreSQL text for a transaction statement.
pub(super) fn transaction_sql(op: Option<TxnOp>, sql: &str) -> String {
    match op {
        Some(TxnOp::Begin) => "BEGIN".to_string(),
        Some(TxnOp::Commit) => "COMMIT".to_string(),
        Some(TxnOp::Rollback) => "ROLLBACK".to_string(),
        // SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO read the same.
        _ => sql.replace('`', "\""),
    }
}

async fn transaction_statement(
    client: &mut PacketIo,
    pg: &mut PgSession,
    session: &mut Session,
    classified: &Classified,
    plan: &Plan,
    sql: &str,
) -> Result<(), PgError> {
    let pg_sql = transaction_sql(classified.statements.first().and_then(|s| s.txn), sql);
    let result = pg.execute_silently(&pg_sql).await;
    let status = (session.status & !IN_TRANS) | if pg.in_transaction() { IN_TRANS } else { 0 };
    session.status = status;
    match result {
        Ok(()) => {
            // Savepoints go to the mirror too (`ROLLBACK TO` works there).
            if plan.mirror == Mirror::Statements {
                if let Some(m) = session.mirror.as_mut() {
                    m.send(Op::Write(sql.to_string())).await;
                }
            }
            write::after_other(session, Some(classified)).await;
            ok(client, session).await?;
        }
        Err(e) => {
            reply(client, 1, &crate::backend::pg_mysql::map_error(&e).encode()).await?;
        }
    }
    Ok(())
}

/// SET / USE while PostgreSQL is authoritative: what maps is applied, what
/// is harmless is acknowledged, anything else is refused with a clear error.
async fn session_statement(
    client: &mut PacketIo,
    pg: &mut PgSession,
    session: &mut Session,
    sql: &str,
) -> Result<(), PgError> {
    match session_action(sql) {
        SessionAction::Use(db) => {
            session.database = db;
            ok(client, session).await
        }
        SessionAction::Autocommit(on) => {
            if on && pg.in_transaction() {
                // MySQL commits the open transaction when autocommit is turned on.
                let _ = pg.execute_silently("COMMIT").await;
                session.status &= !IN_TRANS;
                write::after_other(session, None).await;
            }
            session.status = if on {
                session.status | AUTOCOMMIT
            } else {
                session.status & !AUTOCOMMIT
            };
            ok(client, session).await
        }
        SessionAction::Acknowledge => ok(client, session).await,
        SessionAction::Refuse => {
            let err = ServerError::new(
                1235,
                b"42000",
                "This SET is not supported while PostgreSQL is authoritative (tandem)".to_string(),
            );
            reply(client, 1, &err.encode())
                .await
                .map_err(PgError::Client)
        }
    }
}

/// What a SET / USE does while PostgreSQL is authoritative, decided from
/// the text alone.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SessionAction {
    /// `USE db`: the session's schema.
    Use(String),
    /// `SET autocommit = …`.
    Autocommit(bool),
    /// Harmless on PostgreSQL (names, sql_mode, time zone …): OK, no effect.
    Acknowledge,
    /// Anything else: a clear error.
    Refuse,
}

pub(super) fn session_action(sql: &str) -> SessionAction {
    let body = sql.trim().trim_end_matches(';').trim_end();
    let upper = body.to_ascii_uppercase();
    if upper.starts_with("USE ") {
        let db = body.get(4..).unwrap_or_default().trim().trim_matches('`');
        return SessionAction::Use(db.to_string());
    }
    let compact: String = upper.chars().filter(|c| !c.is_whitespace()).collect();
    let autocommit = compact
        .strip_prefix("SET")
        .map(|s| {
            s.trim_start_matches("SESSION")
                .trim_start_matches("@@SESSION.")
                .trim_start_matches("@@")
        })
        .and_then(|s| s.strip_prefix("AUTOCOMMIT="));
    if let Some(value) = autocommit {
        return SessionAction::Autocommit(matches!(value, "1" | "ON" | "TRUE"));
    }
    const HARMLESS: [&str; 12] = [
        "SETNAMES",
        "SETCHARACTERSET",
        "SETCHARSET",
        "SET@@SESSION.SQL_MODE",
        "SETSESSIONSQL_MODE",
        "SETSQL_MODE",
        "SETTIME_ZONE",
        "SETSESSIONTIME_ZONE",
        "SETCHARACTER_SET_",
        "SETCOLLATION_CONNECTION",
        "SETSESSIONTRANSACTION",
        "SETTRANSACTION",
    ];
    if HARMLESS.iter().any(|p| compact.starts_with(p)) {
        return SessionAction::Acknowledge;
    }
    SessionAction::Refuse
}

fn schema(state: &AppState) -> Arc<crate::sql::schema::Schema> {
    state.schema.load_full()
}

fn context(session: &Session) -> ClientContext<'_> {
    ClientContext {
        capabilities: session.client_caps,
        mariadb_caps: session.mariadb_caps,
        collation: u16::from(session.collation),
        schema: &session.database,
    }
}

async fn ok(client: &mut PacketIo, session: &Session) -> Result<(), PgError> {
    let packet = ok_packet(OkInfo {
        status: session.status,
        ..Default::default()
    });
    reply(client, 1, &packet).await.map_err(PgError::Client)
}

async fn reply(client: &mut PacketIo, seq: u8, payload: &[u8]) -> Result<(), WireError> {
    client.write_and_flush(seq, payload).await.map(|_| ())
}

#[cfg(test)]
#[path = "pg_primary_tests.rs"]
mod tests;
