//! Making one write store the same values on both backends.
//!
//! A mirrored write must not be re-evaluated on the secondary: `NOW()`,
//! `UUID()`, `RAND()`, `LAST_INSERT_ID()` … would give other values there, and
//! an auto-increment column would be numbered by the secondary's own counter.
//! This module finds those places in the original MySQL text (by the token
//! spans sqlparser reports) and edits the text there. The statement sent to
//! MySQL is never re-printed from the AST: sqlparser's printer changes meaning
//! for MySQL (escapes, `||`, `BINARY`), so only the spans we replace change.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlparser::ast::{
    Expr, FunctionArguments, Insert, SetExpr, Spanned, Statement, Visit, Visitor,
};
use sqlparser::tokenizer::Location;

use super::parse::Parsed;

/// The SQL type of a pinned value, which decides how its literal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    DateTime,
    Date,
    Time,
    Number,
    Str,
}

/// A call whose value the proxy fixes before the write runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Byte range of the whole call in the statement text.
    pub range: Range<usize>,
    /// The call as written (evaluated as is on the primary: same session, same
    /// time zone, same precision).
    pub expr: String,
    pub kind: PinKind,
}

/// An `INSERT`/`REPLACE … VALUES` whose auto-increment ids may need pinning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertShape {
    pub table: String,
    /// Column names as written (unquoted), empty when the statement has none.
    pub columns: Vec<String>,
    /// Byte offset of the first column name, to insert one before it.
    pub first_column_at: Option<usize>,
    /// Per row, byte ranges of its value expressions.
    pub rows: Vec<Vec<Range<usize>>>,
    /// Per row, the byte offset of its first value (to insert one before it).
    pub row_starts: Vec<usize>,
    pub on_duplicate_key_update: bool,
    pub replace: bool,
}

/// What the write path needs to know about one statement's text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteShape {
    pub pins: Vec<Pin>,
    /// Byte ranges of `?` placeholders, in order.
    pub placeholders: Vec<Range<usize>>,
    pub insert: Option<InsertShape>,
    /// Text that held more than one statement.
    pub multi: bool,
    /// Tables an INSERT/REPLACE of a multi-statement text writes: the OK
    /// packets of all but the last statement are not seen, so ids generated
    /// there are unknown.
    pub multi_inserts: Vec<String>,
    /// `RETURNING …` of an INSERT/REPLACE/DELETE (MariaDB ≥ 10.5): the primary
    /// answers with rows instead of an OK packet.
    pub returning: Option<Returning>,
}

/// A statement's `RETURNING` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returning {
    /// Byte range from the keyword to the end of the last item, which the
    /// secondary's text leaves out (its rows would go nowhere); `None` when
    /// the span is unknown (the secondary then returns rows nobody reads).
    pub range: Option<Range<usize>>,
}

/// Parses `sql` (MySQL) and finds pins, placeholders and the INSERT shape.
pub fn analyze(sql: &str) -> Result<WriteShape, String> {
    super::parse::guarded(super::parse::weight(sql), || analyze_inline(sql))
        .unwrap_or_else(|e| Err(e.to_string()))
}

/// [`analyze`] of a carried statement: uses (or parses once into) its AST.
pub fn analyze_parsed(parsed: &mut Parsed<'_>) -> Result<WriteShape, String> {
    let sql = parsed.text();
    match parsed.statements() {
        Some(Ok(statements)) => catch_unwind(AssertUnwindSafe(|| shape_of(sql, statements)))
            .map_err(|_| "sqlparser panicked".to_owned()),
        Some(Err(e)) => Err(e.clone()),
        None => analyze(sql),
    }
}

fn analyze_inline(sql: &str) -> Result<WriteShape, String> {
    let statements = super::parse::statements(sql).map_err(|e| e.to_string())?;
    Ok(shape_of(sql, &statements))
}

/// The write shape of `sql`, whose AST is `statements`.
fn shape_of(sql: &str, statements: &[Statement]) -> WriteShape {
    let lines = LineIndex::new(sql);
    let mut finder = Finder {
        sql,
        lines: &lines,
        pins: Vec::new(),
        placeholders: Vec::new(),
        pinning: true,
    };
    for s in statements {
        // Calls in DDL (column defaults, generated columns) are evaluated
        // later per row, not now: only statements that run now are pinned.
        finder.pinning = matches!(
            s,
            Statement::Insert(_)
                | Statement::Update(_)
                | Statement::Delete(_)
                | Statement::Query(_)
                | Statement::Merge(_)
                | Statement::Call(_)
                | Statement::Set(_)
        );
        let _ = s.visit(&mut finder);
    }
    let Finder {
        mut pins,
        mut placeholders,
        ..
    } = finder;
    pins.sort_by_key(|p| p.range.start);
    pins.dedup_by(|a, b| a.range.start < b.range.end);
    placeholders.sort_by_key(|r| r.start);
    let insert = match statements {
        [Statement::Insert(ins)] => insert_shape(ins, &lines, sql),
        _ => None,
    };
    let returning = match statements {
        [stmt] => returning(stmt, &lines, sql),
        _ => None,
    };
    let multi_inserts = match statements {
        [_, _, ..] => statements
            .iter()
            .filter_map(|s| match s {
                Statement::Insert(i) => Some(i.table.to_string().trim_matches('`').to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    WriteShape {
        pins,
        placeholders,
        insert,
        multi: statements.len() > 1,
        multi_inserts,
        returning,
    }
}

/// The `RETURNING` clause of an INSERT, REPLACE or DELETE, if it has one.
fn returning(stmt: &Statement, lines: &LineIndex, sql: &str) -> Option<Returning> {
    let items = match stmt {
        Statement::Insert(i) => i.returning.as_ref()?,
        Statement::Delete(d) => d.returning.as_ref()?,
        _ => return None,
    };
    let range = (|| {
        let first = lines.range(items.first()?.span())?;
        let last = lines.range(items.last()?.span())?;
        // Only blanks and comments lie between the keyword and its first
        // item; the keyword is the last "returning" before that item.
        let head = sql.get(..first.start)?.to_ascii_lowercase();
        let keyword = head.rfind("returning")?;
        (last.end >= first.start).then_some(keyword..last.end)
    })();
    Some(Returning { range })
}

/// Functions whose value differs per evaluation or per server.
fn pin_kind(name: &str, has_args: bool) -> Option<PinKind> {
    let upper = name.to_ascii_uppercase();
    Some(match upper.as_str() {
        "NOW" | "CURRENT_TIMESTAMP" | "LOCALTIME" | "LOCALTIMESTAMP" | "SYSDATE"
        | "UTC_TIMESTAMP" => PinKind::DateTime,
        "CURDATE" | "CURRENT_DATE" | "UTC_DATE" => PinKind::Date,
        "CURTIME" | "CURRENT_TIME" | "UTC_TIME" => PinKind::Time,
        "UNIX_TIMESTAMP" if !has_args => PinKind::Number,
        "RAND" | "UUID_SHORT" => PinKind::Number,
        "LAST_INSERT_ID" if !has_args => PinKind::Number,
        "UUID" | "SYS_GUID" => PinKind::Str,
        _ => return None,
    })
}

struct Finder<'a> {
    sql: &'a str,
    lines: &'a LineIndex,
    pins: Vec<Pin>,
    placeholders: Vec<Range<usize>>,
    /// Whether calls in the statement being visited are pinned.
    pinning: bool,
}

impl Visitor for Finder<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> std::ops::ControlFlow<()> {
        match expr {
            Expr::Function(f) => {
                let has_args = match &f.args {
                    FunctionArguments::List(l) => !l.args.is_empty(),
                    FunctionArguments::Subquery(_) => true,
                    FunctionArguments::None => false,
                };
                let name = f.name.to_string();
                if let Some(kind) = pin_kind(&name, has_args).filter(|_| self.pinning) {
                    if let Some(range) = self.lines.range(expr.span()) {
                        // The span ends at the last argument (or the name):
                        // extend it over the closing parenthesis.
                        let end = call_end(self.sql, range.end, has_args);
                        self.pins.push(Pin {
                            expr: self.sql[range.start..end].to_string(),
                            range: range.start..end,
                            kind,
                        });
                    }
                }
            }
            Expr::Value(v) if v.value == sqlparser::ast::Value::Placeholder("?".into()) => {
                if let Some(r) = self.lines.range(expr.span()) {
                    self.placeholders.push(r);
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// From `pos` (just after a function name, or after its last argument when it
/// has some), the end of the call: past optional whitespace and a balanced
/// `( … )`.
fn call_end(sql: &str, pos: usize, inside_args: bool) -> usize {
    let bytes = sql.as_bytes();
    let mut i = pos;
    let mut depth = usize::from(inside_args);
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => i += 1,
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' if depth > 0 => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ if depth > 0 => i += 1,
            _ => break,
        }
    }
    pos
}

fn insert_shape(ins: &Insert, lines: &LineIndex, _sql: &str) -> Option<InsertShape> {
    let source = ins.source.as_ref()?;
    let SetExpr::Values(values) = source.body.as_ref() else {
        return None;
    };
    let mut rows = Vec::with_capacity(values.rows.len());
    let mut row_starts = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        let ranges: Vec<Range<usize>> = row.iter().filter_map(|e| lines.range(e.span())).collect();
        if ranges.len() != row.len() {
            return None;
        }
        row_starts.push(ranges.first()?.start);
        rows.push(ranges);
    }
    let first_column_at = ins
        .columns
        .first()
        .and_then(|c| lines.range(c.span()))
        .map(|r| r.start);
    Some(InsertShape {
        table: ins.table.to_string().trim_matches('`').to_string(),
        columns: ins
            .columns
            .iter()
            .map(|c| c.to_string().trim_matches('`').to_string())
            .collect(),
        first_column_at,
        rows,
        row_starts,
        on_duplicate_key_update: ins.on.is_some(),
        replace: ins.replace_into,
    })
}

/// Maps sqlparser's 1-based (line, character column) locations to byte
/// offsets.
pub(crate) struct LineIndex {
    /// Byte offset where each line starts.
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    pub(crate) fn new(sql: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            starts,
            text: sql.to_string(),
        }
    }

    fn offset(&self, loc: Location) -> Option<usize> {
        let line_start = *self
            .starts
            .get(usize::try_from(loc.line).ok()?.checked_sub(1)?)?;
        let col = usize::try_from(loc.column).ok()?.checked_sub(1)?;
        let line = &self.text[line_start..];
        if col == 0 {
            return Some(line_start);
        }
        line.char_indices()
            .nth(col)
            .map(|(i, _)| line_start + i)
            .or_else(|| (line.chars().count() == col).then(|| line_start + line.len()))
    }

    pub(crate) fn range(&self, span: sqlparser::tokenizer::Span) -> Option<Range<usize>> {
        if span.start.line == 0 {
            return None;
        }
        Some(self.offset(span.start)?..self.offset(span.end)?)
    }
}

/// Replaces byte ranges of `sql`; `edits` may be in any order but must not
/// overlap. An empty range inserts.
pub fn apply_edits(sql: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(sql.len() + 64);
    let mut at = 0;
    for (r, text) in edits {
        if r.start < at || r.end > sql.len() {
            continue; // overlapping or out of range: keep the original text
        }
        out.push_str(&sql[at..r.start]);
        out.push_str(&text);
        at = r.end;
    }
    out.push_str(&sql[at..]);
    out
}

/// A MySQL literal for a value the primary computed (text protocol form).
/// Pinned values (dates, numbers, UUIDs) never hold quotes or backslashes.
pub fn literal(kind: PinKind, value: Option<&str>) -> String {
    let Some(v) = value else {
        return "NULL".into();
    };
    match kind {
        PinKind::DateTime => format!("TIMESTAMP'{v}'"),
        PinKind::Date => format!("DATE'{v}'"),
        PinKind::Time => format!("TIME'{v}'"),
        PinKind::Number if is_number(v) => v.to_string(),
        PinKind::Number | PinKind::Str => quote_string(v.as_bytes(), true),
    }
}

fn is_number(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// A MySQL literal that means exactly the bytes `b`: a quoted string when they
/// are UTF-8, else a hex literal. `backslash_escapes` is the session's mode
/// (false under sql_mode NO_BACKSLASH_ESCAPES, which the server reports in
/// every OK packet's status flags).
pub fn quote_string(b: &[u8], backslash_escapes: bool) -> String {
    let Ok(s) = std::str::from_utf8(b) else {
        let mut out = String::with_capacity(b.len() * 2 + 3);
        out.push_str("X'");
        for byte in b {
            out.push_str(&format!("{byte:02X}"));
        }
        out.push('\'');
        return out;
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if backslash_escapes => out.push_str("\\\\"),
            '\0' if backslash_escapes => out.push_str("\\0"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
#[path = "pin_tests.rs"]
mod tests;

/// The value of a pinned call computed by the proxy itself (used when
/// PostgreSQL is authoritative and there is no MySQL session to ask): times
/// in UTC with the precision the call asked for, a random UUID, a random
/// float, the session's last insert id.
pub fn evaluate_locally(pin: &Pin, last_insert_id: u64) -> String {
    let upper = pin.expr.to_ascii_uppercase();
    let name = upper
        .split(|c: char| c == '(' || c.is_whitespace())
        .next()
        .unwrap_or("");
    let precision: usize = upper
        .split_once('(')
        .and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse().ok())
        .unwrap_or(0)
        .min(6);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = crate::value::temporal::now_rfc3339(); // 2026-11-25T12:00:00.123456Z
    let date = &stamp[..10];
    let time = &stamp[11..19];
    let frac = if precision > 0 {
        format!(".{}", &stamp[20..20 + precision])
    } else {
        String::new()
    };
    match name {
        "UNIX_TIMESTAMP" => now.as_secs().to_string(),
        "LAST_INSERT_ID" => last_insert_id.to_string(),
        "RAND" => format!("{:e}", rand::random::<f64>()),
        "UUID_SHORT" => (rand::random::<u64>() >> 1).to_string(),
        "UUID" | "SYS_GUID" => {
            let b: [u8; 16] = rand::random();
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "'{}-{}-4{}-a{}-{}'",
                &h[..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            )
        }
        _ => match pin.kind {
            PinKind::Date => format!("DATE'{date}'"),
            PinKind::Time => format!("TIME'{time}{frac}'"),
            _ => format!("TIMESTAMP'{date} {time}{frac}'"),
        },
    }
}

#[cfg(test)]
mod local_tests {
    use super::*;

    #[test]
    fn local_values_have_mysql_literal_shapes() {
        let sql = "INSERT INTO t VALUES (NOW(), NOW(3), CURDATE(), UUID(), UNIX_TIMESTAMP(), LAST_INSERT_ID())";
        let pins = analyze(sql).unwrap().pins;
        let v: Vec<String> = pins.iter().map(|p| evaluate_locally(p, 42)).collect();
        assert!(
            v[0].starts_with("TIMESTAMP'20")
                && v[0].len() == "TIMESTAMP'2026-01-01 00:00:00'".len(),
            "{}",
            v[0]
        );
        assert_eq!(
            v[1].len(),
            "TIMESTAMP'2026-01-01 00:00:00.123'".len(),
            "{}",
            v[1]
        );
        assert!(v[2].starts_with("DATE'20"));
        assert_eq!(v[3].len(), 38, "{}", v[3]);
        assert!(v[4].parse::<u64>().unwrap() > 1_700_000_000);
        assert_eq!(v[5], "42");
    }
}
