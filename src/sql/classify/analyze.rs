//! AST analysis: one walk per statement yields its class, tables and flags.
//!
//! Everything computed here must depend only on what the fingerprint keeps
//! (see the cache invariant in the parent module).

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, CreateTableLikeKind, Expr, FunctionArguments, LimitClause, ObjectName,
    ObjectNamePart, ObjectType, Query, Select, SetExpr, ShowCreateObject, Statement, Visit,
    Visitor,
};

use super::{StatementClass, StatementInfo, TxnOp};

/// Classification of parsed statements: (overall class, per-statement info).
pub(super) fn classify_statements(
    statements: &[Statement],
) -> (StatementClass, Vec<StatementInfo>) {
    let infos: Vec<StatementInfo> = statements.iter().map(analyze).collect();
    let class = infos
        .iter()
        .map(|s| s.class)
        .max_by_key(|c| c.severity())
        .unwrap_or(StatementClass::Other);
    (class, infos)
}

fn analyze(stmt: &Statement) -> StatementInfo {
    let mut facts = Facts::default();
    let _ = stmt.visit(&mut facts);
    let (class, txn) = class_of(stmt, &facts);
    let mut tables = Vec::new();
    let mut push = |name: String| {
        if !tables.contains(&name) {
            tables.push(name);
        }
    };
    match ddl_targets(stmt) {
        // DDL: the visitor would also report index/database names as
        // relations, so the target tables come from the statement itself.
        Some(targets) => targets.into_iter().for_each(&mut push),
        None => match stmt {
            Statement::LockTables { tables: locked } => {
                locked.iter().for_each(|t| push(t.table.value.clone()))
            }
            Statement::ShowCreate {
                obj_type: ShowCreateObject::Table | ShowCreateObject::View,
                obj_name,
            } => push(name_parts(obj_name)),
            _ => {}
        },
    }
    if !ddl_excluded(stmt) {
        for name in &facts.relations {
            if !is_pseudo_table(name, &facts.cte_names) {
                push(name_parts(name));
            }
        }
    }
    let nondeterministic = match stmt {
        // DDL runs no query except CREATE TABLE … AS SELECT; a column
        // `DEFAULT CURRENT_TIMESTAMP` does not make the DDL nondeterministic.
        Statement::CreateTable(t) => t.query.as_ref().is_some_and(|q| {
            let mut f = Facts::default();
            let _ = q.visit(&mut f);
            f.nondeterministic
        }),
        _ if class == StatementClass::Ddl => false,
        _ => facts.nondeterministic,
    };
    // Shadow reads compare only plain queries, and compare their rows as a
    // sequence only when the outermost query block sorts them.
    let (query, ordered) = match stmt {
        Statement::Query(q) => (class == StatementClass::Read, q.order_by.is_some()),
        _ => (false, false),
    };
    StatementInfo {
        class,
        tables,
        txn,
        locking_read: facts.locking && class == StatementClass::Read,
        nondeterministic,
        query,
        ordered,
    }
}

fn class_of(stmt: &Statement, facts: &Facts) -> (StatementClass, Option<TxnOp>) {
    use StatementClass::*;
    let class = match stmt {
        Statement::Query(_) => {
            if facts.writes {
                Write
            } else if facts.sets_variables {
                Session
            } else {
                Read
            }
        }
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_)
        | Statement::Call(_)
        | Statement::LoadData { .. }
        | Statement::Copy { .. }
        | Statement::Directory { .. } => Write,

        Statement::Explain {
            analyze: true,
            statement,
            ..
        } => return class_of(statement, facts),
        Statement::Explain { .. }
        | Statement::ExplainTable { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowCharset(_)
        | Statement::ShowCollation { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowObjects(_)
        | Statement::ShowProcessList { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowViews { .. } => Read,

        Statement::StartTransaction { .. } => return (Transaction, Some(TxnOp::Begin)),
        Statement::Commit { .. } => return (Transaction, Some(TxnOp::Commit)),
        Statement::Rollback {
            savepoint: Some(_), ..
        } => return (Transaction, Some(TxnOp::RollbackToSavepoint)),
        Statement::Rollback { .. } => return (Transaction, Some(TxnOp::Rollback)),
        Statement::Savepoint { .. } => return (Transaction, Some(TxnOp::Savepoint)),
        Statement::ReleaseSavepoint { .. } => return (Transaction, Some(TxnOp::ReleaseSavepoint)),

        // SQL-level PREPARE / DEALLOCATE PREPARE: session state (an EXECUTE
        // takes the class of the statement it runs, see the command loop).
        Statement::Set(_)
        | Statement::Use(_)
        | Statement::Prepare { .. }
        | Statement::Deallocate { .. } => Session,

        Statement::Drop {
            object_type: ObjectType::Role | ObjectType::User | ObjectType::Group,
            ..
        } => Other,
        Statement::CreateTable(_)
        | Statement::CreateVirtualTable { .. }
        | Statement::CreateView(_)
        | Statement::CreateIndex(_)
        | Statement::CreateDatabase { .. }
        | Statement::CreateSchema { .. }
        | Statement::CreateFunction(_)
        | Statement::CreateProcedure { .. }
        | Statement::CreateTrigger(_)
        | Statement::CreateSequence { .. }
        | Statement::CreateType { .. }
        | Statement::CreateDomain(_)
        | Statement::AlterTable(_)
        | Statement::AlterSchema(_)
        | Statement::AlterIndex { .. }
        | Statement::AlterView(_)
        | Statement::AlterFunction(_)
        | Statement::AlterType(_)
        | Statement::AlterTrigger(_)
        | Statement::Drop { .. }
        | Statement::DropFunction(_)
        | Statement::DropProcedure { .. }
        | Statement::DropTrigger(_)
        | Statement::DropDomain(_)
        | Statement::Truncate(_)
        | Statement::RenameTable(_) => Ddl,

        _ => Other,
    };
    (class, None)
}

/// Tables named by a DDL statement itself (before any tables its query reads).
fn ddl_targets(stmt: &Statement) -> Option<Vec<String>> {
    let names = |v: &[ObjectName]| v.iter().map(name_parts).collect::<Vec<_>>();
    Some(match stmt {
        Statement::CreateTable(t) => {
            let like = t.like.as_ref().map(|like| match like {
                CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l) => &l.name,
            });
            std::iter::once(&t.name)
                .chain(like)
                .map(name_parts)
                .collect()
        }
        Statement::CreateView(v) => vec![name_parts(&v.name)],
        Statement::CreateIndex(i) => vec![name_parts(&i.table_name)],
        Statement::AlterTable(a) => vec![name_parts(&a.name)],
        Statement::CreateTrigger(t) => vec![name_parts(&t.table_name)],
        Statement::Truncate(t) => t.table_names.iter().map(|t| name_parts(&t.name)).collect(),
        Statement::RenameTable(r) => r
            .iter()
            .flat_map(|r| [name_parts(&r.old_name), name_parts(&r.new_name)])
            .collect(),
        Statement::Drop {
            object_type,
            names: dropped,
            table,
            ..
        } => match object_type {
            ObjectType::Table | ObjectType::View | ObjectType::MaterializedView => names(dropped),
            ObjectType::Index => table.iter().map(name_parts).collect(),
            _ => Vec::new(),
        },
        _ => return None,
    })
}

/// DDL statements whose visited relations are not tables (index, database,
/// routine names) or are already covered by [`ddl_targets`].
fn ddl_excluded(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::CreateIndex(_)
            | Statement::Drop { .. }
            | Statement::Truncate(_)
            | Statement::RenameTable(_)
            | Statement::CreateDatabase { .. }
            | Statement::CreateSchema { .. }
            | Statement::AlterSchema(_)
            | Statement::CreateFunction(_)
            | Statement::CreateProcedure { .. }
            | Statement::DropFunction(_)
            | Statement::DropProcedure { .. }
            | Statement::DropTrigger(_)
            | Statement::AlterIndex { .. }
    )
}

/// A single-part name that is a CTE of the statement or MySQL's unquoted
/// `DUAL`. (CTE scoping is not tracked: a real table shadowed by a same-named
/// CTE elsewhere in the statement is omitted too.)
fn is_pseudo_table(name: &ObjectName, cte_names: &[String]) -> bool {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => {
            (ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("DUAL"))
                || cte_names
                    .iter()
                    .any(|cte| cte.eq_ignore_ascii_case(&ident.value))
        }
        _ => false,
    }
}

/// `db.t` as written, without quote characters.
fn name_parts(name: &ObjectName) -> String {
    let mut out = String::new();
    for (i, part) in name.0.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match part {
            ObjectNamePart::Identifier(ident) => out.push_str(&ident.value),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// Facts gathered in one walk over a statement's AST.
#[derive(Default)]
struct Facts {
    relations: Vec<ObjectName>,
    cte_names: Vec<String>,
    locking: bool,
    nondeterministic: bool,
    /// `SELECT … INTO @v` or `@v := …`.
    sets_variables: bool,
    /// A query that writes: `SELECT … INTO <table>`, `WITH … UPDATE/DELETE`.
    writes: bool,
}

/// Functions whose result is not a function of the data (MySQL names;
/// `UNIX_TIMESTAMP` only counts without arguments).
const NONDETERMINISTIC_FUNCTIONS: &[&str] = &[
    "RAND",
    "NOW",
    "CURRENT_TIMESTAMP",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "SYSDATE",
    "UUID",
    "UUID_SHORT",
    "CURDATE",
    "CURRENT_DATE",
    "CURTIME",
    "CURRENT_TIME",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
    "LAST_INSERT_ID",
    "CONNECTION_ID",
    "FOUND_ROWS",
    "ROW_COUNT",
];

/// Time functions MySQL also accepts without parentheses.
const BARE_TIME_KEYWORDS: &[&str] = &[
    "CURRENT_TIMESTAMP",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "UTC_DATE",
    "UTC_TIME",
    "UTC_TIMESTAMP",
];

fn has_limit(limit: &Option<LimitClause>) -> bool {
    match limit {
        Some(LimitClause::LimitOffset { limit, .. }) => limit.is_some(),
        Some(LimitClause::OffsetCommaLimit { .. }) => true,
        None => false,
    }
}

fn set_expr_writes(body: &SetExpr) -> bool {
    match body {
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => true,
        SetExpr::SetOperation { left, right, .. } => {
            set_expr_writes(left) || set_expr_writes(right)
        }
        _ => false,
    }
}

impl Visitor for Facts {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.cte_names
                .extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
        }
        self.locking |= !query.locks.is_empty();
        self.nondeterministic |= has_limit(&query.limit_clause) && query.order_by.is_none();
        self.writes |= set_expr_writes(&query.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        if let Some(into) = &select.into {
            let only_user_vars = !into.table
                && !into.temporary
                && !into.unlogged
                && into
                    .targets
                    .iter()
                    .all(|t| matches!(t, Expr::Identifier(i) if i.value.starts_with('@')));
            if only_user_vars {
                self.sets_variables = true;
            } else {
                self.writes = true;
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(relation.clone());
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(f) => {
                let name = match f.name.0.last() {
                    Some(ObjectNamePart::Identifier(i)) => i.value.as_str(),
                    _ => "",
                };
                let no_args = match &f.args {
                    FunctionArguments::None => true,
                    FunctionArguments::List(l) => l.args.is_empty(),
                    FunctionArguments::Subquery(_) => false,
                };
                if NONDETERMINISTIC_FUNCTIONS
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name))
                    || (no_args && name.eq_ignore_ascii_case("UNIX_TIMESTAMP"))
                {
                    self.nondeterministic = true;
                }
            }
            // @@system and @user variables: session state, not data.
            Expr::Identifier(i) if i.quote_style.is_none() && i.value.starts_with('@') => {
                self.nondeterministic = true;
            }
            Expr::CompoundIdentifier(parts)
                if parts.first().is_some_and(|p| p.value.starts_with('@')) =>
            {
                self.nondeterministic = true;
            }
            Expr::Identifier(i)
                if i.quote_style.is_none()
                    && BARE_TIME_KEYWORDS
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(&i.value)) =>
            {
                self.nondeterministic = true;
            }
            Expr::BinaryOp {
                op: BinaryOperator::Assignment,
                ..
            } => self.sets_variables = true,
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, stmt: &Statement) -> ControlFlow<()> {
        match stmt {
            Statement::Update(u) => {
                self.nondeterministic |= u.limit.is_some() && u.order_by.is_empty()
            }
            Statement::Delete(d) => {
                self.nondeterministic |= d.limit.is_some() && d.order_by.is_empty()
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
