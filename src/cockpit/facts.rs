//! Slow-changing facts for the dashboard and `tandem status`, read from the
//! databases and the mismatch log at most every `TTL` and cached: backfill
//! progress per table (`tandem_backfill_checkpoint` on the new side against
//! the old side's row estimates), the last `tandem verify` run
//! (`tandem_verify_runs`) and the most frequent mismatching statements. A
//! backend that is down or slow costs the page one empty section, never the
//! proxy anything.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::config::Config;
use crate::migrate::catalog::ColType;
use crate::migrate::db::{connect, Db};
use crate::migrate::sqltext::Dialect;
use crate::migrate::{CHECKPOINT_TABLE, VERIFY_RUNS_TABLE};
use crate::value::mysql::{MysqlKind, MysqlType};
use crate::value::pg::PgType;
use crate::value::Value;

const TTL: Duration = Duration::from_secs(10);
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Mismatching statements shown.
const TOP: usize = 5;

#[derive(Default)]
pub struct Facts {
    cache: tokio::sync::Mutex<Option<(Instant, Json)>>,
}

impl Facts {
    /// The cached facts, refreshed when older than `TTL`.
    pub async fn get(&self, config: &Config) -> Json {
        let mut cache = self.cache.lock().await;
        if let Some((at, v)) = cache.as_ref() {
            if at.elapsed() < TTL {
                return v.clone();
            }
        }
        let v = gather(config).await;
        *cache = Some((Instant::now(), v.clone()));
        v
    }
}

async fn gather(config: &Config) -> Json {
    let (backfill, verify) = match &config.backends.new {
        Some(_) => match tokio::time::timeout(QUERY_TIMEOUT, from_databases(config)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => (json!({ "error": e }), Json::Null),
            Err(_) => (json!({ "error": "timed out" }), Json::Null),
        },
        None => (Json::Null, Json::Null),
    };
    let mismatches = match crate::shadow::summary::read_log(&config.shadow.log) {
        Ok(s) => json!({
            "total": s.total,
            "top": s.groups.iter().take(TOP).map(|g| json!({
                "fingerprint": g.fingerprint,
                "count": g.count,
            })).collect::<Vec<_>>(),
        }),
        Err(_) => json!({ "total": 0, "top": [] }),
    };
    json!({ "backfill": backfill, "verify": verify, "mismatches": mismatches })
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Text(s) | Value::Json(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// Runs `sql` whose columns are all text and returns the rows as strings.
pub async fn text_rows(db: &mut Db, sql: &str, columns: usize) -> Result<Vec<Vec<String>>, String> {
    let ty = match db.dialect() {
        Dialect::Postgres => ColType::Pg(PgType::Text),
        Dialect::Mysql => ColType::My(MysqlType::new(MysqlKind::Text)),
    };
    let types = vec![ty; columns];
    let rows = db.rows(sql, &types).await.map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|r| r.iter().map(text).collect())
        .collect())
}

async fn from_databases(config: &Config) -> Result<(Json, Json), String> {
    let Some(new_cfg) = &config.backends.new else {
        return Ok((Json::Null, Json::Null));
    };
    let mut new = connect(new_cfg, "backends.new")
        .await
        .map_err(|e| e.to_string())?;
    let pg = new.dialect() == Dialect::Postgres;
    let cast = |c: &str| {
        if pg {
            format!("{c}::text")
        } else {
            format!("CAST({c} AS CHAR)")
        }
    };
    let checkpoints = text_rows(
        &mut new,
        &format!(
            "SELECT table_name, {}, {} FROM {CHECKPOINT_TABLE} ORDER BY table_name",
            cast("rows_copied"),
            cast("CASE WHEN done THEN 1 ELSE 0 END")
        ),
        3,
    )
    .await
    .unwrap_or_default();
    let verify = text_rows(
        &mut new,
        &format!(
            "SELECT {}, {}, {}, {}, tables FROM {VERIFY_RUNS_TABLE} ORDER BY id DESC LIMIT 1",
            cast("id"),
            cast("started_at"),
            cast("CASE WHEN clean THEN 1 ELSE 0 END"),
            cast("differences")
        ),
        5,
    )
    .await
    .ok()
    .and_then(|r| r.into_iter().next())
    .map_or(Json::Null, |r| {
        json!({
            "id": r.first(), "started_at": r.get(1), "clean": r.get(2).is_some_and(|c| c == "1"),
            "differences": r.get(3).and_then(|d| d.parse::<u64>().ok()), "tables": r.get(4),
        })
    });
    drop(new);
    // Row estimates of the old side, for a percentage.
    let estimates = match connect(&config.backends.old, "backends.old").await {
        Ok(mut old) => text_rows(
            &mut old,
            "SELECT TABLE_NAME, CAST(COALESCE(TABLE_ROWS, 0) AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
            2,
        )
        .await
        .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let estimate = |t: &str| {
        estimates
            .iter()
            .find(|r| r.first().is_some_and(|n| n == t))
            .and_then(|r| r.get(1)?.parse::<u64>().ok())
    };
    let tables: Vec<Json> = checkpoints
        .iter()
        .map(|r| {
            let name = r.first().cloned().unwrap_or_default();
            let copied = r.get(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let done = r.get(2).is_some_and(|d| d == "1");
            let total = estimate(&name);
            let percent = if done {
                100.0
            } else {
                total.map_or(0.0, |t| (copied as f64 * 100.0 / t.max(1) as f64).min(99.9))
            };
            json!({ "table": name, "rows_copied": copied, "rows_estimated": total, "done": done, "percent": percent })
        })
        .collect();
    Ok((json!({ "tables": tables }), verify))
}
