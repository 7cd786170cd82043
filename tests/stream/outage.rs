//! A real outage of the new backend: a private PostgreSQL is stopped (fast
//! shutdown, as `pg_ctl stop` does) for 20 s while clients insert ~800
//! rows/s through the proxy in `dual_write` with the binlog stream, then
//! started again on the same port and data directory. Nothing may be
//! missing, and the catch-up rate is printed (the target is
//! ≥ 30,000 rows/s).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tandem::config::Config;
use tandem::migrate::verify::{self, VerifyOptions};
use tandem::migrate::{Side, Sides};
use tokio_util::sync::CancellationToken;

use crate::common::{self, servers};
use crate::e2e::wait_caught_up;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_for_20_s_under_800_rows_per_s_loses_nothing() {
    let mut pg = servers::start_private_postgres(&|_, _| Vec::new());
    let pg_db = pg.create_database("outage");
    let my = servers::mariadb().create_database("pg_outage");
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "phase = \"dual_write\"\n{}\n[mirror]\nsource = \"binlog\"\nserver_id = 106\ndrift_log = \"{}\"\nmax_backoff_ms = 1000\n[admin]\nlisten = \"\"\n",
        common::config_for(
            &my,
            &format!(
                "[backends.new]\nkind = \"postgres\"\nurl = \"{}\"\n",
                pg.url(&pg_db)
            )
        ),
        dir.path().join("drift.jsonl").display()
    );
    let mut d = common::direct(&my).await;
    d.query_drop("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(20) NOT NULL)")
        .await
        .unwrap();
    pg.sql(
        &pg_db,
        "CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(20) NOT NULL)",
    );
    let (proxy, tasks) = super::e2e::streaming_proxy(&toml).await;
    let stats = std::sync::Arc::clone(&proxy.state.stream);

    // ~800 rows/s: a 10-row INSERT through the proxy every 12.5 ms.
    let stop = CancellationToken::new();
    let writer = {
        let stop = stop.clone();
        let opts = common::proxy_opts(&proxy, &my);
        tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut tick = tokio::time::interval(Duration::from_micros(12_500));
            let mut n = 0u32;
            while !stop.is_cancelled() {
                tick.tick().await;
                let values: Vec<String> = (0..10)
                    .map(|i| format!("({}, 'v{}')", n * 10 + i, n))
                    .collect();
                conn.query_drop(format!("INSERT INTO t VALUES {}", values.join(", ")))
                    .await
                    .unwrap();
                n += 1;
            }
            n * 10
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| pg.stop());
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(stopped_at.elapsed())).await;
    let before = stats.rows.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| pg.restart());
    let back = Instant::now();
    stop.cancel();
    let rows = writer.await.unwrap();
    let written_in_outage = rows as f64 * 20.0 / (22.0 + back.elapsed().as_secs_f64());
    // The first applied row after the restart (reconnect backoff excluded).
    let mut first_applied = None;
    let caught_up = async {
        loop {
            if first_applied.is_none() && stats.rows.load(Ordering::Relaxed) > before {
                first_applied = Some(Instant::now());
            }
            let snap = stats.snapshot();
            let (file, offset): (String, u64) = {
                let row: mysql_async::Row =
                    d.query_first("SHOW MASTER STATUS").await.unwrap().unwrap();
                (row.get(0).unwrap(), row.get(1).unwrap())
            };
            if snap
                .checkpoint
                .as_ref()
                .is_some_and(|cp| (cp.file.as_str(), cp.offset) >= (file.as_str(), offset))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(120), caught_up)
        .await
        .is_err()
    {
        let snap = stats.snapshot();
        panic!(
            "the stream did not catch up within 120 s: state {}, error {:?}, checkpoint {:?}",
            snap.state, snap.error, snap.checkpoint
        );
    }
    let done = Instant::now();
    let caught = stats.rows.load(Ordering::Relaxed) - before;
    let total = done.duration_since(back).as_secs_f64();
    let applying = first_applied.map_or(total, |f| done.duration_since(f).as_secs_f64());
    eprintln!(
        "PostgreSQL stopped 20 s under load ({rows} rows written, ~{written_in_outage:.0} during the outage): \
         {caught} rows applied after the restart in {total:.2} s incl. reconnect = {:.0} rows/s; \
         {applying:.2} s from the first applied row = {:.0} rows/s; {} retries",
        caught as f64 / total,
        caught as f64 / applying.max(1e-3),
        stats.retries.load(Ordering::Relaxed)
    );
    assert!(
        caught as f64 >= written_in_outage * 0.8,
        "the outage's rows were applied after the restart ({caught})"
    );
    assert_eq!(
        pg.sql(&pg_db, "SELECT count(*), count(DISTINCT id) FROM t")
            .trim(),
        format!("{rows}|{rows}"),
        "0 missing, 0 duplicated"
    );
    wait_caught_up(&stats, &mut d, Duration::from_secs(30)).await;
    let config = Config::from_toml(&toml, |k| std::env::var(k).ok()).unwrap();
    let report = verify::run(
        &Sides::from_config(&config).unwrap(),
        &VerifyOptions {
            tables: None,
            sample: 100,
            chunk_rows: 5000,
            repair: false,
            authoritative: Side::Old,
            stream_wait_ms: 30_000,
        },
    )
    .await
    .expect("verify runs");
    assert!(
        report.clean,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    proxy.shutdown.cancel();
    tasks.wait().await;
    let _ = proxy.task.await;
}
