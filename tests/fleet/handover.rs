//! The session handover at `tandem cutover` (issue 12, step c): clients on
//! long-lived connections keep writing through the flip to PostgreSQL —
//! text and prepared statements, with autocommit on and off — and never see
//! an error. Their held writes run on PostgreSQL in the same connection
//! (before the handover they got error 1290, `Refusal::Moved`, and had to
//! reconnect: `writer` in support.rs retries those).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use tandem::config::Phase;
use tandem::fleet::cutover::{self, Options};
use tandem::proxy::route::Target;

use crate::common;
use crate::support::*;

/// What one connection did, kept apart per writer.
#[derive(Default)]
struct Done {
    acked: Vec<i64>,
    after_flip: u64,
    errors: Vec<String>,
    max_wait: Duration,
}

/// How a writer writes: all on one connection, opened once.
#[derive(Clone, Copy, Debug)]
enum Style {
    Text,
    Prepared,
    /// autocommit=0 with a COMMIT after each prepared insert.
    Manual,
    /// autocommit=0 with a COMMIT after each text insert.
    ManualText,
}

impl Style {
    fn manual(self) -> bool {
        matches!(self, Style::Manual | Style::ManualText)
    }

    /// Text protocol only (a session holding prepared statements is not
    /// handed back to MySQL).
    fn text(self) -> bool {
        matches!(self, Style::Text | Style::ManualText)
    }
}

async fn long_lived(
    opts: mysql_async::OptsBuilder,
    w: i64,
    style: Style,
    stop: Arc<AtomicBool>,
    flipped: Arc<AtomicBool>,
) -> Done {
    let mut done = Done::default();
    let mut c = match mysql_async::Conn::new(opts).await {
        Ok(c) => c,
        Err(e) => {
            done.errors.push(format!("connect: {e}"));
            return done;
        }
    };
    if style.manual() {
        if let Err(e) = c.query_drop("SET autocommit = 0").await {
            done.errors.push(format!("autocommit: {e}"));
            return done;
        }
    }
    let mut n = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let id = w * 1_000_000 + n;
        let started = Instant::now();
        let insert = "INSERT INTO t (id, w, n, v) VALUES (?, ?, ?, ?)";
        let text = format!("INSERT INTO t (id, w, n, v) VALUES ({id}, {w}, {n}, 't{n}')");
        let r = match style {
            Style::Text => c.query_drop(text).await,
            Style::ManualText => match c.query_drop(text).await {
                Ok(()) => c.query_drop("COMMIT").await,
                Err(e) => Err(e),
            },
            Style::Prepared => c.exec_drop(insert, (id, w, n, format!("p{n}"))).await,
            Style::Manual => match c.exec_drop(insert, (id, w, n, format!("m{n}"))).await {
                Ok(()) => c.query_drop("COMMIT").await,
                Err(e) => Err(e),
            },
        };
        done.max_wait = done.max_wait.max(started.elapsed());
        match r {
            Ok(()) => {
                done.acked.push(id);
                if flipped.load(Ordering::Relaxed) {
                    done.after_flip += 1;
                }
            }
            Err(e) => {
                // Without the handover: 1290, or the connection closed.
                done.errors
                    .push(format!("{style:?} writer {w}, write {n}: {e}"));
                return done;
            }
        }
        n += 1;
        if n % 10 == 0 {
            // Reads on the same connection go on too.
            let r: Result<Option<i64>, _> = match style.text() {
                true => {
                    c.query_first(format!("SELECT COUNT(*) FROM t WHERE w = {w}"))
                        .await
                }
                false => {
                    c.exec_first("SELECT COUNT(*) FROM t WHERE w = ?", (w,))
                        .await
                }
            };
            // With autocommit=0 the read opened a transaction: end it (a
            // session in a transaction cannot be handed over).
            let r = match r {
                Ok(_) if style.manual() => c.query_drop("COMMIT").await,
                r => r.map(|_| ()),
            };
            if let Err(e) = r {
                done.errors.push(format!("{style:?} writer {w}, read: {e}"));
                return done;
            }
        }
    }
    if let Err(e) = c.disconnect().await {
        done.errors.push(format!("disconnect: {e}"));
    }
    done
}

/// Writers of `styles` on every proxy for 1.5 s, the cutover to `to`, 1.5 s
/// more; asserts no client error, every writer went on after the flip in
/// its own connection, and every session was handed over.
async fn cutover_with_long_lived_sessions(
    f: &Fleet,
    styles: &[Style],
    to: Target,
    first_writer: i64,
) -> Vec<Done> {
    let before: u64 = handed_over(f);
    let stop = Arc::new(AtomicBool::new(false));
    let flipped = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for w in 0..6i64 {
        let o = common::proxy_opts(&f.proxies[w as usize % 3], &f.my);
        let style = styles[w as usize % styles.len()];
        clients.push(tokio::spawn(long_lived(
            o,
            first_writer + w,
            style,
            stop.clone(),
            flipped.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let opts = Options {
        to,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    let mut lines = Vec::new();
    let outcome = cutover::run(&f.config(), &opts, &mut |l| lines.push(l)).await;
    eprintln!("{}", lines.join("\n"));
    let outcome = outcome.unwrap_or_else(|e| panic!("cutover failed: {e}"));
    flipped.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for c in clients {
        all.push(c.await.unwrap());
    }
    let errors: Vec<&String> = all.iter().flat_map(|d| &d.errors).collect();
    let longest = all.iter().map(|d| d.max_wait).max().unwrap_or_default();
    let handed = handed_over(f) - before;
    eprintln!(
        "handover cutover to {to:?}: writes held {} ms; longest client wait {} ms; {} writes acked; {} sessions handed over; errors {}",
        outcome.pause_ms,
        longest.as_millis(),
        all.iter().map(|d| d.acked.len()).sum::<usize>(),
        handed,
        errors.len()
    );
    assert!(errors.is_empty(), "client errors: {errors:?}");
    let phase = match to {
        Target::New => Phase::NewPrimary,
        Target::Old => Phase::DualWrite,
    };
    for p in &f.proxies {
        assert_eq!(p.state.snapshot.load().config.phase, phase);
    }
    // Every connection moved (each wrote after the flip on the connection
    // it opened before it) and nothing else was counted.
    assert_eq!(handed, 6, "sessions handed over");
    for (w, d) in all.iter().enumerate() {
        assert!(d.after_flip > 0, "writer {w} made no write after the flip");
    }
    assert!(
        longest < Duration::from_millis(opts.max_pause_ms + 1000),
        "a client waited {longest:?}"
    );
    all
}

fn handed_over(f: &Fleet) -> u64 {
    f.proxies
        .iter()
        .map(|p| p.state.fleet.handed_over.load(Ordering::Relaxed))
        .sum()
}

/// The MySQL connections went back to the pool: none stays leased.
async fn none_leased(f: &Fleet) {
    let mut leased = usize::MAX;
    for _ in 0..100 {
        leased = f.proxies.iter().map(|p| p.state.old.leased_count()).sum();
        if leased == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(leased, 0, "MySQL connections still leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_sessions_are_handed_over_at_the_cutover() {
    let f = start("fleet_hand", 305, 3).await;
    create_table(&f).await;
    f.wait_live(3).await;
    let styles = [Style::Text, Style::Prepared, Style::Manual];
    let all = cutover_with_long_lived_sessions(&f, &styles, Target::New, 400).await;
    // Every acknowledged write is on PostgreSQL; those after the flip can
    // only have been written there (the forward stream stops in
    // new_primary), in the session that was handed over.
    let acked: BTreeSet<i64> = all.iter().flat_map(|d| d.acked.iter().copied()).collect();
    let on_pg = f.pg_ids("t");
    let missing: Vec<_> = acked.difference(&on_pg).take(20).collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes missing on PostgreSQL: {missing:?}"
    );
    // Their values came through the right statements (prepared parameters
    // bound on PostgreSQL, not only the ids).
    let prepared_rows = common::servers::postgres()
        .sql(
            &f.pg,
            "SELECT count(*) FROM t WHERE v LIKE 'p%' OR v LIKE 'm%'",
        )
        .trim()
        .parse::<usize>()
        .unwrap();
    let prepared_acked: usize = all
        .iter()
        .enumerate()
        .filter(|(w, _)| w % 3 != 0)
        .map(|(_, d)| d.acked.len())
        .sum();
    assert_eq!(prepared_rows, prepared_acked);
    none_leased(&f).await;
    f.stop().await;
}

/// `tandem cutover --back`: sessions opened while PostgreSQL answered move
/// to MySQL in the same connection (text protocol; a session holding
/// prepared statements keeps the 1290, see README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lived_sessions_are_handed_back_at_cutover_back() {
    let f = start("fleet_hand_back", 306, 3).await;
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
    let styles = [Style::Text, Style::ManualText];
    let all = cutover_with_long_lived_sessions(&f, &styles, Target::Old, 500).await;
    let acked: BTreeSet<i64> = all.iter().flat_map(|d| d.acked.iter().copied()).collect();
    let on_my = f.my_ids("t").await;
    let missing: Vec<_> = acked.difference(&on_my).take(20).collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes missing on MySQL: {missing:?}"
    );
    f.stop().await;
}

/// A session with a transaction open on MySQL is not handed over: its
/// write after the flip gets 1290 (not executed), and once it rolls back it
/// moves to PostgreSQL and writes there. An idle session moves with its
/// first write, its prepared statement (prepared on MariaDB) still valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_keeps_1290_then_moves_after_rollback() {
    let f = start("fleet_hand_txn", 307, 3).await;
    create_table(&f).await;
    f.wait_live(3).await;
    let mut in_txn = common::via(&f.proxies[0], &f.my).await;
    let mut idle = common::via(&f.proxies[1], &f.my).await;
    in_txn.query_drop("BEGIN").await.unwrap();
    let _: Option<i64> = in_txn.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    let insert = idle
        .prep("INSERT INTO t (id, w, n, v) VALUES (?, ?, ?, ?)")
        .await
        .unwrap();
    idle.exec_drop(&insert, (1i64, 1, 1, "before"))
        .await
        .unwrap();
    let opts = Options {
        to: Target::New,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    let mut lines = Vec::new();
    cutover::run(&f.config(), &opts, &mut |l| lines.push(l))
        .await
        .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    let before = handed_over(&f);
    // The open transaction: refused, not executed, session still there.
    let err = in_txn
        .query_drop("INSERT INTO t (id, w, n, v) VALUES (2, 2, 2, 'txn')")
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1290, "{e}"),
        e => panic!("expected 1290, got {e}"),
    }
    assert_eq!(handed_over(&f), before, "a session in a transaction moved");
    in_txn.query_drop("ROLLBACK").await.unwrap();
    in_txn
        .query_drop("INSERT INTO t (id, w, n, v) VALUES (3, 3, 3, 'after rollback')")
        .await
        .unwrap();
    // The idle one: its held prepared statement runs on PostgreSQL.
    idle.exec_drop(&insert, (4i64, 4, 4, "after"))
        .await
        .unwrap();
    assert_eq!(handed_over(&f), before + 2);
    let rows = common::servers::postgres().sql(&f.pg, "SELECT id, v FROM t ORDER BY id");
    assert_eq!(
        rows.trim(),
        "1|before\n3|after rollback\n4|after",
        "rows on PostgreSQL"
    );
    // The idle connection reads on PostgreSQL too.
    let n: Option<i64> = idle.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(3));
    in_txn.disconnect().await.unwrap();
    idle.disconnect().await.unwrap();
    none_leased(&f).await;
    f.stop().await;
}
