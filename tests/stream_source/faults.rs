//! Binlog source tests that need their own MariaDB: purged binlogs, a killed
//! and a stalled server, `log_bin_compress`.

use super::*;

/// Reads items until a Commit and returns its position.
async fn next_commit(src: &mut BinlogSource) -> Position {
    loop {
        if let Item::Commit { position } = items(src, 1).await.pop().unwrap() {
            return position;
        }
    }
}

async fn conn_on(port: u16, db: &str) -> mysql_async::Conn {
    let opts = direct_opts(db).tcp_port(port);
    mysql_async::Conn::new(opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_binlog_is_reported_with_the_way_out() {
    let m = servers::start_private_mariadb();
    m.root_sql("CREATE DATABASE p; CREATE TABLE p.t (id INT PRIMARY KEY)");
    let mut conn = conn_on(m.port, "p").await;
    let mut src = source_at(m.port, "p", Start::Now).await;
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let saved = next_commit(&mut src).await;
    src.close().await;

    m.root_sql("FLUSH BINARY LOGS; INSERT INTO p.t VALUES (2); FLUSH BINARY LOGS");
    let newest = m.root_sql("SHOW MASTER STATUS");
    let newest = newest.split('\t').next().unwrap().to_string();
    // The closed source's dump thread may still hold the old file for a
    // moment, and PURGE skips a file in use: repeat until it is gone.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        m.root_sql(&format!("PURGE BINARY LOGS TO '{newest}'"));
        let logs = m.root_sql("SHOW BINARY LOGS");
        if logs.starts_with(&format!("{newest}\t")) {
            break;
        }
        assert!(Instant::now() < deadline, "PURGE left {logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for start in [
        Start::At(saved.clone()),
        Start::Gtid(saved.gtid.clone().unwrap()),
    ] {
        let mut src = source_at(m.port, "p", start.clone()).await;
        let err = tokio::time::timeout(Duration::from_secs(30), src.next_item())
            .await
            .expect("an answer within 30 s")
            .expect_err("the position is gone");
        match &err {
            StreamError::Purged { wanted, oldest } => {
                assert_eq!(oldest, &newest, "{start:?}");
                assert!(
                    wanted.contains(&saved.file) || wanted.contains(saved.gtid.as_deref().unwrap()),
                    "{wanted}"
                );
            }
            other => panic!("expected Purged for {start:?}, got {other:?}"),
        }
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(
            text.contains("tandem backfill") && text.contains("tandem verify"),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_is_a_retryable_disconnect_and_resume_continues() {
    let mut m = servers::start_private_mariadb();
    m.root_sql("CREATE DATABASE k; CREATE TABLE k.t (id INT PRIMARY KEY)");
    let mut src = source_at(m.port, "k", Start::Now).await;
    let mut conn = conn_on(m.port, "k").await;
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let saved = next_commit(&mut src).await;
    drop(conn);

    m.kill();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(30), src.next_item())
            .await
            .expect("the loss is noticed within 30 s")
        {
            Ok(Item::Progress { .. }) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StreamError::Disconnected(_)), "{err:?}");
    assert!(err.is_retryable());

    m.restart();
    let mut conn = conn_on(m.port, "k").await;
    conn.query_drop("INSERT INTO t VALUES (2)").await.unwrap();
    let mut src = source_at(m.port, "k", Start::At(saved)).await;
    let got = items(&mut src, 1).await;
    assert_eq!(
        changes(&got),
        [RowChange::Insert {
            after: vec![Value::Int(2)]
        }]
    );
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_binlog_events_decode() {
    let m = servers::start_private_mariadb();
    m.root_sql("SET GLOBAL log_bin_compress = ON, log_bin_compress_min_len = 10");
    m.root_sql("CREATE DATABASE z");
    let mut src = source_at(m.port, "z", Start::Now).await;
    let mut conn = conn_on(m.port, "z").await;
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, body TEXT, n DECIMAL(8,2)) /* padding so the statement is compressed */")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (1, REPEAT('abc', 500), 1.5), (2, 'short', NULL)")
        .await
        .unwrap();
    conn.query_drop("UPDATE t SET body = REPEAT('xyz', 400) WHERE id = 2")
        .await
        .unwrap();
    conn.query_drop("DELETE FROM t WHERE id = 1").await.unwrap();
    let got = items(&mut src, 4).await;
    assert!(
        got.iter()
            .any(|i| matches!(i, Item::Ddl { sql, .. } if sql.starts_with("CREATE TABLE t"))),
        "{got:?}"
    );
    let long = |s: &str, n| Value::Text(s.repeat(n));
    let dec = Value::parse_decimal("1.5").unwrap();
    assert_eq!(
        changes(&got),
        [
            RowChange::Insert {
                after: vec![Value::Int(1), long("abc", 500), dec.clone()]
            },
            RowChange::Insert {
                after: vec![Value::Int(2), Value::Text("short".into()), Value::Null]
            },
            RowChange::Update {
                before: vec![Value::Int(2), Value::Text("short".into()), Value::Null],
                after: vec![Value::Int(2), long("xyz", 400), Value::Null]
            },
            RowChange::Delete {
                before: vec![Value::Int(1), long("abc", 500), dec]
            },
        ]
    );
    let events = m.root_sql("SHOW BINLOG EVENTS");
    assert!(
        events.contains("Write_rows_compressed") && events.contains("Query_compressed"),
        "the server really compressed: {events}"
    );
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_advance_an_idle_stream_and_a_stalled_server_is_a_disconnect() {
    let m = servers::start_private_mariadb();
    m.root_sql("CREATE DATABASE h");
    let mut opts = SourceOptions::new(SourceFilter::databases(["h"]));
    opts.heartbeat = Some(Duration::from_millis(300));
    let mut src = BinlogSource::connect(&target(m.port), opts).await.unwrap();
    let at = src.position();
    // Nothing is written: only heartbeats arrive, each a Progress at the
    // current end of the binlog.
    let started = Instant::now();
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(5), src.next_item())
            .await
            .expect("a heartbeat within 5 s")
            .unwrap()
        {
            Item::Progress { position, .. } => assert_eq!(position, at),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(500));

    // A server that stops answering (SIGSTOP) is noticed by the missed
    // heartbeats: Disconnected, retryable.
    let pid: i32 = std::fs::read_to_string(m.dir().join("mysqld.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let stalled = Instant::now();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(10), src.next_item())
            .await
            .expect("the stall is noticed within 10 s")
        {
            Ok(Item::Progress { .. }) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(matches!(err, StreamError::Disconnected(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        stalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        stalled.elapsed()
    );
}
