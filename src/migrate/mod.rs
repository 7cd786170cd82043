//! `tandem schema`, `backfill` and `verify [--repair]` (`cutover-check`
//! reads the change stream's checkpoint, so it is `crate::stream::cutover`):
//! moving the existing data from the old backend to the new one and proving
//! both sides hold the same rows.
//!
//! Every command reads `[backends.old]` (MySQL, authoritative before
//! `new_primary`) and `[backends.new]` (PostgreSQL, or MySQL for a
//! MySQL→MySQL move) from proxy.toml. Rows travel as the normalized
//! [`crate::value::Value`] model, so "equal" means the same thing to
//! the copy, the checksums and the row diff.
//!
//! # Races with dual writes
//!
//! The backfill may run while the proxy applies every write to both sides.
//! The rule that keeps the end state consistent:
//!
//! 1. **Copy is insert-if-absent.** A chunk lands through
//!    `INSERT … ON CONFLICT DO NOTHING` (MySQL: `ON DUPLICATE KEY UPDATE
//!    k = k`), so a row a dual write already put on the new side is never
//!    overwritten by the (possibly older) copy of it.
//! 2. **What the copy can still get wrong** is a row that changed on the old
//!    side after the backfill read it but before the chunk committed, while it
//!    was absent from the new side: the dual write's UPDATE or DELETE on the
//!    new side then matched nothing, and the chunk inserts the stale version
//!    (or resurrects a deleted row).
//! 3. **`verify --repair` after the backfill closes that window.** It compares
//!    both sides chunk by chunk and re-copies every differing row from the
//!    authoritative side (upsert; deletes rows the authoritative side does not
//!    have), then compares those rows again. Writes in flight during verify
//!    can show up as differences; running it again (or when writes are
//!    quiet) converges, since every dual write after the backfill keeps both
//!    sides in step.

pub mod backfill;
pub mod catalog;
pub mod checkpoint;
mod chunks;
pub mod copy;
pub mod db;
mod diff;
pub mod differences;
pub mod fk;
pub mod progress;
pub mod repair;
pub mod report;
pub mod schema;
pub mod sqltext;
pub mod streamsync;
pub mod types;
pub mod verify;
pub mod write;

use crate::config::{BackendConfig, Config};

/// Tandem's own tables in the target database; never migrated or verified.
pub const CHECKPOINT_TABLE: &str = "tandem_backfill_checkpoint";
pub const VERIFY_RUNS_TABLE: &str = "tandem_verify_runs";
/// The change stream's tables (named here, below `crate::stream`, which
/// re-exports each as its module's `TABLE`).
pub const STREAM_CHECKPOINT_TABLE: &str = "tandem_stream_checkpoint";
pub const STREAM_APPLIED_TABLE: &str = "tandem_stream_applied";
pub const STREAM_LEASE_TABLE: &str = "tandem_stream_lease";

pub fn is_internal_table(name: &str) -> bool {
    name == CHECKPOINT_TABLE
        || name.starts_with(streamsync::TOMB_PREFIX)
        || name == VERIFY_RUNS_TABLE
        || name == crate::foreign_keys::PENDING_TABLE
        || name == STREAM_CHECKPOINT_TABLE
        || name == STREAM_APPLIED_TABLE
        || name == STREAM_LEASE_TABLE
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to {what} at {addr}: {message} (check its url in the config and that the server is up)")]
    Connect {
        what: String,
        addr: String,
        message: String,
    },
    #[error("MySQL: {0}")]
    Mysql(#[from] mysql_async::Error),
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The two schemas do not line up; the message says what to do.
    #[error("{0}")]
    Schema(String),
    /// A value the target cannot store.
    #[error("table {table}, row {key}, column {column}: {message}")]
    Unrepresentable {
        table: String,
        key: String,
        column: String,
        message: String,
    },
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("{0}")]
    Translate(String),
    #[error("a worker task failed: {0}")]
    Task(String),
}

/// A PostgreSQL error with the server's message, detail and SQLSTATE.
pub fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        None => e.to_string(),
    }
}

/// One of the two backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Old = 0,
    New = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Old => Side::New,
            Side::New => Side::Old,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Side::Old => "old",
            Side::New => "new",
        }
    }
}

/// The two backends of a migration, taken from the config.
#[derive(Debug, Clone)]
pub struct Sides {
    pub old: BackendConfig,
    pub new: BackendConfig,
}

impl Sides {
    pub fn from_config(config: &Config) -> Result<Sides, MigrateError> {
        let new = config.backends.new.clone().ok_or_else(|| {
            MigrateError::Config(
                "[backends.new] is not configured: add it (kind and url of the database you migrate to) to proxy.toml"
                    .into(),
            )
        })?;
        Ok(Sides {
            old: config.backends.old.clone(),
            new,
        })
    }

    pub fn get(&self, side: Side) -> &BackendConfig {
        match side {
            Side::Old => &self.old,
            Side::New => &self.new,
        }
    }

    pub async fn connect(&self, side: Side) -> Result<db::Db, MigrateError> {
        db::connect(self.get(side), &format!("backends.{}", side.label())).await
    }
}

/// The tables a command works on: every old-side table, or the `--tables`
/// list (names must exist on the old side), each lined up with its
/// new-side counterpart.
pub async fn plan_tables(
    sides: &Sides,
    only: Option<&[String]>,
) -> Result<Vec<catalog::TablePlan>, MigrateError> {
    let (plans, missing) = plan_tables_lenient(sides, only).await?;
    if !missing.is_empty() {
        return Err(MigrateError::Schema(format!(
            "table(s) {} do not exist on the new side: create them first (`tandem schema --apply`)",
            missing.join(", ")
        )));
    }
    Ok(plans)
}

/// Like [`plan_tables`], returning the old-side tables missing on the new
/// side instead of failing on them.
pub async fn plan_tables_lenient(
    sides: &Sides,
    only: Option<&[String]>,
) -> Result<(Vec<catalog::TablePlan>, Vec<String>), MigrateError> {
    let mut old_db = sides.connect(Side::Old).await?;
    let mut new_db = sides.connect(Side::New).await?;
    let old = catalog::load(&mut old_db).await?;
    let new = catalog::load(&mut new_db).await?;
    let chosen: Vec<&catalog::TableDef> = match only {
        None => old.iter().collect(),
        Some(names) => {
            let mut chosen = Vec::new();
            for n in names {
                match old.iter().find(|t| t.name == *n) {
                    Some(t) => chosen.push(t),
                    None => {
                        return Err(MigrateError::Config(format!(
                            "--tables: no table `{n}` in the old database (tables: {})",
                            old.iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )))
                    }
                }
            }
            chosen
        }
    };
    let mut missing = Vec::new();
    let mut plans = Vec::new();
    for t in chosen {
        match catalog::find(&new, &t.name) {
            Some(n) => plans.push(catalog::plan(t, n)),
            None => missing.push(t.name.clone()),
        }
    }
    Ok((plans, missing))
}

/// Splits a `--tables a,b` argument.
pub fn parse_table_list(arg: Option<&str>) -> Option<Vec<String>> {
    arg.map(|s| {
        s.split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    })
}
