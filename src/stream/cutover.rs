//! `tandem cutover-check`: what must hold before switching to
//! `new_primary`, where the new side starts generating ids and the old side
//! stops being the reference:
//!
//! * every identity/serial sequence on the new side is past the largest id
//!   on either side (and past MySQL's AUTO_INCREMENT counter), or the first
//!   insert after the switch collides (`--fix` moves them with `setval`);
//! * every keyed table's backfill finished;
//! * the last full `tandem verify` was clean and ran after the backfill;
//! * the proxy's mirror queues are empty (statement mirror), or the change
//!   stream's checkpoint reached the primary's position (binlog).
//!
//! Lives under `stream` (was `migrate::cutover`): it reads the stream's
//! checkpoint and the primary's binlog position, and `migrate` sits below
//! the stream.

use std::time::{Duration, Instant};

use crate::backend::mysql;
use crate::config::{Config, StreamSourceKind};
use crate::migrate::catalog::TablePlan;
use crate::migrate::db::{scalar_i128, Db};
use crate::migrate::sqltext::{ident, pg_string, Dialect};
use crate::migrate::{MigrateError, Side, Sides, CHECKPOINT_TABLE, VERIFY_RUNS_TABLE};
use crate::stream::apply::checkpoint;
use crate::stream::Position;
use crate::value::{pg::PgType, Value};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub ok: bool,
    pub text: String,
}

impl Item {
    fn ok(text: impl Into<String>) -> Item {
        Item {
            ok: true,
            text: text.into(),
        }
    }

    fn missing(text: impl Into<String>) -> Item {
        Item {
            ok: false,
            text: text.into(),
        }
    }
}

#[derive(Debug, Default)]
pub struct CutoverReport {
    pub items: Vec<Item>,
}

impl CutoverReport {
    pub fn ok(&self) -> bool {
        self.items.iter().all(|i| i.ok)
    }
}

pub async fn run(config: &Config, sides: &Sides, fix: bool) -> Result<CutoverReport, MigrateError> {
    let (plans, missing) = crate::migrate::plan_tables_lenient(sides, None).await?;
    let mut old = sides.connect(Side::Old).await?;
    let mut new = sides.connect(Side::New).await?;
    let mut report = CutoverReport::default();
    for t in missing {
        report.items.push(Item::missing(format!(
            "table {t}: does not exist on the new side; create it (`tandem schema --apply`) and backfill it"
        )));
    }
    for plan in &plans {
        for col in plan.columns.iter().filter(|c| c.new_auto) {
            report.items.push(
                check_sequence(&mut old, &mut new, plan, &col.old_name, &col.new_name, fix).await?,
            );
        }
    }
    report.items.extend(check_backfill(&mut new, &plans).await?);
    let pending = crate::migrate::fk::pending_report(&mut new).await?;
    report.items.push(if pending.is_empty() {
        Item::ok("foreign keys: none pending")
    } else {
        Item::missing(format!(
            "foreign keys: {} pending: {}; `tandem backfill` adds them once every table is copied",
            pending.len(),
            pending.join("; ")
        ))
    });
    report.items.push(check_last_verify(&mut new).await?);
    report.items.push(match config.mirror.source {
        StreamSourceKind::Binlog => stream_caught_up(config, &mut new).await?,
        _ => mirror_queue(config).await,
    });
    Ok(report)
}

/// How long `stream_caught_up` lets the stream reach the primary's position.
const STREAM_CATCH_UP: Duration = Duration::from_secs(5);

/// With the change stream, what the primary committed must be on the new
/// side before it can take over: the stream's checkpoint (kept on the new
/// side, whichever process applies) must reach the primary's position as of
/// this check, within a few seconds.
async fn stream_caught_up(config: &Config, new: &mut Db) -> Result<Item, MigrateError> {
    if !table_exists(new, checkpoint::TABLE).await? {
        return Ok(Item::missing(format!(
            "stream: no {} on the new side: the change stream never applied; run the proxy in dual_write (or `tandem mirror`)",
            checkpoint::TABLE
        )));
    }
    let target = primary_position(config).await?;
    let stream_id = crate::stream::stream_id(config);
    let sql = checkpoint::reached_sql(new.dialect(), &stream_id, &target);
    let started = Instant::now();
    loop {
        if scalar_i128(new, &sql).await?.unwrap_or(0) > 0 {
            return Ok(Item::ok(format!(
                "stream: the checkpoint reached the primary's position {}:{} (waited {} ms)",
                target.file,
                target.offset,
                started.elapsed().as_millis()
            )));
        }
        if started.elapsed() >= STREAM_CATCH_UP {
            return Ok(Item::missing(format!(
                "stream: the checkpoint did not reach the primary's position {}:{} within {} s; see the stream's lag in `tandem status`",
                target.file,
                target.offset,
                STREAM_CATCH_UP.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The primary's current binlog position (what the stream must reach).
pub async fn primary_position(config: &Config) -> Result<Position, MigrateError> {
    let target = config
        .backends
        .old
        .target()
        .map_err(|e| MigrateError::Config(format!("backends.old.url: {e}")))?;
    let fail = |e: String| MigrateError::Config(format!("old backend: {e}"));
    let greeted = mysql::connect(&target, 16 << 20)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (mut conn, _) = greeted
        .authenticate(&target, mysql::default_opts(target.database.as_deref()))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let p = crate::stream::binlog::current_position(&mut conn)
        .await
        .map_err(|e| fail(e.to_string()));
    conn.close().await;
    p
}

/// Moves every identity sequence past the largest ids (the `--fix` part
/// alone, on connections opened beforehand): what a fenced cutover runs
/// while writes are held.
pub async fn fix_sequences(
    old: &mut Db,
    new: &mut Db,
    plans: &[TablePlan],
) -> Result<Vec<Item>, MigrateError> {
    let mut items = Vec::new();
    for plan in plans {
        for col in plan.columns.iter().filter(|c| c.new_auto) {
            items.push(check_sequence(old, new, plan, &col.old_name, &col.new_name, true).await?);
        }
    }
    Ok(items)
}

/// The mirror queue lives in the running proxy: asked through its admin
/// endpoint (`/status`). Unknown (proxy down, endpoint disabled) is not OK.
pub async fn mirror_queue(config: &Config) -> Item {
    let addr = config.admin.listen.clone();
    if addr.is_empty() {
        return Item::missing("mirror queue: unknown ([admin] listen is disabled)");
    }
    let fetch = async {
        let body = crate::admin_client::get(config, "/status").await?;
        serde_json::from_str::<serde_json::Value>(&body).ok()
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(3), fetch)
        .await
        .ok()
        .flatten();
    let Some(status) = status else {
        return Item::missing(format!(
            "mirror queue: unknown (no proxy answered on {addr}/status)"
        ));
    };
    match status.get("mirror") {
        Some(serde_json::Value::Null) | None => Item::missing(format!(
            "mirror queue: the proxy runs phase {} without mirroring; run dual_write until cutover",
            status["phase"]
        )),
        Some(m) if m["queue_depth"] == 0 => Item::ok(format!(
            "mirror queue: empty ({} writes applied, {} drift events)",
            m["applied"], m["drift_events"]
        )),
        Some(m) => Item::missing(format!(
            "mirror queue: {} writes still queued; wait until it drains",
            m["queue_depth"]
        )),
    }
}

async fn max_of(db: &mut Db, table: &str, column: &str) -> Result<i128, MigrateError> {
    let d = db.dialect();
    let sql = format!("SELECT MAX({}) FROM {}", ident(d, column), ident(d, table));
    Ok(scalar_i128(db, &sql).await?.unwrap_or(0))
}

async fn check_sequence(
    old: &mut Db,
    new: &mut Db,
    plan: &TablePlan,
    old_col: &str,
    new_col: &str,
    fix: bool,
) -> Result<Item, MigrateError> {
    let what = format!("sequence {}.{}", plan.new_name, new_col);
    let max_old = max_of(old, &plan.old_name, old_col).await?;
    let max_new = max_of(new, &plan.new_name, new_col).await?;
    let counter = match old {
        Db::My(_) => scalar_i128(
            old,
            &format!(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
                crate::migrate::sqltext::literal(Dialect::Mysql, &Value::Text(plan.old_name.clone()), crate::migrate::catalog::ColType::Pg(PgType::Text))
            ),
        )
        .await?
        .unwrap_or(0),
        Db::Pg(_) => 0,
    };
    let required = (max_old.max(max_new) + 1).max(counter);
    match new {
        Db::Pg(_) => {
            let seq_sql = format!(
                "SELECT pg_get_serial_sequence({}, {})",
                pg_string(&ident(Dialect::Postgres, &plan.new_name)),
                pg_string(new_col)
            );
            let seq = match new
                .rows(
                    &seq_sql,
                    &[crate::migrate::catalog::ColType::Pg(PgType::Text)],
                )
                .await?
                .pop()
                .and_then(|r| r.into_iter().next())
            {
                Some(Value::Text(s)) => s,
                _ => {
                    return Ok(Item::missing(format!(
                        "{what}: no sequence owns this column; create one past {}",
                        required - 1
                    )))
                }
            };
            let next = scalar_i128(
                new,
                &format!(
                    "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {seq}"
                ),
            )
            .await?
            .unwrap_or(1);
            if next >= required {
                return Ok(Item::ok(format!(
                    "{what}: next value {next} is past every id"
                )));
            }
            if fix {
                new.execute(&format!(
                    "SELECT setval({}, {required}, false)",
                    pg_string(&seq)
                ))
                .await?;
                return Ok(Item::ok(format!(
                    "{what}: moved from {next} to {required} (--fix)"
                )));
            }
            Ok(Item::missing(format!(
                "{what}: next value {next}, needs at least {required} (max id old {max_old}, new {max_new}; old AUTO_INCREMENT {counter}); run with --fix"
            )))
        }
        Db::My(_) => {
            let next = scalar_i128(
                new,
                &format!(
                    "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
                    crate::migrate::sqltext::literal(Dialect::Mysql, &Value::Text(plan.new_name.clone()), crate::migrate::catalog::ColType::Pg(PgType::Text))
                ),
            )
            .await?
            .unwrap_or(1);
            if next >= required {
                return Ok(Item::ok(format!(
                    "{what}: AUTO_INCREMENT {next} is past every id"
                )));
            }
            if fix {
                new.execute(&format!(
                    "ALTER TABLE {} AUTO_INCREMENT = {required}",
                    ident(Dialect::Mysql, &plan.new_name)
                ))
                .await?;
                return Ok(Item::ok(format!(
                    "{what}: AUTO_INCREMENT moved from {next} to {required} (--fix)"
                )));
            }
            Ok(Item::missing(format!(
                "{what}: AUTO_INCREMENT {next}, needs at least {required} (max id old {max_old}, new {max_new}); run with --fix"
            )))
        }
    }
}

async fn table_exists(db: &mut Db, name: &str) -> Result<bool, MigrateError> {
    let sql = match db.dialect() {
        Dialect::Postgres => format!("SELECT COUNT(*) FROM pg_class WHERE relname = {} AND relnamespace = current_schema()::regnamespace", pg_string(name)),
        Dialect::Mysql => format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{name}'"),
    };
    Ok(scalar_i128(db, &sql).await?.unwrap_or(0) > 0)
}

async fn check_backfill(new: &mut Db, plans: &[TablePlan]) -> Result<Vec<Item>, MigrateError> {
    if !table_exists(new, CHECKPOINT_TABLE).await? {
        return Ok(vec![Item::missing("backfill: never run (no tandem_backfill_checkpoint on the new side); run `tandem backfill`")]);
    }
    let mut pending = Vec::new();
    for plan in plans.iter().filter(|p| !p.key.is_empty()) {
        let checkpoint = crate::migrate::checkpoint::read_checkpoint(new, &plan.old_name).await?;
        let current = crate::migrate::checkpoint::target_identity(new, &plan.new_name).await?;
        match checkpoint {
            Some(c) if c.done => {
                // Written for a table that has since been recreated or truncated.
                if c.target_id.is_some() && current.is_some() && c.target_id != current {
                    pending.push(format!("{} (recreated or truncated since)", plan.old_name));
                }
            }
            _ => pending.push(plan.old_name.clone()),
        }
    }
    Ok(vec![if pending.is_empty() {
        Item::ok("backfill: complete for every keyed table")
    } else {
        Item::missing(format!(
            "backfill: not complete for {}; run `tandem backfill`",
            pending.join(", ")
        ))
    }])
}

async fn check_last_verify(new: &mut Db) -> Result<Item, MigrateError> {
    if !table_exists(new, VERIFY_RUNS_TABLE).await? {
        return Ok(Item::missing(
            "verify: never run; run `tandem verify` (all tables)",
        ));
    }
    let latest = format!("SELECT MAX(id) FROM {VERIFY_RUNS_TABLE} WHERE all_tables");
    let Some(id) = scalar_i128(new, &latest).await? else {
        return Ok(Item::missing(
            "verify: no run over all tables yet; run `tandem verify` without --tables",
        ));
    };
    let clean = scalar_i128(
        new,
        &format!(
            "SELECT CASE WHEN clean THEN 1 ELSE 0 END FROM {VERIFY_RUNS_TABLE} WHERE id = {id}"
        ),
    )
    .await?
    .unwrap_or(0)
        == 1;
    if !clean {
        return Ok(Item::missing(format!(
            "verify: the last full run (#{id}) found differences; run `tandem verify --repair`"
        )));
    }
    let after_backfill = match new.dialect() {
        Dialect::Postgres | Dialect::Mysql => format!(
            "SELECT CASE WHEN (SELECT started_at FROM {VERIFY_RUNS_TABLE} WHERE id = {id}) >= \
             COALESCE((SELECT MAX(updated_at) FROM {CHECKPOINT_TABLE}), (SELECT started_at FROM {VERIFY_RUNS_TABLE} WHERE id = {id})) \
             THEN 1 ELSE 0 END"
        ),
    };
    let fresh = !table_exists(new, CHECKPOINT_TABLE).await?
        || scalar_i128(new, &after_backfill).await?.unwrap_or(0) == 1;
    Ok(if fresh {
        Item::ok(format!("verify: last full run (#{id}) was clean"))
    } else {
        Item::missing(format!("verify: the last clean run (#{id}) started before the backfill last wrote; run `tandem verify` again"))
    })
}
