//! The one PostgreSQL binary decoder (`value::pg_binary`) has two consumers:
//! the PostgreSQL-primary path renders its values in MySQL form, and the
//! normalized model (`value::pg::from_pg_binary`) compares them. These
//! properties check that, for the same wire bytes, both see the same number,
//! date or instant — what used to differ when each had its own decoder
//! (NUMERIC scale, epochs).

use proptest::prelude::*;

use super::render::{text, Out};
use crate::value::pg::{from_pg_binary, PgType};
use crate::value::pg_binary::{decode, PgFamily};
use crate::value::{temporal, Value};

/// NUMERIC's binary form: ndigits, weight, sign, dscale, base-10000 digits.
fn numeric(weight: i16, negative: bool, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let sign: u16 = if negative { 0x4000 } else { 0 };
    let mut v = Vec::new();
    for w in [digits.len() as u16, weight as u16, sign, dscale] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    for d in digits {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

/// What the PostgreSQL-primary path sends a MySQL client for these bytes.
fn rendered(family: PgFamily, raw: &[u8], kind: Out) -> String {
    let v = decode(family, raw).expect("valid wire bytes");
    let mut out = Vec::new();
    text(&v, kind, &mut out).expect("renders");
    String::from_utf8(out).expect("utf8")
}

proptest! {
    #[test]
    fn numeric_agrees(
        weight in -6i16..10,
        negative in any::<bool>(),
        digits in proptest::collection::vec(0u16..10_000, 0..8),
        extra_scale in 0u16..6,
    ) {
        // PostgreSQL sends a display scale covering every stored fractional
        // group (plus any trailing zeros the column's scale adds).
        let frac_groups = (digits.len() as i32 - 1 - i32::from(weight)).max(0);
        let dscale = (frac_groups * 4) as u16 + extra_scale;
        let raw = numeric(weight, negative, dscale, &digits);
        let compared = from_pg_binary(PgType::Numeric, &raw);
        let text = rendered(PgFamily::Numeric, &raw, Out::Decimal { scale: None });
        prop_assert_eq!(Value::parse_decimal(&text), Some(compared), "{}", text);
    }

    #[test]
    fn timestamps_agree(micros in -63_000_000_000_000_000i64..250_000_000_000_000_000) {
        let raw = micros.to_be_bytes();
        let compared = from_pg_binary(PgType::Timestamp, &raw);
        let text = rendered(PgFamily::Timestamp, &raw, Out::DateTime { fsp: 6 });
        let parsed = temporal::parse_datetime(&text).map(Value::Timestamp);
        prop_assert_eq!(parsed, Some(compared), "{}", text);
    }

    #[test]
    fn dates_agree(days in -730_000i32..2_900_000) {
        let raw = days.to_be_bytes();
        let compared = from_pg_binary(PgType::Date, &raw);
        let text = rendered(PgFamily::Date, &raw, Out::Date);
        prop_assert_eq!(temporal::parse_date(&text).map(Value::Date), Some(compared), "{}", text);
    }

    #[test]
    fn integers_agree(n in any::<i64>()) {
        let raw = n.to_be_bytes();
        let compared = from_pg_binary(PgType::Int8, &raw);
        let out = Out::Int { size: 8, unsigned: false, zerofill: None };
        let text = rendered(PgFamily::Int8, &raw, out);
        prop_assert_eq!(text.parse::<i128>().ok().map(Value::Int), Some(compared));
    }
}
