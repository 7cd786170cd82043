//! MySQL/MariaDB values (`mysql_async`, text or binary protocol) into the
//! normalized model. The text protocol sends every value as bytes, so the
//! column's type decides how to read them.

use mysql_async::consts::{ColumnFlags, ColumnType};

use super::{temporal, Value};

/// What a MySQL column holds, as far as normalization cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlKind {
    /// TINYINT(1) / BOOL: becomes boolean on PostgreSQL.
    Bool,
    Int,
    Decimal,
    /// FLOAT: single precision. Its text form has only 6 significant digits,
    /// so readers that need the exact value select it `CAST(… AS DOUBLE)`.
    Float,
    Double,
    Bit,
    Year,
    Date,
    Datetime,
    Timestamp,
    Time,
    Text,
    Binary,
    Enum,
    Set,
    Json,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MysqlType {
    pub kind: MysqlKind,
    pub unsigned: bool,
}

impl MysqlType {
    pub const fn new(kind: MysqlKind) -> Self {
        MysqlType {
            kind,
            unsigned: false,
        }
    }

    /// From `information_schema.COLUMNS.COLUMN_TYPE` (`int(10) unsigned`,
    /// `tinyint(1)`, `varbinary(16)`, `enum('a','b')` …).
    pub fn from_column_type(column_type: &str) -> Self {
        let lower = column_type.trim().to_ascii_lowercase();
        let base_end = lower.find(['(', ' ']).unwrap_or(lower.len());
        let base = &lower[..base_end];
        let width = lower[base_end..]
            .strip_prefix('(')
            .and_then(|r| r.split([')', ',']).next())
            .and_then(|w| w.trim().parse::<u32>().ok());
        let unsigned = lower.contains(" unsigned");
        use MysqlKind::*;
        let kind = match base {
            "tinyint" if width == Some(1) && !unsigned => Bool,
            "bool" | "boolean" => Bool,
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Int,
            "decimal" | "numeric" | "dec" | "fixed" => Decimal,
            "float" => Float,
            "double" | "real" | "double precision" => Double,
            "bit" => Bit,
            "year" => Year,
            "date" => Date,
            "datetime" => Datetime,
            "timestamp" => Timestamp,
            "time" => Time,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Text,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Binary,
            "enum" => Enum,
            "set" => Set,
            "json" => Json,
            _ => Other,
        };
        MysqlType { kind, unsigned }
    }

    /// From result-set metadata (what a proxy sees without information_schema).
    pub fn from_column(col: &mysql_async::Column) -> Self {
        let flags = col.flags();
        let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
        let binary = col.character_set() == 63;
        use ColumnType::*;
        use MysqlKind::*;
        let kind = match col.column_type() {
            MYSQL_TYPE_TINY if col.column_length() == 1 && !unsigned => Bool,
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG => Int,
            MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Decimal,
            MYSQL_TYPE_FLOAT => Float,
            MYSQL_TYPE_DOUBLE => Double,
            MYSQL_TYPE_BIT => Bit,
            MYSQL_TYPE_YEAR => Year,
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Date,
            MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => Datetime,
            MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => Timestamp,
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Time,
            MYSQL_TYPE_JSON => Json,
            _ if flags.contains(ColumnFlags::ENUM_FLAG) => Enum,
            _ if flags.contains(ColumnFlags::SET_FLAG) => Set,
            MYSQL_TYPE_STRING
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB => {
                if binary {
                    Binary
                } else {
                    Text
                }
            }
            _ => Other,
        };
        MysqlType { kind, unsigned }
    }
}

/// Converts one value. Never fails: bytes the type cannot explain are kept
/// as text (or binary), so they show up as a difference instead of an error.
pub fn from_mysql(v: mysql_async::Value, ty: MysqlType) -> Value {
    use mysql_async::Value as M;
    match v {
        M::NULL => Value::Null,
        M::Bytes(bytes) => from_text_bytes(bytes, ty),
        M::Int(i) => int_value(i as i128, ty),
        M::UInt(u) => int_value(u as i128, ty),
        M::Float(f) => Value::float(f as f64),
        M::Double(f) => Value::float(f),
        M::Date(y, m, d, h, mi, s, us) => {
            let Some(day) = ((1..=12).contains(&m) && d >= 1)
                .then(|| temporal::days_from_civil(y as i64, m as u32, d as u32))
            else {
                return Value::Text(format!(
                    "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
                ));
            };
            if ty.kind == MysqlKind::Date {
                Value::Date(day as i32)
            } else {
                let secs = h as i64 * 3600 + mi as i64 * 60 + s as i64;
                Value::Timestamp(
                    day * temporal::MICROS_PER_DAY + secs * temporal::MICROS_PER_SEC + us as i64,
                )
            }
        }
        M::Time(neg, d, h, mi, s, us) => {
            let secs = d as i64 * 86_400 + h as i64 * 3600 + mi as i64 * 60 + s as i64;
            let micros = secs * temporal::MICROS_PER_SEC + us as i64;
            Value::Time(if neg { -micros } else { micros })
        }
    }
}

fn int_value(i: i128, ty: MysqlType) -> Value {
    match (ty.kind, i) {
        (MysqlKind::Bool, 0) => Value::Bool(false),
        (MysqlKind::Bool, 1) => Value::Bool(true),
        _ => Value::Int(i),
    }
}

/// Text-protocol bytes of a column of type `ty`.
pub fn from_text_bytes(bytes: Vec<u8>, ty: MysqlType) -> Value {
    use MysqlKind::*;
    let text = || std::str::from_utf8(&bytes).ok();
    let parsed = match ty.kind {
        Bool | Int | Year => text()
            .and_then(|t| t.parse::<i128>().ok())
            .map(|i| int_value(i, ty)),
        Decimal => text().and_then(Value::parse_decimal),
        Float | Double => text().and_then(|t| t.parse::<f64>().ok()).map(Value::float),
        Bit => (bytes.len() <= 16)
            .then(|| Value::Int(bytes.iter().fold(0i128, |acc, &b| (acc << 8) | b as i128))),
        Date => text().and_then(temporal::parse_date).map(Value::Date),
        Datetime | Timestamp => text()
            .and_then(temporal::parse_datetime)
            .map(Value::Timestamp),
        Time => text().and_then(temporal::parse_time).map(Value::Time),
        Json => text().map(Value::json),
        Binary => return Value::Bytes(bytes),
        Text | Enum | Set | Other => None,
    };
    parsed.unwrap_or_else(|| Value::text_or_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::Value as M;

    fn t(s: &str, column_type: &str) -> Value {
        from_mysql(
            M::Bytes(s.as_bytes().to_vec()),
            MysqlType::from_column_type(column_type),
        )
    }

    #[test]
    fn column_types() {
        assert_eq!(
            MysqlType::from_column_type("tinyint(1)").kind,
            MysqlKind::Bool
        );
        assert_eq!(
            MysqlType::from_column_type("tinyint(1) unsigned").kind,
            MysqlKind::Int
        );
        let u = MysqlType::from_column_type("bigint(20) unsigned");
        assert!(u.unsigned && u.kind == MysqlKind::Int);
        assert_eq!(
            MysqlType::from_column_type("decimal(65,30)").kind,
            MysqlKind::Decimal
        );
        assert_eq!(
            MysqlType::from_column_type("enum('a','b')").kind,
            MysqlKind::Enum
        );
        assert_eq!(
            MysqlType::from_column_type("varbinary(16)").kind,
            MysqlKind::Binary
        );
        assert_eq!(
            MysqlType::from_column_type("datetime(6)").kind,
            MysqlKind::Datetime
        );
        assert_eq!(
            MysqlType::from_column_type("geometry").kind,
            MysqlKind::Other
        );
    }

    #[test]
    fn text_protocol_values() {
        assert_eq!(
            t("18446744073709551615", "bigint(20) unsigned"),
            Value::Int(u64::MAX as i128)
        );
        assert_eq!(t("1", "tinyint(1)"), Value::Bool(true));
        assert_eq!(t("5", "tinyint(1)"), Value::Int(5));
        assert_eq!(
            t("12.500", "decimal(10,3)"),
            Value::parse_decimal("12.5").unwrap()
        );
        assert_eq!(
            t("2024-01-02 03:04:05.000000", "datetime(6)"),
            t("2024-01-02 03:04:05", "timestamp")
        );
        assert!(matches!(t("0000-00-00", "date"), Value::Text(_)));
        assert_eq!(t("-01:00:00", "time"), Value::Time(-3_600_000_000));
        assert_eq!(
            from_mysql(
                M::Bytes(vec![2, 170]),
                MysqlType::from_column_type("bit(10)")
            ),
            Value::Int(682)
        );
        assert_eq!(
            t(r#"{"b": 1, "a": 2}"#, "json"),
            Value::json(r#"{"a":2,"b":1}"#)
        );
        assert_eq!(
            from_mysql(M::Bytes(vec![0, 255]), MysqlType::from_column_type("blob")),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(t("x,y", "set('x','y')"), Value::Text("x,y".into()));
        assert_eq!(
            from_mysql(M::NULL, MysqlType::from_column_type("int")),
            Value::Null
        );
    }

    #[test]
    fn binary_protocol_values() {
        let dt = MysqlType::from_column_type("datetime(6)");
        assert_eq!(
            from_mysql(M::Date(2024, 1, 2, 3, 4, 5, 6), dt),
            t("2024-01-02 03:04:05.000006", "datetime(6)")
        );
        assert_eq!(
            from_mysql(
                M::Date(2024, 1, 2, 0, 0, 0, 0),
                MysqlType::from_column_type("date")
            ),
            t("2024-01-02", "date")
        );
        assert!(matches!(
            from_mysql(M::Date(0, 0, 0, 0, 0, 0, 0), dt),
            Value::Text(_)
        ));
        assert_eq!(
            from_mysql(
                M::Time(true, 1, 2, 0, 0, 0),
                MysqlType::from_column_type("time")
            ),
            Value::Time(-26 * 3_600_000_000)
        );
        assert_eq!(
            from_mysql(
                M::UInt(u64::MAX),
                MysqlType::from_column_type("bigint unsigned")
            ),
            Value::Int(u64::MAX as i128)
        );
        assert_eq!(
            from_mysql(M::Int(0), MysqlType::from_column_type("tinyint(1)")),
            Value::Bool(false)
        );
    }
}
