//! One decision per statement. Before this module the choices about one
//! statement were made in six places (mirror in the write path, read share in
//! `route`, a second read gate in the routed-read path, shadow sampling, the
//! fleet gate, which side a session stays on); each re-derived what it needed
//! from the classification. Now both answering sides gather the same facts
//! and call [`decide`], a pure function, and carry out the [`Plan`] it
//! returns. Runtime outcomes stay with the caller: a routed read that cannot
//! be served on the new backend falls back to the authoritative one, a full
//! shadow queue drops the comparison.
//!
//! The shadow sample is drawn from a process-wide sequence only when the
//! authoritative side answered a read (so a routed read does not consume a
//! draw): the plan says whether and at which share to draw, and
//! [`shadow_verdict`] (pure too) says whether a sampled read can be compared.

use crate::config::{Phase, StickyMode};
use crate::proxy::route::{route, RouteCtx, Target};
use crate::sql::classify::{Classified, StatementClass, TxnOp};

/// What the decision needs to know about the statement (from its
/// classification, made once and cached by fingerprint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementFacts {
    pub class: StatementClass,
    /// May change data as the mirror sees it: writes, DDL and savepoints (so
    /// that `ROLLBACK TO` works on the other side too); text sqlparser cannot
    /// parse counts as a write unless it plainly reads.
    pub changes_data: bool,
    /// `SELECT … FOR UPDATE` / `LOCK IN SHARE MODE` somewhere in the text.
    pub locking_read: bool,
    /// Whether its answer can be compared between the two engines.
    pub comparable: Comparable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparable {
    Yes,
    /// Not a single plain query (SHOW, EXPLAIN, several statements, a
    /// locking read).
    Unsupported,
    /// The answer depends on more than the data (NOW(), RAND(), LIMIT
    /// without ORDER BY …).
    Nondeterministic,
}

impl StatementFacts {
    /// The facts of a classified text (`text` is only looked at when
    /// sqlparser could not read it).
    pub fn of(classified: &Classified, text: &[u8]) -> Self {
        let changes_data = match classified.class {
            StatementClass::Write if !classified.parsed => !plainly_reads(text),
            StatementClass::Write | StatementClass::Ddl => true,
            StatementClass::Transaction => classified.statements.iter().any(|s| {
                matches!(
                    s.txn,
                    Some(TxnOp::Savepoint | TxnOp::ReleaseSavepoint | TxnOp::RollbackToSavepoint)
                )
            }),
            _ => false,
        };
        let comparable = match classified.statements.as_slice() {
            [info] if !info.query || info.locking_read => Comparable::Unsupported,
            [info] if info.nondeterministic => Comparable::Nondeterministic,
            [_] => Comparable::Yes,
            _ => Comparable::Unsupported,
        };
        Self {
            class: classified.class,
            changes_data,
            locking_read: classified.statements.iter().any(|s| s.locking_read),
            comparable,
        }
    }
}

/// Unparsable statements that cannot change data (`SELECT … LOCK IN SHARE
/// MODE`, `SHOW …`). Looks at the first word only, without allocating.
fn plainly_reads(sql: &[u8]) -> bool {
    let first = sql
        .split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    [
        &b"SELECT"[..],
        b"SHOW",
        b"DESC",
        b"DESCRIBE",
        b"EXPLAIN",
        b"CHECKSUM",
        b"HANDLER",
        b"TABLE",
        b"HELP",
    ]
    .iter()
    .any(|k| first.eq_ignore_ascii_case(k))
}

/// The session's state as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    /// The side answering this session (fixed at connect).
    pub side: Target,
    pub in_transaction: bool,
    /// The session queues its writes for the other side itself (statement
    /// mirror); without one, a change stream may carry them.
    pub statement_mirror: bool,
    /// Mirrored writes not yet applied on the other side.
    pub mirror_pending: bool,
    /// A database is selected (the other side resolves names the same way
    /// only then).
    pub database_selected: bool,
    pub id: u64,
    /// Reads routed so far (the position in the routing sequence).
    pub reads: u64,
}

/// The parts of one config snapshot the decision reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigFacts {
    pub phase: Phase,
    /// Share of reads (0–100) the new backend serves in `dual_write` (the
    /// ramp's current value when one runs).
    pub read_share: f64,
    pub sticky: StickyMode,
    pub seed: u64,
    /// `[backends.new]` is configured.
    pub new_configured: bool,
    /// `[shadow] sample_percent`.
    pub shadow_percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    pub statement: StatementFacts,
    pub session: SessionFacts,
    pub config: ConfigFacts,
}

/// How a statement reaches the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mirror {
    /// Nothing to mirror (a read, or one backend only).
    None,
    /// The session sends the statement's text (pinned, translated) to the
    /// other side once the primary succeeded.
    Statements,
    /// The proxy sends nothing: a change stream from the primary's binlog
    /// carries the change. Nothing is pinned or translated.
    Stream,
}

/// What to do with one statement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The side whose answer the client gets (a routed read still falls
    /// back to the session's own side when the new one cannot serve it).
    pub answer: Target,
    /// The read took a position in the routing sequence (the session's read
    /// counter moves on).
    pub routed_read: bool,
    /// A read that could have gone to the other side but stays for
    /// read-your-writes (counted).
    pub kept_for_consistency: bool,
    pub mirror: Mirror,
    /// Non-deterministic values (NOW(), UUID(), ids) are fixed by the proxy
    /// before the statement runs, so both sides store the same.
    pub pin: bool,
    /// When the session's own side answers a read: the share of such reads
    /// to sample for comparison on the other side (`None`: never compared).
    pub shadow_percent: Option<f64>,
    /// Passes the fleet's write gate first (it may change data).
    pub fleet_gate: bool,
    /// After this statement, reads routed to the new backend must first see
    /// the change stream catch up with the primary (read-your-writes with a
    /// binlog source).
    pub session_wrote: bool,
}

/// The authoritative side of a phase: where sessions connect.
pub fn authoritative(phase: Phase) -> Target {
    crate::proxy::route::authoritative(phase)
}

/// Whether a session answered by `side` may go on: when the authoritative
/// side changed, sessions on the other one end at a transaction boundary
/// (clients reconnect and land on the right side).
pub fn stays(phase: Phase, side: Target, in_transaction: bool) -> bool {
    in_transaction || authoritative(phase) == side
}

pub fn decide(f: &Facts) -> Plan {
    let (st, se, cf) = (&f.statement, &f.session, &f.config);
    let two_backends = matches!(cf.phase, Phase::DualWrite | Phase::NewPrimary);
    let mirror = match (st.changes_data, se.statement_mirror) {
        // A session keeps its mirror to the end of a transaction that
        // outlives a phase change: a transaction is mirrored whole.
        (true, true) => Mirror::Statements,
        (true, false) if two_backends => Mirror::Stream,
        _ => Mirror::None,
    };
    let pin = match se.side {
        Target::Old => mirror == Mirror::Statements,
        // PostgreSQL runs the pinned text itself, mirrored or not.
        Target::New => matches!(st.class, StatementClass::Write | StatementClass::Ddl),
    };
    let mut plan = Plan {
        answer: se.side,
        routed_read: false,
        kept_for_consistency: false,
        mirror,
        pin,
        shadow_percent: None,
        fleet_gate: st.changes_data,
        session_wrote: se.side == Target::Old && st.class != StatementClass::Read,
    };
    if st.class != StatementClass::Read {
        return plan;
    }
    // Reads go to the new backend only from sessions on the old one, in
    // dual_write, in a selected database. (Routing in new_primary towards
    // the old backend is not built.)
    if se.side == Target::Old
        && cf.phase == Phase::DualWrite
        && cf.read_share > 0.0
        && se.database_selected
    {
        let routed = route(&RouteCtx {
            phase: cf.phase,
            class: st.class,
            other_percent: cf.read_share,
            sticky: cf.sticky,
            seed: cf.seed,
            session: se.id,
            statement: se.reads,
            pinned_to_primary: se.in_transaction || se.mirror_pending,
            locking_read: st.locking_read,
        });
        plan.routed_read = true;
        plan.kept_for_consistency = routed.kept_for_consistency;
        plan.answer = routed.primary;
    }
    // Sessions on the old side compare only in a selected database (the
    // other side runs it there); PostgreSQL-served sessions always have one.
    if two_backends && cf.new_configured && (se.side == Target::New || se.database_selected) {
        plan.shadow_percent = Some(cf.shadow_percent);
    }
    plan
}

/// Why a sampled read is not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Unsupported,
    Nondeterministic,
    /// A read inside a transaction sees its uncommitted writes.
    Transaction,
}

/// Whether a read that was drawn into the shadow sample can be compared.
pub fn shadow_verdict(statement: &StatementFacts, in_transaction: bool) -> Result<(), Skip> {
    match statement.comparable {
        Comparable::Unsupported => Err(Skip::Unsupported),
        Comparable::Nondeterministic => Err(Skip::Nondeterministic),
        Comparable::Yes if in_transaction => Err(Skip::Transaction),
        Comparable::Yes => Ok(()),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
