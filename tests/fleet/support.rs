//! Support for the fleet tests: a fleet of in-process proxies (stream and
//! member task each) on a MariaDB/PostgreSQL database pair, and clients that
//! write and read through them and record what they saw.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tandem::config::Config;
use tandem::fleet::cutover::{self, Options};
use tandem::fleet::store;
use tokio_util::task::TaskTracker;

use crate::common::config::TestConfig;
use crate::common::pair::DbPair;
use crate::common::{self, servers, Proxy};
pub struct Fleet {
    pub my: String,
    pub pg: String,
    pub base: TestConfig,
    pub proxies: Vec<Proxy>,
    pub members: Vec<Option<tokio::task::JoinHandle<()>>>,
    pub tasks: TaskTracker,
    pub dir: std::path::PathBuf,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Member `i`'s proxy.toml: `base` as fleet member `proxy-{i}`.
pub fn toml(base: &TestConfig, i: usize) -> String {
    base.clone().fleet(&format!("proxy-{i}")).toml()
}

pub async fn start(prefix: &str, server_id: u32, n: usize) -> Fleet {
    let db = DbPair::new(prefix);
    let base = db
        .binlog_config("dual_write", 500)
        .mirror("server_id", &server_id.to_string());
    let (my, pg, dir) = db.into_parts();
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
    pub fn config(&self) -> Config {
        Config::from_toml(&toml(&self.base, 0), |k| std::env::var(k).ok()).unwrap()
    }

    pub fn pg_ids(&self, table: &str) -> BTreeSet<i64> {
        servers::postgres()
            .sql(&self.pg, &format!("SELECT id FROM {table} ORDER BY id"))
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    pub async fn my_ids(&self, table: &str) -> BTreeSet<i64> {
        let mut c = common::direct(&self.my).await;
        let ids: Vec<i64> = c.query(format!("SELECT id FROM {table}")).await.unwrap();
        ids.into_iter().collect()
    }

    pub async fn wait_live(&self, n: usize) {
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

    pub async fn stop(self) {
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
pub struct Seen {
    pub acked: Vec<i64>,
    /// Writes the gate refused (error 1290: not executed), retried.
    pub refused: u64,
    /// Connections closed by a proxy switching side, reconnected.
    pub closed: u64,
    pub unexpected: Vec<String>,
    pub max_wait: Duration,
}

pub fn retryable(e: &mysql_async::Error) -> Option<bool> {
    match e {
        mysql_async::Error::Server(s) if s.code == 1290 => Some(true),
        mysql_async::Error::Server(_) => None,
        // The session was closed at a transaction boundary after the flip.
        _ => Some(false),
    }
}

/// A writer inserting ids w*1_000_000 + n through `port`, retrying refused
/// writes on a new connection, until `stop`.
pub async fn writer(
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

pub async fn reader(opts: mysql_async::OptsBuilder, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>) {
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

pub async fn create_table(f: &Fleet) {
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
pub async fn cutover_under_load(
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
