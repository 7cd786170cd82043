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
//!
//! Layout: this file holds the entry points; `mariadb`, `postgres`, `process`
//! (server lifetime), `instance` (directories) and `util` hold the rest.

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

mod instance;
mod mariadb;
mod postgres;
mod process;
mod util;

use instance::*;
pub use mariadb::*;
pub use postgres::*;
use process::*;
use util::*;

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
