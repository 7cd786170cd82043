//! `tandem schema [--apply]`: the new side's tables, derived from the old
//! side's.
//!
//! Each table's `SHOW CREATE TABLE` goes through the same statement
//! translator the dual-write mirror uses for DDL
//! ([`crate::sql::translate::to_postgres`]), with the old side's
//! information_schema as its schema knowledge, so a table created here and
//! one created by a mirrored `CREATE TABLE` come out identical. Tables the
//! translator cannot carry over are reported and left out; approximations it
//! notes (dropped FULLTEXT indexes, prefix lengths …) are reported too.
//! For a MySQL new side the DDL is MySQL's own, unchanged (created with
//! `FOREIGN_KEY_CHECKS=0`, so name order works whatever references what).
//!
//! Foreign keys are held back on PostgreSQL: tables and indexes are created,
//! and each table's foreign keys are recorded as pending for `tandem
//! backfill` to add once every table is copied ([`crate::foreign_keys`]
//! says why). `--foreign-keys now` adds them right after the tables (an
//! empty database, or one whose rows are already complete).

use mysql_async::prelude::Queryable;
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Location, Token, Tokenizer};

use crate::foreign_keys::Outcome;
use crate::sql::schema::Schema;
use crate::sql::translate::{to_postgres, ForeignKey, TranslateError};

use super::db::Db;
use super::sqltext::Dialect;
use super::{catalog, MigrateError, Side, Sides};

#[derive(Debug, Default)]
pub struct SchemaReport {
    /// Per table: its name and the statements that create it.
    pub tables: Vec<(String, Vec<String>)>,
    /// Tables left out because the translator refused them.
    pub untranslatable: Vec<String>,
    /// What was carried over only approximately.
    pub notes: Vec<String>,
    /// Tables that already existed on the new side (with --apply: untouched).
    pub existing: Vec<String>,
    pub applied: bool,
    /// Foreign keys of the tables to create (PostgreSQL), held back.
    pub foreign_keys: Vec<ForeignKey>,
    /// With `--foreign-keys now`: what adding each pending key gave.
    pub added: Vec<(ForeignKey, Outcome)>,
}

impl SchemaReport {
    pub fn ok(&self) -> bool {
        self.untranslatable.is_empty() && self.added.iter().all(|(_, o)| o.is_added())
    }
}

/// When foreign keys are added to a PostgreSQL new side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForeignKeys {
    /// Recorded as pending; `tandem backfill` adds them once every table is
    /// copied.
    #[default]
    AfterBackfill,
    /// Added right after the tables.
    Now,
}

pub async fn run(
    sides: &Sides,
    apply: bool,
    foreign_keys: ForeignKeys,
) -> Result<SchemaReport, MigrateError> {
    let mut old = sides.connect(Side::Old).await?;
    let names: Vec<String> = catalog::load(&mut old)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let Db::My(conn) = &mut old else {
        return Err(MigrateError::Unsupported(
            "reading the schema of a non-MySQL old side".into(),
        ));
    };
    let columns = text_rows(conn.query(Schema::COLUMNS_QUERY).await?);
    let keys = text_rows(conn.query(Schema::KEYS_QUERY).await?);
    let schema = Schema::from_rows(&columns, &keys);

    let mut new = sides.connect(Side::New).await?;
    let target = new.dialect();
    let existing_new = catalog::load(&mut new).await?;
    let mut report = SchemaReport::default();
    for name in names {
        let create: Option<(String, String)> = conn
            .query_first(format!(
                "SHOW CREATE TABLE {}",
                super::sqltext::ident(Dialect::Mysql, &name)
            ))
            .await?;
        let Some((_, ddl)) = create else { continue };
        let statements = match target {
            Dialect::Mysql => vec![ddl],
            Dialect::Postgres => match to_postgres(&mariadb_json_columns(&ddl), &schema) {
                Ok(mut t) => {
                    let prefix = format!("{name}:");
                    report
                        .notes
                        .extend(std::mem::take(&mut t.notes).into_iter().map(|n| {
                            if n.starts_with(&prefix) || n.starts_with(&format!("{name}.")) {
                                n
                            } else {
                                format!("{name}: {n}")
                            }
                        }));
                    let (statements, fks) = t.split_foreign_keys();
                    if catalog::find(&existing_new, &name).is_none() {
                        report.foreign_keys.extend(fks);
                    }
                    statements
                }
                Err(e) => {
                    report
                        .untranslatable
                        .push(format!("{name}: {}", describe(&e)));
                    continue;
                }
            },
        };
        if catalog::find(&existing_new, &name).is_some() {
            report.existing.push(name.clone());
        }
        report.tables.push((name, statements));
    }
    if apply {
        if target == Dialect::Mysql {
            new.execute("SET SESSION foreign_key_checks = 0").await?;
        }
        for (name, statements) in &report.tables {
            if report.existing.contains(name) {
                continue;
            }
            // One transaction per table: a failure leaves no half-made table.
            new.begin().await?;
            for s in statements {
                if let Err(e) = new.execute(s).await {
                    let _ = new.execute("ROLLBACK").await;
                    return Err(MigrateError::Translate(format!(
                        "creating {name} on the new side failed at `{s}`: {e}"
                    )));
                }
            }
            new.execute("COMMIT").await?;
        }
        if let Db::Pg(pg) = &new {
            for fk in &report.foreign_keys {
                crate::foreign_keys::hold(
                    &pg.client,
                    fk,
                    "created by `tandem schema --apply`; `tandem backfill` adds it once every table is copied",
                )
                .await?;
            }
            if foreign_keys == ForeignKeys::Now {
                report.added = crate::foreign_keys::add_all(&pg.client).await?;
            }
        }
        report.applied = true;
    }
    Ok(report)
}

/// MariaDB has no JSON type: a `JSON` column comes back from SHOW CREATE
/// TABLE as `longtext [CHARACTER SET x] [COLLATE y] … CHECK
/// (json_valid(`c`))`. This turns such columns back into `json` for the
/// translator. The edit is made by token position in the original text, so
/// everything else (string literals with their escapes in particular) stays
/// byte for byte what the server printed.
pub fn mariadb_json_columns(ddl: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, ddl).tokenize_with_location() else {
        return ddl.to_string();
    };
    let starts: Vec<usize> = tokens
        .iter()
        .map(|t| byte_offset(ddl, t.span.start))
        .collect();
    // Significant tokens with their index in `tokens`.
    let sig: Vec<(usize, &Token)> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.token, Token::Whitespace(_)))
        .map(|(i, t)| (i, &t.token))
        .collect();
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x.value.eq_ignore_ascii_case(w) && x.quote_style.is_none());
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let mut json_columns = Vec::new();
    for w in sig.windows(7) {
        if let [(a, check), (_, Token::LParen), (_, f), (_, Token::LParen), (_, Token::Word(col)), (_, Token::RParen), (e, Token::RParen)] =
            w
        {
            if word(check, "CHECK") && word(f, "json_valid") {
                edits.push((starts[*a], starts[*e] + 1, ""));
                json_columns.push(col.value.clone());
            }
        }
    }
    let mut depth = 0;
    let mut expect_name = false;
    for (n, (_, t)) in sig.iter().enumerate() {
        match t {
            Token::LParen => {
                depth += 1;
                expect_name = depth == 1;
                continue;
            }
            Token::RParen => depth -= 1,
            Token::Comma if depth == 1 => {
                expect_name = true;
                continue;
            }
            Token::Word(name) if expect_name && json_columns.contains(&name.value) => {
                if let Some((ty, ty_token)) = sig.get(n + 1).copied() {
                    if word(ty_token, "longtext") {
                        // Skip CHARACTER SET x / COLLATE y, which json refuses.
                        let mut k = n + 2;
                        loop {
                            match (sig.get(k), sig.get(k + 1)) {
                                (Some((_, c)), Some((_, s)))
                                    if word(c, "CHARACTER") && word(s, "SET") =>
                                {
                                    k += 3
                                }
                                (Some((_, c)), _) if word(c, "COLLATE") => k += 2,
                                _ => break,
                            }
                        }
                        let end = sig.get(k).map_or(ddl.len(), |(i, _)| starts[*i]);
                        edits.push((starts[ty], end, "json "));
                    }
                }
            }
            _ => {}
        }
        expect_name = false;
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = ddl.to_string();
    for (start, end, replacement) in edits {
        if start <= end && end <= out.len() {
            out.replace_range(start..end, replacement);
        }
    }
    out
}

/// Byte offset of a tokenizer location (1-based line and character column).
fn byte_offset(text: &str, loc: Location) -> usize {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == loc.line as usize {
            return offset
                + line
                    .char_indices()
                    .nth(loc.column.saturating_sub(1) as usize)
                    .map_or(line.len(), |(b, _)| b);
        }
        offset += line.len();
    }
    text.len()
}

/// Text-protocol rows as the strings (or NULLs) [`Schema::from_rows`] takes.
fn text_rows(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect()
}

fn describe(e: &TranslateError) -> String {
    match e {
        TranslateError::Untranslatable { construct } => format!("cannot translate {construct}"),
        TranslateError::Parse(m) => format!("cannot parse its SHOW CREATE TABLE ({m})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_json_columns_become_json() {
        let ddl = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `doc` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`doc`)),\n  `note` varchar(10) DEFAULT 'a\\\\b é',\n  `j2` longtext COLLATE utf8mb4_bin NOT NULL CHECK (json_valid(`j2`)),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB";
        let out = mariadb_json_columns(ddl);
        assert_eq!(
            out,
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `doc` json DEFAULT NULL ,\n  `note` varchar(10) DEFAULT 'a\\\\b é',\n  `j2` json NOT NULL ,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
        );
        // A real text column with some other check is left alone.
        let other =
            "CREATE TABLE t (a longtext CHECK (a <> ''), b longtext CHECK (json_valid(`c`)))";
        assert_eq!(
            mariadb_json_columns(other),
            "CREATE TABLE t (a longtext CHECK (a <> ''), b longtext )"
        );
    }
}
