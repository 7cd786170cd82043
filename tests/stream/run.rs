//! The stream task (lease, grouping, isolation of a refused transaction,
//! takeover) with a source that replays an in-memory log of source
//! transactions from any position, as the binlog does; the target is the
//! real PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::stream::apply::{ApplyOptions, OnError, StreamStats};
use tandem::stream::run::{
    run, BoxFuture, ItemSource, OpenSource, RunConfig, SourceError, StreamError,
};
use tandem::stream::{Change, Item, Position, RowChange, SourceTable};
use tandem::value::Value;
use tokio_util::sync::CancellationToken;

use super::apply::{backend, pos, table};
use crate::common::servers;

/// Transactions in commit order; position n is just past transaction n.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<Vec<Item>>>>);

impl Log {
    pub(crate) fn push(&self, gtid_seq: u64, changes: Vec<Change>) {
        let mut log = self.0.lock().unwrap();
        let n = log.len() as u64 + 1;
        assert_eq!(n, gtid_seq);
        log.push(vec![
            Item::Begin {
                gtid: Some(format!("0-1-{n}")),
                timestamp: 1_700_000_000,
            },
            Item::Rows(changes),
            Item::Commit { position: pos(n) },
        ]);
    }
}

struct Reader {
    log: Log,
    next_txn: usize,
    pending: Vec<Item>,
}

impl ItemSource for Reader {
    fn next_item(&mut self) -> BoxFuture<'_, Result<Item, SourceError>> {
        Box::pin(async move {
            loop {
                if let Some(item) = self.pending.pop() {
                    return Ok(item);
                }
                let txn = self.log.0.lock().unwrap().get(self.next_txn).cloned();
                match txn {
                    Some(mut items) => {
                        items.reverse();
                        self.pending = items;
                        self.next_txn += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
    }
}

impl OpenSource for Log {
    fn current_position(&self) -> BoxFuture<'_, Result<Position, SourceError>> {
        Box::pin(async move { Ok(pos(0)) })
    }
    fn open(&self, from: Position) -> BoxFuture<'_, Result<Box<dyn ItemSource>, SourceError>> {
        let log = self.clone();
        Box::pin(async move {
            let r: Box<dyn ItemSource> = Box::new(Reader {
                log,
                next_txn: (from.offset - 1000) as usize,
                pending: Vec::new(),
            });
            Ok(r)
        })
    }
}

pub(crate) fn accounts() -> Arc<SourceTable> {
    table(
        "src",
        "accounts",
        &[("id", "int(11)"), ("name", "varchar(40)")],
        &[0],
    )
}

pub(crate) fn insert(t: &Arc<SourceTable>, id: i128, name: Option<&str>) -> Change {
    Change {
        table: Arc::clone(t),
        change: RowChange::Insert {
            after: vec![
                Value::Int(id),
                name.map_or(Value::Null, |n| Value::Text(n.into())),
            ],
        },
    }
}

pub(crate) fn config(url: &str, holder: &str, on_error: OnError) -> RunConfig {
    RunConfig {
        target: backend("postgres", url),
        apply: ApplyOptions {
            database: Some("src".into()),
            on_error,
            ..ApplyOptions::default()
        },
        holder_id: holder.into(),
        address: "127.0.0.1:0".into(),
        max_backoff: Duration::from_millis(500),
        channel_items: 1024,
        schema: Arc::new(Default::default()),
        group_linger: tandem::stream::run::GROUP_LINGER,
    }
}

pub(crate) fn pg_db(prefix: &str) -> String {
    let pg = servers::postgres();
    let db = pg.create_database(prefix);
    pg.sql(
        &db,
        "CREATE TABLE accounts (id integer PRIMARY KEY, name text NOT NULL)",
    );
    db
}

pub(crate) fn count(db: &str) -> String {
    servers::postgres()
        .sql(db, "SELECT count(*), count(DISTINCT id) FROM accounts")
        .trim()
        .to_string()
}

/// Polls `f` for up to 60 s (generous: the suite's other tests load the
/// same two cores).
pub(crate) async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub(crate) type Task = tokio::task::JoinHandle<Result<(), StreamError>>;

pub(crate) fn start(
    cfg: RunConfig,
    log: &Log,
    stats: &Arc<StreamStats>,
    drift: Option<tandem::dualwrite::drift::DriftLog>,
) -> (CancellationToken, Task) {
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(
        cfg,
        Arc::new(log.clone()),
        Arc::clone(stats),
        drift,
        cancel.clone(),
    ));
    (cancel, task)
}

#[tokio::test]
async fn one_stream_applies_and_the_standby_takes_over_without_loss() {
    let db = pg_db("stream_lease");
    let url = servers::postgres().url(&db);
    let t = accounts();
    let log = Log::default();
    for n in 1..=200u64 {
        log.push(n, vec![insert(&t, n as i128, Some("a"))]);
    }
    let s1 = Arc::new(StreamStats::default());
    let (c1, t1) = start(config(&url, "first", OnError::Stop), &log, &s1, None);
    wait_for("the first stream to apply", || count(&db) == "200|200").await;
    let s2 = Arc::new(StreamStats::default());
    let (c2, t2) = start(config(&url, "second", OnError::Stop), &log, &s2, None);
    wait_for("the second stream to stand by", || {
        s2.snapshot().state == "standby"
    })
    .await;
    assert!(s2
        .snapshot()
        .lease_holder
        .unwrap_or_default()
        .contains("first"));
    for n in 201..=400u64 {
        log.push(n, vec![insert(&t, n as i128, Some("b"))]);
    }
    wait_for("the first stream to apply more", || count(&db) == "400|400").await;
    assert_eq!(
        s2.transactions.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the standby applied nothing"
    );
    // The holder stops (its lease connection closes); writes continue.
    c1.cancel();
    t1.await.unwrap().unwrap();
    for n in 401..=600u64 {
        log.push(n, vec![insert(&t, n as i128, Some("c"))]);
    }
    let took_over = std::time::Instant::now();
    wait_for("the standby to take over", || count(&db) == "600|600").await;
    eprintln!(
        "standby took over and caught up in {:?}",
        took_over.elapsed()
    );
    assert!(took_over.elapsed() < Duration::from_secs(10));
    assert_eq!(s2.snapshot().state, "applying");
    c2.cancel();
    t2.await.unwrap().unwrap();
    let cp = servers::postgres().sql(&db, "SELECT \"offset\" FROM tandem_stream_checkpoint");
    assert_eq!(cp.trim(), "1600");
}

#[tokio::test]
async fn a_refused_transaction_in_a_group_is_found_and_skipped_or_stops_the_stream() {
    let t = accounts();
    let log = Log::default();
    // 300 transactions, the 150th inserts NULL into a NOT NULL column.
    for n in 1..=300u64 {
        let name = if n == 150 { None } else { Some("ok") };
        log.push(n, vec![insert(&t, n as i128, name)]);
    }

    // on_error = "stop": everything before it is applied, nothing after.
    let db = pg_db("stream_stop");
    let stats = Arc::new(StreamStats::default());
    let (_c, task) = start(
        config(&servers::postgres().url(&db), "stop", OnError::Stop),
        &log,
        &stats,
        None,
    );
    let err = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("stops")
        .unwrap()
        .expect_err("refused");
    assert!(err.to_string().contains("0-1-150"), "{err}");
    assert_eq!(count(&db), "149|149");
    assert_eq!(stats.snapshot().state, "stopped");
    assert!(stats
        .snapshot()
        .error
        .unwrap_or_default()
        .contains("0-1-150"));

    // on_error = "skip": it goes to the drift log, the rest is applied.
    let db = pg_db("stream_skip");
    let dir = std::env::temp_dir().join(format!("tandem-stream-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("drift.jsonl");
    let drift = tandem::dualwrite::drift::DriftLog::start(path.clone());
    let stats = Arc::new(StreamStats::default());
    let (c, task) = start(
        config(&servers::postgres().url(&db), "skip", OnError::Skip),
        &log,
        &stats,
        Some(drift),
    );
    wait_for("the stream to pass the refused transaction", || {
        count(&db) == "299|299"
    })
    .await;
    wait_for("the checkpoint", || {
        servers::postgres()
            .sql(&db, "SELECT gtid FROM tandem_stream_checkpoint")
            .trim()
            == "0-1-300"
    })
    .await;
    assert_eq!(stats.skipped.load(std::sync::atomic::Ordering::Relaxed), 1);
    c.cancel();
    task.await.unwrap().unwrap();
    crate::common::settled_jsonl(&path, 1).await;
    let logged = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(logged.lines().count(), 1, "{logged}");
    assert!(logged.contains("0-1-150"), "{logged}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_target_going_away_loses_nothing_and_the_backlog_is_caught_up() {
    let db = pg_db("stream_outage");
    let pg = servers::postgres();
    let url = pg.url(&db);
    let t = accounts();
    let log = Log::default();
    let stats = Arc::new(StreamStats::default());
    let (cancel, task) = start(config(&url, "outage", OnError::Stop), &log, &stats, None);
    // A writer keeps committing 10-row transactions on the "primary".
    let writer_log = log.clone();
    let writer_t = Arc::clone(&t);
    let stop_writer = CancellationToken::new();
    let stop = stop_writer.clone();
    let writer = tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.is_cancelled() {
            n += 1;
            let changes = (0..10)
                .map(|i| insert(&writer_t, (n * 10 + i) as i128, Some("w")))
                .collect();
            writer_log.push(n, changes);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        n
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The target refuses connections and drops the stream's: unavailable.
    pg.sql(
        "postgres",
        &format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"),
    );
    pg.sql(
        "postgres",
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = stats.snapshot();
    assert_ne!(during.state, "applying", "{:?}", during.error);
    let backlog_from = stats.rows.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "before the target returns: {backlog_from} rows applied, {:?}",
        stats.snapshot().error
    );
    pg.sql(
        "postgres",
        &format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS true"),
    );
    let back = std::time::Instant::now();
    stop_writer.cancel();
    let txns = writer.await.unwrap();
    let want = format!("{}|{}", txns * 10, txns * 10);
    wait_for("the backlog to be applied", || count(&db) == want).await;
    // The backlog commits as one group: its counters follow the commit.
    wait_for("the counters", || {
        stats.rows.load(std::sync::atomic::Ordering::Relaxed) == txns * 10
    })
    .await;
    let secs = back.elapsed().as_secs_f64();
    let caught_up = stats
        .rows
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(backlog_from);
    eprintln!(
        "outage: {txns} transactions in all; {caught_up} rows applied in {secs:.2} s after the target returned, {} retries",
        stats.retries.load(std::sync::atomic::Ordering::Relaxed)
    );
    eprintln!(
        "target transactions (groups): {}",
        stats.groups.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(stats.retries.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let cp = pg.sql(&db, "SELECT gtid FROM tandem_stream_checkpoint");
    assert_eq!(cp.trim(), format!("0-1-{txns}"));
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_trickle_of_small_transactions_commits_in_groups_and_a_lone_one_at_once() {
    let db = pg_db("stream_linger");
    let url = servers::postgres().url(&db);
    let t = accounts();
    let log = Log::default();
    let stats = Arc::new(StreamStats::default());
    let (cancel, task) = start(config(&url, "linger", OnError::Stop), &log, &stats, None);
    wait_for("the stream to start", || {
        stats.snapshot().state == "applying"
    })
    .await;
    // One-row transactions about every millisecond, as sysbench's writers
    // commit them: the stream groups them rather than paying a target
    // transaction (lock, checkpoint, commit, round trip) for each.
    for n in 1..=300u64 {
        log.push(n, vec![insert(&t, n as i128, Some("t"))]);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    wait_for("the trickle to be applied", || count(&db) == "300|300").await;
    wait_for("the counters", || {
        stats
            .transactions
            .load(std::sync::atomic::Ordering::Relaxed)
            == 300
    })
    .await;
    let groups = stats.groups.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("300 source transactions in {groups} target transactions");
    assert!(groups * 2 <= 300, "{groups} target transactions for 300");
    // A lone transaction is not held back waiting for company.
    let before = std::time::Instant::now();
    log.push(301, vec![insert(&t, 301, Some("alone"))]);
    wait_for("the lone transaction", || count(&db) == "301|301").await;
    eprintln!("a lone transaction applied in {:?}", before.elapsed());
    assert!(before.elapsed() < Duration::from_secs(2));
    let cp = servers::postgres().sql(&db, "SELECT \"offset\" FROM tandem_stream_checkpoint");
    assert_eq!(cp.trim(), "1301");
    cancel.cancel();
    task.await.unwrap().unwrap();
}
