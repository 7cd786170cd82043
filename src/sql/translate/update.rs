//! UPDATE and DELETE: ORDER BY/LIMIT through `ctid`, multi-table forms
//! through `UPDATE … FROM` and `DELETE … USING`.

use sqlparser::ast::{
    helpers::attached_token::AttachedToken, BinaryOperator, Delete, Expr, FromTable,
    FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator, LimitClause, LockClause,
    LockType, OrderBy, OrderByExpr, OrderByKind, Select, SelectFlavor, SelectItem, SetExpr,
    TableFactor, TableWithJoins, Update, UpdateTableFromKind,
};

use super::dml::{column_of, prepare_assignments, qualifier_of, query, sequential};
use super::names::{last_ident, schema_ident};
use super::{untranslatable, TranslateError};
use crate::sql::schema::{Schema, TableInfo};

pub(super) fn binding_of(tf: &TableFactor) -> Option<String> {
    match tf {
        TableFactor::Table { name, alias, .. } => Some(match alias {
            Some(a) => a.name.value.clone(),
            None => last_ident(name)?.value.clone(),
        }),
        _ => None,
    }
}

pub(super) fn table_of<'s>(tf: &TableFactor, schema: &'s Schema) -> Option<&'s TableInfo> {
    match tf {
        TableFactor::Table { name, .. } => schema.table(&last_ident(name)?.value),
        _ => None,
    }
}

/// `a AND b AND …`, parenthesizing ORs (and `||`, which is MySQL's OR).
fn and_all(conds: Vec<Expr>) -> Option<Expr> {
    let wrap = |e: Expr| match e {
        Expr::BinaryOp {
            op: BinaryOperator::Or | BinaryOperator::Xor | BinaryOperator::StringConcat,
            ..
        } => Expr::Nested(Box::new(e)),
        e => e,
    };
    conds.into_iter().map(wrap).reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

/// `ctid = ANY(ARRAY(SELECT ctid FROM t WHERE … ORDER BY … LIMIT n FOR UPDATE))`:
/// PostgreSQL's UPDATE and DELETE have no ORDER BY/LIMIT. Ties in the ORDER BY
/// are broken by the primary key, the order InnoDB visits equal index keys
/// in, so the same rows are picked as on MySQL in the usual case.
fn ctid_restriction(
    relation: TableFactor,
    table: Option<&TableInfo>,
    selection: Option<Expr>,
    mut order_by: Vec<OrderByExpr>,
    limit: Expr,
) -> Expr {
    if let Some(t) = table {
        for pk in &t.primary_key {
            let listed = order_by.iter().any(|o| match &o.expr {
                Expr::Identifier(i) => i.value.eq_ignore_ascii_case(pk),
                Expr::CompoundIdentifier(p) => {
                    p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(pk))
                }
                _ => false,
            });
            if !listed {
                order_by.push(OrderByExpr::from(schema_ident(pk)));
            }
        }
    }
    let select = Select {
        select_token: AttachedToken::empty(),
        optimizer_hints: vec![],
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: false,
        projection: vec![SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(
            "ctid",
        )))],
        exclude: None,
        into: None,
        from: vec![TableWithJoins {
            relation,
            joins: vec![],
        }],
        lateral_views: vec![],
        prewhere: None,
        selection,
        connect_by: vec![],
        group_by: GroupByExpr::Expressions(vec![], vec![]),
        cluster_by: vec![],
        distribute_by: vec![],
        sort_by: vec![],
        having: None,
        named_window: vec![],
        qualify: None,
        window_before_qualify: false,
        value_table_mode: None,
        flavor: SelectFlavor::Standard,
    };
    let mut q = query(SetExpr::Select(Box::new(select)));
    if !order_by.is_empty() {
        q.order_by = Some(OrderBy {
            kind: OrderByKind::Expressions(order_by),
            interpolate: None,
        });
    }
    q.limit_clause = Some(LimitClause::LimitOffset {
        limit: Some(limit),
        offset: None,
        limit_by: vec![],
    });
    q.locks = vec![LockClause {
        lock_type: LockType::Update,
        of: None,
        nonblock: None,
    }];
    let mut array = super::func::function("ARRAY", vec![]);
    array.args = FunctionArguments::Subquery(Box::new(q));
    Expr::AnyOp {
        left: Box::new(Expr::Identifier(Ident::new("ctid"))),
        compare_op: BinaryOperator::Eq,
        right: Box::new(Expr::Function(array)),
        is_some: false,
    }
}

/// Splits `a JOIN b ON x JOIN c ON y` into relations and their conditions;
/// only inner and cross joins can become `FROM`/`USING` lists.
fn flatten(
    from: Vec<TableWithJoins>,
    what: &str,
) -> Result<(Vec<TableFactor>, Vec<Expr>), TranslateError> {
    let mut relations = Vec::new();
    let mut conds = Vec::new();
    for twj in from {
        relations.push(twj.relation);
        for join in twj.joins {
            let constraint = match join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::StraightJoin(c)
                | JoinOperator::CrossJoin(c) => c,
                _ => return Err(untranslatable(format!("{what} with an outer join"))),
            };
            match constraint {
                JoinConstraint::On(e) => conds.push(e),
                JoinConstraint::None => {}
                _ => return Err(untranslatable(format!("{what} with JOIN … USING/NATURAL"))),
            }
            relations.push(join.relation);
        }
    }
    Ok((relations, conds))
}

fn take_target(
    relations: &mut Vec<TableFactor>,
    binding: &str,
    what: &str,
) -> Result<TableFactor, TranslateError> {
    let i = relations
        .iter()
        .position(|r| binding_of(r).is_some_and(|b| b.eq_ignore_ascii_case(binding)))
        .ok_or_else(|| untranslatable(format!("{what}: target {binding} is not a joined table")))?;
    Ok(relations.remove(i))
}

fn single(relation: TableFactor) -> TableWithJoins {
    TableWithJoins {
        relation,
        joins: vec![],
    }
}

pub(super) fn update(u: &mut Update, schema: &Schema) -> Result<(), TranslateError> {
    if u.or.is_some() || u.from.is_some() || u.output.is_some() {
        return Err(untranslatable("UPDATE … FROM/OR/OUTPUT"));
    }
    u.optimizer_hints.clear();
    if u.table.joins.is_empty() {
        let table = table_of(&u.table.relation, schema);
        let binding = binding_of(&u.table.relation).unwrap_or_default();
        prepare_assignments(&mut u.assignments, table)?;
        sequential(&mut u.assignments, table, &binding, None)?;
        let order_by = std::mem::take(&mut u.order_by);
        if let Some(limit) = u.limit.take() {
            let restriction = ctid_restriction(
                u.table.relation.clone(),
                table,
                u.selection.take(),
                order_by,
                limit,
            );
            u.selection = Some(restriction);
        }
        return Ok(());
    }
    if !u.order_by.is_empty() || u.limit.is_some() {
        return Err(untranslatable("multi-table UPDATE with ORDER BY/LIMIT"));
    }
    // The table the SET list writes to: named by qualified targets, else
    // found through the schema, else the first one.
    let mut target_binding: Option<String> = None;
    for a in &u.assignments {
        let q = match qualifier_of(&a.target) {
            Some(q) => q,
            None => {
                let column = column_of(&a.target)?;
                let owner = std::iter::once(&u.table.relation)
                    .chain(u.table.joins.iter().map(|j| &j.relation))
                    .find(|r| {
                        table_of(r, schema).is_some_and(|t| t.column(&column.value).is_some())
                    });
                match owner.and_then(binding_of) {
                    Some(b) => b,
                    None => continue,
                }
            }
        };
        match &target_binding {
            Some(t) if !t.eq_ignore_ascii_case(&q) => {
                return Err(untranslatable(
                    "multi-table UPDATE that changes several tables",
                ))
            }
            _ => target_binding = Some(q),
        }
    }
    let target_binding = match target_binding {
        Some(b) => b,
        None => binding_of(&u.table.relation).unwrap_or_default(),
    };
    let from = vec![u.table.clone()];
    let (mut relations, mut conds) = flatten(from, "multi-table UPDATE")?;
    let target = take_target(&mut relations, &target_binding, "multi-table UPDATE")?;
    let table = table_of(&target, schema);
    prepare_assignments(&mut u.assignments, table)?;
    u.table = single(target);
    u.from = Some(UpdateTableFromKind::AfterSet(
        relations.into_iter().map(single).collect(),
    ));
    conds.extend(u.selection.take());
    u.selection = and_all(conds);
    Ok(())
}

pub(super) fn delete(d: &mut Delete, schema: &Schema) -> Result<(), TranslateError> {
    if d.output.is_some() || d.on_cluster.is_some() {
        return Err(untranslatable("DELETE … OUTPUT/ON CLUSTER"));
    }
    d.optimizer_hints.clear();
    let from = match std::mem::replace(&mut d.from, FromTable::WithFromKeyword(vec![])) {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    // Which tables lose rows, and which tables the statement reads.
    let (targets, source): (Vec<String>, Vec<TableWithJoins>) = if !d.tables.is_empty() {
        let targets = d
            .tables
            .iter()
            .map(|t| last_ident(t).map(|i| i.value.clone()).unwrap_or_default())
            .collect();
        d.tables.clear();
        (targets, from)
    } else if let Some(using) = d.using.take() {
        let targets = from
            .iter()
            .filter_map(|t| binding_of(&t.relation))
            .collect();
        (targets, using)
    } else {
        if from.len() != 1 || !from[0].joins.is_empty() {
            return Err(untranslatable(
                "DELETE from a join without naming the target table",
            ));
        }
        let relation = from
            .into_iter()
            .next()
            .map(|t| t.relation)
            .ok_or_else(|| untranslatable("DELETE without a table"))?;
        let table = table_of(&relation, schema);
        if let Some(limit) = d.limit.take() {
            let order_by = std::mem::take(&mut d.order_by);
            d.selection = Some(ctid_restriction(
                relation.clone(),
                table,
                d.selection.take(),
                order_by,
                limit,
            ));
        }
        d.order_by.clear();
        d.from = FromTable::WithFromKeyword(vec![single(relation)]);
        return Ok(());
    };
    let [target] = targets.as_slice() else {
        return Err(untranslatable("multi-table DELETE from several tables"));
    };
    if !d.order_by.is_empty() || d.limit.is_some() {
        return Err(untranslatable("multi-table DELETE with ORDER BY/LIMIT"));
    }
    let (mut relations, mut conds) = flatten(source, "multi-table DELETE")?;
    let target = take_target(&mut relations, target, "multi-table DELETE")?;
    d.from = FromTable::WithFromKeyword(vec![single(target)]);
    if !relations.is_empty() {
        d.using = Some(relations.into_iter().map(single).collect());
    }
    conds.extend(d.selection.take());
    d.selection = and_all(conds);
    Ok(())
}
