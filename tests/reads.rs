//! dual_write with `[reads] new_percent`: a share of reads is answered by
//! PostgreSQL (in MySQL form), changed by editing the config; reads of a
//! session with an open transaction or writes in flight stay on MariaDB.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

fn config(old_db: &str, pg_url: &str, drift: &std::path::Path, percent: f64) -> String {
    config::TestConfig::new(old_db)
        .phase("dual_write")
        .new_backend(pg_url)
        .mirror("source", "\"statements\"")
        .drift_log(drift)
        .table(&format!("[reads]\nnew_percent = {percent:.1}"))
        .toml()
}

/// A `dual_write` proxy that watches its config file, in front of a MariaDB
/// database and a PostgreSQL one both holding `kv (1, on_mariadb)`; the row
/// then says `on_postgres` on PostgreSQL only, so answers show who served.
struct Kv {
    proxy: Proxy,
    c: mysql_async::Conn,
    old: String,
    new: String,
    pg: &'static servers::Postgres,
    path: std::path::PathBuf,
    drift: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn kv(prefix: &str, percent: f64, on_mariadb: &str, on_postgres: &str) -> Kv {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database(prefix);
    let new = pg.create_database(prefix);
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let path = dir.path().join("proxy.toml");
    let base = config(&old, &pg.url(&new), &drift, percent);
    std::fs::write(&path, &base).unwrap();
    let proxy = start_proxy_with(&base).await;
    tandem::reload::spawn(path.clone(), proxy.state.clone(), proxy.shutdown.clone());
    let mut c = via(&proxy, &old).await;
    c.query_drop("CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    c.query_drop(format!("INSERT INTO kv VALUES (1, '{on_mariadb}')"))
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    pg.sql(
        &new,
        &format!("UPDATE kv SET v = '{on_postgres}' WHERE k = 1"),
    );
    Kv {
        proxy,
        c,
        old,
        new,
        pg,
        path,
        drift,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_share_follows_the_config_and_reads_see_their_writes() {
    // Mark the row on PostgreSQL only: answers show which backend served.
    let Kv {
        proxy,
        mut c,
        old,
        new,
        pg,
        path,
        drift,
        _dir,
    } = kv("reads_old", 0.0, "same", "from-pg").await;
    let which = |v: Option<String>| v.unwrap_or_default();
    let v: Option<String> = c.query_first("SELECT v FROM kv WHERE k = 1").await.unwrap();
    assert_eq!(which(v), "same", "0%: MariaDB answers");

    // 0 -> 100 by editing the file.
    std::fs::write(&path, config(&old, &pg.url(&new), &drift, 100.0)).unwrap();
    let start = Instant::now();
    loop {
        let v: Option<String> = c.query_first("SELECT v FROM kv WHERE k = 1").await.unwrap();
        if which(v) == "from-pg" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "reload did not move reads"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Column metadata and values come back in MySQL form.
    let row: Option<(i64, String)> = c
        .query_first("SELECT k, v FROM kv WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(row, Some((1, "from-pg".into())));
    // Prepared reads are routed too, answered in the binary protocol.
    let row: Option<(i64, String)> = c
        .exec_first("SELECT k, v FROM kv WHERE k = ?", (1,))
        .await
        .unwrap();
    assert_eq!(row, Some((1, "from-pg".into())));
    let none: Option<(i64, String)> = c
        .exec_first("SELECT k, v FROM kv WHERE v = ?", ("it's \\ none",))
        .await
        .unwrap();
    assert_eq!(none, None);
    // Read-your-writes: inside a transaction, reads stay on MariaDB.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("UPDATE kv SET v = 'mine' WHERE k = 1")
        .await
        .unwrap();
    let v: Option<String> = c.query_first("SELECT v FROM kv WHERE k = 1").await.unwrap();
    assert_eq!(which(v), "mine");
    c.query_drop("COMMIT").await.unwrap();
    wait_mirrored(&proxy).await;
    let v: Option<String> = c.query_first("SELECT v FROM kv WHERE k = 1").await.unwrap();
    assert_eq!(which(v), "mine", "the mirrored write reached PostgreSQL");
    assert!(
        proxy
            .state
            .metrics
            .reads_kept_for_consistency
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // 100 -> 30: the observed share follows.
    pg.sql(&new, "UPDATE kv SET v = 'pg-again' WHERE k = 1");
    std::fs::write(&path, config(&old, &pg.url(&new), &drift, 30.0)).unwrap();
    let start = Instant::now();
    while proxy.state.snapshot.load().config.reads.new_percent != 30.0 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "reload did not apply"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut from_pg = 0;
    for _ in 0..1000 {
        let v: Option<String> = c.query_first("SELECT v FROM kv WHERE k = 1").await.unwrap();
        if which(v) == "pg-again" {
            from_pg += 1;
        }
    }
    assert!(
        (280..=320).contains(&from_pg),
        "30% share: {from_pg} of 1000 from PostgreSQL"
    );
}

/// Reads answered by PostgreSQL among `n` consecutive reads of each client.
type Tally = Arc<std::sync::Mutex<Vec<(Instant, bool)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_share_moves_running_clients_within_a_second() {
    let Kv {
        proxy,
        c: _,
        old,
        new,
        pg,
        path,
        drift,
        _dir,
    } = kv("reads_live", 0.0, "mariadb", "postgres").await;

    // Four clients read without pause while the file is edited.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally: Tally = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let opts = proxy_opts(&proxy, &old);
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let mut s = mysql_async::Conn::new(opts).await.unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Any error here (a dropped connection) fails the test.
                let v: Option<String> = s
                    .query_first("SELECT v FROM kv WHERE k = 1")
                    .await
                    .expect("read during reloads");
                tally
                    .lock()
                    .unwrap()
                    .push((Instant::now(), v.as_deref() == Some("postgres")));
            }
        }));
    }
    let share_between = |from: Instant, to: Instant| {
        let t = tally.lock().unwrap();
        let window: Vec<bool> = t
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, pg)| *pg)
            .collect();
        let pg = window.iter().filter(|x| **x).count();
        (pg as f64 * 100.0 / window.len().max(1) as f64, window.len())
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let edited = Instant::now();
    std::fs::write(&path, config(&old, &pg.url(&new), &drift, 30.0)).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (before, n0) = share_between(edited - Duration::from_millis(300), edited);
    assert!(
        n0 > 0 && before == 0.0,
        "0% before the edit: {before}% of {n0}"
    );
    let (after, n1) = share_between(edited + Duration::from_secs(1), Instant::now());
    assert!(n1 >= 500, "enough reads to measure: {n1}");
    assert!(
        (28.0..=32.0).contains(&after),
        "30% ± 2 a second after the edit: {after:.1}% of {n1}"
    );

    // An invalid edit is refused; routing stays where it was.
    let failures = proxy
        .state
        .metrics
        .reload_failures
        .load(std::sync::atomic::Ordering::Relaxed);
    let bad = Instant::now();
    std::fs::write(&path, config(&old, &pg.url(&new), &drift, 300.0)).unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(
        proxy
            .state
            .metrics
            .reload_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            > failures,
        "the invalid file was rejected"
    );
    assert_eq!(proxy.state.snapshot.load().config.reads.new_percent, 30.0);
    let (kept, n2) = share_between(bad, Instant::now());
    assert!(
        n2 >= 300 && (28.0..=32.0).contains(&kept),
        "still 30% after the invalid edit: {kept:.1}% of {n2}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_reads_follow_a_moved_new_backend() {
    let Kv {
        proxy: _proxy,
        mut c,
        old,
        new: _,
        pg,
        path,
        drift,
        _dir,
    } = kv("reads_move", 100.0, "mariadb", "first").await;
    let second = pg.create_database("reads_move_b");
    pg.sql(
        &second,
        "CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(20))",
    );
    pg.sql(&second, "INSERT INTO kv VALUES (1, 'second')");
    assert_eq!(marker(&mut c).await.as_deref(), Some("first"));
    std::fs::write(&path, config(&old, &pg.url(&second), &drift, 100.0)).unwrap();
    let start = Instant::now();
    loop {
        // Same client connection: its routed reads reconnect on their own.
        if marker(&mut c).await.as_deref() == Some("second") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "reads stayed on the old address"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn marker(c: &mut mysql_async::Conn) -> Option<String> {
    c.query_first("SELECT v FROM kv WHERE k = 1").await.unwrap()
}
