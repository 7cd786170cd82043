//! Running a shadowed statement on one backend from a worker: its own
//! connection (opened on first use, reopened when the address changes or the
//! connection broke), the statement translated for PostgreSQL, and the answer
//! collected into normalized rows.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;

use crate::config::{BackendConfig, BackendKind, BackendTarget};
use crate::migrate::sqltext::Dialect;
use crate::sql::schema::Schema;
use crate::sql::translate;
use crate::stream::apply::checkpoint;
use crate::value::mysql::{from_mysql, MysqlType};
use crate::value::pg::{from_pg_row, PgType};

use super::compare::Collected;
use super::log::SideError;
use super::Job;

/// One side's answer.
pub struct Answer {
    pub result: Result<Collected, SideError>,
    pub latency: Duration,
    /// The PostgreSQL text run, when this side is PostgreSQL.
    pub translated: Option<String>,
}

/// Why a side could not be asked at all (not a difference).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection lost: {0}")]
    Lost(String),
    #[error("not translatable for PostgreSQL: {0}")]
    Untranslatable(String),
    #[error("{0}")]
    Config(String),
}

/// A worker's connection to one backend.
pub enum SideConn {
    My {
        conn: mysql_async::Conn,
        target: BackendTarget,
        database: Option<String>,
    },
    Pg {
        client: tokio_postgres::Client,
        target: BackendTarget,
    },
}

impl SideConn {
    fn target(&self) -> &BackendTarget {
        match self {
            SideConn::My { target, .. } | SideConn::Pg { target, .. } => target,
        }
    }

    fn kind(&self) -> BackendKind {
        match self {
            SideConn::My { .. } => BackendKind::Mysql,
            SideConn::Pg { .. } => BackendKind::Postgres,
        }
    }
}

/// With the change stream: waits (up to `timeout`) until the stream's
/// checkpoint on the new backend covers the primary's GTID position as read
/// now on the old one, so a comparison run next sees at least what the
/// primary had committed when it answered. False when not reached in time or
/// unknown (no GTIDs, no checkpoint yet): the comparison still runs and its
/// recheck tells lag from divergence.
pub async fn stream_reached(
    old: &mut Option<SideConn>,
    new: &mut Option<SideConn>,
    backends: (&BackendConfig, &BackendConfig),
    stream_id: &str,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let wait = async {
        let wanted = match open(old, backends.0, timeout).await? {
            SideConn::My { conn, .. } => conn
                .query_first::<Option<String>, _>("SELECT @@gtid_binlog_pos")
                .await
                .ok()
                .flatten()
                .flatten()?,
            SideConn::Pg { .. } => return None,
        };
        loop {
            let applied = match open(new, backends.1, timeout).await? {
                SideConn::Pg { client, .. } => client
                    .query_opt(&checkpoint::gtid_sql(Dialect::Postgres, stream_id), &[])
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.get::<_, Option<String>>(0)),
                SideConn::My { conn, .. } => conn
                    .query_first::<Option<String>, _>(checkpoint::gtid_sql(
                        Dialect::Mysql,
                        stream_id,
                    ))
                    .await
                    .ok()
                    .flatten()
                    .flatten(),
            };
            match applied.map(|a| crate::stream::gtid_covers(&a, &wanted)) {
                Some(Some(true)) => return Some(()),
                Some(None) => return None,
                _ => {}
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    matches!(tokio::time::timeout(timeout, wait).await, Ok(Some(())))
}

/// The slot's connection, opened (or replaced) for `backend` when needed.
async fn open<'a>(
    slot: &'a mut Option<SideConn>,
    backend: &BackendConfig,
    timeout: Duration,
) -> Option<&'a mut SideConn> {
    let target = backend.target().ok()?;
    if slot
        .as_ref()
        .is_some_and(|c| c.kind() != backend.kind || *c.target() != target)
    {
        *slot = None;
    }
    if slot.is_none() {
        *slot = Some(connect(backend, target, timeout).await.ok()?);
    }
    slot.as_mut()
}

/// Runs `job`'s statement on `backend`, reusing or replacing `slot`.
pub async fn run(
    slot: &mut Option<SideConn>,
    backend: &BackendConfig,
    job: &Job,
    schema: &Schema,
    max_rows: usize,
    timeout: Duration,
) -> Result<Answer, RunError> {
    let target = backend.target().map_err(RunError::Config)?;
    if slot
        .as_ref()
        .is_some_and(|c| c.kind() != backend.kind || *c.target() != target)
    {
        *slot = None;
    }
    let translated = match backend.kind {
        BackendKind::Postgres => Some(translate_one(&job.statement, schema)?),
        BackendKind::Mysql => None,
    };
    if slot.is_none() {
        *slot = Some(connect(backend, target, timeout).await?);
    }
    let Some(conn) = slot.as_mut() else {
        return Err(RunError::Lost("no connection".into()));
    };
    let started = Instant::now();
    let ran = tokio::time::timeout(timeout, async {
        match conn {
            SideConn::My { conn, database, .. } => {
                run_mysql(conn, database, &job.database, &job.statement, max_rows).await
            }
            SideConn::Pg { client, .. } => {
                run_pg(client, translated.as_deref().unwrap_or_default(), max_rows).await
            }
        }
    })
    .await;
    let latency = started.elapsed();
    match ran {
        Ok(Ok(result)) => Ok(Answer {
            result,
            latency,
            translated,
        }),
        Ok(Err(e)) => {
            *slot = None;
            Err(e)
        }
        Err(_) => {
            // The connection is mid-answer: drop it.
            *slot = None;
            Err(RunError::Timeout(timeout))
        }
    }
}

/// The job carries text, not the session's AST (`sql::parse`): the shadow
/// queue is bounded by bytes, which an AST many times the text's size would
/// defeat; the worker's parse is off the client's path.
fn translate_one(sql: &str, schema: &Schema) -> Result<String, RunError> {
    let t =
        translate::to_postgres(sql, schema).map_err(|e| RunError::Untranslatable(e.to_string()))?;
    match <[String; 1]>::try_from(t.statements) {
        Ok([one]) => Ok(one),
        Err(_) => Err(RunError::Untranslatable(
            "one statement became several".into(),
        )),
    }
}

async fn connect(
    backend: &BackendConfig,
    target: BackendTarget,
    timeout: Duration,
) -> Result<SideConn, RunError> {
    let connect_timeout = backend.connect_timeout().min(timeout);
    match backend.kind {
        BackendKind::Mysql => {
            let mut conn = crate::backend::mysql_async_conn::connect(
                &target,
                target.database.clone(),
                connect_timeout,
            )
            .await
            .map_err(|e| RunError::Connect(e.to_string()))?;
            // The client sessions' character set (results are compared by
            // bytes).
            conn.query_drop("SET NAMES utf8mb4")
                .await
                .map_err(|e| RunError::Connect(e.to_string()))?;
            Ok(SideConn::My {
                conn,
                database: target.database.clone(),
                target,
            })
        }
        BackendKind::Postgres => {
            let client = crate::backend::postgres::connect(&target, connect_timeout)
                .await
                .map_err(|e| RunError::Connect(e.to_string()))?;
            Ok(SideConn::Pg { client, target })
        }
    }
}

async fn run_mysql(
    conn: &mut mysql_async::Conn,
    current: &mut Option<String>,
    database: &str,
    sql: &str,
    max_rows: usize,
) -> Result<Result<Collected, SideError>, RunError> {
    if !database.is_empty() && current.as_deref() != Some(database) {
        let use_db = format!("USE `{}`", database.replace('`', "``"));
        match conn.query_drop(use_db).await {
            Ok(()) => *current = Some(database.to_string()),
            Err(e) => return mysql_outcome(e),
        }
    }
    let mut result = match conn.query_iter(sql).await {
        Ok(r) => r,
        Err(e) => return mysql_outcome(e),
    };
    let columns = result.columns().unwrap_or_default();
    let types: Vec<MysqlType> = columns.iter().map(MysqlType::from_column).collect();
    let names = columns.iter().map(|c| c.name_str().into_owned()).collect();
    let mut out = Collected::new(names, max_rows);
    loop {
        match result.next().await {
            Ok(Some(row)) => out.push(
                row.unwrap()
                    .into_iter()
                    .zip(&types)
                    .map(|(v, ty)| from_mysql(v, *ty))
                    .collect(),
            ),
            Ok(None) => break,
            Err(e) => return mysql_outcome(e),
        }
    }
    // Further result sets (there should be none for one SELECT).
    if let Err(e) = result.drop_result().await {
        return mysql_outcome(e);
    }
    Ok(Ok(out))
}

/// A server error is an answer; anything else broke the connection.
fn mysql_outcome(e: mysql_async::Error) -> Result<Result<Collected, SideError>, RunError> {
    match e {
        mysql_async::Error::Server(s) => Ok(Err(SideError {
            code: s.code,
            message: s.message,
        })),
        other => Err(RunError::Lost(other.to_string())),
    }
}

async fn run_pg(
    client: &tokio_postgres::Client,
    sql: &str,
    max_rows: usize,
) -> Result<Result<Collected, SideError>, RunError> {
    let statement = match client.prepare(sql).await {
        Ok(s) => s,
        Err(e) => return pg_outcome(e),
    };
    let types: Vec<PgType> = statement
        .columns()
        .iter()
        .map(|c| PgType::from_type(c.type_()))
        .collect();
    let names = statement
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let stream = match client
        .query_raw(
            &statement,
            std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
        )
        .await
    {
        Ok(s) => s,
        Err(e) => return pg_outcome(e),
    };
    let mut stream = std::pin::pin!(stream);
    let mut out = Collected::new(names, max_rows);
    while let Some(row) = stream.next().await {
        match row {
            Ok(row) => out.push(
                types
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| from_pg_row(&row, i, *ty))
                    .collect(),
            ),
            Err(e) => return pg_outcome(e),
        }
    }
    Ok(Ok(out))
}

fn pg_outcome(e: tokio_postgres::Error) -> Result<Result<Collected, SideError>, RunError> {
    if e.as_db_error().is_none() {
        return Err(RunError::Lost(e.to_string()));
    }
    let mapped = crate::backend::pg_mysql::map_error(&e);
    Ok(Err(SideError {
        code: mapped.code,
        message: mapped.message,
    }))
}
