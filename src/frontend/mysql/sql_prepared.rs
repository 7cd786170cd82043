//! SQL-level prepared statements: `PREPARE s FROM '…'` / `FROM @var`,
//! `EXECUTE s [USING @a, …]`, `DEALLOCATE PREPARE s` / `DROP PREPARE s`.
//!
//! The server keeps the statement; the proxy sees only its name on each
//! EXECUTE. To route and mirror an EXECUTE like the statement it runs, the
//! session remembers each prepared text by name (names are case-insensitive,
//! as in MariaDB; at most [`MAX_STATEMENTS`] per session). A PREPARE FROM
//! @var reads the variable on the primary connection first (one round trip,
//! as pins do). An EXECUTE of a write reads its USING variables the same way
//! before it runs, and the secondary gets the text with those values written
//! in. An EXECUTE whose text the proxy could not learn is relayed and, when a
//! mirror is running, reported as drift.

use std::sync::Arc;

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::relay::{self, RelayError};
use super::reply::{self, Flow};
use super::write;
use crate::backend::mysql::BackendConn;
use crate::backend::BackendError;
use crate::dualwrite::drift::DriftKind;
use crate::proxy::session::Session;
use crate::sql::classify::{Classified, StatementClass};
use crate::sql::parse::Parsed;
use crate::sql::pin;
use crate::state::AppState;
use crate::wire::io::{PacketIo, WireError};
use crate::wire::response::Expect;

/// SQL-level prepared statements remembered per session. MariaDB's own
/// limit (max_prepared_stmt_count) is per server; beyond this many the
/// proxy forgets the text and treats executions conservatively.
pub const MAX_STATEMENTS: usize = 1024;

/// One SQL-level prepared-statement command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlPrepared {
    /// `PREPARE name FROM 'text'` (`text`) or `FROM @var` (`var`).
    Prepare {
        name: String,
        text: Option<String>,
        var: Option<String>,
    },
    /// `EXECUTE name [USING @a, @b]`.
    Execute { name: String, vars: Vec<String> },
    /// `DEALLOCATE PREPARE name` / `DROP PREPARE name`.
    Deallocate { name: String },
}

/// Recognises the three commands (one statement, nothing else in the text).
pub fn parse(sql: &str) -> Option<SqlPrepared> {
    // Most texts here are SET statements: skip tokenizing them (a leading
    // comment still gets the full look).
    let lead = sql.trim_start();
    let word: String = lead
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    let starts_with_letter = lead.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if starts_with_letter && !matches!(word.as_str(), "PREPARE" | "EXECUTE" | "DEALLOCATE" | "DROP")
    {
        return None;
    }
    let dialect = MySqlDialect {};
    let mut toks: Vec<Token> = Tokenizer::new(&dialect, sql)
        .tokenize()
        .ok()?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
        .collect();
    if toks.last() == Some(&Token::SemiColon) {
        toks.pop();
    }
    let word = |t: &Token| match t {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    };
    let keyword = |t: Option<&Token>, k: &str| matches!(t, Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let name = word(toks.get(1)?)?.to_ascii_lowercase();
    if keyword(toks.first(), "PREPARE") && keyword(toks.get(2), "FROM") && toks.len() == 4 {
        return match toks.get(3)? {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => {
                Some(SqlPrepared::Prepare {
                    name,
                    text: Some(s.clone()),
                    var: None,
                })
            }
            Token::Word(w) if w.value.starts_with('@') && !w.value.starts_with("@@") => {
                Some(SqlPrepared::Prepare {
                    name,
                    text: None,
                    var: Some(w.value.clone()),
                })
            }
            _ => None,
        };
    }
    if keyword(toks.first(), "EXECUTE") {
        let mut vars = Vec::new();
        if toks.len() > 2 {
            if !keyword(toks.get(2), "USING") {
                return None;
            }
            for (i, t) in toks.iter().enumerate().skip(3) {
                match (i % 2, t) {
                    (1, Token::Word(w)) if w.value.starts_with('@') => vars.push(w.value.clone()),
                    (0, Token::Comma) => {}
                    _ => return None,
                }
            }
            if vars.is_empty() || toks.last() == Some(&Token::Comma) {
                return None;
            }
        }
        return (toks.len() >= 2).then_some(SqlPrepared::Execute { name, vars });
    }
    let dealloc = (keyword(toks.first(), "DEALLOCATE") || keyword(toks.first(), "DROP"))
        && keyword(toks.get(1), "PREPARE");
    if dealloc && toks.len() == 3 {
        let name = word(toks.get(2)?)?.to_ascii_lowercase();
        return Some(SqlPrepared::Deallocate { name });
    }
    None
}

/// `@var` (as the tokenizer gives it) in a form safe to select: a bare name
/// or a backquoted one.
fn select_var(var: &str) -> String {
    let name = var.trim_start_matches('@');
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        format!("@{name}")
    } else {
        format!("@`{}`", name.replace('`', "``"))
    }
}

/// Reads user variables on the primary connection (same session).
async fn read_vars(
    backend: &mut BackendConn,
    vars: &[String],
) -> Result<Result<Vec<Option<String>>, String>, RelayError> {
    let list: Vec<String> = vars.iter().map(|v| select_var(v)).collect();
    match backend
        .query_rows(&format!("SELECT {}", list.join(", ")))
        .await
    {
        Ok(rows) => Ok(rows
            .into_iter()
            .next()
            .ok_or_else(|| "reading the variables returned no row".to_string())),
        Err(BackendError::Server(e)) => Ok(Err(format!("reading the variables failed: {e}"))),
        Err(BackendError::Wire(w)) => Err(RelayError::Backend(w)),
        Err(other) => {
            tracing::warn!(error = %other, "primary failed while reading user variables");
            Err(RelayError::Backend(WireError::Malformed(
                "primary failed while reading user variables",
            )))
        }
    }
}

/// Serves one of the three commands.
pub async fn serve(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
    classified: &Classified,
    command: SqlPrepared,
) -> Result<Flow, RelayError> {
    match command {
        SqlPrepared::Prepare { name, text, var } => {
            let text = match (text, var) {
                (Some(t), _) => Some(t),
                (None, Some(var)) => match read_vars(backend, &[var]).await? {
                    Ok(values) => values.into_iter().next().flatten(),
                    Err(_) => None,
                },
                (None, None) => None,
            };
            let ok = relay_plain(client, backend, session, payload, classified).await?;
            // MariaDB drops an existing statement of that name even when the
            // new PREPARE fails.
            session.sql_prepared.remove(&name);
            if ok && session.sql_prepared.len() < MAX_STATEMENTS {
                session.sql_prepared.insert(name, text);
            }
            Ok(Flow::Continue)
        }
        SqlPrepared::Deallocate { name } => {
            if relay_plain(client, backend, session, payload, classified).await? {
                session.sql_prepared.remove(&name);
            }
            Ok(Flow::Continue)
        }
        SqlPrepared::Execute { name, vars } => {
            execute(client, backend, session, state, payload, name, vars).await
        }
    }
}

async fn execute(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
    name: String,
    vars: Vec<String>,
) -> Result<Flow, RelayError> {
    let text = session.sql_prepared.get(&name).cloned().flatten();
    // One parse of the prepared text, shared by its classification and the
    // inlining of the variables (`sql::parse`).
    let mut parsed = text.as_deref().map(Parsed::new);
    let inner = parsed.as_mut().map(|p| state.classifier.classify_parsed(p));
    let mirrored = session.mirror.is_some()
        && match (&text, &inner) {
            (Some(t), Some(c)) => {
                crate::proxy::decide::StatementFacts::of(c, t.as_bytes()).changes_data
            }
            // Unknown text: conservatively a write.
            _ => true,
        };
    let (Some(parsed), Some(inner)) = (parsed.as_mut(), inner) else {
        let unknown = reply::classify(state, &payload[1..]);
        let ran = relay_plain(client, backend, session, payload, &unknown).await?;
        // Reported only when it ran (an EXECUTE of a dropped name fails).
        if ran && mirrored {
            if let Some(mirror) = state.mirror.load_full() {
                mirror.record(
                    session.id,
                    DriftKind::Untranslatable,
                    &String::from_utf8_lossy(&payload[1..]),
                    None,
                    format!(
                        "EXECUTE of `{name}`, whose text the proxy does not know (beyond {MAX_STATEMENTS} prepared statements, or prepared from a variable it could not read): not mirrored"
                    ),
                );
            }
        }
        return Ok(Flow::Continue);
    };
    if !mirrored {
        relay_plain(client, backend, session, payload, &inner).await?;
        return Ok(Flow::Continue);
    }
    // The secondary gets the statement with the variables' current values.
    let values = match vars.is_empty() {
        true => Ok(Vec::new()),
        false => read_vars(backend, &vars).await?,
    };
    let escapes = session.backslash_escapes();
    let inlined = values.and_then(|values| inline_parsed(parsed, &values, escapes));
    write::query_as(
        client, backend, session, state, payload, &inner, inlined, None,
    )
    .await
}

/// `text` with each `?` replaced by a user variable's value (as a string
/// literal: MySQL and PostgreSQL both convert it to the column's type).
#[cfg(test)]
fn inline(text: &str, values: &[Option<String>], escapes: bool) -> Result<String, String> {
    inline_parsed(&mut Parsed::new(text), values, escapes)
}

/// [`inline`] of a text whose AST may be at hand already.
fn inline_parsed(
    parsed: &mut Parsed<'_>,
    values: &[Option<String>],
    escapes: bool,
) -> Result<String, String> {
    let text = parsed.text();
    let shape = pin::analyze_parsed(parsed)?;
    if shape.placeholders.len() != values.len() {
        return Err(format!(
            "{} values for {} placeholders",
            values.len(),
            shape.placeholders.len()
        ));
    }
    let edits = shape
        .placeholders
        .iter()
        .zip(values)
        .map(|(r, v)| {
            let lit = match v {
                None => "NULL".to_string(),
                Some(v) => pin::quote_string(v.as_bytes(), escapes),
            };
            (r.clone(), lit)
        })
        .collect();
    Ok(pin::apply_edits(text, edits))
}

/// Relays a statement that is not mirrored; true when the primary answered OK.
async fn relay_plain(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    payload: &[u8],
    classified: &Classified,
) -> Result<bool, RelayError> {
    let w = relay::command_held(
        &mut backend.io,
        client,
        payload,
        Expect::Results,
        session.deprecate_eof(),
    )
    .await?;
    session.note_status(w.status);
    write::after_relay(client, session, Some(classified)).await?;
    Ok(w.error.is_none())
}

/// Whether `classified` may be one of the three commands (a cheap test
/// before tokenizing).
pub fn candidate(classified: &Classified) -> bool {
    matches!(
        classified.class,
        StatementClass::Session | StatementClass::Other
    ) && classified.statements.len() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised() {
        assert_eq!(
            parse("PREPARE Ins FROM 'INSERT INTO t VALUES (?, ''it''''s'')'"),
            Some(SqlPrepared::Prepare {
                name: "ins".into(),
                text: Some("INSERT INTO t VALUES (?, 'it''s')".into()),
                var: None
            })
        );
        assert_eq!(
            parse("prepare s from @q;"),
            Some(SqlPrepared::Prepare {
                name: "s".into(),
                text: None,
                var: Some("@q".into())
            })
        );
        assert_eq!(
            parse("EXECUTE S USING @a, @b"),
            Some(SqlPrepared::Execute {
                name: "s".into(),
                vars: vec!["@a".into(), "@b".into()]
            })
        );
        assert_eq!(
            parse("EXECUTE s"),
            Some(SqlPrepared::Execute {
                name: "s".into(),
                vars: vec![]
            })
        );
        assert_eq!(
            parse("/* app */ EXECUTE s"),
            Some(SqlPrepared::Execute {
                name: "s".into(),
                vars: vec![]
            })
        );
        for sql in ["DEALLOCATE PREPARE S", "DROP PREPARE s"] {
            assert_eq!(
                parse(sql),
                Some(SqlPrepared::Deallocate { name: "s".into() })
            );
        }
        for sql in [
            "EXECUTE s USING @a,",
            "EXECUTE s USING 1",
            "PREPARE s FROM @@sql_mode",
            "PREPARE s FROM CONCAT('a')",
            "SELECT 1",
            "EXECUTE s; SELECT 1",
            "SET @a = 1",
        ] {
            assert_eq!(parse(sql), None, "{sql}");
        }
    }

    #[test]
    fn values_are_written_in_as_literals() {
        let out = inline(
            "UPDATE t SET a = ?, b = 'x?' WHERE id = ?",
            &[Some("it's".into()), Some("7".into())],
            true,
        )
        .unwrap();
        assert_eq!(out, "UPDATE t SET a = 'it''s', b = 'x?' WHERE id = '7'");
        assert_eq!(
            inline("INSERT INTO t VALUES (?)", &[None], true).unwrap(),
            "INSERT INTO t VALUES (NULL)"
        );
        assert!(inline("INSERT INTO t VALUES (?, ?)", &[None], true).is_err());
        assert_eq!(select_var("@a"), "@a");
        assert_eq!(select_var("@odd name"), "@`odd name`");
    }
}
