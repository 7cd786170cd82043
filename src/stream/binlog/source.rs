//! From binlog events to [`Item`]s: the state machine of one replica
//! connection.
//!
//! ```text
//!            GTID / BEGIN                 rows event of a filtered table
//!   Idle ───────────────────▶ Open ───────────────────────────────▶ Open(begun)
//!    ▲                         │ XID / COMMIT                          │ XID / COMMIT
//!    │◀──── Progress ──────────┘                                       │
//!    │◀──── Commit{position} ──────────────────────────────────────────┘
//!    │      query without BEGIN (standalone GTID: DDL) → Ddl or Progress
//! ```
//!
//! `Begin` is yielded lazily, with the first rows of a filtered table, so a
//! transaction that touches only other databases costs the applier one
//! `Progress`. Rows are yielded per rows event (a few KiB each): a huge
//! transaction streams, it is never held. Positions are the header's
//! next-position of the event that ends the transaction, in the file named
//! by the last ROTATE, with the GTID state after it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::mysql::BackendConn;
use crate::config::BackendTarget;
use crate::stream::{Change, Item, Position};

use super::conn::{self, DumpFrom, Packet};
use super::error::{is_purged_message, StreamError};
use super::event::{self, kind, Format, Header, FLAG_ARTIFICIAL};
use super::gtid::GtidState;
use super::rows::{RowsEvent, RowsKind};
use super::schema::{self, Catalog, MappedTable};
use super::tablemap;
use super::{SourceOptions, Start};

/// Table maps remembered at most (a table map precedes every use anyway).
const MAX_TABLE_IDS: usize = 10_000;

/// The open transaction.
struct Txn {
    gtid: Option<String>,
    timestamp: u32,
    /// A BEGIN query was seen: queries until COMMIT are inside it.
    in_begin: bool,
    /// `Item::Begin` was yielded (a filtered table was changed).
    begun: bool,
    /// MariaDB flagged the group as DDL.
    ddl: bool,
}

/// A replica connection yielding the primary's committed changes.
///
/// `next_item` is **not cancel-safe**: dropping its future mid-way may lose
/// an event. Drive it from one task that owns the source (the applier's
/// reader) and hand items on through a bounded channel.
pub struct BinlogSource {
    conn: BackendConn,
    /// Catalog reads and error diagnosis (the replica connection is busy).
    side: BackendConn,
    target: BackendTarget,
    user: String,
    opts: SourceOptions,
    format: Format,
    file: String,
    offset: u64,
    gtid: GtidState,
    /// The position after the last transaction boundary yielded.
    boundary: Position,
    /// table id → the raw table map and its decoder (`None`: filtered out).
    tables: HashMap<u64, (Bytes, Option<Arc<MappedTable>>)>,
    catalog: Catalog,
    txn: Option<Txn>,
    queue: VecDeque<Item>,
    idle: Option<Duration>,
}

impl BinlogSource {
    pub async fn connect(
        target: &BackendTarget,
        opts: SourceOptions,
    ) -> Result<BinlogSource, StreamError> {
        let user = target.user.clone();
        let mut side = conn::login(target).await?;
        let vars = side
            .query_rows("SELECT @@global.log_bin, @@global.binlog_format")
            .await
            .map_err(|e| StreamError::from_backend(e, &user))?;
        let row = vars.into_iter().next().unwrap_or_default();
        let log_bin = row.first().cloned().flatten().unwrap_or_default();
        let format = row.get(1).cloned().flatten().unwrap_or_default();
        if log_bin != "1" && !log_bin.eq_ignore_ascii_case("on") {
            return Err(StreamError::Unsupported(
                "the primary has no binlog: set `log_bin=mariadb-bin` (and a `server_id`) under [mysqld] and restart it"
                    .into(),
            ));
        }
        if !format.eq_ignore_ascii_case("ROW") {
            return Err(StreamError::NotRow { format });
        }
        let (from, file, offset, gtid) = match &opts.start {
            Start::Now => {
                let p = super::current_position(&mut side).await?;
                let gtid = p.gtid.as_deref().and_then(GtidState::parse);
                (
                    DumpFrom::File {
                        file: p.file.clone(),
                        offset: p.offset,
                    },
                    p.file,
                    p.offset,
                    gtid,
                )
            }
            Start::At(p) => (
                DumpFrom::File {
                    file: p.file.clone(),
                    offset: p.offset,
                },
                p.file.clone(),
                p.offset,
                p.gtid.as_deref().and_then(GtidState::parse),
            ),
            Start::Gtid(s) => (
                DumpFrom::Gtid(s.clone()),
                String::new(),
                4,
                GtidState::parse(s),
            ),
        };
        let mut conn = conn::login(target).await?;
        conn::start_dump(&mut conn, &user, opts.server_id, &from, opts.heartbeat).await?;
        let idle = opts.heartbeat.map(|h| h * 3 + Duration::from_secs(1));
        Ok(BinlogSource {
            conn,
            side,
            target: target.clone(),
            user,
            opts,
            format: Format::default(),
            boundary: Position {
                file: file.clone(),
                offset,
                gtid: gtid.as_ref().and_then(GtidState::to_text),
            },
            file,
            offset,
            gtid: gtid.unwrap_or_default(),
            tables: HashMap::new(),
            catalog: Catalog::default(),
            txn: None,
            queue: VecDeque::new(),
            idle,
        })
    }

    /// The position just past the last complete event read.
    pub fn position(&self) -> Position {
        Position {
            file: self.file.clone(),
            offset: self.offset,
            gtid: self.gtid.to_text(),
        }
    }

    /// The next item in commit order. Errors end the source: reconnect from
    /// the last checkpoint when [`StreamError::is_retryable`].
    pub async fn next_item(&mut self) -> Result<Item, StreamError> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(item);
            }
            match conn::read_event(&mut self.conn, self.idle).await? {
                Packet::Event(bytes) => self.handle(bytes).await?,
                Packet::End => {
                    return Err(StreamError::Disconnected(
                        "the primary ended the binlog stream".into(),
                    ))
                }
                Packet::Error(e) => return Err(self.server_error(e).await),
            }
        }
    }

    /// Closes both connections.
    pub async fn close(self) {
        self.conn.close().await;
        self.side.close().await;
    }

    async fn server_error(&mut self, e: crate::wire::packets::ServerError) -> StreamError {
        if e.code != 1236 || !is_purged_message(&e.message) {
            return StreamError::from_server(e, &self.user);
        }
        let wanted = match (&self.opts.start, self.file.is_empty()) {
            (Start::Gtid(s), true) => format!("GTID {s}"),
            _ => format!("{}:{}", self.file, self.offset),
        };
        let oldest = match self.side.query_rows("SHOW BINARY LOGS").await {
            Ok(rows) => rows
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next().flatten())
                .unwrap_or_else(|| "none".into()),
            Err(_) => "unknown".into(),
        };
        tracing::error!(%wanted, %oldest, server = %e, "binlog purged past the stream's position");
        StreamError::Purged { wanted, oldest }
    }

    fn malformed(&self, what: impl Into<String>) -> StreamError {
        StreamError::Malformed {
            at: format!("{}:{}", self.file, self.offset),
            what: what.into(),
        }
    }

    async fn handle(&mut self, raw: Bytes) -> Result<(), StreamError> {
        let (header, body) = event::split(&raw, &self.format).map_err(|e| self.malformed(e))?;
        if header.next_pos != 0 && header.flags & FLAG_ARTIFICIAL == 0 {
            self.offset = u64::from(header.next_pos);
        }
        match header.kind {
            kind::FORMAT_DESCRIPTION => {
                self.format = event::format_description(body).map_err(|e| self.malformed(e))?;
            }
            kind::ROTATE => {
                let (file, pos) = event::rotate(body).map_err(|e| self.malformed(e))?;
                let changed = file != self.file;
                self.file = file;
                self.offset = pos;
                if changed && header.flags & FLAG_ARTIFICIAL == 0 && self.txn.is_none() {
                    self.progress(header.timestamp);
                }
            }
            kind::MARIADB_GTID => {
                let g = event::mariadb_gtid(&header, body).map_err(|e| self.malformed(e))?;
                self.gtid.apply_mariadb(g.domain, g.server, g.seq);
                self.open(
                    Some(format!("{}-{}-{}", g.domain, g.server, g.seq)),
                    header.timestamp,
                );
                if let Some(t) = &mut self.txn {
                    t.ddl = g.standalone() && g.flags & event::MariadbGtid::FL_DDL != 0;
                    // MariaDB logs no BEGIN query: a non-standalone GTID is it.
                    t.in_begin = !g.standalone();
                }
            }
            kind::MYSQL_GTID => {
                let (uuid, gno) = event::mysql_gtid(body).map_err(|e| self.malformed(e))?;
                self.gtid.apply_mysql(&uuid, gno);
                self.open(Some(format!("{uuid}:{gno}")), header.timestamp);
            }
            kind::MYSQL_ANONYMOUS_GTID => self.open(None, header.timestamp),
            kind::QUERY => self.query(&header, body, false)?,
            kind::MARIADB_QUERY_COMPRESSED => self.query(&header, body, true)?,
            kind::XID => self.end(header.timestamp),
            kind::TABLE_MAP => self.table_map(body).await?,
            kind::WRITE_ROWS_V1
            | kind::UPDATE_ROWS_V1
            | kind::DELETE_ROWS_V1
            | kind::WRITE_ROWS_V2
            | kind::UPDATE_ROWS_V2
            | kind::DELETE_ROWS_V2
            | kind::MARIADB_WRITE_ROWS_COMPRESSED_V1..=kind::MARIADB_DELETE_ROWS_COMPRESSED => {
                self.rows(&header, body)?
            }
            kind::HEARTBEAT if self.txn.is_none() => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as u32);
                self.progress(now);
            }
            kind::TRANSACTION_PAYLOAD => {
                return Err(StreamError::Unsupported(
                    "compressed transaction payloads: set `binlog_transaction_compression=OFF` on the primary"
                        .into(),
                ))
            }
            // ANNOTATE_ROWS, BINLOG_CHECKPOINT, GTID_LIST, PREVIOUS_GTIDS,
            // STOP, INTVAR/RAND/USER_VAR (statement format only) …
            _ => {}
        }
        Ok(())
    }

    fn open(&mut self, gtid: Option<String>, timestamp: u32) {
        if self.txn.is_some() {
            tracing::warn!(at = %format!("{}:{}", self.file, self.offset), "transaction without an end in the binlog; starting the next one");
        }
        self.txn = Some(Txn {
            gtid,
            timestamp,
            in_begin: false,
            begun: false,
            ddl: false,
        });
    }

    /// Yields the open transaction's `Begin` if it was not yet.
    fn ensure_begun(&mut self) {
        if let Some(t) = &mut self.txn {
            if !t.begun {
                t.begun = true;
                self.queue.push_back(Item::Begin {
                    gtid: t.gtid.clone(),
                    timestamp: t.timestamp,
                });
            }
        }
    }

    fn progress(&mut self, timestamp: u32) {
        let position = self.position();
        self.boundary = position.clone();
        self.queue.push_back(Item::Progress {
            position,
            timestamp,
        });
    }

    /// The transaction ended: `Commit` if it was yielded, else `Progress`.
    fn end(&mut self, timestamp: u32) {
        match self.txn.take() {
            Some(t) if t.begun => {
                let position = self.position();
                self.boundary = position.clone();
                self.queue.push_back(Item::Commit { position });
            }
            _ => self.progress(timestamp),
        }
    }

    fn query(&mut self, header: &Header, body: &[u8], compressed: bool) -> Result<(), StreamError> {
        let q = event::query(body, &self.format, compressed).map_err(|e| self.malformed(e))?;
        let sql = String::from_utf8_lossy(&q.sql).into_owned();
        let database = String::from_utf8_lossy(q.database).into_owned();
        let first = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match first.as_str() {
            "BEGIN" => {
                if self.txn.is_none() {
                    self.open(None, header.timestamp);
                }
                if let Some(t) = &mut self.txn {
                    t.in_begin = true;
                }
                return Ok(());
            }
            // ROLLBACK is logged only when non-transactional tables were
            // changed (their rows are real): end the group like COMMIT.
            "COMMIT" | "ROLLBACK" if self.txn.is_some() => {
                self.end(header.timestamp);
                return Ok(());
            }
            _ => {}
        }
        let is_ddl = matches!(
            first.as_str(),
            "CREATE" | "ALTER" | "DROP" | "RENAME" | "TRUNCATE"
        ) && !is_account_statement(&sql);
        let concerns = self.opts.filter.concerns(&database, &sql);
        if self.txn.as_ref().is_some_and(|t| t.in_begin) {
            if concerns
                && matches!(
                    first.as_str(),
                    "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "LOAD"
                )
            {
                return Err(StreamError::NotRow {
                    format: format!(
                        "STATEMENT or MIXED (a statement-logged write at {}:{})",
                        self.file, self.offset
                    ),
                });
            }
            if is_ddl {
                // `CREATE TABLE … SELECT`: the CREATE and its rows are one
                // transaction. The Ddl goes inside it, at the position the
                // transaction started from (not a checkpoint).
                self.catalog.invalidate();
                self.tables.clear();
                if concerns {
                    self.ensure_begun();
                    let position = self.boundary.clone();
                    self.queue.push_back(Item::Ddl {
                        database,
                        sql,
                        gtid: None,
                        position,
                    });
                }
                return Ok(());
            }
            tracing::debug!(%sql, "statement inside a binlog transaction ignored");
            return Ok(());
        }
        // A statement group of its own: DDL (standalone GTID) and the like.
        let txn = self.txn.take();
        let flagged = txn.as_ref().is_some_and(|t| t.ddl);
        let gtid = txn.and_then(|t| t.gtid);
        let is_ddl = (flagged || is_ddl) && !is_account_statement(&sql);
        if is_ddl {
            // Table ids and catalog entries may describe the old shape.
            self.catalog.invalidate();
            self.tables.clear();
        }
        if is_ddl && concerns {
            let position = self.position();
            self.boundary = position.clone();
            self.queue.push_back(Item::Ddl {
                database,
                sql,
                gtid,
                position,
            });
        } else {
            self.progress(header.timestamp);
        }
        Ok(())
    }

    async fn table_map(&mut self, body: &[u8]) -> Result<(), StreamError> {
        let post = self.format.post_header_len(kind::TABLE_MAP, 8);
        let map = tablemap::parse(body, post).map_err(|e| self.malformed(e))?;
        if let Some((raw, _)) = self.tables.get(&map.table_id) {
            if raw.as_ref() == body {
                return Ok(());
            }
        }
        let mapped = if self.opts.filter.matches(&map.database) {
            let catalog = match self
                .catalog
                .get(&mut self.side, &map.database, &map.table)
                .await
            {
                Ok(c) => c,
                // The side connection idles between DDLs and may have been
                // closed by wait_timeout: log in again once.
                Err(crate::backend::BackendError::Wire(e)) if e.is_disconnect() => {
                    tracing::info!("catalog connection lost ({e}); reconnecting");
                    self.side = conn::login(&self.target).await?;
                    self.catalog
                        .get(&mut self.side, &map.database, &map.table)
                        .await
                        .map_err(|e| StreamError::from_backend(e, &self.user))?
                }
                Err(e) => return Err(StreamError::from_backend(e, &self.user)),
            };
            Some(Arc::new(schema::build(&map, catalog.as_deref())))
        } else {
            None
        };
        if self.tables.len() >= MAX_TABLE_IDS {
            // Table ids are reassigned as tables are reopened: stay bounded.
            self.tables.clear();
        }
        self.tables
            .insert(map.table_id, (Bytes::copy_from_slice(body), mapped));
        Ok(())
    }

    fn rows(&mut self, header: &Header, body: &[u8]) -> Result<(), StreamError> {
        use kind::*;
        let (kind, v2, compressed) = match header.kind {
            WRITE_ROWS_V1 => (RowsKind::Write, false, false),
            UPDATE_ROWS_V1 => (RowsKind::Update, false, false),
            DELETE_ROWS_V1 => (RowsKind::Delete, false, false),
            WRITE_ROWS_V2 => (RowsKind::Write, true, false),
            UPDATE_ROWS_V2 => (RowsKind::Update, true, false),
            DELETE_ROWS_V2 => (RowsKind::Delete, true, false),
            MARIADB_WRITE_ROWS_COMPRESSED_V1 => (RowsKind::Write, false, true),
            MARIADB_UPDATE_ROWS_COMPRESSED_V1 => (RowsKind::Update, false, true),
            MARIADB_DELETE_ROWS_COMPRESSED_V1 => (RowsKind::Delete, false, true),
            MARIADB_WRITE_ROWS_COMPRESSED => (RowsKind::Write, true, true),
            MARIADB_UPDATE_ROWS_COMPRESSED => (RowsKind::Update, true, true),
            _ => (RowsKind::Delete, true, true),
        };
        let post = self
            .format
            .post_header_len(header.kind, if v2 { 10 } else { 8 });
        let ev =
            RowsEvent::parse(body, kind, v2, compressed, post).map_err(|e| self.malformed(e))?;
        let table = match self.tables.get(&ev.table_id) {
            Some((_, Some(t))) => t.clone(),
            Some((_, None)) => return Ok(()),
            None => return Err(self.malformed("rows event for a table id without a table map")),
        };
        let images = ev.rows(&table.codecs).map_err(|e| {
            self.malformed(format!(
                "{}.{}: {e}",
                table.source.database, table.source.name
            ))
        })?;
        if self.txn.is_none() {
            self.open(None, header.timestamp);
        }
        self.ensure_begun();
        let changes = images
            .into_iter()
            .map(|change| Change {
                table: table.source.clone(),
                change,
            })
            .collect();
        self.queue.push_back(Item::Rows(changes));
        Ok(())
    }
}

/// CREATE/DROP/ALTER USER or ROLE: server-wide, not schema.
fn is_account_statement(sql: &str) -> bool {
    let mut words = sql.split_whitespace().skip(1);
    let mut second = words.next().unwrap_or("").to_ascii_uppercase();
    if second == "OR" {
        // CREATE OR REPLACE USER
        second = words.nth(1).unwrap_or("").to_ascii_uppercase();
    }
    matches!(second.as_str(), "USER" | "ROLE" | "SERVER")
}
