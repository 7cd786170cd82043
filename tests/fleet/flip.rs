//! Cutovers under load: to PostgreSQL, back to MySQL, and with the
//! stream's lease holder killed as the fence goes up; a flip that commits
//! across the fence deadline, and a write that runs across the `--back`
//! fence.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem::config::Phase;
use tandem::fleet::cutover::{self, CutoverError, Options};
use tandem::fleet::store;
use tandem::proxy::route::Target;

use crate::common;
use crate::support::*;

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
    // The way back: no statement mirror, one proxy runs the reverse stream
    // (PostgreSQL's slot → MySQL) and MySQL ends identical.
    for p in &f.proxies {
        assert!(p.state.mirror.load_full().is_none());
        common::wait_mirrored(p).await;
    }
    let mut on_my = f.my_ids("t").await;
    for _ in 0..300 {
        if on_my == on_pg {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        on_my = f.my_ids("t").await;
    }
    let only_pg: Vec<_> = on_pg.difference(&on_my).take(20).collect();
    let only_my: Vec<_> = on_my.difference(&on_pg).take(20).collect();
    let states: Vec<_> = f
        .proxies
        .iter()
        .map(|p| {
            let s = p.state.reverse.snapshot();
            (s.state, s.error, s.checkpoint)
        })
        .collect();
    assert!(
        only_pg.is_empty() && only_my.is_empty(),
        "MySQL (streamed back) and PostgreSQL differ: only on PostgreSQL {only_pg:?}, only on MySQL {only_my:?}; reverse streams {states:?}"
    );
    let applying = f
        .proxies
        .iter()
        .filter(|p| p.state.reverse.snapshot().state == "applying")
        .count();
    assert_eq!(applying, 1, "exactly one proxy applies the reverse stream");
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
    let (outcome, seen, _) = cutover_under_load(&f, &back, 100).await;
    for p in &f.proxies {
        assert_eq!(p.state.snapshot.load().config.phase, Phase::DualWrite);
    }
    // MySQL is authoritative again and has every acknowledged write: those
    // made on PostgreSQL came through the reverse stream (caught up inside
    // the fence), those after the flip directly.
    let acked: BTreeSet<i64> = seen.acked.iter().copied().collect();
    let on_my = f.my_ids("t").await;
    let missing: Vec<_> = acked.difference(&on_my).collect();
    if !missing.is_empty() {
        // Where they went tells the reverse stream's loss (on PostgreSQL
        // only) from a write the gate let through after the flip (nowhere).
        let on_pg = f.pg_ids("t");
        let there: Vec<_> = missing.iter().filter(|id| on_pg.contains(id)).collect();
        let states: Vec<_> = f
            .proxies
            .iter()
            .map(|p| {
                let s = p.state.reverse.snapshot();
                (s.state, s.error, s.checkpoint, s.lease_holder)
            })
            .collect();
        // A pause near the deadline points at the flip racing the fence's
        // expiry (fixed: see
        // `a_flip_committing_past_the_fence_deadline_never_releases_writes_to_the_old_side`).
        panic!(
            "{} acknowledged writes missing on MySQL: {:?}; of those on PostgreSQL: {:?}; \
             reverse streams: {states:?}; writes held {} ms of at most {} ms",
            missing.len(),
            &missing[..missing.len().min(20)],
            &there[..there.len().min(20)],
            outcome.pause_ms,
            back.max_pause_ms
        );
    }
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

/// The flip checks the fence deadline when its update starts and commits a
/// moment later. A member that read the row in between saw a fence past its
/// deadline and released the writes it held to the side that was about to
/// stop being authoritative: acknowledged there after the stream's catch-up
/// target, so never copied (under load, with a pause near `--max-pause-ms`,
/// the `--back` loss of one held write per proxy). Here the flip's
/// transaction is kept open across the deadline so that the window is open
/// every time: the held write must not run on MySQL, and runs on PostgreSQL
/// once the flip commits (or is refused, not executed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_committing_past_the_fence_deadline_never_releases_writes_to_the_old_side() {
    let f = start("fleet_expire", 306, 1).await;
    create_table(&f).await;
    f.wait_live(1).await;
    let pg = store::connect(&f.config()).await.unwrap();
    let epoch = store::control(&pg).await.unwrap().epoch;
    let raised_at = std::time::Instant::now();
    let pause = Duration::from_millis(1000);
    store::raise_fence(
        &pg,
        epoch,
        pause.as_millis() as u64,
        "test: a flip racing the deadline",
    )
    .await
    .unwrap()
    .expect("the fence is raised");
    let fleet = &f.proxies[0].state.fleet;
    while fleet.status()["fenced"] != true {
        assert!(
            raised_at.elapsed() < pause / 2,
            "the proxy never saw the fence"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let o = common::proxy_opts(&f.proxies[0], &f.my);
    let write = tokio::spawn(async move {
        let mut c = mysql_async::Conn::new(o).await?;
        c.query_drop("INSERT INTO t VALUES (1, 0, 0, 'held')").await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!write.is_finished(), "a write passed the raised fence");
    // The flip as `store::advance` runs it, committed only after the
    // deadline has passed and the member has polled several times.
    let flip = store::connect(&f.config()).await.unwrap();
    flip.client.batch_execute("BEGIN").await.unwrap();
    let n = flip
        .client
        .execute(
            "UPDATE tandem_fleet_control SET epoch = epoch + 1, authority = 'new', fenced = false, \
             deadline = NULL, note = 'test flip', updated = now() \
             WHERE id = 1 AND epoch = $1 AND fenced AND deadline > now()",
            &[&epoch],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "the flip found the fence up before its deadline");
    tokio::time::sleep((pause + Duration::from_millis(600)).saturating_sub(raised_at.elapsed()))
        .await;
    let early = f.my_ids("t").await;
    let finished_early = write.is_finished();
    flip.client.batch_execute("COMMIT").await.unwrap();
    assert!(
        !early.contains(&1),
        "the held write ran on MySQL while the flip to PostgreSQL was committing (finished before the commit: {finished_early})"
    );
    let result = tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the held write was answered")
        .unwrap();
    let (on_my, on_pg) = (f.my_ids("t").await, f.pg_ids("t"));
    eprintln!("the held write after the flip: {result:?}");
    match result {
        Ok(()) => assert!(
            on_pg.contains(&1) && !on_my.contains(&1),
            "acknowledged: on PostgreSQL {}, on MySQL {}",
            on_pg.contains(&1),
            on_my.contains(&1)
        ),
        Err(e) => {
            assert_eq!(retryable(&e), Some(true), "{e}");
            assert!(
                !on_my.contains(&1) && !on_pg.contains(&1),
                "refused but executed: {e}"
            );
        }
    }
    assert_eq!(
        f.proxies[0].state.snapshot.load().config.phase,
        Phase::NewPrimary
    );
    f.stop().await;
}

/// A write still running on PostgreSQL when the `--back` fence goes up (a
/// trigger stretches it across the fence) holds the acknowledgement until it
/// commits, so the reverse stream's catch-up target includes it and it is on
/// MySQL after the flip: a statement admitted before the fence and committed
/// after the target cannot be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_running_across_the_back_fence_is_on_mysql_after_the_flip() {
    let f = start("fleet_slow", 307, 1).await;
    create_table(&f).await;
    f.wait_live(1).await;
    let mut lines = Vec::new();
    let to_new = Options {
        to: Target::New,
        max_pause_ms: 2000,
        max_lag_s: 5,
        dry_run: false,
    };
    cutover::run(&f.config(), &to_new, &mut |l| lines.push(l))
        .await
        .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    // On PostgreSQL only: a row with w = 9 takes 1.5 s inside its
    // transaction.
    common::servers::postgres().sql(
        &f.pg,
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
         'BEGIN IF NEW.w = 9 THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END'; \
         CREATE TRIGGER slow_insert BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow_insert()",
    );
    let o = common::proxy_opts(&f.proxies[0], &f.my);
    let started = std::time::Instant::now();
    let write = tokio::spawn(async move {
        let mut c = mysql_async::Conn::new(o).await?;
        c.query_drop("INSERT INTO t VALUES (9, 9, 0, 'slow')").await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the slow write finished early");
    let back = Options {
        to: Target::Old,
        max_pause_ms: 5000,
        max_lag_s: 5,
        dry_run: false,
    };
    let mut lines = Vec::new();
    let outcome = cutover::run(&f.config(), &back, &mut |l| lines.push(l))
        .await
        .unwrap_or_else(|e| panic!("{e}: {lines:?}"));
    eprintln!(
        "--back with a write running across the fence: writes held {} ms (acks {} ms, stream {} ms)",
        outcome.pause_ms, outcome.ack_ms, outcome.catch_up_ms
    );
    write.await.unwrap().expect("the slow write succeeded");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the trigger did not slow the write"
    );
    assert!(
        outcome.ack_ms >= 500,
        "the fence was acknowledged while the write ran ({} ms)",
        outcome.ack_ms
    );
    if !f.my_ids("t").await.contains(&9) {
        let on_pg = f.pg_ids("t").contains(&9);
        let r = f.proxies[0].state.reverse.snapshot();
        let later = {
            tokio::time::sleep(Duration::from_secs(3)).await;
            f.my_ids("t").await.contains(&9)
        };
        panic!(
            "the write acknowledged by PostgreSQL across the fence is not on MySQL \
             (on PostgreSQL: {on_pg}; on MySQL 3 s later: {later}); reverse stream {} {:?} checkpoint {:?} read {:?}, skipped {}; {lines:?}",
            r.state,
            r.error,
            r.checkpoint,
            r.read,
            f.proxies[0].state.reverse.skipped.load(Ordering::Relaxed)
        );
    }
    f.stop().await;
}
