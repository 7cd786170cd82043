//! Our client side of the MySQL protocol towards a MySQL/MariaDB backend.
//!
//! A connection is opened in two steps so that a client can be shown the
//! backend's real greeting (version, connection id, status) before it logs in,
//! and the backend is then authenticated with the capabilities and charset the
//! client asked for: responses can then be relayed verbatim.

use std::time::Instant;

use tokio::net::TcpStream;

use super::BackendError;
use crate::auth::native_token;
use crate::config::BackendTarget;
use crate::tls::{SslMode, TlsError};
use crate::wire::buf::Reader;
use crate::wire::handshake::{
    ChangeUser, Greeting, HandshakeResponse, CACHING_SHA2, NATIVE_PASSWORD,
};
use crate::wire::io::{Packet, PacketIo};
use crate::wire::packets::{self, ServerError};
use crate::wire::stream::Stream;
use crate::wire::{cmd, CapabilityFlags as Caps, MariadbCapabilities};

/// Capabilities that change how the server shapes its responses (or parses
/// statements). A pooled connection is only reused for a client whose set is
/// identical, because its packets are relayed without rewriting.
pub const SHAPE_MASK: u32 = Caps::CLIENT_FOUND_ROWS.bits()
    | Caps::CLIENT_LONG_FLAG.bits()
    | Caps::CLIENT_NO_SCHEMA.bits()
    | Caps::CLIENT_ODBC.bits()
    | Caps::CLIENT_IGNORE_SPACE.bits()
    | Caps::CLIENT_INTERACTIVE.bits()
    | Caps::CLIENT_TRANSACTIONS.bits()
    | Caps::CLIENT_MULTI_STATEMENTS.bits()
    | Caps::CLIENT_MULTI_RESULTS.bits()
    | Caps::CLIENT_PS_MULTI_RESULTS.bits()
    | Caps::CLIENT_SESSION_TRACK.bits()
    | Caps::CLIENT_DEPRECATE_EOF.bits()
    | Caps::CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS.bits()
    // Decides whether LOAD DATA LOCAL gets a file request or error 4166.
    | Caps::CLIENT_LOCAL_FILES.bits();

/// Capabilities the proxy never passes through from a client: TLS (each hop
/// negotiates its own, see `use_tls`), compression (not implemented), query
/// attributes and optional metadata (change packet layouts we parse),
/// progress reports. LOCAL INFILE is passed on as the client asked (the relay
/// streams the file, see `frontend::mysql::relay`).
pub const UNSUPPORTED_CAPS: u32 = Caps::CLIENT_SSL.bits()
    | Caps::CLIENT_COMPRESS.bits()
    | Caps::CLIENT_ZSTD_COMPRESSION_ALGORITHM.bits()
    | Caps::CLIENT_QUERY_ATTRIBUTES.bits()
    | Caps::CLIENT_OPTIONAL_RESULTSET_METADATA.bits()
    | Caps::CLIENT_PROGRESS_OBSOLETE.bits()
    | Caps::CLIENT_SSL_VERIFY_SERVER_CERT.bits()
    | Caps::CLIENT_REMEMBER_OPTIONS.bits();

/// MariaDB extensions relayed as-is. Bulk execution, metadata caching and
/// progress packets change the command/response layouts and are not offered.
pub const SUPPORTED_MARIADB_CAPS: u32 =
    MariadbCapabilities::MARIADB_CLIENT_EXTENDED_METADATA.bits();

/// What a client session wants from its backend connection.
#[derive(Debug, Clone)]
pub struct SessionOpts {
    pub capabilities: u32,
    pub mariadb_caps: u32,
    pub collation: u8,
    pub database: Option<Vec<u8>>,
    pub max_packet: u32,
}

impl SessionOpts {
    pub fn shape(&self) -> u64 {
        u64::from(self.capabilities & SHAPE_MASK) | u64::from(self.mariadb_caps) << 32
    }
}

/// A TCP connection whose greeting has been read but that is not logged in.
pub struct Greeted {
    io: PacketIo,
    pub greeting: Greeting,
    /// Session thread whose event loop the socket is registered with.
    home: usize,
}

/// An authenticated backend connection.
pub struct BackendConn {
    pub io: PacketIo,
    pub greeting: Greeting,
    pub opts: SessionOpts,
    pub created: Instant,
    pub idle_since: Instant,
    /// Session thread whose event loop the socket is registered with
    /// (`crate::workers::current()` at connect).
    pub home: usize,
}

pub async fn connect(target: &BackendTarget, max_packet: usize) -> Result<Greeted, BackendError> {
    let addr = target.addr();
    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|source| BackendError::Connect { addr, source })?;
    let mut io = PacketIo::new(stream, max_packet);
    let pkt = io.read_packet().await?;
    if let Some(e) = ServerError::parse(&pkt.payload) {
        // e.g. 1040 Too many connections, 1129 host blocked.
        return Err(BackendError::Server(e));
    }
    let greeting = Greeting::parse(&pkt.payload)?;
    Ok(Greeted {
        io,
        greeting,
        home: crate::workers::current(),
    })
}

impl Greeted {
    /// The socket, greeting and home thread, for a login the proxy relays
    /// instead of performing (passthrough authentication).
    pub fn into_parts(self) -> (PacketIo, Greeting, usize) {
        (self.io, self.greeting, self.home)
    }

    /// Logs in with the backend URL's credentials and the client's session
    /// options. Returns the connection and the server's OK packet payload.
    pub async fn authenticate(
        self,
        target: &BackendTarget,
        opts: SessionOpts,
    ) -> Result<(BackendConn, Packet), BackendError> {
        let Greeted {
            mut io,
            greeting,
            home,
        } = self;
        let mut opts = negotiate(opts, &greeting);
        let tls = use_tls(target, &greeting)?;
        if tls {
            opts.capabilities |= Caps::CLIENT_SSL.bits();
        }
        let (caps, mariadb_caps) = (opts.capabilities, opts.mariadb_caps);
        let plugin = greeting.auth_plugin.clone();
        let token = auth_token(&plugin, &greeting.salt, &target.password)?;
        let response = HandshakeResponse {
            capabilities: caps,
            max_packet: opts.max_packet,
            collation: opts.collation,
            mariadb_caps,
            user: target.user.as_bytes().to_vec(),
            auth_response: token,
            database: opts.database.clone(),
            auth_plugin: Some(plugin),
            attributes: None,
        };
        let encoded = response.encode();
        let mut seq = 1;
        if tls {
            // The SSLRequest is the response's first 32 bytes (same
            // capabilities); the whole response follows inside TLS.
            io.write_and_flush(seq, encoded.get(..32).unwrap_or(&encoded))
                .await?;
            io = start_tls(io, target).await?;
            seq += 1;
        }
        io.write_and_flush(seq, &encoded).await?;
        let ok = finish_auth(&mut io, &target.password, &greeting.salt).await?;
        let now = Instant::now();
        Ok((
            BackendConn {
                io,
                greeting,
                opts,
                created: now,
                idle_since: now,
                home,
            },
            ok,
        ))
    }
}

/// Whether this login goes through TLS: the URL's `ssl-mode` against what the
/// server offers. A mode that requires TLS never falls back to plaintext.
pub fn use_tls(target: &BackendTarget, greeting: &Greeting) -> Result<bool, BackendError> {
    let offered = greeting.capabilities.contains(Caps::CLIENT_SSL);
    match target.tls.mode {
        SslMode::Disable => Ok(false),
        SslMode::Prefer => Ok(offered),
        _ if offered => Ok(true),
        _ => Err(BackendError::Tls {
            addr: target.addr(),
            source: TlsError::NotOffered,
        }),
    }
}

/// Runs the TLS handshake on a connection that just sent its SSLRequest.
pub async fn start_tls(io: PacketIo, target: &BackendTarget) -> Result<PacketIo, BackendError> {
    let fail = |source| BackendError::Tls {
        addr: target.addr(),
        source,
    };
    let max_packet = io.max_packet();
    let config = crate::tls::client_config(&target.tls)
        .map_err(fail)?
        .ok_or_else(|| fail(TlsError::NotOffered))?;
    let name = crate::tls::server_name(&target.host).map_err(fail)?;
    let tcp = io.into_plain().ok_or_else(|| fail(TlsError::Unexpected))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| fail(TlsError::Handshake(e)))?;
    Ok(PacketIo::with_stream(
        Stream::Client(Box::new(tls)),
        max_packet,
    ))
}

/// The options a backend with this greeting ends up with when a client asks
/// for `opts`: the client's capabilities, limited to what the server offers and
/// the proxy supports, plus what our login needs.
pub fn negotiate(opts: SessionOpts, greeting: &Greeting) -> SessionOpts {
    let server = greeting.capabilities.bits();
    let required = (Caps::CLIENT_PROTOCOL_41
        | Caps::CLIENT_SECURE_CONNECTION
        | Caps::CLIENT_PLUGIN_AUTH
        | Caps::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
        .bits();
    let mut caps = (opts.capabilities | required) & server & !UNSUPPORTED_CAPS;
    // Keep the "I am not MySQL 4.0" bit as the client sent it: it decides
    // whether MariaDB reads the extended capabilities.
    caps = (caps & !Caps::CLIENT_LONG_PASSWORD.bits())
        | (opts.capabilities & Caps::CLIENT_LONG_PASSWORD.bits());
    let mariadb_caps = opts.mariadb_caps & greeting.mariadb_caps & SUPPORTED_MARIADB_CAPS;
    SessionOpts {
        capabilities: caps,
        mariadb_caps,
        ..opts
    }
}

fn auth_token(plugin: &[u8], salt: &[u8], password: &str) -> Result<Vec<u8>, BackendError> {
    if plugin == NATIVE_PASSWORD {
        Ok(native_token(salt, password))
    } else if plugin == CACHING_SHA2 {
        Ok(
            mysql_common::scramble::scramble_sha256(salt, password.as_bytes())
                .map(|t| t.to_vec())
                .unwrap_or_default(),
        )
    } else {
        Err(BackendError::Auth(format!(
            "backend asks for auth plugin `{}`; tandem supports mysql_native_password and caching_sha2_password",
            String::from_utf8_lossy(plugin)
        )))
    }
}

/// Reads the server's answers after we sent credentials: auth switches and
/// caching_sha2 exchanges (fast auth, or full auth with the password in
/// clear over TLS or RSA-encrypted on plaintext) until OK or ERR.
async fn finish_auth(
    io: &mut PacketIo,
    password: &str,
    salt: &[u8],
) -> Result<Packet, BackendError> {
    use crate::auth::sha2::{
        encrypt_password, FAST_AUTH_SUCCESS, PERFORM_FULL_AUTH, REQUEST_PUBLIC_KEY,
    };
    let mut nonce = salt.to_vec();
    loop {
        let pkt = io.read_packet().await?;
        match pkt.payload.first() {
            Some(&packets::OK) => return Ok(pkt),
            Some(&packets::ERR) => {
                return Err(BackendError::Server(
                    ServerError::parse(&pkt.payload)
                        .unwrap_or_else(|| ServerError::new(1045, b"28000", "Access denied")),
                ))
            }
            Some(&packets::EOF) => {
                // AuthSwitchRequest: plugin name, then a fresh challenge.
                let mut r = Reader::new(&pkt.payload[1..]);
                let plugin = r.null_terminated().to_vec();
                let data = r.remaining();
                nonce = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                let token = auth_token(&plugin, &nonce, password)?;
                io.write_and_flush(pkt.seq.wrapping_add(1), &token).await?;
            }
            Some(&0x01) => match pkt.payload.get(1).copied() {
                Some(FAST_AUTH_SUCCESS) => continue, // OK follows
                Some(PERFORM_FULL_AUTH) if io.tls().is_tls() => {
                    let mut clear = password.as_bytes().to_vec();
                    clear.push(0);
                    io.write_and_flush(pkt.seq.wrapping_add(1), &clear).await?;
                }
                Some(PERFORM_FULL_AUTH) => {
                    // No TLS: ask for the server's RSA key, send the password
                    // encrypted with it.
                    io.write_and_flush(pkt.seq.wrapping_add(1), &[REQUEST_PUBLIC_KEY])
                        .await?;
                    let key = io.read_packet().await?;
                    if let Some(e) = ServerError::parse(&key.payload) {
                        return Err(BackendError::Server(e));
                    }
                    let pem = key
                        .payload
                        .get(1..)
                        .filter(|_| key.payload.first() == Some(&0x01));
                    let pem = pem.ok_or_else(|| {
                        BackendError::Auth("the server sent no RSA public key".into())
                    })?;
                    let sealed =
                        encrypt_password(pem, password, &nonce).map_err(BackendError::Auth)?;
                    io.write_and_flush(key.seq.wrapping_add(1), &sealed).await?;
                }
                _ => {
                    return Err(BackendError::Auth(
                        "unexpected auth data from backend".into(),
                    ))
                }
            },
            _ => {
                return Err(BackendError::Auth(
                    "unexpected packet during backend login".into(),
                ))
            }
        }
    }
}

impl BackendConn {
    /// A connection some other code logged in (a relayed client login).
    pub fn logged_in(io: PacketIo, greeting: Greeting, opts: SessionOpts, home: usize) -> Self {
        let now = Instant::now();
        Self {
            io,
            greeting,
            opts,
            created: now,
            idle_since: now,
            home,
        }
    }

    /// Registers the socket with the current session thread's event loop
    /// when it was opened on another one, so its wake-ups stay on the
    /// session's thread (see `crate::workers`).
    pub fn rehome(self) -> std::io::Result<Self> {
        let here = crate::workers::current();
        if self.home == here {
            return Ok(self);
        }
        Ok(Self {
            io: self.io.rehome()?,
            home: here,
            ..self
        })
    }

    pub fn connection_id(&self) -> u32 {
        self.greeting.connection_id
    }

    pub fn deprecate_eof(&self) -> bool {
        self.opts.capabilities & Caps::CLIENT_DEPRECATE_EOF.bits() != 0
    }

    /// COM_RESET_CONNECTION: rolls back, drops temporary tables, user variables
    /// and prepared statements, releases locks.
    pub async fn reset(&mut self) -> Result<(), BackendError> {
        self.io.write_and_flush(0, &[cmd::RESET_CONNECTION]).await?;
        let pkt = self.io.read_packet().await?;
        match ServerError::parse(&pkt.payload) {
            Some(e) => Err(BackendError::Server(e)),
            None => Ok(()),
        }
    }

    /// COM_CHANGE_USER with the backend credentials: a full session reset that
    /// also sets the database and charset the next client asked for. Returns
    /// the server's OK packet payload.
    pub async fn change_user(
        &mut self,
        target: &BackendTarget,
        collation: u8,
        database: Option<Vec<u8>>,
    ) -> Result<Packet, BackendError> {
        let plugin = self.greeting.auth_plugin.clone();
        let request = ChangeUser {
            user: target.user.as_bytes().to_vec(),
            auth_response: auth_token(&plugin, &self.greeting.salt, &target.password)?,
            database: database.clone(),
            collation: Some(u16::from(collation)),
            auth_plugin: Some(plugin),
            attributes: None,
        };
        self.io.write_and_flush(0, &request.encode()).await?;
        let ok = finish_auth(&mut self.io, &target.password, &self.greeting.salt).await?;
        self.opts.collation = collation;
        self.opts.database = database;
        Ok(ok)
    }

    /// Runs one statement with the text protocol and returns its rows as
    /// strings (NULL as None). For the proxy's own small queries only.
    pub async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, BackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(cmd::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.io.write_and_flush(0, &payload).await?;
        let first = self.io.read_packet().await?;
        if let Some(e) = ServerError::parse(&first.payload) {
            return Err(BackendError::Server(e));
        }
        if first.payload.first() == Some(&packets::OK) {
            return Ok(Vec::new());
        }
        let columns = Reader::new(&first.payload).lenenc_int().unwrap_or(0);
        for _ in 0..columns {
            self.io.read_packet().await?;
        }
        if !self.deprecate_eof() {
            self.io.read_packet().await?;
        }
        let mut rows = Vec::new();
        loop {
            let pkt = self.io.read_packet().await?;
            let p = &pkt.payload;
            if let Some(e) = ServerError::parse(p) {
                return Err(BackendError::Server(e));
            }
            if p.first() == Some(&packets::EOF) && p.len() < 0xff_ffff {
                let status = packets::terminator_status(p, self.deprecate_eof()).unwrap_or(0);
                if status & crate::wire::StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0 {
                    return Err(BackendError::Auth(
                        "query_rows expects one result set".into(),
                    ));
                }
                return Ok(rows);
            }
            let mut r = Reader::new(p);
            let mut row = Vec::with_capacity(columns as usize);
            for _ in 0..columns {
                if r.remaining().first() == Some(&0xfb) {
                    r.u8();
                    row.push(None);
                } else {
                    let v = r
                        .lenenc_bytes()
                        .ok_or(crate::wire::io::WireError::Malformed("bad text row"))?;
                    row.push(Some(String::from_utf8_lossy(v).into_owned()));
                }
            }
            rows.push(row);
        }
    }

    /// Runs `sql` with the text protocol and discards any rows. Returns the
    /// last OK packet's fields; an ERR anywhere is the error.
    pub async fn execute(&mut self, sql: &str) -> Result<packets::OkInfo, BackendError> {
        use crate::wire::response::{Expect, ResponseWalker, Step};
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(cmd::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.io.write_and_flush(0, &payload).await?;
        let mut walker = ResponseWalker::new(Expect::Results, self.deprecate_eof());
        let mut error = None;
        loop {
            let pkt = self.io.read_packet().await?;
            if pkt.payload.first() == Some(&packets::ERR) {
                error = ServerError::parse(&pkt.payload);
            }
            // Logical packets: feed as one physical packet of their length.
            if walker.feed(
                pkt.payload.len().min(crate::wire::MAX_PAYLOAD - 1),
                &pkt.payload,
            )? == Step::Done
            {
                break;
            }
        }
        match error {
            Some(e) => Err(BackendError::Server(e)),
            None => Ok(walker.ok.unwrap_or_default()),
        }
    }

    pub async fn ping(&mut self) -> Result<(), BackendError> {
        self.io.write_and_flush(0, &[cmd::PING]).await?;
        let pkt = self.io.read_packet().await?;
        match ServerError::parse(&pkt.payload) {
            Some(e) => Err(BackendError::Server(e)),
            None => Ok(()),
        }
    }

    pub async fn close(mut self) {
        let _ = self.io.write_and_flush(0, &[cmd::QUIT]).await;
        self.io.shutdown().await;
    }
}

/// Session options the proxy uses for its own connections (pool warm-up,
/// `tandem check`): a modern client's defaults.
pub fn default_opts(database: Option<&str>) -> SessionOpts {
    SessionOpts {
        capabilities: (Caps::CLIENT_PROTOCOL_41
            | Caps::CLIENT_SECURE_CONNECTION
            | Caps::CLIENT_PLUGIN_AUTH
            | Caps::CLIENT_TRANSACTIONS
            | Caps::CLIENT_MULTI_RESULTS
            | Caps::CLIENT_PS_MULTI_RESULTS
            | Caps::CLIENT_DEPRECATE_EOF)
            .bits(),
        mariadb_caps: 0,
        collation: 45, // utf8mb4_general_ci
        database: database.map(|d| d.as_bytes().to_vec()),
        max_packet: 16 << 20,
    }
}
