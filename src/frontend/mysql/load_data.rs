//! LOAD DATA in `dual_write`. The statement mirror replays statement text on
//! the new backend, and a LOAD DATA's rows are not in its text: they are in a
//! file the client streamed to the old backend (LOCAL) or one on the old
//! server's disk. Until the change stream carries them, each such load is
//! reported — never silently missing: a drift event naming the table and the
//! row count from the old backend's OK packet, and a counter on `/metrics`.

use std::sync::atomic::Ordering;

use crate::dualwrite::drift::DriftKind;
use crate::dualwrite::mirror::Mirror;
use crate::wire::packets::OkInfo;

/// A LOAD DATA / LOAD XML statement, as far as the report needs it.
#[derive(Debug, PartialEq, Eq)]
pub struct LoadData {
    /// The file came from the client (`LOCAL`).
    pub local: bool,
    /// The target table as written (`db.t` when qualified).
    pub table: String,
}

/// Recognizes `LOAD {DATA|XML} [LOW_PRIORITY|CONCURRENT] [LOCAL] INFILE 'f'
/// [REPLACE|IGNORE] INTO TABLE name`. Anything else is `None` (cheaply: the
/// first word decides for every other statement).
pub fn parse(sql: &str) -> Option<LoadData> {
    let mut t = Tokens { rest: sql };
    t.keyword("LOAD")?;
    t.keyword("DATA").or_else(|| t.keyword("XML"))?;
    let _ = t
        .keyword("LOW_PRIORITY")
        .or_else(|| t.keyword("CONCURRENT"));
    let local = t.keyword("LOCAL").is_some();
    t.keyword("INFILE")?;
    t.string()?;
    let _ = t.keyword("REPLACE").or_else(|| t.keyword("IGNORE"));
    t.keyword("INTO")?;
    t.keyword("TABLE")?;
    let mut table = t.name()?;
    if t.punct('.') {
        table = format!("{table}.{}", t.name()?);
    }
    Some(LoadData { local, table })
}

/// Records a load the primary acknowledged but the mirror cannot carry.
pub fn report(mirror: &Mirror, session: u64, sql: &str, load: &LoadData, ok: OkInfo) {
    mirror
        .stats
        .load_data_rows
        .fetch_add(ok.affected_rows, Ordering::Relaxed);
    let source = if load.local {
        "streamed by the client to the old backend"
    } else {
        "read from the old server's disk"
    };
    mirror.record(
        session,
        DriftKind::LoadData,
        sql,
        None,
        format!(
            "LOAD DATA into table {}: {} rows ({} warnings) are on the old backend only; their file was {source} \
             and the statement mirror cannot replay it (run `tandem verify --repair` for the table)",
            load.table, ok.affected_rows, ok.warnings
        ),
    );
}

/// Just enough of a MySQL tokenizer to walk the head of a LOAD statement:
/// whitespace and comments are skipped, strings and quoted names read whole.
struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn skip_space(&mut self) {
        loop {
            let s = self.rest.trim_start();
            if let Some(body) = s.strip_prefix("/*") {
                self.rest = body.find("*/").map_or("", |i| &body[i + 2..]);
            } else if s.starts_with('#') || s.starts_with("-- ") {
                self.rest = s.find('\n').map_or("", |i| &s[i + 1..]);
            } else {
                self.rest = s;
                return;
            }
        }
    }

    fn word(&mut self) -> Option<&'a str> {
        self.skip_space();
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(self.rest.len());
        let (w, rest) = self.rest.split_at(end);
        self.rest = rest;
        (!w.is_empty()).then_some(w)
    }

    fn keyword(&mut self, kw: &str) -> Option<()> {
        let before = self.rest;
        match self.word() {
            Some(w) if w.eq_ignore_ascii_case(kw) => Some(()),
            _ => {
                self.rest = before;
                None
            }
        }
    }

    fn punct(&mut self, c: char) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A quoted string or name: returns its text without the quotes (escapes
    /// are kept as written; only the end matters here).
    fn quoted(&mut self, quote: char) -> Option<&'a str> {
        let body = self.rest.strip_prefix(quote)?;
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' && quote != '`' {
                chars.next();
            } else if c == quote {
                if body[i + 1..].starts_with(quote) {
                    chars.next();
                } else {
                    self.rest = &body[i + 1..];
                    return Some(&body[..i]);
                }
            }
        }
        None
    }

    fn string(&mut self) -> Option<&'a str> {
        self.skip_space();
        match self.rest.chars().next()? {
            q @ ('\'' | '"') => self.quoted(q),
            _ => None,
        }
    }

    fn name(&mut self) -> Option<String> {
        self.skip_space();
        if self.rest.starts_with('`') {
            return self.quoted('`').map(|n| n.replace("``", "`"));
        }
        self.word().map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(local: bool, table: &str) -> Option<LoadData> {
        Some(LoadData {
            local,
            table: table.into(),
        })
    }

    #[test]
    fn recognizes_load_statements() {
        assert_eq!(
            parse("LOAD DATA LOCAL INFILE '/tmp/a b.csv' INTO TABLE t FIELDS TERMINATED BY ','"),
            load(true, "t")
        );
        assert_eq!(
            parse("load data low_priority local infile \"x\\\"y\" replace into table `my``t`"),
            load(true, "my`t")
        );
        assert_eq!(
            parse("/* etl */ LOAD DATA INFILE 'it''s' IGNORE INTO TABLE shop.orders"),
            load(false, "shop.orders")
        );
        assert_eq!(
            parse("LOAD XML LOCAL INFILE 'p.xml' INTO TABLE `db`.`p` ROWS IDENTIFIED BY '<p>'"),
            load(true, "db.p")
        );
    }

    #[test]
    fn other_statements_are_not_loads() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "LOAD INDEX INTO CACHE t",
            "LOAD DATA LOCAL INFILE 'unterminated INTO TABLE t",
            "LOAD DATA LOCAL INFILE 'f' INTO t",
            "",
            "LOAD",
        ] {
            assert_eq!(parse(sql), None, "{sql}");
        }
    }
}
