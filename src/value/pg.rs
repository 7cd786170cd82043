//! PostgreSQL values into the normalized model.
//!
//! tokio-postgres fetches rows in the binary format and has no type for
//! arbitrary-precision NUMERIC or for INTERVAL, so we decode the binary wire
//! format of every type we meet ourselves ([`from_pg_binary`]); it is cheaper
//! than having the server print text and parsing it back. Columns of types
//! without a decoder here (enums, domains, citext, ranges …) are selected as
//! `::text` by the callers ([`PgType::needs_text_cast`]) and read with
//! [`from_pg_text`], which also parses every type's text form (simple query,
//! COPY text, tests).

use tokio_postgres::types::{FromSql, Type};

use super::pg_binary::{self, PgFamily, Value as Wire};
use super::{temporal, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Numeric,
    Float4,
    Float8,
    Text,
    /// `char(n)`: trailing spaces are insignificant, as in MySQL CHAR.
    Bpchar,
    Bytea,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
    Interval,
    Bit,
    Uuid,
    /// Anything else; read through a `::text` cast.
    Other,
}

impl PgType {
    /// From `information_schema.columns.udt_name` / `pg_type.typname`.
    pub fn from_udt_name(name: &str) -> Self {
        use PgType::*;
        match name {
            "bool" => Bool,
            "int2" => Int2,
            "int4" => Int4,
            "int8" => Int8,
            "oid" => Oid,
            "numeric" => Numeric,
            "float4" => Float4,
            "float8" => Float8,
            "text" | "varchar" | "name" => Text,
            "bpchar" => Bpchar,
            "bytea" => Bytea,
            "date" => Date,
            "time" => Time,
            "timestamp" => Timestamp,
            "timestamptz" => Timestamptz,
            "json" => Json,
            "jsonb" => Jsonb,
            "interval" => Interval,
            "bit" | "varbit" => Bit,
            "uuid" => Uuid,
            _ => Other,
        }
    }

    pub fn from_type(ty: &Type) -> Self {
        Self::from_udt_name(ty.name())
    }

    /// Whether readers must select the column as `::text`.
    pub fn needs_text_cast(self) -> bool {
        self == PgType::Other
    }

    /// The type's name in SQL, for casts.
    pub fn sql_name(self) -> &'static str {
        use PgType::*;
        match self {
            Bool => "boolean",
            Int2 => "smallint",
            Int4 => "integer",
            Int8 => "bigint",
            Oid => "oid",
            Numeric => "numeric",
            Float4 => "real",
            Float8 => "double precision",
            Text | Other => "text",
            Bpchar => "bpchar",
            Bytea => "bytea",
            Date => "date",
            Time => "time",
            Timestamp => "timestamp",
            Timestamptz => "timestamptz",
            Json => "json",
            Jsonb => "jsonb",
            Interval => "interval",
            Bit => "varbit",
            Uuid => "uuid",
        }
    }
}

/// A column's raw wire bytes, whatever its type: lets us decode ourselves.
pub struct Raw<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column `idx` of a row, declared as `ty` in the table. A column that
/// arrives as text although its declared type is not (a `::text` cast) is
/// parsed as text.
pub fn from_pg_row(row: &tokio_postgres::Row, idx: usize, ty: PgType) -> Value {
    let wire = row.columns().get(idx).map(|c| PgType::from_type(c.type_()));
    let raw: Option<Raw> = match row.try_get(idx) {
        Ok(raw) => raw,
        Err(_) => return Value::Null,
    };
    let Some(Raw(bytes)) = raw else {
        return Value::Null;
    };
    if wire == Some(PgType::Text) && !matches!(ty, PgType::Text) {
        return match std::str::from_utf8(bytes) {
            Ok(s) => from_pg_text(ty, s),
            Err(_) => Value::Bytes(bytes.to_vec()),
        };
    }
    from_pg_binary(ty, bytes)
}

impl PgType {
    /// How the one binary decoder ([`super::pg_binary`]) reads this type.
    fn family(self) -> PgFamily {
        use PgType::*;
        match self {
            Bool => PgFamily::Bool,
            Int2 => PgFamily::Int2,
            Int4 => PgFamily::Int4,
            Int8 => PgFamily::Int8,
            Oid => PgFamily::Oid,
            Numeric => PgFamily::Numeric,
            Float4 => PgFamily::Float4,
            Float8 => PgFamily::Float8,
            Text | Other => PgFamily::Text,
            Bpchar => PgFamily::BpChar,
            Bytea => PgFamily::Bytea,
            Date => PgFamily::Date,
            Time => PgFamily::Time,
            Timestamp => PgFamily::Timestamp,
            Timestamptz => PgFamily::TimestampTz,
            Json => PgFamily::Json,
            Jsonb => PgFamily::Jsonb,
            Interval => PgFamily::Interval,
            Bit => PgFamily::Bits,
            Uuid => PgFamily::Uuid,
        }
    }
}

/// Decodes one non-NULL value in PostgreSQL's binary format: the one decoder
/// ([`pg_binary::decode`]) reads it, then it is normalized. Bytes the decoder
/// rejects are kept as `Bytes`, so they compare unequal instead of failing
/// the whole comparison.
pub fn from_pg_binary(ty: PgType, raw: &[u8]) -> Value {
    let parsed = match pg_binary::decode(ty.family(), raw) {
        Ok(Wire::Text(t)) if matches!(ty, PgType::Json | PgType::Jsonb) => {
            std::str::from_utf8(t).ok().map(Value::json)
        }
        Ok(v) => normalize(v),
        Err(_) => None,
    };
    parsed.unwrap_or_else(|| Value::Bytes(raw.to_vec()))
}

/// A decoded wire value in the normalized model (`None`: not representable,
/// the caller keeps the raw bytes).
fn normalize(v: Wire<'_>) -> Option<Value> {
    Some(match v {
        Wire::Null => Value::Null,
        Wire::Bool(b) => Value::Bool(b),
        Wire::Int(i) => Value::Int(i.into()),
        Wire::Float4(f) => Value::float(f.into()),
        Wire::Float8(f) => Value::float(f),
        Wire::Numeric(text) => Value::parse_decimal(&text)?,
        Wire::Text(t) => Value::text_or_bytes(t.to_vec()),
        Wire::Bytes(b) => Value::Bytes(b.to_vec()),
        Wire::Bits(n, bytes) => bits_value(n, bytes)?,
        Wire::Date(d) => match d {
            i32::MAX => Value::Text("infinity".into()),
            i32::MIN => Value::Text("-infinity".into()),
            d => Value::Date(d.saturating_add(temporal::PG_EPOCH_DAYS)),
        },
        Wire::Timestamp(t) => match t {
            i64::MAX => Value::Text("infinity".into()),
            i64::MIN => Value::Text("-infinity".into()),
            t => Value::Timestamp(
                t.saturating_add(temporal::PG_EPOCH_DAYS as i64 * temporal::MICROS_PER_DAY),
            ),
        },
        Wire::Time(t) => Value::Time(t),
        Wire::Interval {
            micros,
            days,
            months,
        } => interval_value(months, days, micros),
        Wire::Uuid(b) => Value::Text(format_uuid(&b)),
        Wire::Owned(s) => Value::Text(s),
    })
}

/// Parses one non-NULL value in PostgreSQL's text output format.
pub fn from_pg_text(ty: PgType, s: &str) -> Value {
    use PgType::*;
    let parsed = match ty {
        Bool => match s {
            "t" | "true" => Some(Value::Bool(true)),
            "f" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Int2 | Int4 | Int8 | Oid => s.parse::<i128>().ok().map(Value::Int),
        Float4 => s.parse::<f32>().ok().map(|f| Value::float(f as f64)),
        Float8 => s.parse::<f64>().ok().map(Value::float),
        Numeric => Value::parse_decimal(s),
        Text | Other | Uuid => None,
        Bpchar => return Value::Text(s.trim_end_matches(' ').to_string()),
        Bytea => s.strip_prefix("\\x").and_then(parse_hex).map(Value::Bytes),
        Date => temporal::parse_date(s).map(Value::Date),
        Time => temporal::parse_time(s).map(Value::Time),
        Timestamp | Timestamptz => temporal::parse_datetime(s).map(Value::Timestamp),
        Json | Jsonb => Some(Value::json(s)),
        Interval => interval_text(s),
        Bit => (s.len() <= 127 && s.bytes().all(|b| b == b'0' || b == b'1')).then(|| {
            Value::Int(
                s.bytes()
                    .fold(0i128, |acc, b| (acc << 1) | (b - b'0') as i128),
            )
        }),
    };
    parsed.unwrap_or_else(|| Value::Text(s.to_string()))
}

pub(crate) fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// An interval without months is a plain duration and normalizes like a
/// TIME, so a MySQL TIME mapped to `interval` compares equal.
fn interval_value(months: i32, days: i32, micros: i64) -> Value {
    if months == 0 {
        if let Some(t) = (days as i64)
            .checked_mul(temporal::MICROS_PER_DAY)
            .and_then(|d| d.checked_add(micros))
        {
            return Value::Time(t);
        }
    }
    Value::Text(format!(
        "{months} mons {days} days {}",
        temporal::format_time(micros)
    ))
}

/// `[N day[s] ][-]HH:MM:SS[.f]` (what PostgreSQL prints for a month-less
/// interval); anything else stays text.
fn interval_text(s: &str) -> Option<Value> {
    let (days, time) = match s.split_once(" day") {
        Some((d, rest)) => {
            let rest = rest.trim_start_matches('s').trim_start();
            (d.trim().parse::<i64>().ok()?, rest)
        }
        None => (0, s),
    };
    let micros = if time.is_empty() {
        0
    } else {
        temporal::parse_time(time)?
    };
    Some(Value::Time(
        days.checked_mul(temporal::MICROS_PER_DAY)?
            .checked_add(micros)?,
    ))
}

/// bit/varbit as an integer, most significant bit first (up to 127 bits;
/// longer strings stay bytes).
fn bits_value(nbits: u32, bytes: &[u8]) -> Option<Value> {
    let nbits = nbits as usize;
    if nbits > 127 || bytes.len() != nbits.div_ceil(8) {
        return None;
    }
    let mut acc = 0i128;
    for i in 0..nbits {
        let bit = (bytes.get(i / 8)? >> (7 - i % 8)) & 1;
        acc = (acc << 1) | bit as i128;
    }
    Some(Value::Int(acc))
}

fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NUMERIC's binary form with the display scale PostgreSQL would send
    /// (every stored fractional group shown).
    fn numeric(ndigits: u16, weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let dscale = (i32::from(ndigits) - 1 - i32::from(weight)).max(0) * 4;
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale as u16] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_binary_decoding() {
        let n = |nd, w, s, d: &[u16]| from_pg_binary(PgType::Numeric, &numeric(nd, w, s, d));
        assert_eq!(
            n(2, 0, 0, &[12, 3400]),
            Value::parse_decimal("12.34").unwrap()
        );
        assert_eq!(n(1, 1, 0x4000, &[5]), Value::Int(-50000));
        assert_eq!(
            n(1, -2, 0, &[7]),
            Value::parse_decimal("0.00000007").unwrap()
        );
        assert_eq!(n(0, 0, 0, &[]), Value::Int(0));
        assert_eq!(
            n(5, 4, 0, &[1844, 6744, 737, 955, 1615]),
            Value::Int(u64::MAX as i128)
        );
        let big = n(9, 8, 0, &[1, 2345, 6789, 123, 4567, 8901, 2345, 6789, 123]);
        assert_eq!(
            big,
            Value::parse_decimal("123456789012345678901234567890123").unwrap()
        );
        assert_eq!(n(0, 0, 0xC000, &[]), Value::Decimal("NaN".into()));
        assert!(matches!(
            from_pg_binary(PgType::Numeric, &[0, 1]),
            Value::Bytes(_)
        ));
    }

    #[test]
    fn binary_scalars() {
        assert_eq!(from_pg_binary(PgType::Bool, &[1]), Value::Int(1));
        assert_eq!(
            from_pg_binary(PgType::Int2, &(-5i16).to_be_bytes()),
            Value::Int(-5)
        );
        assert_eq!(
            from_pg_binary(PgType::Float4, &1.5f32.to_be_bytes()),
            Value::Float(1.5)
        );
        assert_eq!(
            from_pg_binary(PgType::Date, &0i32.to_be_bytes()),
            Value::Date(temporal::PG_EPOCH_DAYS)
        );
        assert_eq!(
            from_pg_binary(PgType::Timestamptz, &1i64.to_be_bytes()),
            Value::Timestamp(temporal::PG_EPOCH_DAYS as i64 * temporal::MICROS_PER_DAY + 1)
        );
        assert_eq!(
            from_pg_binary(PgType::Bpchar, b"ab  "),
            Value::Text("ab".into())
        );
        assert_eq!(
            from_pg_binary(PgType::Jsonb, b"\x01{\"b\": 1, \"a\": 2}"),
            Value::json(r#"{"a":2,"b":1}"#)
        );
        assert_eq!(
            from_pg_binary(PgType::Bit, &[0, 0, 0, 10, 0b1010_1010, 0b1000_0000]),
            Value::Int(682)
        );
        let mut iv = Vec::new();
        iv.extend_from_slice(&3_600_000_000i64.to_be_bytes());
        iv.extend_from_slice(&1i32.to_be_bytes());
        iv.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(
            from_pg_binary(PgType::Interval, &iv),
            Value::Time(25 * 3_600_000_000)
        );
        assert_eq!(
            from_pg_text(PgType::Interval, "1 day 01:00:00"),
            Value::Time(25 * 3_600_000_000)
        );
    }

    #[test]
    fn text_forms() {
        assert_eq!(from_pg_text(PgType::Bool, "t"), Value::Int(1));
        assert_eq!(
            from_pg_text(PgType::Bytea, "\\x00ff"),
            Value::Bytes(vec![0, 255])
        );
        assert_eq!(
            from_pg_text(PgType::Numeric, "1.500"),
            Value::parse_decimal("1.5").unwrap()
        );
        assert_eq!(
            from_pg_text(PgType::Timestamptz, "2024-01-02 03:04:05.5+00"),
            Value::Timestamp(temporal::parse_datetime("2024-01-02 03:04:05.5").unwrap())
        );
        assert_eq!(from_pg_text(PgType::Bit, "1010101010"), Value::Int(682));
        assert_eq!(
            from_pg_text(PgType::Float8, "Infinity"),
            Value::Float(f64::INFINITY)
        );
    }
}
