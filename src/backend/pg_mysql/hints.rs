//! What the proxy knows of a result column's MySQL type, so PostgreSQL results
//! can carry the metadata MySQL itself would have sent for that column.
//!
//! The source is MySQL's `information_schema.COLUMNS.COLUMN_TYPE` text
//! (`int(10) unsigned`, `decimal(12,2)`, `enum('a','b')` …), kept by the
//! schema cache; PostgreSQL's own types are mapped to the same model when no
//! hint exists (see `columns::natural`).

use crate::sql::schema::Schema;

/// Looks up the MySQL definition of `table.column` (names as PostgreSQL
/// reports them). `Sync` because a session's future holds it across awaits.
pub trait ColumnHints: Sync {
    fn mysql_column(&self, table: &str, column: &str) -> Option<MysqlColumnType>;
}

/// No hints at all: every column gets the natural mapping of its PostgreSQL type.
pub struct NoHints;

impl ColumnHints for NoHints {
    fn mysql_column(&self, _: &str, _: &str) -> Option<MysqlColumnType> {
        None
    }
}

/// A MySQL column type, as far as it shapes column definitions and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlKind {
    /// Integer types carry their display width (MySQL's column length).
    Tiny(u32),
    Short(u32),
    Int24(u32),
    Long(u32),
    LongLong(u32),
    /// DECIMAL(precision, scale).
    Decimal(u32, u8),
    /// A DECIMAL whose scale is not fixed (a PostgreSQL `numeric` without
    /// typmod): each value keeps its own scale.
    DecimalAny,
    /// FLOAT / DOUBLE, with (M, D) when declared so: D fixes the printed decimals.
    Float(Option<(u32, u8)>),
    Double(Option<(u32, u8)>),
    Bit(u32),
    Year,
    Date,
    /// Fractional-second digits (0–6).
    DateTime(u8),
    Timestamp(u8),
    Time(u8),
    /// Lengths in characters.
    Char(u32),
    VarChar(u32),
    /// Lengths in bytes.
    Binary(u32),
    VarBinary(u32),
    /// TINYTEXT … LONGTEXT / TINYBLOB … LONGBLOB by their maximum byte length.
    Text(u32),
    Blob(u32),
    /// ENUM: the longest label in characters. SET: all labels joined with commas.
    Enum(u32),
    Set(u32),
    /// MySQL 8's native JSON type (MariaDB reports JSON columns as `longtext`).
    Json,
    /// MariaDB's UUID type.
    Uuid,
}

/// Key membership, as MySQL reports it in column flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyFlags {
    pub primary: bool,
    /// The only column of a unique index.
    pub unique: bool,
    /// The first column of a non-unique or multi-column index.
    pub multiple: bool,
    /// Part of any index.
    pub part: bool,
}

/// Nullability, keys, default and auto-increment: the facts behind
/// NOT_NULL, PRI_KEY, UNIQUE_KEY, MULTIPLE_KEY, PART_KEY, AUTO_INCREMENT and
/// NO_DEFAULT_VALUE. A hint may carry them; otherwise the PostgreSQL catalog
/// supplies them (see `catalog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColumnAttrs {
    pub not_null: bool,
    pub keys: KeyFlags,
    pub auto_increment: bool,
    pub has_default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MysqlColumnType {
    pub kind: MysqlKind,
    pub unsigned: bool,
    pub zerofill: bool,
    /// The column's collation is a `_bin` one (MySQL then sets BINARY_FLAG on
    /// text columns; MariaDB's JSON columns are `utf8mb4_bin`).
    pub binary_collation: bool,
    pub attrs: Option<ColumnAttrs>,
}

impl MysqlColumnType {
    pub fn new(kind: MysqlKind) -> Self {
        Self {
            kind,
            unsigned: false,
            zerofill: false,
            binary_collation: false,
            attrs: None,
        }
    }

    /// Parses an `information_schema` COLUMN_TYPE. `None` for types this layer
    /// does not model (spatial types, INET6 …): those columns get the natural
    /// mapping of their PostgreSQL type.
    pub fn parse(column_type: &str) -> Option<Self> {
        let lower = column_type.trim().to_ascii_lowercase();
        let (base, args, rest) = match lower.find('(') {
            Some(open) => {
                let close = matching_paren(&lower, open)?;
                (
                    lower[..open].trim(),
                    Some(&column_type.trim()[open + 1..close]),
                    &lower[close + 1..],
                )
            }
            None => {
                let end = lower.find(' ').unwrap_or(lower.len());
                (&lower[..end], None, &lower[end..])
            }
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let zerofill = words.contains(&"zerofill");
        let unsigned = zerofill || words.contains(&"unsigned");
        let nums = || -> Vec<u32> {
            args.map(|a| a.split(',').filter_map(|n| n.trim().parse().ok()).collect())
                .unwrap_or_default()
        };
        let first = |default: u32| nums().first().copied().unwrap_or(default);
        let int_width =
            |signed: u32, unsigned_w: u32| first(if unsigned { unsigned_w } else { signed });
        let pair = || {
            let n = nums();
            match (n.first(), n.get(1)) {
                (Some(&m), Some(&d)) => Some((m, d.min(30) as u8)),
                _ => None,
            }
        };
        let fsp = || first(0).min(6) as u8;
        use MysqlKind::*;
        let kind = match base {
            "tinyint" => Tiny(int_width(4, 3)),
            "bool" | "boolean" => Tiny(1),
            "smallint" => Short(int_width(6, 5)),
            "mediumint" => Int24(int_width(9, 8)),
            "int" | "integer" => Long(int_width(11, 10)),
            "bigint" => LongLong(20),
            "decimal" | "numeric" | "dec" | "fixed" => {
                let n = nums();
                let p = n.first().copied().unwrap_or(10);
                let s = n.get(1).copied().unwrap_or(0).min(38) as u8;
                Decimal(p, s)
            }
            "float" => Float(pair()),
            "double" | "real" | "double precision" => Double(pair()),
            "bit" => Bit(first(1)),
            "year" => Year,
            "date" => Date,
            "datetime" => DateTime(fsp()),
            "timestamp" => Timestamp(fsp()),
            "time" => Time(fsp()),
            "char" => Char(first(1)),
            "varchar" => VarChar(first(255)),
            "binary" => Binary(first(1)),
            "varbinary" => VarBinary(first(255)),
            "tinytext" => Text(255),
            "text" => Text(65_535),
            "mediumtext" => Text(16_777_215),
            "longtext" => Text(u32::MAX),
            "tinyblob" => Blob(255),
            "blob" => Blob(65_535),
            "mediumblob" => Blob(16_777_215),
            "longblob" => Blob(u32::MAX),
            "enum" => Enum(
                labels(args?)
                    .iter()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(0) as u32,
            ),
            "set" => {
                let l = labels(args?);
                let total: usize = l.iter().map(|l| l.chars().count()).sum();
                Set((total + l.len().saturating_sub(1)) as u32)
            }
            "json" => Json,
            "uuid" => Uuid,
            _ => return None,
        };
        Some(Self {
            kind,
            unsigned,
            zerofill,
            binary_collation: false,
            attrs: None,
        })
    }

    /// Records the column's collation (`utf8mb4_bin` sets BINARY_FLAG).
    pub fn with_collation(mut self, collation: Option<&str>) -> Self {
        self.binary_collation = collation.is_some_and(|c| c.ends_with("_bin"));
        self
    }

    pub fn with_attrs(mut self, attrs: ColumnAttrs) -> Self {
        self.attrs = Some(attrs);
        self
    }
}

fn matching_paren(s: &str, open: usize) -> Option<usize> {
    // Labels may contain parentheses; skip quoted text ('' is an escaped quote).
    let mut quoted = false;
    for (i, c) in s.char_indices().skip_while(|&(i, _)| i <= open) {
        match c {
            '\'' => quoted = !quoted,
            ')' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `'a','b''c'` → ["a", "b'c"].
fn labels(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = args.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('\'', false) => quoted = true,
            ('\'', true) if chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            ('\'', true) => {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            }
            ('\\', true) => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (c, true) => cur.push(c),
            _ => {}
        }
    }
    out
}

/// The schema cache as a hint source: column types only. Keys, nullability
/// and defaults are left to the PostgreSQL catalog, which knows every index
/// the migrated table has (the schema cache keeps no plain indexes).
impl ColumnHints for Schema {
    fn mysql_column(&self, table: &str, column: &str) -> Option<MysqlColumnType> {
        let t = self.table(table)?;
        let c = t
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))?;
        MysqlColumnType::parse(&c.column_type)
    }
}

#[cfg(test)]
mod tests {
    use super::MysqlKind::*;
    use super::*;

    fn kind(s: &str) -> (MysqlKind, bool, bool) {
        let t = MysqlColumnType::parse(s).unwrap_or_else(|| panic!("{s}"));
        (t.kind, t.unsigned, t.zerofill)
    }

    #[test]
    fn parses_information_schema_column_types() {
        assert_eq!(kind("tinyint(1)"), (Tiny(1), false, false));
        assert_eq!(kind("tinyint"), (Tiny(4), false, false));
        assert_eq!(kind("int(10) unsigned"), (Long(10), true, false));
        assert_eq!(kind("int unsigned"), (Long(10), true, false));
        assert_eq!(kind("int(5) unsigned zerofill"), (Long(5), true, true));
        assert_eq!(kind("bigint(20) unsigned"), (LongLong(20), true, false));
        assert_eq!(kind("decimal(12,2)"), (Decimal(12, 2), false, false));
        assert_eq!(
            kind("DECIMAL(10,0) UNSIGNED"),
            (Decimal(10, 0), true, false)
        );
        assert_eq!(kind("float"), (Float(None), false, false));
        assert_eq!(kind("double(10,2)"), (Double(Some((10, 2))), false, false));
        assert_eq!(kind("datetime(6)"), (DateTime(6), false, false));
        assert_eq!(kind("timestamp"), (Timestamp(0), false, false));
        assert_eq!(kind("time(2)"), (Time(2), false, false));
        assert_eq!(kind("year(4)"), (Year, false, false));
        assert_eq!(kind("varchar(50)"), (VarChar(50), false, false));
        assert_eq!(kind("varbinary(16)"), (VarBinary(16), false, false));
        assert_eq!(kind("blob"), (Blob(65_535), false, false));
        assert_eq!(kind("longtext"), (Text(u32::MAX), false, false));
        assert_eq!(kind("bit(8)"), (Bit(8), false, false));
        assert_eq!(kind("json"), (Json, false, false));
        assert_eq!(kind("uuid"), (Uuid, false, false));
    }

    #[test]
    fn enum_and_set_lengths_count_characters() {
        assert_eq!(kind("enum('a','bb')").0, Enum(2));
        assert_eq!(kind("enum('it''s','(x)','é')").0, Enum(4));
        assert_eq!(kind("set('x','yy')").0, Set(4));
    }

    #[test]
    fn unknown_or_broken_types_are_none() {
        for s in ["geometry", "inet6", "", "decimal(12,2", "enum("] {
            assert!(MysqlColumnType::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn collation_sets_binary() {
        let t = MysqlColumnType::parse("longtext")
            .unwrap()
            .with_collation(Some("utf8mb4_bin"));
        assert!(t.binary_collation);
    }
}
