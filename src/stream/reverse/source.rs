//! The reverse stream's source: a logical slot read over an ordinary
//! connection, turned into the same [`Item`]s the binlog source yields.
//!
//! One round: advance the slot to what MySQL has committed (the stream's
//! checkpoint, read from the shared stats), then
//! `pg_logical_slot_peek_binary_changes(slot, upto, n, pgoutput options)`
//! streamed row by row (tokio-postgres delivers rows as they arrive, so a
//! large transaction is never held whole here), decoded by [`pgoutput`].
//! A peek re-reads from the slot's confirmed position, so the next round
//! starts only after MySQL committed everything this one yielded; anything
//! it re-sends anyway (a crash between the MySQL commit and the advance) is
//! skipped by LSN against the position the source was opened at, which is
//! MySQL's checkpoint. When a round finds nothing, a `Progress` item moves
//! the checkpoint (and so the slot) over WAL that holds no published change,
//! so an idle slot does not keep WAL forever.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_postgres::types::Type;

use super::pgoutput::{self, Datum, Message, Relation};
use super::Names;
use crate::migrate::db::PgConn;
use crate::stream::apply::StreamStats;
use crate::stream::run::SourceError;
use crate::stream::{lsn_text, Change, Item, Position, RowChange, SourceColumn, SourceTable};
use crate::value::mysql::{MysqlKind, MysqlType};
use crate::value::pg::{from_pg_text, PgType};
use crate::value::{Row, Value};

/// Messages asked for per peek (the server finishes the transaction it is
/// in, so a round may return more).
const PEEK_CHANGES: i32 = 5_000;
/// Pause between rounds that found nothing.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// Least time between two `Progress` items of an idle stream.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

fn lost(e: impl std::fmt::Display) -> SourceError {
    SourceError {
        message: format!("PostgreSQL logical slot: {e}"),
        retryable: true,
    }
}

fn fatal(message: String) -> SourceError {
    SourceError {
        message,
        retryable: false,
    }
}

/// A decoded relation with the table the applier sees.
struct Rel {
    types: Vec<PgType>,
    table: Arc<SourceTable>,
    skip: bool,
}

pub struct SlotReader {
    pg: PgConn,
    names: Names,
    /// The MySQL database the rows belong to.
    database: String,
    /// Primary keys by (schema, table), read when the source opens.
    keys: HashMap<(String, String), Vec<String>>,
    rels: HashMap<u32, Rel>,
    stats: Arc<StreamStats>,
    /// Transactions whose commit starts before this LSN were applied
    /// (MySQL's checkpoint when opened, then the last one yielded).
    after: u64,
    /// The slot's confirmed position, as far as this reader moved it.
    confirmed: u64,
    rows: Option<std::pin::Pin<Box<tokio_postgres::RowStream>>>,
    /// WAL end when the current round started, and whether it yielded.
    round_upto: u64,
    round_yielded: bool,
    /// Rows the current round's peek returned: at `PEEK_CHANGES` the server
    /// stopped before `round_upto`, so the round says nothing about the WAL
    /// after its last row.
    round_rows: usize,
    /// Skipping a transaction already applied.
    skipping: bool,
    last_progress: Instant,
    progressed_to: u64,
    /// Column changes without a DDL marker (reported).
    pub(super) ddl_watch: super::ddl::Watch,
}

pub(super) async fn lsn_query(
    pg: &PgConn,
    sql: &str,
    slot: &str,
) -> Result<Option<u64>, SourceError> {
    let row = if sql.contains("$1") {
        pg.client.query_opt(sql, &[&slot]).await
    } else {
        pg.client.query_opt(sql, &[]).await
    }
    .map_err(lost)?;
    Ok(row
        .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
        .and_then(|s| crate::stream::parse_lsn(&s)))
}

impl SlotReader {
    pub async fn open(
        pg: PgConn,
        names: Names,
        database: String,
        stats: Arc<StreamStats>,
        from: u64,
    ) -> Result<SlotReader, SourceError> {
        let confirmed = lsn_query(
            &pg,
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &names.slot,
        )
        .await?;
        let Some(confirmed) = confirmed else {
            return Err(fatal(format!(
                "the replication slot {} does not exist on the new backend: changes since the checkpoint {} cannot be read any more; copy MySQL again from PostgreSQL (backfill + verify) before relying on the way back, then restart (the stream recreates the slot)",
                names.slot,
                lsn_text(from)
            )));
        };
        if confirmed > from {
            // The stream only advances the slot to checkpoints MySQL
            // committed, so this is a takeover overlap (two appliers for a
            // moment, the older checkpoint stored last) — or someone moved
            // the slot by hand, and the changes between are not in MySQL.
            // Decoding can only go on from the slot: say so loudly.
            tracing::error!(
                slot = %names.slot,
                slot_at = %lsn_text(confirmed),
                checkpoint = %lsn_text(from),
                "the replication slot is past the reverse stream's checkpoint: unless two appliers overlapped at a takeover, changes between were not applied to MySQL (run `tandem verify`)"
            );
        }
        let mut keys = HashMap::new();
        let rows = pg
            .client
            .query(
                "SELECT n.nspname::text, c.relname::text, \
                 array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)) \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indisprimary GROUP BY 1, 2",
                &[],
            )
            .await
            .map_err(lost)?;
        for r in rows {
            if let (Ok(s), Ok(t), Ok(k)) = (
                r.try_get::<_, String>(0),
                r.try_get::<_, String>(1),
                r.try_get::<_, Vec<String>>(2),
            ) {
                keys.insert((s, t), k);
            }
        }
        Ok(SlotReader {
            pg,
            names,
            database,
            keys,
            rels: HashMap::new(),
            stats,
            after: from,
            confirmed,
            rows: None,
            round_upto: from,
            round_yielded: true,
            round_rows: 0,
            skipping: false,
            last_progress: Instant::now(),
            progressed_to: from,
            ddl_watch: Default::default(),
        })
    }

    /// The checkpoint MySQL committed, as an LSN.
    fn committed(&self) -> Option<u64> {
        self.stats.snapshot().checkpoint.and_then(|p| p.as_lsn())
    }

    /// Moves the slot to what MySQL committed (never past it).
    async fn advance(&mut self) -> Result<(), SourceError> {
        let Some(to) = self.committed() else {
            return Ok(());
        };
        if to <= self.confirmed {
            return Ok(());
        }
        self.pg
            .client
            .query_opt(
                "SELECT end_lsn::text FROM pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&self.names.slot, &lsn_text(to)],
            )
            .await
            .map_err(lost)?;
        self.confirmed = to;
        Ok(())
    }

    /// Starts a round once MySQL has everything the previous one yielded.
    async fn start_round(&mut self) -> Result<Option<Item>, SourceError> {
        // Wait (briefly, repeatedly) for the applier to commit what was
        // yielded: a peek now would only re-read it.
        let wanted = self.after.max(self.progressed_to);
        let waited = Instant::now();
        while self.committed().unwrap_or(0) < wanted && wanted > self.confirmed {
            if waited.elapsed() > Duration::from_secs(1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.advance().await?;
        if self.round_upto != 0 && !self.round_yielded {
            // The previous round found nothing new up to its end: say so (the
            // checkpoint may move), then wait before asking again. Not when
            // the server cut the round short at `PEEK_CHANGES` rows (all of
            // them re-read transactions the applier had not committed yet):
            // claiming `round_upto` then would skip every transaction between
            // the cut and it — rows lost.
            let complete = self.round_rows < PEEK_CHANGES as usize;
            if complete
                && self.round_upto > self.progressed_to
                && self.last_progress.elapsed() >= PROGRESS_EVERY
            {
                self.progressed_to = self.round_upto;
                self.last_progress = Instant::now();
                self.after = self.after.max(self.round_upto);
                self.round_yielded = true;
                return Ok(Some(Item::Progress {
                    position: Position::lsn(self.round_upto),
                    timestamp: 0,
                }));
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
        // The flush position, not the write position: decoding reads only
        // flushed WAL (with asynchronous commit the two differ), and the
        // `Progress` this round may claim must not pass what it could read.
        let upto = lsn_query(&self.pg, "SELECT pg_current_wal_flush_lsn()::text", "")
            .await?
            .unwrap_or(0);
        let upto_text = lsn_text(upto);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
            &self.names.slot,
            &upto_text,
            &PEEK_CHANGES,
            &self.names.publication,
        ];
        let stream = self
            .pg
            .client
            .query_raw(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3, \
                 'proto_version', '2', 'messages', 'true', 'publication_names', $4)",
                params,
            )
            .await
            .map_err(|e| {
                let text = e.to_string();
                if e.as_db_error().is_some() && !e.is_closed() {
                    fatal(format!(
                        "PostgreSQL refused to decode the slot {} (publication {}): {text}",
                        self.names.slot, self.names.publication
                    ))
                } else {
                    lost(text)
                }
            })?;
        self.rows = Some(Box::pin(stream));
        self.round_upto = upto;
        self.round_yielded = false;
        self.round_rows = 0;
        Ok(None)
    }

    pub async fn next_item(&mut self) -> Result<Item, SourceError> {
        loop {
            let Some(rows) = self.rows.as_mut() else {
                if let Some(item) = self.start_round().await? {
                    return Ok(item);
                }
                continue;
            };
            let row = match rows.next().await {
                None => {
                    self.rows = None;
                    continue;
                }
                Some(r) => r.map_err(lost)?,
            };
            self.round_rows += 1;
            let data: Vec<u8> = row.try_get(0).map_err(lost)?;
            let msg = pgoutput::decode(&data).map_err(|e| fatal(e.to_string()))?;
            if let Some(item) = self.item(msg)? {
                self.round_yielded = true;
                return Ok(item);
            }
        }
    }

    fn item(&mut self, msg: Message) -> Result<Option<Item>, SourceError> {
        Ok(match msg {
            Message::Begin {
                final_lsn,
                commit_us,
                xid,
            } => {
                self.skipping = final_lsn < self.after;
                (!self.skipping).then(|| Item::Begin {
                    gtid: Some(format!("xid {xid} at {}", lsn_text(final_lsn))),
                    timestamp: u32::try_from(commit_us.max(0) / 1_000_000).unwrap_or(0),
                })
            }
            Message::Commit { end_lsn, .. } => {
                if std::mem::take(&mut self.skipping) {
                    None
                } else {
                    self.after = self.after.max(end_lsn);
                    Some(Item::Commit {
                        position: Position::lsn(end_lsn),
                    })
                }
            }
            Message::Relation(r) => {
                self.relation(r);
                None
            }
            _ if self.skipping => None,
            Message::Insert { rel, new } => {
                let (table, after) = self.row(rel, &new, None)?;
                table.map(|t| change(t, RowChange::Insert { after }))
            }
            Message::Update { rel, old, new } => {
                let old_row = match &old {
                    Some((_, o)) => Some(self.row(rel, o, None)?.1),
                    None => None,
                };
                let (table, after) = self.row(rel, &new, old_row.as_deref())?;
                let before = old_row.unwrap_or_else(|| after.clone());
                table.map(|t| change(t, RowChange::Update { before, after }))
            }
            Message::Delete { rel, old } => {
                let (table, before) = self.row(rel, &old.1, None)?;
                table.map(|t| change(t, RowChange::Delete { before }))
            }
            Message::Truncate { rels, .. } => {
                // Emptied inside the transaction (DELETE, not TRUNCATE: MySQL
                // would commit the open transaction implicitly).
                let names: Vec<String> = rels
                    .iter()
                    .filter_map(|id| self.rels.get(id))
                    .filter(|r| !r.skip)
                    .map(|r| format!("DELETE FROM `{}`", r.table.name.replace('`', "``")))
                    .collect();
                (!names.is_empty()).then(|| Item::Ddl {
                    database: self.database.clone(),
                    sql: names.join(";\n"),
                    gtid: None,
                    position: Position::lsn(self.after),
                })
            }
            Message::Logical {
                prefix, content, ..
            } if prefix == super::ddl::PREFIX => match super::ddl::Marker::parse(&content) {
                Ok(m) => {
                    self.ddl_watch.marked(&m);
                    Some(Item::Ddl {
                        database: m.database,
                        sql: m.mysql,
                        gtid: None,
                        position: Position::lsn(self.after),
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reverse stream: unreadable DDL marker skipped; MySQL may drift");
                    None
                }
            },
            Message::Logical { .. } | Message::Other(_) => None,
        })
    }

    fn relation(&mut self, r: Relation) {
        let pk = self.keys.get(&(r.namespace.clone(), r.name.clone()));
        let key: Vec<usize> = match pk {
            Some(names) => names
                .iter()
                .filter_map(|n| r.columns.iter().position(|c| &c.name == n))
                .collect(),
            // No primary key: the replica identity index, unless it is FULL
            // (every column flagged): then the table has no key.
            None if r.identity != b'f' => {
                (0..r.columns.len()).filter(|&i| r.columns[i].key).collect()
            }
            None => Vec::new(),
        };
        let types: Vec<PgType> = r
            .columns
            .iter()
            .map(|c| Type::from_oid(c.type_oid).map_or(PgType::Other, |t| PgType::from_type(&t)))
            .collect();
        let table = SourceTable {
            database: self.database.clone(),
            name: r.name.clone(),
            columns: r
                .columns
                .iter()
                .zip(&types)
                .map(|(c, &t)| SourceColumn {
                    name: c.name.clone(),
                    ty: mysql_like(t),
                    column_type: t.sql_name().to_string(),
                })
                .collect(),
            key,
        };
        let skip = r.name.starts_with("tandem_");
        let before = self
            .rels
            .get(&r.id)
            .map(|old| old.table.columns.iter().map(|c| c.name.as_str()).collect());
        let after = r.columns.iter().map(|c| c.name.as_str()).collect();
        self.ddl_watch.relation(&r.name, before, after);
        self.rels.insert(
            r.id,
            Rel {
                types,
                table: Arc::new(table),
                skip,
            },
        );
    }

    /// A tuple as a row of its table; `None` for a table not applied.
    fn row(
        &self,
        rel: u32,
        tuple: &[Datum],
        old: Option<&[Value]>,
    ) -> Result<(Option<Arc<SourceTable>>, Row), SourceError> {
        let Some(r) = self.rels.get(&rel) else {
            return Err(fatal(format!(
                "pgoutput sent a change of relation {rel} before describing it"
            )));
        };
        if tuple.len() != r.types.len() {
            return Err(fatal(format!(
                "table {}: a change has {} columns where the relation has {}",
                r.table.name,
                tuple.len(),
                r.types.len()
            )));
        }
        let mut row = Vec::with_capacity(tuple.len());
        for (i, (d, &ty)) in tuple.iter().zip(&r.types).enumerate() {
            row.push(match d {
                Datum::Null => Value::Null,
                Datum::Text(b) => from_pg_text(ty, &String::from_utf8_lossy(b)),
                Datum::Unchanged => match old.and_then(|o| o.get(i)) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(fatal(format!(
                            "table {}: PostgreSQL did not send the unchanged TOASTed value of column {}; run `ALTER TABLE {} REPLICA IDENTITY FULL` on PostgreSQL so updates carry whole rows, then resync that table",
                            r.table.name,
                            r.table.columns.get(i).map_or("?", |c| c.name.as_str()),
                            r.table.name
                        )))
                    }
                },
            });
        }
        Ok(((!r.skip).then(|| Arc::clone(&r.table)), row))
    }
}

fn change(table: Arc<SourceTable>, change: RowChange) -> Item {
    Item::Rows(vec![Change { table, change }])
}

/// The MySQL kind a PostgreSQL column's values correspond to (informative:
/// the applier writes by the MySQL table's own types).
fn mysql_like(t: PgType) -> MysqlType {
    use PgType::*;
    MysqlType::new(match t {
        Bool => MysqlKind::Bool,
        Int2 | Int4 | Int8 | Oid => MysqlKind::Int,
        Numeric => MysqlKind::Decimal,
        Float4 => MysqlKind::Float,
        Float8 => MysqlKind::Double,
        Bytea => MysqlKind::Binary,
        Date => MysqlKind::Date,
        Time | Interval => MysqlKind::Time,
        Timestamp => MysqlKind::Datetime,
        Timestamptz => MysqlKind::Timestamp,
        Json | Jsonb => MysqlKind::Json,
        Bit => MysqlKind::Bit,
        Text | Bpchar | Uuid | Other => MysqlKind::Text,
    })
}
