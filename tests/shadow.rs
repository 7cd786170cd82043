//! Shadow reads against real MariaDB (old, authoritative) and PostgreSQL
//! (new): a deterministic workload compares clean; a row changed behind the
//! proxy's back is logged as a `values` mismatch showing that row, and the
//! summary groups it; reads of a session that just wrote never see old data.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;
use tandem::shadow::log::{Category, MismatchRecord, Side};

fn config(old_db: &str, pg_url: &str, dir: &std::path::Path, new_percent: f64) -> String {
    sampled(old_db, pg_url, dir, new_percent, 100).toml()
}

/// `dual_write` with reads to PostgreSQL at `new_percent` and shadow
/// comparisons at `sample_percent`.
fn sampled(
    old_db: &str,
    pg_url: &str,
    dir: &std::path::Path,
    new_percent: f64,
    sample_percent: u32,
) -> config::TestConfig {
    config::TestConfig::new(old_db)
        .phase("dual_write")
        .new_backend(pg_url)
        .mirror("source", "\"statements\"")
        .drift_log(&dir.join("drift.jsonl"))
        .table(&format!("[reads]\nnew_percent = {new_percent:.1}"))
        .table(&format!(
            "[shadow]\nsample_percent = {sample_percent}\nlog = \"{}\"",
            dir.join("mismatches.jsonl").display()
        ))
}

/// Waits until every sampled read has been compared.
async fn wait_compared(proxy: &Proxy) {
    let start = Instant::now();
    while proxy.state.shadow.stats.queued.load(Ordering::Relaxed) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "shadow comparisons did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn outcomes(proxy: &Proxy) -> std::collections::HashMap<&'static str, u64> {
    proxy.state.shadow.stats.outcomes().into_iter().collect()
}

/// The mismatch log's records (the writer flushes per batch: wait a bit).
async fn read_log(path: &std::path::Path, at_least: usize) -> Vec<MismatchRecord> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let records: Vec<MismatchRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("mismatch log line parses"))
            .collect();
        if records.len() >= at_least || start.elapsed() > Duration::from_secs(5) {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SCHEMA: &str = "CREATE TABLE items (
    id INT PRIMARY KEY AUTO_INCREMENT,
    owner INT NOT NULL,
    name VARCHAR(40),
    note TEXT,
    qty BIGINT UNSIGNED,
    price DECIMAL(10,2),
    ratio DOUBLE,
    active TINYINT(1),
    born DATE,
    seen DATETIME(6),
    data VARBINARY(16)
)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_workload_compares_clean_and_reads_see_their_writes() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database("shadow_clean");
    let new = pg.create_database("shadow_clean");
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy_with(&config(&old, &pg.url(&new), dir.path(), 0.0)).await;
    let mut c = via(&proxy, &old).await;
    c.query_drop(SCHEMA).await.unwrap();
    wait_mirrored(&proxy).await;

    // Four sessions, each writing its own rows and reading them back at once
    // (text and prepared), plus reads over everything.
    let mut tasks = Vec::new();
    for owner in 0..4i64 {
        let opts = proxy_opts(&proxy, &old);
        tasks.push(tokio::spawn(async move {
            let mut s = mysql_async::Conn::new(opts).await.unwrap();
            for i in 0..15i64 {
                s.exec_drop(
                    "INSERT INTO items (owner, name, note, qty, price, ratio, active, born, seen, data) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        owner,
                        format!("n{owner}-{i} ünï"),
                        if i % 3 == 0 { None } else { Some("x".repeat(i as usize * 10)) },
                        18_446_744_073_709_551_000u64 + i as u64,
                        format!("{}.{:02}", i * 7, i),
                        i as f64 / 3.0,
                        i % 2 == 0,
                        format!("2024-02-{:02}", i + 1),
                        format!("2024-03-01 10:11:{:02}.{:06}", i, i * 1001),
                        vec![i as u8, 0, 255],
                    ),
                )
                .await
                .unwrap();
                let id = s.last_insert_id().unwrap_or(0);
                s.query_drop(format!("UPDATE items SET qty = qty - 1 WHERE id = {id}"))
                    .await
                    .unwrap();
                let _: Vec<mysql_async::Row> = s
                    .query(format!("SELECT * FROM items WHERE id = {id}"))
                    .await
                    .unwrap();
                let _: Vec<mysql_async::Row> = s
                    .exec("SELECT id, name, price, active FROM items WHERE owner = ? ORDER BY id", (owner,))
                    .await
                    .unwrap();
            }
            let _: Vec<mysql_async::Row> = s
                .query(format!(
                    "SELECT owner, COUNT(*), SUM(price), AVG(qty), MIN(seen), MAX(born) \
                     FROM items WHERE owner = {owner} GROUP BY owner"
                ))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    wait_mirrored(&proxy).await;
    for sql in [
        "SELECT * FROM items",
        "SELECT * FROM items ORDER BY id DESC",
        "SELECT owner, COUNT(*) AS n, SUM(price) FROM items GROUP BY owner ORDER BY owner",
        "SELECT i.id, j.name FROM items i JOIN items j ON j.id = i.id WHERE i.active = 1 ORDER BY i.id",
        "SELECT id FROM items WHERE id IN (1, 2, 3) AND note IS NULL",
        "SELECT COUNT(*) FROM items WHERE name LIKE 'n1-%'",
        "SELECT * FROM items LIMIT 3",
    ] {
        let _: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
    }
    // libmariadb (the mariadb CLI) asks for MariaDB's extended column
    // metadata: its answers are compared too.
    let out = std::process::Command::new("mariadb")
        .args([
            "--protocol=TCP",
            "-h127.0.0.1",
            &format!("-P{}", proxy.addr.port()),
            &format!("-u{PROXY_USER}"),
            &format!("-p{PROXY_PASSWORD}"),
            &old,
            "-e",
            "SELECT id, name, seen FROM items ORDER BY id; SELECT COUNT(*) FROM items",
        ])
        .output()
        .expect("mariadb CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_compared(&proxy).await;
    let o = outcomes(&proxy);
    assert_eq!(
        o["mismatch"],
        0,
        "{o:?}\n{:?}",
        read_log(&dir.path().join("mismatches.jsonl"), 0).await
    );
    // Every read was compared: 2 per loop, 1 aggregate per session, and the
    // 6 reads after the writers finished. A session's later writes can reach
    // PostgreSQL before its earlier read is compared there: the recheck then
    // finds them equal (transient), never a logged mismatch.
    assert_eq!(o["match"] + o["transient"], 4 * 15 * 2 + 4 + 6 + 2, "{o:?}");
    assert!(o["match"] >= 6, "{o:?}");
    // LIMIT without ORDER BY, and the `SELECT @@max_allowed_packet, …` that
    // mysql_async sends on each of the 5 connections.
    assert_eq!(o["skipped_nondeterministic"], 1 + 5, "{o:?}");
    assert_eq!(
        o["skipped_unsupported"] + o["failed"] + o["dropped"],
        0,
        "{o:?}"
    );
    assert!(read_log(&dir.path().join("mismatches.jsonl"), 0)
        .await
        .is_empty());

    // Read-your-writes with every read routed to PostgreSQL: a session that
    // writes and reads at once always sees its write.
    proxy.stop().await;
    let proxy = start_proxy_with(&config(&old, &pg.url(&new), dir.path(), 100.0)).await;
    let mut c = via(&proxy, &old).await;
    for i in 0..200i64 {
        c.query_drop(format!("UPDATE items SET owner = {i} WHERE id = 1"))
            .await
            .unwrap();
        let seen: Option<i64> = c
            .query_first("SELECT owner FROM items WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(seen, Some(i), "read right after its write");
    }
    wait_mirrored(&proxy).await;
    for _ in 0..20 {
        let seen: Option<i64> = c
            .query_first("SELECT owner FROM items WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(seen, Some(199));
    }
    assert!(proxy.state.metrics.reads_to_new.load(Ordering::Relaxed) >= 20);
    assert!(
        proxy
            .state
            .metrics
            .reads_kept_for_consistency
            .load(Ordering::Relaxed)
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_changed_on_postgres_is_logged_with_that_row() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database("shadow_diff");
    let new = pg.create_database("shadow_diff");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mismatches.jsonl");
    let proxy = start_proxy_with(&config(&old, &pg.url(&new), dir.path(), 0.0)).await;
    let mut c = via(&proxy, &old).await;
    c.query_drop("CREATE TABLE acct (id INT PRIMARY KEY, name VARCHAR(20), balance DECIMAL(12,2))")
        .await
        .unwrap();
    c.query_drop("INSERT INTO acct VALUES (1, 'ann', 10.50), (2, 'bob', 20.00), (3, 'cy', 30.25)")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    // Behind the proxy's back: one value changed, one row removed.
    pg.sql(&new, "UPDATE acct SET balance = 99.99 WHERE id = 2");
    for id in [1, 2, 3, 2, 2] {
        let _: Vec<mysql_async::Row> = c
            .query(format!(
                "SELECT id, name, balance FROM acct WHERE id = {id}"
            ))
            .await
            .unwrap();
    }
    let _: Vec<mysql_async::Row> = c
        .exec("SELECT id, name, balance FROM acct WHERE id = ?", (2,))
        .await
        .unwrap();
    wait_compared(&proxy).await;
    pg.sql(&new, "DELETE FROM acct WHERE id = 3");
    let _: Vec<mysql_async::Row> = c.query("SELECT id FROM acct ORDER BY id").await.unwrap();
    // Fails on PostgreSQL only (text compared with an integer).
    let _: Vec<mysql_async::Row> = c.query("SELECT id FROM acct WHERE name = 5").await.unwrap();
    wait_compared(&proxy).await;

    let o = outcomes(&proxy);
    assert_eq!(o["mismatch"], 6, "{o:?}");
    let records = read_log(&log, 6).await;
    assert_eq!(records.len(), 6, "{records:#?}");
    let values: Vec<&MismatchRecord> = records
        .iter()
        .filter(|r| r.category == Category::Values)
        .collect();
    assert_eq!(values.len(), 4, "{records:#?}");
    for r in &values {
        assert!(r.statement.contains("id = 2"), "{}", r.statement);
        assert_eq!(r.columns, ["id", "name", "balance"]);
        assert_eq!(r.primary, "old");
        let row = |side| {
            r.sample
                .iter()
                .find(|s| s.side == side)
                .map(|s| s.row.clone())
                .unwrap()
        };
        assert_eq!(
            row(Side::Primary),
            [Some("2".into()), Some("bob".into()), Some("20".into())]
        );
        assert_eq!(
            row(Side::Secondary),
            [Some("2".into()), Some("bob".into()), Some("99.99".into())]
        );
        assert!(
            r.translated.as_deref().is_some_and(|t| t.contains("acct")),
            "{r:?}"
        );
    }
    // Text and prepared reads share one fingerprint.
    assert!(values
        .iter()
        .all(|r| r.fingerprint == values[0].fingerprint));
    let count = records
        .iter()
        .find(|r| r.category == Category::RowCount)
        .expect("row_count");
    assert_eq!((count.rows.primary, count.rows.secondary), (3, 2));
    assert_eq!(count.sample[0].row[0].as_deref(), Some("3"));
    let err = records
        .iter()
        .find(|r| r.category == Category::ErrorSecondaryOnly)
        .expect("error_secondary_only");
    assert!(err
        .error
        .as_ref()
        .is_some_and(|e| e.code != 0 && !e.message.is_empty()));

    // The operator's summary groups them, most frequent first.
    let summary = tandem::shadow::summary::read_log(&log).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&tandem::shadow::summary::render_json(&summary)).unwrap();
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{json:#}");
    assert_eq!(groups[0]["count"], 4);
    assert_eq!(groups[0]["categories"]["values"], 4);
    let text = tandem::shadow::summary::render_text(&summary, None);
    assert!(text.contains("99.99") && text.contains("bob"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_new_primary_mariadb_is_the_shadow() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database("shadow_np");
    let new = pg.create_database("shadow_np");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mismatches.jsonl");
    let unsampled = sampled(&old, &pg.url(&new), dir.path(), 0.0, 0).toml();
    let proxy = start_proxy_with(&unsampled).await;
    let mut c = via(&proxy, &old).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10), n DECIMAL(8,3))")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL), (3, 'c', -2.25)")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    drop(c);
    proxy.stop().await;

    // PostgreSQL answers; MariaDB receives the writes and the shadow reads.
    let new_primary = sampled(&old, &pg.url(&new), dir.path(), 0.0, 100)
        .phase("new_primary")
        .toml();
    let proxy = start_proxy_with(&new_primary).await;
    let mut c = via(&proxy, &old).await;
    c.query_drop("UPDATE t SET v = 'bb' WHERE id = 2")
        .await
        .unwrap();
    for sql in [
        "SELECT * FROM t ORDER BY id",
        "SELECT v FROM t WHERE id = 2",
        "SELECT COUNT(*), SUM(n) FROM t",
    ] {
        let _: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
    }
    wait_compared(&proxy).await;
    let o = outcomes(&proxy);
    assert_eq!((o["match"], o["mismatch"]), (3, 0), "{o:?}");

    // A row changed on MariaDB only is now the difference, primary "new".
    m.root_sql(&format!("UPDATE `{old}`.t SET n = 9.999 WHERE id = 3"));
    let _: Vec<mysql_async::Row> = c.query("SELECT id, n FROM t WHERE id = 3").await.unwrap();
    wait_compared(&proxy).await;
    let records = read_log(&log, 1).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!((r.category, r.primary.as_str()), (Category::Values, "new"));
    let row = |side| {
        r.sample
            .iter()
            .find(|s| s.side == side)
            .map(|s| s.row.clone())
    };
    assert_eq!(
        row(Side::Primary),
        Some(vec![Some("3".into()), Some("-2.25".into())])
    );
    assert_eq!(
        row(Side::Secondary),
        Some(vec![Some("3".into()), Some("9.999".into())])
    );
}
