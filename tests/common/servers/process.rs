//! Server processes and their lifetime: spawned from a thread that waits on
//! them, killed with the test process (`PR_SET_PDEATHSIG`) or at exit.

#![allow(dead_code)]

use super::*;

pub(super) enum StartError {
    /// The port was taken before the server bound it: pick another one.
    PortInUse(String),
    Failed(String),
}

impl StartError {
    pub(super) fn message(&self) -> &str {
        match self {
            StartError::PortInUse(m) | StartError::Failed(m) => m,
        }
    }
}

/// A server child process, reaped by its own watcher thread.
pub(super) struct ServerProcess {
    pub(super) pid: libc::pid_t,
    pub(super) name: &'static str,
    pub(super) exit_signal: libc::c_int,
    pub(super) dir: PathBuf,
    pub(super) status: Mutex<Option<ExitStatus>>,
    pub(super) exited: Condvar,
}

impl ServerProcess {
    /// Spawns `cmd` from a dedicated watcher thread. The child gets
    /// `PR_SET_PDEATHSIG(exit_signal)`; the kernel sends that signal when the
    /// *thread* that forked it exits, so the watcher forks it and then blocks
    /// in `wait()` for the child's whole life. If the test process dies, the
    /// watcher dies with it and the server is signalled.
    pub(super) fn spawn(
        name: &'static str,
        mut cmd: Command,
        output: &Path,
        exit_signal: libc::c_int,
        run_as: Option<Identity>,
        dir: &Path,
    ) -> Result<Arc<ServerProcess>, String> {
        let out = fs::File::create(output)
            .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot dup {}: {e}", output.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        if let Some(ids) = run_as {
            set_identity(&mut cmd, ids);
        }
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    exit_signal as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }

        let (tx, rx) = std::sync::mpsc::channel::<Result<Arc<ServerProcess>, String>>();
        let dir = dir.to_path_buf();
        thread::Builder::new()
            .name(format!("tandem-it-{name}"))
            .spawn(move || {
                let mut child: Child = match cmd.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = tx.send(Err(format!(
                            "cannot start {name} ({:?}): {e}",
                            cmd.get_program()
                        )));
                        return;
                    }
                };
                let process = Arc::new(ServerProcess {
                    pid: child.id() as libc::pid_t,
                    name,
                    exit_signal,
                    dir,
                    status: Mutex::new(None),
                    exited: Condvar::new(),
                });
                register(&process);
                let _ = tx.send(Ok(process.clone()));
                let status = child.wait();
                let mut slot = process.status.lock().unwrap_or_else(|p| p.into_inner());
                *slot = Some(status.unwrap_or_else(|e| panic!("waiting for {name} failed: {e}")));
                process.exited.notify_all();
            })
            .map_err(|e| format!("cannot spawn the {name} watcher thread: {e}"))?;
        rx.recv()
            .map_err(|_| format!("the {name} watcher thread died before reporting"))?
    }

    pub(super) fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `sig` unless the process has already been reaped (its pid could
    /// belong to someone else by then).
    pub(super) fn signal(&self, sig: libc::c_int) {
        let slot = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            unsafe { libc::kill(self.pid, sig) };
        }
    }

    pub(super) fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let slot = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let (slot, _) = self
            .exited
            .wait_timeout_while(slot, timeout, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *slot
    }
}

/// Graceful-ish stop: `sig`, then SIGKILL if it lingers.
pub(super) fn stop_with(process: &ServerProcess, sig: libc::c_int) {
    process.signal(sig);
    if process.wait_timeout(Duration::from_secs(10)).is_none() {
        process.signal(libc::SIGKILL);
        process.wait_timeout(Duration::from_secs(10));
    }
}

pub(super) fn registry() -> &'static Mutex<Vec<Arc<ServerProcess>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Arc<ServerProcess>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn; it never unwinds.
        unsafe { libc::atexit(stop_all_at_exit) };
        Mutex::new(Vec::new())
    })
}

pub(super) fn register(process: &Arc<ServerProcess>) {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(process.clone());
}

pub(super) fn unregister(process: &Arc<ServerProcess>) {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| !Arc::ptr_eq(p, process));
}

/// Runs when the test binary exits normally (libtest returns from main or
/// calls `process::exit`): stop every server still running and delete its
/// directory. Abnormal deaths are covered by PDEATHSIG + the stale-dir sweep.
pub(super) extern "C" fn stop_all_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let Ok(mut list) = registry().try_lock() else {
            return;
        };
        let processes: Vec<_> = list.drain(..).collect();
        drop(list);
        for p in &processes {
            p.signal(p.exit_signal);
        }
        for p in &processes {
            if p.wait_timeout(Duration::from_secs(10)).is_none() {
                eprintln!(
                    "tandem-it: {} (pid {}) ignored signal {}; killing",
                    p.name, p.pid, p.exit_signal
                );
                p.signal(libc::SIGKILL);
                p.wait_timeout(Duration::from_secs(5));
            }
            remove_instance_dir(&p.dir);
        }
    });
}
