//! dual_write: writes through the proxy land on both backends with identical
//! rows (pinned NOW()/UUID()/RAND(), the primary's auto-increment ids,
//! transactions committed and rolled back, prepared statements), and a
//! secondary that fails never reaches the client.

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::*;

fn dual_config(
    primary_db: &str,
    secondary_url: &str,
    drift: &std::path::Path,
    mirror: &[(&str, &str)],
) -> String {
    let mut config = config::TestConfig::new(primary_db)
        .phase("dual_write")
        .new_backend(secondary_url)
        .new_connect_timeout_ms(1000)
        .mirror("source", "\"statements\"")
        .drift_log(drift);
    for (key, value) in mirror {
        config = config.mirror(key, value);
    }
    config.toml()
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100) UNIQUE, name VARCHAR(50),
        created DATETIME(6), token CHAR(36), score DOUBLE, active TINYINT(1) DEFAULT 1)",
    "CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, customer_id INT, total DECIMAL(12,2),
        note TEXT, placed DATE, updated DATETIME)",
    "CREATE TABLE counters (name VARCHAR(20) PRIMARY KEY, n INT)",
];

/// A write workload for one session; `k` keeps sessions' keys apart.
async fn workload(mut c: mysql_async::Conn, k: usize) {
    for i in 0..15 {
        let email = format!("u{k}_{i}@x");
        c.exec_drop(
            "INSERT INTO customers (email, name, created, token, score) VALUES (?, ?, NOW(6), UUID(), RAND())",
            (email.clone(), format!("name {k} {i} 'quoted' \\ back")),
        )
        .await
        .unwrap();
        let id = c.last_insert_id().unwrap();
        c.query_drop(format!(
            "INSERT INTO orders (customer_id, total, note, placed) VALUES ({id}, 10.50, 'first', CURDATE()), ({id}, 20.25, NULL, CURDATE())"
        ))
        .await
        .unwrap();
        c.query_drop(format!("UPDATE orders SET updated = NOW(), total = total * 2 WHERE customer_id = {id} AND note IS NULL"))
            .await
            .unwrap();
        c.query_drop(format!(
            "INSERT INTO counters VALUES ('c{k}', 1) ON DUPLICATE KEY UPDATE n = n + 1"
        ))
        .await
        .unwrap();
        // A transaction that commits and one that rolls back.
        let mut tx = c.start_transaction(Default::default()).await.unwrap();
        tx.query_drop(format!(
            "UPDATE customers SET name = CONCAT(name, '!') WHERE id = {id}"
        ))
        .await
        .unwrap();
        // LAST_INSERT_ID() is the last orders id here (pinned to the primary's
        // value). Sessions touch disjoint rows: writes of different sessions
        // are not ordered against each other on the secondary.
        tx.query_drop(
            "INSERT INTO orders (customer_id, total, note) VALUES (LAST_INSERT_ID(), 1, 'tx')",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop(format!("DELETE FROM orders WHERE customer_id = {id}"))
            .await
            .unwrap();
        c.query_drop("ROLLBACK").await.unwrap();
        if i % 5 == 4 {
            c.query_drop(format!(
                "DELETE FROM customers WHERE email = 'u{k}_{}@x'",
                i - 1
            ))
            .await
            .unwrap();
            c.query_drop(format!("REPLACE INTO counters VALUES ('r{k}', {i})"))
                .await
                .unwrap();
        }
        // A statement that fails on the primary is not mirrored.
        assert!(c
            .exec_drop("INSERT INTO customers (email) VALUES (?)", (email,))
            .await
            .is_err());
    }
    c.disconnect().await.unwrap();
}

async fn table_rows(conn: &mut mysql_async::Conn, db: &str, table: &str) -> Vec<Vec<String>> {
    rows_text(conn, &format!("SELECT * FROM `{db}`.`{table}` ORDER BY 1")).await
}

/// Runs the schema and the concurrent workload through a dual_write proxy.
async fn run_workload(proxy: &Proxy, primary: &str) {
    let mut admin = via(proxy, primary).await;
    for ddl in SCHEMA {
        admin.query_drop(*ddl).await.unwrap();
    }
    wait_mirrored(proxy).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let schema = proxy.state.mirror.load_full().unwrap().schema.load();
    assert!(
        schema.table("customers").is_some(),
        "schema refreshed after DDL"
    );
    let mut sessions = Vec::new();
    for k in 0..6 {
        let c = via(proxy, primary).await;
        sessions.push(tokio::spawn(workload(c, k)));
    }
    for s in sessions {
        s.await.unwrap();
    }
    admin
        .query_drop("ALTER TABLE orders ADD COLUMN flag INT DEFAULT 7")
        .await
        .unwrap();
    admin
        .query_drop("UPDATE orders SET flag = 1 WHERE total > 20")
        .await
        .unwrap();
    wait_mirrored(proxy).await;
}

/// One text form for a value from either engine: PostgreSQL booleans as 1/0,
/// fractional seconds without trailing zeros.
fn normalize(v: Option<&str>) -> String {
    let Some(v) = v else { return "NULL".into() };
    match v {
        "t" => return "1".into(),
        "f" => return "0".into(),
        _ => {}
    }
    let looks_like_time = v.len() >= 19 && v.as_bytes().get(10) == Some(&b' ') && v.contains(':');
    if looks_like_time && v.contains('.') {
        return v.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_secondary_gets_identical_rows() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let primary = m.create_database("dwpg_primary");
    let secondary = pg.create_database("dwpg_secondary");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(&primary, &pg.url(&secondary), &drift, &[])).await;
    run_workload(&proxy, &primary).await;
    let drift_text = std::fs::read_to_string(&drift).unwrap_or_default();
    assert_eq!(
        proxy.state.mirror.load_full().unwrap().drift.recorded(),
        0,
        "drift: {drift_text}"
    );
    let (client, conn) = tokio_postgres::connect(&pg.url(&secondary), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut check = direct(&primary).await;
    for table in ["customers", "orders", "counters"] {
        let mysql_rows: Vec<mysql_async::Row> = check
            .query(format!("SELECT * FROM `{table}` ORDER BY 1"))
            .await
            .unwrap();
        let a: Vec<Vec<String>> = mysql_rows
            .into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => "NULL".to_string(),
                        mysql_async::Value::Bytes(b) => {
                            normalize(Some(&String::from_utf8_lossy(&b)))
                        }
                        other => normalize(Some(other.as_sql(false).trim_matches('\''))),
                    })
                    .collect()
            })
            .collect();
        let msgs = client
            .simple_query(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
            .await
            .unwrap();
        let b: Vec<Vec<String>> = msgs
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| normalize(r.get(i))).collect())
                }
                _ => None,
            })
            .collect();
        assert!(!a.is_empty(), "{table} has rows");
        assert_eq!(a.len(), b.len(), "{table}: row count");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{table}: rows differ");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_secondary_gets_identical_rows() {
    let m = servers::mariadb();
    let primary = m.create_database("dw_primary");
    let secondary = m.create_database("dw_secondary");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(&primary, &m.url(&secondary), &drift, &[])).await;
    run_workload(&proxy, &primary).await;
    let mut check = direct(&primary).await;
    for table in ["customers", "orders", "counters"] {
        let a = table_rows(&mut check, &primary, table).await;
        let b = table_rows(&mut check, &secondary, table).await;
        assert!(!a.is_empty(), "{table} has rows");
        assert_eq!(a.len(), b.len(), "{table}: row count");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{table}: rows differ");
        }
    }
    let drift_text = std::fs::read_to_string(&drift).unwrap_or_default();
    assert_eq!(
        proxy.state.mirror.load_full().unwrap().drift.recorded(),
        0,
        "drift: {drift_text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_down_is_drift_not_client_errors() {
    let m = servers::mariadb();
    let primary = m.create_database("dw_down");
    let mut secondary = tokio::task::spawn_blocking(servers::start_private_mariadb)
        .await
        .unwrap();
    secondary.root_sql("CREATE DATABASE sec");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(
        &primary,
        &secondary.url("sec"),
        &drift,
        &[("max_backoff_ms", "200")],
    ))
    .await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    for i in 0..20 {
        c.exec_drop("INSERT INTO t (v) VALUES (?)", (i,))
            .await
            .unwrap();
    }
    wait_mirrored(&proxy).await;
    let secondary = tokio::task::spawn_blocking(move || {
        secondary.kill();
        secondary
    })
    .await
    .unwrap();
    // The client never sees the secondary's failure.
    for i in 20..60 {
        c.exec_drop("INSERT INTO t (v) VALUES (?)", (i,))
            .await
            .unwrap();
        c.query_drop(format!("UPDATE t SET v = v + 1 WHERE id = {}", i - 5))
            .await
            .unwrap();
    }
    wait_mirrored(&proxy).await;
    let count: Option<i64> = c.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(count, Some(60), "primary intact");
    let mirror = proxy.state.mirror.load_full().unwrap();
    assert!(
        mirror.drift.recorded() >= 80,
        "every missed write is drift: {}",
        mirror.drift.recorded()
    );
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&drift)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        if lines.len() as u64 >= mirror.drift.recorded() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["kind"], "secondary_down");
    assert_eq!(first["phase"], "dual_write");
    assert!(first["statement"]
        .as_str()
        .unwrap()
        .starts_with("INSERT INTO t"));
    assert!(first["session"].as_u64().is_some() && first["time"].as_str().is_some());
    drop(secondary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_answers_after_the_secondary_applied() {
    let m = servers::mariadb();
    let primary = m.create_database("dw_sync");
    let secondary = m.create_database("dw_sync_new");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(
        &primary,
        &m.url(&secondary),
        &drift,
        &[("mode", "\"sync\"")],
    ))
    .await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE s (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    for i in 0..10 {
        c.exec_drop("INSERT INTO s (v) VALUES (?)", (i,))
            .await
            .unwrap();
        // No waiting: in sync mode the answer came after the secondary had it.
        let there = m.root_sql(&format!("SELECT COUNT(*) FROM `{secondary}`.s"));
        assert_eq!(there.trim(), (i + 1).to_string());
    }
    let mut tx = c.start_transaction(Default::default()).await.unwrap();
    tx.query_drop("UPDATE s SET v = v + 100").await.unwrap();
    tx.commit().await.unwrap();
    let sum = m.root_sql(&format!("SELECT SUM(v) FROM `{secondary}`.s"));
    assert_eq!(sum.trim(), "1045");
}

/// The secondary's table is locked, so its applier stalls on the first write;
/// with a queue of one, later writes meet a full queue.
async fn stalled_secondary(
    policy: &str,
) -> (Proxy, String, String, mysql_async::Conn, tempfile::TempDir) {
    let m = servers::mariadb();
    let primary = m.create_database(&format!("dw_{policy}"));
    let secondary = m.create_database(&format!("dw_{policy}_new"));
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(
        &primary,
        &m.url(&secondary),
        &drift,
        &[
            ("queue_capacity", "1"),
            ("overflow", &format!("\"{policy}\"")),
        ],
    ))
    .await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE q (id INT PRIMARY KEY)")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    let mut lock = direct(&secondary).await;
    lock.query_drop("LOCK TABLES q WRITE").await.unwrap();
    (proxy, primary, secondary, lock, dir)
}

fn drift_kinds(path: &std::path::Path) -> Vec<String> {
    kinds(&common::jsonl_records(path))
}

fn kinds(records: &[serde_json::Value]) -> Vec<String> {
    records
        .iter()
        .map(|v| v["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The drift log is written by a background thread: waits (bounded) for
/// `expected` records.
async fn settled_drift_kinds(path: &std::path::Path, expected: usize) -> Vec<String> {
    kinds(&common::settled_jsonl(path, expected).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_with_drop_records_drift_and_never_waits() {
    let (proxy, primary, secondary, mut lock, dir) = stalled_secondary("drop").await;
    let mut c = via(&proxy, &primary).await;
    let started = std::time::Instant::now();
    for i in 0..6 {
        c.exec_drop("INSERT INTO q VALUES (?)", (i,)).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "clients never wait for a stalled secondary"
    );
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    wait_mirrored(&proxy).await;
    let m = servers::mariadb();
    let on_secondary: usize = m
        .root_sql(&format!("SELECT COUNT(*) FROM `{secondary}`.q"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        m.root_sql(&format!("SELECT COUNT(*) FROM `{primary}`.q"))
            .trim(),
        "6"
    );
    // One write was being applied, one waited in the queue; the rest are drift.
    let mut dropped = 0;
    for _ in 0..100 {
        dropped = drift_kinds(&dir.path().join("drift.jsonl"))
            .iter()
            .filter(|k| *k == "queue_full")
            .count();
        if dropped == 6 - on_secondary {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(on_secondary < 6, "the queue overflowed");
    assert_eq!(
        dropped,
        6 - on_secondary,
        "every write missing on the secondary is in the drift log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_with_block_waits_and_loses_nothing() {
    let (proxy, primary, secondary, mut lock, dir) = stalled_secondary("block").await;
    let opts = proxy_opts(&proxy, &primary);
    let writer = tokio::spawn(async move {
        let mut c = mysql_async::Conn::new(opts).await.unwrap();
        for i in 0..6 {
            c.exec_drop("INSERT INTO q VALUES (?)", (i,)).await.unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !writer.is_finished(),
        "a full queue holds the writer back (backpressure)"
    );
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .unwrap()
        .unwrap();
    wait_mirrored(&proxy).await;
    let m = servers::mariadb();
    assert_eq!(
        m.root_sql(&format!("SELECT COUNT(*) FROM `{secondary}`.q"))
            .trim(),
        "6"
    );
    assert!(drift_kinds(&dir.path().join("drift.jsonl")).is_empty());
}

/// A dump restored through the proxy (mysqldump style: tables in name order,
/// children before parents, `FOREIGN_KEY_CHECKS=0`): every table reaches
/// PostgreSQL, each foreign key is added once the table it references
/// exists; rows loaded child-first are applied (the key they violate is held
/// back, as drift), and `tandem backfill` adds those keys once every table
/// is copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_order_schema_with_foreign_keys_reaches_postgres() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let primary = m.create_database("dwpg_fk");
    let secondary = pg.create_database("dwpg_fk");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let config = dual_config(&primary, &pg.url(&secondary), &drift, &[]);
    let proxy = start_proxy_with(&config).await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("SET FOREIGN_KEY_CHECKS = 0").await.unwrap();
    for ddl in [
        "CREATE TABLE categories (id INT PRIMARY KEY, parent_id INT NULL, FOREIGN KEY (parent_id) REFERENCES categories (id))",
        "CREATE TABLE order_items (id INT PRIMARY KEY, order_id INT NOT NULL, FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE)",
        "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, FOREIGN KEY (user_id) REFERENCES users (id))",
        "CREATE TABLE users (id INT PRIMARY KEY, best_order_id INT NULL, CONSTRAINT users_best_order FOREIGN KEY (best_order_id) REFERENCES orders (id))",
    ] {
        c.query_drop(ddl).await.unwrap();
    }
    wait_mirrored(&proxy).await;
    let (client, conn) = tokio_postgres::connect(&pg.url(&secondary), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let fks = |client: tokio_postgres::Client| async move {
        let rows = client
            .query(
                "SELECT conrelid::regclass::text || '.' || conname || ' -> ' || confrelid::regclass::text || ' ' || convalidated \
                 FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        (
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>(),
            client,
        )
    };
    let (found, client) = fks(client).await;
    let all = [
        "categories.categories_ibfk_1 -> categories true",
        "order_items.order_items_ibfk_1 -> orders true",
        "orders.orders_ibfk_1 -> users true",
        "users.users_best_order -> orders true",
    ];
    assert_eq!(found, all, "drift: {:?}", std::fs::read_to_string(&drift));
    assert_eq!(proxy.state.mirror.load_full().unwrap().drift.recorded(), 0);

    // A key whose table never comes: it waits, and says why (before the
    // rows: a DDL after them would retry the held-back keys, and they would apply).
    c.query_drop("CREATE TABLE reviews (id INT PRIMARY KEY, product_id INT, FOREIGN KEY (product_id) REFERENCES products (id))")
        .await
        .unwrap();
    // The dump's rows, children first, checks off on the primary.
    for sql in [
        "INSERT INTO categories VALUES (1, NULL), (2, 3), (3, 1)",
        "INSERT INTO order_items VALUES (1, 10), (2, 10), (3, 11)",
        "INSERT INTO orders VALUES (10, 100), (11, 101)",
        "INSERT INTO users VALUES (100, 10), (101, NULL)",
    ] {
        c.query_drop(sql).await.unwrap();
    }
    c.query_drop("SET FOREIGN_KEY_CHECKS = 1").await.unwrap();
    wait_mirrored(&proxy).await;
    for (table, n) in [
        ("categories", 3),
        ("order_items", 3),
        ("orders", 2),
        ("users", 2),
    ] {
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, n, "{table}: no row lost");
    }
    let kinds = settled_drift_kinds(&drift, 2).await;
    assert_eq!(
        kinds,
        ["foreign_key_held", "foreign_key_held"],
        "{:?}",
        std::fs::read_to_string(&drift)
    );
    let (found, client) = fks(client).await;
    assert_eq!(found.len(), 2, "{found:?}");
    let pending: i64 = client
        .query_one("SELECT count(*) FROM tandem_pending_foreign_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 3);
    let waiting: String = client
        .query_one(
            "SELECT last_error FROM tandem_pending_foreign_keys WHERE constraint_name = 'reviews_ibfk_1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, "waiting: table products does not exist");

    // The migration's next step adds them back.
    let file = dir.path().join("proxy.toml");
    std::fs::write(&file, &config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["backfill", "--config", file.to_str().unwrap()])
        .env("TANDEM_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout.matches("added and validated").count(), 2, "{stdout}");
    assert!(
        stdout.contains("foreign key reviews.reviews_ibfk_1 -> products: waiting: table products does not exist"),
        "{stdout}"
    );
    let (found, _client) = fks(client).await;
    assert_eq!(found, all);
}

/// A multi-statement text that inserts into an AUTO_INCREMENT table: only the
/// last statement's OK packet reaches the proxy, so the ids of the first are
/// unknown. The write is reported as drift, never mirrored with ids the new
/// backend would pick itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_insert_with_unknown_ids_is_drift_not_renumbered() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let primary = m.create_database("dwmulti_primary");
    let secondary = pg.create_database("dwmulti_secondary");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(&primary, &pg.url(&secondary), &drift, &[])).await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE m (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    // Ids 1..3 taken directly on the primary: the new backend's own numbering
    // would start at 1 and differ.
    let mut d = direct(&primary).await;
    d.query_drop("INSERT INTO m (v) VALUES (0), (0), (0)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO m (v) VALUES (10); INSERT INTO m (v) VALUES (20)")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    let kinds = settled_drift_kinds(&drift, 1).await;
    assert_eq!(kinds, vec!["untranslatable"], "{kinds:?}");
    let logged = std::fs::read_to_string(&drift).unwrap();
    assert!(logged.contains("multi-statement"), "{logged}");
    let (client, conn) = tokio_postgres::connect(&pg.url(&secondary), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let n: i64 = client
        .query_one("SELECT count(*) FROM m", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no row numbered by PostgreSQL itself");
}
