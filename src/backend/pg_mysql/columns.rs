//! Column definitions as MySQL would send them, and the value form each
//! column's values take.
//!
//! A result column's MySQL type is its hint (the MySQL schema's COLUMN_TYPE)
//! when the hint fits the PostgreSQL type, otherwise the PostgreSQL type's
//! natural MySQL counterpart. Flags for nullability, keys and auto-increment
//! come from the hint when it carries them, else from the PostgreSQL catalog.
//! The numbers below (lengths, flags, decimals) were read from MariaDB 10.11
//! for each column type.

use tokio_postgres::types::{Kind, Type};

use super::hints::{ColumnAttrs, MysqlColumnType, MysqlKind};
use super::render::Out;
use crate::value::pg_binary::PgFamily;
use crate::wire::buf::put_lenenc_bytes;

pub mod ty {
    pub const TINY: u8 = 0x01;
    pub const SHORT: u8 = 0x02;
    pub const LONG: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const NULL: u8 = 0x06;
    pub const TIMESTAMP: u8 = 0x07;
    pub const LONGLONG: u8 = 0x08;
    pub const INT24: u8 = 0x09;
    pub const DATE: u8 = 0x0a;
    pub const TIME: u8 = 0x0b;
    pub const DATETIME: u8 = 0x0c;
    pub const YEAR: u8 = 0x0d;
    pub const BIT: u8 = 0x10;
    pub const JSON: u8 = 0xf5;
    pub const NEWDECIMAL: u8 = 0xf6;
    pub const BLOB: u8 = 0xfc;
    pub const VAR_STRING: u8 = 0xfd;
    pub const STRING: u8 = 0xfe;
}

pub mod flag {
    pub const NOT_NULL: u16 = 1;
    pub const PRI_KEY: u16 = 2;
    pub const UNIQUE_KEY: u16 = 4;
    pub const MULTIPLE_KEY: u16 = 8;
    pub const BLOB: u16 = 16;
    pub const UNSIGNED: u16 = 32;
    pub const ZEROFILL: u16 = 64;
    pub const BINARY: u16 = 128;
    pub const ENUM: u16 = 256;
    pub const AUTO_INCREMENT: u16 = 512;
    pub const SET: u16 = 2048;
    pub const NO_DEFAULT_VALUE: u16 = 4096;
    pub const PART_KEY: u16 = 16384;
}

/// The `binary` collation: numbers, dates and byte strings.
pub const BINARY_CHARSET: u16 = 63;

/// One column definition packet's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub schema: String,
    pub table: String,
    pub org_table: String,
    pub name: String,
    pub org_name: String,
    pub charset: u16,
    pub length: u32,
    pub column_type: u8,
    pub flags: u16,
    pub decimals: u8,
    /// MariaDB extended metadata: data type name (`uuid`) and format (`json`).
    pub type_name: Option<&'static str>,
    pub format: Option<&'static str>,
}

impl ColumnDef {
    /// Appends the packet payload. `extended` when the client negotiated
    /// MARIADB_CLIENT_EXTENDED_METADATA (an extra block after org_name).
    pub fn encode(&self, extended: bool, out: &mut Vec<u8>) {
        for s in [
            "def",
            &self.schema,
            &self.table,
            &self.org_table,
            &self.name,
            &self.org_name,
        ] {
            put_lenenc_bytes(out, s.as_bytes());
        }
        if extended {
            let mut ext = Vec::new();
            if let Some(t) = self.type_name {
                ext.push(0);
                put_lenenc_bytes(&mut ext, t.as_bytes());
            }
            if let Some(f) = self.format {
                ext.push(1);
                put_lenenc_bytes(&mut ext, f.as_bytes());
            }
            put_lenenc_bytes(out, &ext);
        }
        out.push(0x0c);
        out.extend_from_slice(&self.charset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.push(self.column_type);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.push(self.decimals);
        out.extend_from_slice(&[0, 0]);
    }

    /// A prepared statement's parameter, as MariaDB describes one.
    pub fn param() -> Self {
        Self {
            schema: String::new(),
            table: String::new(),
            org_table: String::new(),
            name: "?".into(),
            org_name: String::new(),
            charset: BINARY_CHARSET,
            length: 0,
            column_type: ty::NULL,
            flags: flag::BINARY,
            decimals: 0,
            type_name: None,
            format: None,
        }
    }
}

/// Where a result column came from: its table and column and the catalog's
/// facts about it. `None` for expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub table: String,
    pub column: String,
    pub attrs: ColumnAttrs,
}

/// Everything needed to send one result column: its definition, how to read
/// its PostgreSQL values and what MySQL form they take.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub def: ColumnDef,
    pub family: PgFamily,
    pub out: Out,
}

/// Per-request context of column definitions.
#[derive(Debug, Clone, Copy)]
pub struct DefContext<'a> {
    /// The MySQL database name reported for table columns.
    pub schema: &'a str,
    /// The client's connection collation: text columns report it, and their
    /// lengths scale with its bytes per character (as MariaDB converts).
    pub collation: u16,
}

/// Plans one result column. `Err` names a PostgreSQL type with no MySQL form.
pub fn plan(
    name: &str,
    pg_type: &Type,
    typmod: i32,
    origin: Option<&Origin>,
    hint: Option<MysqlColumnType>,
    ctx: DefContext<'_>,
) -> Result<ColumnPlan, String> {
    let family = PgFamily::of(pg_type).ok_or_else(|| pg_type.name().to_string())?;
    let mysql = hint
        .filter(|h| compatible(family, h.kind))
        .unwrap_or_else(|| natural(pg_type, family, typmod));
    let attrs = mysql.attrs.or(origin.map(|o| o.attrs));
    let mut def = describe(&mysql, ctx.collation);
    if let Some(a) = attrs {
        def.flags |= attr_flags(a);
    }
    if matches!(family, PgFamily::Json | PgFamily::Jsonb) && mysql.kind != MysqlKind::Json {
        def.format = Some("json");
    }
    def.name = name.to_string();
    if let Some(o) = origin {
        def.schema = ctx.schema.to_string();
        def.table = o.table.clone();
        def.org_table = o.table.clone();
        def.org_name = o.column.clone();
    }
    Ok(ColumnPlan {
        def,
        family,
        out: out_form(&mysql),
    })
}

fn attr_flags(a: ColumnAttrs) -> u16 {
    let mut f = 0;
    let mut set = |on: bool, bit: u16| {
        if on {
            f |= bit;
        }
    };
    set(a.not_null, flag::NOT_NULL);
    set(a.keys.primary, flag::PRI_KEY);
    set(a.keys.unique, flag::UNIQUE_KEY);
    set(a.keys.multiple, flag::MULTIPLE_KEY);
    set(a.keys.part, flag::PART_KEY);
    set(a.auto_increment, flag::AUTO_INCREMENT);
    set(
        a.not_null && !a.has_default && !a.auto_increment,
        flag::NO_DEFAULT_VALUE,
    );
    f
}

/// Can values of `family` be sent as a MySQL column of `kind`?
fn compatible(family: PgFamily, kind: MysqlKind) -> bool {
    use MysqlKind as K;
    use PgFamily as F;
    let int = matches!(family, F::Int2 | F::Int4 | F::Int8 | F::Oid);
    match kind {
        K::Tiny(_) | K::Short(_) | K::Int24(_) | K::Long(_) | K::LongLong(_) | K::Year => {
            int || matches!(family, F::Bool | F::Numeric)
        }
        K::Decimal(..) | K::DecimalAny => int || family == F::Numeric,
        K::Float(_) | K::Double(_) => int || matches!(family, F::Float4 | F::Float8 | F::Numeric),
        K::Bit(_) => int || matches!(family, F::Bits | F::Bool),
        K::Date | K::DateTime(_) | K::Timestamp(_) => {
            matches!(family, F::Date | F::Timestamp | F::TimestampTz)
        }
        K::Time(_) => matches!(family, F::Time | F::Interval),
        // Anything has a text form; byte strings also take bytea and uuid.
        _ => true,
    }
}

/// The MySQL type a PostgreSQL column would have had, for columns without a
/// (usable) hint. `typmod` is PostgreSQL's type modifier (-1 when none).
pub fn natural(pg_type: &Type, family: PgFamily, typmod: i32) -> MysqlColumnType {
    use MysqlKind as K;
    use PgFamily as F;
    let chars = || u32::try_from(typmod - 4).ok().filter(|_| typmod >= 4);
    let precision = || u8::try_from(typmod).ok().filter(|p| *p <= 6).unwrap_or(6);
    let mut unsigned = false;
    let mut binary_collation = false;
    let kind = match family {
        F::Bool => K::Tiny(1),
        F::Int2 => K::Short(6),
        F::Int4 => K::Long(11),
        F::Int8 => K::LongLong(20),
        F::Oid => {
            unsigned = true;
            K::Long(10)
        }
        F::Float4 => K::Float(None),
        F::Float8 => K::Double(None),
        F::Numeric => match u32::try_from(typmod - 4).ok().filter(|_| typmod >= 4) {
            Some(t) => K::Decimal(t >> 16, (t & 0xffff).min(38) as u8),
            None => K::DecimalAny,
        },
        F::Text => match pg_type.kind() {
            Kind::Enum(labels) => {
                K::Enum(labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32)
            }
            _ if *pg_type == Type::VARCHAR => chars().map_or(K::Text(u32::MAX), K::VarChar),
            _ if *pg_type == Type::NAME => K::VarChar(64),
            _ if *pg_type == Type::CHAR => K::Char(1),
            _ => K::Text(u32::MAX),
        },
        F::BpChar => chars().map_or(K::Text(u32::MAX), K::Char),
        F::Json | F::Jsonb => {
            // MariaDB's JSON: LONGTEXT with a binary collation.
            binary_collation = true;
            K::Text(u32::MAX)
        }
        F::Bytea => K::Blob(u32::MAX),
        // Without a declared length (varbit, B'…' literals): Bit(0), sized
        // by each value.
        F::Bits => K::Bit(u32::try_from(typmod).ok().filter(|n| *n > 0).unwrap_or(0)),
        F::Date => K::Date,
        F::Timestamp | F::TimestampTz => K::DateTime(precision()),
        F::Time => K::Time(precision()),
        F::Interval => {
            let p = typmod & 0xffff;
            K::Time(if typmod >= 0 && p <= 6 { p as u8 } else { 6 })
        }
        F::TimeTz => K::VarChar(32),
        F::Uuid => K::Char(36),
        F::Inet => K::VarChar(43),
        F::MacAddr => K::VarChar(17),
        F::MacAddr8 => K::VarChar(23),
        F::Void => K::VarChar(0),
    };
    let mut t = MysqlColumnType::new(kind);
    t.unsigned = unsigned;
    t.binary_collation = binary_collation;
    t
}

/// Bytes per character of a collation's character set (the common ones;
/// anything unknown is taken as utf8mb4's 4).
pub fn mbmaxlen(collation: u16) -> u32 {
    match collation {
        // binary, latin1, ascii
        63 | 5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 | 11 | 65 => 1,
        // utf8mb3
        33 | 76 | 83 | 192..=215 | 223 => 3,
        // ucs2
        35 | 90 | 128..=151 | 159 => 2,
        _ => 4,
    }
}

/// Type, length, flags, decimals and charset of a MySQL column type.
fn describe(t: &MysqlColumnType, collation: u16) -> ColumnDef {
    use MysqlKind as K;
    let mb = mbmaxlen(collation);
    let text_chars = |n: u32| n.saturating_mul(mb);
    let sign = if t.zerofill {
        flag::UNSIGNED | flag::ZEROFILL
    } else if t.unsigned {
        flag::UNSIGNED
    } else {
        0
    };
    let bin_coll = if t.binary_collation { flag::BINARY } else { 0 };
    let frac_len = |base: u32, fsp: u8| base + u32::from(fsp) + u32::from(fsp > 0);
    let (column_type, length, flags, decimals, charset) = match t.kind {
        K::Tiny(w) => (ty::TINY, w, sign, 0, BINARY_CHARSET),
        K::Short(w) => (ty::SHORT, w, sign, 0, BINARY_CHARSET),
        K::Int24(w) => (ty::INT24, w, sign, 0, BINARY_CHARSET),
        K::Long(w) => (ty::LONG, w, sign, 0, BINARY_CHARSET),
        K::LongLong(w) => (ty::LONGLONG, w, sign, 0, BINARY_CHARSET),
        K::Decimal(p, s) => {
            let len = p + u32::from(s > 0) + u32::from(!t.unsigned);
            (ty::NEWDECIMAL, len, sign, s, BINARY_CHARSET)
        }
        // No fixed scale: MySQL's widest DECIMAL and the largest scale.
        K::DecimalAny => (ty::NEWDECIMAL, 67, sign, 38, BINARY_CHARSET),
        K::Float(md) => {
            let (len, dec) = md.unwrap_or((12, 31));
            (ty::FLOAT, len, sign, dec, BINARY_CHARSET)
        }
        K::Double(md) => {
            let (len, dec) = md.unwrap_or((22, 31));
            (ty::DOUBLE, len, sign, dec, BINARY_CHARSET)
        }
        K::Bit(n) => {
            let len = if n == 0 { 64 } else { n };
            (ty::BIT, len, flag::UNSIGNED, 0, BINARY_CHARSET)
        }
        K::Year => (
            ty::YEAR,
            4,
            flag::UNSIGNED | flag::ZEROFILL,
            0,
            BINARY_CHARSET,
        ),
        K::Date => (ty::DATE, 10, flag::BINARY, 0, BINARY_CHARSET),
        K::DateTime(f) => (
            ty::DATETIME,
            frac_len(19, f),
            flag::BINARY,
            f,
            BINARY_CHARSET,
        ),
        K::Timestamp(f) => (
            ty::TIMESTAMP,
            frac_len(19, f),
            flag::UNSIGNED | flag::BINARY,
            f,
            BINARY_CHARSET,
        ),
        K::Time(f) => (ty::TIME, frac_len(10, f), flag::BINARY, f, BINARY_CHARSET),
        K::Char(n) => (ty::STRING, text_chars(n), bin_coll, 0, collation),
        K::VarChar(n) => (ty::VAR_STRING, text_chars(n), bin_coll, 0, collation),
        K::Binary(n) => (ty::STRING, n, flag::BINARY, 0, BINARY_CHARSET),
        K::VarBinary(n) => (ty::VAR_STRING, n, flag::BINARY, 0, BINARY_CHARSET),
        K::Text(n) => (ty::BLOB, text_chars(n), flag::BLOB | bin_coll, 0, collation),
        K::Blob(n) => (ty::BLOB, n, flag::BLOB | flag::BINARY, 0, BINARY_CHARSET),
        K::Enum(n) => (ty::STRING, text_chars(n), flag::ENUM, 0, collation),
        K::Set(n) => (ty::STRING, text_chars(n), flag::SET, 0, collation),
        K::Json => (
            ty::JSON,
            u32::MAX,
            flag::BLOB | flag::BINARY,
            0,
            BINARY_CHARSET,
        ),
        K::Uuid => (
            ty::STRING,
            text_chars(36),
            flag::UNSIGNED | flag::BINARY,
            0,
            collation,
        ),
    };
    ColumnDef {
        schema: String::new(),
        table: String::new(),
        org_table: String::new(),
        name: String::new(),
        org_name: String::new(),
        charset,
        length,
        column_type,
        flags,
        decimals,
        type_name: (t.kind == K::Uuid).then_some("uuid"),
        format: None,
    }
}

/// How values are written for a column of this MySQL type.
fn out_form(t: &MysqlColumnType) -> Out {
    use MysqlKind as K;
    let int = |size: u8, width: u32| Out::Int {
        size,
        unsigned: t.unsigned,
        zerofill: t.zerofill.then_some(width),
    };
    match t.kind {
        K::Tiny(w) => int(1, w),
        K::Short(w) => int(2, w),
        K::Int24(w) | K::Long(w) => int(4, w),
        K::LongLong(w) => int(8, w),
        K::Year => Out::Int {
            size: 2,
            unsigned: true,
            zerofill: Some(4),
        },
        K::Decimal(_, s) => Out::Decimal { scale: Some(s) },
        K::DecimalAny => Out::Decimal { scale: None },
        K::Float(md) => Out::Float {
            decimals: md.map(|(_, d)| d),
        },
        K::Double(md) => Out::Double {
            decimals: md.map(|(_, d)| d),
        },
        K::Bit(n) => Out::Bit {
            bytes: n.div_ceil(8),
        },
        K::Date => Out::Date,
        K::DateTime(fsp) | K::Timestamp(fsp) => Out::DateTime { fsp },
        K::Time(fsp) => Out::Time { fsp },
        K::Binary(_) | K::VarBinary(_) | K::Blob(_) => Out::Bytes,
        _ => Out::Str,
    }
}

#[cfg(test)]
#[path = "columns_tests.rs"]
mod tests;
