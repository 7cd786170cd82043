//! The steps both answering sides share before a statement runs: classify
//! it once (cached by fingerprint), gather the facts `proxy::decide` needs
//! from the session and one config snapshot, and decide. The fleet gate and
//! both answering sides (`session_loop`) then read the same `Plan` instead of
//! classifying and deciding again each.

use std::sync::Arc;

use super::request::Command;
use crate::metrics::Metrics;
use crate::proxy::decide::{self, ConfigFacts, Facts, Plan, SessionFacts, StatementFacts};
use crate::proxy::route::Target;
use crate::proxy::session::Session;
use crate::shadow::Relayed;
use crate::sql::classify::Classified;
use crate::sql::parse::{Ast, Parsed};
use crate::state::AppState;

/// A statement about to run, with what was decided for it.
pub(super) struct Statement {
    pub classified: Arc<Classified>,
    pub facts: StatementFacts,
    pub plan: Plan,
    /// The AST classification parsed on a cache miss, for the answering
    /// side's pinning and translation (`sql::parse`: one parse per statement).
    pub ast: Option<Ast>,
}

/// One client command as the pipeline carries it: the packet as sent
/// (relayed verbatim), the command read from it once, and the statement
/// decided for it.
pub(super) struct Incoming<'a> {
    pub payload: &'a [u8],
    pub command: Command<'a>,
    pub statement: Option<Statement>,
}

/// Reads, classifies and decides one command for the session on `side`.
pub(super) fn request<'a>(
    state: &AppState,
    session: &Session,
    payload: &'a [u8],
    side: Target,
) -> Incoming<'a> {
    let command = Command::parse(payload);
    let statement = prepare(state, session, &command, side);
    Incoming {
        payload,
        command,
        statement,
    }
}

/// The statement a COM_QUERY or COM_STMT_EXECUTE carries, decided for the
/// session on `side`; `None` for other commands and unknown statement ids.
fn prepare(
    state: &AppState,
    session: &Session,
    command: &Command<'_>,
    side: Target,
) -> Option<Statement> {
    match *command {
        Command::Query(sql) => {
            let (classified, ast) = classify_keeping_ast(state, sql);
            let mut statement = statement(state, session, classified, sql, side);
            statement.ast = ast;
            Some(statement)
        }
        Command::Execute(id) => {
            let p = session.prepared.get(&id?)?;
            let classified = Arc::clone(&p.classified);
            Some(statement(
                state,
                session,
                classified,
                p.sql.as_bytes(),
                side,
            ))
        }
        _ => None,
    }
}

/// `reply::classify`, keeping the AST a cache miss parsed.
pub(super) fn classify_keeping_ast(state: &AppState, sql: &[u8]) -> (Arc<Classified>, Option<Ast>) {
    // `from_utf8` checks ASCII a word at a time; `from_utf8_lossy` walks
    // the text in chunks even when it is valid (a few hundred instructions
    // per statement in the profile). Non-UTF-8 text is classified on a
    // lossy copy; the backend always receives the original bytes.
    let text = match std::str::from_utf8(sql) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(sql),
    };
    let mut parsed = Parsed::new(&text);
    let classified = state.classifier.classify_parsed(&mut parsed);
    (classified, parsed.keep())
}

/// Whether the command passes the fleet's write gate: a statement that may
/// change data, or an execute of a statement the proxy does not know.
pub(super) fn may_write(request: &Incoming<'_>) -> bool {
    match (&request.command, &request.statement) {
        (_, Some(s)) => s.plan.fleet_gate,
        (Command::Execute(_), None) => true,
        _ => false,
    }
}

/// Decides a classified statement for this session, now.
pub(super) fn statement(
    state: &AppState,
    session: &Session,
    classified: Arc<Classified>,
    text: &[u8],
    side: Target,
) -> Statement {
    let snapshot = state.snapshot.load();
    let config = &snapshot.config;
    let facts = StatementFacts::of(&classified, text);
    let plan = decide::decide(&Facts {
        statement: facts,
        session: SessionFacts {
            side,
            in_transaction: session.in_transaction(),
            statement_mirror: session.mirror.is_some(),
            mirror_pending: session.mirror.as_ref().is_some_and(|m| m.has_pending()),
            database_selected: !session.database.is_empty(),
            id: session.id,
            reads: session.reads,
        },
        config: ConfigFacts {
            phase: config.phase,
            read_share: state.cockpit.read_share(config),
            sticky: config.reads.sticky,
            seed: config.reads.seed,
            new_configured: config.backends.new.is_some(),
            shadow_percent: config.shadow.sample_percent,
        },
    });
    Statement {
        classified,
        facts,
        plan,
        ast: None,
    }
}

/// Carries out the routing bookkeeping of a read about to be served: its
/// position in the session's routing sequence, and the consistency count.
pub(super) fn note_routed(state: &AppState, session: &mut Session, plan: &Plan) {
    if plan.routed_read {
        session.reads += 1;
    }
    if plan.kept_for_consistency {
        Metrics::incr(&state.metrics.reads_kept_for_consistency);
    }
}

/// Whether a read the session's own side answers is compared on the other
/// side: the sample is drawn (only now), then the verdict counted.
pub(super) fn shadow_sampled(state: &AppState, session: &Session, s: &Statement) -> bool {
    let Some(percent) = s.plan.shadow_percent else {
        return false;
    };
    state.shadow.admit(
        percent,
        decide::shadow_verdict(&s.facts, session.in_transaction()),
    )
}

/// Queues the comparison of a read the client has been answered.
pub(super) fn shadow_submit(
    state: &AppState,
    session: &Session,
    classified: &Classified,
    statement: String,
    primary: Target,
    relayed: Option<Relayed>,
) {
    let info = classified.statements.first();
    state.shadow.submit(crate::shadow::Job {
        session: session.id,
        fingerprint: classified.fingerprint.clone(),
        statement,
        database: session.database.clone(),
        ordered: info.is_some_and(|i| i.ordered),
        primary,
        relayed,
        session_writes: session.mirror.as_ref().map(|m| m.progress()),
    });
}
