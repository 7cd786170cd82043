//! CREATE TABLE and the column definitions it shares with ALTER TABLE.
//! MySQL keys become separate `CREATE [UNIQUE] INDEX "<table>_<key>"`
//! statements (PostgreSQL has no inline KEY), UNSIGNED and ENUM become
//! CHECK constraints, AUTO_INCREMENT an identity, ON UPDATE CURRENT_TIMESTAMP
//! a trigger.

use sqlparser::ast::{
    BinaryOperator, CheckConstraint, ColumnDef, ColumnOption, ColumnOptionDef, CreateIndex,
    CreateTable, CreateTableOptions, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GeneratedAs, GeneratedExpressionMode, Ident, InTarget, IndexColumn, ObjectName, ObjectNamePart,
    SequenceOptions, SqlOption, Statement, TableConstraint, Value,
};
use sqlparser::tokenizer::Token;

use super::expr;
use super::literal::{coerce, number, string};
use super::names::{index_ident, last_ident, protect, protect_object_name, stored_name};
use super::scope::Scope;
use super::types::column_type;
use super::{untranslatable, ForeignKey, TranslateError, Translated};
use crate::sql::schema::ColumnKind;

/// A translated column definition and what it needs besides itself.
pub(super) struct Column {
    pub def: ColumnDef,
    /// Inline `UNIQUE`: a unique index named after the column.
    pub unique: bool,
    /// `ON UPDATE CURRENT_TIMESTAMP`: needs [`on_update_trigger`].
    pub on_update: bool,
}

fn is_auto_increment(option: &ColumnOption) -> bool {
    matches!(option, ColumnOption::DialectSpecific(tokens)
        if tokens.iter().any(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("AUTO_INCREMENT"))))
}

/// `CURRENT_TIMESTAMP`, `NOW()`, `LOCALTIMESTAMP`… and their precision.
fn current_timestamp(e: &Expr) -> Option<Option<Expr>> {
    let Expr::Function(f) = e else { return None };
    let [ObjectNamePart::Identifier(name)] = f.name.0.as_slice() else {
        return None;
    };
    let known = ["CURRENT_TIMESTAMP", "NOW", "LOCALTIME", "LOCALTIMESTAMP"];
    if !known.iter().any(|k| name.value.eq_ignore_ascii_case(k)) {
        return None;
    }
    match &f.args {
        FunctionArguments::None => Some(None),
        FunctionArguments::List(l) if l.args.is_empty() => Some(None),
        FunctionArguments::List(l) => match l.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(p))] => Some(Some(p.clone())),
            _ => None,
        },
        FunctionArguments::Subquery(_) => None,
    }
}

/// A column default: literals are written for the column's kind, the
/// current-time functions become CURRENT_TIMESTAMP, anything else goes
/// through the expression rewrite.
pub(super) fn default_expr(
    mut e: Expr,
    kind: &ColumnKind,
    column: &str,
) -> Result<Expr, TranslateError> {
    if let Some(precision) = current_timestamp(&e) {
        return Ok(match precision {
            None => super::func::bare("CURRENT_TIMESTAMP"),
            Some(p) => super::func::call("CURRENT_TIMESTAMP", vec![p]),
        });
    }
    coerce(&mut e, kind, column)?;
    expr::rewrite(&mut e, &Scope::default())?;
    Ok(e)
}

fn check(expr: Expr) -> ColumnOptionDef {
    ColumnOptionDef {
        name: None,
        option: ColumnOption::Check(CheckConstraint {
            name: None,
            expr: Box::new(expr),
            no_inherit: false,
            enforced: None,
        }),
    }
}

/// Translates one column. `start` is the table's AUTO_INCREMENT=N.
pub(super) fn column(
    def: &ColumnDef,
    table: &str,
    start: Option<&Expr>,
    notes: &mut Vec<String>,
) -> Result<Column, TranslateError> {
    let auto_increment = def.options.iter().any(|o| is_auto_increment(&o.option));
    let ty = column_type(&def.data_type, auto_increment)?;
    let mut name = def.name.clone();
    protect(&mut name);
    let label = format!("{table}.{}", def.name.value);
    notes.extend(ty.note.clone().map(|n| format!("{label}: {n}")));
    let mut out = Column {
        def: ColumnDef {
            name: name.clone(),
            data_type: ty.data_type.clone(),
            options: vec![],
        },
        unique: false,
        on_update: false,
    };
    let mut options = Vec::new();
    for o in &def.options {
        let option = match &o.option {
            ColumnOption::Null | ColumnOption::NotNull | ColumnOption::PrimaryKey(_) => {
                o.option.clone()
            }
            ColumnOption::Default(e) => {
                ColumnOption::Default(default_expr(e.clone(), &ty.kind, &label)?)
            }
            ColumnOption::Unique(_) => {
                out.unique = true;
                continue;
            }
            ColumnOption::Check(c) => {
                let mut c = c.clone();
                expr::rewrite(c.expr.as_mut(), &Scope::default())?;
                ColumnOption::Check(c)
            }
            // Comments, character sets and collations are dropped; so is an
            // inline REFERENCES, which InnoDB parses and ignores.
            ColumnOption::Comment(_)
            | ColumnOption::CharacterSet(_)
            | ColumnOption::Collation(_) => continue,
            ColumnOption::ForeignKey(_) => {
                notes.push(format!(
                    "{label}: inline REFERENCES dropped (MySQL ignores it)"
                ));
                continue;
            }
            ColumnOption::OnUpdate(e) if current_timestamp(e).is_some() => {
                out.on_update = true;
                continue;
            }
            ColumnOption::OnUpdate(e) => return Err(untranslatable(format!("ON UPDATE {e}"))),
            opt if is_auto_increment(opt) => ColumnOption::Generated {
                generated_as: GeneratedAs::ByDefault,
                sequence_options: start.map(|n| vec![SequenceOptions::StartWith(n.clone(), true)]),
                generation_expr: None,
                generation_expr_mode: None,
                generated_keyword: true,
            },
            // PostgreSQL 15 has only stored generated columns; the values
            // read are the same.
            ColumnOption::Generated {
                generation_expr: Some(e),
                ..
            } => {
                let mut e = e.clone();
                expr::rewrite(&mut e, &Scope::default())?;
                ColumnOption::Generated {
                    generated_as: GeneratedAs::Always,
                    sequence_options: None,
                    generation_expr: Some(e),
                    generation_expr_mode: Some(GeneratedExpressionMode::Stored),
                    generated_keyword: true,
                }
            }
            ColumnOption::Invisible => {
                return Err(untranslatable("INVISIBLE column (SELECT * would show it)"))
            }
            other => return Err(untranslatable(format!("column option {other}"))),
        };
        options.push(ColumnOptionDef {
            name: o.name.clone(),
            option,
        });
    }
    let column_ref = || Expr::Identifier(name.clone());
    if ty.non_negative {
        options.push(check(Expr::BinaryOp {
            left: Box::new(column_ref()),
            op: BinaryOperator::GtEq,
            right: Box::new(number(0)),
        }));
    }
    if let ColumnKind::Enum(members) = &ty.kind {
        options.push(check(Expr::In {
            expr: Box::new(column_ref()),
            target: InTarget::List(members.iter().map(|m| string(m.clone())).collect()),
            negated: false,
            global: false,
        }));
    }
    out.def.options = options;
    Ok(out)
}

/// MySQL's ON UPDATE CURRENT_TIMESTAMP as a trigger: the column is set when
/// some other column changed and the statement left this one alone. (A
/// statement that assigns the column its current value gets the new time;
/// MySQL would keep the value. The time is PostgreSQL's clock.)
pub(super) fn on_update_trigger(
    table: &ObjectName,
    table_ident: &Ident,
    column: &Ident,
) -> Vec<String> {
    let function = Ident::with_quote(
        '"',
        format!("{}_{}_on_update", stored_name(table_ident), column.value),
    );
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN \
             IF NEW.{column} IS NOT DISTINCT FROM OLD.{column} AND NEW IS DISTINCT FROM OLD THEN \
             NEW.{column} := CURRENT_TIMESTAMP; END IF; RETURN NEW; END$$"
        ),
        format!(
            "CREATE OR REPLACE TRIGGER {function} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
        ),
    ]
}

/// `CREATE [UNIQUE] INDEX "<table>_<name>" ON table (cols)`. Prefix lengths
/// (`c(10)`) are dropped from plain indexes; on a UNIQUE index they would
/// change what is unique, so those are reported.
pub(super) fn create_index(
    table: &ObjectName,
    name: &str,
    unique: bool,
    columns: &[IndexColumn],
    if_not_exists: bool,
    notes: &mut Vec<String>,
) -> Result<Statement, TranslateError> {
    let table_ident = last_ident(table)
        .cloned()
        .ok_or_else(|| untranslatable(format!("table {table}")))?;
    let mut out = Vec::new();
    for c in columns {
        let mut c = c.clone();
        if let Expr::Function(f) = &c.column.expr {
            let (FunctionArguments::List(l), [ObjectNamePart::Identifier(col)]) =
                (&f.args, f.name.0.as_slice())
            else {
                return Err(untranslatable("functional index"));
            };
            if !matches!(l.args.as_slice(), [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))] if matches!(v.value, Value::Number(..)))
            {
                return Err(untranslatable("functional index"));
            }
            if unique {
                return Err(untranslatable(format!(
                    "UNIQUE index {name} on a column prefix {}",
                    c.column.expr
                )));
            }
            notes.push(format!(
                "index {name}: prefix length dropped from {}",
                c.column.expr
            ));
            c.column.expr = Expr::Identifier(col.clone());
        }
        match &mut c.column.expr {
            Expr::Identifier(i) => protect(i),
            other => return Err(untranslatable(format!("index on expression {other}"))),
        }
        c.operator_class = None;
        out.push(c);
    }
    Ok(Statement::CreateIndex(CreateIndex {
        name: Some(ObjectName(vec![ObjectNamePart::Identifier(index_ident(
            &table_ident,
            name,
        ))])),
        table_name: table.clone(),
        using: None,
        columns: out,
        unique,
        concurrently: false,
        r#async: false,
        if_not_exists,
        include: vec![],
        nulls_distinct: None,
        with: vec![],
        predicate: None,
        index_options: vec![],
        alter_options: vec![],
    }))
}

/// MySQL names an unnamed key after its first column (`c`, `c_2`, …).
pub(super) fn key_name(
    explicit: Option<&Ident>,
    columns: &[IndexColumn],
    used: &mut Vec<String>,
) -> String {
    if let Some(n) = explicit {
        used.push(n.value.clone());
        return n.value.clone();
    }
    let base = match columns.first().map(|c| &c.column.expr) {
        Some(Expr::Identifier(i)) => i.value.clone(),
        Some(Expr::Function(f)) => f.name.to_string(),
        _ => "key".to_string(),
    };
    let mut name = base.clone();
    let mut n = 2;
    while used.iter().any(|u| u.eq_ignore_ascii_case(&name)) {
        name = format!("{base}_{n}");
        n += 1;
    }
    used.push(name.clone());
    name
}

fn auto_increment_start(options: &CreateTableOptions) -> Option<Expr> {
    let list = match options {
        CreateTableOptions::Plain(l)
        | CreateTableOptions::Options(l)
        | CreateTableOptions::With(l) => l,
        _ => return None,
    };
    list.iter().find_map(|o| match o {
        SqlOption::KeyValue { key, value }
            if key.to_string().eq_ignore_ascii_case("AUTO_INCREMENT") =>
        {
            Some(value.clone())
        }
        _ => None,
    })
}

pub(super) fn create_table(
    mut ct: CreateTable,
    out: &mut Translated,
) -> Result<(), TranslateError> {
    if ct.query.is_some() {
        return Err(untranslatable("CREATE TABLE … AS SELECT"));
    }
    if ct.like.is_some() || ct.clone.is_some() {
        return Err(untranslatable("CREATE TABLE … LIKE"));
    }
    if ct.partition_by.is_some() {
        return Err(untranslatable("partitioned table"));
    }
    protect_object_name(&mut ct.name);
    let table_ident = last_ident(&ct.name)
        .cloned()
        .ok_or_else(|| untranslatable("CREATE TABLE without a name"))?;
    let table_label = table_ident.value.clone();
    // Table options (ENGINE, CHARSET, COLLATE, COMMENT…) do not carry over;
    // AUTO_INCREMENT=N becomes the identity's START WITH.
    let start = auto_increment_start(&ct.table_options);
    ct.table_options = CreateTableOptions::None;

    let mut notes = Vec::new();
    let mut indexes: Vec<(String, bool, Vec<IndexColumn>)> = Vec::new();
    let mut used_names = vec!["PRIMARY".to_string()];
    let mut triggers = Vec::new();
    let mut has_identity = false;
    let mut columns = Vec::new();
    for def in &ct.columns {
        let c = column(def, &table_label, start.as_ref(), &mut notes)?;
        has_identity |= def.options.iter().any(|o| is_auto_increment(&o.option));
        if c.unique {
            let cols = vec![IndexColumn::from(def.name.clone())];
            let name = key_name(None, &cols, &mut used_names);
            indexes.push((name, true, cols));
        }
        if c.on_update {
            triggers.extend(on_update_trigger(&ct.name, &table_ident, &c.def.name));
        }
        columns.push(c.def);
    }
    ct.columns = columns;
    if let (Some(n), false) = (&start, has_identity) {
        notes.push(format!(
            "{table_label}: AUTO_INCREMENT={n} dropped (no AUTO_INCREMENT column)"
        ));
    }

    let mut constraints = Vec::new();
    let mut foreign_keys = Vec::new();
    let mut fk_unnamed = 0;
    for constraint in std::mem::take(&mut ct.constraints) {
        match constraint {
            TableConstraint::PrimaryKey(mut pk) => {
                pk.index_name = None;
                pk.index_type = None;
                pk.index_options.clear();
                for c in &mut pk.columns {
                    match &mut c.column.expr {
                        Expr::Identifier(i) => protect(i),
                        _ => return Err(untranslatable("PRIMARY KEY on a column prefix")),
                    }
                }
                constraints.push(TableConstraint::PrimaryKey(pk));
            }
            TableConstraint::Unique(u) => {
                let name = key_name(
                    u.index_name.as_ref().or(u.name.as_ref()),
                    &u.columns,
                    &mut used_names,
                );
                indexes.push((name, true, u.columns));
            }
            TableConstraint::Index(i) => {
                let name = key_name(i.name.as_ref(), &i.columns, &mut used_names);
                indexes.push((name, false, i.columns));
            }
            TableConstraint::FulltextOrSpatial(f) => {
                let kind = if f.fulltext { "FULLTEXT" } else { "SPATIAL" };
                let name = f.opt_index_name.map(|n| n.value).unwrap_or_default();
                notes.push(format!("{table_label}: {kind} index {name} dropped"));
            }
            TableConstraint::ForeignKey(mut fk) => {
                fk.index_name = None;
                fk.columns.iter_mut().for_each(protect);
                fk.referred_columns.iter_mut().for_each(protect);
                protect_object_name(&mut fk.foreign_table);
                let references = last_ident(&fk.foreign_table)
                    .map(stored_name)
                    .ok_or_else(|| untranslatable(format!("REFERENCES {}", fk.foreign_table)))?;
                // Named as MySQL names it, so DROP FOREIGN KEY finds it.
                let name = match fk.name.take() {
                    Some(mut n) => {
                        protect(&mut n);
                        stored_name(&n)
                    }
                    None => {
                        fk_unnamed += 1;
                        format!("{}_ibfk_{fk_unnamed}", stored_name(&table_ident))
                    }
                };
                let definition = TableConstraint::ForeignKey(fk).to_string();
                foreign_keys.push(ForeignKey {
                    table: stored_name(&table_ident),
                    name,
                    references,
                    definition,
                });
            }
            TableConstraint::Check(mut c) => {
                expr::rewrite(c.expr.as_mut(), &Scope::default())?;
                if let Some(n) = &mut c.name {
                    protect(n);
                }
                constraints.push(TableConstraint::Check(c));
            }
            #[allow(unreachable_patterns)]
            other => return Err(untranslatable(format!("table constraint {other}"))),
        }
    }
    ct.constraints = constraints;
    let if_not_exists = ct.if_not_exists;
    let table = ct.name.clone();
    out.statements.push(Statement::CreateTable(ct).to_string());
    for (name, unique, cols) in indexes {
        out.statements.push(
            create_index(&table, &name, unique, &cols, if_not_exists, &mut notes)?.to_string(),
        );
    }
    out.statements.extend(triggers);
    // Foreign keys after the table and its indexes, each its own statement:
    // a caller can hold them back until the referenced tables exist and
    // hold their rows (see `Translated::split_foreign_keys`).
    out.statements
        .extend(foreign_keys.iter().map(|f| f.add_sql(false)));
    out.foreign_keys.extend(foreign_keys);
    out.notes.extend(notes);
    Ok(())
}
