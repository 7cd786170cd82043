//! The shared and private MariaDB servers: bootstrap (a cached pristine data
//! directory), start, SQL through the `mariadb` CLI, kill and restart.

#![allow(dead_code)]

use super::*;

/// A running `mariadbd` with an `app`/`apppass` account that holds
/// `ALL PRIVILEGES ON *.* WITH GRANT OPTION` (`app`@`%` and `app`@`localhost`).
pub struct MariaDb {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Unix socket; `root` can log in through it without a password.
    pub socket: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) error_log: PathBuf,
    pub(super) process: Option<Arc<ServerProcess>>,
    pub(super) shared: bool,
    pub(super) extra_args: Vec<String>,
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

    pub(super) fn start(extra_args: Vec<String>) -> Result<MariaDb, String> {
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

    pub(super) fn create_app_user(&self) -> Result<(), String> {
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

pub(super) fn mariadb_cli(socket: &Path, sql: &str) -> Result<String, String> {
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
pub(super) const MARIADB_STORAGE_ARGS: &[&str] = &[
    "--innodb-log-file-size=16M",
    "--innodb-buffer-pool-size=64M",
];

/// Fills `data_dir` with a fresh system schema: a copy of the cached pristine
/// data directory when there is one, otherwise `mariadb-install-db` (and the
/// result becomes the cache for later test binaries).
pub(super) fn prepare_mariadb_datadir(dir: &Path, data_dir: &Path) -> Result<(), String> {
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

pub(super) const MANIFEST: &str = "tandem-template.manifest";

/// Lists every file with its size, so that a template half-eaten by a /tmp
/// cleaner is detected and rebuilt instead of producing a broken server.
pub(super) fn manifest_of(root: &Path) -> io::Result<Vec<String>> {
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

pub(super) fn write_manifest(root: &Path) -> io::Result<()> {
    fs::write(root.join(MANIFEST), manifest_of(root)?.join("\n"))
}

pub(super) fn template_is_complete(template: &Path) -> bool {
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

pub(super) fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
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

pub(super) fn launch_mariadbd(
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
        // Room for a 17 MiB row (protocol::large_blob_and_large_result_stream)
        // from the start: a test that raised the global instead changed what
        // other tests' new connections saw while they ran.
        .arg("--max-allowed-packet=64M")
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
