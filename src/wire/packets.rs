//! Packets Tandem builds itself (ERR, OK, EOF, AuthSwitchRequest) and the small
//! parsers needed to read OK/ERR/EOF packets coming from a backend.

use super::buf::{put_lenenc_bytes, put_lenenc_int, Reader};
use super::StatusFlags;

pub const OK: u8 = 0x00;
pub const EOF: u8 = 0xfe;
pub const ERR: u8 = 0xff;
pub const LOCAL_INFILE: u8 = 0xfb;

/// A server error as it travels on the wire: code, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

impl ServerError {
    pub fn new(code: u16, state: &[u8; 5], message: impl Into<String>) -> Self {
        Self {
            code,
            state: *state,
            message: message.into(),
        }
    }

    /// Encodes an ERR packet payload (protocol 4.1 form, with SQLSTATE).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.message.len());
        out.push(ERR);
        out.extend_from_slice(&self.code.to_le_bytes());
        out.push(b'#');
        out.extend_from_slice(&self.state);
        out.extend_from_slice(self.message.as_bytes());
        out
    }

    /// Parses an ERR packet payload. Returns `None` if it is not one.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let mut r = Reader::new(payload);
        if r.u8()? != ERR {
            return None;
        }
        let code = r.u16()?;
        let mut state = *b"HY000";
        if r.remaining().first() == Some(&b'#') {
            r.u8()?;
            state.copy_from_slice(r.take(5)?);
        }
        Some(Self {
            code,
            state,
            message: String::from_utf8_lossy(r.remaining()).into_owned(),
        })
    }

    pub fn state_str(&self) -> &str {
        std::str::from_utf8(&self.state).unwrap_or("HY000")
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ERROR {} ({}): {}",
            self.code,
            self.state_str(),
            self.message
        )
    }
}

/// The fields of an OK packet (or an OK-shaped EOF under CLIENT_DEPRECATE_EOF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OkInfo {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

impl OkInfo {
    /// Parses an OK (0x00) or OK-as-EOF (0xfe) payload; trailing info and session
    /// state are left alone (they are relayed verbatim, never rebuilt).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != OK && header != EOF {
            return None;
        }
        Some(Self {
            affected_rows: r.lenenc_int()?,
            last_insert_id: r.lenenc_int()?,
            status: r.u16()?,
            warnings: r.u16().unwrap_or(0),
        })
    }

    pub fn status_flags(&self) -> StatusFlags {
        StatusFlags::from_bits_truncate(self.status)
    }
}

/// Status flags of a terminator: the classic 5-byte EOF packet (warnings, then
/// status) or the OK-shaped one used with CLIENT_DEPRECATE_EOF.
pub fn terminator_status(payload: &[u8], deprecate_eof: bool) -> Option<u16> {
    if deprecate_eof {
        OkInfo::parse(payload).map(|ok| ok.status)
    } else {
        let mut r = Reader::new(payload);
        r.u8()?;
        r.u16()?; // warnings
        r.u16()
    }
}

/// An OK packet payload built by the proxy itself.
pub fn ok_packet(info: OkInfo) -> Vec<u8> {
    let mut out = vec![OK];
    put_lenenc_int(&mut out, info.affected_rows);
    put_lenenc_int(&mut out, info.last_insert_id);
    out.extend_from_slice(&info.status.to_le_bytes());
    out.extend_from_slice(&info.warnings.to_le_bytes());
    out
}

/// AuthSwitchRequest asking the client to answer `plugin` with `data`.
pub fn auth_switch_request(plugin: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + plugin.len() + data.len() + 1);
    out.push(EOF);
    out.extend_from_slice(plugin);
    out.push(0);
    out.extend_from_slice(data);
    out.push(0);
    out
}

/// A text-protocol row: NULL is 0xfb, anything else a length-encoded string.
pub fn text_row<'a>(values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        match v {
            None => out.push(LOCAL_INFILE),
            Some(b) => put_lenenc_bytes(&mut out, b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_round_trip_keeps_code_state_message() {
        let e = ServerError::new(4025, b"23000", "CONSTRAINT `c` failed for `t`");
        assert_eq!(ServerError::parse(&e.encode()), Some(e));
    }

    #[test]
    fn ok_round_trip() {
        let info = OkInfo {
            affected_rows: 300,
            last_insert_id: 70_000,
            status: 0x0003,
            warnings: 2,
        };
        assert_eq!(OkInfo::parse(&ok_packet(info)), Some(info));
    }

    #[test]
    fn classic_eof_status() {
        // 0xfe, warnings=1, status=IN_TRANS|AUTOCOMMIT|MORE_RESULTS
        assert_eq!(terminator_status(&[0xfe, 1, 0, 0x0b, 0], false), Some(0x0b));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(ServerError::parse(&[0x00, 1]), None);
        assert_eq!(OkInfo::parse(&[0x00, 0xfc]), None);
        assert_eq!(terminator_status(&[0xfe, 1], false), None);
    }
}
