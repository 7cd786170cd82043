//! The one normalized value model.
//!
//! Both drivers convert into [`Value`] (`value::mysql` from `mysql_async`,
//! `value::pg` from `tokio_postgres`), and every comparison of data between the
//! two backends — `tandem verify`, the backfill's key bookkeeping, later
//! shadow-read comparison — happens on it, so "equal" means the same thing
//! everywhere. The representation removes what differs only in spelling:
//!
//! * integers of every width and signedness are `Int(i128)`; a DECIMAL/NUMERIC
//!   without a fractional part is an integer too, so `BIGINT UNSIGNED` and
//!   `numeric(20)` agree;
//! * other decimals are canonical text (no leading zeros, no trailing
//!   fractional zeros, no `-0`): `1.50` and `1.5000` are the same `Decimal`;
//! * `Bool(b)` equals `Int(0)`/`Int(1)`, so TINYINT(1) and boolean agree;
//! * floats compare within a relative tolerance ([`Value::approx_eq`]);
//! * DATETIME/TIMESTAMP are microseconds since the Unix epoch in UTC, DATE is
//!   days since the epoch, TIME is signed microseconds;
//! * text and binary strings compare by bytes; JSON by its canonical
//!   serialization (keys sorted, no insignificant whitespace).
//!
//! Values a backend can hold but the model cannot interpret (MySQL zero dates,
//! PostgreSQL `infinity`) are kept as their text, so they compare unequal to
//! anything the other side could hold instead of failing the whole comparison.

mod key;
pub mod mysql;
pub mod pg;
pub mod pg_binary;
pub mod temporal;

#[cfg(test)]
mod prop;

pub use key::{from_tagged_json, key_cmp, to_tagged_json};

use std::fmt;
use std::hash::{Hash, Hasher};

/// Relative tolerance used by [`Value::approx_eq`] for floating point values.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// A normalized column value. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    /// Canonical decimal text with a fractional part (integral values are
    /// `Int`), or one of `NaN`, `Infinity`, `-Infinity`, or an integer too
    /// large for `i128`.
    Decimal(Box<str>),
    Float(f64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Signed microseconds (MySQL TIME spans ±838 hours).
    Time(i64),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    Timestamp(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// Canonical JSON text.
    Json(String),
}

/// One row, columns in the order the caller asked for.
pub type Row = Vec<Value>;

impl Value {
    /// A float with `-0.0` folded into `0.0` and every NaN into one NaN, so
    /// equal-looking floats have equal bits.
    pub fn float(f: f64) -> Value {
        if f == 0.0 {
            Value::Float(0.0)
        } else if f.is_nan() {
            Value::Float(f64::NAN)
        } else {
            Value::Float(f)
        }
    }

    /// Parses decimal text (`-001.2300`, `5e3`, `NaN`) into `Int` or a
    /// canonical `Decimal`. `None` if it is not a number.
    pub fn parse_decimal(s: &str) -> Option<Value> {
        let s = s.trim();
        if let Some(v) = plain_decimal(s) {
            return Some(v);
        }
        match s {
            "NaN" | "nan" => return Some(Value::Decimal("NaN".into())),
            "Infinity" | "inf" | "+Infinity" => return Some(Value::Decimal("Infinity".into())),
            "-Infinity" | "-inf" => return Some(Value::Decimal("-Infinity".into())),
            _ => {}
        }
        let (negative, body) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        // A bound on the shift keeps hostile input from allocating gigabytes.
        if exponent.unsigned_abs() > 1000 {
            return None;
        }
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty())
            || !int_part
                .bytes()
                .chain(frac_part.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
        // Position of the decimal point within `digits`.
        let mut point = int_part.len() as i64 + exponent as i64;
        if point < 0 {
            let pad = (-point) as usize;
            digits.splice(0..0, std::iter::repeat_n(b'0', pad));
            point = 0;
        }
        if point as usize > digits.len() {
            digits.resize(point as usize, b'0');
        }
        let point = point as usize;
        let (int_digits, frac_digits) = digits.split_at(point);
        let int_digits = {
            let first = int_digits
                .iter()
                .position(|&b| b != b'0')
                .unwrap_or(int_digits.len());
            &int_digits[first..]
        };
        let frac_digits = {
            let last = frac_digits
                .iter()
                .rposition(|&b| b != b'0')
                .map_or(0, |i| i + 1);
            &frac_digits[..last]
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Some(Value::Int(0));
        }
        let mut out = String::with_capacity(int_digits.len() + frac_digits.len() + 3);
        if negative {
            out.push('-');
        }
        if int_digits.is_empty() {
            out.push('0');
        } else {
            out.push_str(std::str::from_utf8(int_digits).ok()?);
        }
        if frac_digits.is_empty() {
            if let Ok(i) = out.parse::<i128>() {
                return Some(Value::Int(i));
            }
        } else {
            out.push('.');
            out.push_str(std::str::from_utf8(frac_digits).ok()?);
        }
        Some(Value::Decimal(out.into_boxed_str()))
    }

    /// JSON text in canonical form, or `Text` when it does not parse.
    pub fn json(text: &str) -> Value {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => {
                let mut out = String::with_capacity(text.len());
                canonical_json(&v, &mut out);
                Value::Json(out)
            }
            Err(_) => Value::Text(text.to_string()),
        }
    }

    /// Text if the bytes are UTF-8, else binary.
    pub fn text_or_bytes(bytes: Vec<u8>) -> Value {
        match String::from_utf8(bytes) {
            Ok(s) => Value::Text(s),
            Err(e) => Value::Bytes(e.into_bytes()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Equality with floats compared within [`FLOAT_TOLERANCE`] (relative).
    /// This is the comparison verify and shadow reads report on.
    pub fn approx_eq(&self, other: &Value) -> bool {
        self.same(other, FLOAT_TOLERANCE)
    }

    fn same(&self, other: &Value, tolerance: f64) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Bool(b), Int(i)) | (Int(i), Bool(b)) => *i == *b as i128,
            (Int(a), Int(b)) => a == b,
            (Decimal(a), Decimal(b)) => a == b,
            (Float(a), Float(b)) => float_eq(*a, *b, tolerance),
            // Mixed numeric kinds only meet when the two schemas disagree
            // (a DOUBLE mapped to numeric, say); compare them as floats.
            (Float(f), Int(i)) | (Int(i), Float(f)) => float_eq(*f, *i as f64, tolerance),
            (Float(f), Decimal(d)) | (Decimal(d), Float(f)) => {
                d.parse::<f64>().is_ok_and(|d| float_eq(*f, d, tolerance))
            }
            (Date(a), Date(b)) => a == b,
            (Time(a), Time(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (Json(a), Json(b)) => a == b,
            (Json(j), Text(t)) | (Text(t), Json(j)) => matches!(Value::json(t), Json(c) if c == *j),
            (a, b) => match (a.as_bytes(), b.as_bytes()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        }
    }

    /// The bytes of a text or binary value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Text(s) => Some(s.as_bytes()),
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Appends the canonical encoding hashed by [`row_fingerprint`]: equal
    /// values (in the sense of `==`) encode identically.
    ///
    /// Floats are rounded to 40 bits of mantissa (about 12 significant
    /// digits) before encoding. Caveat: no hash can respect a tolerance
    /// exactly. Values that differ by more than the tolerance always encode
    /// differently, so a checksum never hides a real difference; two values
    /// within the tolerance that straddle a rounding boundary encode
    /// differently too, which makes a chunk look different until the
    /// row-level comparison, which uses [`Value::approx_eq`], clears it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Bool(b) => {
                out.push(1);
                out.extend_from_slice(&(*b as i128).to_le_bytes());
            }
            Value::Int(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Decimal(d) => encode_bytes(out, 2, d.as_bytes()),
            Value::Float(f) => {
                out.push(3);
                out.extend_from_slice(&float_bucket(*f).to_le_bytes());
            }
            Value::Date(d) => {
                out.push(4);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Value::Time(t) => {
                out.push(5);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Timestamp(t) => {
                out.push(6);
                out.extend_from_slice(&t.to_le_bytes());
            }
            Value::Text(s) => encode_bytes(out, 7, s.as_bytes()),
            Value::Bytes(b) => encode_bytes(out, 7, b),
            Value::Json(j) => encode_bytes(out, 8, j.as_bytes()),
        }
    }

    /// A short human-readable form for reports (long values are cut).
    pub fn short(&self) -> String {
        const MAX: usize = 60;
        let mut s = self.to_string();
        if s.len() > MAX {
            let mut cut = MAX;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push('…');
        }
        s
    }
}

/// The common case of [`Value::parse_decimal`] without intermediate
/// allocations: `[-]digits[.digits]`, as both engines print DECIMAL.
fn plain_decimal(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    let (negative, body) = match b.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (body.contains('.') && frac.is_empty()) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        if int.len() <= 38 {
            let magnitude: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
            return Some(Value::Int(if negative { -magnitude } else { magnitude }));
        }
        let sign = if negative { "-" } else { "" };
        return Some(Value::Decimal(format!("{sign}{int}").into_boxed_str()));
    }
    let mut out = String::with_capacity(int.len() + frac.len() + 3);
    if negative {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    out.push('.');
    out.push_str(frac);
    Some(Value::Decimal(out.into_boxed_str()))
}

fn encode_bytes(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The float's bits rounded to nearest at 40 mantissa bits.
fn float_bucket(f: f64) -> u64 {
    if !f.is_finite() {
        return f.to_bits();
    }
    const DROP: u32 = 12;
    let bits = f.to_bits();
    (bits + (1 << (DROP - 1))) & !((1u64 << DROP) - 1)
}

fn float_eq(a: f64, b: f64, tolerance: f64) -> bool {
    if a == b || (a.is_nan() && b.is_nan()) {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= tolerance * a.abs().max(b.abs())
}

/// Strict equality: floats must have the same bits (after
/// [`Value::float`]'s folding). Cross-kind rules are those of `approx_eq`.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.same(other, 0.0)
    }
}

impl Eq for Value {}

/// Consistent with `==` for values of one kind, which is what keys need
/// (a key column has the same kind on every row). `Bool` hashes as its
/// integer and `Text` as its bytes, like the cross-kind equality.
impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        state.write(&buf);
    }
}

/// A 128-bit fingerprint of a row's canonical encoding (xxh3-128). `buf` is
/// scratch space reused across rows.
pub fn row_fingerprint(row: &[Value], buf: &mut Vec<u8>) -> u128 {
    buf.clear();
    for v in row {
        v.encode(buf);
    }
    twox_hash::XxHash3_128::oneshot(buf)
}

/// Serializes JSON with object keys sorted and no whitespace.
fn canonical_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&J::String(k.clone()).to_string());
                out.push(':');
                canonical_json(v, out);
            }
            out.push('}');
        }
        J::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Decimal(d) => f.write_str(d),
            Value::Float(x) if x.abs() >= 1e-6 && x.abs() < 1e15 || *x == 0.0 => write!(f, "{x}"),
            Value::Float(x) => write!(f, "{x:e}"),
            Value::Date(d) => f.write_str(&temporal::format_date(*d)),
            Value::Time(t) => f.write_str(&temporal::format_time(*t)),
            Value::Timestamp(t) => f.write_str(&temporal::format_timestamp(*t)),
            Value::Text(s) => f.write_str(s),
            Value::Json(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("0x")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Value {
        Value::parse_decimal(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn decimals_are_scale_insensitive() {
        assert_eq!(dec("1.50"), dec("1.5"));
        assert_eq!(dec("001.5000"), dec("1.5"));
        assert_eq!(dec("-0.000"), Value::Int(0));
        assert_eq!(dec("12.000"), Value::Int(12));
        assert!(matches!(dec("-0.0100"), Value::Decimal(ref s) if &**s == "-0.01"));
        assert!(matches!(dec(".5"), Value::Decimal(ref s) if &**s == "0.5"));
        assert_eq!(dec("5e3"), Value::Int(5000));
        assert!(matches!(dec("1.25e-3"), Value::Decimal(ref s) if &**s == "0.00125"));
        let big = "123456789012345678901234567890123456789012345.123456789";
        assert!(matches!(dec(big), Value::Decimal(ref s) if &**s == big));
        assert!(matches!(
            dec("99999999999999999999999999999999999999999"),
            Value::Decimal(_)
        ));
        assert_ne!(dec("1.5"), dec("1.05"));
        for bad in ["", "-", ".", "1.2.3", "abc", "1e99999", "--1"] {
            assert!(Value::parse_decimal(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn unsigned_bigint_matches_numeric20() {
        assert_eq!(dec("18446744073709551615"), Value::Int(u64::MAX as i128));
    }

    #[test]
    fn bool_equals_zero_and_one_only() {
        assert_eq!(Value::Bool(true), Value::Int(1));
        assert_eq!(Value::Int(0), Value::Bool(false));
        assert_ne!(Value::Bool(true), Value::Int(2));
        let mut a = Vec::new();
        let mut b = Vec::new();
        Value::Bool(true).encode(&mut a);
        Value::Int(1).encode(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn floats_within_tolerance() {
        assert!(Value::float(0.1 + 0.2).approx_eq(&Value::float(0.3)));
        assert_ne!(Value::float(0.1 + 0.2), Value::float(0.3));
        assert!(!Value::float(1.0).approx_eq(&Value::float(1.000001)));
        assert_eq!(Value::float(-0.0), Value::float(0.0));
        assert_eq!(Value::float(f64::NAN), Value::float(f64::NAN));
        assert!(!Value::float(f64::INFINITY).approx_eq(&Value::float(f64::MAX)));
    }

    #[test]
    fn float_buckets_never_hide_a_real_difference() {
        for &x in &[1.0f64, 3.5e-300, -7.25e12, 123456.789] {
            let far = x * (1.0 + 1e-8);
            assert_ne!(float_bucket(x), float_bucket(far), "{x}");
            assert_eq!(
                float_bucket(x),
                float_bucket(f64::from_bits(x.to_bits() + 1)),
                "{x}"
            );
        }
    }

    #[test]
    fn text_and_bytes_compare_by_bytes() {
        assert_eq!(
            Value::Text("é".into()),
            Value::Bytes("é".as_bytes().to_vec())
        );
        assert_ne!(Value::Text("a".into()), Value::Text("a ".into()));
    }

    #[test]
    fn json_is_canonical() {
        assert_eq!(
            Value::json(r#"{"b": 1, "a": [1.0, 2]}"#),
            Value::json(r#"{"a":[1.0,2],"b":1}"#)
        );
        assert!(
            matches!(Value::json(r#"{"b":1,"a":"é\n"}"#), Value::Json(ref s) if s == r#"{"a":"é\n","b":1}"#)
        );
        assert!(Value::json(r#"{"a":1}"#).approx_eq(&Value::Text(r#"{ "a" : 1 }"#.into())));
        assert!(matches!(Value::json("{not json"), Value::Text(_)));
    }

    #[test]
    fn fingerprint_distinguishes_column_boundaries() {
        let mut buf = Vec::new();
        let a = row_fingerprint(
            &[Value::Text("ab".into()), Value::Text("c".into())],
            &mut buf,
        );
        let b = row_fingerprint(
            &[Value::Text("a".into()), Value::Text("bc".into())],
            &mut buf,
        );
        let c = row_fingerprint(&[Value::Text("ab".into()), Value::Null], &mut buf);
        let d = row_fingerprint(
            &[Value::Text("ab".into()), Value::Text(String::new())],
            &mut buf,
        );
        assert_ne!(a, b);
        assert_ne!(c, d);
        let again = row_fingerprint(
            &[Value::Text("ab".into()), Value::Text("c".into())],
            &mut buf,
        );
        assert_eq!(a, again);
    }
}
