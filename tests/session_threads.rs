//! Sessions on session threads (`tandem::workers`, the layout `tandem serve`
//! uses): each session and its backend connection live on one thread's
//! event loop, while the backend pool stays one global limit. An idle
//! backend connection opened on one thread is reused by a session on
//! another (moved to that thread's event loop), and shutdown drains them.

mod common;

use std::time::Duration;

use mysql_async::prelude::*;
use tokio_util::sync::CancellationToken;

use common::{config_for, servers, PROXY_PASSWORD, PROXY_USER};
use tandem::config::Config;
use tandem::server::AppState;
use tandem::workers::Workers;

async fn backend_id(conn: &mut mysql_async::Conn) -> u64 {
    conn.query_first("SELECT CONNECTION_ID()")
        .await
        .expect("query through the proxy")
        .expect("a row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_two_threads_share_one_bounded_pool() {
    let db = servers::mariadb().create_database("threads");
    let toml = config_for(&db, "pool_size = 1\nacquire_timeout_ms = 10000");
    let config = Config::from_toml(&toml, |k| std::env::var(k).ok()).expect("config");
    let (listener, addr) = tandem::server::bind(&config).await.expect("bind");
    let state = AppState::new(config).expect("state");
    let workers = Workers::start(2).expect("session threads");
    let shutdown = CancellationToken::new();

    let clients = async {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(addr.port())
            .user(Some(PROXY_USER))
            .pass(Some(PROXY_PASSWORD))
            .db_name(Some(&db))
            .prefer_socket(false);
        // First session (thread 0) opens the only backend connection.
        let mut a = mysql_async::Conn::new(opts.clone())
            .await
            .expect("connect a");
        let first = backend_id(&mut a).await;
        a.disconnect().await.expect("disconnect a");
        for _ in 0..200 {
            if state.old.idle_count() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            state.old.idle_count(),
            1,
            "a's backend connection is pooled"
        );

        // Second session (thread 1) gets that connection, moved to its thread.
        let mut b = mysql_async::Conn::new(opts.clone())
            .await
            .expect("connect b");
        assert_eq!(
            backend_id(&mut b).await,
            first,
            "the pooled connection is reused"
        );
        b.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
            .await
            .unwrap();
        b.exec_drop("INSERT INTO t VALUES (?, ?)", (1, "x"))
            .await
            .unwrap();
        let v: Option<String> = b
            .exec_first("SELECT v FROM t WHERE id = ?", (1,))
            .await
            .unwrap();
        assert_eq!(
            v.as_deref(),
            Some("x"),
            "prepared statements work after the move"
        );

        // A third session (thread 0) waits for the single slot: the pool
        // limit holds across threads.
        let third = tokio::spawn({
            let opts = opts.clone();
            async move {
                let mut c = mysql_async::Conn::new(opts).await.expect("connect c");
                let id = backend_id(&mut c).await;
                c.disconnect().await.expect("disconnect c");
                id
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !third.is_finished(),
            "a second backend connection was opened beyond pool_size"
        );
        assert_eq!(state.old.leased_count(), 1);
        b.disconnect().await.expect("disconnect b");
        let id = tokio::time::timeout(Duration::from_secs(10), third)
            .await
            .expect("c got the slot once b left")
            .expect("c's task");
        assert_eq!(id, first, "still the one backend connection, moved back");
        shutdown.cancel();
    };
    let served = tandem::server::run_on(listener, state.clone(), shutdown.clone(), Some(&workers));
    tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(served, clients)
    })
    .await
    .expect("sessions and shutdown finish");
    assert_eq!(
        state.old.idle_count(),
        0,
        "shutdown closed the idle connection"
    );
    drop(workers);
}
