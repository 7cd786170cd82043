//! Process-wide counters (lock-free), exported by the admin endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sql::classify::StatementClass;

pub const CLASSES: [StatementClass; 6] = [
    StatementClass::Read,
    StatementClass::Write,
    StatementClass::Ddl,
    StatementClass::Transaction,
    StatementClass::Session,
    StatementClass::Other,
];

pub fn class_name(c: StatementClass) -> &'static str {
    match c {
        StatementClass::Read => "read",
        StatementClass::Write => "write",
        StatementClass::Ddl => "ddl",
        StatementClass::Transaction => "transaction",
        StatementClass::Session => "session",
        StatementClass::Other => "other",
    }
}

fn class_index(c: StatementClass) -> usize {
    CLASSES.iter().position(|x| *x == c).unwrap_or(5)
}

#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_active: AtomicU64,
    pub auth_failures: AtomicU64,
    pub backend_errors: AtomicU64,
    /// Statements received, by class (COM_QUERY and COM_STMT_EXECUTE).
    statements: [AtomicU64; 6],
}

impl Metrics {
    pub fn count_statement(&self, class: StatementClass) {
        self.statements[class_index(class)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn statements(&self, class: StatementClass) -> u64 {
        self.statements[class_index(class)].load(Ordering::Relaxed)
    }

    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
