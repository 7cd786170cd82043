//! The old side's half of `tandem backfill`: each chunk is read in key
//! order inside a consistent snapshot (its binlog coordinates go with the
//! chunk, see [`super::streamsync`]) and handed to the writer over a small
//! bounded channel, as COPY text (PostgreSQL target) or rows (MySQL target).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;

use crate::value::{Row, Value};

use super::catalog::TablePlan;
use super::db::Db;
use super::progress::RateLimiter;
use super::sqltext::{read_types, select_range, Bounds, Dialect};
use super::streamsync::{self, Coordinates};
use super::write::Writer;
use super::{MigrateError, Side, Sides};

/// Bytes of COPY data (or rows for MySQL) handed over at a time.
const BLOCK_BYTES: usize = 256 << 10;
const MYSQL_BLOCK_ROWS: usize = 1000;

/// What the reader hands the writer.
pub(super) enum Block {
    Copy(Bytes),
    Rows(Vec<Row>),
    /// The chunk ends here; `last_key` is its last row's key.
    ChunkEnd {
        last_key: Option<Vec<Value>>,
        rows: u64,
        done: bool,
        snapshot: Option<Coordinates>,
    },
    Failed(MigrateError),
}

/// Reads the old side chunk by chunk and sends blocks; stops at the end of
/// the table.
pub(super) async fn read_chunks(
    sides: &Sides,
    plan: &TablePlan,
    chunk_rows: u64,
    mut after: Option<Vec<Value>>,
    limiter: Option<Arc<RateLimiter>>,
    encoder: Option<Writer>,
    tx: &mpsc::Sender<Block>,
) -> Result<(), MigrateError> {
    let mut db = sides.connect(Side::Old).await?;
    let d = db.dialect();
    let types = read_types(plan, Side::Old);
    let closed = || MigrateError::Task("the writer stopped".into());
    loop {
        let limit = (chunk_rows != u64::MAX).then_some(chunk_rows);
        let sql = if plan.key.is_empty() {
            select_range(d, plan, Side::Old, Bounds::default(), None, false)
        } else {
            select_range(
                d,
                plan,
                Side::Old,
                Bounds {
                    after: after.as_deref(),
                    upto: None,
                },
                limit,
                false,
            )
        };
        let snapshot = streamsync::begin_snapshot(&mut db).await?;
        let mut cursor = db.cursor(&sql, &types).await?;
        let mut rows = 0u64;
        let mut unthrottled = 0u64;
        let mut last: Option<Row> = None;
        let mut buf = Vec::with_capacity(BLOCK_BYTES + (64 << 10));
        let mut batch = Vec::new();
        while let Some(row) = cursor.next().await? {
            rows += 1;
            match &encoder {
                Some(w) => {
                    w.encode_pg(plan, &row, &mut buf)?;
                    if buf.len() >= BLOCK_BYTES {
                        let block = Bytes::from(std::mem::replace(
                            &mut buf,
                            Vec::with_capacity(BLOCK_BYTES + (64 << 10)),
                        ));
                        tx.send(Block::Copy(block)).await.map_err(|_| closed())?;
                    }
                    last = Some(row);
                }
                None => {
                    if !plan.key.is_empty() {
                        last = Some(row.clone());
                    }
                    batch.push(row);
                    if batch.len() >= MYSQL_BLOCK_ROWS {
                        tx.send(Block::Rows(std::mem::take(&mut batch)))
                            .await
                            .map_err(|_| closed())?;
                    }
                }
            }
            unthrottled += 1;
            if unthrottled >= 256 {
                if let Some(l) = &limiter {
                    l.acquire(unthrottled).await;
                }
                unthrottled = 0;
            }
        }
        drop(cursor);
        if d == Dialect::Mysql {
            db.execute("COMMIT").await?;
        }
        if let Some(l) = &limiter {
            l.acquire(unthrottled).await;
        }
        if !buf.is_empty() {
            tx.send(Block::Copy(Bytes::from(buf)))
                .await
                .map_err(|_| closed())?;
        }
        if !batch.is_empty() {
            tx.send(Block::Rows(batch)).await.map_err(|_| closed())?;
        }
        let last_key = last
            .as_ref()
            .filter(|_| !plan.key.is_empty())
            .map(|r| plan.key_of(r));
        let done = plan.key.is_empty() || rows < chunk_rows;
        tx.send(Block::ChunkEnd {
            last_key: last_key.clone(),
            rows,
            done,
            snapshot,
        })
        .await
        .map_err(|_| closed())?;
        if done {
            return Ok(());
        }
        after = last_key;
    }
}

/// Reads the chunk `(after, upto]` from the old side again and COPYs it
/// into the staging table (after a direct COPY of it hit an existing row).
pub(super) async fn restage(
    old: &mut Db,
    client: &tokio_postgres::Client,
    plan: &TablePlan,
    writer: &Writer,
    after: Option<&[Value]>,
    upto: &[Value],
) -> Result<(), MigrateError> {
    let types = read_types(plan, Side::Old);
    let sql = select_range(
        old.dialect(),
        plan,
        Side::Old,
        Bounds {
            after,
            upto: Some(upto),
        },
        None,
        false,
    );
    let mut cursor = old.cursor(&sql, &types).await?;
    let sink = client.copy_in::<_, Bytes>(&writer.copy_statement()).await?;
    futures_util::pin_mut!(sink);
    let mut buf = Vec::with_capacity(BLOCK_BYTES + (64 << 10));
    while let Some(row) = cursor.next().await? {
        writer.encode_pg(plan, &row, &mut buf)?;
        if buf.len() >= BLOCK_BYTES {
            sink.send(Bytes::from(std::mem::take(&mut buf))).await?;
        }
    }
    if !buf.is_empty() {
        sink.send(Bytes::from(buf)).await?;
    }
    sink.finish().await?;
    Ok(())
}
