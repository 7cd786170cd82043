//! Literals. MySQL's tokenizer has already decoded backslash escapes, so a
//! string value printed with doubled quotes is a valid PostgreSQL standard
//! string (`standard_conforming_strings = on`, the default since 9.1).
//!
//! A literal written into a known column is converted for that column's
//! kind ([`coerce`]): 0/1 become false/true for tinyint(1), strings become
//! bytea for binary columns, hex and bit literals become numbers or text.
//! A literal that was converted gets an empty span; [`check_value`] then
//! skips it, since source literals always carry a position.

use sqlparser::ast::{CastKind, DataType, Expr, UnaryOperator, Value, ValueWithSpan};
use sqlparser::tokenizer::Span;

use super::{untranslatable, TranslateError};
use crate::sql::schema::ColumnKind;

/// A literal made (or vetted) by the translator.
pub(super) fn lit(value: Value) -> Expr {
    Expr::Value(ValueWithSpan {
        value,
        span: Span::empty(),
    })
}

pub(super) fn number(n: impl ToString) -> Expr {
    lit(Value::Number(n.to_string(), false))
}

pub(super) fn string(s: impl Into<String>) -> Expr {
    lit(pg_string(s.into()))
}

/// sqlparser prints a quote that follows a backslash or another quote
/// as-is (it assumes the text came escaped), which is wrong for a decoded
/// MySQL value such as `a\'b`; those values are printed as `E'…'` escape
/// strings, everything else as a standard string.
fn pg_string(s: String) -> Value {
    if s.contains("\\'") || s.contains("''") {
        Value::EscapedStringLiteral(s)
    } else {
        Value::SingleQuotedString(s)
    }
}

pub(super) fn is_vetted(v: &ValueWithSpan) -> bool {
    v.span == Span::empty()
}

/// `'\x…'::BYTEA`
pub(super) fn bytea(bytes: &[u8]) -> Expr {
    let mut hex = String::with_capacity(2 + bytes.len() * 2);
    hex.push_str("\\x");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    Expr::Cast {
        kind: CastKind::DoubleColon,
        expr: Box::new(string(hex)),
        data_type: DataType::Bytea,
        format: None,
    }
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>, TranslateError> {
    // 0xabc is read as 0x0abc by MySQL.
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| {
            padded
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| untranslatable(format!("malformed hex literal X'{hex}'")))
        })
        .collect()
}

fn bits_value(bits: &str) -> Result<u64, TranslateError> {
    let digits = bits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    if digits.len() > 64 {
        return Err(untranslatable(format!(
            "bit literal b'{bits}' wider than 64 bits"
        )));
    }
    u64::from_str_radix(digits, 2)
        .map_err(|_| untranslatable(format!("malformed bit literal b'{bits}'")))
}

fn bits_bytes(bits: &str) -> Result<Vec<u8>, TranslateError> {
    let value = bits_value(bits)?;
    let len = bits.len().div_ceil(8).max(1);
    Ok(value.to_be_bytes()[8 - len.min(8)..].to_vec())
}

fn bytes_value(bytes: &[u8], literal: &str) -> Result<u64, TranslateError> {
    let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if significant.len() > 8 {
        return Err(untranslatable(format!(
            "hex literal {literal} wider than 64 bits"
        )));
    }
    Ok(significant
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// `0000-00-00`, or a date with a zero month or day, which PostgreSQL rejects
/// and MySQL stores.
pub(super) fn is_zero_date(s: &str) -> bool {
    let b = s.trim().as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    &b[0..4] == b"0000" || &b[5..7] == b"00" || &b[8..10] == b"00"
}

fn check_text(s: &str, column: &str) -> Result<(), TranslateError> {
    if s.contains('\0') {
        return Err(untranslatable(format!(
            "NUL byte in a string literal{} (PostgreSQL text cannot hold it)",
            for_column(column)
        )));
    }
    Ok(())
}

fn check_date(s: &str, column: &str) -> Result<(), TranslateError> {
    if is_zero_date(s) {
        return Err(untranslatable(format!(
            "zero date '{s}'{}",
            for_column(column)
        )));
    }
    Ok(())
}

fn for_column(column: &str) -> String {
    if column.is_empty() {
        String::new()
    } else {
        format!(" for column {column}")
    }
}

fn utf8_text(bytes: Vec<u8>, column: &str) -> Result<Expr, TranslateError> {
    let s = String::from_utf8(bytes).map_err(|_| {
        untranslatable(format!(
            "binary literal that is not UTF-8{}",
            for_column(column)
        ))
    })?;
    check_text(&s, column)?;
    Ok(string(s))
}

fn padded(mut bytes: Vec<u8>, pad_to: Option<usize>) -> Vec<u8> {
    if let Some(n) = pad_to {
        if bytes.len() < n {
            bytes.resize(n, 0);
        }
    }
    bytes
}

fn boolean_from(n: u64, shown: &str, column: &str) -> Result<Expr, TranslateError> {
    match n {
        0 => Ok(lit(Value::Boolean(false))),
        1 => Ok(lit(Value::Boolean(true))),
        _ => Err(untranslatable(format!(
            "value {shown} for boolean (tinyint(1)) column {column}"
        ))),
    }
}

/// Normalizes a SET value the way MySQL stores it: members in definition
/// order, each once. Values with unknown members are left alone.
fn normalize_set(s: &str, members: &[String]) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut idx = Vec::new();
    for part in s.split(',') {
        match members.iter().position(|m| m.eq_ignore_ascii_case(part)) {
            Some(i) => idx.push(i),
            None => return s.to_string(),
        }
    }
    idx.sort_unstable();
    idx.dedup();
    idx.iter()
        .map(|i| members[*i].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Converts a literal written into a column of `kind` (named `column` in
/// errors). Returns whether `expr` was a literal it handled; anything else
/// is left for the general rules.
pub(super) fn coerce(
    expr: &mut Expr,
    kind: &ColumnKind,
    column: &str,
) -> Result<bool, TranslateError> {
    let replacement = match expr {
        Expr::Prefixed { prefix, value } => {
            let binary = prefix.value.eq_ignore_ascii_case("_binary");
            let mut inner = std::mem::replace(value.as_mut(), lit(Value::Null));
            let handled = if binary && !matches!(kind, ColumnKind::Binary { .. }) {
                false
            } else {
                coerce(&mut inner, kind, column)?
            };
            **value = inner;
            if !handled {
                return Ok(false);
            }
            std::mem::replace(value.as_mut(), lit(Value::Null))
        }
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } if *kind == ColumnKind::Boolean => match inner.as_ref() {
            Expr::Value(v) if matches!(v.value, Value::Number(..)) => {
                return Err(untranslatable(format!(
                    "value -{} for boolean (tinyint(1)) column {column}",
                    v.value
                )))
            }
            _ => return Ok(false),
        },
        Expr::Value(v) if !is_vetted(v) => match coerce_value(&v.value, kind, column)? {
            Some(e) => e,
            None => return Ok(false),
        },
        _ => return Ok(false),
    };
    *expr = replacement;
    Ok(true)
}

fn coerce_value(
    value: &Value,
    kind: &ColumnKind,
    column: &str,
) -> Result<Option<Expr>, TranslateError> {
    use ColumnKind as K;
    let out = match value {
        Value::Number(n, _) => match kind {
            K::Boolean => match n.as_str() {
                "0" => boolean_from(0, n, column)?,
                "1" => boolean_from(1, n, column)?,
                _ => boolean_from(2, n, column)?,
            },
            _ => return Ok(None),
        },
        Value::Boolean(b) => match kind {
            K::Number | K::Bit => number(u8::from(*b)),
            K::Text => string(if *b { "1" } else { "0" }),
            _ => lit(Value::Boolean(*b)),
        },
        Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::NationalStringLiteral(s) => {
            match kind {
                K::Binary { pad_to } => bytea(&padded(s.as_bytes().to_vec(), *pad_to)),
                K::Boolean => match s.trim() {
                    "0" => lit(Value::Boolean(false)),
                    "1" => lit(Value::Boolean(true)),
                    _ => {
                        return Err(untranslatable(format!(
                            "value '{s}' for boolean (tinyint(1)) column {column}"
                        )))
                    }
                },
                K::Set(members) => {
                    check_text(s, column)?;
                    string(normalize_set(s, members))
                }
                K::Enum(members) => {
                    check_text(s, column)?;
                    // MySQL matches enum members case-insensitively and stores
                    // the member's own spelling.
                    let m = members.iter().find(|m| m.eq_ignore_ascii_case(s));
                    string(m.cloned().unwrap_or_else(|| s.clone()))
                }
                K::Temporal | K::Timestamp | K::Other => {
                    check_text(s, column)?;
                    check_date(s, column)?;
                    string(s.clone())
                }
                K::Number | K::Bit | K::Text | K::Json => {
                    check_text(s, column)?;
                    string(s.clone())
                }
            }
        }
        Value::HexStringLiteral(h) => {
            let bytes = hex_bytes(h)?;
            let shown = format!("X'{h}'");
            match kind {
                K::Binary { pad_to } => bytea(&padded(bytes, *pad_to)),
                K::Text | K::Enum(_) | K::Set(_) | K::Json => utf8_text(bytes, column)?,
                K::Number | K::Bit => number(bytes_value(&bytes, &shown)?),
                K::Boolean => boolean_from(bytes_value(&bytes, &shown)?, &shown, column)?,
                K::Temporal | K::Timestamp | K::Other => bytea(&bytes),
            }
        }
        Value::SingleQuotedByteStringLiteral(bits) => match kind {
            K::Binary { pad_to } => bytea(&padded(bits_bytes(bits)?, *pad_to)),
            K::Text | K::Enum(_) | K::Set(_) => utf8_text(bits_bytes(bits)?, column)?,
            K::Boolean => boolean_from(bits_value(bits)?, &format!("b'{bits}'"), column)?,
            _ => number(bits_value(bits)?),
        },
        _ => return Ok(None),
    };
    Ok(Some(out))
}

/// The rules for a literal whose column is unknown: strings are checked
/// for NUL and zero dates, hex literals become bytea, bit literals numbers.
/// Returns the replacement, if any.
pub(super) fn check_value(v: &ValueWithSpan) -> Result<Option<Expr>, TranslateError> {
    if is_vetted(v) {
        return Ok(None);
    }
    match &v.value {
        Value::SingleQuotedString(s) => {
            check_text(s, "")?;
            check_date(s, "")?;
            match pg_string(s.clone()) {
                Value::SingleQuotedString(_) => Ok(None),
                escaped => Ok(Some(lit(escaped))),
            }
        }
        Value::DoubleQuotedString(s) | Value::NationalStringLiteral(s) => {
            check_text(s, "")?;
            check_date(s, "")?;
            Ok(Some(string(s.clone())))
        }
        Value::HexStringLiteral(h) => Ok(Some(bytea(&hex_bytes(h)?))),
        Value::SingleQuotedByteStringLiteral(bits) => Ok(Some(number(bits_value(bits)?))),
        Value::Number(..) | Value::Boolean(_) | Value::Null | Value::Placeholder(_) => Ok(None),
        other => Err(untranslatable(format!("literal {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: Value, kind: ColumnKind) -> String {
        let mut e = Expr::Value(ValueWithSpan {
            value: v,
            span: Span::new((1, 1).into(), (1, 2).into()),
        });
        match coerce(&mut e, &kind, "t.c") {
            Ok(true) => e.to_string(),
            Ok(false) => "unhandled".into(),
            Err(err) => err.to_string(),
        }
    }

    fn s(v: &str) -> Value {
        Value::SingleQuotedString(v.into())
    }

    #[test]
    fn booleans() {
        let b = ColumnKind::Boolean;
        assert_eq!(c(Value::Number("1".into(), false), b.clone()), "true");
        assert_eq!(c(Value::Number("0".into(), false), b.clone()), "false");
        assert_eq!(c(s("1"), b.clone()), "true");
        assert_eq!(
            c(Value::Number("2".into(), false), b.clone()),
            "untranslatable: value 2 for boolean (tinyint(1)) column t.c"
        );
        assert_eq!(c(Value::HexStringLiteral("01".into()), b.clone()), "true");
        assert_eq!(c(Value::Boolean(true), ColumnKind::Number), "1");
        assert_eq!(c(Value::Null, b), "unhandled");
    }

    #[test]
    fn binary_and_text() {
        let bin = ColumnKind::Binary { pad_to: None };
        assert_eq!(c(s("a\0b"), bin), "'\\x610062'::BYTEA");
        assert_eq!(
            c(s("ab"), ColumnKind::Binary { pad_to: Some(4) }),
            "'\\x61620000'::BYTEA"
        );
        assert_eq!(
            c(s("a\0b"), ColumnKind::Text),
            "untranslatable: NUL byte in a string literal for column t.c (PostgreSQL text cannot hold it)"
        );
        assert_eq!(
            c(Value::HexStringLiteral("4142".into()), ColumnKind::Text),
            "'AB'"
        );
        assert_eq!(
            c(Value::HexStringLiteral("ff".into()), ColumnKind::Number),
            "255"
        );
        assert_eq!(
            c(Value::HexStringLiteral("abc".into()), ColumnKind::Number),
            "2748"
        );
        assert_eq!(
            c(
                Value::SingleQuotedByteStringLiteral("101".into()),
                ColumnKind::Bit
            ),
            "5"
        );
        assert_eq!(
            c(
                Value::SingleQuotedByteStringLiteral("01000001".into()),
                ColumnKind::Text
            ),
            "'A'"
        );
        assert_eq!(c(s("it's"), ColumnKind::Text), "'it''s'");
        assert_eq!(c(s("back\\slash"), ColumnKind::Text), "'back\\slash'");
    }

    #[test]
    fn enums_sets_and_dates() {
        let set = ColumnKind::Set(vec!["x".into(), "y".into(), "z".into()]);
        assert_eq!(c(s("z,X,z"), set.clone()), "'x,z'");
        assert_eq!(c(s("q"), set), "'q'");
        let e = ColumnKind::Enum(vec!["Small".into(), "big".into()]);
        assert_eq!(c(s("small"), e), "'Small'");
        assert_eq!(
            c(s("0000-00-00 00:00:00"), ColumnKind::Temporal),
            "untranslatable: zero date '0000-00-00 00:00:00' for column t.c"
        );
        assert_eq!(
            c(s("2024-01-00"), ColumnKind::Temporal),
            "untranslatable: zero date '2024-01-00' for column t.c"
        );
        assert_eq!(c(s("0000-00-00"), ColumnKind::Text), "'0000-00-00'");
        assert_eq!(c(s("2024-02-29"), ColumnKind::Temporal), "'2024-02-29'");
    }

    #[test]
    fn helpers() {
        assert!(is_zero_date("0000-00-00"));
        assert!(!is_zero_date("2000-01-01"));
        assert!(!is_zero_date("abcd-00-00"));
        assert_eq!(bits_bytes("1").unwrap(), vec![1]);
        assert_eq!(bits_bytes("100000000").unwrap(), vec![1, 0]);
        assert!(bits_value(&"1".repeat(65)).is_err());
        assert!(hex_bytes("zz").is_err());
        assert_eq!(normalize_set("", &[]), "");
    }
}
