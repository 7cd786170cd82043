//! Query- and SELECT-level rules: LIMIT a, b, ORDER BY NULL, SELECT
//! modifiers, FROM DUAL, joins, WITH ROLLUP.

use sqlparser::ast::{
    Expr, GroupByExpr, GroupByWithModifier, Ident, JoinConstraint, JoinOperator, LimitClause,
    Offset, OffsetRows, OrderByKind, Query, Select, TableFactor, TableWithJoins, Value,
};

use super::names::{last_ident, protect};
use super::{untranslatable, TranslateError};

pub(super) fn post_query(q: &mut Query) -> Result<(), TranslateError> {
    if let Some(LimitClause::OffsetCommaLimit { offset, limit }) = &q.limit_clause {
        q.limit_clause = Some(LimitClause::LimitOffset {
            limit: Some(limit.clone()),
            offset: Some(Offset {
                value: offset.clone(),
                rows: OffsetRows::None,
            }),
            limit_by: vec![],
        });
    }
    if let Some(LimitClause::LimitOffset { limit, .. }) = &mut q.limit_clause {
        // `LIMIT 18446744073709551615` is MySQL's "all rows".
        if let Some(Expr::Value(v)) = limit {
            if let Value::Number(n, _) = &v.value {
                if n.parse::<i64>().is_err() && n.chars().all(|c| c.is_ascii_digit()) {
                    *limit = None;
                }
            }
        }
    }
    if let Some(order_by) = &mut q.order_by {
        if let OrderByKind::Expressions(items) = &mut order_by.kind {
            // `ORDER BY NULL` only turns off MySQL's GROUP BY sorting.
            items.retain(|o| !matches!(&o.expr, Expr::Value(v) if v.value == Value::Null));
            if items.is_empty() {
                q.order_by = None;
            }
        } else {
            return Err(untranslatable("ORDER BY ALL"));
        }
    }
    if q.for_clause.is_some() {
        return Err(untranslatable("FOR XML/JSON/BROWSE clause"));
    }
    Ok(())
}

pub(super) fn post_select(s: &mut Select) -> Result<(), TranslateError> {
    if let Some(m) = &s.select_modifiers {
        if m.sql_calc_found_rows {
            return Err(untranslatable("SQL_CALC_FOUND_ROWS"));
        }
    }
    // Optimizer hints and modifiers do not change results.
    s.select_modifiers = None;
    s.optimizer_hints.clear();
    if s.into.is_some() {
        return Err(untranslatable("SELECT … INTO"));
    }
    if let [TableWithJoins {
        relation: TableFactor::Table {
            name, alias: None, ..
        },
        joins,
    }] = s.from.as_slice()
    {
        if joins.is_empty()
            && matches!(last_ident(name), Some(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("dual"))
        {
            s.from.clear();
        }
    }
    fix_joins(&mut s.from)?;
    for item in &mut s.projection {
        if let sqlparser::ast::SelectItem::ExprWithAlias { alias, .. } = item {
            protect_alias(alias);
        }
    }
    if let GroupByExpr::Expressions(exprs, modifiers) = &mut s.group_by {
        match modifiers.as_slice() {
            [] => {}
            [GroupByWithModifier::Rollup] => {
                let items = exprs.drain(..).map(|e| vec![e]).collect();
                *exprs = vec![Expr::Rollup(items)];
                modifiers.clear();
            }
            _ => return Err(untranslatable("GROUP BY modifier")),
        }
    }
    Ok(())
}

/// MySQL allows string-quoted aliases (`AS 'total'`).
fn protect_alias(alias: &mut Ident) {
    if alias.quote_style == Some('\'') {
        alias.quote_style = Some('"');
    }
    protect(alias);
}

/// `STRAIGHT_JOIN` is an inner join; a MySQL `JOIN` without ON is a cross join.
pub(super) fn fix_joins(from: &mut [TableWithJoins]) -> Result<(), TranslateError> {
    for twj in from {
        for join in &mut twj.joins {
            let op = std::mem::replace(
                &mut join.join_operator,
                JoinOperator::CrossJoin(JoinConstraint::None),
            );
            join.join_operator = match op {
                JoinOperator::StraightJoin(c) | JoinOperator::Join(c) | JoinOperator::Inner(c) => {
                    match c {
                        JoinConstraint::None => JoinOperator::CrossJoin(JoinConstraint::None),
                        c => JoinOperator::Inner(c),
                    }
                }
                op @ (JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_)
                | JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::CrossJoin(_)) => op,
                other => {
                    return Err(untranslatable(
                        format!("join {other:?}")
                            .chars()
                            .take(40)
                            .collect::<String>(),
                    ))
                }
            };
        }
    }
    Ok(())
}
