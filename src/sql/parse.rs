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
//!
//! **One parse per statement.** A statement on its way through the proxy is
//! carried as a [`Parsed`]: its text and, once someone needed it, its AST.
//! Classification (on a cache miss), pinning and translation all take the AST
//! from there, so the text is parsed at most once; translation takes it by
//! value, being last. A value that must outlive the borrowed text (from the
//! pipeline's classification to the statement's answering side) travels as an
//! [`Ast`], which is re-attached only to the very same text. Only light
//! statements (`weight` ≤ [`INLINE_WEIGHT_MAX`]) keep their AST: a heavy
//! one's AST must be built and dropped on a big-stack helper thread, so each
//! step still parses it inside its own [`guarded`] call, as before — they are
//! rare and already slow. [`parses`] counts this thread's parses (a plain
//! thread-local counter, always on) so tests can prove the "at most once".

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

thread_local! {
    /// Statement texts parsed on this thread (see [`parses`]).
    static PARSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many texts [`statements`] parsed on this thread so far.
pub fn parses() -> u64 {
    PARSES.with(|c| c.get())
}

/// A light statement's parse result: its statements, or sqlparser's error.
pub type ParseResult = Result<Vec<Statement>, String>;

/// A statement text and its AST, parsed at most once, on first use.
pub struct Parsed<'a> {
    text: &'a str,
    /// `None` until someone asked (or after [`Parsed::take`]).
    ast: Option<ParseResult>,
    /// Whether the text is light enough to parse inline and keep the AST.
    light: Option<bool>,
}

/// A [`Parsed`]'s AST detached from the borrowed text, to hand on to a later
/// step of the same statement.
pub struct Ast {
    text: Box<str>,
    ast: ParseResult,
}

impl std::fmt::Debug for Ast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ast")
            .field("len", &self.text.len())
            .field("parsed", &self.ast.is_ok())
            .finish()
    }
}

impl<'a> Parsed<'a> {
    pub fn new(text: &'a str) -> Self {
        Parsed {
            text,
            ast: None,
            light: None,
        }
    }

    /// `text` with the AST an earlier step parsed, when that was of this
    /// very text (anything else is dropped and `text` parsed anew if needed).
    pub fn resume(text: &'a str, ast: Option<Ast>) -> Self {
        let ast = ast.filter(|a| *a.text == *text).map(|a| a.ast);
        Parsed {
            text,
            light: ast.as_ref().map(|_| true),
            ast,
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Whether the AST is kept: the statement is light (see the module doc).
    pub fn light(&mut self) -> bool {
        let text = self.text;
        *self
            .light
            .get_or_insert_with(|| weight(text) <= INLINE_WEIGHT_MAX)
    }

    /// The AST, parsed now if nobody did yet; `None` for a heavy statement,
    /// which the caller parses its own guarded way.
    pub fn statements(&mut self) -> Option<&ParseResult> {
        if !self.light() {
            return None;
        }
        let text = self.text;
        Some(self.ast.get_or_insert_with(|| parse_light(text)))
    }

    /// The AST by value (parsed now if needed), for the last step; a second
    /// call parses again. `None` for a heavy statement.
    pub fn take(&mut self) -> Option<ParseResult> {
        self.statements()?;
        self.ast.take()
    }

    /// Whether the AST is at hand without parsing.
    pub fn is_parsed(&self) -> bool {
        self.ast.is_some()
    }

    /// The AST detached from the text, when one was parsed.
    pub fn keep(self) -> Option<Ast> {
        let ast = self.ast?;
        Some(Ast {
            text: self.text.into(),
            ast,
        })
    }
}

/// Parses a light text on the caller's stack; a sqlparser panic becomes an
/// error.
fn parse_light(text: &str) -> ParseResult {
    guarded(0, || statements(text).map_err(|e| e.to_string()))
        .unwrap_or_else(|_| Err("sqlparser panicked".to_owned()))
}

/// Parses MySQL text with the shared recursion limit. Call it inside
/// [`guarded`].
pub fn statements(sql: &str) -> Result<Vec<Statement>, ParserError> {
    PARSES.with(|c| c.set(c.get().wrapping_add(1)));
    Parser::new(&MySqlDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod flow_tests;

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

    #[test]
    fn parsed_parses_once_and_resumes_only_its_own_text() {
        let sql = "UPDATE t SET a = 1";
        let before = parses();
        let mut p = Parsed::new(sql);
        assert!(matches!(p.statements(), Some(Ok(s)) if s.len() == 1));
        assert!(p.statements().is_some());
        assert_eq!(parses() - before, 1);
        let ast = p.keep();
        let mut other = Parsed::resume("UPDATE t SET a = 2", ast);
        assert!(!other.is_parsed());
        other.statements();
        assert_eq!(parses() - before, 2);
        let mut again = Parsed::resume("UPDATE t SET a = 2", other.keep());
        assert!(again.take().is_some_and(|r| r.is_ok()));
        assert_eq!(parses() - before, 2);
        let chain = format!("SELECT 1{}", "+1".repeat(10_000));
        assert!(Parsed::new(&chain).statements().is_none());
    }
}
