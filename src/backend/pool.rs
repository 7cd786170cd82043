//! A bounded pool of MySQL backend connections.
//!
//! A client session leases one connection for its whole life (session
//! pinning: `USE`, `SET`, temporary tables, transactions and prepared
//! statements then behave exactly as on a direct connection). `pool_size`
//! permits bound leased connections; idle ones are kept (also within
//! `pool_size`) after COM_RESET_CONNECTION and reused by the next client.
//! In passthrough authentication (`[auth] mode`) every login is relayed to a
//! connection opened for it and closed after it: nothing is kept idle.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::mysql::{self, BackendConn, Greeted};
use super::BackendError;
use crate::config::{BackendConfig, BackendTarget};

pub struct MysqlPool {
    pub target: BackendTarget,
    size: usize,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    idle_timeout: Duration,
    max_packet: usize,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<BackendConn>>,
    /// The last greeting this backend sent: the server identity shown to
    /// clients when PostgreSQL serves them (new_primary) and MySQL may be down.
    last_greeting: Mutex<Option<crate::wire::handshake::Greeting>>,
    /// Shape of the last session that logged in: the best guess for the next
    /// one when picking an idle connection before the client has spoken.
    last_shape: AtomicU64,
    /// Passthrough authentication: every login is a client's own, on a
    /// connection opened for it (the server's fresh scramble). Connections are
    /// closed after use, never kept idle: a pooled connection's scramble was
    /// already shown to its first client, and a second client greeted with it
    /// could replay a sniffed mysql_native_password answer.
    passthrough: bool,
}

/// A leased backend connection slot.
pub struct Lease {
    pub checkout: Checkout,
    permit: OwnedSemaphorePermit,
}

pub enum Checkout {
    /// A pooled connection, already logged in and reset.
    Idle(BackendConn),
    /// A new connection waiting for the client's session options.
    Fresh(Greeted),
}

impl Checkout {
    pub fn greeting(&self) -> &crate::wire::handshake::Greeting {
        match self {
            Checkout::Idle(c) => &c.greeting,
            Checkout::Fresh(g) => &g.greeting,
        }
    }
}

impl MysqlPool {
    pub fn new(cfg: &BackendConfig, max_packet: usize, passthrough: bool) -> Result<Self, String> {
        let size = cfg.pool_size as usize;
        Ok(Self {
            target: cfg.target()?,
            size,
            connect_timeout: cfg.connect_timeout(),
            acquire_timeout: cfg.acquire_timeout(),
            idle_timeout: Duration::from_secs(cfg.idle_timeout_s),
            max_packet,
            slots: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(Vec::new()),
            last_greeting: Mutex::new(None),
            last_shape: AtomicU64::new(0),
            passthrough,
        })
    }

    /// Whether client logins are relayed to the server (see `passthrough`).
    pub fn passthrough(&self) -> bool {
        self.passthrough
    }

    pub fn idle_count(&self) -> usize {
        self.lock_idle().len()
    }

    pub fn leased_count(&self) -> usize {
        self.size - self.slots.available_permits()
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<BackendConn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn connect(&self) -> Result<Greeted, BackendError> {
        let greeted = tokio::time::timeout(
            self.connect_timeout,
            mysql::connect(&self.target, self.max_packet),
        )
        .await
        .map_err(|_| BackendError::Timeout("connecting to the backend"))??;
        *self.last_greeting.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(greeted.greeting.clone());
        Ok(greeted)
    }

    pub fn last_greeting(&self) -> Option<crate::wire::handshake::Greeting> {
        self.last_greeting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (up to `acquire_timeout`) for a slot, then hands out an idle
    /// connection of the expected shape or opens a new one.
    pub async fn lease(&self) -> Result<Lease, BackendError> {
        let permit = tokio::time::timeout(self.acquire_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| BackendError::PoolExhausted(self.acquire_timeout.as_millis() as u64))?
            .map_err(|_| BackendError::Timeout("pool closed"))?;
        let idle = if self.passthrough {
            None
        } else {
            self.take_idle(self.last_shape.load(Ordering::Relaxed))
        };
        if let Some(conn) = idle {
            match conn.rehome() {
                Ok(conn) => {
                    return Ok(Lease {
                        checkout: Checkout::Idle(conn),
                        permit,
                    })
                }
                Err(e) => {
                    tracing::debug!(error = %e, "idle backend connection not movable; opening another")
                }
            }
        }
        let greeted = self.connect().await?;
        Ok(Lease {
            checkout: Checkout::Fresh(greeted),
            permit,
        })
    }

    /// A live idle connection, preferring one of `shape`. Stale or dead ones are
    /// dropped on the way.
    fn take_idle(&self, shape: u64) -> Option<BackendConn> {
        let mut idle = self.lock_idle();
        let now = Instant::now();
        idle.retain(|c| {
            now.duration_since(c.idle_since) < self.idle_timeout && c.io.is_idle_and_alive()
        });
        // Same shape on this session thread first (no move to this
        // thread's event loop needed, see `BackendConn::rehome`).
        let here = crate::workers::current();
        let pos = idle
            .iter()
            .rposition(|c| c.opts.shape() == shape && c.home == here)
            .or_else(|| idle.iter().rposition(|c| c.opts.shape() == shape))
            .or_else(|| idle.len().checked_sub(1))?;
        Some(idle.swap_remove(pos))
    }

    /// Called once a session's options are known.
    pub fn note_shape(&self, shape: u64) {
        self.last_shape.store(shape, Ordering::Relaxed);
    }

    /// Opens a replacement connection for a lease whose idle connection had the
    /// wrong shape; the mismatched one goes back to the idle list.
    pub async fn replace(&self, lease: &mut Lease) -> Result<(), BackendError> {
        let greeted = self.connect().await?;
        if let Checkout::Idle(old) =
            std::mem::replace(&mut lease.checkout, Checkout::Fresh(greeted))
        {
            self.push_idle(old);
        }
        Ok(())
    }

    fn push_idle(&self, mut conn: BackendConn) {
        conn.idle_since = Instant::now();
        let mut idle = self.lock_idle();
        // Leased + idle stays within pool_size: drop the oldest idle one if full.
        if idle.len() + self.leased_count() >= self.size && !idle.is_empty() {
            idle.remove(0);
        }
        if idle.len() < self.size {
            idle.push(conn);
        }
    }

    /// Returns a session's connection: it is reset in the background and kept
    /// idle, or closed if the reset fails. The slot is released after the
    /// reset so the pool never exceeds `pool_size`.
    pub fn release(self: &Arc<Self>, mut conn: BackendConn, lease_permit: LeasePermit) {
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            if pool.passthrough {
                // Logged in as its client: never handed to another one.
                conn.close().await;
                drop(lease_permit);
                return;
            }
            let reset = tokio::time::timeout(Duration::from_secs(5), conn.reset()).await;
            match reset {
                Ok(Ok(())) => pool.push_idle(conn),
                Ok(Err(e)) => tracing::debug!(error = %e, "backend connection not reusable"),
                Err(_) => tracing::debug!("backend reset timed out; connection dropped"),
            }
            drop(lease_permit);
        });
    }

    /// Closes every idle connection (shutdown).
    pub async fn close_idle(&self) {
        let conns: Vec<_> = std::mem::take(&mut *self.lock_idle());
        for c in conns {
            c.close().await;
        }
    }
}

impl MysqlPool {
    /// Gives back a lease that no session used (the client failed to log in or
    /// went away). A fresh connection is logged in anyway and kept idle:
    /// abandoning it mid-handshake would count against the proxy host in the
    /// server's `max_connect_errors` and could get the proxy blocked.
    pub fn recycle(self: &Arc<Self>, lease: Lease) {
        let (checkout, permit) = lease.into_parts();
        match checkout {
            Checkout::Idle(conn) => {
                self.push_idle(conn);
                drop(permit);
            }
            Checkout::Fresh(greeted) => {
                let pool = Arc::clone(self);
                tokio::spawn(async move {
                    let opts = mysql::default_opts(pool.target.database.as_deref());
                    let login = tokio::time::timeout(
                        pool.connect_timeout,
                        greeted.authenticate(&pool.target, opts),
                    )
                    .await;
                    match login {
                        Ok(Ok((conn, _))) if pool.passthrough => conn.close().await,
                        Ok(Ok((conn, _))) => pool.push_idle(conn),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "unused backend connection not kept")
                        }
                        Err(_) => tracing::debug!("unused backend connection timed out logging in"),
                    }
                    drop(permit);
                });
            }
        }
    }
}

/// The slot of a lease, held by the session until its connection is released.
pub struct LeasePermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl Lease {
    pub fn into_parts(self) -> (Checkout, LeasePermit) {
        (self.checkout, LeasePermit(self.permit))
    }
}
