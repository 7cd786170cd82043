//! Binlog events, parsed by hand from the bytes of one event.
//!
//! Only what the change stream acts on is parsed: the format description
//! (checksums and post-header sizes), rotations, query and XID events, both
//! GTID flavours (MariaDB's event 162 with its flags, MySQL's event 33) and
//! table maps with their optional metadata. Rows events are decoded in
//! `rows`. Every read is bounds-checked: a malformed event is an error, never
//! a panic.

use std::borrow::Cow;
use std::io::Read;

use crate::wire::buf::Reader;

/// Event type codes (MySQL `Log_event_type`, MariaDB's additions from 160).
#[allow(dead_code)] // the full list documents what the source skips
pub mod kind {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const HEARTBEAT: u8 = 27;
    pub const WRITE_ROWS_V2: u8 = 30;
    pub const UPDATE_ROWS_V2: u8 = 31;
    pub const DELETE_ROWS_V2: u8 = 32;
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const MYSQL_PREVIOUS_GTIDS: u8 = 35;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
    pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
    pub const MARIADB_DELETE_ROWS_COMPRESSED_V1: u8 = 168;
    pub const MARIADB_WRITE_ROWS_COMPRESSED: u8 = 169;
    pub const MARIADB_UPDATE_ROWS_COMPRESSED: u8 = 170;
    pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 171;
}

/// Header flag of events the server made up for this connection (the first
/// ROTATE): they name a position but are not in the file.
pub const FLAG_ARTIFICIAL: u16 = 0x20;
pub const HEADER_LEN: usize = 19;

#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub timestamp: u32,
    pub kind: u8,
    pub server_id: u32,
    pub size: u32,
    /// Offset just past this event in its file (0 for some synthetic events).
    pub next_pos: u32,
    pub flags: u16,
}

/// What the format description event told us about the events that follow.
#[derive(Debug, Clone, Default)]
pub struct Format {
    /// Events end in a CRC32 of everything before it.
    pub checksum: bool,
    /// Post-header length per event type (index = type - 1).
    pub post_header: Vec<u8>,
}

impl Format {
    pub fn post_header_len(&self, kind: u8, default: usize) -> usize {
        (kind as usize)
            .checked_sub(1)
            .and_then(|i| self.post_header.get(i))
            .map_or(default, |&n| n as usize)
    }
}

pub type ParseError = &'static str;

/// Splits one event into its header and body (checksum removed and
/// verified). A format description is recognized here, because it says
/// itself whether it carries a checksum.
pub fn split<'a>(event: &'a [u8], format: &Format) -> Result<(Header, &'a [u8]), ParseError> {
    let mut r = Reader::new(event);
    let header = Header {
        timestamp: r.u32().ok_or("short event header")?,
        kind: r.u8().ok_or("short event header")?,
        server_id: r.u32().ok_or("short event header")?,
        size: r.u32().ok_or("short event header")?,
        next_pos: r.u32().ok_or("short event header")?,
        flags: r.u16().ok_or("short event header")?,
    };
    if header.size as usize != event.len() {
        return Err("event size does not match its packet");
    }
    // A format description always ends in its checksum algorithm byte and
    // four checksum bytes (zeros when the algorithm is OFF); it says itself
    // whether the CRC is real.
    let is_fde = header.kind == kind::FORMAT_DESCRIPTION;
    let verify = if is_fde {
        event.len() >= HEADER_LEN + 57 + 5 && event[event.len() - 5] == 1
    } else if format.post_header.is_empty() {
        // Before the format description (the server's first, artificial
        // ROTATE): checksummed if the trailing CRC matches.
        event.len() >= HEADER_LEN + 4 && {
            let end = event.len() - 4;
            event
                .get(end..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .is_some_and(|b| u32::from_le_bytes(b) == crc32fast::hash(&event[..end]))
        }
    } else {
        format.checksum
    };
    let body_end = if verify || is_fde {
        event
            .len()
            .checked_sub(4)
            .ok_or("event shorter than its checksum")?
    } else {
        event.len()
    };
    if verify {
        let stored = u32::from_le_bytes(
            event
                .get(body_end..)
                .and_then(|b| b.try_into().ok())
                .ok_or("event shorter than its checksum")?,
        );
        if crc32fast::hash(&event[..body_end]) != stored {
            return Err("checksum mismatch (corrupt event)");
        }
    }
    let body = event
        .get(HEADER_LEN..body_end)
        .ok_or("event body too short")?;
    Ok((header, body))
}

/// FORMAT_DESCRIPTION: the post-header lengths and whether checksums follow.
pub fn format_description(body: &[u8]) -> Result<Format, ParseError> {
    // body = version(2) server_version(50) created(4) header_len(1) lengths…
    //        alg(1) (the four checksum bytes were stripped by `split`)
    let lengths = body.get(57..).ok_or("short format description")?;
    let (alg, lengths) = lengths.split_last().ok_or("short format description")?;
    Ok(Format {
        checksum: *alg == 1,
        post_header: lengths.to_vec(),
    })
}

/// ROTATE: the next file and the offset to read it from.
pub fn rotate(body: &[u8]) -> Result<(String, u64), ParseError> {
    let mut r = Reader::new(body);
    let pos = read_u64(&mut r).ok_or("short rotate event")?;
    Ok((String::from_utf8_lossy(r.remaining()).into_owned(), pos))
}

pub struct Query<'a> {
    pub database: &'a [u8],
    pub sql: Cow<'a, [u8]>,
}

/// QUERY (or MariaDB's QUERY_COMPRESSED, whose statement text is a
/// compressed record): the default database and the statement text.
pub fn query<'a>(
    body: &'a [u8],
    format: &Format,
    compressed: bool,
) -> Result<Query<'a>, ParseError> {
    let event_kind = if compressed {
        kind::MARIADB_QUERY_COMPRESSED
    } else {
        kind::QUERY
    };
    let post = format.post_header_len(event_kind, 13);
    let mut r = Reader::new(body);
    let fixed = r.take(post).ok_or("short query event")?;
    let mut f = Reader::new(fixed);
    f.take(8).ok_or("short query event")?; // thread id, exec time
    let db_len = f.u8().ok_or("short query event")? as usize;
    f.take(2).ok_or("short query event")?; // error code
    let status_len = f.u16().ok_or("short query event")? as usize;
    r.take(status_len).ok_or("short query status variables")?;
    let database = r.take(db_len).ok_or("short query database")?;
    r.u8().ok_or("short query event")?; // NUL after the database
    let sql = if compressed {
        Cow::Owned(uncompress(r.remaining())?)
    } else {
        Cow::Borrowed(r.remaining())
    };
    Ok(Query { database, sql })
}

/// Largest record we inflate (MariaDB's events stay below 1 GiB).
const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// A MariaDB compressed record (`log_bin_compress`): a header byte
/// `1 alg(3) lenlen(4)` with algorithm 0 = zlib, the original length in
/// `lenlen` big-endian bytes, then the zlib stream.
pub fn uncompress(record: &[u8]) -> Result<Vec<u8>, ParseError> {
    let (&head, rest) = record.split_first().ok_or("empty compressed record")?;
    if head & 0xf0 != 0x80 {
        return Err("compressed record with an unknown algorithm");
    }
    let lenlen = usize::from(head & 0x07);
    if !(1..=4).contains(&lenlen) {
        return Err("compressed record with a bad length size");
    }
    let len_bytes = rest.get(..lenlen).ok_or("short compressed record")?;
    let len = len_bytes
        .iter()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    if len > MAX_UNCOMPRESSED {
        return Err("compressed record larger than 1 GiB");
    }
    let data = rest.get(lenlen..).ok_or("short compressed record")?;
    let mut out = Vec::with_capacity(len as usize);
    flate2::read::ZlibDecoder::new(data)
        .take(len + 1)
        .read_to_end(&mut out)
        .map_err(|_| "compressed record does not inflate")?;
    if out.len() as u64 != len {
        return Err("compressed record inflates to the wrong length");
    }
    Ok(out)
}

/// MariaDB GTID event: `domain-server-seq` and its flags.
#[derive(Debug, Clone, Copy)]
pub struct MariadbGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
    pub flags: u8,
}

impl MariadbGtid {
    /// The event group is one statement without BEGIN/COMMIT (DDL, or a
    /// non-transactional statement).
    pub const FL_STANDALONE: u8 = 1;
    pub const FL_DDL: u8 = 32;

    pub fn standalone(&self) -> bool {
        self.flags & Self::FL_STANDALONE != 0
    }
}

pub fn mariadb_gtid(header: &Header, body: &[u8]) -> Result<MariadbGtid, ParseError> {
    let mut r = Reader::new(body);
    let seq = read_u64(&mut r).ok_or("short GTID event")?;
    let domain = r.u32().ok_or("short GTID event")?;
    let flags = r.u8().ok_or("short GTID event")?;
    Ok(MariadbGtid {
        domain,
        server: header.server_id,
        seq,
        flags,
    })
}

/// MySQL GTID event: `uuid:gno`.
pub fn mysql_gtid(body: &[u8]) -> Result<(String, u64), ParseError> {
    let mut r = Reader::new(body);
    r.u8().ok_or("short GTID event")?; // flags
    let sid = r.take(16).ok_or("short GTID event")?;
    let gno = read_u64(&mut r).ok_or("short GTID event")?;
    let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    Ok((uuid, gno))
}

/// XID: the transaction committed (its id is of no use to us).
pub fn read_u64(r: &mut Reader<'_>) -> Option<u64> {
    let b = r.take(8)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Little-endian table id of `n` bytes (MariaDB and MySQL use 6).
pub fn table_id(r: &mut Reader<'_>, n: usize) -> Option<u64> {
    let b = r.take(n)?;
    Some(b.iter().rev().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
}
