//! Risks found in this schema: a pure function of what information_schema
//! said (plus what the translator refused), so each rule is unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Rows (estimated) or bytes above which a table is called large.
pub const LARGE_ROWS: u64 = 10_000_000;
pub const LARGE_BYTES: u64 = 10 << 30;

#[derive(Debug, Clone, Default)]
pub struct TableFacts {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ColumnFacts {
    pub table: String,
    pub name: String,
    /// information_schema DATA_TYPE (lower case): int, varchar, float, enum …
    pub data_type: String,
    pub default: String,
    pub extra: String,
    pub collation: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct IndexColumn {
    pub table: String,
    pub index: String,
    pub column: String,
    pub unique: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SchemaFacts {
    pub tables: Vec<TableFacts>,
    pub columns: Vec<ColumnFacts>,
    pub indexes: Vec<IndexColumn>,
    /// `table.column` holding zero dates in the data (checked on tables up
    /// to a size; see `plan::facts`).
    pub zero_date_data: Vec<String>,
    /// `table: reason` the translator refused.
    pub untranslatable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Risk {
    /// no_primary_key, ci_unique_key, on_update_current_timestamp,
    /// default_current_timestamp, float_column, zero_dates, enum_ordering, large_table, untranslatable.
    pub kind: &'static str,
    pub table: String,
    pub detail: String,
    pub mitigation: String,
}

pub fn find(s: &SchemaFacts) -> Vec<Risk> {
    let mut out = BTreeSet::new();
    let mut risk = |kind, table: &str, detail: String, mitigation: &str| {
        out.insert(Risk {
            kind,
            table: table.to_string(),
            detail,
            mitigation: mitigation.to_string(),
        });
    };
    let col = |t: &str, c: &str| s.columns.iter().find(|x| x.table == t && x.name == c);
    // index -> (unique, columns)
    let mut indexes: BTreeMap<(&str, &str), (bool, Vec<&str>)> = BTreeMap::new();
    for i in &s.indexes {
        let e = indexes
            .entry((&i.table, &i.index))
            .or_insert((i.unique, Vec::new()));
        e.1.push(&i.column);
    }
    for t in &s.tables {
        let keyed = indexes.iter().any(|((tb, name), (unique, cols))| {
            *tb == t.name
                && (*name == "PRIMARY"
                    || (*unique && cols.iter().all(|c| col(tb, c).is_some_and(|c| !c.nullable))))
        });
        if !keyed {
            risk("no_primary_key", &t.name,
                format!("`{}` has no primary key and no NOT NULL unique key", t.name),
                "backfill skips it unless --allow-no-pk (one transaction, no resume); mirrored UPDATE/DELETE cannot be matched row for row; add a key before dual_write");
        }
        if t.rows > LARGE_ROWS || t.bytes > LARGE_BYTES {
            risk("large_table", &t.name,
                format!("`{}` holds about {} rows, {:.1} GiB", t.name, t.rows, t.bytes as f64 / (1u64 << 30) as f64),
                "backfill it on its own (--tables) with --rate during quiet hours; verify it with a sample first");
        }
    }
    for ((table, index), (unique, cols)) in &indexes {
        if !unique {
            continue;
        }
        let ci: Vec<&str> = cols
            .iter()
            .filter(|c| col(table, c).is_some_and(|c| c.collation.ends_with("_ci")))
            .copied()
            .collect();
        if !ci.is_empty() {
            risk("ci_unique_key", table,
                format!("unique key `{index}` on `{table}` covers case-insensitive column(s) {}", ci.join(", ")),
                "MySQL treats 'A' and 'a' (and trailing spaces) as duplicates, PostgreSQL does not: use a citext or lower() unique index on the new side, or check that the data has no such near-duplicates");
        }
    }
    for c in &s.columns {
        let at = format!("{}.{}", c.table, c.name);
        let extra = c.extra.to_ascii_lowercase();
        if extra.contains("on update current_timestamp") {
            risk(
                "on_update_current_timestamp",
                &c.table,
                format!("`{at}` is set by ON UPDATE CURRENT_TIMESTAMP"),
                "each backend evaluates it with its own clock (a BEFORE UPDATE trigger on PostgreSQL): the copies differ by the time between the two writes; write the value explicitly for identical rows",
            );
        } else if c
            .default
            .to_ascii_lowercase()
            .starts_with("current_timestamp")
        {
            risk(
                "default_current_timestamp",
                &c.table,
                format!("`{at}` defaults to CURRENT_TIMESTAMP"),
                "each backend fills it with its own clock when a mirrored INSERT omits it: write the value explicitly for identical rows",
            );
        }
        match c.data_type.as_str() {
            "float" => risk("float_column", &c.table,
                format!("`{at}` is FLOAT (single precision)"),
                "compare with a tolerance (verify and shadow reads do); consider DOUBLE/real → double precision"),
            "enum" => risk("enum_ordering", &c.table,
                format!("`{at}` is an ENUM"),
                "MySQL orders ENUMs by declaration index, the new side by text: ORDER BY on it changes order; check queries that sort by it"),
            _ => {}
        }
        if matches!(c.data_type.as_str(), "date" | "datetime" | "timestamp")
            && c.default.starts_with("0000-00-00")
        {
            risk("zero_dates", &c.table,
                format!("`{at}` defaults to a zero date"),
                "PostgreSQL has no zero date: the translator maps it to NULL or rejects it; change the default and the rows first");
        }
    }
    for at in &s.zero_date_data {
        let table = at.split('.').next().unwrap_or(at);
        risk("zero_dates", table, format!("`{at}` holds zero dates"),
            "PostgreSQL has no zero date: update those rows (NULL or a real date) before the backfill");
    }
    for u in &s.untranslatable {
        let table = u.split(':').next().unwrap_or(u).trim();
        risk("untranslatable", table, u.clone(),
            "tandem schema cannot create it: create it on the new side by hand (or change the construct), then backfill");
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(table: &str, name: &str, ty: &str) -> ColumnFacts {
        ColumnFacts {
            table: table.into(),
            name: name.into(),
            data_type: ty.into(),
            ..Default::default()
        }
    }

    fn index(table: &str, index: &str, column: &str, unique: bool) -> IndexColumn {
        IndexColumn {
            table: table.into(),
            index: index.into(),
            column: column.into(),
            unique,
        }
    }

    fn kinds(s: &SchemaFacts) -> Vec<(&'static str, String)> {
        find(s).into_iter().map(|r| (r.kind, r.table)).collect()
    }

    fn table(name: &str) -> TableFacts {
        TableFacts {
            name: name.into(),
            rows: 10,
            bytes: 16384,
        }
    }

    #[test]
    fn a_clean_schema_has_no_risks() {
        let s = SchemaFacts {
            tables: vec![table("a")],
            columns: vec![
                column("a", "id", "int"),
                column("a", "born", "date"),
                column("a", "r", "double"),
            ],
            indexes: vec![index("a", "PRIMARY", "id", true)],
            ..Default::default()
        };
        assert_eq!(kinds(&s), vec![]);
    }

    #[test]
    fn each_rule_fires_on_its_construct() {
        let mut ci = column("u", "email", "varchar");
        ci.collation = "utf8mb4_general_ci".into();
        let mut bin = column("u", "code", "varchar");
        bin.collation = "utf8mb4_bin".into();
        let mut upd = column("e", "at", "timestamp");
        upd.extra = "on update current_timestamp()".into();
        let mut zero = column("e", "d", "datetime");
        zero.default = "0000-00-00 00:00:00".into();
        let mut dflt = column("e", "created", "timestamp");
        dflt.default = "current_timestamp()".into();
        let mut nn = column("k", "x", "int");
        nn.nullable = false;
        let s = SchemaFacts {
            tables: vec![
                table("n"),
                table("u"),
                table("e"),
                table("k"),
                TableFacts {
                    name: "big".into(),
                    rows: LARGE_ROWS + 1,
                    bytes: 0,
                },
            ],
            columns: vec![
                column("n", "a", "int"),
                dflt,
                ci,
                bin,
                upd,
                zero,
                nn,
                column("e", "f", "float"),
                column("e", "s", "enum"),
            ],
            indexes: vec![
                index("u", "PRIMARY", "id", true),
                index("u", "email", "email", true),
                index("u", "code", "code", true),
                index("u", "by_email", "email", false),
                index("e", "PRIMARY", "id", true),
                index("big", "PRIMARY", "id", true),
                // A NOT NULL unique key counts as a key.
                index("k", "ux", "x", true),
            ],
            zero_date_data: vec!["e.d2".into()],
            untranslatable: vec!["s: INVISIBLE column".into()],
        };
        assert_eq!(
            kinds(&s),
            vec![
                ("ci_unique_key", "u".into()),
                ("default_current_timestamp", "e".into()),
                ("enum_ordering", "e".into()),
                ("float_column", "e".into()),
                ("large_table", "big".into()),
                ("no_primary_key", "n".into()),
                ("on_update_current_timestamp", "e".into()),
                ("untranslatable", "s".into()),
                ("zero_dates", "e".into()),
                ("zero_dates", "e".into()),
            ]
        );
    }
}
