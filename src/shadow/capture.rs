//! A copy of the authoritative backend's answer, taken while it is relayed
//! to the client, so the shadow comparison judges exactly what the client
//! saw. The relay only copies bytes (up to a budget); decoding happens later
//! on a shadow worker, off the client's path.

use std::sync::Arc;

use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;
use mysql_common::packets::Column;
use mysql_common::proto::{Binary, Text};
use mysql_common::row::RowDeserializer;
use mysql_common::value::ServerSide;

use crate::value::mysql::{from_mysql, MysqlType};
use crate::wire::packets::{ServerError, ERR as ERR_HEADER};
use crate::wire::MAX_PAYLOAD;

use super::compare::Collected;
use super::log::SideError;

/// Raw response packets, each prefixed with its length (u32 LE).
#[derive(Debug, Default)]
pub struct Capture {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    /// Records one physical packet of the response.
    pub fn push(&mut self, payload: &[u8]) {
        if self.overflowed {
            return;
        }
        if payload.len() >= MAX_PAYLOAD || self.buf.len() + payload.len() + 4 > self.limit {
            // Too large to keep: the worker re-runs the statement instead.
            self.overflowed = true;
            self.buf = Vec::new();
            return;
        }
        self.buf
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(payload);
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn packets(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.buf[..];
        std::iter::from_fn(move || {
            let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let packet = rest.get(4..4 + len)?;
            rest = &rest[4 + len..];
            Some(packet)
        })
    }
}

/// What a captured response holds, for comparison.
#[derive(Debug)]
pub enum Decoded {
    Rows(Collected),
    Error(SideError),
    /// Not one result set (an OK without rows, several results, a type the
    /// decoder does not take): not compared.
    Unsupported(&'static str),
}

/// Column types whose binary encoding `mysql_common` cannot decode (it
/// panics on them); a server never sends them in result metadata, but the
/// bytes came from the network.
fn binary_decodable(ty: ColumnType) -> bool {
    !matches!(
        ty,
        ColumnType::MYSQL_TYPE_TIMESTAMP2
            | ColumnType::MYSQL_TYPE_DATETIME2
            | ColumnType::MYSQL_TYPE_TIME2
            | ColumnType::MYSQL_TYPE_TYPED_ARRAY
            | ColumnType::MYSQL_TYPE_UNKNOWN
    )
}

/// Parses a column definition, with or without MariaDB's extended metadata
/// (`MARIADB_CLIENT_EXTENDED_METADATA`: a length-encoded block after the
/// names, which `mysql_common`'s parser does not expect).
fn parse_column(p: &[u8]) -> Option<Column> {
    /// 0x0c, charset, length, type, flags, decimals, filler.
    const FIXED: usize = 13;
    let mut r = crate::wire::buf::Reader::new(p);
    let _catalog = r.lenenc_bytes()?;
    let schema = r.lenenc_bytes()?;
    let table = r.lenenc_bytes()?;
    let org_table = r.lenenc_bytes()?;
    let name = r.lenenc_bytes()?;
    let org_name = r.lenenc_bytes()?;
    if r.remaining().len() != FIXED {
        let _extended = r.lenenc_bytes()?;
    }
    let fixed = r.take(FIXED)?;
    if fixed[0] != 0x0c {
        return None;
    }
    let charset = u16::from_le_bytes([fixed[1], fixed[2]]);
    let length = u32::from_le_bytes([fixed[3], fixed[4], fixed[5], fixed[6]]);
    let ty = ColumnType::try_from(fixed[7]).ok()?;
    let flags = ColumnFlags::from_bits_truncate(u16::from_le_bytes([fixed[8], fixed[9]]));
    Some(
        Column::new(ty)
            .with_schema(schema)
            .with_table(table)
            .with_org_table(org_table)
            .with_name(name)
            .with_org_name(org_name)
            .with_character_set(charset)
            .with_column_length(length)
            .with_flags(flags)
            .with_decimals(fixed[10]),
    )
}

/// Decodes a captured text (`binary = false`) or binary-protocol result.
pub fn decode(capture: &Capture, binary: bool, deprecate_eof: bool, max_rows: usize) -> Decoded {
    let mut packets = capture.packets();
    let Some(first) = packets.next() else {
        return Decoded::Unsupported("empty response");
    };
    match first.first() {
        Some(&ERR_HEADER) => {
            return match ServerError::parse(first) {
                Some(e) => Decoded::Error(SideError {
                    code: e.code,
                    message: e.message,
                }),
                None => Decoded::Unsupported("malformed error packet"),
            }
        }
        Some(0x00) | None => return Decoded::Unsupported("no result set"),
        _ => {}
    }
    let mut r = crate::wire::buf::Reader::new(first);
    let Some(count) = r.lenenc_int() else {
        return Decoded::Unsupported("malformed column count");
    };
    let mut columns = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let Some(p) = packets.next() else {
            return Decoded::Unsupported("truncated metadata");
        };
        match parse_column(p) {
            Some(c) if !binary || binary_decodable(c.column_type()) => columns.push(c),
            Some(_) => return Decoded::Unsupported("column type without a binary decoder"),
            None => return Decoded::Unsupported("malformed column definition"),
        }
    }
    if !deprecate_eof {
        packets.next();
    }
    let types: Vec<MysqlType> = columns.iter().map(MysqlType::from_column).collect();
    let names = columns.iter().map(|c| c.name_str().into_owned()).collect();
    let columns: Arc<[Column]> = columns.into();
    let mut out = Collected::new(names, max_rows);
    for p in packets {
        match p.first() {
            Some(&ERR_HEADER) => {
                // Failed mid-stream: the client saw an error.
                return match ServerError::parse(p) {
                    Some(e) => Decoded::Error(SideError {
                        code: e.code,
                        message: e.message,
                    }),
                    None => Decoded::Unsupported("malformed error packet"),
                };
            }
            Some(0xFE) if p.len() < 9 || (deprecate_eof && p.len() < MAX_PAYLOAD) => {
                let status = terminator_status(p, deprecate_eof);
                if status & crate::wire::StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0 {
                    return Decoded::Unsupported("several result sets");
                }
                return Decoded::Rows(out);
            }
            _ => {}
        }
        let row = if binary {
            ParseBuf(p)
                .parse::<RowDeserializer<ServerSide, Binary>>(columns.clone())
                .map(RowDeserializer::into_inner)
        } else {
            ParseBuf(p)
                .parse::<RowDeserializer<ServerSide, Text>>(columns.clone())
                .map(RowDeserializer::into_inner)
        };
        let Ok(row) = row else {
            return Decoded::Unsupported("malformed row");
        };
        out.push(
            row.unwrap()
                .into_iter()
                .zip(&types)
                .map(|(v, ty)| from_mysql(v, *ty))
                .collect(),
        );
    }
    Decoded::Unsupported("truncated response")
}

/// Status flags of an EOF (`FE warnings status`) or an OK-style terminator
/// (`FE affected last_id status …`).
fn terminator_status(p: &[u8], deprecate_eof: bool) -> u16 {
    let mut r = crate::wire::buf::Reader::new(&p[1..]);
    if deprecate_eof {
        let _ = r.lenenc_int();
        let _ = r.lenenc_int();
        r.u16().unwrap_or(0)
    } else {
        let _ = r.u16();
        r.u16().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn lenenc(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    fn column(name: &str, ty: u8, flags: u16, length: u32, extended: Option<&[u8]>) -> Vec<u8> {
        let mut p = Vec::new();
        for part in [
            &b"def"[..],
            b"db",
            b"t",
            b"t",
            name.as_bytes(),
            name.as_bytes(),
        ] {
            lenenc(&mut p, part);
        }
        if let Some(ext) = extended {
            lenenc(&mut p, ext);
        }
        p.push(0x0c);
        p.extend_from_slice(&45u16.to_le_bytes());
        p.extend_from_slice(&length.to_le_bytes());
        p.push(ty);
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        p
    }

    fn capture(packets: &[Vec<u8>]) -> Capture {
        let mut c = Capture::new(1 << 20);
        packets.iter().for_each(|p| c.push(p));
        c
    }

    #[test]
    fn text_result_with_and_without_extended_metadata() {
        for ext in [None, Some(&b"\x00\x04json"[..])] {
            let mut row = Vec::new();
            lenenc(&mut row, b"7");
            row.push(0xfb);
            let packets = vec![
                vec![2],
                column("id", 3, 0, 11, ext),
                column("flag", 1, 0, 1, ext),
                row,
                vec![0xfe, 0, 0, 0x02, 0, 0, 0],
            ];
            match decode(&capture(&packets), false, true, 10) {
                Decoded::Rows(c) => {
                    assert_eq!(c.columns, ["id", "flag"]);
                    assert_eq!(c.rows, vec![vec![Value::Int(7), Value::Null]]);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn errors_and_overflow() {
        let err = ServerError::new(1146, b"42S02", "Table 'x' doesn't exist").encode();
        match decode(&capture(&[err]), false, true, 10) {
            Decoded::Error(e) => assert_eq!(e.code, 1146),
            other => panic!("{other:?}"),
        }
        let mut small = Capture::new(10);
        small.push(&[0u8; 20]);
        assert!(small.overflowed());
        let more = vec![1, 0, 0, 0x0a, 0, 0, 0];
        assert!(matches!(
            decode(
                &capture(&[vec![1], column("a", 3, 0, 11, None), more]),
                false,
                true,
                10
            ),
            Decoded::Unsupported(_)
        ));
    }
}
