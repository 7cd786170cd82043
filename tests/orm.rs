//! What real applications send in `dual_write` with a PostgreSQL secondary:
//! an ORM (SQLAlchemy 2.x over PyMySQL) whose multi-row inserts come back as
//! `RETURNING` rows instead of OK packets, SQL-level prepared statements, and
//! statements sqlparser cannot read. Each ends with the two backends compared
//! value by value and the drift log checked.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;

use common::*;
use mysql_async::prelude::*;

/// A dual_write proxy.toml: MariaDB `primary_db` first, PostgreSQL second.
fn dual_config(primary_db: &str, secondary_url: &str, drift: &std::path::Path) -> String {
    config_for(primary_db, "").replace("listen = ", "phase = \"dual_write\"\nlisten = ")
        + &format!(
            "[backends.new]\nkind = \"postgres\"\nurl = \"{secondary_url}\"\nconnect_timeout_ms = 1000\n[mirror]\ndrift_log = \"{}\"\n",
            drift.display()
        )
}

/// A proxy in dual_write over fresh databases on both servers.
async fn dual(prefix: &str) -> (Proxy, String, String, tempfile::TempDir) {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let primary = m.create_database(prefix);
    let secondary = pg.create_database(prefix);
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(&primary, &pg.url(&secondary), &drift)).await;
    (proxy, primary, secondary, dir)
}

/// One text form for a value from either engine (PostgreSQL booleans as 1/0).
fn normalize(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some("t") => "1".into(),
        Some("f") => "0".into(),
        Some(v) => v.to_string(),
    }
}

/// Every row of `table` on both sides, ordered by its first column.
async fn both_sides(
    primary: &str,
    secondary: &str,
    table: &str,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let mut check = direct(primary).await;
    let rows: Vec<mysql_async::Row> = check
        .query(format!("SELECT * FROM `{table}` ORDER BY 1"))
        .await
        .unwrap();
    let a = rows
        .into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => "NULL".to_string(),
                    mysql_async::Value::Bytes(b) => normalize(Some(&String::from_utf8_lossy(&b))),
                    other => normalize(Some(other.as_sql(false).trim_matches('\''))),
                })
                .collect()
        })
        .collect();
    let url = servers::postgres().url(secondary);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let b = client
        .simple_query(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| normalize(r.get(i))).collect())
            }
            _ => None,
        })
        .collect();
    (a, b)
}

/// Asserts the table is identical on both sides; returns its row count.
async fn assert_same(primary: &str, secondary: &str, table: &str) -> usize {
    let (a, b) = both_sides(primary, secondary, table).await;
    let differing: Vec<String> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .take(5)
        .map(|(x, y)| format!("mariadb {x:?}\n   postgres {y:?}"))
        .collect();
    assert!(
        differing.is_empty() && a.len() == b.len(),
        "{table}: {} rows on MariaDB, {} on PostgreSQL; first differences:\n{}",
        a.len(),
        b.len(),
        differing.join("\n")
    );
    a.len()
}

fn drift_text(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("drift.jsonl")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlalchemy_workload_lands_identically_on_postgres() {
    let (proxy, primary, secondary, dir) = dual("orm").await;
    let threads = 4;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/orm.py");
    let port = proxy.port();
    let db = primary.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([
                script,
                "127.0.0.1",
                &port.to_string(),
                PROXY_USER,
                PROXY_PASSWORD,
                &db,
                &threads.to_string(),
            ])
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "orm.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    // SQLAlchemy really used multi-row INSERT … RETURNING through the proxy:
    // per thread and round, one for each of the three tables, and one for
    // the children in the rolled-back transaction (its single parent row is
    // an ordinary INSERT whose id comes from the OK packet).
    assert_eq!(report["dialect_returning"], true, "{report}");
    assert_eq!(report["multirow_returning"], 6 * 4 * threads, "{report}");
    wait_mirrored(&proxy).await;
    let mirror = proxy.state.mirror.load_full().unwrap();
    assert_eq!(mirror.drift.recorded(), 0, "drift: {}", drift_text(&dir));
    let per_thread = [("parent", 18), ("child", 60), ("toy", 108)];
    for (table, rows) in per_thread {
        let n = assert_same(&primary, &secondary, table).await;
        assert_eq!(n, rows * threads, "{table}: {report}");
    }
}
