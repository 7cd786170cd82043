//! Pinned values put into the AST the translator walks, instead of into the
//! text (which would then be parsed a second time).
//!
//! The answering side fixes a statement's values before it runs: `?`
//! placeholders become the client's parameters and `NOW()`, `UUID()`,
//! `LAST_INSERT_ID()` … the values the proxy computed (`sql::pin`). Those
//! edits are byte ranges of the text with MySQL literals for them. Here each
//! edit replaces the expression that starts where its range starts — the
//! call or placeholder `pin::analyze` found it from — with the literal, which
//! is read by the same parser as a lone expression (a few tokens, not the
//! statement), so it means exactly what it would have meant spliced into the
//! text. When an edit finds no such expression (a placeholder inside a pinned
//! call, a literal that is not one expression) the caller falls back to the
//! text: splice, parse again, translate, as before.

use std::ops::{ControlFlow, Range};

use sqlparser::ast::{Expr, Spanned, Statement, Value, VisitMut, VisitorMut};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::sql::parse::RECURSION_LIMIT;
use crate::sql::pin::LineIndex;

/// Applies `edits` (byte range of `sql` → MySQL literal) to `statements`,
/// the AST of `sql`. `None` when one of them could not be applied; the AST
/// is then partly edited and must be dropped.
pub(super) fn substitute(
    sql: &str,
    statements: &mut [Statement],
    edits: &[(Range<usize>, String)],
) -> Option<()> {
    let pending = edits
        .iter()
        .map(|(range, text)| Some((range.clone(), literal_expr(text)?)))
        .collect::<Option<Vec<_>>>()?;
    let lines = LineIndex::new(sql);
    let mut visitor = Substitute {
        lines: &lines,
        pending,
    };
    for statement in statements.iter_mut() {
        let _ = statement.visit(&mut visitor);
    }
    visitor.pending.is_empty().then_some(())
}

/// One MySQL literal (`TIMESTAMP'…'`, `42`, `-1.5e0`, `'text'`, `X'00'`,
/// `NULL`) as an expression; `None` when the text is anything more.
fn literal_expr(text: &str) -> Option<Expr> {
    let mut parser = Parser::new(&MySqlDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
        .ok()?;
    let expr = parser.parse_expr().ok()?;
    (parser.peek_token().token == Token::EOF).then_some(expr)
}

struct Substitute<'a> {
    lines: &'a LineIndex,
    pending: Vec<(Range<usize>, Expr)>,
}

impl VisitorMut for Substitute<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.pending.is_empty() {
            return ControlFlow::Break(());
        }
        // Only the expressions `pin::analyze` makes edits for.
        let candidate = match expr {
            Expr::Function(_) => true,
            Expr::Value(v) => matches!(v.value, Value::Placeholder(_)),
            _ => false,
        };
        if !candidate {
            return ControlFlow::Continue(());
        }
        let Some(range) = self.lines.range(expr.span()) else {
            return ControlFlow::Continue(());
        };
        // A pinned call's edit also covers its closing parenthesis, past the
        // span sqlparser reports.
        let found = self
            .pending
            .iter()
            .position(|(r, _)| r.start == range.start && r.end >= range.end);
        if let Some(i) = found {
            let (_, literal) = self.pending.swap_remove(i);
            *expr = literal;
        }
        ControlFlow::Continue(())
    }
}
