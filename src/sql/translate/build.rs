//! Small AST builders every rewrite uses (parenthesize, `::` cast). A leaf:
//! it imports no other translation module, so `expr` and `func` can both use
//! it without importing each other both ways.

use sqlparser::ast::{CastKind, DataType, Expr};

/// Wraps `e` in parentheses unless it is atomic, so `e::T` or `e op x`
/// keeps its meaning when printed.
pub(super) fn paren(e: Expr) -> Expr {
    match e {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Value(_)
        | Expr::Function(_)
        | Expr::Nested(_)
        | Expr::Cast { .. }
        | Expr::Subquery(_)
        | Expr::Case { .. } => e,
        other => Expr::Nested(Box::new(other)),
    }
}

pub(super) fn cast(e: Expr, data_type: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(paren(e)),
        data_type,
        format: None,
    }
}
