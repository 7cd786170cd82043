//! The one guarded way to parse MySQL text. Classification, pinning and
//! translation each parsed on their own, with different guards: the pin parse
//! had no size bound, no panic guard and ran long operator chains on the
//! session's stack, where sqlparser's recursive drop of a `a OR b OR …` AST
//! of tens of thousands of terms overflows a 2 MiB worker stack and aborts
//! the process. Now all three go through [`guarded`] and [`statements`].
//!
//! The size that matters is structural, so it is measured on the statement's
//! fingerprint (literals folded, `VALUES` lists collapsed): a bulk INSERT of
//! many rows is light, a long chain of operators is not.

use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlparser::ast::Statement;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};

use super::fingerprint::fingerprint;

/// Nesting limit handed to sqlparser; deeper statements fail to parse.
pub const RECURSION_LIMIT: usize = 64;
/// Statements up to this weight are parsed on the caller's stack; heavier
/// ones on a helper thread whose stack grows with the weight.
pub const INLINE_WEIGHT_MAX: usize = 8 * 1024;
/// Helper-thread stack per weight byte; measured need is ~32 B in debug.
const STACK_PER_BYTE: usize = 256;
/// Heavier statements are not parsed at all.
pub const MAX_WEIGHT: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("statement too large to parse ({0} bytes of structure)")]
    TooLarge(usize),
    #[error("cannot start a parser thread: {0}")]
    Thread(String),
    #[error("sqlparser panicked on this text (a bug)")]
    Panicked,
}

/// The structural size of `sql`: its fingerprint's length, or the text's
/// own length when that is small enough to parse inline anyway (a
/// fingerprint is at most a third longer than its text).
pub fn weight(sql: &str) -> usize {
    if sql.len() <= INLINE_WEIGHT_MAX / 2 {
        sql.len()
    } else {
        fingerprint(sql).len()
    }
}

/// Runs `f` — which parses a statement of `weight` and drops its AST — where
/// that is safe: inline when light, on a big-stack helper thread when heavy,
/// not at all past [`MAX_WEIGHT`]; a panic becomes an error.
pub fn guarded<T: Send>(weight: usize, f: impl FnOnce() -> T + Send) -> Result<T, GuardError> {
    if weight <= INLINE_WEIGHT_MAX {
        return catch_unwind(AssertUnwindSafe(f)).map_err(|_| GuardError::Panicked);
    }
    if weight > MAX_WEIGHT {
        return Err(GuardError::TooLarge(weight));
    }
    // Each nesting level needs at least one fingerprint byte (`?+?+?`).
    let stack = weight.saturating_mul(STACK_PER_BYTE).max(1 << 20);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sql-parse".to_owned())
            .stack_size(stack)
            .spawn_scoped(scope, f)
            .map_err(|e| GuardError::Thread(e.to_string()))?
            .join()
            .map_err(|_| GuardError::Panicked)
    })
}

/// Parses MySQL text with the shared recursion limit. Call it inside
/// [`guarded`].
pub fn statements(sql: &str) -> Result<Vec<Statement>, ParserError> {
    Parser::new(&MySqlDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_is_structural() {
        let rows = format!("INSERT INTO t VALUES (1){}", ", (2)".repeat(10_000));
        assert!(weight(&rows) < 64, "{}", weight(&rows));
        let chain = format!("SELECT 1{}", "+1".repeat(10_000));
        assert!(weight(&chain) > INLINE_WEIGHT_MAX);
    }

    #[test]
    fn heavy_text_is_parsed_off_the_callers_stack_and_bounded() {
        // On a small stack, as a session thread would be.
        let handle = std::thread::Builder::new().stack_size(512 << 10).spawn(|| {
            let chain = format!(
                "UPDATE t SET a = 1 WHERE a = 0{}",
                " OR a = 1".repeat(60_000)
            );
            let parsed = guarded(weight(&chain), || statements(&chain).map(|s| s.len()));
            let huge = format!("SELECT 1{}", "+1".repeat(MAX_WEIGHT));
            let refused = guarded(weight(&huge), || statements(&huge).map(|s| s.len()));
            (parsed, refused)
        });
        let (parsed, refused) = handle.expect("spawn").join().expect("no overflow");
        assert_eq!(parsed, Ok(Ok(1)));
        assert!(matches!(refused, Err(GuardError::TooLarge(_))));
        assert_eq!(
            guarded(1, || -> u8 { panic!("boom") }),
            Err(GuardError::Panicked)
        );
    }
}
