//! Table tests for `decide`: every phase × statement class × transaction
//! state × percentage combination, checked against rules written out here
//! row by row, plus the statement facts of real classified texts.

use super::*;
use crate::metrics::CLASSES;
use crate::sql::classify::Classifier;

const PHASES: [Phase; 4] = [
    Phase::PrimaryOnly,
    Phase::DualWrite,
    Phase::NewPrimary,
    Phase::NewOnly,
];

fn statement(class: StatementClass) -> StatementFacts {
    StatementFacts {
        class,
        changes_data: matches!(class, StatementClass::Write | StatementClass::Ddl),
        locking_read: false,
        comparable: Comparable::Yes,
    }
}

fn facts(phase: Phase, class: StatementClass, side: Target) -> Facts {
    Facts {
        statement: statement(class),
        session: SessionFacts {
            side,
            in_transaction: false,
            statement_mirror: matches!(phase, Phase::DualWrite | Phase::NewPrimary),
            mirror_pending: false,
            database_selected: true,
            id: 7,
            reads: 0,
        },
        config: ConfigFacts {
            phase,
            read_share: 0.0,
            sticky: StickyMode::Statement,
            seed: 42,
            new_configured: true,
            shadow_percent: 0.0,
        },
    }
}

/// The expected mirror of a row, written out per phase and class.
fn expected_mirror(phase: Phase, class: StatementClass, statement_mirror: bool) -> Mirror {
    use StatementClass::*;
    match (phase, class, statement_mirror) {
        (_, Read | Transaction | Session | Other, _) => Mirror::None,
        (_, Write | Ddl, true) => Mirror::Statements,
        (Phase::DualWrite | Phase::NewPrimary, Write | Ddl, false) => Mirror::Stream,
        (Phase::PrimaryOnly | Phase::NewOnly, Write | Ddl, false) => Mirror::None,
    }
}

#[test]
fn every_combination_follows_the_table() {
    let mut rows = 0;
    for phase in PHASES {
        let side = authoritative(phase);
        for class in CLASSES {
            for in_transaction in [false, true] {
                for statement_mirror in [false, true] {
                    for read_share in [0.0, 100.0] {
                        for shadow in [0.0, 100.0] {
                            let mut f = facts(phase, class, side);
                            f.session.in_transaction = in_transaction;
                            f.session.statement_mirror = statement_mirror;
                            f.config.read_share = read_share;
                            f.config.shadow_percent = shadow;
                            let plan = decide(&f);
                            rows += 1;
                            let row = format!(
                                "{phase:?} {class:?} txn={in_transaction} mirror={statement_mirror} share={read_share} shadow={shadow}"
                            );
                            let read = class == StatementClass::Read;
                            let routed = read
                                && phase == Phase::DualWrite
                                && read_share > 0.0
                                && side == Target::Old;
                            assert_eq!(plan.routed_read, routed, "{row}");
                            let to_new = routed && !in_transaction;
                            assert_eq!(
                                plan.answer,
                                if to_new { Target::New } else { side },
                                "{row}"
                            );
                            assert_eq!(
                                plan.kept_for_consistency,
                                routed && in_transaction,
                                "{row}"
                            );
                            assert_eq!(
                                plan.mirror,
                                expected_mirror(phase, class, statement_mirror),
                                "{row}"
                            );
                            let writes =
                                matches!(class, StatementClass::Write | StatementClass::Ddl);
                            assert_eq!(plan.fleet_gate, writes, "{row}");
                            assert_eq!(
                                plan.pin,
                                match side {
                                    Target::Old => writes && statement_mirror,
                                    Target::New => writes,
                                },
                                "{row}"
                            );
                            let two = matches!(phase, Phase::DualWrite | Phase::NewPrimary);
                            assert_eq!(
                                plan.shadow_percent,
                                (read && two).then_some(shadow),
                                "{row}"
                            );
                            assert_eq!(plan.session_wrote, side == Target::Old && !read, "{row}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(rows, 4 * 6 * 2 * 2 * 2 * 2);
}

#[test]
fn writes_never_leave_the_authoritative_side() {
    for phase in PHASES {
        for class in CLASSES.into_iter().filter(|c| *c != StatementClass::Read) {
            let mut f = facts(phase, class, authoritative(phase));
            f.config.read_share = 100.0;
            assert_eq!(
                decide(&f).answer,
                authoritative(phase),
                "{phase:?} {class:?}"
            );
        }
    }
}

#[test]
fn routed_reads_stay_home_for_read_your_writes_and_locks() {
    let base = {
        let mut f = facts(Phase::DualWrite, StatementClass::Read, Target::Old);
        f.config.read_share = 100.0;
        f
    };
    assert_eq!(decide(&base).answer, Target::New);
    let mut pending = base;
    pending.session.mirror_pending = true;
    let p = decide(&pending);
    assert_eq!((p.answer, p.kept_for_consistency), (Target::Old, true));
    let mut locking = base;
    locking.statement.locking_read = true;
    let p = decide(&locking);
    assert_eq!((p.answer, p.routed_read), (Target::Old, true));
    // No database selected: not routed, not sampled, no position taken.
    let mut nodb = base;
    nodb.session.database_selected = false;
    nodb.config.shadow_percent = 100.0;
    let p = decide(&nodb);
    assert_eq!(
        (p.answer, p.routed_read, p.shadow_percent),
        (Target::Old, false, None)
    );
    // A PostgreSQL-served session samples without a database and never
    // routes (a session left on the old side in new_primary neither).
    let mut pg = facts(Phase::NewPrimary, StatementClass::Read, Target::New);
    pg.session.database_selected = false;
    pg.config.read_share = 100.0;
    pg.config.shadow_percent = 50.0;
    let p = decide(&pg);
    assert_eq!((p.answer, p.shadow_percent), (Target::New, Some(50.0)));
    let mut left = base;
    left.config.phase = Phase::NewPrimary;
    left.session.in_transaction = true;
    assert_eq!(decide(&left).answer, Target::Old);
    // Without a new backend nothing is sampled.
    let mut none = base;
    none.config.new_configured = false;
    none.config.read_share = 0.0;
    assert_eq!(decide(&none).shadow_percent, None);
}

#[test]
fn read_share_over_many_reads_matches_the_setting() {
    for pct in [1.0, 10.0, 50.0, 90.0] {
        let mut to_new = 0;
        for session in 0..50u64 {
            for n in 0..100u64 {
                let mut f = facts(Phase::DualWrite, StatementClass::Read, Target::Old);
                f.config.read_share = pct;
                f.session.id = session;
                f.session.reads = n;
                if decide(&f).answer == Target::New {
                    to_new += 1;
                }
            }
        }
        let share = f64::from(to_new) / 50.0;
        assert!((share - pct).abs() <= 1.0, "{pct}%: got {share}%");
    }
}

#[test]
fn sessions_end_at_a_boundary_when_the_authority_moves() {
    for phase in PHASES {
        for side in [Target::Old, Target::New] {
            let home = authoritative(phase) == side;
            assert_eq!(stays(phase, side, false), home, "{phase:?} {side:?}");
            assert!(stays(phase, side, true), "{phase:?} {side:?}");
        }
    }
}

#[test]
fn shadow_verdicts() {
    let mut s = statement(StatementClass::Read);
    assert_eq!(shadow_verdict(&s, false), Ok(()));
    assert_eq!(shadow_verdict(&s, true), Err(Skip::Transaction));
    s.comparable = Comparable::Nondeterministic;
    assert_eq!(shadow_verdict(&s, true), Err(Skip::Nondeterministic));
    s.comparable = Comparable::Unsupported;
    assert_eq!(shadow_verdict(&s, false), Err(Skip::Unsupported));
}

#[test]
fn facts_of_real_statements() {
    let c = Classifier::new(64);
    let of = |sql: &str| StatementFacts::of(&c.classify(sql), sql.as_bytes());
    let cases: [(&str, StatementClass, bool, bool, Comparable); 10] = [
        (
            "SELECT a FROM t ORDER BY a",
            StatementClass::Read,
            false,
            false,
            Comparable::Yes,
        ),
        (
            "SELECT a FROM t FOR UPDATE",
            StatementClass::Read,
            false,
            true,
            Comparable::Unsupported,
        ),
        (
            "SELECT NOW()",
            StatementClass::Read,
            false,
            false,
            Comparable::Nondeterministic,
        ),
        (
            "SHOW TABLES",
            StatementClass::Read,
            false,
            false,
            Comparable::Unsupported,
        ),
        (
            "INSERT INTO t VALUES (1)",
            StatementClass::Write,
            true,
            false,
            Comparable::Unsupported,
        ),
        (
            "CREATE TABLE x (a INT)",
            StatementClass::Ddl,
            true,
            false,
            Comparable::Unsupported,
        ),
        (
            "SAVEPOINT s1",
            StatementClass::Transaction,
            true,
            false,
            Comparable::Unsupported,
        ),
        (
            "COMMIT",
            StatementClass::Transaction,
            false,
            false,
            Comparable::Unsupported,
        ),
        (
            "SET @a = 1",
            StatementClass::Session,
            false,
            false,
            Comparable::Unsupported,
        ),
        (
            "SELECT 1; SELECT 2",
            StatementClass::Read,
            false,
            false,
            Comparable::Unsupported,
        ),
    ];
    for (sql, class, changes, locking, comparable) in cases {
        let f = of(sql);
        assert_eq!(
            (f.class, f.changes_data, f.locking_read, f.comparable),
            (class, changes, locking, comparable),
            "{sql}"
        );
    }
    // Text sqlparser cannot read: a write unless its first word reads.
    let garbage = of("FROBNICATE the table");
    assert_eq!(
        (garbage.class, garbage.changes_data),
        (StatementClass::Write, true)
    );
    assert!(plainly_reads(b"  select * from t lock in share mode"));
    assert!(plainly_reads(b"\tSHOW ENGINE INNODB STATUS"));
    assert!(!plainly_reads(b"REPLACE INTO t VALUES (1)"));
    assert!(!plainly_reads(b""));
}
