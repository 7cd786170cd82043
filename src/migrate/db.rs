//! Connections for the migrate commands, and row cursors that turn either
//! engine's result stream into normalized rows one at a time (memory stays
//! bounded by one row, whatever the result size).

use std::pin::Pin;

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::TextProtocol;

use crate::config::{BackendConfig, BackendKind};
use crate::value::{mysql as vmy, pg as vpg, Row, Value};

use super::types::{ColType, Dialect};
use super::MigrateError;

pub struct PgConn {
    pub client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection to either side.
pub enum Db {
    My(mysql_async::Conn),
    Pg(PgConn),
}

/// Session settings that make both engines print and compare the same way:
/// UTC for TIMESTAMP/timestamptz, UTF-8, standard string literals. The long
/// MySQL write timeout lets a throttled reader pause mid-result.
const MYSQL_SESSION: &str = "SET NAMES utf8mb4, time_zone = '+00:00', \
     SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600";
const PG_SESSION: &str = "SET TimeZone = 'UTC'; SET client_encoding = 'UTF8'; \
     SET standard_conforming_strings = on; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; \
     SET client_min_messages = warning";

pub async fn connect(b: &BackendConfig, what: &str) -> Result<Db, MigrateError> {
    let target = b
        .target()
        .map_err(|e| MigrateError::Config(format!("{what}.url: {e}")))?;
    let timeout = b.connect_timeout();
    let fail = |e: String| MigrateError::Connect {
        what: what.to_string(),
        addr: target.addr(),
        message: e,
    };
    match b.kind {
        BackendKind::Mysql => {
            let Some(db) = target.database.clone() else {
                return Err(MigrateError::Config(format!(
                    "{what}.url names no database: write mysql://user:pass@host:port/DATABASE"
                )));
            };
            let mut conn = crate::backend::mysql_async_conn::connect(&target, Some(db), timeout)
                .await
                .map_err(|e| fail(e.to_string()))?;
            conn.query_drop(MYSQL_SESSION).await?;
            Ok(Db::My(conn))
        }
        BackendKind::Postgres => {
            let (client, task) =
                crate::backend::postgres::connect_with(&target, timeout, "tandem-migrate", None)
                    .await
                    .map_err(|e| fail(e.reason()))?;
            client.batch_execute(PG_SESSION).await?;
            Ok(Db::Pg(PgConn { client, task }))
        }
    }
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::My(_) => Dialect::Mysql,
            Db::Pg(_) => Dialect::Postgres,
        }
    }

    /// Runs statements that return no rows.
    pub async fn execute(&mut self, sql: &str) -> Result<(), MigrateError> {
        match self {
            Db::My(c) => c.query_drop(sql).await?,
            Db::Pg(p) => p.client.batch_execute(sql).await?,
        }
        Ok(())
    }

    /// Runs one statement and returns the number of rows it affected.
    pub async fn execute_count(&mut self, sql: &str) -> Result<u64, MigrateError> {
        match self {
            Db::My(c) => {
                c.query_drop(sql).await?;
                Ok(c.affected_rows())
            }
            Db::Pg(p) => Ok(p.client.execute(sql, &[]).await?),
        }
    }

    /// Starts a transaction.
    pub async fn begin(&mut self) -> Result<(), MigrateError> {
        self.execute(match self.dialect() {
            Dialect::Mysql => "START TRANSACTION",
            Dialect::Postgres => "BEGIN",
        })
        .await
    }

    /// Opens a cursor over `sql`, whose columns have types `types`.
    pub async fn cursor<'a>(
        &'a mut self,
        sql: &str,
        types: &'a [ColType],
    ) -> Result<Cursor<'a>, MigrateError> {
        match self {
            Db::My(c) => Ok(Cursor::My(c.query_iter(sql.to_string()).await?, types)),
            Db::Pg(p) => {
                let stream = p
                    .client
                    .query_raw(
                        sql,
                        std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
                    )
                    .await?;
                Ok(Cursor::Pg(Box::pin(stream), types))
            }
        }
    }

    /// Runs a query with a small result and collects it.
    pub async fn rows(&mut self, sql: &str, types: &[ColType]) -> Result<Vec<Row>, MigrateError> {
        let mut cursor = self.cursor(sql, types).await?;
        let mut out = Vec::new();
        while let Some(row) = cursor.next().await? {
            out.push(row);
        }
        Ok(out)
    }
}

pub enum Cursor<'a> {
    My(
        mysql_async::QueryResult<'a, 'static, TextProtocol>,
        &'a [ColType],
    ),
    Pg(Pin<Box<tokio_postgres::RowStream>>, &'a [ColType]),
}

impl Cursor<'_> {
    pub async fn next(&mut self) -> Result<Option<Row>, MigrateError> {
        match self {
            Cursor::My(result, types) => {
                let Some(row) = result.next().await? else {
                    return Ok(None);
                };
                let values = row.unwrap();
                if values.len() != types.len() {
                    return Err(MigrateError::Task(format!(
                        "MySQL returned {} columns where {} were selected",
                        values.len(),
                        types.len()
                    )));
                }
                Ok(Some(
                    values
                        .into_iter()
                        .zip(types.iter())
                        .map(|(v, ty)| match ty {
                            ColType::My(t) => vmy::from_mysql(v, *t),
                            // A MySQL row read with a PostgreSQL type: never
                            // happens; keep the bytes.
                            ColType::Pg(_) => {
                                vmy::from_mysql(v, vmy::MysqlType::new(vmy::MysqlKind::Other))
                            }
                        })
                        .collect(),
                ))
            }
            Cursor::Pg(stream, types) => match stream.next().await {
                None => Ok(None),
                Some(Err(e)) => Err(e.into()),
                Some(Ok(row)) if row.len() != types.len() => Err(MigrateError::Task(format!(
                    "PostgreSQL returned {} columns where {} were selected",
                    row.len(),
                    types.len()
                ))),
                Some(Ok(row)) => Ok(Some(
                    types
                        .iter()
                        .enumerate()
                        .map(|(i, ty)| match ty {
                            ColType::Pg(t) => vpg::from_pg_row(&row, i, *t),
                            ColType::My(_) => vpg::from_pg_row(&row, i, vpg::PgType::Other),
                        })
                        .collect(),
                )),
            },
        }
    }
}

/// Reads a single integer (COUNT, MAX …); NULL is `None`.
pub async fn scalar_i128(db: &mut Db, sql: &str) -> Result<Option<i128>, MigrateError> {
    let value = match db {
        Db::My(_) => {
            let types = [ColType::My(vmy::MysqlType::new(vmy::MysqlKind::Decimal))];
            db.rows(sql, &types)
                .await?
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
        }
        Db::Pg(p) => {
            let rows = p.client.query(sql, &[]).await?;
            rows.first().map(|row| {
                let ty = row
                    .columns()
                    .first()
                    .map_or(vpg::PgType::Other, |c| vpg::PgType::from_type(c.type_()));
                vpg::from_pg_row(row, 0, ty)
            })
        }
    };
    Ok(match value {
        Some(Value::Int(i)) => Some(i),
        Some(Value::Bool(b)) => Some(b as i128),
        _ => None,
    })
}
