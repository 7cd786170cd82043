//! Which backend serves a statement: a pure function of the phase and the
//! statement class, so it can be tested exhaustively.

use crate::config::Phase;
use crate::sql::classify::StatementClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Old,
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The backend whose answer the client gets.
    pub primary: Target,
}

pub fn route(phase: Phase, _class: StatementClass) -> Route {
    match phase {
        Phase::PrimaryOnly | Phase::DualWrite => Route {
            primary: Target::Old,
        },
        Phase::NewPrimary | Phase::NewOnly => Route {
            primary: Target::New,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CLASSES;

    #[test]
    fn primary_only_sends_everything_to_old() {
        for class in CLASSES {
            assert_eq!(route(Phase::PrimaryOnly, class).primary, Target::Old);
        }
    }
}
