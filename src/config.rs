//! `proxy.toml`: schema, `${VAR}` expansion, validation.
//!
//! Loading is parse → expand environment → deserialize (unknown keys and wrong
//! types are errors naming the key) → validate. The result is immutable and is
//! shared as `Arc<Config>` through an `ArcSwap` so a reload can replace it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the MySQL front end listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub phase: Phase,
    /// Accounts clients log in with (checked by the proxy, not the backend).
    #[serde(default)]
    pub users: Vec<User>,
    pub backends: Backends,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub mirror: MirrorConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub reads: ReadsConfig,
    #[serde(default)]
    pub shadow: ShadowConfig,
    #[serde(default)]
    pub fleet: crate::fleet::FleetConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    /// Whose identity sessions carry on the backends (see `auth::mode`).
    #[serde(default)]
    pub auth: crate::auth::mode::AuthConfig,
}

/// TLS for MySQL clients connecting to the proxy.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain offered to clients (CLIENT_SSL is offered when
    /// set); replaced files are picked up at the next handshake.
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<std::path::PathBuf>,
    /// Refuse clients that log in without TLS (ERROR 1045, as MariaDB with
    /// require_secure_transport).
    pub require: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StickyMode {
    /// Each read is routed on its own.
    #[default]
    Statement,
    /// One choice per client connection.
    Session,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReadsConfig {
    /// Share of reads (0–100, fractional allowed) served by the
    /// non-authoritative backend: the new one in dual_write.
    pub new_percent: f64,
    pub sticky: StickyMode,
    /// Seed of the routing hash (same seed, same choices).
    pub seed: u64,
    /// `[reads.ramp]`: the proxy moves the share itself, step by step, on
    /// evidence (see `cockpit::ramp`); `new_percent` edits then pause it.
    pub ramp: Option<crate::cockpit::settings::RampConfig>,
}

impl Default for ReadsConfig {
    fn default() -> Self {
        Self {
            new_percent: 0.0,
            sticky: StickyMode::Statement,
            seed: 0x7a6e_6465_6d00,
            ramp: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowConfig {
    /// Share (0–100, fractional allowed) of the reads answered by the
    /// authoritative backend that are also run on the other one and compared.
    pub sample_percent: f64,
    /// The mismatch log (JSON lines); `tandem mismatches` summarizes it.
    pub log: PathBuf,
    /// Background comparisons running at once (each holds one connection to
    /// each backend). Read at start.
    pub workers: u32,
    /// Sampled reads waiting for a worker; beyond it they are not compared
    /// (counted as `dropped`). Read at start.
    pub queue_capacity: u32,
    /// Answers up to this many bytes are copied as relayed and compared
    /// with what the client saw; larger ones are re-run on both sides.
    pub capture_bytes: u64,
    /// Rows kept per answer for an exact comparison with sample rows; past
    /// it answers are compared by row count and hashes.
    pub max_rows: u32,
    /// Differing rows written per mismatch.
    pub sample_rows: u32,
    /// Re-run both sides once, after the mirror caught up, before logging a
    /// mismatch (one that disappears is counted as transient).
    pub recheck: bool,
    /// Longest wait for either side's answer (and for the session's mirrored
    /// writes to be applied first).
    pub timeout_ms: u64,
    /// Mismatches logged per statement fingerprint per minute (the rest are
    /// counted): a systematic difference cannot flood the disk.
    pub max_logged_per_minute: u32,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            sample_percent: 0.0,
            log: PathBuf::from("tandem-mismatches.jsonl"),
            workers: 2,
            queue_capacity: 1024,
            capture_bytes: 1 << 20,
            max_rows: 10_000,
            sample_rows: 5,
            recheck: true,
            timeout_ms: 5000,
            max_logged_per_minute: 60,
        }
    }
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// HTTP address for /metrics and /status; empty disables it. Keep it on
    /// loopback or a private interface unless `token` and `tls` are set.
    pub listen: String,
    /// When set, every request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Serve HTTPS with `cert`/`key`, or with the `[tls]` ones when unset.
    pub tls: bool,
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9307".into(),
            token: None,
            tls: false,
            cert: None,
            key: None,
        }
    }
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MirrorMode {
    /// The client gets the primary's answer at once; the secondary catches up.
    #[default]
    Async,
    /// The client's answer waits until the secondary applied the write too
    /// (its failures are still drift, never client errors).
    Sync,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// A full queue records the write as drift and lets the client go on.
    #[default]
    Drop,
    /// A full queue makes the client wait (backpressure).
    Block,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MirrorConfig {
    pub mode: MirrorMode,
    /// Writes queued per client session before `overflow` applies.
    pub queue_capacity: u32,
    pub overflow: OverflowPolicy,
    /// Secondary failures and skipped writes, one JSON object per line.
    pub drift_log: PathBuf,
    /// Most reconnect backoff after the secondary fails, in milliseconds.
    pub max_backoff_ms: u64,
    /// Where mirrored changes come from: the old backend's binlog, the
    /// proxy's own statements, or `auto` (binlog when the server allows it).
    /// Read at start.
    pub source: StreamSourceKind,
    /// Replica server id the binlog stream registers with (unique among the
    /// primary's replicas).
    pub server_id: u32,
    /// A source transaction the new backend refuses: stop, or skip and log.
    pub on_error: crate::stream::apply::OnError,
    /// Tables without a primary key: match rows on all columns, or skip them.
    pub no_key: crate::stream::apply::NoKey,
    /// Target connections the change stream applies independent source
    /// transactions on (1 = one connection, strictly in commit order).
    pub apply_workers: u32,
}

/// `[mirror] source`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StreamSourceKind {
    Binlog,
    Statements,
    /// Binlog when the old backend allows it, else statements (with the
    /// reason logged); resolved at start by `stream::source::resolve`.
    #[default]
    Auto,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        Self {
            mode: MirrorMode::Async,
            queue_capacity: 1024,
            overflow: OverflowPolicy::Drop,
            drift_log: PathBuf::from("tandem-drift.jsonl"),
            max_backoff_ms: 5_000,
            source: StreamSourceKind::default(),
            server_id: 4_242,
            on_error: Default::default(),
            no_key: Default::default(),
            apply_workers: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Threads serving connections, each with its own event loop and a
    /// session staying on one of them (see `crate::workers`): 0 = one per CPU
    /// core; 1 = everything on a single-threaded event loop. Read at start
    /// only.
    pub worker_threads: u32,
}

fn default_listen() -> String {
    "127.0.0.1:3307".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Only the old backend is used; the proxy is transparent.
    #[default]
    PrimaryOnly,
    DualWrite,
    NewPrimary,
    NewOnly,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PrimaryOnly => "primary_only",
            Phase::DualWrite => "dual_write",
            Phase::NewPrimary => "new_primary",
            Phase::NewOnly => "new_only",
        }
    }
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// Plain password (usually `${ENV_VAR}`).
    pub password: Option<String>,
    /// Or the server-style hash `*` + 40 hex digits (`SELECT PASSWORD('…')`),
    /// so no clear password has to exist anywhere.
    pub password_sha1: Option<String>,
    /// `mysql_native_password` (default) or `caching_sha2_password` (needs
    /// `password`).
    pub plugin: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backends {
    pub old: BackendConfig,
    pub new: Option<BackendConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Mysql,
    Postgres,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub kind: BackendKind,
    pub url: String,
    /// Most connections open to this backend at once. Each client session pins
    /// one, so this also caps concurrent client sessions.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a new client waits for a free backend connection before it
    /// gets ERROR 1040 (Too many connections).
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Idle pooled connections older than this are closed instead of reused.
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u64,
}

fn default_pool_size() -> u32 {
    100
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_acquire_timeout_ms() -> u64 {
    5_000
}
fn default_idle_timeout_s() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most client connections served at once; more wait in the accept queue.
    pub max_clients: u32,
    /// Largest command a client may send (memory guard); the server's own
    /// max_allowed_packet still applies.
    pub max_packet_bytes: u64,
    pub handshake_timeout_ms: u64,
    /// On SIGTERM, how long running statements may take to finish.
    pub shutdown_timeout_ms: u64,
    /// Distinct statement shapes whose classification is cached.
    pub statement_cache_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 4096,
            max_packet_bytes: 256 << 20,
            handshake_timeout_ms: 10_000,
            shutdown_timeout_ms: 30_000,
            statement_cache_size: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `tandem=debug,info`, …
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

// Secrets stay out of Debug output (a logged config, a panic message).
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &hidden(&self.password))
            .field("password_sha1", &hidden(&self.password_sha1))
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("idle_timeout_s", &self.idle_timeout_s)
            .finish()
    }
}

/// A URL with its password replaced by `***`, for anything shown to people.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".into(),
    }
}

/// A backend URL taken apart. Its Debug output leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// `sslmode`/`sslrootcert` (PostgreSQL) or `ssl-mode`/`ssl-ca` (MySQL).
    pub tls: crate::tls::TlsTarget,
}

impl std::fmt::Debug for BackendTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish()
    }
}

impl BackendTarget {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl BackendConfig {
    pub fn target(&self) -> Result<BackendTarget, String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("not a URL: {e}"))?;
        let (scheme, default_port) = match self.kind {
            BackendKind::Mysql => ("mysql", 3306),
            BackendKind::Postgres => ("postgres", 5432),
        };
        if url.scheme() != scheme && !(scheme == "postgres" && url.scheme() == "postgresql") {
            return Err(format!(
                "scheme `{}` does not match kind (expected {scheme}://)",
                url.scheme()
            ));
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "bad percent-encoding in URL credentials".to_string())
        };
        let host = url.host_str().ok_or("URL has no host")?.to_string();
        let database = url.path().trim_start_matches('/');
        Ok(BackendTarget {
            host,
            port: url.port().unwrap_or(default_port),
            user: decode(url.username())?,
            password: decode(url.password().unwrap_or(""))?,
            database: (!database.is_empty()).then(|| database.to_string()),
            tls: url_tls(&url, self.kind)?,
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

/// The TLS parameters of a backend URL, spelled as each engine's own client
/// spells them. Any other parameter is an error (a typo must not silently
/// mean "no TLS").
fn url_tls(url: &url::Url, kind: BackendKind) -> Result<crate::tls::TlsTarget, String> {
    use crate::tls::SslMode;
    let mut mode = None;
    let mut ca = None;
    for (key, value) in url.query_pairs() {
        match (kind, key.as_ref()) {
            (BackendKind::Postgres, "sslmode") => {
                mode = Some(SslMode::from_libpq(&value).ok_or_else(|| {
                    format!(
                        "sslmode `{value}`: expected disable, prefer, require, verify-ca or verify-full"
                    )
                })?)
            }
            (BackendKind::Postgres, "sslrootcert") | (BackendKind::Mysql, "ssl-ca" | "ssl_ca") => {
                ca = Some(std::path::PathBuf::from(value.as_ref()))
            }
            (BackendKind::Mysql, "ssl-mode" | "ssl_mode") => {
                mode = Some(SslMode::from_mysql(&value).ok_or_else(|| {
                    format!(
                        "ssl-mode `{value}`: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                    )
                })?)
            }
            (BackendKind::Postgres, other) => {
                return Err(format!(
                    "unknown URL parameter `{other}` (supported: sslmode, sslrootcert)"
                ))
            }
            (BackendKind::Mysql, other) => {
                return Err(format!(
                    "unknown URL parameter `{other}` (supported: ssl-mode, ssl-ca)"
                ))
            }
        }
    }
    let mode = match (kind, mode, &ca) {
        // libpq: with a root certificate, `require` verifies the chain.
        (BackendKind::Postgres, Some(SslMode::Require), Some(_)) => SslMode::VerifyCa,
        // The MySQL client: --ssl-ca without --ssl-mode means VERIFY_CA.
        (BackendKind::Mysql, None, Some(_)) => SslMode::VerifyCa,
        (_, mode, _) => mode.unwrap_or_default(),
    };
    if mode.verifies() && ca.is_none() {
        return Err(format!(
            "{mode:?} needs the CA file: add {}",
            match kind {
                BackendKind::Postgres => "sslrootcert=/path/ca.pem",
                BackendKind::Mysql => "ssl-ca=/path/ca.pem",
            }
        ));
    }
    Ok(crate::tls::TlsTarget { mode, ca })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, |k| std::env::var(k).ok())
    }

    /// Parses and validates; `env` resolves `${VAR}` references.
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        expand_env(&mut value, &mut String::new(), &env)?;
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            invalid(
                if key == "." { "config".into() } else { key },
                e.into_inner().to_string(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Only `[shadow] log`, for commands that need nothing else (`tandem
    /// mismatches`): an operator may be mid-edit on an unrelated key while
    /// the proxy keeps serving the last good config. The whole file is
    /// validated first; when that fails the error is returned alongside as a
    /// warning and the log path is still taken from the file (with `${VAR}`
    /// expanded in that one value). Unreadable TOML, or an invalid
    /// `[shadow] log` itself, is an error.
    pub fn shadow_log_lenient(path: &Path) -> Result<(PathBuf, Option<ConfigError>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::shadow_log_from_toml(&text, |k| std::env::var(k).ok())
    }

    /// [`Config::shadow_log_lenient`] on a file's text.
    pub fn shadow_log_from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(PathBuf, Option<ConfigError>), ConfigError> {
        let warning = match Self::from_toml(text, &env) {
            Ok(config) => return Ok((config.shadow.log, None)),
            Err(ConfigError::Syntax(e)) => return Err(ConfigError::Syntax(e)),
            Err(e) => e,
        };
        let value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let log = match value.get("shadow").map(|s| s.get("log")) {
            None | Some(None) => ShadowConfig::default().log,
            Some(Some(toml::Value::String(s))) => {
                PathBuf::from(expand_str(s, &env).map_err(|m| invalid("shadow.log", m))?)
            }
            Some(Some(other)) => {
                return Err(invalid(
                    "shadow.log",
                    format!("expected a path string, found {}", other.type_str()),
                ))
            }
        };
        Ok((log, Some(warning)))
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| {
            invalid(
                "listen",
                format!("`{}` is not an address:port ({e})", self.listen),
            )
        })
    }

    /// The effective `[auth] mode`.
    pub fn auth_mode(&self) -> crate::auth::mode::AuthMode {
        self.auth.effective(!self.users.is_empty())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let serves_pg = matches!(self.phase, Phase::NewPrimary | Phase::NewOnly);
        crate::auth::mode::validate(
            &self.auth,
            !self.users.is_empty(),
            serves_pg,
            self.phase.as_str(),
        )
        .map_err(|(key, message)| invalid(key, message))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err(invalid("tls.key", "[tls] cert is set without its key")),
            (None, Some(_)) => return Err(invalid("tls.cert", "[tls] key is set without a cert")),
            (None, None) if self.tls.require => {
                return Err(invalid(
                    "tls.require",
                    "clients cannot use TLS without [tls] cert and key",
                ))
            }
            _ => {}
        }
        if self.admin.tls {
            let own = self.admin.cert.is_some() && self.admin.key.is_some();
            let shared = self.tls.cert.is_some() && self.tls.key.is_some();
            if !own && !shared {
                return Err(invalid(
                    "admin.tls",
                    "needs [admin] cert and key, or [tls] cert and key",
                ));
            }
        }
        if self.admin.token.as_deref() == Some("") {
            return Err(invalid("admin.token", "must not be empty"));
        }
        match self.phase {
            Phase::PrimaryOnly => {}
            Phase::DualWrite => {
                if self.backends.new.is_none() {
                    return Err(invalid(
                        "phase",
                        "`dual_write` mirrors writes to [backends.new], which is not configured",
                    ));
                }
            }
            Phase::NewPrimary | Phase::NewOnly => match &self.backends.new {
                Some(b) if b.kind == BackendKind::Postgres => {}
                Some(_) => {
                    return Err(invalid(
                        "phase",
                        format!(
                            "phase `{}` needs a PostgreSQL [backends.new] in this version (MySQL-to-MySQL moves stop at dual_write)",
                            self.phase.as_str()
                        ),
                    ))
                }
                None => {
                    return Err(invalid(
                        "phase",
                        format!("phase `{}` serves from [backends.new], which is not configured", self.phase.as_str()),
                    ))
                }
            },
        }
        if !(0.0..=100.0).contains(&self.reads.new_percent) {
            return Err(invalid("reads.new_percent", "must be between 0 and 100"));
        }
        if let Some(ramp) = &self.reads.ramp {
            ramp.validate().map_err(|(k, m)| invalid(k, m))?;
        }
        if !(0.0..=100.0).contains(&self.shadow.sample_percent) {
            return Err(invalid(
                "shadow.sample_percent",
                "must be between 0 and 100",
            ));
        }
        if self.shadow.sample_percent > 0.0 && self.backends.new.is_none() {
            return Err(invalid(
                "shadow.sample_percent",
                "shadow reads run on [backends.new], which is not configured",
            ));
        }
        for (key, v) in [
            ("shadow.workers", u64::from(self.shadow.workers)),
            (
                "shadow.queue_capacity",
                u64::from(self.shadow.queue_capacity),
            ),
            ("shadow.max_rows", u64::from(self.shadow.max_rows)),
            ("shadow.timeout_ms", self.shadow.timeout_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.shadow.workers > 64 {
            return Err(invalid("shadow.workers", "at most 64"));
        }
        if self.mirror.queue_capacity == 0 {
            return Err(invalid("mirror.queue_capacity", "must be at least 1"));
        }
        if self.mirror.apply_workers == 0 || self.mirror.apply_workers > 64 {
            return Err(invalid("mirror.apply_workers", "must be between 1 and 64"));
        }
        if self.mirror.server_id == 0 {
            return Err(invalid(
                "mirror.server_id",
                "must be at least 1 (a primary refuses replicas with server id 0)",
            ));
        }
        self.validate_auth()?;
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let key = format!("users[{i}]");
            match u.plugin.as_deref() {
                None | Some("mysql_native_password") => {}
                Some("caching_sha2_password") if u.password.is_some() => {}
                Some("caching_sha2_password") => return Err(invalid(
                    format!("{key}.plugin"),
                    "caching_sha2_password needs `password` (a password_sha1 hash cannot check it)",
                )),
                Some(other) => {
                    return Err(invalid(
                        format!("{key}.plugin"),
                        format!(
                            "`{other}`: expected mysql_native_password or caching_sha2_password"
                        ),
                    ))
                }
            }
            if u.name.is_empty() {
                return Err(invalid(format!("{key}.name"), "must not be empty"));
            }
            if !seen.insert(&u.name) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("duplicate user `{}`", u.name),
                ));
            }
            match (&u.password, &u.password_sha1) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &key,
                        "set either `password` or `password_sha1`, not both",
                    ))
                }
                (None, None) => return Err(invalid(&key, "needs `password` or `password_sha1`")),
                (None, Some(h)) if crate::auth::parse_native_hash(h).is_none() => {
                    return Err(invalid(
                        format!("{key}.password_sha1"),
                        "expected `*` followed by 40 hex digits (as SELECT PASSWORD('…') prints)",
                    ))
                }
                _ => {}
            }
        }
        for (name, b) in [
            ("old", Some(&self.backends.old)),
            ("new", self.backends.new.as_ref()),
        ] {
            let Some(b) = b else { continue };
            let key = format!("backends.{name}");
            b.target().map_err(|m| invalid(format!("{key}.url"), m))?;
            if b.pool_size == 0 {
                return Err(invalid(format!("{key}.pool_size"), "must be at least 1"));
            }
        }
        if self.backends.old.kind != BackendKind::Mysql {
            return Err(invalid(
                "backends.old.kind",
                "the old (authoritative) backend must be `mysql` in this version",
            ));
        }
        if self.limits.max_clients == 0 {
            return Err(invalid("limits.max_clients", "must be at least 1"));
        }
        if self.limits.max_packet_bytes < 1024 {
            return Err(invalid("limits.max_packet_bytes", "must be at least 1024"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("not a valid filter: {e}")))?;
        Ok(())
    }
}

/// Replaces `${VAR}` in every string value; `$$` stands for a literal `$`.
fn expand_env(
    value: &mut toml::Value,
    path: &mut String,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains('$') => {
            *s = expand_str(s, env).map_err(|m| invalid(path.clone(), m))?;
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                expand_env(v, path, env)?;
                path.truncate(len);
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_env(v, path, env)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or("unterminated `${` (write `$$` for a literal `$`)")?;
            let name = &r[..end];
            let val =
                env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
            out.push_str(&val);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_has_no_secrets() {
        let c = Config::from_toml(
            "[[users]]\nname = \"app\"\npassword = \"s3cret-user\"\n\
             [backends.old]\nkind = \"mysql\"\nurl = \"mysql://u:s3cret-old@h:3306/d\"\n\
             [backends.new]\nkind = \"postgres\"\nurl = \"postgres://u:s3cret-new@h/d?sslmode=require\"\n",
            |_| None,
        )
        .unwrap();
        let shown = format!(
            "{c:?} {:?} {:?}",
            c.backends.old.target().unwrap(),
            c.backends.new.as_ref().unwrap().target().unwrap()
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("mysql://u:***@h:3306/d"), "{shown}");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    }

    const BASE: &str = r#"
        listen = "127.0.0.1:3307"
        phase = "primary_only"
        [[users]]
        name = "app"
        password = "${APP_PASSWORD}"
        [backends.old]
        kind = "mysql"
        url = "mysql://app:${OLD_PASSWORD}@127.0.0.1:3306/app"
        [backends.new]
        kind = "postgres"
        url = "postgres://app:${NEW_PASSWORD}@127.0.0.1:5432/app"
    "#;

    fn env(k: &str) -> Option<String> {
        match k {
            "APP_PASSWORD" => Some("s3cret".into()),
            "OLD_PASSWORD" => Some("p%40ss".into()),
            "NEW_PASSWORD" => Some("pg".into()),
            _ => None,
        }
    }

    #[test]
    fn example_config_parses_with_env() {
        let c = Config::from_toml(BASE, env).expect("valid");
        assert_eq!(c.users[0].password.as_deref(), Some("s3cret"));
        let t = c.backends.old.target().unwrap();
        assert_eq!(t.password, "p@ss");
        assert_eq!(t.port, 3306);
        assert_eq!(t.database.as_deref(), Some("app"));
        assert_eq!(c.backends.old.pool_size, 100);
        assert_eq!(c.backends.new.unwrap().kind, BackendKind::Postgres);
    }

    #[test]
    fn the_shipped_proxy_toml_is_valid() {
        let text = include_str!("../proxy.toml");
        Config::from_toml(text, |_| Some("x".into())).expect("proxy.toml must stay valid");
    }

    fn err(text: &str) -> String {
        Config::from_toml(text, env).unwrap_err().to_string()
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err(&BASE
            .replace("pool_size", "x")
            .replace("kind = \"mysql\"", "kind = \"mysql\"\npool_sise = 3"));
        assert!(e.contains("backends.old") && e.contains("pool_sise"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let e = err(&BASE.replace("kind = \"mysql\"", "kind = \"mysql\"\npool_size = \"ten\""));
        assert!(e.contains("backends.old.pool_size"), "{e}");
    }

    #[test]
    fn missing_env_var_is_named() {
        let e = err(&BASE.replace("${APP_PASSWORD}", "${NOPE}"));
        assert!(e.contains("users[0].password") && e.contains("NOPE"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(err(&BASE.replace("127.0.0.1:3307", "nowhere")).starts_with("listen:"));
        assert!(Config::from_toml(&BASE.replace("\"primary_only\"", "\"new_only\""), env).is_ok());
        let mysql_new = BASE
            .replace("kind = \"postgres\"", "kind = \"mysql\"")
            .replace("postgres://", "mysql://");
        assert!(
            err(&mysql_new.replace("\"primary_only\"", "\"new_primary\"")).contains("PostgreSQL")
        );
        let no_new = BASE
            .split("[backends.new]")
            .next()
            .unwrap()
            .replace("\"primary_only\"", "\"dual_write\"");
        assert!(err(&no_new).contains("backends.new"));
        assert!(err(&BASE.replace("\"primary_only\"", "\"sideways\"")).contains("phase"));
        assert!(err(&BASE.replace("mysql://", "postgres://")).contains("backends.old.url"));
        let bare =
            "listen = \"127.0.0.1:1\"\n[backends.old]\nkind=\"mysql\"\nurl=\"mysql://a@h/d\"\n";
        assert!(err(&format!("{bare}[auth]\nmode = \"users\"\n")).contains("users"));
    }

    #[test]
    fn auth_mode_defaults_and_conflicts() {
        use crate::auth::mode::AuthMode;
        let bare =
            "listen = \"127.0.0.1:1\"\n[backends.old]\nkind=\"mysql\"\nurl=\"mysql://a@h/d\"\n";
        let c = Config::from_toml(bare, env).expect("no [[users]]: passthrough");
        assert_eq!(c.auth_mode(), AuthMode::Passthrough);
        assert_eq!(
            Config::from_toml(BASE, env).unwrap().auth_mode(),
            AuthMode::Users
        );
        let both = format!("{BASE}\n[auth]\nmode = \"passthrough\"\n");
        assert!(
            err(&both).contains("not used with [auth] mode"),
            "{}",
            err(&both)
        );
        let pg_primary = format!("phase = \"new_primary\"\n{bare}[backends.new]\nkind=\"postgres\"\nurl=\"postgres://u@h/d\"\n");
        assert!(
            err(&pg_primary).contains("auth.mode"),
            "{}",
            err(&pg_primary)
        );
        let bad_role = format!("{bare}[auth.roles]\napp = \"x; drop\"\n");
        assert!(
            err(&bad_role).contains("auth.roles.app"),
            "{}",
            err(&bad_role)
        );
        assert!(
            err(&BASE.replace("password = \"${APP_PASSWORD}\"", "password_sha1 = \"abc\""))
                .contains("password_sha1")
        );
        assert!(err("listen = [").contains("TOML") || err("listen = [").contains("line"));
    }

    #[test]
    fn dollar_escapes() {
        assert_eq!(
            expand_str("a$$b${X}$", &|_| Some("v".into())).unwrap(),
            "a$bv$"
        );
        assert!(expand_str("${X", &|_| Some("v".into())).is_err());
    }
}
