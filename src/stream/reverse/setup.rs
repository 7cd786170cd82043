//! Setting up and checking the reverse stream on PostgreSQL: the
//! publication of the migrated tables, the logical slot, and where the
//! reverse stream starts (its checkpoint in MySQL).
//!
//! The publication lists the tables both sides have (`FOR TABLE`, which needs
//! ownership of them, where `FOR ALL TABLES` would need a superuser and would
//! also carry Tandem's own control tables). It is created before the slot:
//! pgoutput reads publications as of each change, so one created after the
//! slot's start would be missing for the changes in between.

use mysql_async::prelude::Queryable;

use super::{pg_connect, Names};
use crate::migrate::catalog;
use crate::migrate::db::{self, Db, PgConn};
use crate::migrate::sqltext::{ident, Dialect};
use crate::stream::apply::checkpoint::{self, Checkpoint};
use crate::stream::{lsn_text, parse_lsn, Position};

/// What [`ensure`] found or made.
#[derive(Debug, Clone)]
pub struct Ready {
    pub names: Names,
    /// The slot's confirmed position.
    pub confirmed: u64,
    pub created_slot: bool,
    pub tables: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Tables present on both sides (PostgreSQL names).
async fn migrated_tables(config: &crate::config::Config) -> Result<Vec<String>, String> {
    let new = config
        .backends
        .new
        .as_ref()
        .ok_or("[backends.new] is not configured")?;
    let mut pg = db::connect(new, "backends.new").await.map_err(err)?;
    let mut my = db::connect(&config.backends.old, "backends.old")
        .await
        .map_err(err)?;
    let pg_tables = catalog::load(&mut pg).await.map_err(err)?;
    let my_tables = catalog::load(&mut my).await.map_err(err)?;
    if let Db::My(c) = my {
        let _ = c.disconnect().await;
    }
    let mut names: Vec<String> = pg_tables
        .iter()
        .filter(|t| catalog::find(&my_tables, &t.name).is_some())
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    Ok(names)
}

async fn one_text(pg: &PgConn, sql: &str, arg: &str) -> Result<Option<String>, String> {
    let row = if sql.contains("$1") {
        pg.client.query_opt(sql, &[&arg]).await
    } else {
        pg.client.query_opt(sql, &[]).await
    }
    .map_err(err)?;
    Ok(row.and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten()))
}

/// Creates the publication (or adds missing tables to it) and the slot.
pub async fn ensure(config: &crate::config::Config) -> Result<Ready, String> {
    let names = Names::from_config(config)?;
    let new = config
        .backends
        .new
        .as_ref()
        .ok_or("[backends.new] is not configured")?;
    let tables = migrated_tables(config).await?;
    if tables.is_empty() {
        return Err(
            "no table exists on both backends: nothing for the reverse stream to publish".into(),
        );
    }
    let pg = pg_connect(new).await.map_err(|e| e.message)?;
    let level = one_text(&pg, "SHOW wal_level", "")
        .await?
        .unwrap_or_default();
    if level != "logical" {
        return Err(format!(
            "PostgreSQL runs with wal_level = {level}: the reverse stream needs wal_level = logical (postgresql.conf, then restart PostgreSQL)"
        ));
    }
    let exists = one_text(
        &pg,
        "SELECT pubname::text FROM pg_publication WHERE pubname = $1",
        &names.publication,
    )
    .await?
    .is_some();
    let quoted: Vec<String> = tables.iter().map(|t| ident(Dialect::Postgres, t)).collect();
    if !exists {
        pg.client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                ident(Dialect::Postgres, &names.publication),
                quoted.join(", ")
            ))
            .await
            .map_err(|e| {
                format!(
                    "cannot create publication {}: {e} (it needs ownership of the tables)",
                    names.publication
                )
            })?;
        tracing::info!(publication = %names.publication, tables = tables.len(), "created the reverse stream's publication");
    } else {
        let listed: Vec<String> = pg
            .client
            .query(
                "SELECT tablename::text FROM pg_publication_tables WHERE pubname = $1",
                &[&names.publication],
            )
            .await
            .map_err(err)?
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect();
        let missing: Vec<String> = tables
            .iter()
            .filter(|t| !listed.contains(t))
            .map(|t| ident(Dialect::Postgres, t))
            .collect();
        if !missing.is_empty() {
            pg.client
                .batch_execute(&format!(
                    "ALTER PUBLICATION {} ADD TABLE {}",
                    ident(Dialect::Postgres, &names.publication),
                    missing.join(", ")
                ))
                .await
                .map_err(|e| {
                    format!(
                        "cannot add tables to publication {}: {e}",
                        names.publication
                    )
                })?;
        }
    }
    let mut created_slot = false;
    let confirmed = match slot_lsn(&pg, &names.slot).await? {
        Some(l) => l,
        None => {
            let made = one_text(
                &pg,
                "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                &names.slot,
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot create replication slot {}: {e} (it needs the REPLICATION attribute)",
                    names.slot
                )
            })?;
            created_slot = true;
            tracing::info!(slot = %names.slot, lsn = made.as_deref().unwrap_or(""), "created the reverse stream's replication slot");
            match slot_lsn(&pg, &names.slot).await? {
                Some(l) => l,
                None => made.as_deref().and_then(parse_lsn).unwrap_or(0),
            }
        }
    };
    Ok(Ready {
        names,
        confirmed,
        created_slot,
        tables,
    })
}

/// The slot's confirmed position, `None` when it does not exist.
pub async fn slot_lsn(pg: &PgConn, slot: &str) -> Result<Option<u64>, String> {
    Ok(one_text(
        pg,
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
        slot,
    )
    .await?
    .as_deref()
    .and_then(parse_lsn))
}

/// WAL bytes the slot holds back (`None`: no such slot).
pub async fn retained_bytes(pg: &PgConn, slot: &str) -> Result<Option<u64>, String> {
    Ok(one_text(
        pg,
        "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint::text FROM pg_replication_slots WHERE slot_name = $1",
        slot,
    )
    .await?
    .and_then(|s| s.parse::<i64>().ok())
    .map(|b| b.max(0) as u64))
}

/// How long [`current_lsn`] waits for the WAL it reports to be flushed.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// PostgreSQL's WAL position after everything committed so far, once it is
/// flushed (logical decoding reads only flushed WAL). The insert position,
/// not the flush position: with `synchronous_commit = off` a commit is
/// acknowledged before its record is flushed, and the flush position can
/// trail the last acknowledged commits by up to `wal_writer_delay`. (This
/// used to commit an empty transaction synchronously and read the flush
/// position, expecting that commit to flush what preceded it; PostgreSQL
/// does not flush for a transaction that wrote no WAL of its own, so the
/// position could exclude the last writes — `--back` then stopped the
/// reverse stream before it copied them.) The WAL writer flushes within
/// `wal_writer_delay` (200 ms by default).
pub async fn current_lsn(pg: &PgConn) -> Result<u64, String> {
    let read = |sql: &'static str| async move {
        one_text(pg, sql, "")
            .await?
            .as_deref()
            .and_then(parse_lsn)
            .ok_or_else(|| format!("cannot read {sql}"))
    };
    let at = read("SELECT pg_current_wal_insert_lsn()::text").await?;
    let started = std::time::Instant::now();
    loop {
        let flushed = read("SELECT pg_current_wal_flush_lsn()::text").await?;
        if flushed >= at {
            return Ok(at);
        }
        if started.elapsed() >= FLUSH_WAIT {
            return Err(format!(
                "PostgreSQL did not flush its WAL up to {} within {} s (flushed {})",
                lsn_text(at),
                FLUSH_WAIT.as_secs(),
                lsn_text(flushed)
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Starts the reverse stream here: the slot moves to PostgreSQL's current
/// WAL position and MySQL's reverse checkpoint is set to it. Run inside the
/// cutover's fence, after the forward stream caught up: what the forward
/// stream wrote is behind that point and never comes back to MySQL.
pub async fn start_here(config: &crate::config::Config) -> Result<u64, String> {
    let names = Names::from_config(config)?;
    let new = config
        .backends
        .new
        .as_ref()
        .ok_or("[backends.new] is not configured")?;
    let pg = pg_connect(new).await.map_err(|e| e.message)?;
    let now = current_lsn(&pg).await?;
    let confirmed = slot_lsn(&pg, &names.slot)
        .await?
        .ok_or_else(|| format!("replication slot {} does not exist", names.slot))?;
    let at = if now > confirmed {
        pg.client
            .query_opt(
                "SELECT end_lsn::text FROM pg_replication_slot_advance($1, $2::text::pg_lsn)",
                &[&names.slot, &lsn_text(now)],
            )
            .await
            .map_err(|e| format!("cannot advance slot {}: {e}", names.slot))?
            .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
            .as_deref()
            .and_then(parse_lsn)
            .unwrap_or(now)
    } else {
        confirmed
    };
    store_checkpoint(config, &names.stream_id, at).await?;
    tracing::info!(slot = %names.slot, lsn = %lsn_text(at), "the reverse stream starts here");
    Ok(at)
}

/// Publication, slot and reverse checkpoint for a flip to `new_primary`
/// that is not a `tandem cutover` (a lone proxy's `phase` edit): the stream
/// starts at PostgreSQL's position now, before writes go there.
pub async fn prepare_flip(config: &crate::config::Config) -> Result<u64, String> {
    ensure(config).await?;
    start_here(config).await
}

async fn store_checkpoint(
    config: &crate::config::Config,
    stream_id: &str,
    lsn: u64,
) -> Result<(), String> {
    let mut my = db::connect(&config.backends.old, "backends.old")
        .await
        .map_err(err)?;
    let cp = Checkpoint {
        position: Position::lsn(lsn),
        source_ts: 0,
    };
    my.execute(&checkpoint::create_sql(Dialect::Mysql))
        .await
        .map_err(err)?;
    my.execute(&checkpoint::store_sql(Dialect::Mysql, stream_id, &cp))
        .await
        .map_err(err)?;
    if let Db::My(c) = my {
        let _ = c.disconnect().await;
    }
    Ok(())
}

/// The reverse checkpoint stored in MySQL, as an LSN.
pub async fn checkpoint_lsn(config: &crate::config::Config) -> Result<Option<u64>, String> {
    let names = Names::from_config(config)?;
    let mut my = db::connect(&config.backends.old, "backends.old")
        .await
        .map_err(err)?;
    let Db::My(c) = &mut my else {
        return Err("backends.old is not MySQL".into());
    };
    let exists: Option<String> = c
        .query_first(format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{}'",
            checkpoint::TABLE
        ))
        .await
        .map_err(err)?;
    if exists.is_none() {
        return Ok(None);
    }
    let row: Option<(String, u64)> = c
        .query_first(format!(
            "SELECT file, `offset` FROM {} WHERE stream_id = '{}'",
            checkpoint::TABLE,
            names.stream_id.replace('\\', "\\\\").replace('\'', "''")
        ))
        .await
        .map_err(err)?;
    Ok(row.and_then(|(file, offset)| {
        Position {
            file,
            offset,
            gtid: None,
        }
        .as_lsn()
    }))
}

/// `tandem check`'s lines about the reverse stream, as `(ok, line)`;
/// `needed`: the configuration runs it (failures count).
pub async fn check_lines(config: &crate::config::Config, needed: bool) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let names = match Names::from_config(config) {
        Ok(n) => n,
        Err(e) => return vec![(!needed, format!("reverse stream: {e}"))],
    };
    let Some(new) = config.backends.new.as_ref() else {
        return out;
    };
    let pg = match pg_connect(new).await {
        Ok(p) => p,
        Err(e) => return vec![(!needed, format!("reverse stream: FAILED: {e}"))],
    };
    let level = one_text(&pg, "SHOW wal_level", "")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    out.push((
        level == "logical" || !needed,
        if level == "logical" {
            "reverse stream: wal_level = logical".to_string()
        } else {
            format!("reverse stream: wal_level = {level}: set wal_level = logical in postgresql.conf and restart PostgreSQL")
        },
    ));
    let role = pg
        .client
        .query_opt(
            "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .ok()
        .flatten()
        .map(|r| {
            (
                r.try_get::<_, bool>(0).unwrap_or(false),
                r.try_get::<_, bool>(1).unwrap_or(false),
            )
        });
    let (repl, superuser) = role.unwrap_or((false, false));
    out.push((
        repl || superuser || !needed,
        if repl || superuser {
            format!(
                "reverse stream: the URL user may create and read replication slots ({})",
                if superuser {
                    "superuser"
                } else {
                    "REPLICATION"
                }
            )
        } else {
            "reverse stream: the URL user lacks REPLICATION: ALTER ROLE <user> REPLICATION"
                .to_string()
        },
    ));
    let not_owned = pg
        .client
        .query_opt(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() \
             AND NOT pg_has_role(current_user, tableowner, 'USAGE')",
            &[],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<_, i64>(0).ok())
        .unwrap_or(0);
    out.push((
        not_owned == 0 || superuser || !needed,
        if not_owned == 0 || superuser {
            "reverse stream: the URL user owns the tables (may publish them)".to_string()
        } else {
            format!("reverse stream: {not_owned} table(s) are not owned by the URL user: CREATE/ALTER PUBLICATION needs ownership")
        },
    ));
    let published: Option<i64> = pg
        .client
        .query_opt(
            "SELECT (SELECT count(*) FROM pg_publication_tables t WHERE t.pubname = p.pubname) \
             FROM pg_publication p WHERE p.pubname = $1",
            &[&names.publication],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.try_get::<_, i64>(0).ok());
    out.push((
        true,
        match published {
            Some(n) => format!("reverse stream: publication {} lists {n} table(s)", names.publication),
            None => format!("reverse stream: publication {} not created yet (`tandem cutover --to new` creates it)", names.publication),
        },
    ));
    let slot = pg
        .client
        .query_opt(
            "SELECT confirmed_flush_lsn::text, (pg_current_wal_lsn() - restart_lsn)::bigint \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&names.slot],
        )
        .await
        .ok()
        .flatten();
    out.push((
        true,
        match slot {
            Some(r) => format!(
                "reverse stream: slot {} confirmed at {}, retains {} bytes of WAL (an unused slot retains WAL forever: drop it at decommission with SELECT pg_drop_replication_slot('{}'))",
                names.slot,
                r.try_get::<_, Option<String>>(0).ok().flatten().unwrap_or_default(),
                r.try_get::<_, Option<i64>>(1).ok().flatten().unwrap_or(0),
                names.slot
            ),
            None => format!("reverse stream: slot {} not created yet (`tandem cutover --to new` creates it)", names.slot),
        },
    ));
    out
}
