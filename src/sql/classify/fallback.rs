//! Statement kinds sqlparser cannot read, recognised from their tokens.
//!
//! Without this, every statement the parser rejects counts as a write: a
//! `SELECT … LOCK IN SHARE MODE` would be mirrored, an `XA COMMIT` would not
//! end the secondary's transaction, and a multi-table `UPDATE a, b SET …`
//! could not be translated. Each kind here is recognised by its leading
//! keywords (on sqlparser's own tokens, so strings and comments never
//! confuse it) and either rewritten into an equivalent text the parser
//! reads, or described directly. Anything else stays a write (the safe side).

use std::ops::Range;

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::{StatementClass, StatementInfo, TxnOp};
use crate::sql::pin::LineIndex;

/// Who may run a [`Recognized::Rewrite`]'s text instead of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// MySQL runs it exactly as the original: the secondary may get it.
    Mirror,
    /// Only as input to the PostgreSQL translation (drops a MySQL-only
    /// clause that does not change the rows stored).
    Postgres,
    /// Only to classify the statement.
    Classify,
}

/// What the fallback made of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognized {
    /// An equivalent text sqlparser can read.
    Rewrite { text: String, usable: Use },
    /// A statement kind without a readable equivalent; `note` says what the
    /// secondary misses (the drift reason).
    Kind {
        info: StatementInfo,
        note: &'static str,
    },
}

/// One significant token: its upper-cased word (empty for other tokens),
/// byte range and parenthesis depth.
struct Tok {
    word: String,
    token: Token,
    range: Range<usize>,
    depth: usize,
}

fn tokens(sql: &str) -> Option<Vec<Tok>> {
    let dialect = MySqlDialect {};
    let raw = Tokenizer::new(&dialect, sql)
        .with_unescape(true)
        .tokenize_with_location()
        .ok()?;
    let lines = LineIndex::new(sql);
    let mut depth = 0usize;
    let mut out = Vec::new();
    for t in raw {
        match &t.token {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        let word = match &t.token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        };
        let range = lines.range(t.span)?;
        let opens = t.token == Token::LParen;
        out.push(Tok {
            word,
            token: t.token,
            range,
            depth,
        });
        if opens {
            depth += 1;
        }
    }
    // One statement only (a trailing `;` is fine).
    if out.last().is_some_and(|t| t.token == Token::SemiColon) {
        out.pop();
    }
    if out.iter().any(|t| t.token == Token::SemiColon) {
        return None;
    }
    Some(out)
}

fn info(class: StatementClass, txn: Option<TxnOp>, tables: Vec<String>) -> StatementInfo {
    StatementInfo {
        class,
        tables,
        txn,
        locking_read: false,
        nondeterministic: false,
        query: false,
        ordered: false,
    }
}

/// A table name at `toks[i]` (`t` or `db.t`, quotes removed).
fn table_at(toks: &[Tok], i: usize) -> Option<String> {
    let name = |t: &Tok| match &t.token {
        Token::Word(w) => Some(w.value.clone()),
        _ => None,
    };
    let first = name(toks.get(i)?)?;
    match (toks.get(i + 1).map(|t| &t.token), toks.get(i + 2)) {
        (Some(Token::Period), Some(t)) => Some(format!("{first}.{}", name(t)?)),
        _ => Some(first),
    }
}

fn edit(sql: &str, edits: &[(Range<usize>, &str)]) -> String {
    crate::sql::pin::apply_edits(
        sql,
        edits
            .iter()
            .map(|(r, t)| (r.clone(), t.to_string()))
            .collect(),
    )
}

/// `word` among a statement's first keywords (`CREATE OR REPLACE TABLE`,
/// `ALTER ONLINE IGNORE TABLE`).
fn lead(words: &[&str], word: &str) -> bool {
    words.iter().take(4).any(|w| *w == word)
}

/// Recognises `sql` when it is one of the known unreadable kinds.
pub fn recognize(sql: &str) -> Option<Recognized> {
    let toks = tokens(sql)?;
    let words: Vec<&str> = toks.iter().map(|t| t.word.as_str()).collect();
    let rewrite = |text: String, usable: Use| Some(Recognized::Rewrite { text, usable });
    let kind = |info: StatementInfo, note: &'static str| Some(Recognized::Kind { info, note });
    match words.as_slice() {
        // XA transactions: the primary's two-phase commit is mirrored as an
        // ordinary transaction that commits or rolls back with it.
        ["XA", op, ..] => {
            let (class, txn) = match *op {
                "START" | "BEGIN" => (StatementClass::Transaction, Some(TxnOp::Begin)),
                "COMMIT" => (StatementClass::Transaction, Some(TxnOp::Commit)),
                "ROLLBACK" => (StatementClass::Transaction, Some(TxnOp::Rollback)),
                "END" | "PREPARE" => (StatementClass::Transaction, None),
                "RECOVER" => (StatementClass::Read, None),
                _ => return None,
            };
            kind(
                info(class, txn, Vec::new()),
                "XA transaction control has no counterpart on the secondary",
            )
        }
        // SELECT … LOCK IN SHARE MODE: a locking read.
        [.., "LOCK", "IN", "SHARE", "MODE"] if matches!(words[0], "SELECT" | "WITH" | "") => {
            let start = toks.get(toks.len() - 4)?.range.start;
            let end = toks.last()?.range.end;
            rewrite(edit(sql, &[(start..end, "FOR SHARE")]), Use::Classify)
        }
        // Multi-table UPDATE a, b SET …: MySQL joins a comma list like
        // CROSS JOIN, which the parser (and the translation) reads.
        ["UPDATE", ..] => {
            let set = toks.iter().position(|t| t.depth == 0 && t.word == "SET")?;
            let commas: Vec<(Range<usize>, &str)> = toks[..set]
                .iter()
                .filter(|t| t.depth == 0 && t.token == Token::Comma)
                .map(|t| {
                    let spaced = sql
                        .as_bytes()
                        .get(t.range.end)
                        .is_some_and(u8::is_ascii_whitespace);
                    let with = if spaced {
                        " CROSS JOIN"
                    } else {
                        " CROSS JOIN "
                    };
                    (t.range.clone(), with)
                })
                .collect();
            if commas.is_empty() {
                return None;
            }
            rewrite(edit(sql, &commas), Use::Mirror)
        }
        // SQL-level prepared statements (see `frontend::mysql::sql_prepared`):
        // preparing or dropping one changes session state only.
        ["PREPARE", _, "FROM", ..] | ["DROP", "PREPARE", _] => kind(
            info(StatementClass::Session, None, Vec::new()),
            "prepared statement handling is per session",
        ),
        ["CREATE", "FULLTEXT" | "SPATIAL", "INDEX", ..] => {
            let on = toks.iter().position(|t| t.word == "ON")?;
            kind(
                info(StatementClass::Ddl, None, vec![table_at(&toks, on + 1)?]),
                "FULLTEXT and SPATIAL indexes have no PostgreSQL equivalent: not created there",
            )
        }
        // CREATE TABLE … PARTITION BY …: the same table, unpartitioned, holds
        // the same rows on PostgreSQL.
        ["CREATE", ..] if lead(&words, "TABLE") && words.contains(&"PARTITION") => {
            let at = toks
                .iter()
                .position(|t| t.depth == 0 && t.word == "PARTITION")?;
            let start = toks.get(at)?.range.start;
            rewrite(edit(sql, &[(start..sql.len(), "")]), Use::Postgres)
        }
        // CREATE SEQUENCE … NOCYCLE / NOMAXVALUE / NOMINVALUE / NOCACHE:
        // MariaDB spellings of the standard `NO …` options.
        ["CREATE", ..] if lead(&words, "SEQUENCE") => {
            let edits: Vec<(Range<usize>, &str)> = toks
                .iter()
                .filter_map(|t| {
                    let with = match t.word.as_str() {
                        "NOCYCLE" => "NO CYCLE",
                        "NOMAXVALUE" => "NO MAXVALUE",
                        "NOMINVALUE" => "NO MINVALUE",
                        "NOCACHE" => "",
                        _ => return None,
                    };
                    Some((t.range.clone(), with))
                })
                .collect();
            if edits.is_empty() {
                return None;
            }
            rewrite(edit(sql, &edits), Use::Classify)
        }
        ["ALTER", ..] if lead(&words, "TABLE") => {
            let at = words.iter().position(|w| *w == "TABLE")?;
            let table = table_at(&toks, at + 1)?;
            let ddl = info(StatementClass::Ddl, None, vec![table]);
            // Table options and partition maintenance at the top level.
            let top: Vec<&str> = toks[at..]
                .iter()
                .filter(|t| t.depth == 0)
                .map(|t| t.word.as_str())
                .collect();
            if top
                .iter()
                .any(|w| *w == "PARTITION" || *w == "PARTITIONING")
            {
                kind(
                    ddl,
                    "partition maintenance is not mirrored (rows a DROP or TRUNCATE PARTITION removes stay on the secondary)",
                )
            } else if top.contains(&"COMMENT") {
                kind(ddl, "table comments are not mirrored")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Why the secondary cannot get `sql`, when the fallback knows its kind.
pub fn note(sql: &str) -> Option<&'static str> {
    match recognize(sql)? {
        Recognized::Kind { note, .. } => Some(note),
        Recognized::Rewrite { .. } => None,
    }
}

/// The text a mirror may run in place of `sql`, and whether the primary may
/// run it too (with pinned values): for `postgres` (the secondary is
/// PostgreSQL) also rewrites that only keep the stored rows the same.
pub fn mirror_text(sql: &str, postgres: bool) -> Option<(String, bool)> {
    match recognize(sql)? {
        Recognized::Rewrite { text, usable } => match usable {
            Use::Mirror => Some((text, true)),
            Use::Postgres if postgres => Some((text, false)),
            _ => None,
        },
        Recognized::Kind { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> (String, Use) {
        match recognize(sql) {
            Some(Recognized::Rewrite { text, usable }) => (text, usable),
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn kind_of(sql: &str) -> StatementInfo {
        match recognize(sql) {
            Some(Recognized::Kind { info, .. }) => info,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn rewrites_keep_everything_else_byte_for_byte() {
        assert_eq!(
            rewritten("UPDATE a, `b` x SET a.v = x.v, a.w = 'a, b' WHERE a.id = x.id"),
            (
                "UPDATE a CROSS JOIN `b` x SET a.v = x.v, a.w = 'a, b' WHERE a.id = x.id".into(),
                Use::Mirror
            )
        );
        assert_eq!(
            rewritten("select * from t where k = 'LOCK IN SHARE MODE' lock  in share\nmode"),
            (
                "select * from t where k = 'LOCK IN SHARE MODE' FOR SHARE".into(),
                Use::Classify
            )
        );
        assert_eq!(
            rewritten("CREATE TABLE p (id INT PRIMARY KEY, v VARCHAR(9) DEFAULT 'partition') PARTITION BY HASH(id) PARTITIONS 4"),
            (
                "CREATE TABLE p (id INT PRIMARY KEY, v VARCHAR(9) DEFAULT 'partition') ".into(),
                Use::Postgres
            )
        );
        assert_eq!(
            rewritten("CREATE SEQUENCE s START WITH 1 NOCYCLE NOCACHE").0,
            "CREATE SEQUENCE s START WITH 1 NO CYCLE "
        );
    }

    #[test]
    fn kinds_without_a_readable_form() {
        let xa = [
            ("XA START 'x'", Some(TxnOp::Begin)),
            ("xa begin 'x', 'b', 1", Some(TxnOp::Begin)),
            ("XA END 'x'", None),
            ("XA PREPARE 'x'", None),
            ("XA COMMIT 'x' ONE PHASE", Some(TxnOp::Commit)),
            ("XA ROLLBACK 'x'", Some(TxnOp::Rollback)),
        ];
        for (sql, txn) in xa {
            let i = kind_of(sql);
            assert_eq!(
                (i.class, i.txn),
                (StatementClass::Transaction, txn),
                "{sql}"
            );
        }
        assert_eq!(kind_of("XA RECOVER").class, StatementClass::Read);
        let i = kind_of("CREATE FULLTEXT INDEX ft ON db.posts (body)");
        assert_eq!(
            (i.class, i.tables),
            (StatementClass::Ddl, vec!["db.posts".into()])
        );
        for sql in [
            "ALTER TABLE t COMMENT 'hello'",
            "ALTER TABLE `t` COMMENT = 'x, PARTITION'",
            "ALTER TABLE t ADD PARTITION (PARTITION p5 VALUES LESS THAN (100))",
            "ALTER TABLE t DROP PARTITION p1",
            "ALTER TABLE t REMOVE PARTITIONING",
        ] {
            let i = kind_of(sql);
            assert_eq!(
                (i.class, i.tables),
                (StatementClass::Ddl, vec!["t".into()]),
                "{sql}"
            );
        }
        assert!(note("ALTER TABLE t DROP PARTITION p1")
            .unwrap()
            .contains("partition"));
    }

    #[test]
    fn the_classifier_uses_them() {
        use StatementClass::*;
        let c = super::super::Classifier::new(16);
        for (sql, class, tables) in [
            (
                "UPDATE a, b SET a.x = b.y WHERE a.id = b.id",
                Write,
                vec!["a", "b"],
            ),
            (
                "SELECT * FROM t WHERE id = 1 LOCK IN SHARE MODE",
                Read,
                vec!["t"],
            ),
            ("XA COMMIT 'x'", Transaction, vec![]),
            ("CREATE FULLTEXT INDEX ft ON t (body)", Ddl, vec!["t"]),
            (
                "CREATE TABLE p (id INT) PARTITION BY HASH(id) PARTITIONS 2",
                Ddl,
                vec!["p"],
            ),
            ("CREATE SEQUENCE s NOCYCLE", Ddl, vec![]),
            ("ALTER TABLE t COMMENT 'x'", Ddl, vec!["t"]),
            ("PREPARE s FROM 'SELECT 1'", Session, vec![]),
            ("DROP PREPARE s", Session, vec![]),
            ("DO 1", Write, vec![]),
        ] {
            let got = c.classify(sql);
            let got_tables: Vec<&str> = got
                .statements
                .iter()
                .flat_map(|s| s.tables.iter().map(String::as_str))
                .collect();
            assert_eq!((got.class, got_tables), (class, tables), "{sql}");
            assert!(!got.parsed, "{sql}");
        }
        let locking = c.classify("SELECT * FROM t LOCK IN SHARE MODE");
        assert!(locking.statements[0].locking_read);
        assert_eq!(c.parse_failures(), 1, "only DO 1 is a failure");
    }

    #[test]
    fn everything_else_is_left_to_the_safe_side() {
        for sql in [
            "UPDATE t SET a = 1",
            "UPDATE a JOIN b ON a.id = b.id SET a.x = 1",
            "ALTER TABLE t ENGINE = InnoDB",
            "SELECT 1; XA COMMIT 'x'",
            "DO 1",
            "",
        ] {
            assert_eq!(recognize(sql), None, "{sql}");
        }
        assert_eq!(
            mirror_text("UPDATE a, b SET a.x = b.y", false),
            Some(("UPDATE a CROSS JOIN b SET a.x = b.y".into(), true))
        );
        assert_eq!(
            mirror_text("CREATE TABLE p (id INT) PARTITION BY HASH(id)", false),
            None
        );
        assert_eq!(
            mirror_text("CREATE TABLE p (id INT) PARTITION BY HASH(id)", true),
            Some(("CREATE TABLE p (id INT) ".into(), false))
        );
    }
}
