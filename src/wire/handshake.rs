//! Connection-phase packets: the server greeting, the client's handshake
//! response and COM_CHANGE_USER, parsed and encoded in both directions because
//! Tandem is a server to its clients and a client to its MySQL backends.
//!
//! Written by hand rather than with `mysql_common`'s serializers: its greeting
//! drops the NUL after the second scramble part and its handshake response
//! hard-codes the collation, and both details are visible to clients.

use mysql_common::packets::HandshakePacket;
use mysql_common::proto::MyDeserialize;

use super::buf::{put_lenenc_bytes, Reader};
use super::io::WireError;
use super::CapabilityFlags as Caps;

pub const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";
pub const CACHING_SHA2: &[u8] = b"caching_sha2_password";

/// The initial handshake a server sends (protocol version 10).
#[derive(Debug, Clone)]
pub struct Greeting {
    pub server_version: Vec<u8>,
    pub connection_id: u32,
    /// The full 20-byte auth challenge.
    pub salt: Vec<u8>,
    pub capabilities: Caps,
    /// MariaDB's extended capabilities (only when CLIENT_LONG_PASSWORD is clear,
    /// which is how MariaDB 10.2+ says "I am MariaDB").
    pub mariadb_caps: u32,
    pub collation: u8,
    pub status: u16,
    pub auth_plugin: Vec<u8>,
}

impl Greeting {
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        if payload.first() == Some(&0xff) {
            return Err(WireError::Malformed(
                "server sent an error instead of a greeting",
            ));
        }
        let mut pb = mysql_common::io::ParseBuf(payload);
        let hs = HandshakePacket::deserialize((), &mut pb)
            .map_err(|_| WireError::Malformed("unparsable server greeting"))?;
        if hs.protocol_version() != 10 {
            return Err(WireError::Malformed("unsupported protocol version"));
        }
        let mut salt = hs.nonce();
        // The second part is sent NUL-terminated; the challenge is 20 bytes.
        salt.truncate(20);
        let caps = hs.capabilities();
        let mariadb_caps = if caps.contains(Caps::CLIENT_LONG_PASSWORD) {
            0
        } else {
            mariadb_caps_from_greeting(payload)
        };
        Ok(Self {
            server_version: hs.server_version_ref().to_vec(),
            connection_id: hs.connection_id(),
            salt,
            capabilities: caps,
            mariadb_caps,
            collation: hs.default_collation(),
            status: hs.status_flags().bits(),
            auth_plugin: hs
                .auth_plugin_name_ref()
                .map(|p| p.to_vec())
                .unwrap_or_else(|| NATIVE_PASSWORD.to_vec()),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let caps = self.capabilities.bits();
        let mut out = Vec::with_capacity(80 + self.server_version.len());
        out.push(10);
        out.extend_from_slice(&self.server_version);
        out.push(0);
        out.extend_from_slice(&self.connection_id.to_le_bytes());
        let (s1, s2) = self.salt.split_at(self.salt.len().min(8));
        out.extend_from_slice(s1);
        out.push(0);
        out.extend_from_slice(&(caps as u16).to_le_bytes());
        out.push(self.collation);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
        if self.capabilities.contains(Caps::CLIENT_PLUGIN_AUTH) {
            out.push((self.salt.len() + 1) as u8);
        } else {
            out.push(0);
        }
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&self.mariadb_caps.to_le_bytes());
        if self.capabilities.contains(Caps::CLIENT_SECURE_CONNECTION) {
            out.extend_from_slice(s2);
            out.push(0);
        }
        if self.capabilities.contains(Caps::CLIENT_PLUGIN_AUTH) {
            out.extend_from_slice(&self.auth_plugin);
            out.push(0);
        }
        out
    }
}

/// The extended capabilities sit in the last 4 of the 10 reserved bytes.
fn mariadb_caps_from_greeting(payload: &[u8]) -> u32 {
    let mut r = Reader::new(payload);
    let parsed = (|| {
        r.u8()?;
        r.null_terminated();
        // conn id 4, scramble 8, filler 1, caps 2, collation 1, status 2, caps 2, len 1, reserved 6
        r.take(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 6)?;
        r.u32()
    })();
    parsed.unwrap_or(0)
}

/// A client's HandshakeResponse41.
#[derive(Debug, Clone, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub collation: u8,
    pub mariadb_caps: u32,
    pub user: Vec<u8>,
    pub auth_response: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub auth_plugin: Option<Vec<u8>>,
    /// The connection-attributes block exactly as sent (length prefix included).
    pub attributes: Option<Vec<u8>>,
}

impl HandshakeResponse {
    pub fn caps(&self) -> Caps {
        Caps::from_bits_truncate(self.capabilities)
    }

    /// An SSLRequest is the first 32 bytes of a handshake response with CLIENT_SSL.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        payload.len() == 32
            && Reader::new(payload)
                .u32()
                .is_some_and(|c| c & Caps::CLIENT_SSL.bits() != 0)
    }

    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        Self::parse_inner(payload).ok_or(WireError::Malformed("truncated handshake response"))
    }

    fn parse_inner(payload: &[u8]) -> Option<Self> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32()?;
        let caps = Caps::from_bits_truncate(capabilities);
        if !caps.contains(Caps::CLIENT_PROTOCOL_41) {
            return None;
        }
        let max_packet = r.u32()?;
        let collation = r.u8()?;
        r.take(19)?;
        let ext = r.u32()?;
        let mariadb_caps = if caps.contains(Caps::CLIENT_LONG_PASSWORD) {
            0
        } else {
            ext
        };
        let user = r.null_terminated().to_vec();
        let auth_response = if caps.contains(Caps::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            r.lenenc_bytes()?.to_vec()
        } else if caps.contains(Caps::CLIENT_SECURE_CONNECTION) {
            let n = usize::from(r.u8()?);
            r.take(n)?.to_vec()
        } else {
            r.null_terminated().to_vec()
        };
        let database = if caps.contains(Caps::CLIENT_CONNECT_WITH_DB) && !r.is_empty() {
            Some(r.null_terminated().to_vec()).filter(|d| !d.is_empty())
        } else {
            None
        };
        let auth_plugin = if caps.contains(Caps::CLIENT_PLUGIN_AUTH) && !r.is_empty() {
            Some(r.null_terminated().to_vec())
        } else {
            None
        };
        let attributes = if caps.contains(Caps::CLIENT_CONNECT_ATTRS) && !r.is_empty() {
            let before = r.remaining();
            r.lenenc_bytes()?;
            let used = before.len() - r.remaining().len();
            Some(before[..used].to_vec())
        } else {
            None
        };
        Some(Self {
            capabilities,
            max_packet,
            collation,
            mariadb_caps,
            user,
            auth_response,
            database,
            auth_plugin,
            attributes,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut caps = self.capabilities;
        let set = |caps: &mut u32, flag: Caps, on: bool| {
            if on {
                *caps |= flag.bits()
            } else {
                *caps &= !flag.bits()
            }
        };
        set(
            &mut caps,
            Caps::CLIENT_CONNECT_WITH_DB,
            self.database.is_some(),
        );
        set(
            &mut caps,
            Caps::CLIENT_PLUGIN_AUTH,
            self.auth_plugin.is_some(),
        );
        set(
            &mut caps,
            Caps::CLIENT_CONNECT_ATTRS,
            self.attributes.is_some(),
        );
        let caps_f = Caps::from_bits_truncate(caps);
        let mut out = Vec::with_capacity(64 + self.user.len());
        out.extend_from_slice(&caps.to_le_bytes());
        out.extend_from_slice(&self.max_packet.to_le_bytes());
        out.push(self.collation);
        out.extend_from_slice(&[0; 19]);
        let ext = if caps_f.contains(Caps::CLIENT_LONG_PASSWORD) {
            0
        } else {
            self.mariadb_caps
        };
        out.extend_from_slice(&ext.to_le_bytes());
        out.extend_from_slice(&self.user);
        out.push(0);
        if caps_f.contains(Caps::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else {
            out.push(self.auth_response.len() as u8);
            out.extend_from_slice(&self.auth_response);
        }
        if let Some(db) = &self.database {
            out.extend_from_slice(db);
            out.push(0);
        }
        if let Some(p) = &self.auth_plugin {
            out.extend_from_slice(p);
            out.push(0);
        }
        if let Some(a) = &self.attributes {
            out.extend_from_slice(a);
        }
        out
    }
}

/// COM_CHANGE_USER, parsed from a client or built for a backend.
#[derive(Debug, Clone, Default)]
pub struct ChangeUser {
    pub user: Vec<u8>,
    pub auth_response: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub collation: Option<u16>,
    pub auth_plugin: Option<Vec<u8>>,
    pub attributes: Option<Vec<u8>>,
}

impl ChangeUser {
    /// `client_caps` are the capabilities negotiated at connect time; they decide
    /// the layout of the optional trailing fields.
    pub fn parse(payload: &[u8], client_caps: Caps) -> Result<Self, WireError> {
        let mut r = Reader::new(payload);
        let malformed = WireError::Malformed("truncated COM_CHANGE_USER");
        if r.u8() != Some(super::cmd::CHANGE_USER) {
            return Err(malformed);
        }
        let user = r.null_terminated().to_vec();
        let auth_response = if client_caps.contains(Caps::CLIENT_SECURE_CONNECTION) {
            let n = usize::from(
                r.u8()
                    .ok_or(WireError::Malformed("truncated COM_CHANGE_USER"))?,
            );
            r.take(n).ok_or(malformed)?.to_vec()
        } else {
            r.null_terminated().to_vec()
        };
        let database = Some(r.null_terminated().to_vec()).filter(|d| !d.is_empty());
        let collation = if r.remaining().len() >= 2 {
            r.u16()
        } else {
            None
        };
        let auth_plugin = if client_caps.contains(Caps::CLIENT_PLUGIN_AUTH) && !r.is_empty() {
            Some(r.null_terminated().to_vec())
        } else {
            None
        };
        let attributes = if client_caps.contains(Caps::CLIENT_CONNECT_ATTRS) && !r.is_empty() {
            Some(r.remaining().to_vec())
        } else {
            None
        };
        Ok(Self {
            user,
            auth_response,
            database,
            collation,
            auth_plugin,
            attributes,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![super::cmd::CHANGE_USER];
        out.extend_from_slice(&self.user);
        out.push(0);
        out.push(self.auth_response.len() as u8);
        out.extend_from_slice(&self.auth_response);
        if let Some(db) = &self.database {
            out.extend_from_slice(db);
        }
        out.push(0);
        out.extend_from_slice(&self.collation.unwrap_or(45).to_le_bytes());
        if let Some(p) = &self.auth_plugin {
            out.extend_from_slice(p);
            out.push(0);
        }
        if let Some(a) = &self.attributes {
            out.extend_from_slice(a);
        }
        out
    }
}

/// A 20-byte challenge of printable bytes, as servers send (no NUL, no '$').
pub fn random_salt() -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| loop {
            let b = rng.gen_range(b'!'..=b'~');
            if b != b'$' {
                break b;
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeting() -> Greeting {
        Greeting {
            server_version: b"5.5.5-10.11.19-MariaDB".to_vec(),
            connection_id: 42,
            salt: random_salt(),
            capabilities: Caps::CLIENT_PROTOCOL_41
                | Caps::CLIENT_SECURE_CONNECTION
                | Caps::CLIENT_PLUGIN_AUTH
                | Caps::CLIENT_DEPRECATE_EOF
                | Caps::CLIENT_MULTI_RESULTS,
            mariadb_caps: 0x8,
            collation: 45,
            status: 2,
            auth_plugin: NATIVE_PASSWORD.to_vec(),
        }
    }

    #[test]
    fn greeting_round_trips_through_mysql_common_parser() {
        let g = greeting();
        let parsed = Greeting::parse(&g.encode()).expect("parse");
        assert_eq!(parsed.server_version, g.server_version);
        assert_eq!(parsed.connection_id, 42);
        assert_eq!(parsed.salt, g.salt);
        assert_eq!(parsed.capabilities, g.capabilities);
        assert_eq!(parsed.mariadb_caps, 0x8);
        assert_eq!(parsed.status, 2);
        assert_eq!(parsed.collation, 45);
        assert_eq!(parsed.auth_plugin, NATIVE_PASSWORD);
    }

    #[test]
    fn handshake_response_round_trip() {
        let hr = HandshakeResponse {
            capabilities: (Caps::CLIENT_PROTOCOL_41
                | Caps::CLIENT_SECURE_CONNECTION
                | Caps::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
                | Caps::CLIENT_FOUND_ROWS)
                .bits(),
            max_packet: 16 << 20,
            collation: 224,
            mariadb_caps: 0,
            user: b"app".to_vec(),
            auth_response: vec![7; 20],
            database: Some(b"shop".to_vec()),
            auth_plugin: Some(NATIVE_PASSWORD.to_vec()),
            attributes: Some(vec![4, 1, b'k', 1, b'v']),
        };
        let p = HandshakeResponse::parse(&hr.encode()).expect("parse");
        assert_eq!(p.user, b"app");
        assert_eq!(p.collation, 224);
        assert_eq!(p.auth_response, vec![7; 20]);
        assert_eq!(p.database.as_deref(), Some(&b"shop"[..]));
        assert_eq!(p.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
        assert_eq!(p.attributes, hr.attributes);
        assert!(p.caps().contains(Caps::CLIENT_FOUND_ROWS));
    }

    #[test]
    fn truncated_responses_are_errors() {
        let hr = HandshakeResponse {
            capabilities: (Caps::CLIENT_PROTOCOL_41 | Caps::CLIENT_SECURE_CONNECTION).bits(),
            user: b"app".to_vec(),
            auth_response: vec![1; 20],
            ..Default::default()
        };
        let bytes = hr.encode();
        for cut in 0..bytes.len() - 10 {
            let _ = HandshakeResponse::parse(&bytes[..cut]); // must not panic
        }
        assert!(HandshakeResponse::parse(&bytes[..10]).is_err());
    }

    #[test]
    fn change_user_round_trip() {
        let cu = ChangeUser {
            user: b"app".to_vec(),
            auth_response: vec![9; 20],
            database: Some(b"db1".to_vec()),
            collation: Some(224),
            auth_plugin: Some(NATIVE_PASSWORD.to_vec()),
            attributes: None,
        };
        let caps = Caps::CLIENT_SECURE_CONNECTION | Caps::CLIENT_PLUGIN_AUTH;
        let p = ChangeUser::parse(&cu.encode(), caps).expect("parse");
        assert_eq!(p.user, b"app");
        assert_eq!(p.auth_response, vec![9; 20]);
        assert_eq!(p.database.as_deref(), Some(&b"db1"[..]));
        assert_eq!(p.collation, Some(224));
        assert_eq!(p.auth_plugin.as_deref(), Some(NATIVE_PASSWORD));
    }

    #[test]
    fn salt_is_printable_and_fresh() {
        let a = random_salt();
        assert_eq!(a.len(), 20);
        assert!(a.iter().all(|&b| (b'!'..=b'~').contains(&b) && b != b'$'));
        assert_ne!(a, random_salt());
    }
}
