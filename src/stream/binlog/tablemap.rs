//! TABLE_MAP events: which table a table id stands for, each column's binlog
//! type and type metadata, and — with `binlog_row_metadata=FULL` — column
//! names, signedness, charsets, ENUM/SET members and the primary key.
//!
//! The binlog type of a column is not always its SQL type: CHAR, ENUM and
//! SET all arrive as `MYSQL_TYPE_STRING` with the real type folded into the
//! metadata, which [`MapColumn`] unfolds.

use crate::wire::buf::Reader;

use super::event::{table_id, ParseError};

/// Binlog column type codes (`enum_field_types`).
pub mod ty {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// One column as the table map describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapColumn {
    /// The real type (ENUM/SET/STRING unfolded from STRING's metadata).
    pub ty: u8,
    /// Type metadata: FLOAT/DOUBLE/BLOB/JSON/GEOMETRY pack length;
    /// VARCHAR max bytes; BIT `bits%8 | bytes<<8`; NEWDECIMAL
    /// `precision | scale<<8`; STRING/ENUM/SET max bytes or pack length;
    /// TIME2/DATETIME2/TIMESTAMP2 fractional digits.
    pub meta: u16,
    pub nullable: bool,
    /// From the SIGNEDNESS metadata (numeric columns only).
    pub unsigned: Option<bool>,
    /// Collation id from the charset metadata (character, ENUM, SET columns).
    pub collation: Option<u16>,
    /// ENUM/SET members from the metadata, in the column's charset.
    pub members: Option<Vec<Vec<u8>>>,
}

impl MapColumn {
    fn is_numeric(&self) -> bool {
        use ty::*;
        matches!(
            self.ty,
            TINY | SHORT | INT24 | LONG | LONGLONG | DECIMAL | NEWDECIMAL | FLOAT | DOUBLE | YEAR
        )
    }

    fn is_character(&self) -> bool {
        use ty::*;
        matches!(
            self.ty,
            STRING | VAR_STRING | VARCHAR | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB
        )
    }

    fn is_enum_or_set(&self) -> bool {
        matches!(self.ty, ty::ENUM | ty::SET)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub table_id: u64,
    pub database: String,
    pub table: String,
    pub columns: Vec<MapColumn>,
    /// Column names (empty without `binlog_row_metadata=FULL`).
    pub names: Vec<String>,
    /// Primary key column positions (empty if unknown or none).
    pub primary_key: Vec<usize>,
}

/// Upper bound on a table's column count (MySQL allows 4096).
const MAX_COLUMNS: u64 = 4096;

pub fn parse(body: &[u8], post_header_len: usize) -> Result<TableMap, ParseError> {
    let mut r = Reader::new(body);
    let id_len = if post_header_len == 6 { 4 } else { 6 };
    let table_id = table_id(&mut r, id_len).ok_or("short table map")?;
    r.take(post_header_len.saturating_sub(id_len))
        .ok_or("short table map")?;
    let db_len = r.u8().ok_or("short table map")? as usize;
    let database = String::from_utf8_lossy(r.take(db_len).ok_or("short table map")?).into_owned();
    r.u8().ok_or("short table map")?;
    let t_len = r.u8().ok_or("short table map")? as usize;
    let table = String::from_utf8_lossy(r.take(t_len).ok_or("short table map")?).into_owned();
    r.u8().ok_or("short table map")?;
    let n = r.lenenc_int().ok_or("short table map")?;
    if n > MAX_COLUMNS {
        return Err("table map with more than 4096 columns");
    }
    let n = n as usize;
    let types = r.take(n).ok_or("short table map column types")?;
    let meta_block = r.lenenc_bytes().ok_or("short table map metadata")?;
    let nulls = r.take(n.div_ceil(8)).ok_or("short table map null bitmap")?;
    let mut meta = Reader::new(meta_block);
    let mut columns = Vec::with_capacity(n);
    for (i, &t) in types.iter().enumerate() {
        let (real, m) = column_meta(t, &mut meta).ok_or("short column metadata")?;
        columns.push(MapColumn {
            ty: real,
            meta: m,
            nullable: bit_lsb(nulls, i),
            unsigned: None,
            collation: None,
            members: None,
        });
    }
    let mut map = TableMap {
        table_id,
        database,
        table,
        columns,
        names: Vec::new(),
        primary_key: Vec::new(),
    };
    optional_metadata(&mut map, r.remaining()).ok_or("malformed optional table map metadata")?;
    if !map.names.is_empty() && map.names.len() != n {
        return Err("table map names do not match its column count");
    }
    Ok(map)
}

fn column_meta(t: u8, r: &mut Reader<'_>) -> Option<(u8, u16)> {
    use ty::*;
    Some(match t {
        FLOAT | DOUBLE | BLOB | TINY_BLOB | MEDIUM_BLOB | LONG_BLOB | JSON | GEOMETRY
        | TIMESTAMP2 | DATETIME2 | TIME2 => (t, u16::from(r.u8()?)),
        VARCHAR | VAR_STRING => (t, r.u16()?),
        BIT | NEWDECIMAL => {
            let a = r.u8()?;
            let b = r.u8()?;
            (t, u16::from(a) | u16::from(b) << 8)
        }
        STRING | ENUM | SET => {
            let b0 = r.u8()?;
            let b1 = r.u8()?;
            if b0 & 0x30 != 0x30 {
                // A CHAR longer than 255 bytes: two length bits hide in b0.
                let len = u16::from(b1) | (u16::from((b0 & 0x30) ^ 0x30) << 4);
                (b0 | 0x30, len)
            } else {
                (b0, u16::from(b1))
            }
        }
        _ => (t, 0),
    })
}

fn bit_lsb(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
}

fn bit_msb(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b << (i % 8) & 0x80 != 0)
}

/// Applies the optional metadata fields (type, length, value triples).
fn optional_metadata(map: &mut TableMap, mut rest: &[u8]) -> Option<()> {
    let positions = |pred: fn(&MapColumn) -> bool, cols: &[MapColumn]| -> Vec<usize> {
        cols.iter()
            .enumerate()
            .filter(|(_, c)| pred(c))
            .map(|(i, _)| i)
            .collect()
    };
    let numeric = positions(MapColumn::is_numeric, &map.columns);
    let character = positions(MapColumn::is_character, &map.columns);
    let enum_set = positions(MapColumn::is_enum_or_set, &map.columns);
    let enums = positions(|c| c.ty == ty::ENUM, &map.columns);
    let sets = positions(|c| c.ty == ty::SET, &map.columns);
    while !rest.is_empty() {
        let mut r = Reader::new(rest);
        let field = r.u8()?;
        let value = r.lenenc_bytes()?;
        rest = r.remaining();
        let mut v = Reader::new(value);
        match field {
            1 => {
                for (k, &i) in numeric.iter().enumerate() {
                    map.columns[i].unsigned = Some(bit_msb(value, k));
                }
            }
            2 | 10 => {
                let which = if field == 2 { &character } else { &enum_set };
                let default = u16::try_from(v.lenenc_int()?).ok()?;
                for &i in which {
                    map.columns[i].collation = Some(default);
                }
                while !v.is_empty() {
                    let k = usize::try_from(v.lenenc_int()?).ok()?;
                    let c = u16::try_from(v.lenenc_int()?).ok()?;
                    let i = *which.get(k)?;
                    map.columns[i].collation = Some(c);
                }
            }
            3 | 11 => {
                let which = if field == 3 { &character } else { &enum_set };
                for &i in which {
                    map.columns[i].collation = Some(u16::try_from(v.lenenc_int()?).ok()?);
                }
            }
            4 => {
                for _ in 0..map.columns.len() {
                    map.names
                        .push(String::from_utf8_lossy(v.lenenc_bytes()?).into_owned());
                }
            }
            5 | 6 => {
                let which = if field == 5 { &sets } else { &enums };
                for &i in which {
                    let count = v.lenenc_int()?;
                    if count > 65_535 {
                        return None;
                    }
                    let mut members = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        members.push(v.lenenc_bytes()?.to_vec());
                    }
                    map.columns[i].members = Some(members);
                }
            }
            8 => {
                while !v.is_empty() {
                    let i = usize::try_from(v.lenenc_int()?).ok()?;
                    (i < map.columns.len()).then_some(())?;
                    map.primary_key.push(i);
                }
            }
            9 => {
                while !v.is_empty() {
                    let i = usize::try_from(v.lenenc_int()?).ok()?;
                    v.lenenc_int()?; // prefix length
                    (i < map.columns.len()).then_some(())?;
                    map.primary_key.push(i);
                }
            }
            _ => {} // geometry types, visibility, …: not needed
        }
    }
    Some(())
}
