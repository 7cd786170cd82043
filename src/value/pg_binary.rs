//! The one decoder of PostgreSQL's binary wire format, lossless: NUMERIC
//! becomes its exact decimal text (every digit up to its scale), dates and
//! times stay integers until they are printed, text and bytea stay borrowed
//! from the row. Both consumers start here: the PostgreSQL-primary path
//! renders these values in MySQL form (`backend::pg_mysql`), and the
//! normalized model ([`super::pg::from_pg_binary`]) builds its comparison
//! values from them.
//!
//! Every read is bounds-checked; a malformed value is a `DecodeError`, never a
//! panic.

use std::fmt::Write;

use tokio_postgres::types::{Kind, Type};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed PostgreSQL {0} value")]
pub struct DecodeError(pub &'static str);

/// How a PostgreSQL type is read; decided once per result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgFamily {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    /// text, varchar, name, "char", unknown, xml, citext, enum labels.
    Text,
    /// bpchar: MySQL CHAR drops the trailing pad spaces.
    BpChar,
    Json,
    Jsonb,
    Bytea,
    Bits,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    TimeTz,
    Interval,
    Uuid,
    Inet,
    MacAddr,
    MacAddr8,
    Void,
}

impl PgFamily {
    /// `None` for types with no faithful MySQL form (arrays, ranges,
    /// composites, geometric types, money …).
    pub fn of(ty: &Type) -> Option<Self> {
        match ty.kind() {
            Kind::Domain(base) => return Self::of(base),
            Kind::Enum(_) => return Some(PgFamily::Text),
            Kind::Simple | Kind::Pseudo => {}
            _ => return None,
        }
        Some(match *ty {
            Type::BOOL => PgFamily::Bool,
            Type::INT2 => PgFamily::Int2,
            Type::INT4 => PgFamily::Int4,
            Type::INT8 => PgFamily::Int8,
            Type::OID => PgFamily::Oid,
            Type::FLOAT4 => PgFamily::Float4,
            Type::FLOAT8 => PgFamily::Float8,
            Type::NUMERIC => PgFamily::Numeric,
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::CHAR | Type::UNKNOWN | Type::XML => {
                PgFamily::Text
            }
            Type::BPCHAR => PgFamily::BpChar,
            Type::JSON => PgFamily::Json,
            Type::JSONB => PgFamily::Jsonb,
            Type::BYTEA => PgFamily::Bytea,
            Type::BIT | Type::VARBIT => PgFamily::Bits,
            Type::DATE => PgFamily::Date,
            Type::TIMESTAMP => PgFamily::Timestamp,
            Type::TIMESTAMPTZ => PgFamily::TimestampTz,
            Type::TIME => PgFamily::Time,
            Type::TIMETZ => PgFamily::TimeTz,
            Type::INTERVAL => PgFamily::Interval,
            Type::UUID => PgFamily::Uuid,
            Type::INET | Type::CIDR => PgFamily::Inet,
            Type::MACADDR => PgFamily::MacAddr,
            Type::MACADDR8 => PgFamily::MacAddr8,
            Type::VOID => PgFamily::Void,
            // Extension types whose binary form is their text.
            _ if ty.name() == "citext" => PgFamily::Text,
            _ => return None,
        })
    }
}

/// One decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float4(f32),
    Float8(f64),
    /// Exact decimal text (`-12.50`), or `NaN` / `Infinity` / `-Infinity`.
    Numeric(String),
    Text(&'a [u8]),
    Bytes(&'a [u8]),
    /// A bit string: number of bits and the bytes holding them, left-aligned.
    Bits(u32, &'a [u8]),
    /// Days since 2000-01-01; `i32::MAX`/`MIN` are ±infinity.
    Date(i32),
    /// Microseconds since 2000-01-01 00:00:00 (UTC for timestamptz).
    Timestamp(i64),
    /// Microseconds since midnight.
    Time(i64),
    Interval {
        micros: i64,
        days: i32,
        months: i32,
    },
    Uuid([u8; 16]),
    /// Text computed while decoding (inet, macaddr, timetz).
    Owned(String),
}

fn be<const N: usize>(raw: &[u8], what: &'static str) -> Result<[u8; N], DecodeError> {
    raw.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or(DecodeError(what))
}

/// Decodes one non-NULL value of `family` from PostgreSQL's binary format.
pub fn decode(family: PgFamily, raw: &[u8]) -> Result<Value<'_>, DecodeError> {
    use PgFamily as F;
    Ok(match family {
        F::Bool => Value::Bool(*raw.first().ok_or(DecodeError("bool"))? != 0),
        F::Int2 => Value::Int(i16::from_be_bytes(be(raw, "int2")?).into()),
        F::Int4 => Value::Int(i32::from_be_bytes(be(raw, "int4")?).into()),
        F::Int8 => Value::Int(i64::from_be_bytes(be(raw, "int8")?)),
        F::Oid => Value::Int(u32::from_be_bytes(be(raw, "oid")?).into()),
        F::Float4 => Value::Float4(f32::from_be_bytes(be(raw, "float4")?)),
        F::Float8 => Value::Float8(f64::from_be_bytes(be(raw, "float8")?)),
        F::Numeric => Value::Numeric(numeric_text(raw)?),
        F::Text | F::Json => Value::Text(raw),
        F::BpChar => {
            let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
            Value::Text(&raw[..end])
        }
        F::Jsonb => match raw.split_first() {
            Some((1, text)) => Value::Text(text),
            _ => return Err(DecodeError("jsonb")),
        },
        F::Bytea => Value::Bytes(raw),
        F::Bits => {
            let n = i32::from_be_bytes(be(raw, "bit")?);
            let bytes = &raw[4..];
            let n = u32::try_from(n).map_err(|_| DecodeError("bit"))?;
            if bytes.len() as u64 * 8 < u64::from(n) {
                return Err(DecodeError("bit"));
            }
            Value::Bits(n, bytes)
        }
        F::Date => Value::Date(i32::from_be_bytes(be(raw, "date")?)),
        F::Timestamp | F::TimestampTz => {
            Value::Timestamp(i64::from_be_bytes(be(raw, "timestamp")?))
        }
        F::Time => Value::Time(i64::from_be_bytes(be(raw, "time")?)),
        F::TimeTz => {
            let micros = i64::from_be_bytes(be(raw, "timetz")?);
            let zone = i32::from_be_bytes(be(raw.get(8..).unwrap_or(&[]), "timetz")?);
            Value::Owned(timetz_text(micros, zone))
        }
        F::Interval => {
            let micros = i64::from_be_bytes(be(raw, "interval")?);
            let rest = raw.get(8..).unwrap_or(&[]);
            let days = i32::from_be_bytes(be(rest, "interval")?);
            let months = i32::from_be_bytes(be(rest.get(4..).unwrap_or(&[]), "interval")?);
            Value::Interval {
                micros,
                days,
                months,
            }
        }
        F::Uuid => Value::Uuid(be(raw, "uuid")?),
        F::Inet => Value::Owned(inet_text(raw)?),
        F::MacAddr | F::MacAddr8 => {
            let n = if family == F::MacAddr { 6 } else { 8 };
            let b = raw.get(..n).ok_or(DecodeError("macaddr"))?;
            let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
            Value::Owned(hex.join(":"))
        }
        F::Void => Value::Text(b""),
    })
}

/// NUMERIC's binary form: ndigits, weight, sign, dscale (i16/u16 each), then
/// base-10000 digits. The result is exact: every digit up to dscale.
pub fn numeric_text(raw: &[u8]) -> Result<String, DecodeError> {
    let bad = || DecodeError("numeric");
    let word = |i: usize| -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(be(
            raw.get(i * 2..).ok_or_else(bad)?,
            "numeric",
        )?))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err(bad()),
    }
    if dscale > 0x3FFF || raw.len() < 8 + ndigits * 2 {
        return Err(bad());
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        let d = word(4 + i)?;
        if d > 9999 {
            return Err(bad());
        }
        digits.push(d);
    }
    // Digit group i is worth 10000^(weight - i).
    let group = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut out = String::with_capacity(ndigits * 4 + dscale + 3);
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        // Leading group without zero padding, the rest four digits each.
        let _ = write!(out, "{}", group(0));
        for i in 1..=weight {
            let _ = write!(out, "{:04}", group(i));
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", group(i));
            i += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    if out == "-0" || (out.starts_with("-0.") && out[3..].bytes().all(|b| b == b'0')) {
        out.remove(0);
    }
    Ok(out)
}

fn inet_text(raw: &[u8]) -> Result<String, DecodeError> {
    let bad = || DecodeError("inet");
    let [family, bits, is_cidr, n] = be::<4>(raw, "inet")?;
    let addr = raw.get(4..4 + usize::from(n)).ok_or_else(bad)?;
    let (text, max) = match (family, addr.len()) {
        (2, 4) => (
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
            32,
        ),
        (3, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(addr);
            (std::net::Ipv6Addr::from(a).to_string(), 128)
        }
        _ => return Err(bad()),
    };
    // PostgreSQL omits the prefix length of a host address (inet only).
    Ok(if bits == max && is_cidr == 0 {
        text
    } else {
        format!("{text}/{bits}")
    })
}

fn timetz_text(micros: i64, zone_west_secs: i32) -> String {
    let mut s = String::new();
    super::temporal::push_time(&mut s, micros, 6, true);
    let east = -i64::from(zone_west_secs);
    let (sign, a) = if east < 0 { ('-', -east) } else { ('+', east) };
    let _ = write!(s, "{sign}{:02}", a / 3600);
    if a % 3600 != 0 {
        let _ = write!(s, ":{:02}", a % 3600 / 60);
    }
    if a % 60 != 0 {
        let _ = write!(s, ":{:02}", a % 60);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds NUMERIC's binary form.
    fn num(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_exact_text() {
        assert_eq!(numeric_text(&num(0, 0, 0, &[])).unwrap(), "0");
        assert_eq!(numeric_text(&num(0, 0, 2, &[])).unwrap(), "0.00");
        assert_eq!(
            numeric_text(&num(0, 0x4000, 2, &[12, 5000])).unwrap(),
            "-12.50"
        );
        assert_eq!(numeric_text(&num(-1, 0, 4, &[5])).unwrap(), "0.0005");
        assert_eq!(
            numeric_text(&num(-2, 0x4000, 6, &[1200])).unwrap(),
            "-0.000012"
        );
        // 1e40: one group "1" worth 10000^10.
        assert_eq!(
            numeric_text(&num(10, 0, 0, &[1])).unwrap(),
            format!("1{}", "0".repeat(40))
        );
        // 32 significant digits with scale 10 (beyond rust_decimal's 28).
        let v = num(
            5,
            0,
            10,
            &[12, 3456, 7890, 1234, 5678, 9012, 3456, 7890, 12],
        );
        assert_eq!(
            numeric_text(&v).unwrap(),
            "1234567890123456789012.3456789000"
        );
        // u64::MAX as numeric(20).
        let v = num(4, 0, 0, &[1844, 6744, 737, 955, 1615]);
        assert_eq!(numeric_text(&v).unwrap(), "18446744073709551615");
        // dscale shorter than the stored groups truncates (PG never sends that).
        assert_eq!(numeric_text(&num(0, 0, 1, &[1, 2500])).unwrap(), "1.2");
    }

    #[test]
    fn numeric_specials_and_garbage() {
        assert_eq!(numeric_text(&num(0, 0xC000, 0, &[])).unwrap(), "NaN");
        assert_eq!(numeric_text(&num(0, 0xD000, 0, &[])).unwrap(), "Infinity");
        assert_eq!(numeric_text(&num(0, 0xF000, 0, &[])).unwrap(), "-Infinity");
        assert!(numeric_text(&[0, 1]).is_err());
        assert!(numeric_text(&num(0, 0x1234, 0, &[])).is_err());
        assert!(numeric_text(&num(0, 0, 0, &[10_000])).is_err());
        let mut short = num(0, 0, 0, &[1, 2]);
        short.truncate(10);
        assert!(numeric_text(&short).is_err());
    }

    #[test]
    fn dates_around_the_epochs() {
        use super::super::temporal::civil_from_pg_days as civil_from_days;
        assert_eq!(civil_from_days(0), (2000, 1, 1));
        assert_eq!(civil_from_days(-1), (1999, 12, 31));
        assert_eq!(civil_from_days(-10_957), (1970, 1, 1));
        assert_eq!(civil_from_days(-11_122), (1969, 7, 20));
        assert_eq!(civil_from_days(59), (2000, 2, 29));
        assert_eq!(civil_from_days(2_921_939), (9999, 12, 31));
        assert_eq!(civil_from_days(-730_119), (1, 1, 1));
        // Extremes must not panic.
        civil_from_days(i32::MIN);
        civil_from_days(i32::MAX);
    }

    #[test]
    fn small_types() {
        assert_eq!(decode(PgFamily::Int2, &[0xff, 0xfe]), Ok(Value::Int(-2)));
        assert_eq!(
            decode(PgFamily::Oid, &[0xff; 4]),
            Ok(Value::Int(4_294_967_295))
        );
        assert_eq!(decode(PgFamily::BpChar, b"ab   "), Ok(Value::Text(b"ab")));
        assert_eq!(decode(PgFamily::Jsonb, b"\x01{}"), Ok(Value::Text(b"{}")));
        assert!(decode(PgFamily::Jsonb, b"\x02{}").is_err());
        assert!(decode(PgFamily::Int8, &[1, 2, 3]).is_err());
        assert!(decode(PgFamily::Interval, &[0; 12]).is_err());
        assert_eq!(
            decode(PgFamily::Bits, &[0, 0, 0, 3, 0b1010_0000]),
            Ok(Value::Bits(3, &[0b1010_0000][..]))
        );
        assert!(decode(PgFamily::Bits, &[0, 0, 0, 9, 0]).is_err());
    }

    #[test]
    fn network_and_zones() {
        assert_eq!(
            decode(PgFamily::Inet, &[2, 32, 0, 4, 10, 0, 0, 1]),
            Ok(Value::Owned("10.0.0.1".into()))
        );
        assert_eq!(
            decode(PgFamily::Inet, &[2, 24, 1, 4, 10, 0, 0, 0]),
            Ok(Value::Owned("10.0.0.0/24".into()))
        );
        assert!(decode(PgFamily::Inet, &[2, 32, 0, 5, 1, 2, 3, 4]).is_err());
        let mut tz = 3_600_000_000i64.to_be_bytes().to_vec();
        tz.extend_from_slice(&(-19_800i32).to_be_bytes());
        assert_eq!(
            decode(PgFamily::TimeTz, &tz),
            Ok(Value::Owned("01:00:00+05:30".into()))
        );
    }
}
