//! Values in MySQL's forms: the text the text protocol sends (as MariaDB
//! prints it: `1e300`, `1`/`0` for booleans, DATETIME with the declared
//! fractional digits, DECIMAL with its declared scale) and the binary
//! protocol's encoding for the column type that was declared.

use std::fmt::Write;

pub use super::numbers::{push_double, push_float, rescale};
use crate::value::pg_binary::Value;
use crate::value::temporal::civil_from_pg_days as civil_from_days;
pub use crate::value::temporal::push_time;
use crate::wire::buf::put_lenenc_bytes;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// MySQL's TIME range: ±838:59:59.999999.
const TIME_MAX_MICROS: i128 = 839 * 3_600_000_000 - 1;

/// The value form a MySQL column of the declared type takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// An integer of `size` bytes in the binary protocol (1, 2, 4 or 8); text
    /// is zero-padded to `zerofill` digits when the column is ZEROFILL.
    Int {
        size: u8,
        unsigned: bool,
        zerofill: Option<u32>,
    },
    /// DECIMAL printed with `scale` digits, or each value's own scale.
    Decimal {
        scale: Option<u8>,
    },
    /// FLOAT/DOUBLE; `decimals` when declared as FLOAT(M,D).
    Float {
        decimals: Option<u8>,
    },
    Double {
        decimals: Option<u8>,
    },
    /// BIT(M): the value as a big-endian integer of `bytes` bytes.
    Bit {
        bytes: u32,
    },
    Date,
    DateTime {
        fsp: u8,
    },
    Time {
        fsp: u8,
    },
    /// A string column: the MySQL-style text of the value.
    Str,
    /// A binary string column: as `Str`, but a uuid travels as its 16 bytes.
    Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("value out of range for the column's MySQL type")]
    OutOfRange,
    #[error("{0}")]
    Unrepresentable(&'static str),
}

/// Appends the text-protocol bytes of `v` (not length-prefixed) to `out`.
pub fn text(v: &Value<'_>, kind: Out, out: &mut Vec<u8>) -> Result<(), RenderError> {
    let mut s = String::new();
    match (kind, v) {
        (Out::Int { zerofill, .. }, _) => {
            let n = integer(v)?;
            match zerofill {
                Some(w) => {
                    let _ = write!(s, "{n:0w$}", w = w as usize);
                }
                None => {
                    let _ = write!(s, "{n}");
                }
            }
        }
        (Out::Decimal { scale }, _) => {
            let plain = match v {
                Value::Numeric(n) => n.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => u8::from(*b).to_string(),
                _ => return natural_text(v, out),
            };
            s = match scale {
                Some(scale) => rescale(&plain, scale),
                None => plain,
            };
        }
        (Out::Float { decimals }, _) => {
            let f = float(v)? as f32;
            match decimals {
                Some(d) => {
                    let _ = write!(s, "{:.*}", usize::from(d), f64::from(f));
                }
                None => push_float(&mut s, f),
            }
        }
        (Out::Double { decimals }, _) => {
            let f = float(v)?;
            match decimals {
                Some(d) => {
                    let _ = write!(s, "{f:.*}", usize::from(d));
                }
                None => push_double(&mut s, f),
            }
        }
        (Out::Bit { bytes }, _) => {
            out.extend_from_slice(&bit_bytes(v, bytes)?);
            return Ok(());
        }
        (Out::Date, Value::Date(d)) => push_date(&mut s, *d),
        (Out::Date, Value::Timestamp(t)) => match day_of(*t) {
            Some(d) => push_date(&mut s, d),
            None => push_infinity(&mut s, *t > 0),
        },
        (Out::DateTime { fsp }, Value::Timestamp(t)) => push_datetime(&mut s, *t, fsp, false),
        (Out::DateTime { fsp }, Value::Date(d)) => {
            match i64::from(*d).checked_mul(MICROS_PER_DAY) {
                Some(t) if *d != i32::MAX && *d != i32::MIN => push_datetime(&mut s, t, fsp, false),
                _ => push_infinity(&mut s, *d > 0),
            }
        }
        (Out::Time { fsp }, Value::Time(t)) => push_time(&mut s, *t, fsp, false),
        (
            Out::Time { fsp },
            Value::Interval {
                micros,
                days,
                months,
            },
        ) => match interval_micros(*micros, *days, *months) {
            Some(t) if t.abs() <= TIME_MAX_MICROS => push_time(&mut s, t as i64, fsp, false),
            _ => push_interval(&mut s, *micros, *days, *months),
        },
        (Out::Bytes, Value::Uuid(u)) => {
            out.extend_from_slice(u);
            return Ok(());
        }
        _ => return natural_text(v, out),
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The text MySQL would print for a value of the natural type.
fn natural_text(v: &Value<'_>, out: &mut Vec<u8>) -> Result<(), RenderError> {
    let mut s = String::new();
    match v {
        Value::Null => return Err(RenderError::Unrepresentable("NULL has no text")),
        Value::Bool(b) => s.push(if *b { '1' } else { '0' }),
        Value::Int(i) => {
            let _ = write!(s, "{i}");
        }
        Value::Float4(f) => push_float(&mut s, *f),
        Value::Float8(f) => push_double(&mut s, *f),
        Value::Numeric(n) => s.push_str(n),
        Value::Text(b) | Value::Bytes(b) => {
            out.extend_from_slice(b);
            return Ok(());
        }
        Value::Bits(..) => {
            out.extend_from_slice(&bit_bytes(v, 0)?);
            return Ok(());
        }
        Value::Date(d) => push_date(&mut s, *d),
        Value::Timestamp(t) => push_datetime(&mut s, *t, 6, true),
        Value::Time(t) => push_time(&mut s, *t, 6, true),
        Value::Interval {
            micros,
            days,
            months,
        } => match interval_micros(*micros, *days, *months) {
            Some(t) if t.abs() <= TIME_MAX_MICROS => push_time(&mut s, t as i64, 6, true),
            _ => push_interval(&mut s, *micros, *days, *months),
        },
        Value::Uuid(u) => push_uuid(&mut s, u),
        Value::Owned(o) => s.push_str(o),
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends the binary-protocol encoding of non-NULL `v` for a column declared
/// as `kind`. `scratch` is reused for length-prefixed values.
pub fn binary(
    v: &Value<'_>,
    kind: Out,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(), RenderError> {
    match kind {
        Out::Int { size, unsigned, .. } => {
            let n = integer(v)?;
            let (lo, hi): (i128, i128) = match (size, unsigned) {
                (1, false) => (i8::MIN.into(), i8::MAX.into()),
                (1, true) => (0, u8::MAX.into()),
                (2, false) => (i16::MIN.into(), i16::MAX.into()),
                (2, true) => (0, u16::MAX.into()),
                (4, false) => (i32::MIN.into(), i32::MAX.into()),
                (4, true) => (0, u32::MAX.into()),
                (_, false) => (i64::MIN.into(), i64::MAX.into()),
                (_, true) => (0, u64::MAX.into()),
            };
            if n < lo || n > hi {
                return Err(RenderError::OutOfRange);
            }
            out.extend_from_slice(&n.to_le_bytes()[..usize::from(size.clamp(1, 8))]);
        }
        Out::Float { .. } => out.extend_from_slice(&(float(v)? as f32).to_le_bytes()),
        Out::Double { .. } => out.extend_from_slice(&float(v)?.to_le_bytes()),
        Out::Date | Out::DateTime { .. } => {
            let (micros, fsp) = match (kind, v) {
                (_, Value::Date(d)) if *d == i32::MAX || *d == i32::MIN => (None, 0),
                (_, Value::Date(d)) => (Some(i64::from(*d) * MICROS_PER_DAY), 0),
                (Out::DateTime { fsp }, Value::Timestamp(t)) => (finite(*t), fsp),
                (_, Value::Timestamp(t)) => {
                    (finite(*t).map(|t| t - t.rem_euclid(MICROS_PER_DAY)), 0)
                }
                _ => return Err(RenderError::Unrepresentable("not a date")),
            };
            push_binary_datetime(out, micros, fsp);
        }
        Out::Time { fsp } => {
            let t = match v {
                Value::Time(t) => i128::from(*t),
                Value::Interval {
                    micros,
                    days,
                    months,
                } => {
                    interval_micros(*micros, *days, *months).ok_or(RenderError::Unrepresentable(
                        "an interval with months has no MySQL TIME form; cast it to text",
                    ))?
                }
                _ => return Err(RenderError::Unrepresentable("not a time")),
            };
            push_binary_time(out, t, fsp)?;
        }
        _ => {
            scratch.clear();
            text(v, kind, scratch)?;
            put_lenenc_bytes(out, scratch);
        }
    }
    Ok(())
}

/// An integer value as u64 (insert ids), if it is one.
pub fn as_u64(v: &Value<'_>) -> Option<u64> {
    integer(v).ok().and_then(|n| u64::try_from(n).ok())
}

fn integer(v: &Value<'_>) -> Result<i128, RenderError> {
    match v {
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Int(i) => Ok(i128::from(*i)),
        Value::Numeric(n) => {
            let r = rescale(n, 0);
            r.parse().map_err(|_| RenderError::OutOfRange)
        }
        _ => Err(RenderError::Unrepresentable("not an integer")),
    }
}

fn float(v: &Value<'_>) -> Result<f64, RenderError> {
    match v {
        Value::Float4(f) => Ok(f64::from(*f)),
        Value::Float8(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Numeric(n) => n
            .parse()
            .map_err(|_| RenderError::Unrepresentable("not a number")),
        _ => Err(RenderError::Unrepresentable("not a number")),
    }
}

/// A bit value as MySQL sends BIT(M): a big-endian integer of `bytes` bytes
/// (0: as many as the value needs). PostgreSQL keeps bit strings
/// left-aligned, so they are shifted right.
fn bit_bytes(v: &Value<'_>, bytes: u32) -> Result<Vec<u8>, RenderError> {
    let (n, natural): (u64, u32) = match v {
        Value::Bits(bits, raw) if *bits > 64 => return Ok(raw.to_vec()),
        Value::Bits(bits, raw) => {
            let mut acc: u128 = 0;
            for b in raw.iter().take(9) {
                acc = acc << 8 | u128::from(*b);
            }
            let stored = raw.len().min(9) as u32 * 8;
            (
                (acc >> stored.saturating_sub(*bits)) as u64,
                bits.div_ceil(8),
            )
        }
        Value::Bool(b) => (u64::from(*b), 1),
        Value::Int(i) => (*i as u64, 8),
        _ => return Err(RenderError::Unrepresentable("not a bit value")),
    };
    let be = n.to_be_bytes();
    let keep = if bytes == 0 { natural } else { bytes }.clamp(1, 8) as usize;
    Ok(be[8 - keep..].to_vec())
}

fn finite(t: i64) -> Option<i64> {
    (t != i64::MAX && t != i64::MIN).then_some(t)
}

fn day_of(t: i64) -> Option<i32> {
    finite(t).and_then(|t| i32::try_from(t.div_euclid(MICROS_PER_DAY)).ok())
}

fn push_infinity(out: &mut String, positive: bool) {
    out.push_str(if positive { "infinity" } else { "-infinity" });
}

/// `YYYY-MM-DD`; years before 1 get PostgreSQL's ` BC` form (MySQL has none).
fn push_date_part(out: &mut String, days: i32) -> bool {
    let (y, m, d) = civil_from_days(days);
    let bc = y <= 0;
    let _ = write!(out, "{:04}-{m:02}-{d:02}", if bc { 1 - y } else { y });
    bc
}

pub fn push_date(out: &mut String, days: i32) {
    if days == i32::MAX || days == i32::MIN {
        return push_infinity(out, days > 0);
    }
    if push_date_part(out, days) {
        out.push_str(" BC");
    }
}

/// `YYYY-MM-DD HH:MM:SS` plus `fsp` fractional digits (or, with `trim`, the
/// fraction only when nonzero).
pub fn push_datetime(out: &mut String, t: i64, fsp: u8, trim: bool) {
    let Some(day) = day_of(t) else {
        return push_infinity(out, t > 0);
    };
    let bc = push_date_part(out, day);
    out.push(' ');
    push_time(out, t.rem_euclid(MICROS_PER_DAY), fsp, trim);
    if bc {
        out.push_str(" BC");
    }
}

/// An interval without months as plain microseconds.
fn interval_micros(micros: i64, days: i32, months: i32) -> Option<i128> {
    (months == 0).then(|| i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(micros))
}

/// PostgreSQL's own interval output (IntervalStyle `postgres`), used when an
/// interval does not fit MySQL's TIME.
pub fn push_interval(out: &mut String, micros: i64, days: i32, months: i32) {
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut String, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    part(out, i64::from(months / 12), "year");
    part(out, i64::from(months % 12), "mon");
    part(out, i64::from(days), "day");
    if is_zero || micros != 0 {
        let sign = if micros < 0 {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        };
        let _ = write!(out, "{}{sign}", if is_zero { "" } else { " " });
        push_time(out, micros.unsigned_abs() as i64, 6, true);
    }
}

fn push_uuid(out: &mut String, u: &[u8; 16]) {
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
}

/// MySQL's binary DATETIME: length 0 (zero or unrepresentable date), 4 (date
/// only), 7 (with time) or 11 (with microseconds).
fn push_binary_datetime(out: &mut Vec<u8>, micros: Option<i64>, fsp: u8) {
    let parts = micros.and_then(|t| {
        let (y, m, d) = civil_from_days(i32::try_from(t.div_euclid(MICROS_PER_DAY)).ok()?);
        let tod = t.rem_euclid(MICROS_PER_DAY);
        Some((
            u16::try_from(y).ok().filter(|&y| y > 0)?,
            m as u8,
            d as u8,
            tod,
        ))
    });
    let Some((y, m, d, tod)) = parts else {
        out.push(0);
        return;
    };
    let secs = tod / 1_000_000;
    let (h, mi, s) = (
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
    );
    let unit = 10u32.pow(6 - u32::from(fsp.min(6)));
    let us = (tod % 1_000_000) as u32 / unit * unit;
    let len: u8 = if us != 0 {
        11
    } else if h != 0 || mi != 0 || s != 0 {
        7
    } else {
        4
    };
    out.push(len);
    out.extend_from_slice(&y.to_le_bytes());
    out.extend_from_slice(&[m, d]);
    if len >= 7 {
        out.extend_from_slice(&[h, mi, s]);
    }
    if len == 11 {
        out.extend_from_slice(&us.to_le_bytes());
    }
}

/// MySQL's binary TIME: length 0, 8 or 12; sign, days, h, m, s, µs.
fn push_binary_time(out: &mut Vec<u8>, t: i128, fsp: u8) -> Result<(), RenderError> {
    let a = t.unsigned_abs();
    let secs = a / 1_000_000;
    let days = u32::try_from(secs / 86_400).map_err(|_| RenderError::OutOfRange)?;
    let unit = 10u128.pow(6 - u32::from(fsp.min(6)));
    let us = (a % 1_000_000 / unit * unit) as u32;
    let (h, m, s) = (
        (secs / 3600 % 24) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
    );
    let len: u8 = if us != 0 {
        12
    } else if days != 0 || h != 0 || m != 0 || s != 0 {
        8
    } else {
        0
    };
    out.push(len);
    if len > 0 {
        out.push(u8::from(t < 0));
        out.extend_from_slice(&days.to_le_bytes());
        out.extend_from_slice(&[h, m, s]);
    }
    if len == 12 {
        out.extend_from_slice(&us.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
