//! The MySQL relay as the side that answers a session (`session_loop`
//! runs the loop): each command is relayed to the session's backend
//! connection and the response passed back verbatim, with the bookkeeping
//! relaying needs (prepared statements, routed and shadowed reads, the
//! statement mirror, COM_CHANGE_USER). What the other answering modules
//! share with it lives below it: `reply.rs` (`Flow`, `classify`,
//! `reply_error`) and `answer.rs` (the `Answer` trait it implements).

use std::sync::Arc;

use tracing::Instrument;

use super::answer::{Answer, ShutdownWatch, Side, Step, Stop};
use super::idle::{self, Idle};
use super::login::access_denied;
use super::pipeline::{self, Incoming};
use super::reads::{self, Text};
use super::relay::{self, RelayError};
use super::reply::{classify, reply_error, Flow};
use super::request::Command;
use super::sql_prepared;
use super::write;
use crate::auth::verify_native;
use crate::backend::mysql::BackendConn;
use crate::backend::pool::LeasePermit;
use crate::metrics::Metrics;
use crate::proxy::decide::Mirror;
use crate::proxy::route::Target;
use crate::proxy::session::{Prepared, Session};
use crate::shadow::capture::Capture;
use crate::shadow::Relayed;
use crate::sql::classify::{Classified, StatementClass};
use crate::state::AppState;
use crate::wire::handshake::{ChangeUser, NATIVE_PASSWORD};
use crate::wire::io::{Packet, PacketIo, WireError};
use crate::wire::packets::{auth_switch_request, ServerError};
use crate::wire::response::Expect;

/// The MySQL relay as the side that answers (`session_loop::Answer`): the
/// session's leased backend connection and its pool slot.
pub(super) struct Relay {
    pub backend: BackendConn,
    pub permit: LeasePermit,
}

impl Answer for Relay {
    const SIDE: Target = Target::Old;

    async fn next(
        &mut self,
        client: &mut PacketIo,
        mut shutdown: Option<&mut ShutdownWatch>,
    ) -> Result<Packet, Stop> {
        match idle::wait(client, &mut self.backend.io, shutdown.as_deref_mut()).await {
            Idle::Client => {}
            Idle::Shutdown => return Err(Stop::Clean),
            Idle::Backend(how) => return Err(Stop::BackendGone(how)),
        }
        super::answer::read_command(client, shutdown).await
    }

    async fn dispatch(
        &mut self,
        client: &mut PacketIo,
        session: &mut Session,
        state: &Arc<AppState>,
        request: Incoming<'_>,
    ) -> Step {
        match dispatch(client, &mut self.backend, session, state, request).await {
            Ok(Flow::Continue) => Step::Continue,
            Ok(Flow::Quit) => Step::Stop(Stop::Clean),
            Err(RelayError::Client(e)) => {
                tracing::info!(error = %e, "client went away during a response");
                Step::Stop(Stop::Dirty)
            }
            Err(RelayError::Backend(e)) => {
                Metrics::incr(&state.metrics.backend_errors);
                tracing::warn!(error = %e, "backend connection failed; closing the client session");
                Step::Stop(Stop::Dirty)
            }
        }
    }

    async fn other_side(&mut self, session: &mut Session, state: &Arc<AppState>) -> Option<Side> {
        super::handover::to_postgres(session, state).await
    }

    async fn leave(self, state: &Arc<AppState>, _session: &Session) {
        // Between commands: the connection is clean (`handover::blocked`
        // made sure no protocol option changed), back to the pool.
        state.old.release(self.backend, self.permit);
    }

    async fn end(mut self, client: PacketIo, session: &Session, state: &Arc<AppState>, how: Stop) {
        let mut client = client;
        match how {
            Stop::BackendGone(peer) => {
                idle::close_like_backend(client, &mut self.backend.io, peer).await;
            }
            Stop::Clean if !session.protocol_changed => {
                client.shutdown().await;
                state.old.release(self.backend, self.permit);
            }
            Stop::Clean | Stop::Dirty => {
                client.shutdown().await;
            }
        }
    }
}

async fn dispatch(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    request: Incoming<'_>,
) -> Result<Flow, RelayError> {
    let Incoming {
        payload,
        command,
        statement: stmt,
    } = request;
    let deprecate_eof = session.deprecate_eof();
    let expect = match command {
        Command::Empty => {
            reply_error(
                client,
                1,
                &ServerError::new(1047, b"08S01", "Unknown command"),
            )
            .await?;
            return Ok(Flow::Continue);
        }
        Command::Quit => return Ok(Flow::Quit),
        Command::Query(sql) => {
            let started = std::time::Instant::now();
            let mut stmt = stmt.unwrap_or_else(|| {
                pipeline::statement(state, session, classify(state, sql), sql, Target::Old)
            });
            let (classified, plan) = (&stmt.classified, stmt.plan);
            state.metrics.count_statement(classified.class);
            let mut timer = LatencyTimer::new(state, classified.class, started);
            let span = tracing::debug_span!("stmt", class = ?classified.class, fingerprint = %classified.fingerprint);
            if plan.session_wrote {
                session.stream_wrote = true;
            }
            if sql_prepared::candidate(classified) {
                let parsed = std::str::from_utf8(sql).ok().and_then(sql_prepared::parse);
                if let Some(c) = parsed {
                    return sql_prepared::serve(
                        client, backend, session, state, payload, classified, c,
                    )
                    .instrument(span)
                    .await;
                }
            }
            if plan.mirror == Mirror::Statements {
                let ast = stmt.ast.take();
                return write::query(client, backend, session, state, payload, classified, ast)
                    .instrument(span)
                    .await;
            }
            pipeline::note_routed(state, session, &plan);
            if plan.answer == Target::New
                && reads::serve_from_new(
                    client,
                    backend,
                    session,
                    state,
                    Text::Raw(sql, stmt.ast.take()),
                )
                .await?
            {
                return Ok(Flow::Continue);
            }
            let mut capture = pipeline::shadow_sampled(state, session, &stmt)
                .then(|| Capture::new(capture_bytes(state)));
            let w = relay::command_tapped(
                &mut backend.io,
                client,
                payload,
                Expect::Results,
                deprecate_eof,
                session.mirror.is_some(),
                capture.as_mut(),
            )
            .instrument(span)
            .await?;
            let took = timer.stop();
            if classified.class == StatementClass::Read {
                let error = w.error.is_some();
                state.cockpit.old_reads.record(took, error);
            }
            if let Some(capture) = capture {
                let relayed = Relayed {
                    capture,
                    binary: false,
                    deprecate_eof,
                    latency: took,
                };
                let statement = String::from_utf8_lossy(sql).into_owned();
                pipeline::shadow_submit(
                    state,
                    session,
                    classified,
                    statement,
                    Target::Old,
                    Some(relayed),
                );
            }
            session.note_status(w.status);
            if w.ok.is_some() && classified.class == StatementClass::Session {
                if let Some(db) = used_database(sql) {
                    session.database = db;
                }
            }
            write::after_relay(client, session, Some(classified)).await?;
            return Ok(Flow::Continue);
        }
        Command::Prepare(sql) => {
            let classified = classify(state, sql);
            let w = relay::command(
                &mut backend.io,
                client,
                payload,
                Expect::Prepare,
                deprecate_eof,
            )
            .await?;
            if let Some(ok) = w.prepare_ok {
                session.prepared.insert(
                    ok.statement_id,
                    Prepared {
                        classified,
                        params: ok.params,
                        sql: String::from_utf8_lossy(sql).into_owned(),
                        param_types: Vec::new(),
                        long_data: vec![false; usize::from(ok.params)],
                    },
                );
            }
            return Ok(Flow::Continue);
        }
        Command::Execute(id) => {
            // `stmt` is `None` for an unknown statement id: relayed as is.
            if stmt.as_ref().is_none_or(|s| s.plan.session_wrote) {
                session.stream_wrote = true;
            }
            let started = std::time::Instant::now();
            let mut timer = stmt.as_ref().map(|s| {
                state.metrics.count_statement(s.classified.class);
                LatencyTimer::new(state, s.classified.class, started)
            });
            if let (Some(id), Some(s)) = (id, &stmt) {
                if s.plan.mirror == Mirror::Statements {
                    return write::execute(client, backend, session, state, payload, id).await;
                }
                pipeline::note_routed(state, session, &s.plan);
                let text = Text::Prepared { payload, id };
                if s.plan.answer == Target::New
                    && reads::serve_from_new(client, backend, session, state, text).await?
                {
                    if let Some(p) = session.prepared.get_mut(&id) {
                        p.long_data.iter_mut().for_each(|l| *l = false);
                    }
                    return Ok(Flow::Continue);
                }
            }
            // Types bound now may be omitted by a later execute that is
            // routed or sampled, which must decode the parameters.
            if let Some(p) = id.and_then(|id| session.prepared.get_mut(&id)) {
                crate::wire::execute::remember_types(
                    payload,
                    usize::from(p.params),
                    &mut p.param_types,
                );
            }
            let mut capture = stmt
                .as_ref()
                .filter(|s| pipeline::shadow_sampled(state, session, s))
                .map(|_| Capture::new(capture_bytes(state)));
            let w = relay::command_tapped(
                &mut backend.io,
                client,
                payload,
                Expect::Results,
                deprecate_eof,
                session.mirror.is_some(),
                capture.as_mut(),
            )
            .await?;
            let took = match timer.as_mut() {
                Some(t) => t.stop(),
                None => started.elapsed(),
            };
            let classified = stmt.map(|s| s.classified);
            if classified
                .as_ref()
                .is_some_and(|c| c.class == StatementClass::Read)
            {
                let error = w.error.is_some();
                state.cockpit.old_reads.record(took, error);
            }
            if let Some(capture) = capture {
                shadow_execute(
                    session,
                    state,
                    payload,
                    id,
                    classified.as_deref(),
                    capture,
                    took,
                );
            }
            session.note_status(w.status);
            if let Some(p) = id.and_then(|id| session.prepared.get_mut(&id)) {
                p.long_data.iter_mut().for_each(|l| *l = false);
            }
            write::after_relay(client, session, classified.as_deref()).await?;
            return Ok(Flow::Continue);
        }
        Command::Fetch => Expect::Fetch,
        Command::Reset(id) => {
            if let Some(p) = id.and_then(|id| session.prepared.get_mut(&id)) {
                p.long_data.iter_mut().for_each(|l| *l = false);
            }
            Expect::Single
        }
        Command::Close(id) => {
            if let Some(id) = id {
                session.prepared.remove(&id);
            }
            relay::command_no_response(&mut backend.io, payload).await?;
            return Ok(Flow::Continue);
        }
        Command::LongData(target) => {
            // Remember which parameter came this way: it is not in the execute.
            if let Some((id, param)) = target {
                if let Some(flag) = session
                    .prepared
                    .get_mut(&id)
                    .and_then(|p| p.long_data.get_mut(usize::from(param)))
                {
                    *flag = true;
                }
            }
            relay::command_no_response(&mut backend.io, payload).await?;
            return Ok(Flow::Continue);
        }
        Command::ResetConnection => {
            session.prepared.clear();
            session.sql_prepared.clear();
            Expect::Single
        }
        Command::SetOption => {
            session.protocol_changed = true;
            Expect::Single
        }
        Command::ChangeUser => return change_user(client, backend, session, state, payload).await,
        Command::FieldList => Expect::FieldList,
        Command::ProcessInfo => Expect::Results,
        Command::InitDb(db) => {
            let w = relay::command(
                &mut backend.io,
                client,
                payload,
                Expect::Single,
                deprecate_eof,
            )
            .await?;
            session.note_status(w.status);
            if w.ok.is_some() {
                session.database = String::from_utf8_lossy(db).into_owned();
            }
            return Ok(Flow::Continue);
        }
        Command::Ping | Command::Simple(_) => Expect::Single,
        Command::Unsupported(other) => {
            // Replication and other commands a proxy cannot pass on safely.
            tracing::info!(command = other, "unsupported command refused");
            reply_error(
                client,
                1,
                &ServerError::new(1047, b"08S01", "Unknown command"),
            )
            .await?;
            return Ok(Flow::Continue);
        }
    };
    let w = relay::command(&mut backend.io, client, payload, expect, deprecate_eof).await?;
    session.note_status(w.status);
    Ok(Flow::Continue)
}

/// Records a statement's latency when dropped (whichever way it ends): the
/// time `stop` measured once the response was relayed, or the time until the
/// drop when the statement ended early. One clock read serves the latency
/// metric, the cockpit and a shadow read's record.
struct LatencyTimer<'a> {
    state: &'a AppState,
    class: StatementClass,
    started: std::time::Instant,
    took: Option<std::time::Duration>,
}

impl<'a> LatencyTimer<'a> {
    fn new(state: &'a AppState, class: StatementClass, started: std::time::Instant) -> Self {
        Self {
            state,
            class,
            started,
            took: None,
        }
    }

    /// The statement's latency, now; recorded as such when dropped.
    fn stop(&mut self) -> std::time::Duration {
        *self.took.get_or_insert_with(|| self.started.elapsed())
    }
}

impl Drop for LatencyTimer<'_> {
    fn drop(&mut self) {
        let took = self.stop();
        self.state.metrics.observe_latency(self.class, took);
    }
}

/// The database a successful `USE db` switched to.
fn used_database(sql: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(sql)
        .ok()?
        .trim()
        .trim_end_matches(';')
        .trim_end();
    text.get(..4).filter(|k| k.eq_ignore_ascii_case("use "))?;
    let name = text[4..].trim();
    let name = name
        .strip_prefix('`')
        .and_then(|n| n.strip_suffix('`'))
        .map_or_else(|| name.to_string(), |n| n.replace("``", "`"));
    (!name.is_empty()).then_some(name)
}

/// Queues the comparison of a prepared read: its text with the execute's
/// parameters written in, run as text on the other backend.
fn shadow_execute(
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
    id: Option<u32>,
    classified: Option<&Classified>,
    capture: crate::shadow::capture::Capture,
    latency: std::time::Duration,
) {
    let escapes = session.backslash_escapes();
    let (Some(classified), Some(id)) = (classified, id) else {
        return;
    };
    let Some(statement) = reads::inline_execute(session, payload, id, escapes) else {
        state
            .shadow
            .stats
            .skipped_unsupported
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return;
    };
    let relayed = Relayed {
        capture,
        binary: true,
        deprecate_eof: session.deprecate_eof(),
        latency,
    };
    pipeline::shadow_submit(
        state,
        session,
        classified,
        statement,
        Target::Old,
        Some(relayed),
    );
}

/// How much of an answer is copied for a shadow comparison.
fn capture_bytes(state: &AppState) -> usize {
    state.snapshot.load().config.shadow.capture_bytes as usize
}

/// COM_CHANGE_USER (users mode; see `passthrough` for the other): the new
/// user is checked against the proxy's users (with
/// the salt of our greeting), then the backend connection is switched too,
/// which resets its session exactly as the server does.
async fn change_user(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
) -> Result<Flow, RelayError> {
    if state.old.passthrough() {
        return super::passthrough::change_user(client, backend, session, state, payload).await;
    }
    let Ok(request) = ChangeUser::parse(payload, session.client_caps) else {
        reply_error(
            client,
            1,
            &ServerError::new(1047, b"08S01", "Malformed COM_CHANGE_USER"),
        )
        .await?;
        return Ok(Flow::Quit);
    };
    let mut seq = 1u8;
    let mut token = request.auth_response.clone();
    if request
        .auth_plugin
        .as_deref()
        .is_some_and(|p| p != NATIVE_PASSWORD)
    {
        client
            .write_and_flush(seq, &auth_switch_request(NATIVE_PASSWORD, &session.salt))
            .await
            .map_err(RelayError::Client)?;
        let reply = client.read_packet().await.map_err(RelayError::Client)?;
        token = reply.payload.to_vec();
        seq = reply.seq.wrapping_add(1);
    }
    let user = String::from_utf8_lossy(&request.user).into_owned();
    let snapshot = state.snapshot.load();
    let ok = snapshot
        .users
        .get(&user)
        .is_some_and(|c| verify_native(c, &session.salt, &token));
    if !ok {
        Metrics::incr(&state.metrics.auth_failures);
        tracing::warn!(user, "COM_CHANGE_USER authentication failed");
        reply_error(
            client,
            seq,
            &access_denied(&user, session.peer, !token.is_empty()),
        )
        .await?;
        return Ok(Flow::Quit);
    }
    let collation = request
        .collation
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(session.collation);
    // No database asked for: none selected, as on the server.
    let database = request.database.clone();
    match backend
        .change_user(&state.old.target, collation, database.clone())
        .await
    {
        Ok(ok) => {
            client
                .write_and_flush(seq, &ok.payload)
                .await
                .map_err(RelayError::Client)?;
            session.user = user;
            session.collation = collation;
            session.database = database
                .map(|d| String::from_utf8_lossy(&d).into_owned())
                .unwrap_or_default();
            session.prepared.clear();
            session.sql_prepared.clear();
            // A routed-read connection runs as the previous user's role.
            session.read_pg = None;
            session.note_status(crate::wire::packets::OkInfo::parse(&ok.payload).map(|o| o.status));
            tracing::Span::current().record("user", session.user.as_str());
            Ok(Flow::Continue)
        }
        Err(crate::backend::BackendError::Server(e)) => {
            reply_error(client, seq, &e).await?;
            Ok(Flow::Quit)
        }
        Err(crate::backend::BackendError::Wire(e)) => Err(RelayError::Backend(e)),
        Err(e) => Err(RelayError::Backend(WireError::Malformed(
            // Keep the reason in the log; the client sees the connection close.
            {
                tracing::warn!(error = %e, "backend COM_CHANGE_USER failed");
                "backend COM_CHANGE_USER failed"
            },
        ))),
    }
}
