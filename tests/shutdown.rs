//! Owned background work at shutdown: writes the primary acknowledged but the
//! mirror had not applied when the proxy stops are applied within the
//! shutdown bound or written to the drift log — none vanish, and the stop
//! does not wait past the bound for a secondary that is stuck.

mod common;

use std::time::{Duration, Instant};

use common::servers::{mariadb, postgres};
use common::*;
use mysql_async::prelude::*;

const ROWS: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_at_shutdown_become_drift_records_none_vanish() {
    let db = mariadb().create_database("shutdown");
    let pg = postgres();
    let secondary = pg.create_database("shutdown");
    let create = "CREATE TABLE t (id INT PRIMARY KEY, v INT)";
    mariadb().root_sql(&format!("USE {db}; {create}"));
    pg.sql(&secondary, create);
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let bound_ms = 1500;
    let proxy = config::TestConfig::new(&db)
        .phase("dual_write")
        .new_backend(&pg.url(&secondary))
        .drift_log(&drift)
        .shutdown_timeout_ms(bound_ms)
        .start()
        .await;

    // The secondary is stuck: a transaction holds the table, so the
    // applier's first write waits on the lock and the rest queue behind it.
    let (lock, conn) = tokio_postgres::connect(&pg.url(&secondary), tokio_postgres::NoTls)
        .await
        .expect("postgres");
    let io = tokio::spawn(conn);
    lock.batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let mut c = via(&proxy, &db).await;
    for i in 1..=ROWS {
        c.query_drop(format!("INSERT INTO t VALUES ({i}, {i})"))
            .await
            .unwrap();
    }
    drop(c);
    let mirror = proxy.state.mirror.load_full().expect("dual_write mirror");
    let queued = mirror
        .stats
        .queued
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(queued, ROWS, "every write waits behind the lock");

    let state = proxy.state.clone();
    let started = Instant::now();
    proxy.stop().await;
    let took = started.elapsed();
    // The bound, plus the slack tasks get to write down what they left.
    assert!(
        took < Duration::from_millis(bound_ms) + Duration::from_secs(4),
        "shutdown took {took:?}"
    );
    assert!(state.background.is_empty(), "the applier ended");
    drop(state);
    drop(mirror);

    // Only now does the secondary move again.
    lock.batch_execute("ROLLBACK").await.unwrap();
    drop(lock);
    let _ = io.await;

    // The file is complete when stop() returns: the applier flushed it.
    let records = jsonl_records(&drift);
    let shutdown: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["kind"] == "shutdown").collect();
    assert!(
        shutdown.len() as i64 >= ROWS - 1,
        "{} shutdown records of {ROWS} queued writes: {records:?}",
        shutdown.len()
    );
    eprintln!(
        "shutdown took {took:?} (bound {bound_ms} ms); {} of {ROWS} writes recorded as shutdown drift",
        shutdown.len()
    );
    let on_primary = rows_text(&mut direct(&db).await, "SELECT COUNT(*) FROM t").await;
    assert_eq!(on_primary, vec![vec![format!("'{ROWS}'")]]);
    // Every write is on the secondary or in the drift log.
    let mut on_secondary = Vec::new();
    for _ in 0..50 {
        on_secondary = pg
            .sql(&secondary, "SELECT id FROM t ORDER BY id")
            .lines()
            .filter_map(|l| l.trim().parse::<i64>().ok())
            .collect();
        // The write abandoned mid-apply may still commit once the lock is
        // gone (its record says so); give it a moment.
        if on_secondary.len() + shutdown.len() >= ROWS as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 1..=ROWS {
        let in_drift = shutdown.iter().any(|r| {
            r["statement"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("({i}, {i})")))
        });
        assert!(
            in_drift || on_secondary.contains(&i),
            "write {i} vanished: not on the secondary, not in the drift log"
        );
    }
}

/// Shutdown waits for a transaction boundary: a session idle outside a
/// transaction is closed at once, one inside a transaction may still commit
/// (its rows land) and is closed right after; nothing is cut off between two
/// statements of a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_open_transaction_commit_then_closes_the_session() {
    let db = mariadb().create_database("shutdown_txn");
    mariadb().root_sql(&format!(
        "USE {db}; CREATE TABLE t (id INT PRIMARY KEY, v INT)"
    ));
    let proxy = config::TestConfig::new(&db)
        .shutdown_timeout_ms(10_000)
        .start()
        .await;
    let mut idle = via(&proxy, &db).await;
    let mut busy = via(&proxy, &db).await;
    idle.query_drop("SELECT 1").await.unwrap();
    busy.query_drop("BEGIN").await.unwrap();
    busy.query_drop("INSERT INTO t VALUES (1, 1)")
        .await
        .unwrap();

    let shutdown = proxy.shutdown.clone();
    let task = proxy.task;
    shutdown.cancel();
    // The idle session goes at once; the proxy keeps waiting for `busy`.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if idle.query_drop("SELECT 1").await.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "the idle session was not closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !task.is_finished(),
        "shutdown did not wait for the open transaction"
    );

    // Inside its transaction the session is still served, to the end.
    busy.query_drop("INSERT INTO t VALUES (2, 2)")
        .await
        .unwrap();
    busy.query_drop("COMMIT").await.unwrap();
    let after = busy.query_drop("SELECT 1").await;
    assert!(
        after.is_err(),
        "the session ends at the boundary: {after:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shutdown finished once the transaction ended")
        .unwrap();
    let rows = mariadb().root_sql(&format!("SELECT COUNT(*) FROM {db}.t"));
    assert_eq!(rows.trim(), "2", "both rows of the transaction committed");
}
