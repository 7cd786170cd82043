// TEMPORARY STUB (replaced by the real classifier)
use std::sync::Arc;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementClass {
    Read,
    Write,
    Ddl,
    Transaction,
    Session,
    Other,
}
pub struct Classified {
    pub class: StatementClass,
    pub parsed: bool,
    pub fingerprint: String,
}
pub struct Classifier;
impl Classifier {
    pub fn new(_c: usize) -> Self {
        Classifier
    }
    pub fn parse_failures(&self) -> u64 {
        99
    }
    pub fn classify(&self, sql: &str) -> Arc<Classified> {
        let w = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let class = match w.as_str() {
            "SELECT" | "SHOW" => StatementClass::Read,
            "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "RENAME" => StatementClass::Ddl,
            "BEGIN" | "COMMIT" | "ROLLBACK" | "START" | "SAVEPOINT" | "RELEASE" => {
                StatementClass::Transaction
            }
            "SET" | "USE" => StatementClass::Session,
            _ => StatementClass::Write,
        };
        Arc::new(Classified {
            class,
            parsed: false,
            fingerprint: sql.into(),
        })
    }
}
