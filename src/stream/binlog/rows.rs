//! WRITE/UPDATE/DELETE rows events (v1 as MariaDB logs them, v2 as MySQL
//! does) decoded into rows of the one value model.
//!
//! Each binlog value is read by hand from its packed form (the formats of
//! MySQL's `Field::pack` and the 5.6 temporal encodings), turned into the
//! `mysql_async::Value` a client would have received, and normalized by
//! `value::mysql::from_mysql` — the same function that reads SELECT results,
//! so a value from the stream equals the value a SELECT of the row returns.
//! Strings are converted from their column charset (latin1 is MySQL's
//! cp1252) to UTF-8 as a utf8mb4 client would see them; ENUM indexes and SET
//! bitmaps become member text; BINARY(n) gets its zero padding back.

use std::borrow::Cow;

use mysql_async::Value as M;

use crate::stream::RowChange;
use crate::value::mysql::{from_mysql, MysqlType};
use crate::value::{temporal, Row, Value};
use crate::wire::buf::Reader;

use super::event::{table_id, uncompress, ParseError};
use super::tablemap::ty;

/// How to decode one column's values.
#[derive(Debug, Clone)]
pub struct ColumnCodec {
    /// Real binlog type and its metadata (see `tablemap::MapColumn`).
    pub ty: u8,
    pub meta: u16,
    pub unsigned: bool,
    pub charset: Charset,
    /// ENUM/SET members, UTF-8.
    pub members: Vec<String>,
    pub value_type: MysqlType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8 compatible (utf8mb4, utf8mb3, ascii): bytes pass through.
    Utf8,
    /// MySQL latin1, which is Windows-1252.
    Latin1,
    /// Binary strings (BINARY/VARBINARY/BLOB).
    Binary,
    /// Anything else: bytes kept as they are.
    Other,
}

impl Charset {
    /// From a collation id (MariaDB's NO PAD variants are the id + 1024).
    pub fn from_collation(id: u16) -> Charset {
        let base = if (1024..2048).contains(&id) {
            id - 1024
        } else {
            id
        };
        match base {
            63 => Charset::Binary,
            5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => Charset::Latin1,
            _ => Charset::Utf8,
        }
    }

    /// From `information_schema.COLUMNS.CHARACTER_SET_NAME`.
    pub fn from_name(name: Option<&str>) -> Charset {
        match name {
            None | Some("binary") => Charset::Binary,
            Some("latin1") => Charset::Latin1,
            Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii") => Charset::Utf8,
            Some(_) => Charset::Other,
        }
    }

    /// The text a utf8mb4 client would receive for these stored bytes.
    pub fn decode(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Charset::Latin1 if !bytes.is_ascii() => {
                let s: String = bytes.iter().map(|&b| cp1252(b)).collect();
                s.into_bytes()
            }
            _ => bytes.to_vec(),
        }
    }
}

fn cp1252(b: u8) -> char {
    const HIGH: [u16; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    match b {
        0x80..=0x9f => HIGH
            .get(usize::from(b - 0x80))
            .and_then(|&c| char::from_u32(u32::from(c)))
            .unwrap_or(char::REPLACEMENT_CHARACTER),
        _ => char::from(b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Write,
    Update,
    Delete,
}

/// The fixed part of a rows event; `rows` walks the row images.
pub struct RowsEvent<'a> {
    pub table_id: u64,
    pub kind: RowsKind,
    columns: usize,
    present: &'a [u8],
    present_after: &'a [u8],
    data: Cow<'a, [u8]>,
}

impl<'a> RowsEvent<'a> {
    pub fn parse(
        body: &'a [u8],
        kind: RowsKind,
        v2: bool,
        compressed: bool,
        post_header_len: usize,
    ) -> Result<Self, ParseError> {
        let mut r = Reader::new(body);
        let id_len = if post_header_len == 6 { 4 } else { 6 };
        let table_id = table_id(&mut r, id_len).ok_or("short rows event")?;
        r.u16().ok_or("short rows event")?; // flags
        if v2 {
            let extra = r.u16().ok_or("short rows event")? as usize;
            r.take(extra.saturating_sub(2)).ok_or("short rows event")?;
        }
        let columns = r.lenenc_int().ok_or("short rows event")?;
        let columns = usize::try_from(columns).map_err(|_| "bad column count")?;
        let width = columns.div_ceil(8);
        let present = r.take(width).ok_or("short rows event bitmap")?;
        let present_after = if kind == RowsKind::Update {
            r.take(width).ok_or("short rows event bitmap")?
        } else {
            present
        };
        // MariaDB `log_bin_compress`: the row images are one compressed record.
        let data = if compressed {
            Cow::Owned(uncompress(r.remaining())?)
        } else {
            Cow::Borrowed(r.remaining())
        };
        Ok(RowsEvent {
            table_id,
            kind,
            columns,
            present,
            present_after,
            data,
        })
    }

    /// Decodes every row image.
    pub fn rows(&self, codecs: &[ColumnCodec]) -> Result<Vec<RowChange>, String> {
        if self.columns != codecs.len() {
            return Err(format!(
                "rows event has {} columns, its table map {}",
                self.columns,
                codecs.len()
            ));
        }
        let mut out = Vec::new();
        let mut r = Reader::new(&self.data);
        while !r.is_empty() {
            let change = match self.kind {
                RowsKind::Write => RowChange::Insert {
                    after: image(&mut r, self.present, codecs)?,
                },
                RowsKind::Delete => RowChange::Delete {
                    before: image(&mut r, self.present, codecs)?,
                },
                RowsKind::Update => RowChange::Update {
                    before: image(&mut r, self.present, codecs)?,
                    after: image(&mut r, self.present_after, codecs)?,
                },
            };
            out.push(change);
        }
        Ok(out)
    }
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
}

/// One row image: a NULL bitmap over the present columns, then the values.
fn image(r: &mut Reader<'_>, present: &[u8], codecs: &[ColumnCodec]) -> Result<Row, String> {
    let count = (0..codecs.len()).filter(|&i| bit(present, i)).count();
    if count != codecs.len() {
        return Err(
            "a row image lacks columns: the primary must run with binlog_row_image=FULL".into(),
        );
    }
    let nulls = r.take(count.div_ceil(8)).ok_or("truncated row image")?;
    let mut row = Vec::with_capacity(count);
    for (i, codec) in codecs.iter().enumerate() {
        if bit(nulls, i) {
            row.push(Value::Null);
        } else {
            row.push(value(r, codec).map_err(|e| format!("column {}: {e}", i + 1))?);
        }
    }
    Ok(row)
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

fn take<'a>(r: &mut Reader<'a>, n: usize) -> Result<&'a [u8], ParseError> {
    r.take(n).ok_or("truncated value")
}

/// Reads a value whose length prefix has `n` bytes.
fn prefixed<'a>(r: &mut Reader<'a>, n: usize) -> Result<&'a [u8], ParseError> {
    let len = le(take(r, n)?) as usize;
    take(r, len)
}

/// Bytes of the fractional part of a 5.6 temporal value with `fsp` digits.
fn frac_bytes(fsp: u16) -> Result<usize, ParseError> {
    match fsp {
        0 => Ok(0),
        1 | 2 => Ok(1),
        3 | 4 => Ok(2),
        5 | 6 => Ok(3),
        _ => Err("fractional seconds precision above 6"),
    }
}

/// The fraction in microseconds, from its unsigned big-endian bytes.
fn frac_micros(bytes: &[u8]) -> i64 {
    let v = be(bytes) as i64;
    match bytes.len() {
        1 => v * 10_000,
        2 => v * 100,
        _ => v,
    }
}

fn value(r: &mut Reader<'_>, c: &ColumnCodec) -> Result<Value, ParseError> {
    let raw = match c.ty {
        ty::TINY | ty::SHORT | ty::INT24 | ty::LONG | ty::LONGLONG => {
            let n = match c.ty {
                ty::TINY => 1,
                ty::SHORT => 2,
                ty::INT24 => 3,
                ty::LONG => 4,
                _ => 8,
            };
            let u = le(take(r, n)?);
            if c.unsigned {
                M::UInt(u)
            } else {
                let shift = 64 - 8 * n as u32;
                M::Int(((u << shift) as i64) >> shift)
            }
        }
        ty::FLOAT => M::Float(f32::from_bits(le(take(r, 4)?) as u32)),
        ty::DOUBLE => M::Double(f64::from_bits(le(take(r, 8)?))),
        ty::NEWDECIMAL => M::Bytes(decimal(
            r,
            (c.meta & 0xff) as usize,
            (c.meta >> 8) as usize,
        )?),
        ty::YEAR => {
            let y = take(r, 1)?[0];
            M::Int(if y == 0 { 0 } else { 1900 + i64::from(y) })
        }
        ty::DATE | ty::NEWDATE => {
            let v = le(take(r, 3)?);
            let (y, m, d) = ((v >> 9) as u16, ((v >> 5) & 15) as u8, (v & 31) as u8);
            date_value(y, m, d, 0, 0, 0, 0, None)
        }
        ty::DATETIME2 => {
            let packed = be(take(r, 5)?) as i64 - 0x80_0000_0000;
            let us = frac_micros(take(r, frac_bytes(c.meta)?)?);
            let ymd = packed >> 17;
            let ym = ymd >> 5;
            let hms = packed & 0x1_ffff;
            date_value(
                (ym / 13) as u16,
                (ym % 13) as u8,
                (ymd & 31) as u8,
                (hms >> 12) as u8,
                ((hms >> 6) & 63) as u8,
                (hms & 63) as u8,
                us as u32,
                Some(c.meta),
            )
        }
        ty::DATETIME => {
            let v = le(take(r, 8)?);
            let (d, t) = (v / 1_000_000, v % 1_000_000);
            date_value(
                (d / 10_000) as u16,
                (d / 100 % 100) as u8,
                (d % 100) as u8,
                (t / 10_000) as u8,
                (t / 100 % 100) as u8,
                (t % 100) as u8,
                0,
                Some(0),
            )
        }
        ty::TIMESTAMP2 | ty::TIMESTAMP => {
            let (secs, us, fsp) = if c.ty == ty::TIMESTAMP2 {
                let secs = be(take(r, 4)?) as i64;
                (secs, frac_micros(take(r, frac_bytes(c.meta)?)?), c.meta)
            } else {
                (le(take(r, 4)?) as i64, 0, 0)
            };
            if secs == 0 && us == 0 {
                date_value(0, 0, 0, 0, 0, 0, 0, Some(fsp))
            } else {
                let (y, m, d) = temporal::civil_from_days(secs.div_euclid(86_400));
                let s = secs.rem_euclid(86_400);
                M::Date(
                    y as u16,
                    m as u8,
                    d as u8,
                    (s / 3600) as u8,
                    (s / 60 % 60) as u8,
                    (s % 60) as u8,
                    us as u32,
                )
            }
        }
        ty::TIME2 => time2(r, c.meta)?,
        ty::TIME => {
            let v = le(take(r, 3)?) as i64;
            let v = (v << 40) >> 40; // sign-extend 24 bits
            let (neg, a) = (v < 0, v.unsigned_abs());
            let (h, m, s) = (a / 10_000, a / 100 % 100, a % 100);
            M::Time(neg, (h / 24) as u32, (h % 24) as u8, m as u8, s as u8, 0)
        }
        ty::BIT => {
            let n = usize::from(c.meta >> 8) + usize::from(c.meta & 0xff > 0);
            M::Bytes(take(r, n)?.to_vec())
        }
        ty::VARCHAR | ty::VAR_STRING => {
            let bytes = prefixed(r, if c.meta < 256 { 1 } else { 2 })?;
            M::Bytes(c.charset.decode(bytes))
        }
        ty::STRING => {
            let bytes = prefixed(r, if c.meta < 256 { 1 } else { 2 })?;
            if c.charset == Charset::Binary && bytes.len() < usize::from(c.meta) {
                // BINARY(n) is logged without its trailing zero bytes.
                let mut padded = bytes.to_vec();
                padded.resize(usize::from(c.meta), 0);
                M::Bytes(padded)
            } else {
                M::Bytes(c.charset.decode(bytes))
            }
        }
        ty::BLOB | ty::TINY_BLOB | ty::MEDIUM_BLOB | ty::LONG_BLOB | ty::GEOMETRY => {
            let n = usize::from(c.meta);
            if !(1..=4).contains(&n) {
                return Err("BLOB length prefix of a bad size");
            }
            M::Bytes(c.charset.decode(prefixed(r, n)?))
        }
        ty::ENUM => {
            let i = le(take(r, usize::from(c.meta).clamp(1, 2))?) as usize;
            let text = i
                .checked_sub(1)
                .and_then(|i| c.members.get(i))
                .map_or("", String::as_str);
            M::Bytes(text.as_bytes().to_vec())
        }
        ty::SET => {
            let bits = le(take(r, usize::from(c.meta).clamp(1, 8))?);
            let chosen: Vec<&str> = c
                .members
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 64 && bits >> i & 1 == 1)
                .map(|(_, m)| m.as_str())
                .collect();
            M::Bytes(chosen.join(",").into_bytes())
        }
        // MySQL 8's binary JSON (MariaDB logs JSON as LONGTEXT, a BLOB).
        ty::JSON => return Err("MySQL binary JSON columns are not decoded (unsupported)"),
        ty::NULL => M::NULL,
        _ => return Err("column type not supported by the binlog decoder"),
    };
    Ok(from_mysql(raw, c.value_type))
}

/// A DATE/DATETIME/TIMESTAMP value. Zero and partial dates have no
/// calendar value: they are passed as the text a SELECT prints, so they
/// normalize as a SELECT of them would. `fsp` is `None` for DATE.
#[allow(clippy::too_many_arguments)]
fn date_value(y: u16, m: u8, d: u8, h: u8, mi: u8, s: u8, us: u32, fsp: Option<u16>) -> M {
    if (1..=12).contains(&m) && d >= 1 {
        return M::Date(y, m, d, h, mi, s, us);
    }
    let mut text = format!("{y:04}-{m:02}-{d:02}");
    if let Some(fsp) = fsp {
        text.push_str(&format!(" {h:02}:{mi:02}:{s:02}"));
        if fsp > 0 {
            let frac = format!("{us:06}");
            text.push('.');
            text.push_str(frac.get(..usize::from(fsp.min(6))).unwrap_or(""));
        }
    }
    M::Bytes(text.into_bytes())
}

/// TIME2 (MySQL 5.6 format), negative values included.
fn time2(r: &mut Reader<'_>, fsp: u16) -> Result<M, ParseError> {
    const INT_OFS: i64 = 0x80_0000;
    let packed: i64 = match fsp {
        0 => (be(take(r, 3)?) as i64 - INT_OFS) << 24,
        1 | 2 => {
            let mut int = be(take(r, 3)?) as i64 - INT_OFS;
            let mut frac = be(take(r, 1)?) as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut int = be(take(r, 3)?) as i64 - INT_OFS;
            let mut frac = be(take(r, 2)?) as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        5 | 6 => be(take(r, 6)?) as i64 - 0x8000_0000_0000,
        _ => return Err("fractional seconds precision above 6"),
    };
    let neg = packed < 0;
    let a = packed.unsigned_abs();
    let us = (a % (1 << 24)) as u32;
    let hms = a >> 24;
    let (h, m, s) = ((hms >> 12) % (1 << 10), (hms >> 6) % 64, hms % 64);
    Ok(M::Time(
        neg,
        (h / 24) as u32,
        (h % 24) as u8,
        m as u8,
        s as u8,
        us,
    ))
}

/// NEWDECIMAL's packed binary form into decimal text.
fn decimal(r: &mut Reader<'_>, precision: usize, scale: usize) -> Result<Vec<u8>, ParseError> {
    const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    if precision > 65 || scale > 30 || scale > precision {
        return Err("DECIMAL precision/scale out of range");
    }
    let intg = precision - scale;
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (scale / 9, scale % 9);
    let size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
    let mut b = take(r, size)?.to_vec();
    let Some(first) = b.first_mut() else {
        return Ok(b"0".to_vec());
    };
    let negative = *first & 0x80 == 0;
    *first ^= 0x80;
    if negative {
        b.iter_mut().for_each(|x| *x = !*x);
    }
    let mut out = String::with_capacity(precision + 3);
    if negative {
        out.push('-');
    }
    let mut at = 0;
    let mut group = |n: usize, digits: usize, out: &mut String| {
        let v = be(&b[at..at + n]);
        at += n;
        out.push_str(&format!("{v:0digits$}"));
    };
    if intg0x > 0 {
        group(DIG2BYTES[intg0x], intg0x, &mut out);
    }
    for _ in 0..intg0 {
        group(4, 9, &mut out);
    }
    out.push('.');
    for _ in 0..frac0 {
        group(4, 9, &mut out);
    }
    if frac0x > 0 {
        group(DIG2BYTES[frac0x], frac0x, &mut out);
    }
    Ok(out.into_bytes())
}
