//! The MySQL wire format, shared by our server side (`frontend::mysql`) and our
//! client side towards MySQL backends (`backend::mysql`).
//!
//! Framing and the packets we build ourselves live here; capability and status
//! constants come from `mysql_common`.

pub mod buf;
pub mod execute;
pub mod handshake;
pub mod io;
pub mod packets;
pub mod response;
pub mod stream;

pub use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};

/// Largest payload of one physical packet; a logical packet of this size or more
/// continues in the next physical packet.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Command bytes (the first payload byte of a client command).
pub mod cmd {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const REFRESH: u8 = 0x07;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_INFO: u8 = 0x0a;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const DEBUG: u8 = 0x0d;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}
