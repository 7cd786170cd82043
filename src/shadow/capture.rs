//! A copy of the authoritative backend's answer, taken while it is relayed
//! to the client, so the shadow comparison judges exactly what the client
//! saw. The relay only copies bytes (up to a budget); decoding happens later
//! on a shadow worker, off the client's path.

use std::sync::Arc;

use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use mysql_common::packets::Column;
use mysql_common::proto::{Binary, Text};
use mysql_common::row::RowDeserializer;
use mysql_common::value::ServerSide;

use crate::backend::value::mysql::{from_mysql, MysqlType};
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
        match ParseBuf(p).parse::<Column>(()) {
            Ok(c) if !binary || binary_decodable(c.column_type()) => columns.push(c),
            Ok(_) => return Decoded::Unsupported("column type without a binary decoder"),
            Err(_) => return Decoded::Unsupported("malformed column definition"),
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
