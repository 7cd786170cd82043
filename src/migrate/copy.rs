//! Normalized values into PostgreSQL's COPY text format, guided by the
//! target column's type (so a MySQL TINYINT(1) becomes `t`/`f`, a DATETIME
//! lands in a timestamptz as UTC, a BLOB becomes `\\x…`).
//!
//! Text COPY rather than binary: the server parses every type from the same
//! text it would accept in a literal, so there is no per-type binary encoder
//! to get wrong (NUMERIC's base-10000 digits, say), and it was fast enough
//! (see `benches/backfill.sh`).

use crate::value::pg::PgType;
use crate::value::{temporal, Value};

use super::sqltext::float_text;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why a value cannot be stored in the target column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrepresentable(pub String);

/// Appends `row` as one COPY text line. `cols` pairs each written column's
/// position in `row` with its target type.
pub fn write_row(
    out: &mut Vec<u8>,
    row: &[Value],
    cols: &[(usize, PgType)],
) -> Result<(), (usize, Unrepresentable)> {
    for (n, &(i, ty)) in cols.iter().enumerate() {
        if n > 0 {
            out.push(b'\t');
        }
        write_field(out, &row[i], ty).map_err(|e| (i, e))?;
    }
    out.push(b'\n');
    Ok(())
}

fn escaped(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Unrepresentable> {
    // Most text needs no escaping; copy runs of plain bytes at once.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0 => {
                return Err(Unrepresentable(
                    "text contains a NUL byte, which PostgreSQL text cannot store (map the column to bytea)".into(),
                ))
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    Ok(())
}

fn bytea(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(b"\\\\x");
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Decimal digits of `i`, without going through `fmt` (this runs for
/// every integer of every row).
fn int(out: &mut Vec<u8>, i: i128) {
    if i < 0 {
        out.push(b'-');
    }
    let mut n = i.unsigned_abs();
    let mut buf = [0u8; 40];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

fn two(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// `YYYY-MM-DD` for years 1-9999 written directly; other years (BC, five
/// digits) through the general formatter.
fn date(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = temporal::civil_from_days(days);
    if !(1..=9999).contains(&y) {
        text(out, &temporal::format_date(days as i32));
        return;
    }
    two(out, (y / 100) as u32);
    two(out, (y % 100) as u32);
    out.push(b'-');
    two(out, m);
    out.push(b'-');
    two(out, d);
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, `+00` appended for timestamptz.
fn timestamp(out: &mut Vec<u8>, micros: i64, zone: bool) {
    let days = micros.div_euclid(temporal::MICROS_PER_DAY);
    let (y, _, _) = temporal::civil_from_days(days);
    if !(1..=9999).contains(&y) {
        let mut s = temporal::format_timestamp(micros);
        if zone {
            // The zone goes before a " BC" suffix.
            s = match s.strip_suffix(" BC") {
                Some(head) => format!("{head}+00 BC"),
                None => s + "+00",
            };
        }
        text(out, &s);
        return;
    }
    date(out, days);
    let t = micros.rem_euclid(temporal::MICROS_PER_DAY);
    let (secs, frac) = ((t / 1_000_000) as u32, (t % 1_000_000) as u32);
    out.push(b' ');
    two(out, secs / 3600);
    out.push(b':');
    two(out, secs / 60 % 60);
    out.push(b':');
    two(out, secs % 60);
    if frac != 0 {
        out.push(b'.');
        two(out, frac / 10_000);
        two(out, frac / 100 % 100);
        two(out, frac % 100);
    }
    if zone {
        out.extend_from_slice(b"+00");
    }
}

pub fn write_field(out: &mut Vec<u8>, v: &Value, ty: PgType) -> Result<(), Unrepresentable> {
    use PgType as P;
    match v {
        Value::Null => out.extend_from_slice(b"\\N"),
        Value::Bool(b) => match ty {
            P::Bool => out.push(if *b { b't' } else { b'f' }),
            _ => out.push(if *b { b'1' } else { b'0' }),
        },
        Value::Int(i) => match ty {
            P::Bool => match i {
                0 => out.push(b'f'),
                1 => out.push(b't'),
                _ => {
                    return Err(Unrepresentable(format!(
                        "{i} does not fit a boolean column (only 0 and 1 do)"
                    )))
                }
            },
            P::Bit => text(out, &format!("{i:b}")),
            _ => int(out, *i),
        },
        Value::Decimal(d) => text(out, d),
        Value::Float(f) if f.is_finite() => {
            let _ = std::io::Write::write_fmt(out, format_args!("{f:e}"));
        }
        Value::Float(f) => text(out, &float_text(*f)),
        Value::Date(d) => {
            date(out, *d as i64);
            if matches!(ty, P::Timestamp | P::Timestamptz) {
                text(out, " 00:00:00+00");
            }
        }
        Value::Time(t) => {
            let fits_time = (0..=temporal::MICROS_PER_DAY).contains(t);
            if ty == P::Time && !fits_time {
                return Err(Unrepresentable(format!(
                    "TIME {} is outside PostgreSQL's time range 00:00:00-24:00:00 (map the column to interval)",
                    temporal::format_time(*t)
                )));
            }
            text(out, &temporal::format_time(*t));
        }
        Value::Timestamp(t) => {
            if ty == P::Date {
                if t.rem_euclid(temporal::MICROS_PER_DAY) != 0 {
                    return Err(Unrepresentable(
                        "a date column cannot hold a time of day".into(),
                    ));
                }
                date(out, t.div_euclid(temporal::MICROS_PER_DAY));
            } else {
                timestamp(out, *t, ty == P::Timestamptz);
            }
        }
        Value::Text(s) => match ty {
            P::Bytea => bytea(out, s.as_bytes()),
            _ => escaped(out, s.as_bytes())?,
        },
        Value::Json(s) => escaped(out, s.as_bytes())?,
        Value::Bytes(b) => match ty {
            P::Bytea => bytea(out, b),
            _ => match std::str::from_utf8(b) {
                Ok(s) => escaped(out, s.as_bytes())?,
                Err(_) => {
                    return Err(Unrepresentable(
                        "binary value is not UTF-8 text, and the target column is not bytea".into(),
                    ))
                }
            },
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(v: Value, ty: PgType) -> String {
        let mut out = Vec::new();
        write_field(&mut out, &v, ty).expect("representable");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn escapes_and_nulls() {
        assert_eq!(field(Value::Null, PgType::Text), "\\N");
        assert_eq!(
            field(Value::Text("a\\b\tc\nd\re".into()), PgType::Text),
            "a\\\\b\\tc\\nd\\re"
        );
        assert_eq!(field(Value::Text("\\N".into()), PgType::Text), "\\\\N");
        assert_eq!(
            field(Value::Bytes(vec![0, 0xab]), PgType::Bytea),
            "\\\\x00ab"
        );
        let mut out = Vec::new();
        assert!(write_field(&mut out, &Value::Text("a\0b".into()), PgType::Text).is_err());
    }

    #[test]
    fn typed_conversions() {
        assert_eq!(field(Value::Int(1), PgType::Bool), "t");
        assert_eq!(field(Value::Bool(false), PgType::Bool), "f");
        assert_eq!(field(Value::Int(682), PgType::Bit), "1010101010");
        assert_eq!(
            field(Value::Timestamp(1_500_000), PgType::Timestamptz),
            "1970-01-01 00:00:01.500000+00"
        );
        assert_eq!(
            field(Value::Timestamp(0), PgType::Timestamp),
            "1970-01-01 00:00:00"
        );
        assert_eq!(
            field(Value::Time(-3_600_000_000), PgType::Interval),
            "-01:00:00"
        );
        assert_eq!(field(Value::float(1e300), PgType::Float8), "1e300");
        let mut out = Vec::new();
        assert!(write_field(&mut out, &Value::Time(-1), PgType::Time).is_err());
        assert!(write_field(&mut out, &Value::Int(2), PgType::Bool).is_err());
    }

    #[test]
    fn fast_writers_match_the_general_formatters() {
        for i in [
            0i128,
            -1,
            9,
            10,
            i64::MIN as i128,
            u64::MAX as i128,
            i128::MIN,
            i128::MAX,
        ] {
            assert_eq!(field(Value::Int(i), PgType::Numeric), i.to_string());
        }
        for t in [
            0i64,
            1,
            -1,
            999_999,
            1_700_000_000_123_456,
            -30_610_224_000_000_000,
            253_402_300_799_999_999,
            -62_135_596_800_000_001,
        ] {
            let general = temporal::format_timestamp(t);
            assert_eq!(field(Value::Timestamp(t), PgType::Timestamp), general);
            let zoned = field(Value::Timestamp(t), PgType::Timestamptz);
            assert!(
                zoned.starts_with(general.trim_end_matches(" BC")) && zoned.contains("+00"),
                "{zoned}"
            );
        }
        for d in [0i32, -719_162, 2_932_896, -800_000] {
            assert_eq!(
                field(Value::Date(d), PgType::Date),
                temporal::format_date(d)
            );
        }
    }

    #[test]
    fn rows_are_tab_separated_lines() {
        let mut out = Vec::new();
        let row = vec![Value::Int(1), Value::Text("x".into()), Value::Null];
        write_row(&mut out, &row, &[(0, PgType::Int8), (2, PgType::Text)]).unwrap();
        assert_eq!(out, b"1\t\\N\n");
    }
}
