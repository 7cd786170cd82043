//! What keeps a fleet from splitting outside a cutover: a proxy that
//! misses the fence cannot write, a fleet-wide phase edit is refused, and
//! reload follows a ConfigMap update.

use mysql_async::prelude::*;
use std::time::Duration;

use tandem::config::{Config, Phase};
use tandem::fleet::cutover::{self, CutoverError, Options};
use tandem::fleet::store;
use tandem::proxy::route::Target;

use crate::common::{self, servers};
use crate::support::*;

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
    std::fs::write(&path, toml(&f.base.clone().phase("new_primary"), 0)).unwrap();
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
        toml(&f.base.clone().limit("statement_cache_size", "77"), 0),
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
