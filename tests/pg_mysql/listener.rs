//! A minimal MySQL server for the tests: a handshake that accepts anyone,
//! then COM_QUERY, COM_STMT_PREPARE and COM_STMT_EXECUTE answered from
//! PostgreSQL by `pg_mysql`, so a real MySQL driver (mysql_async) parses
//! every packet the layer writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::backend::pg_mysql::{
    ClientContext, ColumnHints, MysqlColumnType, PgSession, Request, Summary,
};
use tandem::config::BackendTarget;
use tandem::wire::execute::{parse_params, ParamType, ParamValue};
use tandem::wire::handshake::{random_salt, Greeting, HandshakeResponse, NATIVE_PASSWORD};
use tandem::wire::io::PacketIo;
use tandem::wire::packets::{ok_packet, OkInfo, ServerError};
use tandem::wire::{cmd, CapabilityFlags as Caps};

/// MySQL column types by (table, column), read from MariaDB's
/// information_schema: what the proxy's schema cache would provide.
#[derive(Default)]
pub struct MapHints(pub HashMap<(String, String), MysqlColumnType>);

impl ColumnHints for MapHints {
    fn mysql_column(&self, table: &str, column: &str) -> Option<MysqlColumnType> {
        self.0
            .get(&(table.to_string(), column.to_string()))
            .copied()
    }
}

pub struct Setup {
    pub pg: BackendTarget,
    pub hints: MapHints,
    /// Offer CLIENT_DEPRECATE_EOF (mysql_async takes it when offered).
    pub deprecate_eof: bool,
    /// The MySQL database name reported in column definitions.
    pub schema: String,
}

pub struct Listener {
    pub port: u16,
    /// Every statement's summary, in order, across connections.
    pub summaries: Arc<Mutex<Vec<Summary>>>,
}

impl Listener {
    pub fn last_summary(&self) -> Summary {
        self.summaries
            .lock()
            .expect("summaries lock")
            .last()
            .cloned()
            .expect("a statement ran")
    }

    pub fn opts(&self) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("anyone"))
            .prefer_socket(false)
            // Otherwise mysql_async asks for these with a SELECT at login.
            .max_allowed_packet(Some(64 << 20))
            .wait_timeout(Some(28_800))
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts())
            .await
            .expect("connect to the test listener")
    }
}

pub async fn start(setup: Setup) -> Listener {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let summaries = Arc::new(Mutex::new(Vec::new()));
    let setup = Arc::new(setup);
    let s = summaries.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (setup, s) = (setup.clone(), s.clone());
            tokio::spawn(async move {
                if let Err(e) = serve(stream, &setup, &s).await {
                    eprintln!("test listener session ended: {e}");
                }
            });
        }
    });
    Listener { port, summaries }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Stmt {
    sql: String,
    params: u16,
    types: Vec<ParamType>,
}

async fn serve(
    stream: tokio::net::TcpStream,
    setup: &Setup,
    summaries: &Mutex<Vec<Summary>>,
) -> Result<(), BoxError> {
    let mut io = PacketIo::new(stream, 64 << 20);
    let mut caps = Caps::CLIENT_PROTOCOL_41
        | Caps::CLIENT_LONG_PASSWORD
        | Caps::CLIENT_SECURE_CONNECTION
        | Caps::CLIENT_PLUGIN_AUTH
        | Caps::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | Caps::CLIENT_CONNECT_WITH_DB
        | Caps::CLIENT_TRANSACTIONS
        | Caps::CLIENT_MULTI_RESULTS
        | Caps::CLIENT_LONG_FLAG
        | Caps::CLIENT_SESSION_TRACK;
    if setup.deprecate_eof {
        caps |= Caps::CLIENT_DEPRECATE_EOF;
    }
    let greeting = Greeting {
        server_version: b"5.5.5-10.11.0-MariaDB-pgtest".to_vec(),
        connection_id: 7,
        salt: random_salt(),
        capabilities: caps,
        mariadb_caps: 0,
        collation: 45,
        status: 2,
        auth_plugin: NATIVE_PASSWORD.to_vec(),
    };
    io.write_and_flush(0, &greeting.encode()).await?;
    let login = io.read_packet().await?;
    let response = HandshakeResponse::parse(&login.payload)?;
    let ok = ok_packet(OkInfo {
        status: 2,
        ..Default::default()
    });
    io.write_and_flush(login.seq.wrapping_add(1), &ok).await?;
    let client_caps = caps & response.caps();
    let mut pg = PgSession::connect(&setup.pg, Duration::from_secs(10)).await?;
    let mut stmts: HashMap<u32, Stmt> = HashMap::new();
    let mut next_id = 0u32;
    loop {
        let Ok(pkt) = io.read_packet().await else {
            return Ok(());
        };
        let payload = &pkt.payload[..];
        let cx = ClientContext {
            capabilities: client_caps,
            mariadb_caps: 0,
            collation: u16::from(response.collation),
            schema: &setup.schema,
        };
        let text = || String::from_utf8_lossy(&payload[1..]).into_owned();
        let summary = match payload.first().copied().unwrap_or(0) {
            cmd::QUERY => {
                let sql = text();
                let req = request(&sql, &[], false);
                Some(
                    pg.query_to_mysql(&req, &cx, &setup.hints, &mut io, 1)
                        .await?,
                )
            }
            cmd::STMT_PREPARE => {
                let sql = text();
                next_id += 1;
                let req = request(&sql, &[], true);
                let p = pg
                    .prepare_to_mysql(&req, next_id, &cx, &setup.hints, &mut io, 1)
                    .await?;
                if p.error.is_none() {
                    stmts.insert(
                        next_id,
                        Stmt {
                            sql,
                            params: p.params,
                            types: Vec::new(),
                        },
                    );
                }
                None
            }
            cmd::STMT_EXECUTE => {
                let id = payload
                    .get(1..5)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(0);
                let Some(stmt) = stmts.get_mut(&id) else {
                    let e = ServerError::new(1243, b"HY000", "Unknown prepared statement handler");
                    io.write_and_flush(1, &e.encode()).await?;
                    continue;
                };
                let n = usize::from(stmt.params);
                let values = parse_params(payload, n, &mut stmt.types, &vec![false; n])?;
                let texts: Vec<Option<Vec<u8>>> = values.iter().map(param_text).collect();
                let params: Vec<Option<&[u8]>> = texts.iter().map(|t| t.as_deref()).collect();
                let req = request(&stmt.sql, &params, true);
                Some(
                    pg.query_to_mysql(&req, &cx, &setup.hints, &mut io, 1)
                        .await?,
                )
            }
            cmd::STMT_CLOSE => {
                if let Some(b) = payload.get(1..5) {
                    stmts.remove(&u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                }
                continue;
            }
            cmd::QUIT => return Ok(()),
            cmd::PING | cmd::INIT_DB | cmd::STMT_RESET => {
                io.write_packet(1, &ok);
                None
            }
            _ => {
                io.write_packet(
                    1,
                    &ServerError::new(1047, b"08S01", "Unknown command").encode(),
                );
                None
            }
        };
        io.flush().await?;
        if let Some(s) = summary {
            summaries.lock().expect("summaries lock").push(s);
        }
    }
}

/// The test's contract for insert ids: a statement ending in `RETURNING id`
/// reports the id instead of rows.
fn request<'a>(sql: &'a str, params: &'a [Option<&'a [u8]>], binary: bool) -> Request<'a> {
    Request {
        sql,
        params,
        binary,
        returning_id: sql.trim_end().ends_with("RETURNING id"),
        status: 2,
    }
}

/// A COM_STMT_EXECUTE value as the text PostgreSQL parses.
fn param_text(v: &ParamValue) -> Option<Vec<u8>> {
    let s = match v {
        ParamValue::Null | ParamValue::LongData => return None,
        ParamValue::Int(i) => i.to_string(),
        ParamValue::UInt(u) => u.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::Double(d) => d.to_string(),
        ParamValue::Bytes(b) => return Some(b.clone()),
        ParamValue::DateTime(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        ParamValue::Date(y, m, d) => format!("{y:04}-{m:02}-{d:02}"),
        ParamValue::Time(neg, days, h, m, s, us) => format!(
            "{}{:02}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            days * 24 + u32::from(*h)
        ),
    };
    Some(s.into_bytes())
}
