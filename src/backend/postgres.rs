//! PostgreSQL client pieces: connecting, parameters bound as text, and raw
//! result values. `tandem check` uses `probe`; the data path answering MySQL
//! clients from PostgreSQL is `pg_mysql`.

use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, Format, FromSql, IsNull, ToSql, Type};

use crate::config::BackendTarget;

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("timed out connecting to {0}")]
    Timeout(String),
    #[error("cannot connect to {addr}: {source}")]
    Failed {
        addr: String,
        source: tokio_postgres::Error,
    },
}

impl ConnectError {
    /// The reason without the address (`tandem check` prints that itself):
    /// the server's own words when it refused us.
    pub fn reason(&self) -> String {
        match self {
            ConnectError::Failed { source, .. } => match source.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => source.to_string(),
            },
            ConnectError::Timeout(_) => "timed out".into(),
        }
    }
}

/// Opens a connection and spawns its I/O task, which ends when the returned
/// client is dropped.
pub async fn connect(
    target: &BackendTarget,
    timeout: Duration,
) -> Result<tokio_postgres::Client, ConnectError> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&target.host)
        .port(target.port)
        .user(&target.user)
        .password(&target.password)
        .application_name("tandem")
        .connect_timeout(timeout);
    if let Some(db) = &target.database {
        cfg.dbname(db);
    }
    let (client, conn) = tokio::time::timeout(timeout, cfg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| ConnectError::Timeout(target.addr()))?
        .map_err(|source| ConnectError::Failed {
            addr: target.addr(),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Connects, runs `SELECT version()`, and returns the server's version string.
pub async fn probe(target: &BackendTarget, timeout: Duration) -> Result<String, String> {
    let client = connect(target, timeout).await.map_err(|e| e.reason())?;
    let row = client
        .query_one("SELECT version()", &[])
        .await
        .map_err(|e| e.to_string())?;
    row.try_get(0).map_err(|e| e.to_string())
}

/// A statement parameter sent in PostgreSQL's text format, whatever type the
/// server inferred for it: `id = $1` infers int4, and the text `5000000000`
/// or `12.50` is then parsed (and range-checked) by the server, as MySQL's
/// loosely typed parameters need. NULL is NULL. A `bytea` parameter goes in
/// binary format instead, so its bytes arrive unchanged (text format would
/// read backslashes as escapes).
#[derive(Debug, Clone, Copy)]
pub struct TextParam<'a>(pub Option<&'a [u8]>);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            None => Ok(IsNull::Yes),
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        if *ty == Type::BYTEA {
            Format::Binary
        } else {
            Format::Text
        }
    }

    to_sql_checked!();
}

/// A result value's bytes as PostgreSQL sent them (binary format), for any
/// type; `None` is NULL. Conversion is the caller's (see `pg_mysql::values`).
#[derive(Debug, Clone, Copy)]
pub struct RawValue<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(Some(raw)))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(None))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}
