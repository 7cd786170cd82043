//! A typed builder for test proxy configurations, instead of patching TOML
//! strings (`.replace("listen = ", "phase = …\nlisten = ")`): each setting a
//! test needs is a method, and the builder writes the keys where TOML wants
//! them (top-level keys before any table).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{servers, PROXY_PASSWORD, PROXY_USER};

/// A proxy configuration in front of the shared MariaDB.
#[derive(Debug, Clone)]
pub struct TestConfig {
    old_url: String,
    phase: Option<String>,
    new_url: Option<String>,
    new_connect_timeout_ms: Option<u64>,
    drift_log: Option<PathBuf>,
    shutdown_timeout_ms: u64,
    /// `[mirror]` keys beyond `drift_log`, as `key = value` lines.
    mirror: Vec<String>,
    /// Whole extra tables (`[shadow]\n…`), appended as written.
    tables: Vec<String>,
    /// `[limits]` keys beyond `shutdown_timeout_ms`, as `key = value` lines.
    limits: Vec<String>,
    /// `[admin] listen` (`""`: no admin listener).
    admin_listen: Option<String>,
    /// The proxy's `listen` port (0: a free one the kernel picks).
    port: u16,
    /// `[fleet]` member id.
    fleet: Option<String>,
}

impl TestConfig {
    /// `primary_only` in front of database `db` on the shared MariaDB.
    pub fn new(db: &str) -> Self {
        Self {
            old_url: servers::mariadb().url(db),
            phase: None,
            new_url: None,
            new_connect_timeout_ms: None,
            drift_log: None,
            shutdown_timeout_ms: 5000,
            mirror: Vec::new(),
            tables: Vec::new(),
            limits: Vec::new(),
            admin_listen: None,
            port: 0,
            fleet: None,
        }
    }

    /// `phase = "…"` (`dual_write`, `new_primary`, …).
    pub fn phase(mut self, phase: &str) -> Self {
        self.phase = Some(phase.to_string());
        self
    }

    /// `[backends.new]` at `url`; its kind follows the URL's scheme.
    pub fn new_backend(mut self, url: &str) -> Self {
        self.new_url = Some(url.to_string());
        self
    }

    /// `[backends.new] connect_timeout_ms` (the default otherwise).
    pub fn new_connect_timeout_ms(mut self, ms: u64) -> Self {
        self.new_connect_timeout_ms = Some(ms);
        self
    }

    pub fn drift_log(mut self, path: &Path) -> Self {
        self.drift_log = Some(path.to_path_buf());
        self
    }

    /// `[limits] shutdown_timeout_ms`: the bound on the whole shutdown.
    pub fn shutdown_timeout_ms(mut self, ms: u64) -> Self {
        self.shutdown_timeout_ms = ms;
        self
    }

    /// One `[mirror]` setting, e.g. `.mirror("queue_capacity", "4")`
    /// (the value as TOML: strings quoted by the caller).
    /// A key set twice keeps the last value.
    pub fn mirror(mut self, key: &str, value: &str) -> Self {
        set_key(&mut self.mirror, key, value);
        self
    }

    /// One `[limits]` setting beyond `shutdown_timeout_ms`, e.g.
    /// `.limit("statement_cache_size", "77")`.
    pub fn limit(mut self, key: &str, value: &str) -> Self {
        set_key(&mut self.limits, key, value);
        self
    }

    /// `false`: no admin listener (`[admin] listen = ""`); `true`: the
    /// default.
    pub fn admin(mut self, on: bool) -> Self {
        self.admin_listen = (!on).then(String::new);
        self
    }

    /// `[admin] listen = "addr"` (a test binds `127.0.0.1:0` or a
    /// `free_port()`, never the default).
    pub fn admin_listen(mut self, addr: &str) -> Self {
        self.admin_listen = Some(addr.to_string());
        self
    }

    /// `listen = "127.0.0.1:port"`, for a proxy run as a child process
    /// whose port the test must know beforehand.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// `[backends.old] url`, for a test with its own MariaDB.
    pub fn old_url(mut self, url: &str) -> Self {
        self.old_url = url.to_string();
        self
    }

    /// A fleet member named `id`, with the short timings the fleet tests
    /// use (poll 50 ms, heartbeat 500 ms, stale after 1 s).
    pub fn fleet(mut self, id: &str) -> Self {
        self.fleet = Some(id.to_string());
        self
    }

    /// A whole extra table, written as given.
    pub fn table(mut self, toml: &str) -> Self {
        self.tables.push(toml.to_string());
        self
    }

    /// The TOML text (what `start_proxy_with` takes).
    pub fn toml(&self) -> String {
        let mut t = String::new();
        if let Some(phase) = &self.phase {
            let _ = writeln!(t, "phase = \"{phase}\"");
        }
        let _ = write!(
            t,
            "listen = \"127.0.0.1:{}\"\n\
             [[users]]\nname = \"{PROXY_USER}\"\npassword = \"{PROXY_PASSWORD}\"\n\
             [backends.old]\nkind = \"mysql\"\nurl = \"{}\"\n",
            self.port, self.old_url
        );
        if let Some(url) = &self.new_url {
            let kind = if url.starts_with("postgres") {
                "postgres"
            } else {
                "mysql"
            };
            let _ = writeln!(t, "[backends.new]\nkind = \"{kind}\"\nurl = \"{url}\"");
            if let Some(ms) = self.new_connect_timeout_ms {
                let _ = writeln!(t, "connect_timeout_ms = {ms}");
            }
        }
        let _ = writeln!(
            t,
            "[limits]\nshutdown_timeout_ms = {}",
            self.shutdown_timeout_ms
        );
        for line in &self.limits {
            let _ = writeln!(t, "{line}");
        }
        if self.drift_log.is_some() || !self.mirror.is_empty() {
            t.push_str("[mirror]\n");
            if let Some(p) = &self.drift_log {
                let _ = writeln!(t, "drift_log = \"{}\"", p.display());
            }
            for line in &self.mirror {
                let _ = writeln!(t, "{line}");
            }
        }
        if let Some(addr) = &self.admin_listen {
            let _ = writeln!(t, "[admin]\nlisten = \"{addr}\"");
        }
        if let Some(id) = &self.fleet {
            let _ = writeln!(
                t,
                "[fleet]\nenabled = true\nid = \"{id}\"\npoll_ms = 50\nheartbeat_ms = 500\nstale_ms = 1000"
            );
        }
        for table in &self.tables {
            t.push_str(table);
            t.push('\n');
        }
        t
    }

    /// Starts a proxy with this configuration.
    pub async fn start(&self) -> super::Proxy {
        super::start_proxy_with(&self.toml()).await
    }
}

/// Sets `key = value` in `lines`, replacing an earlier value of `key`.
fn set_key(lines: &mut Vec<String>, key: &str, value: &str) {
    let line = format!("{key} = {value}");
    let prefix = format!("{key} = ");
    match lines.iter_mut().find(|l| l.starts_with(&prefix)) {
        Some(old) => *old = line,
        None => lines.push(line),
    }
}
