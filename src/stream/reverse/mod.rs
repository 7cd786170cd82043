//! The reverse stream: what PostgreSQL committed, applied to MySQL, so that
//! after the cutover (`new_primary`) MySQL stays a complete copy and the way
//! back stays open.
//!
//! It is the forward stream turned around: the source yields the same
//! [`Item`](crate::stream::Item)s, the same applier writes them to MySQL one
//! source transaction atomically after the other, in commit order, with the
//! LSN it ends at committed in MySQL's `tandem_stream_checkpoint` in the same
//! MySQL transaction (exactly once), under the same lease (MySQL `GET_LOCK`).
//!
//! ## How the changes are read (choice and why)
//! * `pgwire-replication` / `pg_walstream` (crates speaking the streaming
//!   replication protocol): a second PostgreSQL driver with its own TLS and
//!   authentication code next to tokio-postgres, young APIs, and feedback
//!   (standby status updates) that must be right or the slot never advances.
//! * The replication protocol over our own connection: tokio-postgres 0.7
//!   has no `CopyBoth`; writing it means a hand-made PostgreSQL client.
//! * **Chosen: `pg_logical_slot_peek_binary_changes` over an ordinary
//!   connection** (the one driver, TLS and auth we already use), with
//!   `pg_replication_slot_advance` once MySQL committed. The slot moves only
//!   after MySQL has the rows, so a crash anywhere re-reads at most what
//!   MySQL's checkpoint then skips. The cost is polling (a round every
//!   50 ms when idle) and re-decoding from the slot's position each round,
//!   which the source limits by starting a round only after MySQL committed
//!   the previous one. It needs only the `REPLICATION` attribute (or
//!   superuser), no `replication` line in `pg_hba.conf`.
//!
//! The output plugin is `pgoutput` (built in, no extension), protocol 2
//! with logical messages, text values, decoded in [`pgoutput`]; the changes
//! are limited to a publication of the migrated tables. DDL travels as
//! `tandem.ddl` logical messages the proxy writes in the DDL's transaction
//! ([`ddl`]).
//!
//! ## Lifecycle of the slot
//! `tandem cutover --to new` creates the publication and the slot before the
//! fence and, inside it, once the forward stream has caught up, moves the
//! slot to the current WAL position and stores that LSN as the reverse
//! checkpoint in MySQL: nothing written on PostgreSQL after the flip is
//! missed, nothing the forward stream wrote before it comes back.
//! `tandem cutover --back` drops nothing. The slot retains WAL until it is
//! dropped: **an orphaned slot keeps WAL forever** and fills the disk; its
//! retained bytes are on `/status` and in `tandem check`. Remove it at
//! decommission with `SELECT pg_drop_replication_slot('<slot>')` and
//! `DROP PUBLICATION <publication>` (names in `tandem check`).

pub mod ddl;
pub mod pgoutput;
pub mod setup;
pub mod source;

use std::sync::Arc;

use super::apply::StreamStats;
use super::run::{BoxFuture, ItemSource, OpenSource, SourceError};
use super::{Item, Position};
use crate::config::{BackendConfig, Config};
use crate::migrate::db::{self, Db, PgConn};

/// Names of the publication and slot on the new backend, and the reverse
/// stream's checkpoint row in MySQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub slot: String,
    pub publication: String,
    pub stream_id: String,
}

impl Names {
    /// Derived from the PostgreSQL database the new backend's URL names.
    pub fn from_config(config: &Config) -> Result<Names, String> {
        let new = config
            .backends
            .new
            .as_ref()
            .ok_or("[backends.new] is not configured: the reverse stream reads from it")?;
        let target = new.target().map_err(|e| format!("backends.new.url: {e}"))?;
        let database = target
            .database
            .ok_or("backends.new.url names no database")?;
        let clean: String = database
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        Ok(Names {
            slot: format!("tandem_reverse_{clean}"),
            publication: format!("tandem_reverse_{clean}"),
            stream_id: format!("reverse:{database}"),
        })
    }
}

pub(crate) async fn pg_connect(new: &BackendConfig) -> Result<PgConn, SourceError> {
    match db::connect(new, "backends.new").await {
        Ok(Db::Pg(pg)) => Ok(pg),
        Ok(Db::My(_)) => Err(SourceError {
            message: "[backends.new] is not PostgreSQL: the reverse stream reads PostgreSQL logical decoding".into(),
            retryable: false,
        }),
        Err(e) => Err(SourceError {
            retryable: !matches!(e, crate::migrate::MigrateError::Config(_)),
            message: e.to_string(),
        }),
    }
}

/// Opens the slot reader for the stream task.
pub struct ReverseOpener {
    config: Config,
    new: BackendConfig,
    names: Names,
    database: String,
    stats: Arc<StreamStats>,
    /// Gets a record for each column change that came without a DDL marker.
    drift: Option<crate::dualwrite::drift::DriftLog>,
}

impl ReverseOpener {
    /// Records DDL that was not carried back (see `ddl::Watch`) in `drift`.
    pub fn with_drift(mut self, drift: crate::dualwrite::drift::DriftLog) -> Self {
        self.drift = Some(drift);
        self
    }

    pub fn from_config(config: &Config, stats: Arc<StreamStats>) -> Result<ReverseOpener, String> {
        let names = Names::from_config(config)?;
        let new = config
            .backends
            .new
            .clone()
            .ok_or("[backends.new] is not configured")?;
        let database = config
            .backends
            .old
            .target()
            .map_err(|e| format!("backends.old.url: {e}"))?
            .database
            .ok_or("backends.old.url names no database: the reverse stream writes into it")?;
        Ok(ReverseOpener {
            config: config.clone(),
            new,
            names,
            database,
            stats,
            drift: None,
        })
    }
}

struct Items(source::SlotReader);

impl ItemSource for Items {
    fn next_item(&mut self) -> BoxFuture<'_, Result<Item, SourceError>> {
        Box::pin(self.0.next_item())
    }
}

impl OpenSource for ReverseOpener {
    /// No checkpoint in MySQL yet (`tandem mirror` started by hand, not by
    /// `tandem cutover`): publication and slot are created if missing and
    /// the stream starts where the slot stands.
    fn current_position(&self) -> BoxFuture<'_, Result<Position, SourceError>> {
        Box::pin(async move {
            let ready = setup::ensure(&self.config).await.map_err(|e| SourceError {
                message: e,
                retryable: false,
            })?;
            tracing::warn!(slot = %self.names.slot, lsn = %super::lsn_text(ready.confirmed), "no reverse checkpoint in MySQL: the reverse stream starts where the slot stands; rows written on PostgreSQL before it are not copied back");
            Ok(Position::lsn(ready.confirmed))
        })
    }

    fn open(&self, from: Position) -> BoxFuture<'_, Result<Box<dyn ItemSource>, SourceError>> {
        Box::pin(async move {
            let Some(lsn) = from.as_lsn() else {
                return Err(SourceError {
                    message: format!(
                        "the reverse checkpoint {}:{} is not a PostgreSQL LSN",
                        from.file, from.offset
                    ),
                    retryable: false,
                });
            };
            let pg = pg_connect(&self.new).await?;
            let mut reader = source::SlotReader::open(
                pg,
                self.names.clone(),
                self.database.clone(),
                Arc::clone(&self.stats),
                lsn,
            )
            .await?;
            reader.ddl_watch.drift = self.drift.clone();
            Ok(Box::new(Items(reader)) as Box<dyn ItemSource>)
        })
    }

    /// WAL the slot keeps (bytes between its restart point and the end).
    fn retention<'a>(&'a self, _file: &'a str) -> BoxFuture<'a, Option<(u64, u64)>> {
        Box::pin(async move {
            let pg = pg_connect(&self.new).await.ok()?;
            setup::retained_bytes(&pg, &self.names.slot)
                .await
                .ok()
                .flatten()
                .map(|b| (0, b))
        })
    }
}

/// Whether this configuration copies `new_primary`'s writes back with the
/// reverse stream (`[mirror] source = "binlog"`, a PostgreSQL new backend)
/// instead of the statement mirror.
pub fn applies(config: &Config) -> bool {
    config.mirror.source == crate::config::StreamSourceKind::Binlog
        && config
            .backends
            .new
            .as_ref()
            .is_some_and(|n| n.kind == crate::config::BackendKind::Postgres)
}

/// The stream task's settings for the reverse direction: the target is the
/// old backend (MySQL), the checkpoint row and lease are `reverse:<db>`.
pub fn run_config(
    config: &Config,
    schema: Arc<crate::sql::schema::Schema>,
) -> Result<super::run::RunConfig, String> {
    let mut cfg = super::run::config_from(config, schema)?;
    let names = Names::from_config(config)?;
    cfg.target = config.backends.old.clone();
    cfg.apply.stream_id = names.stream_id;
    Ok(cfg)
}
