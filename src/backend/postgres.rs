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
    #[error("cannot connect to {addr}: {}", server_words(source))]
    Failed {
        addr: String,
        source: tokio_postgres::Error,
    },
    #[error("cannot connect to {addr}: {source}")]
    Tls {
        addr: String,
        source: crate::tls::TlsError,
    },
}

/// The server's message and SQLSTATE when it refused us (tokio-postgres
/// displays only "db error"), else the driver's own words.
fn server_words(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            // "error performing TLS handshake" says why only in its source.
            let mut out = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                out.push_str(": ");
                out.push_str(&c.to_string());
                cause = c.source();
            }
            out
        }
    }
}

impl ConnectError {
    /// The reason without the address (`tandem check` prints that itself):
    /// the server's own words when it refused us.
    pub fn reason(&self) -> String {
        match self {
            ConnectError::Failed { source, .. } => server_words(source),
            ConnectError::Tls { source, .. } => source.to_string(),
            ConnectError::Timeout(_) => "timed out".into(),
        }
    }
}

/// Opens a connection with the `tandem` application name and spawns its I/O
/// task, which ends when the returned client is dropped.
pub async fn connect(
    target: &BackendTarget,
    timeout: Duration,
) -> Result<tokio_postgres::Client, ConnectError> {
    let (client, _task) = connect_with(target, timeout, "tandem", None).await?;
    Ok(client)
}

/// The one way Tandem opens a PostgreSQL connection (proxy sessions, mirror,
/// shadow, migrate commands): address, credentials and TLS (`sslmode`,
/// `sslrootcert`) from the URL, startup `options` (e.g. `-c TimeZone=UTC`)
/// from the caller. The I/O task ends when the client is dropped; callers that
/// want to end it sooner abort the handle.
pub async fn connect_with(
    target: &BackendTarget,
    timeout: Duration,
    application_name: &str,
    options: Option<&str>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), ConnectError> {
    use crate::tls::SslMode;
    use tokio_postgres::config::SslMode as PgSslMode;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&target.host)
        .port(target.port)
        .user(&target.user)
        .password(&target.password)
        .application_name(application_name)
        .connect_timeout(timeout);
    if let Some(db) = &target.database {
        cfg.dbname(db);
    }
    if let Some(options) = options {
        cfg.options(options);
    }
    let tls = crate::tls::client_config(&target.tls).map_err(|source| ConnectError::Tls {
        addr: target.addr(),
        source,
    })?;
    cfg.ssl_mode(match target.tls.mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        // A verified mode must never end up in plaintext.
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let failed = |source| ConnectError::Failed {
        addr: target.addr(),
        source,
    };
    let timed_out = || ConnectError::Timeout(target.addr());
    let task = match tls {
        None => {
            let (client, conn) = tokio::time::timeout(timeout, cfg.connect(tokio_postgres::NoTls))
                .await
                .map_err(|_| timed_out())?
                .map_err(failed)?;
            (client, tokio::spawn(drive(conn)))
        }
        Some(config) => {
            let make = crate::tls::pg::MakeRustls::new(config);
            let (client, conn) = tokio::time::timeout(timeout, cfg.connect(make))
                .await
                .map_err(|_| timed_out())?
                .map_err(failed)?;
            (client, tokio::spawn(drive(conn)))
        }
    };
    Ok(task)
}

async fn drive<F>(conn: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
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
