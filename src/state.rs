//! Everything a connection task needs (`AppState`), apart from the accept
//! loop (`crate::server`) so that the layers below the frontend that hold a
//! piece of it (cockpit, fleet, stream, shadow) never reach the loop.
//!
//! No process-global state: tests start many proxies in one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::Semaphore;

use crate::backend::pool::MysqlPool;
use crate::config::{Config, Phase, StreamSourceKind};
use crate::dualwrite::mirror::Mirror;
use crate::metrics::Metrics;
use crate::shadow::Shadow;
use crate::sql::classify::Classifier;
use crate::sql::schema::Schema;

pub use crate::snapshot::Snapshot;

pub struct AppState {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub old: Arc<MysqlPool>,
    /// Set in `dual_write`: the secondary and its per-session queues. Swapped
    /// when a reload changes the phase.
    pub mirror: Arc<ArcSwapOption<Mirror>>,
    /// What the proxy knows of the MySQL tables (auto-increment columns,
    /// keys, column types), shared with the mirror; refreshed after DDL.
    pub schema: Arc<ArcSwap<Schema>>,
    /// The old backend's session variables as last read (`SHOW VARIABLES`),
    /// answered to clients when PostgreSQL serves them (drivers ask for
    /// `@@max_allowed_packet`, `@@sql_mode`, … at connect).
    pub server_vars: ArcSwap<HashMap<String, String>>,
    /// Caps PostgreSQL connections of sessions served by PostgreSQL
    /// (`[backends.new] pool_size`).
    pub pg_slots: Arc<Semaphore>,
    /// Incremented by every applied reload.
    pub config_version: AtomicU64,
    pub started: std::time::Instant,
    pub classifier: Classifier,
    pub metrics: Metrics,
    /// Shadow reads: sampling, queue and background comparers.
    pub shadow: Shadow,
    /// Per-backend read counters, the read ramp, the dashboard's timeline.
    pub cockpit: crate::cockpit::Cockpit,
    /// The change stream's progress (`[mirror] source = "binlog"`); its
    /// state stays empty when no stream runs in this process.
    pub stream: Arc<crate::stream::apply::StreamStats>,
    /// The reverse stream's progress (PostgreSQL → MySQL in `new_primary`).
    pub reverse: Arc<crate::stream::apply::StreamStats>,
    /// Fleet membership and the cutover write gate (`[fleet]`).
    pub fleet: Arc<crate::fleet::Fleet>,
    /// The `[tls]` certificate for clients (reloaded when its files change).
    pub tls: crate::tls::server::ServerTls,
    /// caching_sha2_password: the fast-auth cache and the RSA key pair.
    pub sha2: crate::auth::sha2::Sha2Server,
    /// Owned background work (the mirror's applier, …): stopped and waited
    /// for, within the shutdown bound, when `run` ends.
    pub background: crate::background::Background,
    next_session: AtomicU64,
}

impl AppState {
    pub fn new(config: Config) -> Result<Arc<Self>, String> {
        let max_packet = config.limits.max_packet_bytes as usize;
        let passthrough = config.auth_mode() == crate::auth::mode::AuthMode::Passthrough;
        let old = MysqlPool::new(&config.backends.old, max_packet, passthrough)
            .map_err(|e| format!("backends.old.url: {e}"))?;
        let classifier = Classifier::new(config.limits.statement_cache_size as usize);
        let schema = Arc::new(ArcSwap::from_pointee(Schema::default()));
        let background = crate::background::Background::new();
        let mirror = mirror_for(&config, &schema, &background)?;
        let pg_slots = Arc::new(Semaphore::new(
            config
                .backends
                .new
                .as_ref()
                .map_or(1, |b| b.pool_size as usize),
        ));
        let fleet = crate::fleet::Fleet::new(config.fleet.clone());
        let tls = crate::tls::server::ServerTls::new(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
        )
        .map_err(|e| format!("[tls]: {e}"))?;
        let cockpit = crate::cockpit::Cockpit::default();
        let shadow_config = config.shadow.clone();
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::new(config)));
        let mirror = Arc::new(ArcSwapOption::from(mirror));
        // The comparers get what they read, not the whole state.
        let shadow = Shadow::start(
            &shadow_config,
            crate::shadow::ShadowDeps {
                snapshot: Arc::clone(&snapshot),
                mirror: Arc::clone(&mirror),
                schema: Arc::clone(&schema),
                statements: Arc::clone(&cockpit.statements),
            },
            &background,
        );
        Ok(Arc::new(Self {
            fleet,
            tls,
            sha2: Default::default(),
            shadow,
            server_vars: ArcSwap::from_pointee(HashMap::new()),
            schema,
            pg_slots,
            snapshot,
            old: Arc::new(old),
            mirror,
            config_version: AtomicU64::new(1),
            started: std::time::Instant::now(),
            classifier,
            metrics: Metrics::default(),
            cockpit,
            stream: Arc::default(),
            reverse: Arc::default(),
            background,
            next_session: AtomicU64::new(1),
        }))
    }

    /// Reads table definitions (auto-increment columns, keys, types) from the
    /// primary's default database.
    pub async fn read_schema(&self) -> Result<Schema, crate::backend::BackendError> {
        let greeted = self.old.connect().await?;
        let opts = crate::backend::mysql::default_opts(self.old.target.database.as_deref());
        let (mut conn, _) = greeted.authenticate(&self.old.target, opts).await?;
        let columns = conn.query_rows(Schema::COLUMNS_QUERY).await?;
        let keys = conn.query_rows(Schema::KEYS_QUERY).await?;
        if let Ok(vars) = conn.query_rows("SHOW SESSION VARIABLES").await {
            let map = vars
                .into_iter()
                .filter_map(|r| {
                    Some((
                        r.first()?.clone()?.to_ascii_lowercase(),
                        r.get(1)?.clone().unwrap_or_default(),
                    ))
                })
                .collect();
            self.server_vars.store(Arc::new(map));
        }
        conn.close().await;
        Ok(Schema::from_rows(&columns, &keys))
    }

    /// Refreshes the schema cache. Called at start and after DDL.
    pub async fn refresh_schema(&self) -> Result<(), crate::backend::BackendError> {
        self.schema.store(Arc::new(self.read_schema().await?));
        Ok(())
    }

    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }
}

impl crate::stream::source::Handles for AppState {
    fn snapshot(&self) -> &ArcSwap<Snapshot> {
        &self.snapshot
    }
    fn schema(&self) -> &ArcSwap<Schema> {
        &self.schema
    }
    fn stream_stats(&self) -> &Arc<crate::stream::apply::StreamStats> {
        &self.stream
    }
    fn reverse_stats(&self) -> &Arc<crate::stream::apply::StreamStats> {
        &self.reverse
    }
}

impl crate::cockpit::Handles for AppState {
    fn snapshot(&self) -> &ArcSwap<Snapshot> {
        &self.snapshot
    }
    fn shadow(&self) -> &Shadow {
        &self.shadow
    }
    fn cockpit(&self) -> &crate::cockpit::Cockpit {
        &self.cockpit
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn mirror(&self) -> &ArcSwapOption<Mirror> {
        &self.mirror
    }
    fn config_version(&self) -> u64 {
        self.config_version.load(Ordering::Relaxed)
    }
    fn started(&self) -> std::time::Instant {
        self.started
    }
}

impl crate::fleet::member::Handles for AppState {
    fn snapshot(&self) -> &ArcSwap<Snapshot> {
        &self.snapshot
    }
    fn fleet(&self) -> &Arc<crate::fleet::Fleet> {
        &self.fleet
    }
    fn stream_stats(&self) -> &Arc<crate::stream::apply::StreamStats> {
        &self.stream
    }
    fn mirror(&self) -> &ArcSwapOption<Mirror> {
        &self.mirror
    }
    fn config_version(&self) -> u64 {
        self.config_version.load(Ordering::Relaxed)
    }
    fn set_phase(
        &self,
        phase: Phase,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(set_phase(self, phase))
    }
}

/// Swaps the running phase (as a reload of only `phase` would).
pub async fn set_phase(state: &AppState, phase: Phase) -> Result<(), String> {
    let old = state.snapshot.load_full();
    let mut config = old.config.clone();
    config.phase = phase;
    if matches!(phase, Phase::NewPrimary)
        && config.auth_mode() == crate::auth::mode::AuthMode::Passthrough
    {
        // Followed anyway (writes must not split), but logins will fail.
        tracing::error!(
            "fleet: new_primary with [auth] mode = passthrough: PostgreSQL cannot check MySQL logins, new clients are refused until mode = \"users\" with [[users]]"
        );
    }
    match state.read_schema().await {
        Ok(schema) => state.schema.store(Arc::new(schema)),
        Err(e) => tracing::warn!(error = %e, "cannot read the schema for mirroring yet"),
    }
    let mirror = mirror_for(&config, &state.schema, &state.background)?;
    state.mirror.store(mirror);
    state.snapshot.store(Arc::new(Snapshot::new(config)));
    tracing::info!(
        phase = phase.as_str(),
        "fleet: phase set by the control row"
    );
    Ok(())
}

/// The mirror a configuration asks for (dual_write: writes go to new;
/// new_primary: back to old).
pub fn mirror_for(
    config: &Config,
    schema: &Arc<ArcSwap<Schema>>,
    background: &crate::background::Background,
) -> Result<Option<Arc<Mirror>>, String> {
    let max_packet = config.limits.max_packet_bytes as usize;
    Ok(match (config.phase, &config.backends.new) {
        // The reverse stream (PostgreSQL logical decoding) copies back what
        // the new primary committed: no statement mirror.
        (Phase::NewPrimary, Some(_)) if crate::stream::reverse::applies(config) => None,
        // new_primary mirrors back to the old backend so rollback stays possible.
        (Phase::NewPrimary, Some(_)) => Some(Arc::new(
            Mirror::new(
                &config.backends.old,
                config.mirror.clone(),
                max_packet,
                Phase::NewPrimary.as_str(),
                Arc::clone(schema),
                background,
            )
            .map_err(|e| format!("backends.old.url: {e}"))?,
        )),
        // The change stream applies what the primary committed: no statement
        // mirror (writes are relayed as in primary_only).
        (Phase::DualWrite, Some(_)) if config.mirror.source == StreamSourceKind::Binlog => None,
        (Phase::DualWrite, Some(new)) => Some(Arc::new(
            Mirror::new(
                new,
                config.mirror.clone(),
                max_packet,
                Phase::DualWrite.as_str(),
                Arc::clone(schema),
                background,
            )
            .map_err(|e| format!("backends.new.url: {e}"))?,
        )),
        _ => None,
    })
}
