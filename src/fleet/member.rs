//! This proxy as a fleet member: an owned task that registers it, writes its
//! heartbeat, reads the control row every `poll_ms`, applies a new epoch
//! (switches between `dual_write` and `new_primary`), acknowledges a raised
//! fence once no write of its own is in flight, and deregisters at shutdown.
//!
//! When the control row cannot be read the task keeps trying; meanwhile the
//! view it published ages and the write gate refuses writes after
//! `stale_ms` — a proxy that cannot see the fleet must not write.
//!
//! The proxy state is reached through [`Handles`] (implemented by
//! `crate::state::AppState`, which holds the `Fleet` and sits above it);
//! swapping the phase is `crate::state::set_phase`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::store::{self, Beat, Control};
use super::{parse_side, side_name, View};
use crate::config::{Config, Phase};
use crate::migrate::db::PgConn;
use crate::migrate::MigrateError;
use crate::proxy::route::{authoritative, Target};

/// A stable hash of what must agree across the fleet: everything but the
/// per-proxy settings (listen addresses, member id, logging, the local paths
/// of the drift and mismatch logs, phase — the phase is the fleet's).
pub fn config_hash(config: &Config) -> String {
    let mut c = config.clone();
    c.listen.clear();
    c.admin.listen.clear();
    c.fleet.id.clear();
    c.phase = Phase::DualWrite;
    c.log = Default::default();
    c.mirror.drift_log = Default::default();
    c.shadow.log = Default::default();
    let text = format!("{c:?}");
    // FNV-1a, 64 bits: identical configs, identical hashes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The member id: `[fleet] id`, else host name and listen address.
pub fn member_id(config: &Config, address: &str) -> String {
    if !config.fleet.id.is_empty() {
        return config.fleet.id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "tandem".into());
    format!("{}@{address}", host.trim())
}

/// The phase a proxy runs when `authority` is authoritative, if the fleet
/// governs its current phase (`dual_write` and `new_primary` only).
fn governed(current: Phase, authority: Target) -> Option<Phase> {
    match (current, authority) {
        (Phase::DualWrite, Target::New) => Some(Phase::NewPrimary),
        (Phase::NewPrimary, Target::Old) => Some(Phase::DualWrite),
        _ => None,
    }
}

/// The pieces of the proxy's state a member task reads and sets
/// (implemented by `crate::state::AppState`, which sits above the fleet).
pub trait Handles: Send + Sync + 'static {
    /// The live configuration.
    fn snapshot(&self) -> &arc_swap::ArcSwap<crate::snapshot::Snapshot>;
    /// This proxy's view of the fleet.
    fn fleet(&self) -> &Arc<super::Fleet>;
    /// The forward stream's counters (reported in the heartbeat).
    fn stream_stats(&self) -> &Arc<crate::stream::apply::StreamStats>;
    /// The running statement mirror, if any.
    fn mirror(&self) -> &arc_swap::ArcSwapOption<crate::dualwrite::mirror::Mirror>;
    /// How many times the configuration was loaded.
    fn config_version(&self) -> u64;
    /// Swaps the running phase (as a reload of only `phase` would).
    fn set_phase(
        &self,
        phase: Phase,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>>;
}

struct Member<S: Handles> {
    state: Arc<S>,
    id: String,
    address: String,
    pg: Option<PgConn>,
    acked: i64,
    last_beat: Option<Instant>,
}

impl<S: Handles> Member<S> {
    async fn conn(&mut self) -> Result<&PgConn, MigrateError> {
        if self.pg.as_ref().is_some_and(|p| p.client.is_closed()) {
            self.pg = None;
        }
        if self.pg.is_none() {
            let config = self.state.snapshot().load_full().config.clone();
            let pg = store::connect(&config).await?;
            let initial = side_name(authoritative(config.phase));
            store::ensure(&pg, initial).await?;
            self.pg = Some(pg);
        }
        self.pg
            .as_ref()
            .ok_or_else(|| MigrateError::Config("no fleet connection".into()))
    }

    /// One poll: read the control row, apply its epoch, publish the view,
    /// acknowledge a fence, heartbeat when due.
    async fn tick(&mut self) -> Result<(), MigrateError> {
        let fleet = Arc::clone(self.state.fleet());
        let mut read_at = Instant::now();
        let mut control: Control = store::control(self.conn().await?).await?;
        if control.expired {
            // The deadline passed: lower the fence through the row (see
            // `store::expire_fence`), then read what holds now — the fence
            // lowered under the same epoch, or a flip that won the row.
            // Until then the held writes stay held.
            let fence = control.fence;
            if store::expire_fence(self.conn().await?, fence).await? {
                tracing::warn!(
                    fence,
                    "fleet: the cutover fence expired; held writes go on under the unchanged epoch"
                );
            }
            read_at = Instant::now();
            control = store::control(self.conn().await?).await?;
        }
        let Some(authority) = parse_side(&control.authority) else {
            return Err(MigrateError::Config(format!(
                "tandem_fleet_control.authority is {:?}; expected old or new",
                control.authority
            )));
        };
        let previous = fleet.view();
        let phase = self.state.snapshot().load().config.phase;
        let changed_epoch = previous.as_ref().is_none_or(|v| v.epoch != control.epoch);
        if let Some(to) = governed(phase, authority) {
            self.state
                .set_phase(to)
                .await
                .map_err(MigrateError::Config)?;
        }
        // Up until the row says down: an expired fence not lowered yet (a
        // failed expiry above) still holds writes, and the gate's deadline
        // (`fence_until` + stale) refuses them in the end.
        let left = control.fence_left_ms.unwrap_or(0).max(0);
        let fenced = control.fenced;
        fleet.store_view(View {
            epoch: control.epoch,
            authority,
            fenced,
            fence_until: fenced.then(|| read_at + Duration::from_millis(left as u64)),
            read_at,
        });
        let phase = self.state.snapshot().load().config.phase;
        if changed_epoch {
            let id = self.id.clone();
            store::note_epoch(self.conn().await?, &id, control.epoch, phase.as_str()).await?;
            tracing::info!(epoch = control.epoch, authority = %control.authority, "fleet: epoch applied");
        }
        // Acknowledged once nothing of this proxy's is still on its way to
        // the authoritative side or its copy: no write in flight, the
        // statement mirror (if any) drained.
        let drained = self
            .state
            .mirror()
            .load_full()
            .is_none_or(|m| m.stats.queued.load(Ordering::SeqCst) <= 0);
        if fenced && self.acked != control.fence && fleet.in_flight() == 0 && drained {
            let id = self.id.clone();
            store::ack_fence(self.conn().await?, &id, control.fence).await?;
            self.acked = control.fence;
            tracing::info!(
                epoch = control.epoch,
                fence = control.fence,
                "fleet: fence acknowledged; new writes held"
            );
        }
        let every = Duration::from_millis(fleet.config.heartbeat_ms);
        if self.last_beat.is_none_or(|t| t.elapsed() >= every) {
            let snap = self.state.snapshot().load_full();
            let stream = self.state.stream_stats().snapshot();
            let (id, address) = (self.id.clone(), self.address.clone());
            let beat = Beat {
                id: &id,
                address: &address,
                config_version: self.state.config_version() as i64,
                config_hash: &config_hash(&snap.config),
                phase: phase.as_str(),
                epoch: control.epoch,
                stream_lag_s: Some(self.state.stream_stats().lag_seconds() as i64),
                stream_state: Some(&stream.state),
                in_flight: fleet.in_flight() as i64,
            };
            let pg = self.conn().await?;
            store::heartbeat(pg, &beat).await?;
            self.last_beat = Some(Instant::now());
        }
        Ok(())
    }
}

/// Registers this proxy and starts its member task (owned by `tracker`,
/// stopped by `shutdown`, which deregisters). The first poll runs before
/// this returns, so a proxy started after a cutover serves the right side
/// from its first client. Without `[fleet] enabled` nothing runs (`None`).
pub async fn spawn<S: Handles>(
    state: &Arc<S>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    address: String,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    if !state.fleet().enabled() {
        return Ok(None);
    }
    let config = state.snapshot().load_full().config.clone();
    let id = member_id(&config, &address);
    if let Ok(mut me) = state.fleet().me.lock() {
        me.clone_from(&id);
    }
    if let Ok(mut f) = state.fleet().file_phase.lock() {
        f.get_or_insert(config.phase);
    }
    let mut m = Member {
        id,
        state: Arc::clone(state),
        address,
        pg: None,
        acked: 0,
        last_beat: None,
    };
    if let Err(e) = m.tick().await {
        // Keep going: the gate refuses writes until the row is read.
        tracing::error!(error = %e, "fleet: cannot read the control row yet; writes are refused until it can");
    }
    let poll = Duration::from_millis(state.fleet().config.poll_ms.max(10));
    let handle = tracker.spawn(async move {
        let mut last_error: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = m.tick().await {
                m.pg = None;
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "fleet: control row unreadable; writes are refused once the view is stale");
                    last_error = Some(Instant::now());
                }
            }
        }
        let id = m.id.clone();
        if let Ok(pg) = m.conn().await {
            match store::deregister(pg, &id).await {
                Ok(()) => tracing::info!(id = %m.id, "fleet: deregistered"),
                Err(e) => tracing::warn!(error = %e, "fleet: cannot deregister"),
            }
        }
    });
    Ok(Some(handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(port: u16, id: &str, drift: &str, db: &str) -> Config {
        let toml = format!(
            "listen = \"127.0.0.1:{port}\"\nphase = \"dual_write\"\n[[users]]\nname = \"app\"\npassword = \"x\"\n\
             [backends.old]\nkind = \"mysql\"\nurl = \"mysql://u:p@127.0.0.1:3306/{db}\"\n\
             [backends.new]\nkind = \"postgres\"\nurl = \"postgres://u:p@127.0.0.1:5432/{db}\"\n\
             [mirror]\ndrift_log = \"{drift}\"\n[admin]\nlisten = \"127.0.0.1:{}\"\n\
             [fleet]\nenabled = true\nid = \"{id}\"\n",
            port + 1
        );
        Config::from_toml(&toml, |_| None).expect("valid")
    }

    #[test]
    fn per_proxy_settings_leave_the_hash_alone() {
        let a = config_hash(&config(4000, "a", "/var/log/a.jsonl", "shop"));
        let b = config_hash(&config(5000, "b", "/var/log/b.jsonl", "shop"));
        assert_eq!(a, b);
        let other = config_hash(&config(4000, "a", "/var/log/a.jsonl", "other"));
        assert_ne!(a, other, "a different database is a different config");
    }
}
