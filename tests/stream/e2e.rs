//! The whole stream on real servers: MariaDB's binlog (ROW) → the binlog
//! source → the applier → PostgreSQL, inside a proxy in `dual_write`, and as
//! `tandem mirror` processes that are killed and replaced.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tandem::config::Config;
use tandem::migrate::verify::{self, VerifyOptions};
use tandem::migrate::{Side, Sides};
use tandem::stream::apply::StreamStats;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::config::TestConfig;
use crate::common::pair::DbPair;
use crate::common::{self, servers};

/// A MariaDB database and a PostgreSQL database, and the proxy.toml that
/// mirrors one into the other through the binlog.
pub struct Pair {
    pub my: String,
    pub pg: String,
    pub toml: String,
    /// What `toml` was written from, for tests that need one more setting.
    pub base: TestConfig,
    pub dir: std::path::PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn pair(prefix: &str, server_id: u32) -> Pair {
    let db = DbPair::new(prefix);
    let base = db
        .binlog_config("dual_write", 1000)
        .mirror("server_id", &server_id.to_string());
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
    pub fn config(&self) -> Config {
        Config::from_toml(&self.toml, |k| std::env::var(k).ok()).expect("config")
    }

    pub fn pg_sql(&self, sql: &str) -> String {
        servers::postgres().sql(&self.pg, sql).trim().to_string()
    }

    /// Compares every table value by value (`tandem verify`).
    pub async fn assert_identical(&self) {
        let sides = Sides::from_config(&self.config()).unwrap();
        let report = verify::run(
            &sides,
            &VerifyOptions {
                tables: None,
                sample: 0,
                chunk_rows: 1000,
                repair: false,
                authoritative: Side::Old,
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
}

/// The primary's end of binlog.
async fn master_position(conn: &mut mysql_async::Conn) -> (String, u64) {
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .expect("binlog on");
    (row.get(0).unwrap(), row.get(1).unwrap())
}

/// Waits until the stream's checkpoint reaches the primary's current end.
pub async fn wait_caught_up(stats: &StreamStats, conn: &mut mysql_async::Conn, limit: Duration) {
    let (file, offset) = master_position(conn).await;
    let started = Instant::now();
    loop {
        let snap = stats.snapshot();
        if let Some(cp) = &snap.checkpoint {
            if (cp.file.as_str(), cp.offset) >= (file.as_str(), offset) {
                return;
            }
        }
        assert!(
            started.elapsed() < limit,
            "stream did not catch up with {file}:{offset}: {:?} ({:?})",
            snap.checkpoint,
            snap.error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A proxy started from `toml` with its change stream running beside it (as
/// `tandem serve` starts it; `tasks` owns the stream task), once the stream
/// stored its first checkpoint.
pub async fn streaming_proxy(toml: &str) -> (common::Proxy, TaskTracker) {
    let proxy = common::start_proxy_with(toml).await;
    let tasks = TaskTracker::new();
    assert!(
        tandem::stream::source::spawn(&proxy.state, &tasks, proxy.shutdown.clone(), false)
            .await
            .unwrap()
    );
    tasks.close();
    wait_checkpoint(&proxy.state.stream).await;
    (proxy, tasks)
}

pub async fn wait_checkpoint(stats: &StreamStats) {
    for _ in 0..400 {
        if stats.snapshot().checkpoint.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the stream stored no checkpoint: {:?}",
        stats.snapshot().error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_write_from_the_binlog_keeps_every_table_identical() {
    let p = pair("stream_e2e", 101);
    let proxy = common::start_proxy_with(&p.toml).await;
    assert!(
        proxy.state.mirror.load_full().is_none(),
        "no statement mirror in binlog mode"
    );
    let tasks = TaskTracker::new();
    assert!(
        tandem::stream::source::spawn(&proxy.state, &tasks, proxy.shutdown.clone(), false)
            .await
            .unwrap()
    );
    tasks.close();
    wait_checkpoint(&proxy.state.stream).await;

    // DDL through the proxy reaches PostgreSQL through the stream.
    let mut c = common::via(&proxy, &p.my).await;
    c.query_drop(
        "CREATE TABLE customers (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(50) NOT NULL, \
         balance decimal(12,2) NOT NULL DEFAULT 0, created datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), \
         note text NULL, vip tinyint(1) NOT NULL DEFAULT 0)",
    )
    .await
    .unwrap();
    c.query_drop(
        "CREATE TABLE orders (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, customer_id int NOT NULL, \
         amount decimal(10,2) NOT NULL, at timestamp(3) NULL DEFAULT NULL, code char(8) NULL, data varbinary(16) NULL)",
    )
    .await
    .unwrap();
    c.query_drop("CREATE TABLE audit (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, customer_id int, action varchar(20))")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE big_orders (id bigint NOT NULL PRIMARY KEY, amount decimal(10,2))")
        .await
        .unwrap();
    // A trigger made directly on MariaDB: its rows come through the binlog,
    // the trigger itself is not created on PostgreSQL.
    servers::mariadb().root_sql(&format!(
        "CREATE TRIGGER `{}`.orders_ai AFTER INSERT ON `{}`.orders FOR EACH ROW \
         INSERT INTO `{}`.audit (customer_id, action) VALUES (NEW.customer_id, 'order')",
        p.my, p.my, p.my
    ));

    // Multi-row INSERT … RETURNING through the proxy.
    let ids: Vec<i32> = c
        .query("INSERT INTO customers (name, balance, note) VALUES ('ann', 10.5, NULL), ('bob', 0, 'x''y'), ('cy', -3.25, '\u{e9}t\u{e9}') RETURNING id")
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);

    // Four writers: two through the proxy, two straight on MariaDB.
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let direct = w % 2 == 1;
        let opts = if direct {
            common::direct_opts(&p.my)
        } else {
            common::proxy_opts(&proxy, &p.my)
        };
        writers.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            for i in 0..150u32 {
                let name = format!("w{w}-{i}");
                conn.exec_drop("INSERT INTO customers (name, balance, vip) VALUES (?, ?, ?)", (&name, i * 3, i % 2))
                    .await
                    .unwrap();
                let cid: u64 = conn.last_insert_id().unwrap_or(1);
                conn.query_drop("START TRANSACTION").await.unwrap();
                conn.exec_drop(
                    "INSERT INTO orders (customer_id, amount, at, code, data) VALUES (?, ?, NOW(3), LEFT(UUID(), 8), UNHEX('00ff10'))",
                    (cid, f64::from(i) + 0.25),
                )
                .await
                .unwrap();
                conn.exec_drop("UPDATE customers SET balance = balance + 1.5, note = CONCAT('n', ?) WHERE id = ?", (i, cid))
                    .await
                    .unwrap();
                conn.query_drop("COMMIT").await.unwrap();
                if i % 10 == 0 {
                    conn.exec_drop("DELETE FROM customers WHERE id = ? AND vip = 1", (cid,)).await.unwrap();
                }
                if i % 25 == 0 {
                    // A key change.
                    conn.exec_drop("UPDATE customers SET id = -id WHERE id = ?", (cid,)).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut d0 = common::direct(&p.my).await;
    // INSERT … SELECT and a multi-row UPDATE, through the proxy.
    c.query_drop(
        "INSERT INTO big_orders (id, amount) SELECT id, amount FROM orders WHERE amount > 100",
    )
    .await
    .unwrap();
    // CREATE TABLE … SELECT, straight on MariaDB: one transaction of the
    // CREATE and its rows in the binlog.
    d0.query_drop(
        "CREATE TABLE order_copy (PRIMARY KEY (id)) SELECT id, amount FROM orders WHERE id <= 50",
    )
    .await
    .unwrap();
    c.query_drop("UPDATE orders SET amount = amount * 2 WHERE customer_id % 3 = 0")
        .await
        .unwrap();

    let mut d = common::direct(&p.my).await;
    wait_caught_up(&proxy.state.stream, &mut d, Duration::from_secs(60)).await;
    assert_eq!(
        p.pg_sql("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"),
        "0"
    );
    let audit: u64 = d
        .query_first("SELECT count(*) FROM audit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audit, 600, "the trigger wrote one audit row per order");
    p.assert_identical().await;
    let s = &proxy.state.stream;
    eprintln!(
        "stream: {} transactions, {} rows in {} target transactions",
        s.transactions.load(Ordering::Relaxed),
        s.rows.load(Ordering::Relaxed),
        s.groups.load(Ordering::Relaxed)
    );
    // cutover-check gates on the stream (not the statement mirror's queue):
    // caught up now; behind once a committed write has no stream to carry it.
    let config = p.config();
    let sides = Sides::from_config(&config).unwrap();
    let stream_item = |report: &tandem::stream::cutover::CutoverReport| {
        report
            .items
            .iter()
            .find(|i| i.text.starts_with("stream:"))
            .cloned()
            .expect("a stream item")
    };
    let report = tandem::stream::cutover::run(&config, &sides, false)
        .await
        .unwrap();
    let item = stream_item(&report);
    assert!(item.ok, "{item:?}");
    assert!(!report
        .items
        .iter()
        .any(|i| i.text.starts_with("mirror queue")));
    proxy.shutdown.cancel();
    tasks.wait().await;
    assert_eq!(proxy.state.stream.snapshot().state, "stopped");
    let _ = proxy.task.await;
    d.query_drop("INSERT INTO customers (id, name) VALUES (100000, 'after the stream stopped')")
        .await
        .unwrap();
    let report = tandem::stream::cutover::run(&config, &sides, false)
        .await
        .unwrap();
    let item = stream_item(&report);
    assert!(!item.ok && item.text.contains("did not reach"), "{item:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unavailable_for_20_s_under_load_loses_nothing() {
    let p = pair("stream_outage_e2e", 102);
    let mut d = common::direct(&p.my).await;
    d.query_drop("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(20))")
        .await
        .unwrap();
    servers::postgres().sql(
        &p.pg,
        "CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(20))",
    );
    let config = p.config();
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

    // ~800 rows/s in 10-row transactions straight on MariaDB.
    let stop = CancellationToken::new();
    let writer = {
        let stop = stop.clone();
        let opts = common::direct_opts(&p.my);
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut n = 0u32;
            while !stop.is_cancelled() {
                let values: Vec<String> = (0..10)
                    .map(|i| format!("({}, 'v{}')", n * 10 + i, n))
                    .collect();
                conn.query_drop(format!("INSERT INTO t VALUES {}", values.join(", ")))
                    .await
                    .unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(12)).await;
            }
            n * 10
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg = servers::postgres();
    pg.sql(
        "postgres",
        &format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false", p.pg),
    );
    pg.sql(
        "postgres",
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            p.pg
        ),
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let before = stats.rows.load(Ordering::Relaxed);
    pg.sql(
        "postgres",
        &format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true", p.pg),
    );
    let back = Instant::now();
    stop.cancel();
    let rows = writer.await.unwrap();
    // Other tests' writes to the same binlog are read (and skipped) too.
    wait_caught_up(&stats, &mut d, Duration::from_secs(120)).await;
    let secs = back.elapsed().as_secs_f64();
    let caught = stats.rows.load(Ordering::Relaxed) - before;
    eprintln!("after the outage: {caught} rows applied in {secs:.2} s (incl. reconnect) = {:.0} rows/s; {} retries", caught as f64 / secs, stats.retries.load(Ordering::Relaxed));
    assert_eq!(
        p.pg_sql("SELECT count(*), count(DISTINCT id) FROM t"),
        format!("{rows}|{rows}")
    );
    p.assert_identical().await;
    cancel.cancel();
    task.await.unwrap().unwrap();
}

pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The load target: four clients inserting as fast as they can
/// through the proxy for 20 s; nothing missing, and the stream's lag back
/// under 2 s within 10 s of the load ending. `/metrics` and `/status` show
/// the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_unthrottled_clients_through_the_proxy_lose_nothing() {
    let p = pair("stream_load", 104);
    let mut d = common::direct(&p.my).await;
    d.query_drop("CREATE TABLE t (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, w int NOT NULL, payload varchar(40) NOT NULL)")
        .await
        .unwrap();
    servers::postgres().sql(
        &p.pg,
        "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, w int NOT NULL, payload varchar(40) NOT NULL)",
    );
    let proxy = common::start_proxy_with(&p.toml).await;
    let tasks = TaskTracker::new();
    tandem::stream::source::spawn(&proxy.state, &tasks, proxy.shutdown.clone(), false)
        .await
        .unwrap();
    tasks.close();
    let admin = tandem::admin::start("127.0.0.1:0", proxy.state.clone(), proxy.shutdown.clone())
        .await
        .unwrap();
    wait_checkpoint(&proxy.state.stream).await;

    let load = Duration::from_secs(20);
    let started = Instant::now();
    let mut clients = Vec::new();
    for w in 0..4u32 {
        let opts = common::proxy_opts(&proxy, &p.my);
        clients.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut n = 0u64;
            while started.elapsed() < load {
                conn.exec_drop(
                    "INSERT INTO t (w, payload) VALUES (?, ?)",
                    (w, "some payload text of a row"),
                )
                .await
                .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut max_lag = 0;
    while started.elapsed() < load {
        max_lag = max_lag.max(proxy.state.stream.lag_seconds());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    let ended = Instant::now();
    wait_caught_up(&proxy.state.stream, &mut d, Duration::from_secs(10)).await;
    let drain = ended.elapsed();
    eprintln!(
        "{total} rows in 20 s through the proxy ({:.0}/s); max lag during load {max_lag} s; caught up {drain:?} after the load ended",
        total as f64 / 20.0
    );
    assert_eq!(p.pg_sql("SELECT count(*) FROM t"), total.to_string());
    p.assert_identical().await;

    let metrics = http_get(admin, "/metrics").await;
    assert!(
        metrics.contains(&format!(
            "tandem_stream_rows_applied_total {}",
            proxy.state.stream.rows.load(Ordering::Relaxed)
        )),
        "{metrics}"
    );
    assert!(metrics.contains("tandem_stream_lag_seconds 0"), "{metrics}");
    assert!(metrics.contains("tandem_stream_applying 1"), "{metrics}");
    let status = http_get(admin, "/status").await;
    let body = status.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["stream"]["state"], "applying", "{json}");
    assert!(
        json["stream"]["lease_holder"]
            .as_str()
            .unwrap_or_default()
            .contains("this process"),
        "{json}"
    );
    assert!(json["stream"]["checkpoint"]["file"].is_string(), "{json}");
    // Measured every 10 s against SHOW BINARY LOGS.
    assert!(json["stream"]["binlog_retention_bytes"].is_u64(), "{json}");
    assert!(
        metrics.contains("tandem_stream_binlog_retention_files "),
        "{metrics}"
    );
    proxy.shutdown.cancel();
    tasks.wait().await;
    let _ = proxy.task.await;
}

/// Read-your-writes with the stream: every read routed to PostgreSQL
/// (`new_percent = 100`) right after the session's own write sees that
/// write — the read waits until the stream applied the primary's position,
/// or the old backend serves it — while reads of a session that did not
/// write go to PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_the_sessions_own_write_sees_it() {
    let p = pair("stream_ryw", 107);
    let toml = p.base.clone().table("[reads]\nnew_percent = 100").toml();
    let (proxy, tasks) = streaming_proxy(&toml).await;
    let mut c = common::via(&proxy, &p.my).await;
    c.query_drop("CREATE TABLE ryw (id int PRIMARY KEY, v int NOT NULL)")
        .await
        .unwrap();
    // The table exists on PostgreSQL before reads are routed there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.pg_sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'ryw'") != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the stream did not create the table"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let routed_before = proxy.state.metrics.reads_to_new.load(Ordering::Relaxed);
    for i in 0..200i32 {
        c.exec_drop("INSERT INTO ryw VALUES (?, ?)", (i, i * 3))
            .await
            .unwrap();
        let v: Option<i32> = c
            .exec_first("SELECT v FROM ryw WHERE id = ?", (i,))
            .await
            .unwrap();
        assert_eq!(v, Some(i * 3), "read {i} right after its write");
        let n: Option<i64> = c.query_first("SELECT count(*) FROM ryw").await.unwrap();
        assert_eq!(n, Some(i64::from(i) + 1));
    }
    let routed = proxy.state.metrics.reads_to_new.load(Ordering::Relaxed) - routed_before;
    let kept = proxy
        .state
        .metrics
        .reads_kept_for_consistency
        .load(Ordering::Relaxed);
    eprintln!(
        "after a write: {routed} of 400 reads answered by PostgreSQL, {kept} kept on MariaDB"
    );
    // The second read of each pair follows one that caught up: routed.
    assert!(routed >= 100, "reads still reach PostgreSQL: {routed}");
    proxy.stop().await;
    tasks.wait().await;
}

/// A shadow comparison with the change stream waits until the stream applied
/// what the old side had committed when it answered: with the stream's
/// commit held back (its checkpoint row locked on PostgreSQL), a read of a
/// row just written is compared only once the row is there. No recheck, so
/// a comparison made too early would be logged as a mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_comparison_waits_for_the_stream() {
    let p = pair("stream_shadow", 108);
    let toml = p
        .base
        .clone()
        .table(&format!(
            "[shadow]\nsample_percent = 100\nrecheck = false\ntimeout_ms = 10000\nlog = \"{}\"",
            p.dir.join("mismatches.jsonl").display()
        ))
        .toml();
    let (proxy, tasks) = streaming_proxy(&toml).await;
    let mut c = common::via(&proxy, &p.my).await;
    c.query_drop("CREATE TABLE sh (id int PRIMARY KEY, v varchar(20) NOT NULL)")
        .await
        .unwrap();
    let mut d = common::direct(&p.my).await;
    wait_caught_up(&proxy.state.stream, &mut d, Duration::from_secs(60)).await;

    // Hold the stream's next commit: it writes the row, then waits for the
    // checkpoint row (same target transaction, invisible until commit).
    let (pg, conn) =
        tokio_postgres::connect(&servers::postgres().url(&p.pg), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    pg.batch_execute("BEGIN; SELECT * FROM tandem_stream_checkpoint FOR UPDATE")
        .await
        .unwrap();
    let stats = &proxy.state.shadow.stats;
    let compared = |s: &tandem::shadow::ShadowStats| {
        s.matched.load(Ordering::Relaxed) + s.mismatched.load(Ordering::Relaxed)
    };
    let before = compared(stats);
    c.query_drop("INSERT INTO sh VALUES (1, 'written')")
        .await
        .unwrap();
    let v: Option<String> = c
        .query_first("SELECT v FROM sh WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("written"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        compared(stats),
        before,
        "not compared while the stream is held"
    );
    pg.batch_execute("COMMIT").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while compared(stats) == before {
        assert!(Instant::now() < deadline, "the comparison never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats.mismatched.load(Ordering::Relaxed), 0);
    assert_eq!(stats.stream_not_reached.load(Ordering::Relaxed), 0);
    proxy.shutdown.cancel();
    tasks.wait().await;
    let _ = proxy.task.await;
}
