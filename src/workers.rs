//! Session threads: each runs its own single-threaded runtime, and a client
//! session lives on one of them from accept to close, with the backend
//! connection it leases. A statement's client read, backend write, backend
//! read and client write then all wake the same thread, as in an
//! event-driven forwarding proxy: no hand-off between threads per statement
//! (a work-stealing runtime wakes an idle sibling thread on almost every
//! I/O event, which cost about one futex call per statement).
//!
//! Only sessions run here; the accept loop, admin endpoint, reloads, shadow
//! comparers and mirror workers stay on the main runtime. Pool and client
//! limits stay global (`MysqlPool`, `max_clients`): the pool only prefers an
//! idle backend connection registered on the asking thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// Shard number of threads that are not session threads.
pub const MAIN: usize = usize::MAX;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(MAIN) };
}

/// The session thread this code runs on (`MAIN` elsewhere). Sockets opened
/// here are registered with this thread's runtime.
pub fn current() -> usize {
    SHARD.with(Cell::get)
}

/// The session threads of a running proxy. Dropping it stops them: their
/// runtimes drop whatever tasks are left (sessions have ended by then).
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` session threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut workers = Workers {
            handles: Vec::new(),
            next: AtomicUsize::new(0),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for shard in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            workers.handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("tandem-session-{shard}"))
                .spawn(move || {
                    SHARD.with(|s| s.set(shard));
                    runtime.block_on(stop.cancelled());
                })?;
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// The runtime for the next session (round robin).
    pub fn pick(&self) -> Option<&Handle> {
        let n = self.handles.len();
        if n == 0 {
            return None;
        }
        self.handles
            .get(self.next.fetch_add(1, Ordering::Relaxed) % n)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_spread_and_run_on_their_own_thread() {
        let workers = Workers::start(2).unwrap();
        let mut shards = Vec::new();
        for _ in 0..4 {
            let handle = workers.pick().unwrap().clone();
            let (tx, rx) = std::sync::mpsc::channel();
            handle.spawn(async move {
                let _ = tx.send(current());
            });
            shards.push(rx.recv().unwrap());
        }
        assert_eq!(shards, vec![0, 1, 0, 1]);
        assert_eq!(current(), MAIN);
        drop(workers); // joins: must not hang
    }
}
