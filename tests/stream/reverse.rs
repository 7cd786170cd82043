//! The reverse stream on real servers: changes committed on PostgreSQL,
//! read from a logical slot (pgoutput), applied to MariaDB by the same
//! applier — alone, across a hard kill, with a transaction MariaDB refuses,
//! and inside a `new_primary` proxy. DDL carried back in order (the proxy's
//! `tandem.ddl` markers) is in `reverse_ddl.rs`, on the same `Pair`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tandem::config::Config;
use tandem::dualwrite::drift::DriftLog;
use tandem::migrate::verify::{self, VerifyOptions};
use tandem::migrate::{Side, Sides};
use tandem::stream::apply::StreamStats;
use tandem::stream::reverse::{self, ReverseOpener};
use tandem::stream::run::{self, StreamError};
use tokio_util::sync::CancellationToken;

use crate::common::config::TestConfig;
use crate::common::pair::DbPair;
use crate::common::{self, servers};

#[path = "reverse_ddl.rs"]
mod ddl;

/// A proxy from `toml` with its change streams started, as `tandem serve`
/// starts them (in `new_primary` the reverse stream).
async fn start_streaming(toml: &str) -> (common::Proxy, tokio_util::task::TaskTracker) {
    let proxy = common::start_proxy_with(toml).await;
    let tasks = tokio_util::task::TaskTracker::new();
    assert!(
        tandem::stream::source::spawn(&proxy.state, &tasks, proxy.shutdown.clone(), false)
            .await
            .unwrap()
    );
    tasks.close();
    (proxy, tasks)
}

/// Stops what `start_streaming` started: the streams end, then the proxy.
async fn stop_streaming(proxy: common::Proxy, tasks: tokio_util::task::TaskTracker) {
    proxy.shutdown.cancel();
    tasks.wait().await;
    let _ = proxy.task.await;
}

struct Pair {
    my: String,
    pg: String,
    toml: String,
    /// What `toml` was written from.
    base: TestConfig,
    dir: std::path::PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // A slot left behind would keep the shared server's WAL.
        if let Ok(names) = reverse::Names::from_config(&self.config()) {
            let _ = servers::postgres().try_sql(
                &self.pg,
                &format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{}' AND NOT active",
                    names.slot
                ),
            );
        }
    }
}

fn pair(prefix: &str, on_error: &str) -> Pair {
    let db = DbPair::new(prefix);
    let base = db
        .binlog_config("new_primary", 500)
        .mirror("on_error", &format!("\"{on_error}\""));
    let toml = base.toml();
    let (my, pg, dir) = db.into_parts();
    Pair {
        my,
        pg,
        toml,
        base,
        dir,
    }
}

impl Pair {
    fn config(&self) -> Config {
        Config::from_toml(&self.toml, |k| std::env::var(k).ok()).expect("config")
    }

    fn pg_sql(&self, sql: &str) -> String {
        servers::postgres().sql(&self.pg, sql).trim().to_string()
    }

    fn my_sql(&self, sql: &str) {
        servers::mariadb().root_sql(&format!("USE `{}`; {sql}", self.my));
    }

    async fn pg_client(&self) -> tokio_postgres::Client {
        let (client, conn) =
            tokio_postgres::connect(&servers::postgres().url(&self.pg), tokio_postgres::NoTls)
                .await
                .expect("postgres");
        tokio::spawn(conn);
        client
    }

    /// Starts the reverse stream and waits until it has reached
    /// PostgreSQL's current position.
    async fn start_caught_up(&self) -> (Arc<StreamStats>, Running) {
        let stats = Arc::new(StreamStats::default());
        let running = self.start(&stats);
        wait_caught_up(self, &stats, Duration::from_secs(30)).await;
        (stats, running)
    }

    /// Starts the reverse stream as its own task.
    fn start(&self, stats: &Arc<StreamStats>) -> Running {
        let config = self.config();
        let opener = Arc::new(ReverseOpener::from_config(&config, Arc::clone(stats)).unwrap());
        let cfg = reverse::run_config(&config, Arc::new(Default::default())).unwrap();
        let drift = DriftLog::start(config.mirror.drift_log.clone());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run::run(
            cfg,
            opener,
            Arc::clone(stats),
            Some(drift),
            cancel.clone(),
        ));
        Running { cancel, task }
    }

    /// MariaDB matches PostgreSQL value by value (`tandem verify`, the new
    /// side authoritative).
    async fn assert_identical(&self) {
        let sides = Sides::from_config(&self.config()).unwrap();
        let report = verify::run(
            &sides,
            &VerifyOptions {
                tables: None,
                sample: 0,
                chunk_rows: 1000,
                repair: false,
                authoritative: Side::New,
                stream_wait_ms: 0,
            },
        )
        .await
        .expect("verify runs");
        for t in &report.tables {
            eprintln!(
                "{}: {} rows old, {} rows new, clean {}",
                t.table,
                t.rows_old,
                t.rows_new,
                t.clean()
            );
        }
        assert!(
            report.clean,
            "{}",
            serde_json::to_string_pretty(&report).unwrap()
        );
    }

    async fn my_count(&self, sql: &str) -> u64 {
        let mut c = common::direct(&self.my).await;
        let n: Option<u64> = c.query_first(sql).await.unwrap();
        n.unwrap_or(0)
    }
}

struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), StreamError>>,
}

/// PostgreSQL's WAL insert position: past every committed transaction.
fn insert_position(p: &Pair) -> u64 {
    tandem::stream::parse_lsn(&p.pg_sql("SELECT pg_current_wal_insert_lsn()")).expect("lsn")
}

/// Waits until the stream has a checkpoint at or past PostgreSQL's WAL
/// insert position (everything committed so far is in MariaDB). Not
/// `pg_current_wal_lsn()`: the test server commits asynchronously, and the
/// write position it reports can still be short of a transaction that has
/// committed and is visible.
async fn wait_caught_up(p: &Pair, stats: &StreamStats, limit: Duration) {
    let target = insert_position(p);
    let started = Instant::now();
    loop {
        let snap = stats.snapshot();
        if snap
            .checkpoint
            .as_ref()
            .and_then(|c| c.as_lsn())
            .is_some_and(|l| l >= target)
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "reverse stream did not reach {}: {:?} (state {}, {:?})",
            tandem::stream::lsn_text(target),
            snap.checkpoint,
            snap.state,
            snap.error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until MariaDB's own checkpoint row for the reverse stream reaches
/// PostgreSQL's current WAL position, then reads `count_sql` on the same
/// MariaDB connection. The checkpoint commits in the transaction that
/// applies the rows, so everything PostgreSQL committed before the call is
/// visible then (or was skipped). The stream's in-memory stats are not
/// used: they are what the applier believes, not what MariaDB shows.
async fn count_once_applied(p: &Pair, count_sql: &str, limit: Duration) -> u64 {
    let target = insert_position(p);
    let stream_id = reverse::Names::from_config(&p.config()).unwrap().stream_id;
    let sql = format!(
        "SELECT file, `offset` FROM {} WHERE stream_id = ?",
        tandem::stream::apply::checkpoint::TABLE
    );
    let mut c = common::direct(&p.my).await;
    let started = Instant::now();
    loop {
        let row: Option<(String, u64)> = c.exec_first(&sql, (&stream_id,)).await.unwrap();
        let at = row.as_ref().and_then(|(file, offset)| {
            tandem::stream::Position {
                file: file.clone(),
                offset: *offset,
                gtid: None,
            }
            .as_lsn()
        });
        if at.is_some_and(|l| l >= target) {
            let n: Option<u64> = c.query_first(count_sql).await.unwrap();
            return n.unwrap_or(0);
        }
        assert!(
            started.elapsed() < limit,
            "MariaDB's reverse checkpoint did not reach {} within {limit:?}: it is at {:?} ({row:?})",
            tandem::stream::lsn_text(target),
            at.map(tandem::stream::lsn_text)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const MY_ITEMS: &str = "CREATE TABLE items (id int NOT NULL PRIMARY KEY, big bigint NULL, \
    amount decimal(14,3) NULL, name text NULL, code varchar(20) NULL, flag tinyint(1) NULL, \
    at datetime(6) NULL, day date NULL, raw varbinary(64) NULL, doc json NULL)";
const PG_ITEMS: &str = "CREATE TABLE items (id int NOT NULL PRIMARY KEY, big bigint, \
    amount numeric(14,3), name text, code varchar(20), flag boolean, \
    at timestamp(6), day date, raw bytea, doc json)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_arrive_identical_on_mariadb() {
    let p = pair("rev_types", "stop");
    p.my_sql(&format!(
        "{MY_ITEMS}; CREATE TABLE notes (a int NULL, b text NULL); \
         CREATE TABLE scratch (id int NOT NULL PRIMARY KEY, v text NULL); \
         CREATE TABLE pairs (k1 int NOT NULL, k2 varchar(10) NOT NULL, v int NULL, PRIMARY KEY (k1, k2))"
    ));
    p.pg_sql(&format!(
        "{PG_ITEMS}; CREATE TABLE notes (a int, b text); ALTER TABLE notes REPLICA IDENTITY FULL; \
         CREATE TABLE scratch (id int PRIMARY KEY, v text); \
         CREATE TABLE pairs (k1 int, k2 varchar(10), v int, PRIMARY KEY (k1, k2))"
    ));
    // Rows from before the stream existed are not its business.
    p.pg_sql("INSERT INTO scratch VALUES (1, 'before')");
    p.my_sql("INSERT INTO scratch VALUES (1, 'before')");

    let (stats, running) = p.start_caught_up().await;
    let names = reverse::Names::from_config(&p.config()).unwrap();
    assert_eq!(
        p.pg_sql(&format!(
            "SELECT count(*) FROM pg_publication_tables WHERE pubname = '{}'",
            names.publication
        )),
        "4",
        "the publication lists the tables both sides have"
    );

    let pg = p.pg_client().await;
    // A multi-statement transaction with every common type, NULLs, quotes,
    // a NUL byte, non-ASCII text, a negative numeric, nested JSON.
    pg.batch_execute(
        "BEGIN;
         INSERT INTO items VALUES
           (1, 9007199254740993, 12345678901.125, 'plain', 'a''b', true, '2024-02-29 23:59:59.123456', '2024-02-29', '\\x00ff10'::bytea, '{\"k\": [1, 2, {\"z\": null}], \"s\": \"é\"}'),
           (2, -5, -0.5, 'été \\ back\\slash', NULL, false, '1970-01-01 00:00:00', '1999-12-31', ''::bytea, '[]'),
           (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
         INSERT INTO notes VALUES (1, 'one'), (1, 'one'), (2, NULL);
         INSERT INTO pairs VALUES (1, 'a', 10), (1, 'b', 20);
         COMMIT;",
    )
    .await
    .unwrap();
    // Updates, a key change, a composite key change, deletes, one per
    // transaction and several in one.
    pg.batch_execute(
        "UPDATE items SET name = 'changed', amount = amount * 2, doc = '{\"v\": 2}' WHERE id = 1",
    )
    .await
    .unwrap();
    pg.batch_execute("UPDATE items SET id = 10, code = 'moved' WHERE id = 2")
        .await
        .unwrap();
    pg.batch_execute(
        "BEGIN; UPDATE pairs SET k2 = 'c' WHERE k1 = 1 AND k2 = 'a'; DELETE FROM items WHERE id = 3;
         UPDATE notes SET b = 'uno' WHERE a = 1 AND b = 'one' AND ctid = (SELECT min(ctid) FROM notes WHERE a = 1);
         DELETE FROM notes WHERE a = 2; COMMIT;",
    )
    .await
    .unwrap();
    // A rolled-back transaction leaves no trace.
    pg.batch_execute("BEGIN; INSERT INTO items (id) VALUES (99); ROLLBACK;")
        .await
        .unwrap();
    // Inserted and deleted again in one transaction; a truncate.
    pg.batch_execute(
        "BEGIN; INSERT INTO items (id, name) VALUES (50, 'brief'); DELETE FROM items WHERE id = 50; COMMIT;",
    )
    .await
    .unwrap();
    pg.batch_execute("BEGIN; INSERT INTO scratch VALUES (2, 'x'); TRUNCATE scratch; INSERT INTO scratch VALUES (3, 'after'); COMMIT;")
        .await
        .unwrap();

    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    p.assert_identical().await;
    assert_eq!(p.my_count("SELECT count(*) FROM items").await, 2);
    assert_eq!(
        p.my_count("SELECT count(*) FROM items WHERE id = 10 AND code = 'moved' AND name = 'été \\\\ back\\\\slash'").await,
        1
    );
    assert_eq!(
        p.my_count("SELECT count(*) FROM items WHERE id = 1 AND raw = UNHEX('00ff10') AND amount = 24691357802.250 AND flag = 1 AND at = '2024-02-29 23:59:59.123456'").await,
        1
    );
    assert_eq!(p.my_count("SELECT count(*) FROM notes").await, 2);
    assert_eq!(
        p.my_count("SELECT count(*) FROM notes WHERE b = 'uno'")
            .await,
        1
    );
    assert_eq!(p.my_count("SELECT count(*) FROM scratch").await, 1);
    assert_eq!(
        p.my_count("SELECT count(*) FROM pairs WHERE k2 IN ('b', 'c')")
            .await,
        2
    );
    let snap = stats.snapshot();
    assert_eq!(snap.state, "applying");
    assert!(snap.lease_holder.is_some());
    eprintln!(
        "reverse: {} transactions, {} rows, retained WAL {:?}",
        stats
            .transactions
            .load(std::sync::atomic::Ordering::Relaxed),
        stats.rows.load(std::sync::atomic::Ordering::Relaxed),
        snap.retention_bytes
    );
    running.cancel.cancel();
    running.task.await.unwrap().unwrap();
    assert_eq!(stats.snapshot().state, "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_stream_resumes_from_its_checkpoint_without_loss_or_duplicates() {
    let p = pair("rev_restart", "stop");
    // No key: a duplicated insert would show as a second row.
    p.my_sql("CREATE TABLE log (n int NOT NULL, note text NULL)");
    p.pg_sql("CREATE TABLE log (n int NOT NULL, note text); ALTER TABLE log REPLICA IDENTITY FULL");
    let stats = Arc::new(StreamStats::default());
    let first = p.start(&stats);
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;

    const TOTAL: i32 = 600;
    let pg = p.pg_client().await;
    let writer = tokio::spawn(async move {
        for n in 0..TOTAL {
            pg.execute("INSERT INTO log VALUES ($1, 'row')", &[&n])
                .await
                .unwrap();
            if n % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    // Kill the applier (no graceful stop) while rows stream in.
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.my_count("SELECT count(*) FROM log").await < 150 {
        assert!(Instant::now() < deadline, "no rows arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.task.abort();
    let _ = first.task.await;
    let at_kill = p.my_count("SELECT count(*) FROM log").await;
    // A second process, while the writer keeps going.
    let stats2 = Arc::new(StreamStats::default());
    let second = p.start(&stats2);
    writer.await.unwrap();
    wait_caught_up(&p, &stats2, Duration::from_secs(60)).await;
    let rows = p.my_count("SELECT count(*) FROM log").await;
    let distinct = p.my_count("SELECT count(DISTINCT n) FROM log").await;
    eprintln!("killed at {at_kill} rows; after the restart {rows} rows, {distinct} distinct");
    assert!(at_kill < TOTAL as u64, "the kill happened mid-stream");
    assert_eq!(distinct, TOTAL as u64, "0 missing");
    assert_eq!(rows, TOTAL as u64, "0 duplicated");
    p.assert_identical().await;
    second.cancel.cancel();
    second.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_mariadb_refuses_stops_the_stream_or_is_skipped() {
    let p = pair("rev_refuse", "stop");
    // MariaDB is stricter here than PostgreSQL: the code column is shorter.
    p.my_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, code varchar(3) NULL)");
    p.pg_sql("CREATE TABLE t (id int PRIMARY KEY, code varchar(20))");
    let (stats, running) = p.start_caught_up().await;
    p.pg_sql("INSERT INTO t VALUES (1, 'ok')");
    p.pg_sql("BEGIN; INSERT INTO t VALUES (2, 'fine'); INSERT INTO t VALUES (3, 'far too long'); COMMIT;");
    p.pg_sql("INSERT INTO t VALUES (4, 'yes')");
    let result = tokio::time::timeout(Duration::from_secs(30), running.task)
        .await
        .expect("the stream stops by itself")
        .unwrap();
    let err = result.expect_err("on_error = stop");
    let text = err.to_string();
    eprintln!("stopped with: {text}");
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("too long"), "{text}");
    let snap = stats.snapshot();
    assert_eq!(snap.state, "stopped");
    // The transaction is all or nothing, and nothing after it was applied.
    assert_eq!(p.my_count("SELECT count(*) FROM t").await, 1);

    // on_error = "skip": the refused transaction goes to the drift log with
    // its rows, the stream goes on.
    let skip = Pair {
        my: p.my.clone(),
        pg: p.pg.clone(),
        toml: p.base.clone().mirror("on_error", "\"skip\"").toml(),
        base: p.base.clone(),
        dir: p.dir.clone(),
    };
    let stats2 = Arc::new(StreamStats::default());
    let running = skip.start(&stats2);
    // What the assertion needs: MariaDB's checkpoint (committed with the
    // rows) past everything PostgreSQL committed, read on one connection.
    let applied =
        count_once_applied(&skip, "SELECT count(*) FROM t", Duration::from_secs(30)).await;
    assert_eq!(
        applied,
        2,
        "1 and 4 applied, 2 and 3 skipped together (stream state {:?})",
        stats2.snapshot().state
    );
    assert_eq!(p.my_count("SELECT count(*) FROM t WHERE id = 4").await, 1);
    assert_eq!(stats2.skipped.load(std::sync::atomic::Ordering::Relaxed), 1);
    let drift = common::settled_jsonl(&p.dir.join("drift.jsonl"), 1).await;
    let line = drift.last().expect("a drift record").to_string();
    assert!(line.contains("far too long"), "{line}");
    running.cancel.cancel();
    running.task.await.unwrap().unwrap();
    std::mem::forget(skip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_proxy_copies_writes_back_with_the_reverse_stream() {
    let p = pair("rev_proxy", "stop");
    p.my_sql("CREATE TABLE accounts (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, owner varchar(40) NOT NULL, balance decimal(12,2) NOT NULL, opened datetime(6) NULL, active tinyint(1) NOT NULL DEFAULT 1)");
    p.pg_sql("CREATE TABLE accounts (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, owner varchar(40) NOT NULL, balance numeric(12,2) NOT NULL, opened timestamp(6), active boolean NOT NULL DEFAULT true)");
    let (proxy, tasks) = start_streaming(&p.toml).await;
    assert!(
        proxy.state.mirror.load_full().is_none(),
        "no statement mirror when the reverse stream copies back"
    );
    wait_caught_up(&p, &proxy.state.reverse, Duration::from_secs(30)).await;
    assert_eq!(
        proxy.state.stream.snapshot().state,
        "",
        "the forward stream does not run in new_primary"
    );

    let mut c = common::via(&proxy, &p.my).await;
    for i in 0..40u32 {
        c.exec_drop(
            "INSERT INTO accounts (owner, balance, opened) VALUES (?, ?, '2024-05-01 10:00:00.5')",
            (format!("owner {i}"), f64::from(i) * 1.25),
        )
        .await
        .unwrap();
    }
    c.query_drop("START TRANSACTION").await.unwrap();
    c.query_drop("UPDATE accounts SET balance = balance + 100 WHERE id % 4 = 0")
        .await
        .unwrap();
    c.query_drop("DELETE FROM accounts WHERE id % 7 = 0")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("UPDATE accounts SET active = 0, owner = 'o''neil' WHERE id = 3")
        .await
        .unwrap();
    wait_caught_up(&p, &proxy.state.reverse, Duration::from_secs(30)).await;
    assert_eq!(p.pg_sql("SELECT count(*) FROM accounts"), "35");
    assert_eq!(p.my_count("SELECT count(*) FROM accounts").await, 35);
    p.assert_identical().await;
    // /status and /metrics show the reverse stream, with the slot's WAL.
    let admin = tandem::admin::start(
        "127.0.0.1:0",
        Arc::clone(&proxy.state),
        proxy.shutdown.clone(),
    )
    .await
    .unwrap();
    let mut retained = false;
    for _ in 0..150 {
        retained = proxy.state.reverse.snapshot().retention_bytes.is_some();
        if retained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(retained, "the slot's retained WAL is measured");
    let status = super::e2e::http_get(admin, "/status").await;
    let body = &status[status.find('{').expect("json body")..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    let rev = &json["reverse_stream"];
    assert_eq!(rev["state"], "applying", "{rev}");
    assert_eq!(rev["checkpoint"]["file"], "pg-wal", "{rev}");
    assert!(rev["slot_retained_wal_bytes"].is_u64(), "{rev}");
    assert!(rev["rows_applied"].as_u64().unwrap_or(0) >= 35, "{rev}");
    assert!(json["stream"].is_null(), "no forward stream here: {json}");
    let metrics = super::e2e::http_get(admin, "/metrics").await;
    assert!(
        metrics.contains("tandem_reverse_stream_applying 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tandem_reverse_stream_slot_retained_wal_bytes "),
        "{metrics}"
    );
    assert!(!metrics.contains("tandem_stream_applying"), "{metrics}");
    // `tandem check` reports the slot and what it retains.
    let lines = reverse::setup::check_lines(&p.config(), true).await;
    for (ok, line) in &lines {
        eprintln!("check: {ok} {line}");
    }
    assert!(lines.iter().all(|(ok, _)| *ok), "{lines:?}");
    assert!(lines.iter().any(|(_, l)| l.contains("wal_level = logical")));
    assert!(lines
        .iter()
        .any(|(_, l)| l.contains("retains") && l.contains("pg_drop_replication_slot")));
    let state = Arc::clone(&proxy.state);
    stop_streaming(proxy, tasks).await;
    assert_eq!(state.reverse.snapshot().state, "stopped");
}

/// A lone proxy whose `phase` is edited from `dual_write` to `new_primary`
/// (no `tandem cutover`): the reload starts the reverse stream's slot before
/// the new phase serves a write, so the first writes after the flip reach
/// MariaDB too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phase_edit_to_new_primary_starts_the_reverse_stream_before_the_first_write() {
    let mut p = pair("rev_edit", "stop");
    p.toml = p
        .toml
        .replace("phase = \"new_primary\"", "phase = \"dual_write\"")
        + "[fleet]\nenabled = false\n";
    p.toml = p.toml.replace("[mirror]\n", "[mirror]\nserver_id = 377\n");
    p.my_sql("CREATE TABLE k (id int NOT NULL PRIMARY KEY, v varchar(20) NOT NULL)");
    p.pg_sql("CREATE TABLE k (id int PRIMARY KEY, v varchar(20) NOT NULL)");
    let (proxy, tasks) = start_streaming(&p.toml).await;
    // The forward stream starts at the primary's position when it has no
    // checkpoint: wait for it before writing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.state.stream.snapshot().checkpoint.is_none() {
        assert!(Instant::now() < deadline, "no forward checkpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // dual_write: the forward stream carries MariaDB's writes.
    let mut c = common::via(&proxy, &p.my).await;
    c.query_drop("INSERT INTO k VALUES (1, 'before')")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.pg_sql("SELECT count(*) FROM k") != "1" {
        assert!(Instant::now() < deadline, "forward stream did not apply");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(c);
    let path = p.dir.join("proxy.toml");
    std::fs::write(
        &path,
        p.toml
            .replace("phase = \"dual_write\"", "phase = \"new_primary\""),
    )
    .unwrap();
    tandem::reload::apply(&path, &proxy.state).await.unwrap();
    // Written at once, before the reverse task noticed the phase.
    let mut c = common::via(&proxy, &p.my).await;
    for i in 2..=20 {
        c.exec_drop("INSERT INTO k VALUES (?, 'after')", (i,))
            .await
            .unwrap();
    }
    c.query_drop("UPDATE k SET v = 'changed' WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(p.pg_sql("SELECT count(*) FROM k"), "20");
    wait_caught_up(&p, &proxy.state.reverse, Duration::from_secs(30)).await;
    assert_eq!(p.my_count("SELECT count(*) FROM k").await, 20);
    assert_eq!(
        p.my_count("SELECT count(*) FROM k WHERE id = 1 AND v = 'changed'")
            .await,
        1
    );
    p.assert_identical().await;
    stop_streaming(proxy, tasks).await;
}

/// A backlog written on PostgreSQL while no applier ran (20,000 rows in 400
/// transactions) is caught up; the rate is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_rate_of_the_reverse_stream() {
    let p = pair("rev_rate", "stop");
    p.my_sql("CREATE TABLE r (id int NOT NULL PRIMARY KEY, v varchar(40) NOT NULL, n decimal(10,2) NULL)");
    p.pg_sql("CREATE TABLE r (id int PRIMARY KEY, v varchar(40) NOT NULL, n numeric(10,2))");
    let stats = Arc::new(StreamStats::default());
    let first = p.start(&stats);
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    first.cancel.cancel();
    first.task.await.unwrap().unwrap();
    let pg = p.pg_client().await;
    for t in 0..400 {
        pg.batch_execute(&format!(
            "INSERT INTO r SELECT g, 'row ' || g, g / 7.0 FROM generate_series({}, {}) g",
            t * 50,
            t * 50 + 49
        ))
        .await
        .unwrap();
    }
    let stats = Arc::new(StreamStats::default());
    let started = Instant::now();
    let second = p.start(&stats);
    wait_caught_up(&p, &stats, Duration::from_secs(120)).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(p.my_count("SELECT count(*) FROM r").await, 20_000);
    eprintln!(
        "reverse catch-up: 20000 rows in 400 transactions in {secs:.2} s ({:.0} rows/s, {} target transactions)",
        20_000.0 / secs,
        stats.groups.load(std::sync::atomic::Ordering::Relaxed)
    );
    second.cancel.cancel();
    second.task.await.unwrap().unwrap();
}

/// The applier stalls (MariaDB's table is locked) while PostgreSQL commits
/// more single-row transactions than one peek returns (`PEEK_CHANGES` rows):
/// the source re-reads what it already handed over, a round made only of such
/// re-read transactions must not claim the WAL after its last row as seen.
/// Once the lock goes, every row is on MariaDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_applier_behind_more_than_one_peek_loses_nothing() {
    let p = pair("rev_stall", "stop");
    p.my_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v int NULL)");
    p.pg_sql("CREATE TABLE t (id int PRIMARY KEY, v int)");
    let (stats, running) = p.start_caught_up().await;

    // The applier's next commit waits on this lock.
    let mut lock = common::direct(&p.my).await;
    lock.query_drop("LOCK TABLES t WRITE").await.unwrap();
    let pg = p.pg_client().await;
    const ROWS: i64 = 3_000; // 4 pgoutput rows each: more than two peeks
    for id in 1..=ROWS {
        pg.execute("INSERT INTO t VALUES ($1, $1)", &[&(id as i32)])
            .await
            .unwrap();
    }
    // Long enough for the source's 1 s wait to pass and a round to re-read.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    lock.query_drop("UNLOCK TABLES").await.unwrap();
    drop(lock);

    wait_caught_up(&p, &stats, Duration::from_secs(60)).await;
    let on_my = p.my_count("SELECT COUNT(*) FROM t").await;
    assert_eq!(
        on_my, ROWS as u64,
        "every row written on PostgreSQL is on MariaDB"
    );
    p.assert_identical().await;
    running.cancel.cancel();
    running.task.await.unwrap().unwrap();
}
