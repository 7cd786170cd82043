//! The shared and private PostgreSQL servers: initdb (as a system user when
//! run as root), start, SQL through `psql`.

#![allow(dead_code)]

use super::*;

/// A running PostgreSQL with a `app`/`apppass` LOGIN SUPERUSER role.
///
/// TCP connections need the password (scram-sha-256); the unix socket trusts
/// everyone, which is what [`Postgres::sql`] uses (as the `postgres` role).
pub struct Postgres {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Directory that holds the unix socket (`.s.PGSQL.PORT`).
    pub socket_dir: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) log: PathBuf,
    pub(super) bindir: PathBuf,
    pub(super) process: Arc<ServerProcess>,
    /// Extra `postgres` arguments from the setup, kept for `restart`.
    pub(super) extra_args: Vec<String>,
}

impl Postgres {
    /// `postgres://app:apppass@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Creates a fresh database `<prefix>_<n>` owned by `app`; returns its name.
    /// `prefix` may contain ASCII letters, digits and `_` only.
    pub fn create_database(&self, prefix: &str) -> String {
        let name = unique_db_name(prefix);
        self.sql(
            "postgres",
            &format!("CREATE DATABASE \"{name}\" OWNER {APP_USER}"),
        );
        name
    }

    /// Runs SQL in database `db` as the `postgres` superuser through `psql`
    /// (unaligned, tuples only: `|`-separated rows) and returns its stdout.
    /// Stops at the first error and panics with psql's stderr.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql).unwrap_or_else(|e| {
            panic!("PostgreSQL SQL in database {db} failed: {e}\n--- SQL ---\n{sql}")
        })
    }

    /// Like [`Postgres::sql`] but returns the error instead of panicking.
    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql(&self.socket_dir, self.port, db, sql)
    }

    /// The server's own directory (data dir, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of the server log.
    pub fn log_tail(&self) -> String {
        tail_of_file(&self.log, 40)
    }

    /// Directory of the PostgreSQL server binaries in use.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    pub(super) fn start(setup: Option<PgSetup<'_>>) -> Result<Postgres, String> {
        let started = Instant::now();
        let bindir = pg_bindir()?;
        let run_as = pg_run_as()?;
        let instance = InstanceDir::create("postgres")?;
        let dir = instance.path().to_path_buf();
        let data_dir = dir.join("data");
        let log = dir.join("postgres.log");
        if let Some(ids) = run_as {
            std::os::unix::fs::chown(&dir, Some(ids.uid), Some(ids.gid))
                .map_err(|e| format!("cannot chown {} to uid {}: {e}", dir.display(), ids.uid))?;
        }

        // --no-sync: initdb's fsyncs cost seconds and buy nothing here.
        // Passwords are checked on TCP (like production); the socket is trusted.
        let initdb_args = |locale: &str| {
            let mut cmd = Command::new(bindir.join("initdb"));
            cmd.arg("-D")
                .arg(&data_dir)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .args(["-E", "UTF8", locale, "--no-sync", "--no-instructions"])
                .current_dir(&dir);
            if let Some(ids) = run_as {
                cmd.env("HOME", &dir);
                set_identity(&mut cmd, ids);
            }
            cmd
        };
        let mut out = run(&mut initdb_args("--locale=C.UTF-8"), None, INIT_TIMEOUT)?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&data_dir);
            out = run(&mut initdb_args("--no-locale"), None, INIT_TIMEOUT)?;
        }
        if !out.status.success() {
            return Err(format!(
                "initdb failed ({}){}:\n{}{}",
                out.status,
                if run_as.is_some() {
                    " (it runs as an unprivileged user: is the temp dir reachable for it? set TMPDIR)"
                } else {
                    ""
                },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }

        let extra_args = setup.map(|f| f(&dir, &data_dir)).unwrap_or_default();
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let _ = fs::remove_file(&log);
            let cmd = postgres_command(&bindir, &dir, port, &extra_args, run_as.is_some());
            // SIGQUIT = immediate shutdown: the postmaster takes its backends
            // down and removes its SysV shared memory segment, which SIGKILL
            // would leak on every run.
            let process = ServerProcess::spawn("postgres", cmd, &log, libc::SIGQUIT, run_as, &dir)?;
            match wait_for_postgres(&process, &dir, port, &log) {
                Ok(()) => {
                    let server = Postgres {
                        port,
                        socket_dir: dir.clone(),
                        dir: instance.keep(),
                        log,
                        bindir,
                        process,
                        extra_args,
                    };
                    server
                        .try_sql(
                            "postgres",
                            &format!(
                                "CREATE ROLE {APP_USER} LOGIN SUPERUSER PASSWORD '{APP_PASSWORD}'"
                            ),
                        )
                        .map_err(|e| format!("cannot create the app role: {e}"))?;
                    log_timing("PostgreSQL", &server.dir, started);
                    return Ok(server);
                }
                Err(StartError::PortInUse(e)) => last_error = e,
                Err(StartError::Failed(e)) => return Err(e),
            }
        }
        Err(format!(
            "PostgreSQL could not bind a free port after {PORT_ATTEMPTS} attempts: {last_error}"
        ))
    }
}

impl Postgres {
    /// Stops a private server the way an operator does (`pg_ctl stop -m
    /// fast`: SIGINT, clients disconnected, a clean shutdown) and waits until
    /// it is gone. The data directory is kept, see `restart`.
    pub fn stop(&mut self) {
        let status = self.process.exit_status();
        if status.is_none() {
            stop_with(&self.process, libc::SIGINT);
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        unregister(&self.process);
        let run_as = pg_run_as().unwrap_or_else(|e| panic!("{e}"));
        let cmd = postgres_command(
            &self.bindir,
            &self.dir,
            self.port,
            &self.extra_args,
            run_as.is_some(),
        );
        let process =
            ServerProcess::spawn("postgres", cmd, &self.log, libc::SIGQUIT, run_as, &self.dir)
                .unwrap_or_else(|e| panic!("cannot restart PostgreSQL: {e}"));
        if let Err(e) = wait_for_postgres(&process, &self.dir, self.port, &self.log) {
            panic!("PostgreSQL did not come back: {}", e.message());
        }
        self.process = process;
    }
}

/// The `postgres` command line of a test server in instance directory `dir`.
fn postgres_command(
    bindir: &Path,
    dir: &Path,
    port: u16,
    extra_args: &[String],
    home: bool,
) -> Command {
    let mut cmd = Command::new(bindir.join("postgres"));
    cmd.arg("-D")
        .arg(dir.join("data"))
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .args(["-c", "max_connections=200"])
        // Logical decoding for the reverse stream (PostgreSQL → MySQL):
        // every test database may hold one slot.
        .args(["-c", "wal_level=logical", "-c", "max_replication_slots=64"])
        // Docker's 64 MB /dev/shm is too small for parallel query with
        // POSIX shared memory; files in the data dir always work.
        .args(["-c", "dynamic_shared_memory_type=mmap"])
        .args(extra_args)
        .current_dir(dir);
    if home {
        cmd.env("HOME", dir);
    }
    cmd
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_with(&self.process, libc::SIGQUIT);
        unregister(&self.process);
        remove_instance_dir(&self.dir);
    }
}

pub(super) fn wait_for_postgres(
    process: &ServerProcess,
    sock_dir: &Path,
    port: u16,
    log: &Path,
) -> Result<(), StartError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let socket = sock_dir.join(format!(".s.PGSQL.{port}"));
    loop {
        if let Some(status) = process.exit_status() {
            let text = tail_of_file(log, 40);
            let msg = format!(
                "postgres exited during startup ({status}); log {}:\n{text}",
                log.display()
            );
            return Err(if text.contains("Address already in use") {
                StartError::PortInUse(msg)
            } else {
                StartError::Failed(msg)
            });
        }
        if socket.exists() && psql(sock_dir, port, "postgres", "SELECT 1").is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            stop_with(process, libc::SIGQUIT);
            return Err(StartError::Failed(format!(
                "postgres did not accept connections on {} within {}s; log {}:\n{}",
                socket.display(),
                START_TIMEOUT.as_secs(),
                log.display(),
                tail_of_file(log, 40)
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn psql(sock_dir: &Path, port: u16, db: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(find_program("psql")?);
    cmd.arg("--no-psqlrc")
        .args([
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
        ])
        .arg("--host")
        .arg(sock_dir)
        .arg("--port")
        .arg(port.to_string())
        .args(["--username", "postgres", "--dbname", db])
        .env("PGCLIENTENCODING", "UTF8");
    let out = run(&mut cmd, Some(sql), CLI_TIMEOUT)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "psql {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `TANDEM_PG_BINDIR`, else `pg_config --bindir` if it has a server, else the
/// newest `/usr/lib/postgresql/<major>/bin` (Debian's layout).
pub(super) fn pg_bindir() -> Result<PathBuf, String> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("TANDEM_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "TANDEM_PG_BINDIR={} has no initdb/postgres",
                dir.display()
            ))
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server(&bin).then_some((major, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, dir)| dir).ok_or_else(|| {
        "PostgreSQL server binaries not found (no pg_config, no /usr/lib/postgresql/*/bin/initdb); \
         install the `postgresql` package (scripts/test.sh does) or set TANDEM_PG_BINDIR"
            .to_string()
    })
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Identity {
    pub(super) uid: libc::uid_t,
    pub(super) gid: libc::gid_t,
}

/// PostgreSQL refuses to run as root. Under root we use the `postgres` system
/// account if present, else a `tandemtest` account created on demand.
pub(super) fn pg_run_as() -> Result<Option<Identity>, String> {
    if !is_root() {
        return Ok(None);
    }
    if let Some(ids) = lookup_user("postgres") {
        return Ok(Some(ids));
    }
    if lookup_user("tandemtest").is_none() {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "tandemtest",
            ])
            .output()
            .map_err(|e| format!("cannot run useradd to create the tandemtest user: {e}"))?;
        // Another test binary may have created it concurrently: look again.
        if !out.status.success() && lookup_user("tandemtest").is_none() {
            return Err(format!(
                "useradd tandemtest failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    lookup_user("tandemtest")
        .map(Some)
        .ok_or_else(|| "user tandemtest does not exist after useradd".to_string())
}

pub(super) fn lookup_user(name: &str) -> Option<Identity> {
    let cname = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(Identity {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// Switch user in the child; done by hand (not `CommandExt::uid`) so the order
/// relative to `PR_SET_PDEATHSIG`, which a credential change clears, is ours.
pub(super) fn set_identity(cmd: &mut Command, ids: Identity) {
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(ids.gid) != 0
                || libc::setuid(ids.uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
