//! `proxy.toml`: schema, `${VAR}` expansion, validation.
//!
//! Loading is parse → expand environment → deserialize (unknown keys and wrong
//! types are errors naming the key) → validate. The result is immutable and is
//! shared as `Arc<Config>` through an `ArcSwap` so a reload can replace it.
//!
//! This file holds the schema (the types serde fills); `load` parses,
//! expands and validates; `backend` takes backend URLs apart.

use std::path::PathBuf;

use serde::Deserialize;

mod backend;
mod load;
pub mod ramp;
#[cfg(test)]
mod tests;

pub use backend::{redact_url, BackendTarget};

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
    pub fleet: FleetConfig,
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
    pub ramp: Option<ramp::RampConfig>,
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
    pub on_error: OnError,
    /// Tables without a primary key: match rows on all columns, or skip them.
    pub no_key: NoKey,
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

/// What to do with a source transaction the target refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop the stream with the error (nothing after it is applied).
    #[default]
    Stop,
    /// Log it to the drift log with its GTID and rows, and go on.
    Skip,
}

/// How rows of a table without a primary key are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoKey {
    /// Rows are matched on every column (one row per change).
    #[default]
    AllColumns,
    /// Changes to the table are not applied.
    Skip,
}

/// `[fleet]`: this proxy as a member of the fleet that cuts over together.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// Register in the control schema on the new backend and take the
    /// authority from its control row (`tandem cutover`).
    pub enabled: bool,
    /// This proxy's name in `tandem_fleet_members`; empty: host name and
    /// listen address.
    pub id: String,
    /// How often the member row is written.
    pub heartbeat_ms: u64,
    /// How often the control row is read (the reaction time to a fence).
    pub poll_ms: u64,
    /// Writes are refused when the control row has not been read for this
    /// long (a proxy that may have missed a fence).
    pub stale_ms: u64,
    /// A member whose heartbeat is older than this many heartbeats is not
    /// live.
    pub live_heartbeats: u32,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            id: String::new(),
            heartbeat_ms: 1000,
            poll_ms: 100,
            stale_ms: 2000,
            live_heartbeats: 3,
        }
    }
}
