//! What the translator knows about the MySQL tables: column types (to pick
//! boolean, binary and enum handling), auto-increment columns and keys (to
//! build `ON CONFLICT` targets). The proxy fills it from `information_schema`
//! with [`Schema::COLUMNS_QUERY`] and [`Schema::KEYS_QUERY`].

use std::collections::HashMap;

/// One column as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// `COLUMN_TYPE`, e.g. `tinyint(1)`, `int(10) unsigned`, `enum('a','b')`.
    pub column_type: String,
    pub nullable: bool,
    pub auto_increment: bool,
}

/// How a column's values have to be written in PostgreSQL, derived from its
/// MySQL type the same way the DDL translation maps the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// `tinyint(1)`, which becomes `boolean`.
    Boolean,
    /// Integer types, YEAR, DECIMAL and floats: numbers on both sides.
    Number,
    /// `bit(n)`, which becomes `bigint` (numeric(20,0) for bit(64)).
    Bit,
    /// CHAR, VARCHAR, TEXT variants.
    Text,
    /// `enum(...)`, which becomes text with a CHECK; members in order.
    Enum(Vec<String>),
    /// `set(...)`, which becomes text; members in definition order.
    Set(Vec<String>),
    /// BLOB, VARBINARY, BINARY(n): bytea. `pad_to` is n for BINARY(n), which
    /// MySQL right-pads with zero bytes.
    Binary {
        pad_to: Option<usize>,
    },
    /// DATE, DATETIME, TIME.
    Temporal,
    /// TIMESTAMP, which becomes timestamptz (printed with a zone offset).
    Timestamp,
    Json,
    Other,
}

impl ColumnInfo {
    /// The column's kind, read from `column_type`.
    pub fn kind(&self) -> ColumnKind {
        kind_of_column_type(&self.column_type)
    }
}

/// Parses an `information_schema` `COLUMN_TYPE` string into a [`ColumnKind`].
pub fn kind_of_column_type(column_type: &str) -> ColumnKind {
    let lower = column_type.trim().to_ascii_lowercase();
    let base_end = lower.find(['(', ' ']).unwrap_or(lower.len());
    let base = &lower[..base_end];
    let args = paren_args(&column_type.trim()[base_end..]);
    let first_number = args.as_deref().and_then(|a| a.trim().parse::<usize>().ok());
    match base {
        "tinyint" if first_number == Some(1) && !lower.contains("unsigned") => ColumnKind::Boolean,
        "bool" | "boolean" => ColumnKind::Boolean,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
        | "numeric" | "dec" | "fixed" | "float" | "double" | "real" | "year" => ColumnKind::Number,
        "bit" => ColumnKind::Bit,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => ColumnKind::Text,
        "enum" => ColumnKind::Enum(quoted_list(args.as_deref().unwrap_or(""))),
        "set" => ColumnKind::Set(quoted_list(args.as_deref().unwrap_or(""))),
        "binary" => ColumnKind::Binary {
            pad_to: Some(first_number.unwrap_or(1)),
        },
        "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            ColumnKind::Binary { pad_to: None }
        }
        "date" | "datetime" | "time" => ColumnKind::Temporal,
        "timestamp" => ColumnKind::Timestamp,
        "json" => ColumnKind::Json,
        _ => ColumnKind::Other,
    }
}

/// The text between the first `(` and its matching `)`, quote-aware.
fn paren_args(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let body = rest.strip_prefix('(')?;
    let mut in_quote = false;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            ')' if !in_quote => return Some(body[..i].to_string()),
            _ => {}
        }
    }
    None
}

/// `'a','b''c'` → `["a", "b'c"]` (information_schema doubles quotes).
fn quoted_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut item = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    item.push('\'');
                } else {
                    break;
                }
            } else {
                item.push(c);
            }
        }
        out.push(item);
    }
    out
}

/// One table: columns in definition order and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    /// Unique keys other than the primary key, NOT NULL ones first.
    pub unique_keys: Vec<Vec<String>>,
}

impl TableInfo {
    /// A table from `(name, MySQL column type, auto_increment)` triples:
    /// the auto-increment column is the NOT NULL primary key, the others are
    /// nullable. Tests and benchmarks describe their tables this way.
    pub fn simple(name: &str, columns: &[(&str, &str, bool)]) -> Self {
        TableInfo {
            name: name.into(),
            columns: columns
                .iter()
                .map(|&(name, ty, auto_increment)| ColumnInfo {
                    name: name.into(),
                    column_type: ty.into(),
                    nullable: !auto_increment,
                    auto_increment,
                })
                .collect(),
            primary_key: columns.iter().filter(|c| c.2).map(|c| c.0.into()).collect(),
            unique_keys: vec![],
        }
    }

    pub fn auto_increment_column(&self) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.auto_increment)
    }

    /// MySQL column names are case-insensitive.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Whether the column is `tinyint(1)` (boolean in PostgreSQL).
    pub fn is_boolean(&self, column: &str) -> bool {
        self.column(column)
            .is_some_and(|c| c.kind() == ColumnKind::Boolean)
    }

    /// The key an `ON CONFLICT` clause names: the primary key, else the first
    /// unique key. `None` when the table has neither.
    pub fn conflict_key(&self) -> Option<&[String]> {
        if !self.primary_key.is_empty() {
            return Some(&self.primary_key);
        }
        self.unique_keys.first().map(Vec::as_slice)
    }
}

/// Tables by name. MySQL table names are case-sensitive on Linux, so an exact
/// match wins; a case-insensitive match is the fallback when it is unique.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    tables: HashMap<String, TableInfo>,
    /// Lower-cased name → exact names that fold to it.
    folded: HashMap<String, Vec<String>>,
}

impl Schema {
    /// Columns of the current database, one row per column:
    /// TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA.
    pub const COLUMNS_QUERY: &'static str = "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, \
         IS_NULLABLE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, ORDINAL_POSITION";

    /// Index columns of the current database:
    /// TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME.
    pub const KEYS_QUERY: &'static str = "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, \
         COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";

    pub fn insert(&mut self, t: TableInfo) {
        let folded = t.name.to_lowercase();
        let names = self.folded.entry(folded).or_default();
        if !names.contains(&t.name) {
            names.push(t.name.clone());
        }
        self.tables.insert(t.name.clone(), t);
    }

    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        if let Some(t) = self.tables.get(name) {
            return Some(t);
        }
        match self.folded.get(&name.to_lowercase())?.as_slice() {
            [only] => self.tables.get(only),
            _ => None,
        }
    }

    pub fn remove(&mut self, name: &str) {
        let exact = match self.table(name) {
            Some(t) => t.name.clone(),
            None => return,
        };
        self.tables.remove(&exact);
        let folded = exact.to_lowercase();
        if let Some(names) = self.folded.get_mut(&folded) {
            names.retain(|n| n != &exact);
            if names.is_empty() {
                self.folded.remove(&folded);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Builds the schema from the rows of [`Schema::COLUMNS_QUERY`] and
    /// [`Schema::KEYS_QUERY`] (text protocol: every cell a string or NULL).
    /// Rows too short or with NULL names are skipped.
    pub fn from_rows(columns: &[Vec<Option<String>>], keys: &[Vec<Option<String>>]) -> Schema {
        let cell = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten();
        let mut tables: Vec<TableInfo> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for row in columns {
            let (Some(table), Some(name)) = (cell(row, 0), cell(row, 1)) else {
                continue;
            };
            let column = ColumnInfo {
                name,
                column_type: cell(row, 2).unwrap_or_default(),
                nullable: cell(row, 3).is_some_and(|v| v.eq_ignore_ascii_case("YES")),
                auto_increment: cell(row, 4)
                    .is_some_and(|v| v.to_ascii_lowercase().contains("auto_increment")),
            };
            let i = *by_name.entry(table.clone()).or_insert_with(|| {
                tables.push(TableInfo {
                    name: table,
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                    unique_keys: Vec::new(),
                });
                tables.len() - 1
            });
            tables[i].columns.push(column);
        }

        // (table index, index name) → columns, in first-seen order.
        let mut indexes: Vec<(usize, String, Vec<String>)> = Vec::new();
        for row in keys {
            let (Some(table), Some(index), Some(column)) =
                (cell(row, 0), cell(row, 1), cell(row, 3))
            else {
                continue;
            };
            let unique = cell(row, 2).is_some_and(|v| v.trim() == "0");
            let Some(&t) = by_name.get(&table) else {
                continue;
            };
            if !unique {
                continue;
            }
            match indexes
                .iter_mut()
                .find(|(ti, n, _)| *ti == t && *n == index)
            {
                Some((_, _, cols)) => cols.push(column),
                None => indexes.push((t, index, vec![column])),
            }
        }
        for (t, index, cols) in indexes {
            if index == "PRIMARY" {
                tables[t].primary_key = cols;
            } else {
                tables[t].unique_keys.push(cols);
            }
        }
        for table in &mut tables {
            // InnoDB treats the first NOT NULL unique key as the row's identity
            // when there is no primary key; prefer those for ON CONFLICT.
            let not_null = |key: &Vec<String>| {
                key.iter().all(|c| {
                    table
                        .columns
                        .iter()
                        .any(|col| &col.name == c && !col.nullable)
                })
            };
            let (mut strict, loose): (Vec<_>, Vec<_>) =
                table.unique_keys.drain(..).partition(|k| not_null(k));
            strict.extend(loose);
            table.unique_keys = strict;
        }
        let mut schema = Schema::default();
        for t in tables {
            schema.insert(t);
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn sample() -> Schema {
        let columns = vec![
            vec![
                s("users"),
                s("id"),
                s("int(10) unsigned"),
                s("NO"),
                s("auto_increment"),
            ],
            vec![s("users"), s("active"), s("tinyint(1)"), s("NO"), s("")],
            vec![s("users"), s("email"), s("varchar(100)"), s("YES"), s("")],
            vec![s("users"), s("login"), s("varchar(20)"), s("NO"), s("")],
            vec![s("Log"), s("msg"), s("text"), s("YES"), None],
            vec![None, s("x"), s("int"), s("NO"), s("")],
        ];
        let keys = vec![
            vec![s("users"), s("PRIMARY"), s("0"), s("id")],
            vec![s("users"), s("email"), s("0"), s("email")],
            vec![s("users"), s("login"), s("0"), s("login")],
            vec![s("users"), s("idx"), s("1"), s("active")],
            vec![s("nope"), s("PRIMARY"), s("0"), s("id")],
        ];
        Schema::from_rows(&columns, &keys)
    }

    #[test]
    fn from_rows_reads_columns_and_keys() {
        let schema = sample();
        assert_eq!(schema.len(), 2);
        let users = schema.table("users").unwrap();
        assert_eq!(users.columns.len(), 4);
        assert_eq!(users.auto_increment_column().unwrap().name, "id");
        assert!(users.is_boolean("active"));
        assert!(users.is_boolean("ACTIVE"));
        assert!(!users.is_boolean("email"));
        assert!(users.column("email").unwrap().nullable);
        assert_eq!(users.primary_key, vec!["id"]);
        // NOT NULL unique keys come first.
        assert_eq!(users.unique_keys, vec![vec!["login"], vec!["email"]]);
        assert_eq!(users.conflict_key().unwrap(), ["id".to_string()]);
    }

    #[test]
    fn lookup_is_exact_first_then_case_insensitive() {
        let mut schema = sample();
        assert!(schema.table("log").is_some());
        schema.insert(TableInfo {
            name: "log".into(),
            columns: vec![],
            primary_key: vec![],
            unique_keys: vec![],
        });
        assert_eq!(schema.table("log").unwrap().columns.len(), 0);
        assert_eq!(schema.table("Log").unwrap().columns.len(), 1);
        // Two candidates: ambiguous.
        assert!(schema.table("LOG").is_none());
        schema.remove("log");
        assert_eq!(schema.table("LOG").unwrap().name, "Log");
        schema.remove("LOG");
        assert_eq!(schema.len(), 1);
        schema.remove("missing");
    }

    #[test]
    fn conflict_key_falls_back_to_unique_then_none() {
        let mut t = TableInfo {
            name: "t".into(),
            columns: vec![],
            primary_key: vec![],
            unique_keys: vec![vec!["a".into(), "b".into()]],
        };
        assert_eq!(
            t.conflict_key().unwrap(),
            ["a".to_string(), "b".to_string()]
        );
        t.unique_keys.clear();
        assert!(t.conflict_key().is_none());
    }

    #[test]
    fn column_kinds() {
        use ColumnKind::*;
        let k = kind_of_column_type;
        assert_eq!(k("tinyint(1)"), Boolean);
        assert_eq!(k("TINYINT(1)"), Boolean);
        assert_eq!(k("tinyint(1) unsigned"), Number);
        assert_eq!(k("tinyint(4)"), Number);
        assert_eq!(k("int unsigned"), Number);
        assert_eq!(k("decimal(10,2)"), Number);
        assert_eq!(k("year(4)"), Number);
        assert_eq!(k("bit(8)"), Bit);
        assert_eq!(k("varchar(10)"), Text);
        assert_eq!(k("longtext"), Text);
        assert_eq!(
            k("enum('a','b''c','x,y')"),
            Enum(vec!["a".into(), "b'c".into(), "x,y".into()])
        );
        assert_eq!(k("set('x','y')"), Set(vec!["x".into(), "y".into()]));
        assert_eq!(k("binary(4)"), Binary { pad_to: Some(4) });
        assert_eq!(k("varbinary(16)"), Binary { pad_to: None });
        assert_eq!(k("longblob"), Binary { pad_to: None });
        assert_eq!(k("datetime(6)"), Temporal);
        assert_eq!(k("timestamp"), Timestamp);
        assert_eq!(k("json"), Json);
        assert_eq!(k("geometry"), Other);
        assert_eq!(k(""), Other);
        assert_eq!(k("enum('unterminated"), Enum(vec![]));
    }
}
