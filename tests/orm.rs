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
    config::TestConfig::new(primary_db)
        .phase("dual_write")
        .new_backend(secondary_url)
        .new_connect_timeout_ms(1000)
        .mirror("source", "\"statements\"")
        .drift_log(drift)
        .toml()
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

/// No drift recorded (counted when recorded, before the log line is written).
fn assert_no_drift(proxy: &Proxy, dir: &tempfile::TempDir, what: &str) {
    let recorded = proxy.state.mirror.load_full().unwrap().drift.recorded();
    assert_eq!(recorded, 0, "{what}: {}", drift_text(dir));
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

/// Units the mirror accepted so far (one per autocommit write).
fn accepted(proxy: &Proxy) -> u64 {
    let m = proxy.state.mirror.load_full().unwrap();
    m.stats.accepted.load(Ordering::Relaxed)
}

/// The drift log's `error` fields, once it holds at least `n` lines (the log
/// is written in the background; waits up to 5 s).
async fn drift_errors(dir: &tempfile::TempDir, n: usize) -> Vec<String> {
    for _ in 0..100 {
        if drift_text(dir).lines().count() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drift_text(dir)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["error"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prepared_statements_run_as_what_they_prepare() {
    let (proxy, primary, secondary, dir) = dual("sqlprep").await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE k (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), n INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO k (name, n) VALUES ('seed', 1)")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    let before = accepted(&proxy);
    // Reads: prepared, executed, deallocated; nothing reaches the mirror.
    c.query_drop("PREPARE sel FROM 'SELECT * FROM k WHERE id = ?'")
        .await
        .unwrap();
    c.query_drop("SET @i = 1").await.unwrap();
    let rows: Vec<(i32, String, i32)> = c.query("EXECUTE Sel USING @i").await.unwrap();
    assert_eq!(rows, vec![(1, "seed".to_string(), 1)]);
    c.query_drop("DEALLOCATE PREPARE sel").await.unwrap();
    assert_eq!(accepted(&proxy), before, "reads are not mirrored");
    // Writes, with values from user variables (quotes, NULL, numbers).
    c.query_drop("PREPARE ins FROM 'INSERT INTO k (name, n) VALUES (?, ?)'")
        .await
        .unwrap();
    for (name, n) in [("it's", "5"), ("back\\\\slash", "NULL"), ("plain", "-7")] {
        c.query_drop(format!("SET @a = '{}', @b = {n}", name.replace('\'', "''")))
            .await
            .unwrap();
        c.query_drop("EXECUTE INS USING @a, @b").await.unwrap();
    }
    // Prepared from a variable, which the proxy reads on the primary.
    c.query_drop("SET @q = 'UPDATE k SET n = COALESCE(n, 0) + ? WHERE name <> ?'")
        .await
        .unwrap();
    c.query_drop("PREPARE upd FROM @q").await.unwrap();
    c.query_drop("SET @d = 10, @skip = 'plain'").await.unwrap();
    c.query_drop("EXECUTE upd USING @d, @skip").await.unwrap();
    // In a transaction that rolls back, then one that commits.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("EXECUTE upd USING @d, @skip").await.unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("SET @a = 'in tx', @b = 3").await.unwrap();
    c.query_drop("EXECUTE ins USING @a, @b").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("DROP PREPARE ins").await.unwrap();
    // A name no longer prepared: the server's error, nothing mirrored.
    assert!(c.query_drop("EXECUTE ins USING @a, @b").await.is_err());
    wait_mirrored(&proxy).await;
    assert_no_drift(&proxy, &dir, "no drift");
    // 3 inserts + 1 update autocommitted, 1 committed transaction (the rolled
    // back one may be dropped before it reaches the queue).
    let units = accepted(&proxy) - before;
    assert!((5..=6).contains(&units), "{units} units mirrored");
    assert_eq!(assert_same(&primary, &secondary, "k").await, 5);
    let (a, _) = both_sides(&primary, &secondary, "k").await;
    assert_eq!(a[1][1], "it's");
    assert_eq!(a[2][1], "back\\slash");
    // Beyond the proxy's bound (1,024 texts per session, `upd` is one) an
    // EXECUTE is not guessed: it runs on MariaDB and is reported.
    for i in 0..1023 {
        c.query_drop(format!("PREPARE p{i} FROM 'SELECT {i}'"))
            .await
            .unwrap();
    }
    c.query_drop("PREPARE late FROM 'INSERT INTO k (name, n) VALUES (''late'', 0)'")
        .await
        .unwrap();
    c.query_drop("EXECUTE late").await.unwrap();
    let known: Option<i32> = c.query_first("EXECUTE p1022").await.unwrap();
    assert_eq!(known, Some(1022));
    wait_mirrored(&proxy).await;
    let errors = drift_errors(&dir, 1).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("EXECUTE of `late`"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_the_parser_rejects_are_classified() {
    let (proxy, primary, secondary, dir) = dual("unread").await;
    let mut c = via(&proxy, &primary).await;
    for ddl in [
        "CREATE TABLE a (id INT PRIMARY KEY, x INT, body TEXT)",
        "CREATE TABLE b (id INT PRIMARY KEY, y INT)",
        // PostgreSQL gets the same table, unpartitioned.
        "CREATE TABLE p (id INT PRIMARY KEY, v INT) PARTITION BY HASH(id) PARTITIONS 2",
        "INSERT INTO a VALUES (1, 0, 'one'), (2, 0, 'two'), (3, 0, 'three')",
        "INSERT INTO b VALUES (1, 10), (2, 20)",
        "INSERT INTO p VALUES (1, 1), (2, 2), (3, 3)",
        // A column default is not a value to pin: the primary keeps it.
        "CREATE TABLE d (id INT PRIMARY KEY, at DATETIME DEFAULT CURRENT_TIMESTAMP)",
    ] {
        c.query_drop(ddl).await.unwrap();
    }
    let create: Option<(String, String)> = c.query_first("SHOW CREATE TABLE d").await.unwrap();
    let create = create.unwrap().1;
    assert!(
        create.contains("DEFAULT current_timestamp()"),
        "primary schema changed: {create}"
    );
    wait_mirrored(&proxy).await;
    assert_no_drift(&proxy, &dir, "setup mirrored");
    let before = accepted(&proxy);
    // Reads the parser rejects: answered, never mirrored.
    let locked: Vec<(i32, i32)> = c
        .query("SELECT id, x FROM a WHERE id = 1 LOCK IN SHARE MODE")
        .await
        .unwrap();
    assert_eq!(locked, vec![(1, 0)]);
    c.query_drop("XA RECOVER").await.unwrap();
    c.query_drop("SELECT * FROM p PARTITION (p0)")
        .await
        .unwrap();
    assert_eq!(accepted(&proxy), before, "reads are not mirrored");
    // Writes: a multi-table UPDATE (translated), an XA transaction
    // committed and one rolled back (mirrored as ordinary transactions).
    c.query_drop("UPDATE a, b SET a.x = b.y WHERE a.id = b.id")
        .await
        .unwrap();
    for sql in [
        "XA START 'x1'",
        "INSERT INTO a VALUES (10, 1, 'xa')",
        "UPDATE p SET v = v + 100 WHERE id = 2",
        "XA END 'x1'",
        "XA PREPARE 'x1'",
        "XA COMMIT 'x1'",
        "XA START 'x2'",
        "INSERT INTO a VALUES (11, 1, 'rolled back')",
        "XA END 'x2'",
        "XA ROLLBACK 'x2'",
    ] {
        c.query_drop(sql).await.unwrap();
    }
    wait_mirrored(&proxy).await;
    assert!(accepted(&proxy) >= before + 2, "the writes were mirrored");
    assert_no_drift(&proxy, &dir, "no drift for translatable writes");
    for table in ["a", "b", "p"] {
        assert_same(&primary, &secondary, table).await;
    }
    let (a, _) = both_sides(&primary, &secondary, "a").await;
    assert_eq!(a.len(), 4, "x1 committed, x2 rolled back: {a:?}");
    assert_eq!((a[0][1].as_str(), a[1][1].as_str()), ("10", "20"));
    // DDL with no PostgreSQL counterpart runs on MariaDB and is reported.
    c.query_drop("CREATE FULLTEXT INDEX ft ON a (body)")
        .await
        .unwrap();
    c.query_drop("ALTER TABLE a COMMENT 'accounts'")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    let errors = drift_errors(&dir, 2).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("FULLTEXT"), "{errors:?}");
    assert!(errors[1].contains("comment"), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_in_every_form() {
    let (proxy, primary, secondary, dir) = dual("ret").await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE r (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    // MariaDB numbers this session's rows by 3, PostgreSQL's sequence by 1:
    // the ids match only when the proxy writes them.
    c.query_drop("SET SESSION auto_increment_increment = 3")
        .await
        .unwrap();
    // Text protocol, binary protocol (prepared), REPLACE and DELETE.
    let ids: Vec<u64> = c
        .query("INSERT INTO r (v) VALUES ('a'), ('b') RETURNING id")
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let ids: Vec<(u64, String)> = c
        .exec(
            "INSERT INTO r (v) VALUES (?), (?), (?) RETURNING id, v",
            ("c", "d", "e"),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let replaced: Vec<String> = c
        .query(format!(
            "REPLACE INTO r (id, v) VALUES ({}, 'a2') RETURNING v",
            ids[0].0
        ))
        .await
        .unwrap();
    assert_eq!(replaced, vec!["a2".to_string()]);
    let deleted: Vec<u64> = c
        .query("DELETE FROM r WHERE v = 'b' RETURNING id")
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    // In a transaction that rolls back.
    c.query_drop("BEGIN").await.unwrap();
    let _: Vec<u64> = c
        .query("INSERT INTO r (v) VALUES ('gone'), ('gone') RETURNING id")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    wait_mirrored(&proxy).await;
    assert_no_drift(&proxy, &dir, "no drift");
    assert_eq!(assert_same(&primary, &secondary, "r").await, 4);
    // A prepared RETURNING with a pinned call runs unpinned on MariaDB (the
    // client still gets binary rows) and is reported.
    let pinned: Vec<(u64, String)> = c
        .exec(
            "INSERT INTO r (v) VALUES (CONCAT(?, LEFT(UUID(), 8))) RETURNING id, v",
            ("u",),
        )
        .await
        .unwrap();
    assert_eq!(pinned.len(), 1);
    assert!(pinned[0].1.starts_with('u') && pinned[0].1.len() == 9);
    wait_mirrored(&proxy).await;
    let errors = drift_errors(&dir, 1).await;
    assert!(errors[0].contains("pinned values"), "{errors:?}");
    c.query_drop(format!("DELETE FROM r WHERE id = {}", pinned[0].0))
        .await
        .unwrap();
    // RETURNING without the id column: the ids are not known, so the rows
    // are reported instead of numbered differently on PostgreSQL.
    let vs: Vec<String> = c
        .query("INSERT INTO r (v) VALUES ('x'), ('y') RETURNING v")
        .await
        .unwrap();
    assert_eq!(vs, vec!["x".to_string(), "y".to_string()]);
    wait_mirrored(&proxy).await;
    let errors = drift_errors(&dir, 2).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[1].contains("RETURNING does not list that column"),
        "{errors:?}"
    );
    let (a, b) = both_sides(&primary, &secondary, "r").await;
    assert_eq!((a.len(), b.len()), (6, 4), "reported rows are not invented");
}
