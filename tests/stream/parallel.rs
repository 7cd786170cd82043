//! Parallel apply (`[mirror] apply_workers` > 1) on real servers: per-row
//! order under non-commutative updates from two sessions, exactly once
//! across an abrupt kill while workers commit, a transaction that depends
//! on two in-flight ones, and the markers that let a restart skip what was
//! already committed above the checkpoint; DDL while the workers hold plans.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use tandem::migrate::sqltext::Dialect;
use tandem::stream::apply::{markers, OnError, StreamStats};
use tandem::stream::{Change, RowChange};
use tandem::value::Value;
use tokio_util::sync::CancellationToken;

use super::e2e::{pair, wait_caught_up, wait_checkpoint, Pair};
use super::run::{accounts, config, insert, pg_db, start, wait_for, Log};
use crate::common::{self, servers};

const P: i64 = 1_000_003;

/// The source tables of the binlog tests, on both sides.
async fn schema(p: &Pair, d: &mut mysql_async::Conn) {
    let ddl = [
        "CREATE TABLE c (id int NOT NULL PRIMARY KEY, v bigint NOT NULL)",
        "CREATE TABLE a (id int NOT NULL PRIMARY KEY, s varchar(20) NOT NULL)",
        "CREATE TABLE b (id int NOT NULL PRIMARY KEY, s varchar(20) NOT NULL)",
        // No key: a barrier, and plain inserts that a replay would duplicate.
        "CREATE TABLE log (n int NOT NULL, s varchar(20) NOT NULL)",
    ];
    for sql in ddl {
        d.query_drop(sql).await.unwrap();
        servers::postgres().sql(&p.pg, sql);
    }
    let rows: Vec<String> = (1..=10).map(|i| format!("({i}, {i})")).collect();
    let sql = format!("INSERT INTO c VALUES {}", rows.join(", "));
    d.query_drop(&sql).await.unwrap();
    servers::postgres().sql(&p.pg, &sql);
}

/// Sessions writing straight to MariaDB until `stop`: `v = v * 3 % p` on
/// two adjacent rows, `v = v + 7` on one, inserts into `a` and `b` (two
/// statements per transaction) and, every tenth, a row into `log`.
fn load(p: &Pair, stop: &CancellationToken) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..4)
        .map(|kind| {
            let stop = stop.clone();
            let opts = common::direct_opts(&p.my);
            tokio::spawn(async move {
                let mut conn = mysql_async::Conn::new(opts).await.unwrap();
                let mut n = 0u64;
                while !stop.is_cancelled() {
                    let k = n % 10 + 1;
                    let sql = match kind {
                        0 => format!(
                            "UPDATE c SET v = v * 3 % {P} WHERE id IN ({k}, {})",
                            k % 10 + 1
                        ),
                        1 => format!("UPDATE c SET v = v + 7 WHERE id = {}", 10 - k + 1),
                        2 => format!(
                            "START TRANSACTION; INSERT INTO a VALUES ({n}, 'a{n}'); \
                             INSERT INTO b VALUES ({n}, 'b{n}'); COMMIT"
                        ),
                        _ if n.is_multiple_of(10) => {
                            format!("INSERT INTO log VALUES ({n}, 'l{n}')")
                        }
                        _ => format!("UPDATE a SET s = 'u{n}' WHERE id = {}", n / 2),
                    };
                    conn.query_drop(sql).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect()
}

async fn compare_c(p: &Pair, d: &mut mysql_async::Conn) {
    let mine: Vec<(i32, i64)> = d.query("SELECT id, v FROM c ORDER BY id").await.unwrap();
    let mine: Vec<String> = mine.iter().map(|(i, v)| format!("{i}|{v}")).collect();
    let theirs = p.pg_sql("SELECT id, v FROM c ORDER BY id");
    assert_eq!(theirs, mine.join("\n"), "table c row by row");
}

async fn counts(p: &Pair, d: &mut mysql_async::Conn) {
    let n: Option<u64> = d.query_first("SELECT count(*) FROM log").await.unwrap();
    let n = n.unwrap_or(0);
    assert!(n > 0, "the load wrote to the keyless table");
    assert_eq!(
        p.pg_sql("SELECT count(*), count(DISTINCT n) FROM log"),
        format!("{n}|{n}"),
        "keyless inserts: none missing, none twice"
    );
    let a: Option<u64> = d.query_first("SELECT count(*) FROM a").await.unwrap();
    let a = a.unwrap_or(0);
    assert_eq!(
        p.pg_sql("SELECT count(*), count(DISTINCT id) FROM a"),
        format!("{a}|{a}")
    );
}

fn markers_left(p: &Pair) -> String {
    p.pg_sql(&format!("SELECT count(*) FROM {}", markers::TABLE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_commutative_updates_from_two_sessions_end_identical_with_parallel_apply() {
    let mut p = pair("stream_par", 111);
    p.toml = p.base.clone().mirror("apply_workers", "4").toml();
    let mut d = common::direct(&p.my).await;
    schema(&p, &mut d).await;
    let config = p.config();
    assert_eq!(config.mirror.apply_workers, 4);
    let stats = Arc::new(StreamStats::default());
    let cancel = CancellationToken::new();
    let cfg = tandem::stream::run::config_from(&config, Arc::new(Default::default())).unwrap();
    let opener = Arc::new(tandem::stream::source::BinlogOpener::from_config(&config).unwrap());
    let task = tokio::spawn(tandem::stream::run::run(
        cfg,
        opener,
        Arc::clone(&stats),
        None,
        cancel.clone(),
    ));
    wait_checkpoint(&stats).await;
    let stop = CancellationToken::new();
    let writers = load(&p, &stop);
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    eprintln!("{written} statements written");
    // DDL is a barrier after which every worker writes the new shape.
    d.query_drop("ALTER TABLE a ADD COLUMN extra int NOT NULL DEFAULT 5")
        .await
        .unwrap();
    d.query_drop(
        "INSERT INTO a VALUES (1000000, 'z', 9), (1000001, 'y', 8); \
         UPDATE a SET extra = 6 WHERE id < 10",
    )
    .await
    .unwrap();
    wait_caught_up(&stats, &mut d, Duration::from_secs(120)).await;
    assert_eq!(
        p.pg_sql("SELECT sum(extra) FROM a WHERE id >= 1000000"),
        "17"
    );
    compare_c(&p, &mut d).await;
    counts(&p, &mut d).await;
    p.assert_identical().await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        markers_left(&p),
        "0",
        "the final checkpoint covers every marker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_workers_commit_resumes_with_nothing_missing_or_twice() {
    let mut p = pair("stream_par_kill", 112);
    p.toml = p.base.clone().mirror("apply_workers", "4").toml();
    let mut d = common::direct(&p.my).await;
    schema(&p, &mut d).await;
    let config = p.config();
    assert_eq!(config.mirror.apply_workers, 4);
    let spawn = |stats: &Arc<StreamStats>, cancel: &CancellationToken| {
        let cfg = tandem::stream::run::config_from(&config, Arc::new(Default::default())).unwrap();
        let opener = Arc::new(tandem::stream::source::BinlogOpener::from_config(&config).unwrap());
        tokio::spawn(tandem::stream::run::run(
            cfg,
            opener,
            Arc::clone(stats),
            None,
            cancel.clone(),
        ))
    };
    let stats = Arc::new(StreamStats::default());
    let first = spawn(&stats, &CancellationToken::new());
    wait_checkpoint(&stats).await;
    let stop = CancellationToken::new();
    let writers = load(&p, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Abrupt: the task and its workers are dropped mid-commit, no shutdown.
    first.abort();
    let _ = first.await;
    let left = markers_left(&p);
    eprintln!("killed; {left} transactions committed above the checkpoint");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = Arc::new(StreamStats::default());
    let cancel = CancellationToken::new();
    let second = spawn(&stats, &cancel);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for w in writers {
        w.await.unwrap();
    }
    wait_caught_up(&stats, &mut d, Duration::from_secs(120)).await;
    compare_c(&p, &mut d).await;
    counts(&p, &mut d).await;
    p.assert_identical().await;
    cancel.cancel();
    second.await.unwrap().unwrap();
    assert_eq!(markers_left(&p), "0");
}

fn update(id: i128, from: &str, to: &str) -> Change {
    Change {
        table: accounts(),
        change: RowChange::Update {
            before: vec![Value::Int(id), Value::Text(from.into())],
            after: vec![Value::Int(id), Value::Text(to.into())],
        },
    }
}

/// A PostgreSQL session holding a row lock until dropped or released.
async fn lock_row(url: &str, id: i32) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM accounts WHERE id = {id} FOR UPDATE"
        ))
        .await
        .unwrap();
    client
}

#[tokio::test]
async fn a_transaction_touching_two_in_flight_ones_waits_for_both() {
    let db = pg_db("stream_par_deps");
    let pg = servers::postgres();
    pg.sql(&db, "INSERT INTO accounts VALUES (1, 'a0'), (2, 'b0')");
    let url = pg.url(&db);
    let row = |id: i32| {
        pg.sql(&db, &format!("SELECT name FROM accounts WHERE id = {id}"))
            .trim()
            .to_string()
    };
    let lock1 = lock_row(&url, 1).await;
    let lock2 = lock_row(&url, 2).await;
    let log = Log::default();
    let t = accounts();
    log.push(1, vec![update(1, "a0", "a1")]);
    log.push(2, vec![update(2, "b0", "b1")]);
    log.push(3, vec![insert(&t, 4, Some("d"))]);
    log.push(
        4,
        vec![
            update(1, "a1", "a2"),
            update(2, "b1", "b2"),
            insert(&t, 3, Some("c")),
        ],
    );
    let mut cfg = config(&url, "deps", OnError::Stop);
    cfg.apply.workers = 4;
    let stats = Arc::new(StreamStats::default());
    let (cancel, task) = start(cfg, &log, &stats, None);
    // Transactions 1 and 2 wait on the row locks on two workers; 3 is
    // independent and commits on a third.
    wait_for("the independent transaction", || row(4) == "d").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(row(3), "", "4 waits for 1 and 2");
    assert_eq!((row(1), row(2)), ("a0".into(), "b0".into()));
    lock1.batch_execute("ROLLBACK").await.unwrap();
    wait_for("transaction 1", || row(1) == "a1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(row(3), "", "4 still waits for 2");
    assert_eq!(row(2), "b0");
    lock2.batch_execute("ROLLBACK").await.unwrap();
    wait_for("transaction 4", || row(3) == "c").await;
    assert_eq!((row(1), row(2)), ("a2".into(), "b2".into()));
    wait_for("the checkpoint at transaction 4", || {
        pg.try_sql(&db, "SELECT \"offset\" FROM tandem_stream_checkpoint")
            .is_ok_and(|o| o.trim() == "1004")
    })
    .await;
    cancel.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(
        pg.sql(&db, &format!("SELECT count(*) FROM {}", markers::TABLE))
            .trim(),
        "0"
    );
}

#[tokio::test]
async fn a_restart_skips_transactions_committed_above_the_checkpoint() {
    let db = pg_db("stream_par_skip");
    let pg = servers::postgres();
    // A previous run committed transaction 3 (its rows were removed here to
    // make a second application visible) but not 1, 2, 4, 5.
    pg.sql(&db, &markers::create_sql(Dialect::Postgres));
    pg.sql(&db, &format!("ALTER TABLE {} OWNER TO app", markers::TABLE));
    pg.sql(
        &db,
        &markers::mark_sql(Dialect::Postgres, "default", &[super::apply::pos(3)]).join(";"),
    );
    let log = Log::default();
    let t = accounts();
    for n in 1..=5 {
        log.push(n, vec![insert(&t, n as i128, Some("x"))]);
    }
    let mut cfg = config(&pg.url(&db), "skip", OnError::Stop);
    cfg.apply.workers = 4;
    let stats = Arc::new(StreamStats::default());
    let (cancel, task) = start(cfg, &log, &stats, None);
    wait_for("the checkpoint at transaction 5", || {
        pg.try_sql(&db, "SELECT \"offset\" FROM tandem_stream_checkpoint")
            .is_ok_and(|o| o.trim() == "1005")
    })
    .await;
    assert_eq!(
        pg.sql(
            &db,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM accounts"
        )
        .trim(),
        "1,2,4,5"
    );
    assert_eq!(
        pg.sql(&db, &format!("SELECT count(*) FROM {}", markers::TABLE))
            .trim(),
        "0",
        "the marker is gone once the checkpoint passed it"
    );
    cancel.cancel();
    task.await.unwrap().unwrap();
}
