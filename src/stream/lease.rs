//! One applier per target: a lease held in the target database itself.
//!
//! Any number of proxies (or `tandem mirror` processes) may run the stream
//! against the same target; exactly one applies. The lease is a session-level
//! lock on a dedicated connection — PostgreSQL `pg_try_advisory_lock`,
//! MySQL `GET_LOCK` — so it is released by the server the moment the holder's
//! process or connection dies, with no expiry to tune. Standbys try again
//! every second and take over within seconds, resuming from the checkpoint.
//! `tandem_stream_lease` records who holds it (id, address, since,
//! heartbeat) for `/status`; it is information, not the lock.
//!
//! The holder checks its lease connection every second
//! ([`Lease::heartbeat`]) and stops applying when it is lost. Between the
//! loss of the lease connection and that check (at most a second) a standby
//! may already apply; both write the same rows by key and checkpoint in their
//! own transactions, so the overlap can only re-apply, not lose, rows.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tokio_util::sync::CancellationToken;

use crate::config::BackendConfig;
use crate::migrate::db::{self, Db};
use crate::migrate::sqltext::{pg_string, Dialect};
use crate::migrate::MigrateError;

pub const TABLE: &str = crate::migrate::STREAM_LEASE_TABLE;

/// How often standbys try and the holder checks its lease.
pub const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease connection to the new backend: {0}")]
    Target(#[from] MigrateError),
    #[error("the lease on the new backend was lost")]
    Lost,
}

/// Who holds the lease, as the lease table says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub id: String,
    pub address: String,
    pub since: String,
    pub heartbeat: String,
}

pub struct Lease {
    db: Db,
    stream_id: String,
    lock: LockName,
    pub holder_id: String,
}

#[derive(Clone)]
struct LockName {
    key: i64,
    name: String,
}

impl LockName {
    fn new(stream_id: &str) -> LockName {
        let name = format!("tandem_stream:{stream_id}");
        // FNV-1a: a stable 64-bit key for the advisory lock.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        LockName {
            key: h as i64,
            name,
        }
    }
}

fn text(d: Dialect, s: &str) -> String {
    match d {
        Dialect::Postgres => pg_string(s),
        Dialect::Mysql => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''")),
    }
}

fn create_sql(d: Dialect) -> String {
    match d {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (stream_id text PRIMARY KEY, holder text NOT NULL, \
             address text NOT NULL, since timestamptz NOT NULL, heartbeat timestamptz NOT NULL)"
        ),
        Dialect::Mysql => format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (stream_id varchar(191) PRIMARY KEY, \
             holder varchar(255) NOT NULL, address varchar(255) NOT NULL, since datetime(6) NOT NULL, \
             heartbeat datetime(6) NOT NULL)"
        ),
    }
}

async fn try_lock(db: &mut Db, lock: &LockName) -> Result<bool, MigrateError> {
    Ok(match db {
        Db::Pg(pg) => pg
            .client
            .query_one(&format!("SELECT pg_try_advisory_lock({})", lock.key), &[])
            .await?
            .get::<_, bool>(0),
        Db::My(c) => {
            let got: Option<Option<i64>> = c
                .query_first(format!(
                    "SELECT GET_LOCK({}, 0)",
                    text(Dialect::Mysql, &lock.name)
                ))
                .await?;
            got.flatten() == Some(1)
        }
    })
}

/// The current holder recorded in the lease table, if any.
pub async fn holder(db: &mut Db, stream_id: &str) -> Result<Option<Holder>, MigrateError> {
    let d = db.dialect();
    let sql = match d {
        Dialect::Postgres => format!(
            "SELECT holder, address, since::text, heartbeat::text FROM {TABLE} WHERE stream_id = {}",
            text(d, stream_id)
        ),
        Dialect::Mysql => format!(
            "SELECT holder, address, CAST(since AS CHAR), CAST(heartbeat AS CHAR) FROM {TABLE} WHERE stream_id = {}",
            text(d, stream_id)
        ),
    };
    let row: Option<(String, String, String, String)> = match db {
        Db::Pg(pg) => pg
            .client
            .query_opt(&sql, &[])
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
        Db::My(c) => c.query_first(sql).await?,
    };
    Ok(row.map(|(id, address, since, heartbeat)| Holder {
        id,
        address,
        since,
        heartbeat,
    }))
}

impl Lease {
    /// Waits until this process holds the lease for `stream_id` (trying
    /// every [`INTERVAL`]); `None` when cancelled first. `on_standby` is
    /// told who holds it meanwhile.
    pub async fn acquire(
        target: &BackendConfig,
        stream_id: &str,
        holder_id: &str,
        address: &str,
        cancel: &CancellationToken,
        mut on_standby: impl FnMut(Option<Holder>),
    ) -> Result<Option<Lease>, LeaseError> {
        let mut db = db::connect(target, "backends.new").await?;
        let d = db.dialect();
        db.execute(&create_sql(d)).await?;
        let lock = LockName::new(stream_id);
        loop {
            if try_lock(&mut db, &lock).await? {
                break;
            }
            on_standby(holder(&mut db, stream_id).await.ok().flatten());
            tokio::select! {
                _ = cancel.cancelled() => return Ok(None),
                _ = tokio::time::sleep(INTERVAL) => {}
            }
        }
        let now = match d {
            Dialect::Postgres => "now()",
            Dialect::Mysql => "UTC_TIMESTAMP(6)",
        };
        let values = format!(
            "{}, {}, {}, {now}, {now}",
            text(d, stream_id),
            text(d, holder_id),
            text(d, address)
        );
        let upsert = match d {
            Dialect::Postgres => format!(
                "INSERT INTO {TABLE} VALUES ({values}) ON CONFLICT (stream_id) DO UPDATE SET \
                 holder = EXCLUDED.holder, address = EXCLUDED.address, since = EXCLUDED.since, \
                 heartbeat = EXCLUDED.heartbeat"
            ),
            Dialect::Mysql => format!("REPLACE INTO {TABLE} VALUES ({values})"),
        };
        db.execute(&upsert).await?;
        tracing::info!(
            stream = stream_id,
            holder = holder_id,
            "holding the stream lease: this process applies"
        );
        Ok(Some(Lease {
            db,
            stream_id: stream_id.to_string(),
            lock,
            holder_id: holder_id.to_string(),
        }))
    }

    /// Proves the lease connection (and so the lock) is still there and
    /// records the heartbeat.
    pub async fn heartbeat(&mut self) -> Result<(), LeaseError> {
        let d = self.db.dialect();
        let now = match d {
            Dialect::Postgres => "now()",
            Dialect::Mysql => "UTC_TIMESTAMP(6)",
        };
        let sql = format!(
            "UPDATE {TABLE} SET heartbeat = {now} WHERE stream_id = {} AND holder = {}",
            text(d, &self.stream_id),
            text(d, &self.holder_id)
        );
        match self.db.execute(&sql).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "the stream lease connection failed: stop applying");
                Err(LeaseError::Lost)
            }
        }
    }

    /// Releases the lease (also released when the connection closes).
    pub async fn release(mut self) {
        let sql = match self.db.dialect() {
            Dialect::Postgres => format!("SELECT pg_advisory_unlock({})", self.lock.key),
            Dialect::Mysql => format!(
                "SELECT RELEASE_LOCK({})",
                text(Dialect::Mysql, &self.lock.name)
            ),
        };
        let _ = self.db.execute(&sql).await;
    }
}
