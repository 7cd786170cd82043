//! Which backend serves a statement: a pure function of one config snapshot,
//! the statement class and the session's state, so it can be tested
//! exhaustively (it opens no socket).

use crate::config::Phase;
use crate::sql::classify::StatementClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Old,
    New,
}

/// Read stickiness is the config's enum (one definition for the setting and
/// for routing).
pub use crate::config::StickyMode as Sticky;

/// The golden-ratio step of [`weyl`].
const GOLDEN: f64 = 0.618_033_988_749_894_8;

/// Point `n` of the Weyl sequence starting at `start`, in [0, 1): successive
/// points spread evenly, so a share drawn from them matches its setting
/// closely even over few draws. Read routing and the shadow sample use it.
pub fn weyl(start: f64, n: u64) -> f64 {
    (start + n as f64 * GOLDEN).fract()
}

/// Everything routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteCtx {
    pub phase: Phase,
    pub class: StatementClass,
    /// Share of reads (0–100, fractional) the non-authoritative backend
    /// serves: new in dual_write, old in new_primary.
    pub other_percent: f64,
    pub sticky: Sticky,
    pub seed: u64,
    pub session: u64,
    /// Position of this statement in the session (statement stickiness).
    pub statement: u64,
    /// The session has an open transaction, or mirrored writes not yet
    /// applied: its reads must see its own writes, so they stay on the
    /// authoritative backend.
    pub pinned_to_primary: bool,
    /// SELECT … FOR UPDATE / LOCK IN SHARE MODE.
    pub locking_read: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The backend whose answer the client gets.
    pub primary: Target,
    /// Where a successful write is mirrored.
    pub mirror: Option<Target>,
    /// A read that could have gone to the other backend but was kept on the
    /// authoritative one for read-your-writes (counted).
    pub kept_for_consistency: bool,
}

pub fn authoritative(phase: Phase) -> Target {
    match phase {
        Phase::PrimaryOnly | Phase::DualWrite => Target::Old,
        Phase::NewPrimary | Phase::NewOnly => Target::New,
    }
}

fn other(t: Target) -> Target {
    match t {
        Target::Old => Target::New,
        Target::New => Target::Old,
    }
}

pub fn route(ctx: &RouteCtx) -> Route {
    let auth = authoritative(ctx.phase);
    let two_backends = matches!(ctx.phase, Phase::DualWrite | Phase::NewPrimary);
    let mirror = match ctx.class {
        StatementClass::Write | StatementClass::Ddl if two_backends => Some(other(auth)),
        _ => None,
    };
    let mut route = Route {
        primary: auth,
        mirror,
        kept_for_consistency: false,
    };
    if ctx.class != StatementClass::Read
        || !two_backends
        || ctx.locking_read
        || ctx.other_percent <= 0.0
    {
        return route;
    }
    // Each session starts at a hashed offset and walks a Weyl sequence (golden
    // ratio steps): successive reads are spread evenly over [0, 1), so the
    // observed share matches the setting closely even over few reads, while
    // sessions stay independent of each other.
    let start = (mix(ctx.seed ^ mix(ctx.session)) >> 11) as f64 / (1u64 << 53) as f64;
    let fraction = match ctx.sticky {
        Sticky::Statement => weyl(start, ctx.statement),
        Sticky::Session => start,
    };
    if fraction * 100.0 < ctx.other_percent {
        if ctx.pinned_to_primary {
            route.kept_for_consistency = true;
        } else {
            route.primary = other(auth);
        }
    }
    route
}

/// splitmix64's finalizer: a fast, well-distributed 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CLASSES;

    fn ctx(phase: Phase, class: StatementClass, pct: f64) -> RouteCtx {
        RouteCtx {
            phase,
            class,
            other_percent: pct,
            sticky: Sticky::Statement,
            seed: 42,
            session: 7,
            statement: 0,
            pinned_to_primary: false,
            locking_read: false,
        }
    }

    #[test]
    fn primary_only_sends_everything_to_old_and_mirrors_nothing() {
        for class in CLASSES {
            let r = route(&ctx(Phase::PrimaryOnly, class, 100.0));
            assert_eq!((r.primary, r.mirror), (Target::Old, None), "{class:?}");
        }
    }

    #[test]
    fn writes_go_to_the_authoritative_backend_and_are_mirrored() {
        for class in [StatementClass::Write, StatementClass::Ddl] {
            let r = route(&ctx(Phase::DualWrite, class, 100.0));
            assert_eq!((r.primary, r.mirror), (Target::Old, Some(Target::New)));
            let r = route(&ctx(Phase::NewPrimary, class, 100.0));
            assert_eq!((r.primary, r.mirror), (Target::New, Some(Target::Old)));
            let r = route(&ctx(Phase::NewOnly, class, 100.0));
            assert_eq!((r.primary, r.mirror), (Target::New, None));
        }
        for class in [
            StatementClass::Transaction,
            StatementClass::Session,
            StatementClass::Other,
        ] {
            assert_eq!(
                route(&ctx(Phase::DualWrite, class, 100.0)).primary,
                Target::Old
            );
        }
    }

    #[test]
    fn read_share_is_exact_within_one_point_over_10000_reads() {
        for pct in [0.5, 1.0, 10.0, 30.0, 50.0, 99.0] {
            for seed in [1u64, 2, 3] {
                let mut c = ctx(Phase::DualWrite, StatementClass::Read, pct);
                c.seed = seed;
                let mut to_new = 0;
                for s in 0..100u64 {
                    for n in 0..100u64 {
                        c.session = s;
                        c.statement = n;
                        if route(&c).primary == Target::New {
                            to_new += 1;
                        }
                    }
                }
                let share = to_new as f64 / 100.0;
                assert!(
                    (share - pct).abs() <= 1.0,
                    "{pct}% seed {seed}: got {share}%"
                );
            }
        }
        let mut c = ctx(Phase::DualWrite, StatementClass::Read, 0.0);
        assert_eq!(route(&c).primary, Target::Old);
        c.other_percent = 100.0;
        assert_eq!(route(&c).primary, Target::New);
        // In new_primary the share goes to old.
        c.phase = Phase::NewPrimary;
        assert_eq!(route(&c).primary, Target::Old);
    }

    #[test]
    fn read_your_writes_and_locking_reads_stay_on_the_primary() {
        let mut c = ctx(Phase::DualWrite, StatementClass::Read, 100.0);
        c.pinned_to_primary = true;
        let r = route(&c);
        assert_eq!(r.primary, Target::Old);
        assert!(r.kept_for_consistency);
        c.pinned_to_primary = false;
        c.locking_read = true;
        assert_eq!(route(&c).primary, Target::Old);
    }

    #[test]
    fn session_stickiness_keeps_one_choice() {
        let mut c = ctx(Phase::DualWrite, StatementClass::Read, 50.0);
        c.sticky = Sticky::Session;
        for session in 0..50 {
            c.session = session;
            c.statement = 0;
            let first = route(&c).primary;
            for n in 1..20 {
                c.statement = n;
                assert_eq!(route(&c).primary, first);
            }
        }
    }
}
