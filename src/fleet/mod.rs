//! A fleet of proxies that change their authoritative database together.
//!
//! Several proxies (a Deployment, an HA pair) serve one application. A phase
//! edit that each applies on its own lets two of them write to different
//! primaries for a moment, so with `[fleet] enabled` the authority comes from
//! one row on the new database instead (`tandem_fleet_control`: epoch,
//! authority, fence) and every proxy registers itself in
//! `tandem_fleet_members` with a heartbeat (see [`store`]).
//!
//! The write gate ([`Fleet::admit`]) sits in front of every write a session
//! sends: while the fence is up it holds the write (bounded by the fence
//! deadline), and it refuses writes whenever this proxy cannot be sure it
//! follows the current epoch — the control row not read for `stale_ms`
//! (a paused or partitioned proxy), or an epoch seen but not yet applied.
//! Reads never wait. `tandem cutover` ([`cutover`]) drives the fence and the
//! epoch.

pub mod cutover;
pub mod member;
pub mod reload;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::proxy::route::Target;

pub use crate::config::FleetConfig;

/// What this proxy last read from the control row (and applied).
#[derive(Debug, Clone)]
pub struct View {
    pub epoch: i64,
    pub authority: Target,
    pub fenced: bool,
    /// When a raised fence expires, on this proxy's clock.
    pub fence_until: Option<Instant>,
    /// When the row was read.
    pub read_at: Instant,
}

/// Why a write was not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("tandem: the fleet control row has not been read for {0} ms; writes are refused until this proxy has caught up with the fleet epoch (retry)")]
    Stale(u64),
    #[error(
        "tandem: writes were held for a cutover fence that did not lift before its deadline; retry"
    )]
    FenceTimeout,
    /// Sessions that can be handed over never see this (see
    /// `frontend::mysql::handover`).
    #[error("tandem: the {0} database became authoritative while this write waited; it was not executed — reconnect and retry")]
    Moved(&'static str),
}

impl Refusal {
    /// MySQL error code: ER_OPTION_PREVENTS_STATEMENT (the server's answer
    /// for writes it may not take, e.g. under read_only).
    pub const CODE: u16 = 1290;
}

/// The fleet side of one proxy: the view of the control row, the fence gate
/// and the count of writes in flight (the fence acknowledgement waits for
/// them).
pub struct Fleet {
    pub config: FleetConfig,
    view: ArcSwap<Option<View>>,
    changed: Notify,
    in_flight: AtomicU64,
    /// Longest time a write waited at the gate, in microseconds (since start).
    pub max_wait_us: AtomicU64,
    pub held_total: AtomicU64,
    pub refused_total: AtomicU64,
    /// Sessions moved to the new authority at a boundary instead of being
    /// refused (`frontend::mysql::handover`).
    pub handed_over: AtomicU64,
    /// This proxy's member id once registered.
    pub(crate) me: std::sync::Mutex<String>,
    /// The phase the config file said at the last load (the running phase
    /// may differ: the control row governs it).
    pub(crate) file_phase: std::sync::Mutex<Option<crate::config::Phase>>,
}

/// Held by a session from its first gated write until its transaction ends;
/// the fence acknowledgement waits until none is held.
pub struct WriteGuard {
    fleet: Arc<Fleet>,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        // No wake-up here: held writes wait for a new view, not for each
        // other (waking them would make them spin through the gate).
        self.fleet.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Fleet {
    pub fn new(config: FleetConfig) -> Arc<Fleet> {
        Arc::new(Fleet {
            config,
            view: ArcSwap::from_pointee(None),
            changed: Notify::new(),
            in_flight: AtomicU64::new(0),
            max_wait_us: AtomicU64::new(0),
            held_total: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            handed_over: AtomicU64::new(0),
            me: std::sync::Mutex::new(String::new()),
            file_phase: std::sync::Mutex::new(None),
        })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn view(&self) -> Option<View> {
        (**self.view.load()).clone()
    }

    /// Stores what the control row says (after its epoch was applied).
    pub fn store_view(&self, view: View) {
        self.view.store(Arc::new(Some(view)));
        // Pairs with the fence in `admit`: a raised fence stored here is
        // seen by a write counted there, or that write's count is seen by
        // the watcher reading `in_flight` after this (on any CPU, not only
        // on x86's stronger ordering).
        std::sync::atomic::fence(Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The fleet part of `/status`: `null` without `[fleet] enabled`.
    pub fn status(&self) -> serde_json::Value {
        if !self.enabled() {
            return serde_json::Value::Null;
        }
        let view = self.view();
        serde_json::json!({
            "member": self.me.lock().map(|m| m.clone()).unwrap_or_default(),
            "epoch": view.as_ref().map(|v| v.epoch),
            "authority": view.as_ref().map(|v| side_name(v.authority)),
            "fenced": view.as_ref().is_some_and(|v| v.fenced),
            "control_read_ms_ago": view.as_ref().map(|v| v.read_at.elapsed().as_millis() as u64),
            "writes_in_flight": self.in_flight(),
            "writes_held": self.held_total.load(Ordering::Relaxed),
            "writes_refused": self.refused_total.load(Ordering::Relaxed),
            "sessions_handed_over": self.handed_over.load(Ordering::Relaxed),
            "longest_hold_ms": self.max_wait_us.load(Ordering::Relaxed) / 1000,
        })
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until a write may go to `side` (the side this session is
    /// served by). Returns a guard to keep until the write's transaction
    /// ends. Without `[fleet] enabled` it returns at once.
    pub async fn admit(self: &Arc<Self>, side: Target) -> Result<WriteGuard, Refusal> {
        let started = Instant::now();
        let mut held = false;
        let result = loop {
            // Count the write first, then look: the watcher stores a raised
            // fence first, then looks at the count, so one of the two sees
            // the other.
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            // See `store_view`: count, fence, then look.
            std::sync::atomic::fence(Ordering::SeqCst);
            let guard = WriteGuard {
                fleet: Arc::clone(self),
            };
            if !self.enabled() {
                break Ok(guard);
            }
            let notified = self.changed.notified();
            let view = self.view();
            let stale = Duration::from_millis(self.config.stale_ms);
            let Some(view) = view.filter(|v| v.read_at.elapsed() <= stale) else {
                break Err(Refusal::Stale(self.config.stale_ms));
            };
            if !view.fenced {
                if view.authority != side {
                    break Err(Refusal::Moved(side_name(view.authority)));
                }
                break Ok(guard);
            }
            drop(guard);
            held = true;
            // An expired fence is lowered by the watcher through the control
            // row (never by the clock alone: a flip may still commit); a view
            // that still says fenced well past the deadline is a safety net.
            let until = view.fence_until.unwrap_or(view.read_at) + stale;
            if Instant::now() >= until {
                break Err(Refusal::FenceTimeout);
            }
            // Woken by a new view; re-checked at least every poll interval
            // so that a proxy that stops reading the row turns stale.
            let nap = Duration::from_millis(self.config.poll_ms.max(10));
            let _ = tokio::time::timeout(nap, notified).await;
        };
        if held {
            self.held_total.fetch_add(1, Ordering::Relaxed);
            let us = started.elapsed().as_micros() as u64;
            self.max_wait_us.fetch_max(us, Ordering::Relaxed);
        }
        if result.is_err() {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

pub fn side_name(t: Target) -> &'static str {
    match t {
        Target::Old => "old",
        Target::New => "new",
    }
}

pub fn parse_side(s: &str) -> Option<Target> {
    match s {
        "old" => Some(Target::Old),
        "new" => Some(Target::New),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Arc<Fleet> {
        Fleet::new(FleetConfig {
            enabled: true,
            poll_ms: 20,
            stale_ms: 500,
            ..Default::default()
        })
    }

    fn view(fenced: bool, authority: Target, until_ms: u64) -> View {
        View {
            epoch: 1,
            authority,
            fenced,
            fence_until: Some(Instant::now() + Duration::from_millis(until_ms)),
            read_at: Instant::now(),
        }
    }

    #[tokio::test]
    async fn never_read_is_refused_and_disabled_passes() {
        let f = fleet();
        assert_eq!(f.admit(Target::Old).await.err(), Some(Refusal::Stale(500)));
        let off = Fleet::new(FleetConfig::default());
        assert!(off.admit(Target::Old).await.is_ok());
    }

    #[tokio::test]
    async fn fence_holds_until_lifted_and_counts_in_flight() {
        let f = fleet();
        f.store_view(view(true, Target::Old, 2000));
        let g = Arc::clone(&f);
        let t = tokio::spawn(async move { g.admit(Target::Old).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!t.is_finished(), "a write passed a raised fence");
        assert_eq!(f.in_flight(), 0, "a held write must not count as in flight");
        f.store_view(view(false, Target::Old, 0));
        assert_eq!(t.await.unwrap(), Ok(()));
        assert!(f.max_wait_us.load(Ordering::Relaxed) >= 100_000);
    }

    #[tokio::test]
    async fn released_to_the_other_side_is_refused() {
        let f = fleet();
        f.store_view(view(true, Target::Old, 2000));
        let g = Arc::clone(&f);
        let t = tokio::spawn(async move { g.admit(Target::Old).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        f.store_view(view(false, Target::New, 0));
        assert_eq!(t.await.unwrap(), Err(Refusal::Moved("new")));
        let guard = f.admit(Target::New).await;
        assert!(guard.is_ok());
        assert_eq!(f.in_flight(), 1);
        drop(guard);
        assert_eq!(f.in_flight(), 0);
    }

    #[tokio::test]
    async fn fence_deadline_and_staleness_refuse() {
        let f = fleet();
        let mut v = view(true, Target::Old, 0);
        v.fence_until = Some(Instant::now() - Duration::from_millis(450));
        f.store_view(v);
        assert_eq!(
            f.admit(Target::Old).await.err(),
            Some(Refusal::FenceTimeout)
        );
        let mut v = view(false, Target::Old, 0);
        v.read_at = Instant::now() - Duration::from_secs(1);
        f.store_view(v);
        assert_eq!(f.admit(Target::Old).await.err(), Some(Refusal::Stale(500)));
    }
}
