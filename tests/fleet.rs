//! A fleet of three in-process proxies in front of real MariaDB and
//! PostgreSQL, the change stream running in each (one holds the lease), and
//! `tandem cutover` flipping them together under continuous client load:
//! no write lost, no write on the old side after the flip, the pause
//! measured; and a proxy that cannot see the control row cannot write.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tandem::config::{Config, Phase};
use tandem::fleet::cutover::{self, CutoverError, Options};
use tandem::fleet::store;
use tandem::route::Target;
use tokio_util::task::TaskTracker;

use common::{servers, Proxy};

struct Fleet {
    my: String,
    pg: String,
    base: String,
    proxies: Vec<Proxy>,
    members: Vec<Option<tokio::task::JoinHandle<()>>>,
    tasks: TaskTracker,
    dir: std::path::PathBuf,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn toml(base: &str, i: usize) -> String {
    format!("{base}[fleet]\nenabled = true\nid = \"proxy-{i}\"\npoll_ms = 50\nheartbeat_ms = 500\nstale_ms = 1000\n")
}

async fn start(prefix: &str, server_id: u32, n: usize) -> Fleet {
    let my = servers::mariadb().create_database(prefix);
    let pg = servers::postgres().create_database(prefix);
    let dir = std::env::temp_dir().join(format!("tandem-{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backend = format!(
        "[backends.new]\nkind = \"postgres\"\nurl = \"{}\"\n",
        servers::postgres().url(&pg)
    );
    let base = format!(
        "phase = \"dual_write\"\n{}\n[mirror]\nsource = \"binlog\"\nserver_id = {server_id}\ndrift_log = \"{}\"\nmax_backoff_ms = 500\n[admin]\nlisten = \"\"\n",
        common::config_for(&my, &backend),
        dir.join("drift.jsonl").display()
    );
    let tasks = TaskTracker::new();
    let mut proxies = Vec::new();
    let mut members = Vec::new();
    for i in 0..n {
        let proxy = common::start_proxy_with(&toml(&base, i)).await;
        assert!(
            tandem::stream::source::spawn(&proxy.state, &tasks, proxy.shutdown.clone(), false)
                .await
                .unwrap()
        );
        let h = tandem::fleet::member::spawn(
            &proxy.state,
            &tasks,
            proxy.shutdown.clone(),
            proxy.addr.to_string(),
        )
        .await
        .unwrap();
        assert!(h.is_some());
        members.push(h);
        proxies.push(proxy);
    }
    // The stream starts at the primary's position when it has no
    // checkpoint: wait for it before the first DDL.
    let started = Instant::now();
    while !proxies
        .iter()
        .any(|p| p.state.stream.snapshot().checkpoint.is_some())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no stream checkpoint"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Fleet {
        my,
        pg,
        base,
        proxies,
        members,
        tasks,
        dir,
    }
}

impl Fleet {
    fn config(&self) -> Config {
        Config::from_toml(&toml(&self.base, 0), |k| std::env::var(k).ok()).unwrap()
    }

    fn pg_ids(&self, table: &str) -> BTreeSet<i64> {
        servers::postgres()
            .sql(&self.pg, &format!("SELECT id FROM {table} ORDER BY id"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    async fn my_ids(&self, table: &str) -> BTreeSet<i64> {
        let mut c = common::direct(&self.my).await;
        let ids: Vec<i64> = c.query(format!("SELECT id FROM {table}")).await.unwrap();
        ids.into_iter().collect()
    }

    async fn wait_live(&self, n: usize) {
        let pg = store::connect(&self.config()).await.unwrap();
        for _ in 0..200 {
            let live = store::members(&pg, 1500)
                .await
                .unwrap()
                .iter()
                .filter(|m| m.live)
                .count();
            if live == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} members never became live");
    }

    async fn stop(self) {
        let tasks = self.tasks.clone();
        for p in std::mem::take(&mut Vec::from_iter(
            self.proxies.iter().map(|p| p.shutdown.clone()),
        )) {
            p.cancel();
        }
        tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(20), tasks.wait()).await;
    }
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    acked: Vec<i64>,
    /// Writes the gate refused (error 1290: not executed), retried.
    refused: u64,
    /// Connections closed by a proxy switching side, reconnected.
    closed: u64,
    unexpected: Vec<String>,
    max_wait: Duration,
}

fn retryable(e: &mysql_async::Error) -> Option<bool> {
    match e {
        mysql_async::Error::Server(s) if s.code == 1290 => Some(true),
        mysql_async::Error::Server(_) => None,
        // The session was closed at a transaction boundary after the flip.
        _ => Some(false),
    }
}

/// A writer inserting ids w*1_000_000 + n through `port`, retrying refused
/// writes on a new connection, until `stop`.
async fn writer(
    opts: mysql_async::OptsBuilder,
    w: i64,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut conn = None;
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match mysql_async::Conn::new(opts.clone()).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    seen.lock()
                        .unwrap()
                        .unexpected
                        .push(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let id = w * 1_000_000 + n;
        let started = Instant::now();
        let r = c
            .query_drop(format!(
                "INSERT INTO t (id, w, n, v) VALUES ({id}, {w}, {n}, 'x{n}')"
            ))
            .await;
        if r.is_ok() && n % 5 == 0 {
            // An auto-increment table too: after the flip PostgreSQL's
            // identity must be past MySQL's ids (moved during the fence).
            if let Err(e) = c
                .query_drop(format!("INSERT INTO a (w, n) VALUES ({w}, {n})"))
                .await
            {
                if retryable(&e).is_none() {
                    seen.lock()
                        .unwrap()
                        .unexpected
                        .push(format!("insert into a: {e}"));
                }
            }
        }
        let took = started.elapsed();
        let mut s = seen.lock().unwrap();
        s.max_wait = s.max_wait.max(took);
        match r {
            Ok(()) => {
                s.acked.push(id);
                n += 1;
            }
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => {
                // The write before a closed connection went through.
                s.acked.push(id);
                n += 1;
            }
            Err(e) => match retryable(&e) {
                Some(true) => s.refused += 1,
                Some(false) => {
                    s.closed += 1;
                    conn = None;
                }
                None => {
                    s.unexpected.push(e.to_string());
                    n += 1;
                }
            },
        }
    }
}

async fn reader(opts: mysql_async::OptsBuilder, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = mysql_async::Conn::new(opts.clone()).await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let r: Result<Option<i64>, _> = c.query_first("SELECT COUNT(*) FROM t").await;
        if let Err(e) = r {
            let mut s = seen.lock().unwrap();
            match retryable(&e) {
                Some(_) => {
                    s.closed += 1;
                    conn = None;
                }
                None => s.unexpected.push(format!("read: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn create_table(f: &Fleet) {
    let mut c = common::via(&f.proxies[0], &f.my).await;
    c.query_drop("CREATE TABLE t (id bigint NOT NULL PRIMARY KEY, w int NOT NULL, n int NOT NULL, v varchar(20))")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE a (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, w int NOT NULL, n int NOT NULL)")
        .await
        .unwrap();
    // The stream creates them on PostgreSQL.
    for _ in 0..400 {
        if servers::postgres()
            .try_sql(&f.pg, "SELECT count(*) FROM a")
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the stream never created t on PostgreSQL");
}

/// Clients on every proxy for 1.5 s, the cutover, 1.5 s more. Writer ids
/// start at `first_writer`.
async fn cutover_under_load(
    f: &Fleet,
    opts: &Options,
    first_writer: i64,
) -> (cutover::Outcome, Seen, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut clients = Vec::new();
    for w in 0..6i64 {
        let o = common::proxy_opts(&f.proxies[w as usize % 3], &f.my);
        clients.push(tokio::spawn(writer(
            o,
            first_writer + w,
            stop.clone(),
            seen.clone(),
        )));
    }
    for p in &f.proxies {
        let o = common::proxy_opts(p, &f.my);
        clients.push(tokio::spawn(reader(o, stop.clone(), seen.clone())));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_flip = seen.lock().unwrap().acked.len();
    let mut lines = Vec::new();
    let outcome = cutover::run(&f.config(), opts, &mut |l| lines.push(l)).await;
    eprintln!("{}", lines.join("\n"));
    let outcome = outcome.unwrap_or_else(|e| panic!("cutover failed: {e}"));
    let flipped_at = seen.lock().unwrap().acked.len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    eprintln!(
        "cutover to {:?} with 3 proxies: writes held {} ms (acks {} ms, stream {} ms, sequences {} ms); \
         longest client wait {} ms; {} writes acked ({} before the cutover started, {} after the flip); {} refused and retried, \
         {} connections closed and reopened",
        opts.to,
        outcome.pause_ms,
        outcome.ack_ms,
        outcome.catch_up_ms,
        outcome.sequences_ms,
        seen.max_wait.as_millis(),
        seen.acked.len(),
        before_flip,
        seen.acked.len() - flipped_at,
        seen.refused,
        seen.closed
    );
    assert!(
        seen.unexpected.is_empty(),
        "client errors: {:?}",
        seen.unexpected
    );
    assert!(
        seen.acked.len() > flipped_at + 10,
        "writes went on after the flip"
    );
    assert!(
        seen.max_wait < Duration::from_millis(opts.max_pause_ms + 1000),
        "a client waited {:?}",
        seen.max_wait
    );
    (outcome, seen, flipped_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_under_load_with_three_proxies_loses_nothing() {
    let f = start("fleet_cut", 301, 3).await;
    create_table(&f).await;
    f.wait_live(3).await;
    let status = cutover::status(&f.config()).await.unwrap();
    eprintln!("{}", status.join("\n"));
    assert_eq!(
        status.iter().filter(|l| l.starts_with("LIVE")).count(),
        3,
        "{status:?}"
    );

    // A dry run changes nothing.
    let mut lines = Vec::new();
    let dry = Options {
        to: Target::New,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: true,
    };
    cutover::run(&f.config(), &dry, &mut |l| lines.push(l))
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("dry run: (a)")),
        "{lines:?}"
    );
    assert!(f
        .proxies
        .iter()
        .all(|p| p.state.snapshot.load().config.phase == Phase::DualWrite));

    let opts = Options {
        to: Target::New,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    let (_, seen, _) = cutover_under_load(&f, &opts, 0).await;
    for p in &f.proxies {
        assert_eq!(p.state.snapshot.load().config.phase, Phase::NewPrimary);
        let st = p.state.fleet.status();
        assert_eq!(
            (st["epoch"].as_i64(), st["authority"].as_str()),
            (Some(2), Some("new")),
            "{st}"
        );
    }
    let held: u64 = f
        .proxies
        .iter()
        .map(|p| p.state.fleet.held_total.load(Ordering::Relaxed))
        .sum();
    let longest = f
        .proxies
        .iter()
        .map(|p| p.state.fleet.max_wait_us.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    eprintln!(
        "writes held at the gate: {held}, longest hold {} ms",
        longest / 1000
    );
    assert!(held > 0, "no write was held by the fence under load");
    // Every acknowledged write is on PostgreSQL, the authority: those made
    // before the flip through the stream, those after directly (the stream
    // stops in new_primary, so nothing written to MySQL alone after the
    // flip could have reached it).
    let acked: BTreeSet<i64> = seen.acked.iter().copied().collect();
    let on_pg = f.pg_ids("t");
    let missing: Vec<_> = acked.difference(&on_pg).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing on PostgreSQL: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    // The way back: the statement mirror copied them to MySQL.
    for p in &f.proxies {
        common::wait_mirrored(p).await;
    }
    let on_my = f.my_ids("t").await;
    assert_eq!(on_my, on_pg, "MySQL (mirrored back) and PostgreSQL differ");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_misses_the_fence_cannot_write_to_the_old_side() {
    let mut f = start("fleet_miss", 302, 3).await;
    create_table(&f).await;
    f.wait_live(3).await;
    // Proxy 2 stops seeing the control row (its member task dies without
    // deregistering: a paused or partitioned proxy).
    if let Some(h) = f.members[2].take() {
        h.abort();
    }
    // While it still counts as live, a cutover cannot get its
    // acknowledgement and rolls back: nothing flips.
    let mut lines = Vec::new();
    let opts = Options {
        to: Target::New,
        max_pause_ms: 500,
        max_lag_s: 5,
        dry_run: false,
    };
    let r = cutover::run(&f.config(), &opts, &mut |l| lines.push(l)).await;
    eprintln!("{}", lines.join("\n"));
    match r {
        Err(CutoverError::RolledBack { why, .. }) => assert!(why.contains("proxy-2"), "{why}"),
        other => panic!("expected a rollback, got {other:?}"),
    }
    let pg = store::connect(&f.config()).await.unwrap();
    let c = store::control(&pg).await.unwrap();
    assert_eq!((c.authority.as_str(), c.fenced), ("old", false));
    // The other proxies write again after the rollback.
    let mut c0 = common::via(&f.proxies[0], &f.my).await;
    c0.query_drop("INSERT INTO t VALUES (1, 0, 0, 'after rollback')")
        .await
        .unwrap();

    // Once it is silent the fleet goes on without it.
    f.wait_live(2).await;
    let mut lines = Vec::new();
    let opts = Options {
        to: Target::New,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    cutover::run(&f.config(), &opts, &mut |l| lines.push(l))
        .await
        .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    assert_eq!(
        f.proxies[0].state.snapshot.load().config.phase,
        Phase::NewPrimary
    );
    // Proxy 2 still thinks dual_write, but it refuses the write: it cannot
    // have seen the current epoch.
    assert_eq!(
        f.proxies[2].state.snapshot.load().config.phase,
        Phase::DualWrite
    );
    let mut c2 = common::via(&f.proxies[2], &f.my).await;
    let err = c2
        .query_drop("INSERT INTO t VALUES (2, 2, 0, 'stale proxy')")
        .await
        .expect_err("a proxy that missed the epoch wrote");
    match &err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1290, "{e}");
            assert!(e.message.contains("caught up"), "{}", e.message);
        }
        other => panic!("{other}"),
    }
    // Reads still go on there.
    let n: Option<i64> = c2.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1));
    assert!(
        !f.my_ids("t").await.contains(&2),
        "the refused write reached MySQL"
    );

    // Its member task back: it catches up with the epoch and serves the
    // new side.
    let p2 = &f.proxies[2];
    let h = tandem::fleet::member::spawn(
        &p2.state,
        &f.tasks,
        p2.shutdown.clone(),
        p2.addr.to_string(),
    )
    .await
    .unwrap();
    f.members[2] = h;
    assert_eq!(p2.state.snapshot.load().config.phase, Phase::NewPrimary);
    let mut c2 = common::via(p2, &f.my).await;
    c2.query_drop("INSERT INTO t VALUES (3, 2, 1, 'caught up')")
        .await
        .unwrap();
    assert!(f.pg_ids("t").contains(&3));
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_back_under_load_loses_nothing() {
    let f = start("fleet_back", 303, 3).await;
    create_table(&f).await;
    f.wait_live(3).await;
    let to_new = Options {
        to: Target::New,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    let mut lines = Vec::new();
    cutover::run(&f.config(), &to_new, &mut |l| lines.push(l))
        .await
        .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    // Writes on PostgreSQL for a while, then back under load.
    let back = Options {
        to: Target::Old,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    let (_, seen, _) = cutover_under_load(&f, &back, 100).await;
    for p in &f.proxies {
        assert_eq!(p.state.snapshot.load().config.phase, Phase::DualWrite);
    }
    // MySQL is authoritative again and has every acknowledged write: those
    // made on PostgreSQL came through the statement mirror (drained before
    // each proxy acknowledged the fence), those after the flip directly.
    let acked: BTreeSet<i64> = seen.acked.iter().copied().collect();
    let on_my = f.my_ids("t").await;
    let missing: Vec<_> = acked.difference(&on_my).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing on MySQL: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    // The stream runs again in dual_write and brings PostgreSQL level.
    let mut same = false;
    for _ in 0..200 {
        if f.pg_ids("t") == on_my {
            same = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(same, "PostgreSQL did not converge on MySQL after --back");
    f.stop().await;
}

/// The layout a Kubernetes ConfigMap volume has (`proxy.toml` ->
/// `..data/proxy.toml`, `..data` -> a timestamped directory) and its update
/// (a new directory, `..data` renamed over): the running config follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_follows_a_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;
    let db = servers::mariadb().create_database("fleet_cm");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, cache: u32| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let toml = format!("{}\n", common::config_for(&db, "")).replace(
            "[limits]\n",
            &format!("[limits]\nstatement_cache_size = {cache}\n"),
        );
        std::fs::write(d.join("proxy.toml"), toml).unwrap();
    };
    write("..2026_01", 111);
    symlink("..2026_01", dir.path().join("..data")).unwrap();
    symlink("..data/proxy.toml", dir.path().join("proxy.toml")).unwrap();
    let path = dir.path().join("proxy.toml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.limits.statement_cache_size, 111);
    let state = tandem::server::AppState::new(config).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tandem::reload::spawn(path, state.clone(), shutdown.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The kubelet's update: new directory, new symlink renamed over `..data`.
    write("..2026_02", 222);
    symlink("..2026_02", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    let mut seen = 0;
    for _ in 0..100 {
        seen = state.snapshot.load().config.limits.statement_cache_size;
        if seen == 222 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    assert_eq!(seen, 222, "the reload watcher missed the ..data swap");
}

/// The proxy holding the stream lease dies (its member task aborted without
/// deregistering, its stream and sessions stopped) the moment the fence goes
/// up. The cutover completes or rolls back; if it rolled back, a second one
/// succeeds once the dead member is silent and a standby applies the
/// stream. Never split: every acknowledged write ends on the side that is
/// authoritative, and MySQL holds nothing PostgreSQL does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_holder_killed_during_cutover_never_splits() {
    let mut f = start("fleet_kill", 304, 3).await;
    create_table(&f).await;
    f.wait_live(3).await;
    let holder = (0..3)
        .find(|&i| {
            f.proxies[i]
                .state
                .stream
                .snapshot()
                .lease_holder
                .is_some_and(|h| h.contains("(this process)"))
        })
        .expect("one proxy holds the stream lease");
    let survivors: Vec<usize> = (0..3).filter(|&i| i != holder).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut clients = Vec::new();
    for (k, &i) in survivors.iter().enumerate() {
        for j in 0..2i64 {
            let o = common::proxy_opts(&f.proxies[i], &f.my);
            clients.push(tokio::spawn(writer(
                o,
                200 + k as i64 * 2 + j,
                stop.clone(),
                seen.clone(),
            )));
        }
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The killer: waits for the fence, then takes the holder down.
    let member = f.members[holder].take();
    let kill = f.proxies[holder].shutdown.clone();
    let config = f.config();
    let killer = tokio::spawn(async move {
        let pg = store::connect(&config).await.unwrap();
        loop {
            if store::control(&pg).await.unwrap().fenced {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(h) = member {
            h.abort();
        }
        kill.cancel();
    });
    let opts = Options {
        to: Target::New,
        max_pause_ms: 1500,
        max_lag_s: 5,
        dry_run: false,
    };
    let mut lines = Vec::new();
    let first = cutover::run(&f.config(), &opts, &mut |l| lines.push(l)).await;
    killer.await.unwrap();
    eprintln!("{}", lines.join("\n"));
    match first {
        Ok(o) => eprintln!(
            "cutover completed despite the kill: writes held {} ms",
            o.pause_ms
        ),
        Err(CutoverError::RolledBack { why, .. }) => {
            eprintln!("cutover rolled back: {why}");
            f.wait_live(2).await;
            let mut lines = Vec::new();
            let opts = Options {
                max_pause_ms: 5000,
                ..opts.clone()
            };
            let second = cutover::run(&f.config(), &opts, &mut |l| lines.push(l)).await;
            eprintln!("{}", lines.join("\n"));
            let o = second.unwrap_or_else(|e| panic!("second cutover: {e}"));
            eprintln!("second cutover: writes held {} ms", o.pause_ms);
        }
        Err(e) => panic!("{e}"),
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.unexpected.is_empty(),
        "client errors: {:?}",
        seen.unexpected
    );
    for &i in &survivors {
        assert_eq!(
            f.proxies[i].state.snapshot.load().config.phase,
            Phase::NewPrimary
        );
    }
    let acked: BTreeSet<i64> = seen.acked.iter().copied().collect();
    let on_pg = f.pg_ids("t");
    let missing: Vec<_> = acked.difference(&on_pg).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing on PostgreSQL",
        missing.len()
    );
    for &i in &survivors {
        common::wait_mirrored(&f.proxies[i]).await;
    }
    let on_my = f.my_ids("t").await;
    let only_my: Vec<_> = on_my.difference(&on_pg).collect();
    assert!(
        only_my.is_empty(),
        "{} rows on MySQL only: written to the old side and never streamed",
        only_my.len()
    );
    f.stop().await;
}

/// A `phase` edit across dual_write/new_primary is refused at reload while
/// another live proxy is registered, pointing at `tandem cutover`; an edit
/// of anything else keeps the fleet's phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_wide_phase_edit_is_refused_at_reload() {
    let f = start("fleet_reload", 305, 2).await;
    f.wait_live(2).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let state = &f.proxies[0].state;
    std::fs::write(
        &path,
        toml(&f.base, 0).replace("phase = \"dual_write\"", "phase = \"new_primary\""),
    )
    .unwrap();
    let err = tandem::reload::apply(&path, state)
        .await
        .expect_err("a fleet-wide phase edit was applied");
    assert!(
        err.contains("tandem cutover") && err.contains("1 other live proxy"),
        "{err}"
    );
    assert_eq!(state.snapshot.load().config.phase, Phase::DualWrite);
    // Another key changes; the phase stays the fleet's.
    std::fs::write(
        &path,
        toml(&f.base, 0).replace("[limits]\n", "[limits]\nstatement_cache_size = 77\n"),
    )
    .unwrap();
    let changes = tandem::reload::apply(&path, state).await.unwrap();
    assert!(
        changes.iter().any(|c| c.contains("statement_cache_size")),
        "{changes:?}"
    );
    assert_eq!(state.snapshot.load().config.phase, Phase::DualWrite);
    f.stop().await;
}
