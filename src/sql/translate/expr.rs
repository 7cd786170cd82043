//! The expression-level rewrite: one `VisitorMut` pass over a statement that
//! fixes identifiers, literals, operators, functions, ORDER BY and LIMIT.
//! Statement shapes (ON DUPLICATE KEY, multi-table UPDATE…) are done before
//! this pass, in `dml`.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, ExactNumberInfo, Expr, Ident, InTarget, ObjectName,
    OrderByExpr, OrderBySort, Query, Select, TableFactor, UnaryOperator, Value, VisitMut,
    VisitorMut,
};

use super::build::{cast, paren};
use super::func::{self, null_if_zero};
use super::literal::{self, coerce, lit};
use super::names::{protect, protect_object_name, requote};
use super::query;
use super::scope::Scope;
use super::{untranslatable, TranslateError};
use crate::sql::schema::ColumnKind;

fn is_binary_cast(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Cast {
            data_type: DataType::Binary(None),
            ..
        }
    )
}

/// `BINARY x` only makes a comparison byte-wise; PostgreSQL's text
/// comparisons already are case- and accent-sensitive, so the cast goes.
fn strip_binary(e: &mut Expr) {
    if is_binary_cast(e) {
        if let Expr::Cast { expr, .. } = std::mem::replace(e, lit(Value::Null)) {
            *e = *expr;
        }
    }
}

fn is_pipes(e: &Expr) -> bool {
    matches!(
        e,
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        }
    )
}

/// MySQL's `||` is OR, but sqlparser gives it concatenation precedence
/// (`a || b AND c` parses as `(a || b) AND c`; MySQL reads `a OR (b AND c)`).
/// It is translated only where the grouping cannot matter: under OR, under
/// another `||`, or as a whole operand.
fn check_pipes(e: &Expr) -> Result<(), TranslateError> {
    let children: Vec<&Expr> = match e {
        Expr::BinaryOp {
            op: BinaryOperator::Or | BinaryOperator::StringConcat,
            ..
        } => vec![],
        Expr::BinaryOp { left, right, .. } => vec![left, right],
        Expr::UnaryOp { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotFalse(expr)
        | Expr::IsUnknown(expr)
        | Expr::IsNotUnknown(expr)
        | Expr::In { expr, .. } => vec![expr],
        Expr::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        Expr::Like { expr, pattern, .. } => vec![expr, pattern],
        _ => vec![],
    };
    if children.into_iter().any(is_pipes) {
        return Err(untranslatable(
            "|| next to other operators (MySQL reads it as OR with OR's precedence)",
        ));
    }
    Ok(())
}

/// Rewrites expressions of one statement for PostgreSQL.
pub(super) struct Rewriter<'a, 's> {
    pub scope: &'a Scope<'s>,
}

impl Rewriter<'_, '_> {
    fn coerce_against(&self, column: &Expr, value: &mut Expr) -> Result<(), TranslateError> {
        if let Some(kind) = self.scope.kind_of(column) {
            coerce(value, &kind, &Scope::label(column))?;
        }
        Ok(())
    }

    /// Literals compared with a known column are written for its type
    /// (`active = 1` → `active = true`).
    fn pre_expr(&self, expr: &mut Expr) -> Result<(), TranslateError> {
        check_pipes(expr)?;
        match expr {
            Expr::BinaryOp { left, op, right } => {
                use BinaryOperator as B;
                if matches!(op, B::Eq | B::NotEq | B::Spaceship) {
                    strip_binary(left);
                    strip_binary(right);
                }
                if matches!(
                    op,
                    B::Eq | B::NotEq | B::Spaceship | B::Lt | B::Gt | B::LtEq | B::GtEq
                ) {
                    self.coerce_against(left, right)?;
                    self.coerce_against(right, left)?;
                }
            }
            Expr::Like {
                expr: e, pattern, ..
            } => {
                strip_binary(e);
                strip_binary(pattern);
            }
            Expr::In {
                expr: e,
                target: InTarget::List(list),
                ..
            } => {
                for item in list {
                    self.coerce_against(e, item)?;
                }
            }
            Expr::Between {
                expr: e, low, high, ..
            } => {
                self.coerce_against(e, low)?;
                self.coerce_against(e, high)?;
            }
            Expr::Prefixed { prefix, value } if prefix.value.eq_ignore_ascii_case("_binary") => {
                coerce(value, &ColumnKind::Binary { pad_to: None }, "")?;
            }
            _ => {}
        }
        Ok(())
    }

    fn is_temporal(&self, e: &Expr) -> bool {
        matches!(
            self.scope.kind_of(e),
            Some(ColumnKind::Temporal | ColumnKind::Timestamp)
        )
    }

    fn is_booleanish(&self, e: &Expr) -> bool {
        use BinaryOperator as B;
        match e {
            Expr::Nested(inner) => self.is_booleanish(inner),
            Expr::BinaryOp { op, .. } => matches!(
                op,
                B::Eq | B::NotEq | B::Lt | B::Gt | B::LtEq | B::GtEq | B::And | B::Or
            ),
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                ..
            }
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsNotDistinctFrom(..)
            | Expr::Like { .. }
            | Expr::In { .. }
            | Expr::Between { .. }
            | Expr::Exists { .. } => true,
            Expr::Value(v) => matches!(v.value, Value::Boolean(_)),
            other => self.scope.kind_of(other) == Some(ColumnKind::Boolean),
        }
    }

    fn binary_op(
        &self,
        left: Expr,
        op: BinaryOperator,
        right: Expr,
    ) -> Result<Expr, TranslateError> {
        use BinaryOperator as B;
        let bin = |left: Expr, op: BinaryOperator, right: Expr| Expr::BinaryOp {
            left: Box::new(left),
            op,
            right: Box::new(right),
        };
        if matches!(
            op,
            B::Plus | B::Minus | B::Multiply | B::Divide | B::MyIntegerDivide
        ) && (self.is_temporal(&left) || self.is_temporal(&right))
        {
            return Err(untranslatable(
                "arithmetic on a date/time column (MySQL computes on the number 20240101…)",
            ));
        }
        Ok(match op {
            B::Plus
            | B::Minus
            | B::Multiply
            | B::Gt
            | B::Lt
            | B::GtEq
            | B::LtEq
            | B::Eq
            | B::NotEq
            | B::And
            | B::Or
            | B::BitwiseOr
            | B::BitwiseAnd
            | B::PGBitwiseShiftLeft
            | B::PGBitwiseShiftRight => bin(left, op, right),
            // MySQL's `/` never truncates.
            B::Divide => bin(
                cast(left, DataType::Numeric(ExactNumberInfo::None)),
                B::Divide,
                null_if_zero(right),
            ),
            B::MyIntegerDivide => cast(
                func::call(
                    "div",
                    vec![
                        cast(left, DataType::Numeric(ExactNumberInfo::None)),
                        null_if_zero(right),
                    ],
                ),
                DataType::BigInt(None),
            ),
            B::Modulo => bin(left, B::Modulo, null_if_zero(right)),
            // Without PIPES_AS_CONCAT, MySQL's `||` is OR.
            B::StringConcat => bin(left, B::Or, right),
            B::Spaceship => Expr::IsNotDistinctFrom(Box::new(left), Box::new(right)),
            B::Xor if self.is_booleanish(&left) && self.is_booleanish(&right) => {
                Expr::Nested(Box::new(bin(paren(left), B::NotEq, paren(right))))
            }
            B::Xor => return Err(untranslatable("XOR of non-boolean operands")),
            B::BitwiseXor => bin(left, B::PGBitwiseXor, right),
            other => return Err(untranslatable(format!("operator {other}"))),
        })
    }

    /// The replacement for `expr`, after its children were rewritten.
    fn post_expr(&self, expr: &mut Expr) -> Result<Option<Expr>, TranslateError> {
        Ok(match expr {
            Expr::Identifier(id) => {
                if id.value.starts_with('@') {
                    return Err(untranslatable(format!(
                        "user or system variable {}",
                        id.value
                    )));
                }
                if id.quote_style.is_none() {
                    match id.value.to_ascii_uppercase().as_str() {
                        "DEFAULT" => return Ok(None),
                        "CURRENT_USER" | "SESSION_USER" | "SYSTEM_USER" | "CURRENT_ROLE" => {
                            return Err(untranslatable(format!("{} (session state)", id.value)))
                        }
                        _ => {}
                    }
                }
                protect(id);
                None
            }
            Expr::CompoundIdentifier(parts) => {
                if parts.first().is_some_and(|p| p.value.starts_with('@')) {
                    return Err(untranslatable(format!("user or system variable {expr}")));
                }
                parts.iter_mut().for_each(protect);
                None
            }
            Expr::Value(v) => literal::check_value(v)?,
            Expr::Prefixed { prefix, value } => {
                // `_binary '…'` was turned into bytea before the children.
                if prefix.value.eq_ignore_ascii_case("_binary")
                    && !matches!(
                        value.as_ref(),
                        Expr::Cast {
                            data_type: DataType::Bytea,
                            ..
                        }
                    )
                {
                    return Err(untranslatable(format!("_binary introducer on {value}")));
                }
                // Character set introducers: PostgreSQL text is one encoding.
                Some(std::mem::replace(value.as_mut(), lit(Value::Null)))
            }
            Expr::BinaryOp { left, op, right } => {
                let left = std::mem::replace(left.as_mut(), lit(Value::Null));
                let right = std::mem::replace(right.as_mut(), lit(Value::Null));
                Some(self.binary_op(left, op.clone(), right)?)
            }
            Expr::UnaryOp { op, .. } => match op {
                UnaryOperator::Not | UnaryOperator::Minus | UnaryOperator::Plus => None,
                UnaryOperator::BitwiseNot => None,
                other => return Err(untranslatable(format!("unary operator {other}"))),
            },
            // `::` casts are the translator's own; MySQL writes CAST(… AS …).
            Expr::Cast {
                kind: CastKind::DoubleColon,
                ..
            } => None,
            Expr::Cast { data_type, .. } => {
                if matches!(data_type, DataType::Binary(_)) {
                    return Err(untranslatable(
                        "BINARY / CAST AS BINARY outside an = or LIKE comparison",
                    ));
                }
                *data_type = super::types::cast_type(data_type)?;
                None
            }
            Expr::Function(f) => func::rewrite(f, self.scope)?,
            Expr::Substring { substring_from, .. } => {
                func::check_substring_start(substring_from.as_deref())?;
                None
            }
            Expr::TypedString(ts) => {
                if let Value::SingleQuotedString(s) = &ts.value.value {
                    if literal::is_zero_date(s) {
                        return Err(untranslatable(format!("zero date '{s}'")));
                    }
                }
                None
            }
            Expr::Nested(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsNotTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::IsNotDistinctFrom(..)
            | Expr::IsDistinctFrom(..)
            | Expr::In { .. }
            | Expr::Between { .. }
            | Expr::Like { .. }
            | Expr::AnyOp { .. }
            | Expr::AllOp { .. }
            | Expr::Case { .. }
            | Expr::Exists { .. }
            | Expr::Subquery(_)
            | Expr::Tuple(_)
            | Expr::Extract { .. }
            | Expr::Ceil { .. }
            | Expr::Floor { .. }
            | Expr::Position { .. }
            | Expr::Trim { .. }
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(..) => None,
            Expr::RLike { .. } => {
                return Err(untranslatable(
                    "REGEXP / RLIKE (regular expression dialects differ)",
                ))
            }
            Expr::Collate { .. } => return Err(untranslatable("COLLATE clause")),
            Expr::Convert { .. } => return Err(untranslatable("CONVERT(…)")),
            Expr::MatchAgainst { .. } => {
                return Err(untranslatable("MATCH … AGAINST (full-text search)"))
            }
            Expr::Interval(_) => {
                return Err(untranslatable(
                    "INTERVAL arithmetic (DATE_ADD, DATE_SUB, + INTERVAL)",
                ))
            }
            other => {
                let text = other.to_string();
                let short: String = text.chars().take(60).collect();
                return Err(untranslatable(format!("expression {short}")));
            }
        })
    }
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = TranslateError;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<TranslateError> {
        flow(self.pre_expr(expr))
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<TranslateError> {
        match self.post_expr(expr) {
            Ok(Some(replacement)) => {
                *expr = replacement;
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }

    /// MySQL sorts NULLs first ascending and last descending.
    fn post_visit_order_by_expr(&mut self, o: &mut OrderByExpr) -> ControlFlow<TranslateError> {
        if o.options.nulls_first.is_none() {
            o.options.nulls_first = Some(!matches!(o.options.sort, Some(OrderBySort::Desc)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<TranslateError> {
        flow(query::post_query(q))
    }

    fn post_visit_select(&mut self, s: &mut Select) -> ControlFlow<TranslateError> {
        flow(query::post_select(s))
    }

    fn post_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<TranslateError> {
        match tf {
            TableFactor::Table {
                alias,
                index_directives,
                partitions,
                args,
                ..
            } => {
                if !partitions.is_empty() {
                    return ControlFlow::Break(untranslatable("PARTITION (…) selection"));
                }
                if args.is_some() {
                    return ControlFlow::Break(untranslatable("table function"));
                }
                index_directives.clear();
                if let Some(a) = alias {
                    protect(&mut a.name);
                }
            }
            TableFactor::Derived { alias, .. } => {
                if let Some(a) = alias {
                    protect(&mut a.name);
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                if let Err(e) = query::fix_joins(std::slice::from_mut(table_with_joins.as_mut())) {
                    return ControlFlow::Break(e);
                }
            }
            _ => return ControlFlow::Break(untranslatable("table function or JSON_TABLE")),
        }
        ControlFlow::Continue(())
    }

    fn post_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<TranslateError> {
        protect_object_name(name);
        ControlFlow::Continue(())
    }

    fn post_visit_ident(&mut self, ident: &mut Ident) -> ControlFlow<TranslateError> {
        requote(ident);
        ControlFlow::Continue(())
    }
}

fn flow(r: Result<(), TranslateError>) -> ControlFlow<TranslateError> {
    match r {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

/// Runs the rewrite over `node` (a statement or a lone expression).
pub(super) fn rewrite<V: VisitMut>(node: &mut V, scope: &Scope) -> Result<(), TranslateError> {
    match node.visit(&mut Rewriter { scope }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(e) => Err(e),
    }
}
