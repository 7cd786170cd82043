//! Writes in `dual_write`: run on the primary (pinned, see `dualwrite::statement`), relay its
//! answer, then queue the same write — and the transaction boundaries the
//! primary went through — for the secondary.

use std::sync::Arc;
use std::time::Duration;

use super::load_data;
use super::relay::{self, RelayError};
use super::reply::Flow;
use crate::backend::mysql::BackendConn;
use crate::backend::BackendError;
use crate::dualwrite::drift::DriftKind;
use crate::dualwrite::mirror::Op;
use crate::dualwrite::statement::Generated;
use crate::proxy::session::Session;
use crate::shadow::capture::{decode, Capture, Decoded};
use crate::sql::classify::{fallback, Classified, StatementClass, TxnOp};
use crate::sql::parse::{Ast, Parsed};
use crate::sql::schema::TableInfo;
use crate::state::AppState;
use crate::value::Value;
use crate::wire::cmd;
use crate::wire::execute::parse_params;
use crate::wire::io::{PacketIo, WireError};
use crate::wire::response::Expect;
use crate::wire::StatusFlags;

/// How long a sync-mode client waits for the secondary before it gets its
/// answer anyway (the write is then still applied or recorded as drift).
const SYNC_WAIT: Duration = Duration::from_secs(30);

/// Largest `INSERT … RETURNING` answer copied while it is relayed, to learn
/// the ids the primary generated (an ORM batch of 1,000 rows is ~50 kB).
const MAX_RETURNING_BYTES: usize = 4 << 20;

fn in_trans(status: u16) -> bool {
    status & StatusFlags::SERVER_STATUS_IN_TRANS.bits() != 0
}

/// Starts or stops this session's mirroring when the phase changed, but only
/// between transactions: a transaction is mirrored whole or not at all.
pub fn follow_phase(session: &mut Session, state: &AppState) {
    if session.in_transaction() {
        return;
    }
    // Only the mirror of the running phase applies (a session on the other
    // side is closed at its next boundary, see `stays`).
    let phase = state.snapshot.load().config.phase.as_str();
    // A guard, not a clone: cloning the `Arc` on every statement made every
    // session thread write the mirror's shared reference count.
    let current = state.mirror.load();
    let current = current.as_ref().filter(|m| m.phase() == phase);
    match (&session.mirror, current) {
        (None, Some(m)) => session.mirror = Some(m.session(session.id)),
        (Some(mine), Some(m)) if !mine.is_of(m) => session.mirror = Some(m.session(session.id)),
        (Some(_), None) => {
            session.mirror = None;
            session.mirror_txn_open = false;
        }
        _ => {}
    }
}

/// Whether a session served by `primary` may go on under the current phase.
/// When the authoritative backend changed, sessions on the other one end at a
/// transaction boundary (clients reconnect and land on the right side).
pub fn stays(session: &Session, state: &AppState, primary: crate::proxy::route::Target) -> bool {
    let phase = state.snapshot.load().config.phase;
    crate::proxy::decide::stays(phase, primary, session.in_transaction())
}

/// After a statement that is not mirrored itself: if the primary's
/// transaction ended (COMMIT, ROLLBACK, an implicit commit), end the
/// secondary's too.
pub async fn after_other(session: &mut Session, classified: Option<&Classified>) {
    if session.mirror_txn_open && !in_trans(session.status) {
        session.mirror_txn_open = false;
        let rollback = classified
            .and_then(|c| c.statements.last())
            .is_some_and(|s| s.txn == Some(TxnOp::Rollback));
        let op = if rollback { Op::Rollback } else { Op::Commit };
        if let Some(m) = session.mirror.as_mut() {
            m.send(op).await;
        }
    }
}

/// After relaying a statement that is not mirrored itself (its answer still
/// in the client's buffer): transaction boundaries go to the mirror, and in
/// sync mode a COMMIT is answered once the secondary applied it.
pub async fn after_relay(
    client: &mut PacketIo,
    session: &mut Session,
    classified: Option<&Classified>,
) -> Result<(), RelayError> {
    after_other(session, classified).await;
    if let Some(m) = session.mirror.as_mut() {
        if m.is_sync() && !m.wait_applied(SYNC_WAIT).await {
            tracing::warn!("secondary did not confirm a sync commit in time");
        }
    }
    client.flush().await.map_err(RelayError::Client)
}

/// Re-reads table definitions before the DDL is answered, so the client's next
/// writes are pinned and translated with the new definitions (bounded wait;
/// DDL is rare).
pub async fn refresh_schema_after_ddl(state: &AppState) {
    match tokio::time::timeout(Duration::from_secs(5), state.refresh_schema()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "schema refresh after DDL failed"),
        Err(_) => tracing::warn!("schema refresh after DDL timed out"),
    }
}

/// A COM_QUERY write.
pub async fn query(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
    classified: &Classified,
    ast: Option<Ast>,
) -> Result<Flow, RelayError> {
    let sql = String::from_utf8_lossy(&payload[1..]).into_owned();
    query_as(
        client,
        backend,
        session,
        state,
        payload,
        classified,
        Ok(sql),
        ast,
    )
    .await
}

/// A COM_QUERY write whose mirrored text is `sql`: the statement itself, or
/// for an SQL-level EXECUTE the prepared text with its values written in
/// (`Err`: why that text is not known). The primary runs `payload` unless
/// pinned values need a rewritten text. `ast` is what classification parsed
/// of that text, if it had to (`sql::parse`).
#[allow(clippy::too_many_arguments)]
pub async fn query_as(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
    classified: &Classified,
    sql: Result<String, String>,
    ast: Option<Ast>,
) -> Result<Flow, RelayError> {
    // Not mirrored as text (reported in `finish`): a text the proxy does not
    // know, or LOAD DATA, whose rows are in a file.
    let unmirrored = match sql {
        Ok(sql) if load_data::parse(&sql).is_some() => Err(("LOAD DATA".to_string(), sql)),
        Ok(sql) => Ok(sql),
        Err(reason) => Err((reason, String::from_utf8_lossy(&payload[1..]).into_owned())),
    };
    let sql = match unmirrored {
        Ok(sql) => sql,
        Err((reason, text)) => {
            return finish(
                client,
                backend,
                session,
                state,
                payload,
                Err(reason),
                &text,
                classified,
            )
            .await;
        }
    };
    let want_increment = session.auto_increment_increment.is_none();
    // A statement sqlparser cannot read may have an equivalent it can.
    let postgres = state
        .mirror
        .load()
        .as_ref()
        .is_some_and(|m| m.kind() == crate::config::BackendKind::Postgres);
    let readable = match classified.parsed {
        true => None,
        false => fallback::mirror_text(&sql, postgres),
    };
    let plan_sql = readable.as_ref().map_or(sql.as_str(), |(t, _)| t.as_str());
    let plan = crate::dualwrite::statement::plan(
        backend,
        Parsed::resume(plan_sql, ast),
        None,
        session.backslash_escapes(),
        want_increment,
    )
    .await
    .map_err(backend_failure)?;
    let plan = match plan {
        // Pinned values would make the primary run the rewritten text, which
        // it may only when the rewrite means the same to MySQL.
        Ok(p) if p.rewrites() && readable.as_ref().is_some_and(|(_, same)| !same) => {
            Err("pinned values in a statement whose readable form only suits PostgreSQL".into())
        }
        Err(e) if !classified.parsed => Err(fallback::note(&sql).map_or(e, str::to_string)),
        other => other,
    };
    let rewritten;
    let to_primary: &[u8] = match &plan {
        Ok(p) if p.rewrites() => {
            rewritten = [&[cmd::QUERY][..], p.primary_text().as_bytes()].concat();
            &rewritten
        }
        _ => payload,
    };
    finish(
        client, backend, session, state, to_primary, plan, &sql, classified,
    )
    .await
}

/// A COM_STMT_EXECUTE of a prepared write: its parameters are decoded so the
/// secondary gets the write as text with the same values.
pub async fn execute(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
    id: u32,
) -> Result<Flow, RelayError> {
    let escapes = session.backslash_escapes();
    let want_increment = session.auto_increment_increment.is_none();
    let Some(prepared) = session.prepared.get_mut(&id) else {
        return Ok(Flow::Continue);
    };
    let sql = prepared.sql.clone();
    let classified = prepared.classified.clone();
    let params = parse_params(
        payload,
        usize::from(prepared.params),
        &mut prepared.param_types,
        &prepared.long_data,
    );
    prepared.long_data.iter_mut().for_each(|l| *l = false);
    let plan = match params {
        Ok(values) => crate::dualwrite::statement::plan(
            backend,
            Parsed::new(&sql),
            Some(&values),
            escapes,
            want_increment,
        )
        .await
        .map_err(backend_failure)?,
        Err(e) => Err(format!("cannot decode the execute parameters: {e}")),
    };
    // With pinned values the primary must run the text (a prepared statement
    // cannot take them); the answer is then in the text protocol, which is
    // the same OK packet for a write, but not the same rows for RETURNING.
    let plan = match plan {
        Ok(p) if !p.shape.pins.is_empty() && p.shape.returning.is_some() => Err(
            "a prepared statement with RETURNING cannot run with pinned values (NOW(), UUID(), …)"
                .to_string(),
        ),
        other => other,
    };
    let rewritten;
    let to_primary: &[u8] = match &plan {
        Ok(p) if !p.shape.pins.is_empty() => {
            rewritten = [&[cmd::QUERY][..], p.primary_text().as_bytes()].concat();
            &rewritten
        }
        _ => payload,
    };
    finish(
        client,
        backend,
        session,
        state,
        to_primary,
        plan,
        &sql,
        &classified,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    to_primary: &[u8],
    plan: Result<crate::dualwrite::statement::Plan, String>,
    sql: &str,
    classified: &Classified,
) -> Result<Flow, RelayError> {
    let Some(mirror) = state.mirror.load_full() else {
        return Ok(Flow::Continue);
    };
    let sync = mirror.is_sync();
    // A write with RETURNING is answered with rows, not an OK packet: copy
    // them (bounded) to learn the ids the primary generated.
    let mut returned = match &plan {
        Ok(p) if p.shape.returning.is_some() => Some(Capture::new(MAX_RETURNING_BYTES)),
        _ => None,
    };
    let w = relay::command_tapped(
        &mut backend.io,
        client,
        to_primary,
        Expect::Results,
        session.deprecate_eof(),
        true, // the mirror learns of the write before the client does
        returned.as_mut(),
    )
    .await?;
    session.note_status(w.status);
    if w.error.is_none() {
        // An implicit commit (DDL) ends the secondary's transaction first.
        after_other(session, None).await;
        if in_trans(session.status) && !session.mirror_txn_open {
            session.mirror_txn_open = true;
            if let Some(m) = session.mirror.as_mut() {
                m.send(Op::Begin).await;
            }
        }
        match plan {
            Ok(plan) => {
                let schema = mirror.schema.load();
                let table = plan
                    .shape
                    .insert
                    .as_ref()
                    .and_then(|i| schema.table(&i.table));
                if plan.increment.is_some() {
                    session.auto_increment_increment = plan.increment;
                }
                let increment = session.auto_increment_increment.unwrap_or(1);
                let ok = w.ok.unwrap_or_default();
                let ids = match (&returned, table) {
                    (Some(c), Some(t)) if w.result_sets > 0 => Some(returned_ids(
                        c,
                        to_primary.first() == Some(&cmd::STMT_EXECUTE),
                        session.deprecate_eof(),
                        t,
                    )),
                    _ => None,
                };
                // A multi-statement text: only the last statement's OK packet
                // is seen, so ids generated by an earlier INSERT are unknown.
                let unseen_ids = plan.shape.multi_inserts.iter().find_map(|t| {
                    schema
                        .table(t)
                        .and_then(|info| info.auto_increment_column())
                        .map(|c| format!("a multi-statement text inserts into `{t}`, whose AUTO_INCREMENT `{}` values the primary assigned are not known", c.name))
                });
                let generated = match &ids {
                    Some(Ok(ids)) => Generated::Returned(ids),
                    Some(Err(reason)) => Generated::Unknown(reason),
                    None => Generated::Ok(&ok),
                };
                let text = match unseen_ids {
                    Some(reason) => Err(reason),
                    None => plan.mirror_text(generated, table, increment),
                };
                match text {
                    Ok(text) => {
                        if let Some(m) = session.mirror.as_mut() {
                            m.send(Op::Write(text)).await;
                        }
                    }
                    Err(reason) => mirror.record(
                        session.id,
                        DriftKind::Untranslatable,
                        sql,
                        None,
                        format!("not mirrored: {reason}"),
                    ),
                }
            }
            Err(reason) => {
                if let Some(load) = load_data::parse(sql) {
                    load_data::report(&mirror, session.id, sql, &load, w.ok.unwrap_or_default());
                } else if mirror.kind() == crate::config::BackendKind::Mysql && !classified.parsed {
                    // A MySQL secondary runs what sqlparser cannot read,
                    // verbatim (nothing to pin was found, so nothing is lost).
                    if let Some(m) = session.mirror.as_mut() {
                        m.send(Op::Write(sql.to_string())).await;
                    }
                } else {
                    mirror.record(
                        session.id,
                        DriftKind::Untranslatable,
                        sql,
                        None,
                        format!("cannot mirror: {reason}"),
                    )
                }
            }
        }
        if classified.class == StatementClass::Ddl {
            refresh_schema_after_ddl(state).await;
        }
    }
    if sync {
        if let Some(m) = session.mirror.as_mut() {
            if !m.wait_applied(SYNC_WAIT).await {
                tracing::warn!("secondary did not confirm a sync write in time");
            }
        }
    }
    client.flush().await.map_err(RelayError::Client)?;
    Ok(Flow::Continue)
}

/// The auto-increment values of a captured `RETURNING` answer, one per row,
/// or why they cannot be known.
fn returned_ids(
    capture: &Capture,
    binary: bool,
    deprecate_eof: bool,
    table: &TableInfo,
) -> Result<Vec<u64>, String> {
    let Some(col) = table.auto_increment_column() else {
        return Ok(Vec::new());
    };
    if capture.overflowed() {
        return Err(format!(
            "its RETURNING rows exceeded {MAX_RETURNING_BYTES} bytes"
        ));
    }
    let rows = match decode(capture, binary, deprecate_eof, usize::MAX) {
        Decoded::Rows(rows) => rows,
        Decoded::Error(e) => return Err(format!("its RETURNING rows ended in error {}", e.code)),
        Decoded::Unsupported(why) => return Err(format!("its RETURNING answer is {why}")),
    };
    let Some(at) = rows
        .columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(&col.name))
    else {
        return Err("RETURNING does not list that column".into());
    };
    rows.rows
        .iter()
        .map(|row| match row.get(at) {
            Some(Value::Int(i)) => u64::try_from(*i).map_err(|_| format!("id {i} out of range")),
            other => Err(format!("RETURNING gave {other:?} for the id")),
        })
        .collect()
}

fn backend_failure(e: BackendError) -> RelayError {
    match e {
        BackendError::Wire(w) => RelayError::Backend(w),
        other => {
            tracing::warn!(error = %other, "primary failed while pinning values");
            RelayError::Backend(WireError::Malformed("primary failed while pinning values"))
        }
    }
}
