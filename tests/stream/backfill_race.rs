//! `tandem backfill` racing a live write workload that the binlog stream
//! applies: inserts, updates, deletes, key changes and re-inserts of deleted
//! keys through the proxy while the table is copied. The new side must end
//! identical and `tandem verify` clean on its first run, without `--repair`
//! (the protocol in `migrate::streamsync`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::*;
use tandem::migrate::backfill::{self, BackfillOptions, Status};
use tandem::migrate::verify::{self, VerifyOptions};
use tandem::migrate::{Side, Sides};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{self, servers};
use crate::e2e::{pair, wait_checkpoint};

const ROWS: u32 = 30_000;

/// A small deterministic generator (no rand dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % u64::from(n)) as u32
    }
}

/// One writer through the proxy until `stop`: returns how many statements of
/// each kind it ran (update, delete, insert, key change, re-insert,
/// delete+re-insert in one transaction).
async fn write_until(
    opts: mysql_async::OptsBuilder,
    w: u32,
    stop: CancellationToken,
    ops: Arc<AtomicU64>,
) -> [u32; 6] {
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    let mut rng = Lcg(u64::from(w) * 7919 + 17);
    let mut deleted: Vec<u32> = Vec::new();
    let mut counts = [0u32; 6];
    let mut next_new = 0u32;
    while !stop.is_cancelled() {
        let id = 1 + rng.below(ROWS);
        match rng.below(100) {
            0..=34 => {
                conn.exec_drop(
                    "UPDATE t SET n = n + 1, v = CONCAT('u', n + 1, '-', id) WHERE id = ?",
                    (id,),
                )
                .await
                .unwrap();
                counts[0] += 1;
            }
            35..=59 => {
                conn.exec_drop("DELETE FROM t WHERE id = ?", (id,))
                    .await
                    .unwrap();
                deleted.push(id);
                counts[1] += 1;
            }
            60..=74 => {
                next_new += 1;
                conn.exec_drop(
                    "INSERT INTO t (id, v, n) VALUES (?, 'new', 1)",
                    (ROWS + w * 1_000_000 + next_new,),
                )
                .await
                .unwrap();
                counts[2] += 1;
            }
            75..=84 => {
                // A key change (from the original range only, so moved keys
                // never collide).
                conn.exec_drop("UPDATE t SET id = id + 5000000 WHERE id = ?", (id,))
                    .await
                    .unwrap();
                counts[3] += 1;
            }
            85..=94 => {
                let again = deleted.pop().unwrap_or(id);
                conn.exec_drop(
                    "INSERT INTO t (id, v, n) VALUES (?, 'again', 7) ON DUPLICATE KEY UPDATE n = n + 100",
                    (again,),
                )
                .await
                .unwrap();
                counts[4] += 1;
            }
            _ => {
                conn.query_drop("START TRANSACTION").await.unwrap();
                conn.exec_drop("DELETE FROM t WHERE id = ?", (id,))
                    .await
                    .unwrap();
                conn.exec_drop("INSERT INTO t (id, v, n) VALUES (?, 'swap', 3)", (id,))
                    .await
                    .unwrap();
                conn.query_drop("COMMIT").await.unwrap();
                counts[5] += 1;
            }
        }
        ops.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_racing_the_stream_ends_identical_and_verify_is_clean_first_time() {
    let p = pair("bf_race", 105);
    let mut d = common::direct(&p.my).await;
    d.query_drop(
        "CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(40) NOT NULL, n int NOT NULL)",
    )
    .await
    .unwrap();
    d.query_drop("SET SESSION max_recursive_iterations = 1000000")
        .await
        .unwrap();
    d.query_drop(format!(
        "INSERT INTO t WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ROWS}) \
         SELECT i, CONCAT('v', i), 0 FROM s"
    ))
    .await
    .unwrap();
    servers::postgres().sql(
        &p.pg,
        "CREATE TABLE t (id int NOT NULL PRIMARY KEY, v varchar(40) NOT NULL, n int NOT NULL)",
    );

    // The stream runs (from the binlog's end) before the backfill starts.
    let proxy = common::start_proxy_with(&p.toml).await;
    let tasks = TaskTracker::new();
    assert!(
        tandem::stream::source::spawn(&proxy.state, &tasks, proxy.shutdown.clone(), false)
            .await
            .unwrap()
    );
    tasks.close();
    wait_checkpoint(&proxy.state.stream).await;

    let stop = CancellationToken::new();
    let ops = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            tokio::spawn(write_until(
                common::proxy_opts(&proxy, &p.my),
                w,
                stop.clone(),
                Arc::clone(&ops),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Small, throttled chunks: the copy takes seconds, the writers race it.
    let sides = Sides::from_config(&p.config()).unwrap();
    let before = ops.load(Ordering::Relaxed);
    let report = backfill::run(
        &sides,
        &BackfillOptions {
            tables: None,
            chunk_rows: 500,
            rate: Some(6_000),
            parallel: 1,
            allow_no_pk: false,
            restart: false,
        },
    )
    .await
    .expect("backfill runs");
    let during = ops.load(Ordering::Relaxed) - before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let mut counts = [0u32; 6];
    for w in writers {
        for (c, n) in counts.iter_mut().zip(w.await.unwrap()) {
            *c += n;
        }
    }
    assert!(report.ok(), "{report:?}");
    let t = report
        .tables
        .iter()
        .find(|t| t.table == "t")
        .expect("t copied");
    assert_eq!(t.status, Status::Copied);
    let (first, last) = t.snapshots.clone().expect("snapshot coordinates");
    eprintln!(
        "backfill: {} rows read, {} inserted, {} left out as deleted by the stream; snapshots {first} .. {last}; \
         {during} writes during the copy (update/delete/insert/key change/re-insert/swap: {counts:?})",
        t.rows, t.inserted, t.tombstoned
    );
    assert!(
        during > 200,
        "the writers must race the copy ({during} writes)"
    );
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");

    // The first verify, no repair: waits for the stream, then compares.
    let verified = verify::run(
        &sides,
        &VerifyOptions {
            tables: None,
            sample: 500,
            chunk_rows: 1000,
            repair: false,
            authoritative: Side::Old,
            stream_wait_ms: 60_000,
        },
    )
    .await
    .expect("verify runs");
    assert!(
        verified
            .stream
            .as_deref()
            .is_some_and(|s| s.starts_with("stream reached")),
        "{:?}",
        verified.stream
    );
    assert!(
        verified.clean,
        "{}",
        serde_json::to_string_pretty(&verified).unwrap()
    );

    // Row by row.
    let old: Vec<(i32, String, i32)> = d.query("SELECT id, v, n FROM t ORDER BY id").await.unwrap();
    let old_text: Vec<String> = old
        .iter()
        .map(|(id, v, n)| format!("{id}|{v}|{n}"))
        .collect();
    let new_text = p.pg_sql("SELECT id, v, n FROM t ORDER BY id");
    let new_lines: Vec<&str> = new_text.lines().collect();
    assert_eq!(old_text.len(), new_lines.len(), "row counts");
    for (o, n) in old_text.iter().zip(&new_lines) {
        assert_eq!(o, n);
    }
    assert_eq!(
        p.pg_sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tandem_tomb_%'"),
        "0",
        "the tombstone table is dropped with the last chunk"
    );
    proxy.shutdown.cancel();
    tasks.wait().await;
    let _ = proxy.task.await;
}
