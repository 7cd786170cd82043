//! PostgreSQL errors as the MySQL errors applications test for: the SQLSTATE
//! picks the MySQL code and state, and the message is rebuilt in MySQL's words
//! from the fields PostgreSQL reports (constraint, column, table, detail)
//! where they suffice. Anything unmapped is 1105 with PostgreSQL's message.

use tokio_postgres::error::DbError;

use crate::wire::packets::ServerError;

/// What the message texts may mention beyond the error itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorContext<'a> {
    /// The MySQL database name the client uses (`Table 'db.t' doesn't exist`).
    pub schema: &'a str,
}

/// Maps a tokio-postgres error (no context: table names are not qualified).
pub fn map_error(e: &tokio_postgres::Error) -> ServerError {
    map_error_in(e, ErrorContext::default())
}

pub fn map_error_in(e: &tokio_postgres::Error, ctx: ErrorContext<'_>) -> ServerError {
    match e.as_db_error() {
        Some(db) => map_db_error(db, ctx),
        None if e.is_closed() => lost_connection(),
        None => ServerError::new(1105, b"HY000", format!("PostgreSQL: {e}")),
    }
}

/// The answer when the PostgreSQL connection died mid-statement.
pub fn lost_connection() -> ServerError {
    ServerError::new(
        2013,
        b"HY000",
        "Lost connection to the PostgreSQL backend during query",
    )
}

pub fn map_db_error(db: &DbError, ctx: ErrorContext<'_>) -> ServerError {
    map_fields(&ErrorFields::from(db), ctx)
}

/// The parts of a PostgreSQL error report the mapping reads (a plain struct,
/// so the mapping can be tested without a server).
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorFields<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub table: Option<&'a str>,
    pub column: Option<&'a str>,
    pub constraint: Option<&'a str>,
}

impl<'a> From<&'a DbError> for ErrorFields<'a> {
    fn from(db: &'a DbError) -> Self {
        Self {
            code: db.code().code(),
            message: db.message(),
            detail: db.detail(),
            table: db.table(),
            column: db.column(),
            constraint: db.constraint(),
        }
    }
}

pub fn map_fields(db: &ErrorFields<'_>, ctx: ErrorContext<'_>) -> ServerError {
    let msg = db.message;
    let qualified = |t: &str| {
        if ctx.schema.is_empty() {
            t.to_string()
        } else {
            format!("{}.{t}", ctx.schema)
        }
    };
    let column = || db.column.map(str::to_string).or_else(|| quoted(msg));
    let at_column = |what: &str| match db.column {
        Some(c) => format!("{what} for column '{c}' at row 1"),
        None => format!("{what} ({msg})"),
    };
    let e = |code: u16, state: &[u8; 5], text: String| ServerError::new(code, state, text);
    match db.code {
        "23505" => {
            let (entry, key) = duplicate(db);
            e(
                1062,
                b"23000",
                format!("Duplicate entry '{entry}' for key '{key}'"),
            )
        }
        "23503" => {
            let parent = db.detail.is_some_and(|d| d.contains("still referenced"));
            let table = db.table.unwrap_or("?");
            let constraint = db.constraint.unwrap_or("?");
            let cols = db
                .detail
                .and_then(key_columns)
                .map(|c| format!(" FOREIGN KEY ({})", backquote_list(&c)))
                .unwrap_or_default();
            let what = if parent {
                "Cannot delete or update a parent row"
            } else {
                "Cannot add or update a child row"
            };
            e(
                if parent { 1451 } else { 1452 },
                b"23000",
                format!(
                    "{what}: a foreign key constraint fails (`{}`.`{table}`, CONSTRAINT `{constraint}`{cols})",
                    ctx.schema
                ),
            )
        }
        "23502" => e(
            1048,
            b"23000",
            format!("Column '{}' cannot be null", column().unwrap_or_default()),
        ),
        "23514" => e(
            4025,
            b"23000",
            format!(
                "CONSTRAINT `{}` failed for `{}`.`{}`",
                db.constraint.unwrap_or("?"),
                ctx.schema,
                db.table.unwrap_or("?")
            ),
        ),
        "42P01" => {
            let t = quoted(msg).unwrap_or_default();
            e(
                1146,
                b"42S02",
                format!("Table '{}' doesn't exist", qualified(&t)),
            )
        }
        "42703" => {
            let col = msg
                .strip_prefix("column ")
                .and_then(|m| m.split(" does not exist").next())
                .map(|c| c.replace('"', ""))
                .unwrap_or_default();
            e(
                1054,
                b"42S22",
                format!("Unknown column '{col}' in 'field list'"),
            )
        }
        "42601" => {
            let text = match quoted(msg) {
                Some(token) => format!(
                    "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '{token}' at line 1"
                ),
                None => format!("You have an error in your SQL syntax: {msg}"),
            };
            e(1064, b"42000", text)
        }
        "40001" | "40P01" => e(
            1213,
            b"40001",
            "Deadlock found when trying to get lock; try restarting transaction".into(),
        ),
        "55P03" => e(
            1205,
            b"HY000",
            "Lock wait timeout exceeded; try restarting transaction".into(),
        ),
        "57014" => {
            if msg.contains("lock timeout") {
                e(
                    1205,
                    b"HY000",
                    "Lock wait timeout exceeded; try restarting transaction".into(),
                )
            } else if msg.contains("statement timeout") {
                e(
                    1969,
                    b"70100",
                    "Query execution was interrupted (max_statement_time exceeded)".into(),
                )
            } else {
                e(1317, b"70100", "Query execution was interrupted".into())
            }
        }
        "22012" => e(1365, b"22012", "Division by 0".into()),
        "22001" => e(1406, b"22001", at_column("Data too long")),
        "22003" => e(1264, b"22003", at_column("Out of range value")),
        "22P02" => e(1366, b"22007", format!("Incorrect value: {msg}")),
        "22007" | "22008" => e(1292, b"22007", format!("Incorrect datetime value: {msg}")),
        "22021" | "22P05" => e(1366, b"HY000", format!("Incorrect string value: {msg}")),
        "42P07" => e(
            1050,
            b"42S01",
            format!("Table '{}' already exists", quoted(msg).unwrap_or_default()),
        ),
        "42701" => e(
            1060,
            b"42S21",
            format!(
                "Duplicate column name '{}'",
                quoted(msg).unwrap_or_default()
            ),
        ),
        "42883" => e(
            1305,
            b"42000",
            format!("FUNCTION {} does not exist", function_name(msg)),
        ),
        "3D000" => e(
            1049,
            b"42000",
            format!("Unknown database '{}'", quoted(msg).unwrap_or_default()),
        ),
        "42501" => e(1142, b"42000", msg.to_string()),
        "25006" => e(
            1792,
            b"25006",
            "Cannot execute statement in a READ ONLY transaction".into(),
        ),
        "53300" => e(1040, b"08004", "Too many connections".into()),
        "57P01" | "57P02" => e(1053, b"08S01", "Server shutdown in progress".into()),
        _ => e(1105, b"HY000", msg.to_string()),
    }
}

/// The first double-quoted name in a PostgreSQL message
/// (`relation "t" does not exist` → `t`).
fn quoted(msg: &str) -> Option<String> {
    let start = msg.find('"')? + 1;
    let len = msg[start..].find('"')?;
    Some(msg[start..start + len].to_string())
}

fn function_name(msg: &str) -> String {
    // `function foo(integer) does not exist`
    msg.strip_prefix("function ")
        .and_then(|m| m.split('(').next())
        .unwrap_or("?")
        .to_string()
}

/// `Key (a, b)=(1, x) already exists.` → (["a", "b"], "1, x").
fn key_parts(detail: &str) -> Option<(Vec<String>, &str)> {
    let rest = detail.strip_prefix("Key (")?;
    let (cols, rest) = rest.split_once(")=(")?;
    let end = rest.rfind(')')?;
    let cols = cols
        .split(", ")
        .map(|c| c.trim_matches('"').to_string())
        .collect();
    Some((cols, &rest[..end]))
}

fn key_columns(detail: &str) -> Option<Vec<String>> {
    key_parts(detail).map(|(c, _)| c)
}

fn backquote_list(cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// MySQL's entry ('1-x' for a two-column key) and key name. PostgreSQL's
/// primary keys are `<table>_pkey` (MySQL: PRIMARY); a unique constraint's
/// default name `<table>_<cols>_key` becomes MySQL's default, the first
/// column's name; other names are kept.
fn duplicate(db: &ErrorFields<'_>) -> (String, String) {
    let parts = db.detail.and_then(key_parts);
    let entry = match &parts {
        Some((cols, values)) => {
            let split: Vec<&str> = values.split(", ").collect();
            if cols.len() > 1 && split.len() == cols.len() {
                split.join("-")
            } else {
                values.to_string()
            }
        }
        None => String::new(),
    };
    let constraint = db.constraint.unwrap_or("");
    let key = match (db.table, &parts) {
        _ if constraint.ends_with("_pkey") => "PRIMARY".to_string(),
        (Some(t), Some((cols, _))) if constraint == format!("{t}_{}_key", cols.join("_")) => {
            cols.first().cloned().unwrap_or_default()
        }
        _ => constraint.to_string(),
    };
    (entry, key)
}

#[cfg(test)]
#[path = "errors_tests.rs"]
mod tests;
