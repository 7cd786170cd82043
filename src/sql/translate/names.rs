//! Identifiers: MySQL backticks become double quotes, and names MySQL accepts
//! bare but PostgreSQL reserves (`user`, `end`, `offset`…) get quoted, in
//! lower case because that is what PostgreSQL folds the bare name to.

use sqlparser::ast::{Expr, Ident, ObjectName, ObjectNamePart};

/// PostgreSQL 15 keywords that cannot be bare column or table names (the
/// "reserved" and "reserved (can be function or type)" columns of the
/// keyword appendix). `SELECT user FROM t` would otherwise read the session
/// user instead of the column.
const PG_RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

pub(super) fn is_pg_reserved(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    PG_RESERVED.binary_search(&lower.as_str()).is_ok()
}

/// Backtick-quoted → double-quoted, case kept.
pub(super) fn requote(ident: &mut Ident) {
    if ident.quote_style == Some('`') {
        ident.quote_style = Some('"');
    }
}

/// Whether PostgreSQL reads `word` bare as the same identifier. MySQL also
/// allows bare names that start with a digit or `$` (`$1` is a column
/// there, a parameter in PostgreSQL).
fn is_pg_bare(word: &str) -> bool {
    !word.starts_with(|c: char| c.is_ascii_digit() || c == '$') && !is_pg_reserved(word)
}

/// A bare name PostgreSQL reserves or reads differently is quoted as the
/// lower-case name it would have been folded to; other names are left as
/// written.
pub(super) fn protect(ident: &mut Ident) {
    requote(ident);
    if ident.quote_style.is_none() && !is_pg_bare(&ident.value) {
        ident.value = ident.value.to_ascii_lowercase();
        ident.quote_style = Some('"');
    }
}

pub(super) fn protect_object_name(name: &mut ObjectName) {
    for part in &mut name.0 {
        if let ObjectNamePart::Identifier(ident) = part {
            protect(ident);
        }
    }
}

/// An identifier for a name read from the MySQL catalog (or built by the
/// translator). Plain lower-case names stay bare so they match tables created
/// without quotes; anything else is quoted with its exact case, which matches
/// tables created with backticks (what dumps and ORMs emit).
pub(super) fn schema_ident(name: &str) -> Ident {
    let simple = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if simple && !is_pg_reserved(name) {
        Ident::new(name)
    } else {
        Ident::with_quote('"', name)
    }
}

/// The last part of a possibly qualified name (`db.t` → `t`).
pub(super) fn last_ident(name: &ObjectName) -> Option<&Ident> {
    match name.0.last()? {
        ObjectNamePart::Identifier(ident) => Some(ident),
        ObjectNamePart::Function(_) => None,
    }
}

/// `qualifier.column` as an expression.
pub(super) fn qualified(qualifier: Ident, column: Ident) -> Expr {
    Expr::CompoundIdentifier(vec![qualifier, column])
}

/// PostgreSQL index names live in the schema, MySQL's in the table: every
/// translated index is named `<table>_<index>` (the index part in lower
/// case, as MySQL index names are case-insensitive) so two tables' `idx_name`
/// cannot collide and `DROP INDEX i ON t` finds what `KEY i` created.
/// (PostgreSQL truncates names past 63 bytes, the same way on create and
/// drop; two long names that share a 63-byte prefix would still collide.)
pub(super) fn index_ident(table: &Ident, index: &str) -> Ident {
    Ident::with_quote(
        '"',
        format!("{}_{}", stored_name(table), index.to_lowercase()),
    )
}

/// The name PostgreSQL stores for an identifier: bare names fold to lower
/// case (so the prefix matches PostgreSQL's own `<table>_pkey`).
pub(super) fn stored_name(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_list_is_sorted_for_binary_search() {
        let mut sorted = PG_RESERVED.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, PG_RESERVED);
    }

    #[test]
    fn protect_quotes_reserved_and_backticks() {
        let mut user = Ident::new("User");
        protect(&mut user);
        assert_eq!(user.to_string(), "\"user\"");
        let mut plain = Ident::new("Name");
        protect(&mut plain);
        assert_eq!(plain.to_string(), "Name");
        let mut ticked = Ident::with_quote('`', "My\"Col");
        protect(&mut ticked);
        assert_eq!(ticked.to_string(), "\"My\"\"Col\"");
    }

    #[test]
    fn schema_idents() {
        assert_eq!(schema_ident("id").to_string(), "id");
        assert_eq!(schema_ident("userId").to_string(), "\"userId\"");
        assert_eq!(schema_ident("order").to_string(), "\"order\"");
        assert_eq!(schema_ident("1x").to_string(), "\"1x\"");
        // Bare table names fold like PostgreSQL's; index names are
        // case-insensitive in MySQL.
        assert_eq!(
            index_ident(&Ident::new("T"), "Idx").to_string(),
            "\"t_idx\""
        );
        assert_eq!(
            index_ident(&Ident::with_quote('"', "T"), "i").to_string(),
            "\"T_i\""
        );
    }
}
