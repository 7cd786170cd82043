//! Real database servers for the integration tests.
//!
//! `mariadb()` and `postgres()` lazily start one server of each kind per test
//! binary (i.e. per process) and hand out `&'static` handles, so every test in
//! the binary shares them. Tests isolate themselves by creating their own
//! database (`create_database`), which keeps `cargo test`'s parallel test
//! threads from stepping on each other.
//!
//! Each server lives in a fresh `tandem-it-*` directory under
//! `std::env::temp_dir()`, listens on a free loopback port, and is torn down
//! when the test process ends, however it ends:
//!
//! * the server is spawned from a dedicated thread that stays alive exactly as
//!   long as the server (it blocks in `wait()`), and the child gets
//!   `PR_SET_PDEATHSIG`, so the kernel signals it when the process dies, even
//!   on SIGKILL;
//! * on a normal exit an `atexit` hook stops the servers and removes their
//!   directories (set `TANDEM_IT_KEEP=1` to keep them for post-mortems);
//! * directories left behind by killed runs are removed at the next start,
//!   once the pid recorded in their `owner.pid` is gone.
//!
//! `start_private_mariadb()` gives a test its own MariaDB that it may kill and
//! restart (fault injection); it is stopped and deleted on drop.
//!
//! Needs the `mariadb-server`, `mariadb-client` and `postgresql` Debian
//! packages (`scripts/test.sh` installs them). Works as root (PostgreSQL is
//! then run as the `postgres` system user, or a `tandemtest` user created on
//! demand) and as an ordinary user.
//!
//! Environment knobs:
//! * `TANDEM_IT_KEEP=1` - keep server directories after the run;
//! * `TANDEM_IT_NO_TEMPLATE=1` - always run `mariadb-install-db` instead of
//!   copying the cached, pristine data directory;
//! * `TANDEM_PG_BINDIR` - directory holding `initdb` and `postgres`.

#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::ffi::CString;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Login of the application account created on both servers.
pub const APP_USER: &str = "app";
/// Password of [`APP_USER`] on both servers.
pub const APP_PASSWORD: &str = "apppass";

const DIR_PREFIX: &str = "tandem-it-";
const OWNER_FILE: &str = "owner.pid";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const INIT_TIMEOUT: Duration = Duration::from_secs(180);
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts at starting a server; a retry happens only when the port picked
/// by `free_port` was taken by someone else before the server could bind it.
const PORT_ATTEMPTS: usize = 4;

static DB_COUNTER: AtomicU64 = AtomicU64::new(1);

// ---------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------

/// The MariaDB server shared by every test of this test binary.
///
/// Started on first use; concurrent first calls wait for the same start.
/// Panics (in every caller) if the server cannot be started.
pub fn mariadb() -> &'static MariaDb {
    static SHARED: OnceLock<Result<MariaDb, String>> = OnceLock::new();
    match SHARED.get_or_init(|| {
        MariaDb::start(Vec::new()).map(|mut m| {
            // The shared server outlives `main`; the atexit hook owns cleanup.
            m.shared = true;
            m
        })
    }) {
        Ok(server) => server,
        Err(e) => panic!("shared MariaDB test server is unavailable: {e}"),
    }
}

/// The PostgreSQL server shared by every test of this test binary.
///
/// Started on first use; concurrent first calls wait for the same start.
/// Panics (in every caller) if the server cannot be started.
pub fn postgres() -> &'static Postgres {
    static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();
    match SHARED.get_or_init(|| Postgres::start(None)) {
        Ok(server) => server,
        Err(e) => panic!("shared PostgreSQL test server is unavailable: {e}"),
    }
}

/// A MariaDB server owned by the caller, for tests that kill or restart it.
/// It is killed and its directory removed when the value is dropped.
pub fn start_private_mariadb() -> MariaDb {
    start_private_mariadb_with(Vec::new())
}

/// A private MariaDB started with extra `mariadbd` options (TLS files,
/// `--require-secure-transport=ON`); they are kept across `restart`.
pub fn start_private_mariadb_with(extra_args: Vec<String>) -> MariaDb {
    MariaDb::start(extra_args)
        .unwrap_or_else(|e| panic!("cannot start a private MariaDB test server: {e}"))
}

/// Prepares a private PostgreSQL after initdb: gets the instance directory
/// (owned by the server's user) and the data directory, may write files there
/// (certificates, pg_hba.conf), and returns extra `postgres` arguments.
pub type PgSetup<'a> = &'a dyn Fn(&Path, &Path) -> Vec<String>;

/// A PostgreSQL owned by the caller (TLS tests), stopped and deleted on drop.
pub fn start_private_postgres(setup: PgSetup<'_>) -> Postgres {
    Postgres::start(Some(setup))
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL test server: {e}"))
}

/// A loopback TCP port that was free a moment ago (bind to port 0, read the
/// port, release it). Another process may grab it in between, so callers that
/// can should retry on "address in use".
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to pick a free port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the address of a bound socket: {e}"))
        .port()
}

// ---------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------

/// A running `mariadbd` with an `app`/`apppass` account that holds
/// `ALL PRIVILEGES ON *.* WITH GRANT OPTION` (`app`@`%` and `app`@`localhost`).
pub struct MariaDb {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Unix socket; `root` can log in through it without a password.
    pub socket: PathBuf,
    dir: PathBuf,
    data_dir: PathBuf,
    error_log: PathBuf,
    process: Option<Arc<ServerProcess>>,
    shared: bool,
    extra_args: Vec<String>,
}

impl MariaDb {
    /// `mysql://app:apppass@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!(
            "mysql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Creates a fresh database named `<prefix>_<n>` and returns its name.
    /// `prefix` may contain ASCII letters, digits and `_` only.
    pub fn create_database(&self, prefix: &str) -> String {
        let name = unique_db_name(prefix);
        self.root_sql(&format!("CREATE DATABASE `{name}`"));
        name
    }

    /// Runs SQL as `root` through the `mariadb` CLI (`-N -B`, so tab-separated
    /// rows without a header) and returns its stdout. Panics with the CLI's
    /// stderr if the statement fails.
    pub fn root_sql(&self, sql: &str) -> String {
        self.try_root_sql(sql)
            .unwrap_or_else(|e| panic!("MariaDB root SQL failed: {e}\n--- SQL ---\n{sql}"))
    }

    /// Like [`MariaDb::root_sql`] but returns the error instead of panicking.
    pub fn try_root_sql(&self, sql: &str) -> Result<String, String> {
        mariadb_cli(&self.socket, sql)
    }

    /// The server's own directory (data dir, socket, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of the server's error log.
    pub fn error_log_tail(&self) -> String {
        tail_of_file(&self.error_log, 40)
    }

    /// Whether the server process is still running.
    pub fn is_running(&self) -> bool {
        self.process
            .as_ref()
            .is_some_and(|p| p.exit_status().is_none())
    }

    /// Kills the server with SIGKILL (no clean shutdown, like a crash) and
    /// waits until it is gone. The data directory is kept, see `restart`.
    pub fn kill(&mut self) {
        assert!(
            !self.shared,
            "the shared MariaDB must not be killed; use start_private_mariadb()"
        );
        if let Some(process) = self.process.take() {
            unregister(&process);
            process.signal(libc::SIGKILL);
            if process.wait_timeout(Duration::from_secs(30)).is_none() {
                panic!(
                    "MariaDB (pid {}) did not die within 30 s of SIGKILL",
                    process.pid
                );
            }
        }
    }

    /// Starts the server again on the same port and data directory (after
    /// `kill`, or if it died). InnoDB crash recovery runs if it was killed.
    pub fn restart(&mut self) {
        assert!(
            !self.shared,
            "the shared MariaDB must not be restarted; use start_private_mariadb()"
        );
        if self.is_running() {
            self.kill();
        }
        let process = launch_mariadbd(
            &self.dir,
            &self.data_dir,
            &self.socket,
            self.port,
            &self.extra_args,
        )
        .unwrap_or_else(|e| panic!("cannot restart MariaDB: {}", e.message()));
        self.process = Some(process);
    }

    fn start(extra_args: Vec<String>) -> Result<MariaDb, String> {
        let started = Instant::now();
        let instance = InstanceDir::create("mariadb")?;
        let dir = instance.path().to_path_buf();
        let data_dir = dir.join("data");
        let socket = dir.join("mysqld.sock");
        let error_log = dir.join("error.log");

        prepare_mariadb_datadir(&dir, &data_dir)?;

        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match launch_mariadbd(&dir, &data_dir, &socket, port, &extra_args) {
                Ok(process) => {
                    let server = MariaDb {
                        port,
                        socket,
                        dir: instance.keep(),
                        data_dir,
                        error_log,
                        process: Some(process),
                        shared: false,
                        extra_args,
                    };
                    server.create_app_user()?;
                    log_timing("MariaDB", &server.dir, started);
                    return Ok(server);
                }
                Err(StartError::PortInUse(e)) => last_error = e,
                Err(StartError::Failed(e)) => return Err(e),
            }
        }
        Err(format!(
            "MariaDB could not bind a free port after {PORT_ATTEMPTS} attempts: {last_error}"
        ))
    }

    fn create_app_user(&self) -> Result<(), String> {
        let mut sql = String::new();
        for host in ["%", "localhost"] {
            sql.push_str(&format!(
                "CREATE USER '{APP_USER}'@'{host}' IDENTIFIED BY '{APP_PASSWORD}';\n\
                 GRANT ALL PRIVILEGES ON *.* TO '{APP_USER}'@'{host}' WITH GRANT OPTION;\n"
            ));
        }
        self.try_root_sql(&sql)
            .map(drop)
            .map_err(|e| format!("cannot create the app user: {e}"))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            process.signal(libc::SIGKILL);
            process.wait_timeout(Duration::from_secs(30));
            unregister(&process);
        }
        remove_instance_dir(&self.dir);
    }
}

fn mariadb_cli(socket: &Path, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(find_program("mariadb")?);
    // --no-defaults must come first; it keeps /etc/mysql and ~/.my.cnf out.
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args([
            "--user=root",
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]);
    let out = run(&mut cmd, Some(sql), CLI_TIMEOUT)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "mariadb CLI {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Arguments shared by `mariadb-install-db` (it forwards them to the bootstrap
/// server) and `mariadbd`, which must agree on the redo log size.
const MARIADB_STORAGE_ARGS: &[&str] = &[
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=64M",
];

/// Fills `data_dir` with a fresh system schema: a copy of the cached pristine
/// data directory when there is one, otherwise `mariadb-install-db` (and the
/// result becomes the cache for later test binaries).
fn prepare_mariadb_datadir(dir: &Path, data_dir: &Path) -> Result<(), String> {
    let mariadbd = find_program("mariadbd")?;
    let install_db = find_program("mariadb-install-db")?;
    let use_template = std::env::var_os("TANDEM_IT_NO_TEMPLATE").is_none();

    let template = {
        let version = Command::new(&mariadbd)
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {} --version: {e}", mariadbd.display()))?;
        let mut h = DefaultHasher::new();
        version.stdout.hash(&mut h);
        MARIADB_STORAGE_ARGS.hash(&mut h);
        unsafe { libc::geteuid() }.hash(&mut h);
        std::env::temp_dir().join(format!("{DIR_PREFIX}template-mariadb-{:016x}", h.finish()))
    };
    if use_template && template_is_complete(&template) {
        return copy_tree(&template, data_dir).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                template.display(),
                data_dir.display()
            )
        });
    }

    let bootstrap = dir.join("bootstrap");
    let mut cmd = Command::new(&install_db);
    cmd.arg("--no-defaults")
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg("--skip-name-resolve")
        .arg(format!("--datadir={}", bootstrap.display()))
        .args(MARIADB_STORAGE_ARGS)
        .current_dir(dir);
    if is_root() {
        cmd.arg("--user=root");
    }
    let out = run(&mut cmd, None, INIT_TIMEOUT)?;
    if !out.status.success() {
        return Err(format!(
            "mariadb-install-db failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if use_template {
        write_manifest(&bootstrap)
            .map_err(|e| format!("cannot write the template manifest: {e}"))?;
        // Atomic publish; if another process won the race we keep our copy.
        if fs::rename(&bootstrap, &template).is_ok() {
            return copy_tree(&template, data_dir).map_err(|e| {
                format!(
                    "cannot copy {} to {}: {e}",
                    template.display(),
                    data_dir.display()
                )
            });
        }
    }
    fs::rename(&bootstrap, data_dir)
        .map_err(|e| format!("cannot rename {}: {e}", bootstrap.display()))
}

const MANIFEST: &str = "tandem-template.manifest";

/// Lists every file with its size, so that a template half-eaten by a /tmp
/// cleaner is detected and rebuilt instead of producing a broken server.
fn manifest_of(root: &Path) -> io::Result<Vec<String>> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) -> io::Result<()> {
        for entry in fs::read_dir(root.join(rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(root, &rel, out)?;
            } else if rel != Path::new(MANIFEST) {
                out.push(format!("{} {}", meta.len(), rel.display()));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

fn write_manifest(root: &Path) -> io::Result<()> {
    fs::write(root.join(MANIFEST), manifest_of(root)?.join("\n"))
}

fn template_is_complete(template: &Path) -> bool {
    let Ok(recorded) = fs::read_to_string(template.join(MANIFEST)) else {
        return false;
    };
    match manifest_of(template) {
        Ok(actual) if actual.join("\n") == recorded => true,
        _ => {
            // Damaged: drop it so this run rebuilds it.
            let _ = fs::remove_dir_all(template);
            false
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if entry.file_name() != MANIFEST {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn launch_mariadbd(
    dir: &Path,
    data_dir: &Path,
    socket: &Path,
    port: u16,
    extra_args: &[String],
) -> Result<Arc<ServerProcess>, StartError> {
    let mariadbd = find_program("mariadbd").map_err(StartError::Failed)?;
    let error_log = dir.join("error.log");
    // Keep only this attempt's messages so port clashes are recognisable.
    let _ = fs::remove_file(&error_log);
    let _ = fs::remove_file(socket);

    let mut cmd = Command::new(mariadbd);
    cmd.arg("--no-defaults");
    if is_root() {
        cmd.arg("--user=root");
    }
    cmd.arg(format!("--datadir={}", data_dir.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", error_log.display()))
        .arg("--skip-name-resolve")
        .args(MARIADB_STORAGE_ARGS)
        .arg("--max-connections=500")
        // As production runs it: a row-format binlog (the change stream reads
        // it), a server id, full row images and full table-map metadata.
        .arg("--log-bin=mariadb-bin")
        .arg("--binlog-format=ROW")
        .arg("--binlog-row-image=FULL")
        .arg("--binlog-row-metadata=FULL")
        .arg("--server-id=1")
        // Bounded disk use in long test runs; each test database is small.
        .arg("--max-binlog-size=64M")
        // Test data is disposable: no fsync per commit. (2, not 0: commits must
        // still survive a SIGKILL of mariadbd, which fault tests rely on.)
        .arg("--innodb-flush-log-at-trx-commit=2")
        .arg("--skip-innodb-doublewrite")
        // What Debian's packaged config sets; --no-defaults would leave latin1.
        .arg("--character-set-server=utf8mb4")
        .arg("--collation-server=utf8mb4_general_ci")
        .args(extra_args)
        .current_dir(dir);
    let process = ServerProcess::spawn(
        "mariadbd",
        cmd,
        &dir.join("mariadbd.out"),
        libc::SIGKILL,
        None,
        dir,
    )
    .map_err(StartError::Failed)?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.exit_status() {
            let log = tail_of_file(&error_log, 40);
            let msg = format!(
                "mariadbd exited during startup ({status}); error log {}:\n{log}",
                error_log.display()
            );
            return Err(if log.contains("Address already in use") {
                StartError::PortInUse(msg)
            } else {
                StartError::Failed(msg)
            });
        }
        if socket.exists() && mariadb_cli(socket, "SELECT 1").is_ok() {
            return Ok(process);
        }
        if Instant::now() > deadline {
            process.signal(libc::SIGKILL);
            return Err(StartError::Failed(format!(
                "mariadbd did not accept connections on {} within {}s; error log {}:\n{}",
                socket.display(),
                START_TIMEOUT.as_secs(),
                error_log.display(),
                tail_of_file(&error_log, 40)
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------

/// A running PostgreSQL with a `app`/`apppass` LOGIN SUPERUSER role.
///
/// TCP connections need the password (scram-sha-256); the unix socket trusts
/// everyone, which is what [`Postgres::sql`] uses (as the `postgres` role).
pub struct Postgres {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Directory that holds the unix socket (`.s.PGSQL.PORT`).
    pub socket_dir: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    bindir: PathBuf,
    process: Arc<ServerProcess>,
    /// Extra `postgres` arguments from the setup, kept for `restart`.
    extra_args: Vec<String>,
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

    fn start(setup: Option<PgSetup<'_>>) -> Result<Postgres, String> {
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

fn wait_for_postgres(
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

fn psql(sock_dir: &Path, port: u16, db: &str, sql: &str) -> Result<String, String> {
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
fn pg_bindir() -> Result<PathBuf, String> {
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
struct Identity {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

/// PostgreSQL refuses to run as root. Under root we use the `postgres` system
/// account if present, else a `tandemtest` account created on demand.
fn pg_run_as() -> Result<Option<Identity>, String> {
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

fn lookup_user(name: &str) -> Option<Identity> {
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
fn set_identity(cmd: &mut Command, ids: Identity) {
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

// ---------------------------------------------------------------------------
// Server processes and their lifetime
// ---------------------------------------------------------------------------

enum StartError {
    /// The port was taken before the server bound it: pick another one.
    PortInUse(String),
    Failed(String),
}

impl StartError {
    fn message(&self) -> &str {
        match self {
            StartError::PortInUse(m) | StartError::Failed(m) => m,
        }
    }
}

/// A server child process, reaped by its own watcher thread.
struct ServerProcess {
    pid: libc::pid_t,
    name: &'static str,
    exit_signal: libc::c_int,
    dir: PathBuf,
    status: Mutex<Option<ExitStatus>>,
    exited: Condvar,
}

impl ServerProcess {
    /// Spawns `cmd` from a dedicated watcher thread. The child gets
    /// `PR_SET_PDEATHSIG(exit_signal)`; the kernel sends that signal when the
    /// *thread* that forked it exits, so the watcher forks it and then blocks
    /// in `wait()` for the child's whole life. If the test process dies, the
    /// watcher dies with it and the server is signalled.
    fn spawn(
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

    fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `sig` unless the process has already been reaped (its pid could
    /// belong to someone else by then).
    fn signal(&self, sig: libc::c_int) {
        let slot = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            unsafe { libc::kill(self.pid, sig) };
        }
    }

    fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let slot = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let (slot, _) = self
            .exited
            .wait_timeout_while(slot, timeout, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *slot
    }
}

/// Graceful-ish stop: `sig`, then SIGKILL if it lingers.
fn stop_with(process: &ServerProcess, sig: libc::c_int) {
    process.signal(sig);
    if process.wait_timeout(Duration::from_secs(10)).is_none() {
        process.signal(libc::SIGKILL);
        process.wait_timeout(Duration::from_secs(10));
    }
}

fn registry() -> &'static Mutex<Vec<Arc<ServerProcess>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Arc<ServerProcess>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn; it never unwinds.
        unsafe { libc::atexit(stop_all_at_exit) };
        Mutex::new(Vec::new())
    })
}

fn register(process: &Arc<ServerProcess>) {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(process.clone());
}

fn unregister(process: &Arc<ServerProcess>) {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|p| !Arc::ptr_eq(p, process));
}

/// Runs when the test binary exits normally (libtest returns from main or
/// calls `process::exit`): stop every server still running and delete its
/// directory. Abnormal deaths are covered by PDEATHSIG + the stale-dir sweep.
extern "C" fn stop_all_at_exit() {
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

// ---------------------------------------------------------------------------
// Instance directories
// ---------------------------------------------------------------------------

/// A `tandem-it-<kind>-XXXXXX` directory under the temp dir, stamped with our
/// pid (and its start time, against pid reuse) in `owner.pid`. Removed on
/// drop unless `keep()` is called.
struct InstanceDir(Option<tempfile::TempDir>);

impl InstanceDir {
    fn create(kind: &str) -> Result<InstanceDir, String> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_stale_dirs);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{kind}-"))
            .tempdir()
            .map_err(|e| {
                format!(
                    "cannot create a temp dir in {}: {e}",
                    std::env::temp_dir().display()
                )
            })?;
        let me = std::process::id();
        let stamp = format!("{me} {}\n", process_start_time(me).unwrap_or_default());
        fs::write(dir.path().join(OWNER_FILE), stamp).map_err(|e| {
            format!(
                "cannot write {}: {e}",
                dir.path().join(OWNER_FILE).display()
            )
        })?;
        Ok(InstanceDir(Some(dir)))
    }

    fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map(|d| d.path())
            .unwrap_or_else(|| Path::new(""))
    }

    fn keep(mut self) -> PathBuf {
        self.0.take().map(|d| d.keep()).unwrap_or_default()
    }
}

impl Drop for InstanceDir {
    fn drop(&mut self) {
        // On a failed start, leave the evidence when asked to.
        if let Some(dir) = self.0.take() {
            if keep_dirs() {
                let _ = dir.keep();
            }
        }
    }
}

fn keep_dirs() -> bool {
    std::env::var_os("TANDEM_IT_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

fn remove_instance_dir(dir: &Path) {
    if keep_dirs() {
        eprintln!("tandem-it: keeping {}", dir.display());
    } else if !dir.as_os_str().is_empty() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Start time (field 22 of /proc/PID/stat, clock ticks since boot) of a
/// running process; `None` if there is no such process or it is a zombie
/// (containers whose init never reaps keep dead test binaries as zombies).
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; it ends at the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    if matches!(fields.next()?, "Z" | "X") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Deletes `tandem-it-*` directories whose owning test process is gone
/// (killed runs never get to clean up after themselves).
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        // No owner file: a template (kept on purpose) or a dir being created.
        let Ok(stamp) = fs::read_to_string(entry.path().join(OWNER_FILE)) else {
            continue;
        };
        let mut fields = stamp.split_whitespace();
        let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let recorded_start = fields.next().and_then(|s| s.parse::<u64>().ok());
        let alive = match process_start_time(pid) {
            None => false,
            Some(start) => recorded_start.is_none_or(|r| r == start),
        };
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn unique_db_name(prefix: &str) -> String {
    assert!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database prefix {prefix:?} must be non-empty ASCII letters, digits or '_'"
    );
    format!("{prefix}_{}", DB_COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Finds a program on PATH, falling back to the sbin directories that a
/// non-root PATH lacks on Debian (`mariadbd` lives in /usr/sbin).
fn find_program(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "`{name}` not found on PATH or in /usr/sbin; install the mariadb-server, mariadb-client \
         and postgresql packages (scripts/test.sh does this)"
    ))
}

/// Runs a short-lived command, feeding `stdin`, with a timeout.
fn run(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Result<Output, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let feeder = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_owned();
            Some(thread::spawn(move || {
                let _ = pipe.write_all(input.as_bytes());
            }))
        }
        _ => None,
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {}s",
                    timeout.as_secs()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {program} failed: {e}")),
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

fn tail_of_file(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

fn log_timing(what: &str, dir: &Path, started: Instant) {
    eprintln!(
        "tandem-it: {what} ready in {:.2?} ({})",
        started.elapsed(),
        dir.display()
    );
}
