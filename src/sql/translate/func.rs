//! MySQL functions → PostgreSQL. Only functions known to behave the same
//! pass through; the ones that differ are rewritten; anything else is
//! reported, because a same-named PostgreSQL function may compute something
//! else (`LOG(x)` is ln in MySQL, log10 in PostgreSQL).

use sqlparser::ast::{
    helpers::attached_token::AttachedToken, CaseWhen, DataType, DateTimeField, DuplicateTreatment,
    ExactNumberInfo, Expr, ExtractSyntax, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, TimezoneInfo, Value,
};

use super::build::{cast, paren};
use super::literal::{self, number, string};
use super::scope::Scope;
use super::{untranslatable, TranslateError};
use crate::sql::schema::ColumnKind;

/// `name(args…)`
pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(function(name, args))
}

/// `NULLIF(e, 0)`, which turns MySQL's NULL-on-division-by-zero into
/// PostgreSQL; skipped for a non-zero literal.
pub(super) fn null_if_zero(e: Expr) -> Expr {
    if let Expr::Value(v) = &e {
        if let Value::Number(n, _) = &v.value {
            if n.parse::<f64>().is_ok_and(|x| x != 0.0) {
                return e;
            }
        }
    }
    call("NULLIF", vec![e, number(0)])
}

pub(super) fn function(name: &str, args: Vec<Expr>) -> Function {
    Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: vec![],
        }),
        within_group: vec![],
        filter: None,
        null_treatment: None,
        over: None,
    }
}

/// A keyword-like function written without parentheses (`CURRENT_DATE`).
pub(super) fn bare(name: &str) -> Expr {
    let mut f = function(name, vec![]);
    f.args = FunctionArguments::None;
    Expr::Function(f)
}

fn case_when(condition: Expr, then: Expr, otherwise: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition,
            result: then,
        }],
        else_result: Some(Box::new(otherwise)),
    }
}

fn extract(field: DateTimeField, e: Expr) -> Expr {
    Expr::Extract {
        field,
        syntax: ExtractSyntax::From,
        expr: Box::new(e),
    }
}

/// Same-named functions whose results match MySQL's.
#[rustfmt::skip]
const SAME: &[&str] = &[
    "ABS", "AVG", "CEIL", "CEILING", "COALESCE", "COUNT", "CUME_DIST", "DENSE_RANK", "EXP",
    "FIRST_VALUE", "FLOOR", "LAG", "LAST_VALUE", "LEAD", "LEFT", "LN", "LOG10", "LPAD", "LTRIM",
    "MAX", "MD5", "MIN", "NTH_VALUE", "NTILE", "NULLIF", "PERCENT_RANK", "PI", "RANK", "REPEAT",
    "REPLACE", "REVERSE", "RIGHT", "ROW_NUMBER", "RPAD", "RTRIM", "SIGN", "SQRT", "SUM",
];

/// Of those, the ones whose second argument is a length that MySQL and
/// PostgreSQL treat differently when negative (`LEFT('abc', -1)` is '' in
/// MySQL, 'ab' in PostgreSQL).
const LENGTH_ARGUMENT: &[&str] = &["LEFT", "RIGHT", "LPAD", "RPAD"];

/// Aggregates and window functions: the only ones allowed DISTINCT or OVER.
#[rustfmt::skip]
const AGGREGATE_OR_WINDOW: &[&str] = &[
    "AVG", "COUNT", "CUME_DIST", "DENSE_RANK", "FIRST_VALUE", "GROUP_CONCAT", "LAG", "LAST_VALUE",
    "LEAD", "MAX", "MIN", "NTH_VALUE", "NTILE", "PERCENT_RANK", "RANK", "ROW_NUMBER", "SUM",
];

/// Functions that read session or server state the mirror cannot reproduce.
#[rustfmt::skip]
const SESSION_STATE: &[&str] = &[
    "BENCHMARK", "CONNECTION_ID", "CURRENT_ROLE", "CURRENT_USER", "DATABASE", "FOUND_ROWS",
    "GET_LOCK", "IS_FREE_LOCK", "IS_USED_LOCK", "LAST_INSERT_ID", "RELEASE_LOCK", "ROW_COUNT",
    "SCHEMA", "SESSION_USER", "SLEEP", "SYSTEM_USER", "USER", "VERSION",
];

/// The plain argument list of `f`; `None` for `f` without parentheses.
fn plain_args(f: &Function, name: &str) -> Result<Option<Vec<Expr>>, TranslateError> {
    match &f.args {
        FunctionArguments::None => Ok(None),
        FunctionArguments::Subquery(_) => Err(untranslatable(format!("function {name}(subquery)"))),
        FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(untranslatable(format!("clauses in {name}(…)")));
            }
            list.args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                    _ => Err(untranslatable(format!("argument {a} of {name}"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
    }
}

fn arity(name: &str, args: &[Expr], ok: impl Fn(usize) -> bool) -> Result<(), TranslateError> {
    if ok(args.len()) {
        Ok(())
    } else {
        Err(untranslatable(format!(
            "{name} with {} arguments",
            args.len()
        )))
    }
}

/// `e` as text the way MySQL prints it: booleans (tinyint(1)) as 0/1,
/// TIMESTAMP columns without a zone offset.
fn as_text(e: Expr, scope: &Scope) -> Result<Expr, TranslateError> {
    if matches!(&e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))) {
        return Ok(e);
    }
    Ok(match scope.kind_of(&e) {
        Some(ColumnKind::Boolean) => cast(cast(e, DataType::Integer(None)), DataType::Text),
        Some(ColumnKind::Timestamp) => cast(
            cast(e, DataType::Timestamp(None, TimezoneInfo::None)),
            DataType::Text,
        ),
        Some(ColumnKind::Binary { .. }) => {
            return Err(untranslatable("string function on a binary column"))
        }
        _ => cast(e, DataType::Text),
    })
}

/// `(a::text || b::text …)`: NULL if any argument is NULL, as in MySQL
/// (PostgreSQL's concat() skips NULLs).
fn concat(args: Vec<Expr>, scope: &Scope) -> Result<Expr, TranslateError> {
    let mut parts = args.into_iter().map(|a| as_text(a, scope));
    let first = parts
        .next()
        .ok_or_else(|| untranslatable("CONCAT without arguments"))??;
    let joined = parts.try_fold(first, |acc, p| {
        Ok::<_, TranslateError>(Expr::BinaryOp {
            left: Box::new(acc),
            op: sqlparser::ast::BinaryOperator::StringConcat,
            right: Box::new(p?),
        })
    })?;
    Ok(Expr::Nested(Box::new(joined)))
}

/// `GROUP_CONCAT([DISTINCT] x, … [ORDER BY …] [SEPARATOR s])` →
/// `string_agg([DISTINCT] x::text, s [ORDER BY …])`.
fn group_concat(f: &Function, scope: &Scope) -> Result<Expr, TranslateError> {
    let FunctionArguments::List(list) = &f.args else {
        return Err(untranslatable("GROUP_CONCAT without arguments"));
    };
    let mut args = Vec::new();
    for a in &list.args {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e.clone()),
            other => return Err(untranslatable(format!("GROUP_CONCAT argument {other}"))),
        }
    }
    let value = match args.len() {
        0 => return Err(untranslatable("GROUP_CONCAT without arguments")),
        1 => as_text(args.remove(0), scope)?,
        _ => concat(args, scope)?,
    };
    let mut separator = string(",");
    let mut clauses = Vec::new();
    for clause in &list.clauses {
        match clause {
            FunctionArgumentClause::Separator(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    if s.contains('\0') {
                        return Err(untranslatable("NUL byte in a GROUP_CONCAT separator"));
                    }
                    separator = string(s.clone());
                }
                other => return Err(untranslatable(format!("GROUP_CONCAT separator {other}"))),
            },
            FunctionArgumentClause::OrderBy(items) => {
                if list.duplicate_treatment == Some(DuplicateTreatment::Distinct) {
                    // PostgreSQL would need the ORDER BY on the text value.
                    return Err(untranslatable("GROUP_CONCAT(DISTINCT … ORDER BY …)"));
                }
                clauses.push(FunctionArgumentClause::OrderBy(items.clone()));
            }
            other => return Err(untranslatable(format!("GROUP_CONCAT clause {other}"))),
        }
    }
    let mut agg = function("string_agg", vec![value, separator]);
    if let FunctionArguments::List(l) = &mut agg.args {
        l.duplicate_treatment = list.duplicate_treatment;
        l.clauses = clauses;
    }
    Ok(Expr::Function(agg))
}

/// MySQL's NOW()/CURRENT_TIMESTAMP is a zone-less DATETIME with whole
/// seconds (or `fsp` digits); LOCALTIMESTAMP(p) is the same type. It rounds
/// where MySQL truncates; the proxy normally pins these values first.
fn local_timestamp(name: &str, args: &[Expr]) -> Result<Expr, TranslateError> {
    arity(name, args, |n| n <= 1)?;
    let precision = args.first().cloned().unwrap_or_else(|| number(0));
    Ok(call("LOCALTIMESTAMP", vec![precision]))
}

/// `CAST(floor(EXTRACT(EPOCH FROM x)) AS BIGINT)`: whole seconds like MySQL
/// (a plain cast would round). A DATETIME is read in the session time zone,
/// as MySQL does, by going through timestamptz.
fn unix_timestamp(args: Vec<Expr>) -> Result<Expr, TranslateError> {
    arity("UNIX_TIMESTAMP", &args, |n| n <= 1)?;
    let source = match args.into_iter().next() {
        None => call("now", vec![]),
        Some(x) => cast(x, DataType::Timestamp(None, TimezoneInfo::Tz)),
    };
    let seconds = call("floor", vec![extract(DateTimeField::Epoch, source)]);
    Ok(Expr::Cast {
        kind: sqlparser::ast::CastKind::Cast,
        expr: Box::new(seconds),
        data_type: DataType::BigInt(None),
        format: None,
    })
}

/// MySQL's SUBSTRING counts a negative start from the end and returns ''
/// for 0; PostgreSQL does neither. Only positive literal starts are exact.
pub(super) fn check_substring_start(start: Option<&Expr>) -> Result<(), TranslateError> {
    let Some(start) = start else { return Ok(()) };
    if let Expr::Value(v) = start {
        if let Value::Number(n, _) = &v.value {
            if n.parse::<u64>().is_ok_and(|p| p > 0) {
                return Ok(());
            }
        }
    }
    Err(untranslatable(format!(
        "SUBSTRING with start position {start} (MySQL counts non-positive positions differently)"
    )))
}

/// The PostgreSQL replacement for a MySQL function call, or `None` when it
/// stays as written.
pub(super) fn rewrite(f: &mut Function, scope: &Scope) -> Result<Option<Expr>, TranslateError> {
    let name = match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] if i.quote_style.is_none() => i.value.to_ascii_uppercase(),
        _ => return Err(untranslatable(format!("stored function {}", f.name))),
    };
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
        if !AGGREGATE_OR_WINDOW.contains(&name.as_str()) || name == "GROUP_CONCAT" {
            return Err(untranslatable(format!("{name}(…) OVER / FILTER")));
        }
        return Ok(None);
    }
    if let FunctionArguments::List(list) = &f.args {
        if list.duplicate_treatment.is_some() && !AGGREGATE_OR_WINDOW.contains(&name.as_str()) {
            return Err(untranslatable(format!("DISTINCT in {name}(…)")));
        }
    }
    // The translator's own `ARRAY(subquery)` (UPDATE … LIMIT); MySQL has none.
    if name == "ARRAY" && matches!(f.args, FunctionArguments::Subquery(_)) {
        return Ok(None);
    }
    if name == "GROUP_CONCAT" {
        return group_concat(f, scope).map(Some);
    }
    if SESSION_STATE.contains(&name.as_str()) {
        return Err(untranslatable(format!(
            "function {name} (session or server state)"
        )));
    }
    if SAME.contains(&name.as_str()) {
        if name == "COUNT" || name == "SUM" || name == "AVG" || name == "MIN" || name == "MAX" {
            // May hold DISTINCT or `*`.
            return Ok(None);
        }
        let args = plain_args(f, &name)?.unwrap_or_default();
        if LENGTH_ARGUMENT.contains(&name.as_str()) {
            let literal_length = matches!(args.get(1), Some(Expr::Value(v))
                if matches!(&v.value, Value::Number(n, _) if n.parse::<u64>().is_ok()));
            if !literal_length {
                return Err(untranslatable(format!(
                    "{name} with a length that is not a non-negative literal"
                )));
            }
        }
        return Ok(None);
    }
    let args = plain_args(f, &name)?;
    let parens = args.is_some();
    let args = args.unwrap_or_default();
    let one = |args: Vec<Expr>| -> Result<Expr, TranslateError> {
        let [x]: [Expr; 1] = args
            .try_into()
            .map_err(|a: Vec<Expr>| untranslatable(format!("{name} with {} arguments", a.len())))?;
        Ok(x)
    };
    let out = match name.as_str() {
        "IFNULL" => {
            arity(&name, &args, |n| n == 2)?;
            call("COALESCE", args)
        }
        "IF" => {
            let [c, a, b]: [Expr; 3] = args
                .try_into()
                .map_err(|_| untranslatable("IF without three arguments"))?;
            case_when(c, a, b)
        }
        "NOW" | "SYSDATE" | "CURRENT_TIMESTAMP" | "LOCALTIME" | "LOCALTIMESTAMP" => {
            local_timestamp(&name, &args)?
        }
        "CURDATE" | "CURRENT_DATE" => {
            arity(&name, &args, |n| n == 0)?;
            bare("CURRENT_DATE")
        }
        "CURTIME" | "CURRENT_TIME" => {
            arity(&name, &args, |n| n <= 1)?;
            let precision = args.into_iter().next().unwrap_or_else(|| number(0));
            call("LOCALTIME", vec![precision])
        }
        "UNIX_TIMESTAMP" => unix_timestamp(args)?,
        "CONCAT" => concat(args, scope)?,
        "CONCAT_WS" => {
            arity(&name, &args, |n| n >= 2)?;
            let texts = args
                .into_iter()
                .map(|a| as_text(a, scope))
                .collect::<Result<Vec<_>, _>>()?;
            call("concat_ws", texts)
        }
        "LENGTH" | "OCTET_LENGTH" => call("octet_length", vec![one(args)?]),
        "CHAR_LENGTH" | "CHARACTER_LENGTH" => call("char_length", vec![one(args)?]),
        "LCASE" | "LOWER" => call("lower", vec![one(args)?]),
        "UCASE" | "UPPER" => call("upper", vec![one(args)?]),
        "RAND" if args.is_empty() => call("random", vec![]),
        "RAND" => return Err(untranslatable("RAND(seed)")),
        "MOD" => {
            let [a, b]: [Expr; 2] = args
                .try_into()
                .map_err(|_| untranslatable("MOD without two arguments"))?;
            call("mod", vec![a, null_if_zero(b)])
        }
        "POW" | "POWER" => {
            arity(&name, &args, |n| n == 2)?;
            call("power", args)
        }
        "LOG" if args.len() == 1 => call("ln", args),
        "LOG" => {
            arity(&name, &args, |n| n == 2)?;
            call("log", args)
        }
        "LOG2" => call("log", vec![number(2), one(args)?]),
        // With a digits argument PostgreSQL only has the numeric versions;
        // MySQL rounds doubles to the same decimal value.
        "ROUND" if args.len() == 1 => call("ROUND", args),
        "ROUND" | "TRUNCATE" => {
            let [x, digits]: [Expr; 2] = args
                .try_into()
                .map_err(|_| untranslatable(format!("{name} without two arguments")))?;
            let pg = if name == "ROUND" { "round" } else { "trunc" };
            call(
                pg,
                vec![cast(x, DataType::Numeric(ExactNumberInfo::None)), digits],
            )
        }
        // MySQL returns NULL when any argument is NULL; PostgreSQL skips
        // NULLs. The NULL test repeats each argument, so only plain ones are
        // taken (nested calls would grow the statement exponentially).
        "GREATEST" | "LEAST" => {
            arity(&name, &args, |n| n >= 2)?;
            let plain = |a: &Expr| {
                matches!(
                    a,
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_)
                )
            };
            if !args.iter().all(plain) {
                return Err(untranslatable(format!(
                    "{name} of computed arguments (its NULL handling would repeat them)"
                )));
            }
            let any_null = args
                .iter()
                .map(|a| Expr::IsNull(Box::new(paren(a.clone()))))
                .reduce(|a, b| Expr::BinaryOp {
                    left: Box::new(a),
                    op: sqlparser::ast::BinaryOperator::Or,
                    right: Box::new(b),
                })
                .unwrap_or_else(|| literal::lit(Value::Boolean(false)));
            case_when(any_null, literal::lit(Value::Null), call(&name, args))
        }
        "UUID" => {
            arity(&name, &args, |n| n == 0)?;
            cast(call("gen_random_uuid", vec![]), DataType::Text)
        }
        "DATE" => cast(one(args)?, DataType::Date),
        "YEAR" | "MONTH" | "DAY" | "DAYOFMONTH" => {
            let field = match name.as_str() {
                "YEAR" => DateTimeField::Year,
                "MONTH" => DateTimeField::Month,
                _ => DateTimeField::Day,
            };
            let source = cast(one(args)?, DataType::Timestamp(None, TimezoneInfo::None));
            cast(extract(field, source), DataType::Integer(None))
        }
        "DATE_FORMAT" => return Err(untranslatable("DATE_FORMAT (format strings differ)")),
        _ if !parens => return Err(untranslatable(format!("keyword {name}"))),
        _ => return Err(untranslatable(format!("function {name}"))),
    };
    Ok(Some(out))
}
