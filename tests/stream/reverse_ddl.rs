//! The reverse stream carries DDL back to MariaDB in order with the rows:
//! `tandem.ddl` markers written by hand and by a `new_primary` proxy, a
//! restart between a DDL and its checkpoint, and a column change made on
//! PostgreSQL without a marker (the drift log). Shares `Pair` and the waits
//! with `reverse.rs`.

use super::*;

/// A `tandem.ddl` marker in the same PostgreSQL transaction as the DDL (what
/// the proxy is to emit; written by hand here) reaches MariaDB in order with
/// the rows: the ALTER lands before the update that fills the new column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ddl_marker_is_applied_on_mariadb_in_order_with_the_rows() {
    let p = pair("rev_ddl", "stop");
    p.my_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v text NULL)");
    p.pg_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v text)");
    let stats = Arc::new(StreamStats::default());
    let running = p.start(&stats);
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;

    let marker = tandem::stream::reverse::ddl::Marker {
        mysql: "ALTER TABLE t ADD COLUMN c int NULL".into(),
        database: p.my.clone(),
        tables: vec!["t".into()],
    };
    let pg = p.pg_client().await;
    pg.batch_execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        .await
        .unwrap();
    pg.batch_execute("BEGIN; ALTER TABLE t ADD COLUMN c int")
        .await
        .unwrap();
    pg.execute(tandem::stream::reverse::ddl::EMIT_SQL, &[&marker.to_json()])
        .await
        .unwrap();
    pg.batch_execute("COMMIT; UPDATE t SET c = id * 10; INSERT INTO t VALUES (3, 'c', 30)")
        .await
        .unwrap();
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    let sum = p
        .my_count("SELECT CAST(sum(c) AS UNSIGNED) FROM t WHERE c = id * 10")
        .await;
    assert_eq!(
        sum, 60,
        "the new column exists on MariaDB and carries the rows"
    );
    p.assert_identical().await;
    running.cancel.cancel();
    running.task.await.unwrap().unwrap();
}

/// Columns (name, type, nullability, default), indexes and rows of every
/// table of MariaDB database `db` but Tandem's own, as comparable lines.
async fn my_tables_and_rows(db: &str) -> Vec<String> {
    let mut c = common::direct(db).await;
    let mut out: Vec<String> = c
        .exec(
            "SELECT CONCAT_WS('|', 'column', table_name, column_name, column_type, is_nullable, \
             IFNULL(column_default, '-')) FROM information_schema.columns \
             WHERE table_schema = ? AND table_name NOT LIKE 'tandem%' \
             ORDER BY table_name, ordinal_position",
            (db,),
        )
        .await
        .unwrap();
    let indexes: Vec<String> = c
        .exec(
            "SELECT CONCAT_WS('|', 'index', table_name, index_name, non_unique, seq_in_index, \
             column_name) FROM information_schema.statistics \
             WHERE table_schema = ? AND table_name NOT LIKE 'tandem%' \
             ORDER BY table_name, index_name, seq_in_index",
            (db,),
        )
        .await
        .unwrap();
    out.extend(indexes);
    let tables: Vec<String> = c
        .exec(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = ? AND table_name NOT LIKE 'tandem%' ORDER BY table_name",
            (db,),
        )
        .await
        .unwrap();
    for t in tables {
        let rows: Vec<mysql_async::Row> = c
            .query(format!("SELECT * FROM `{t}` ORDER BY 1"))
            .await
            .unwrap();
        for r in rows {
            out.push(format!("row|{t}|{:?}", r.unwrap()));
        }
    }
    out
}

/// DDL and row writes through the proxy in `new_primary`, interleaved on two
/// tables, CREATE / ALTER ADD COLUMN / CREATE INDEX / DROP TABLE and a DDL
/// inside a client transaction: the reverse stream carries each DDL back in
/// order with the rows (its `tandem.ddl` marker is in the DDL's PostgreSQL
/// transaction, the new table joins the publication there), and MariaDB ends
/// with the same tables, columns, indexes and rows as the same statements
/// run directly on MariaDB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_through_a_new_primary_proxy_reaches_mariadb_in_order() {
    let p = pair("rev_ddl_proxy", "stop");
    let reference = servers::mariadb().create_database("rev_ddl_ref");
    const OTHER: &str = "CREATE TABLE other (id int NOT NULL PRIMARY KEY, v varchar(20) NULL)";
    p.my_sql(OTHER);
    servers::mariadb().root_sql(&format!("USE `{reference}`; {OTHER}"));
    p.pg_sql("CREATE TABLE other (id int NOT NULL PRIMARY KEY, v varchar(20))");
    let (proxy, tasks) = start_streaming(&p.toml).await;
    wait_caught_up(&p, &proxy.state.reverse, Duration::from_secs(30)).await;

    const STATEMENTS: &[&str] = &[
        "INSERT INTO other (id, v) VALUES (1, 'a'), (2, 'b')",
        "CREATE TABLE fresh (id int NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(40) NOT NULL, amount decimal(10,2) NULL)",
        "INSERT INTO fresh (name, amount) VALUES ('x', 1.50), ('y', 2.25), ('z', NULL)",
        "INSERT INTO other (id, v) VALUES (3, 'c')",
        "ALTER TABLE fresh ADD COLUMN note varchar(30) NULL",
        "UPDATE fresh SET note = CONCAT('n', id) WHERE id <> 2",
        "UPDATE other SET v = 'bb' WHERE id = 2",
        "CREATE INDEX fresh_name ON fresh (name)",
        "INSERT INTO fresh (name, amount, note) VALUES ('w', 4.00, 'last')",
        "CREATE TABLE gone (id int NOT NULL PRIMARY KEY, v int NULL)",
        "INSERT INTO gone VALUES (1, 1), (2, 2)",
        "DELETE FROM other WHERE id = 1",
        "DROP TABLE gone",
        "START TRANSACTION",
        "INSERT INTO other (id, v) VALUES (4, 'd')",
        "ALTER TABLE other ADD COLUMN extra int NULL",
        "UPDATE other SET extra = id * 10",
        "COMMIT",
        "INSERT INTO fresh (name) VALUES ('after')",
    ];
    let mut via = common::via(&proxy, &p.my).await;
    let mut direct = common::direct(&reference).await;
    for s in STATEMENTS {
        via.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("through the proxy: {s}: {e}"));
        direct
            .query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("directly: {s}: {e}"));
    }
    assert_eq!(p.pg_sql("SELECT count(*) FROM fresh"), "5");
    assert_eq!(
        p.pg_sql(
            "SELECT count(*) FROM pg_publication_tables WHERE tablename = 'fresh' AND pubname LIKE 'tandem_reverse_%'"
        ),
        "1",
        "the created table joined the publication"
    );
    assert_eq!(
        p.pg_sql("SELECT count(*) FROM pg_publication_rel WHERE prrelid NOT IN (SELECT oid FROM pg_class)"),
        "0",
        "DROP TABLE took the dropped table out of the publication"
    );
    wait_caught_up(&p, &proxy.state.reverse, Duration::from_secs(30)).await;
    let snap = proxy.state.reverse.snapshot();
    assert_eq!(snap.state, "applying", "{:?}", snap.error);
    let got = my_tables_and_rows(&p.my).await;
    let want = my_tables_and_rows(&reference).await;
    assert!(
        want.iter().any(|l| l.starts_with("index|fresh|fresh_name")),
        "{want:?}"
    );
    assert!(!want.iter().any(|l| l.contains("|gone|")), "{want:?}");
    assert_eq!(
        got, want,
        "MariaDB through the reverse stream vs the same statements direct"
    );
    p.assert_identical().await;
    stop_streaming(proxy, tasks).await;
}

/// The state a crash leaves between a DDL and its checkpoint (MySQL commits
/// DDL implicitly, so the DDL is on MariaDB while the checkpoint is still
/// before it), made exactly: the stream is stopped at a checkpoint, DDL runs
/// through the proxy and the same DDL directly on MariaDB, then a stream
/// starts from that checkpoint. It re-reads every DDL, passes over "duplicate
/// column" / "table exists" / "duplicate key name" / "unknown table", and
/// goes on with the rows after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_a_ddl_and_its_checkpoint_re_applies_safely() {
    let p = pair("rev_ddl_restart", "stop");
    p.my_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v int NULL)");
    p.pg_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v int)");
    let proxy = common::start_proxy_with(&p.toml).await;
    let stats = Arc::new(StreamStats::default());
    let first = p.start(&stats);
    let mut via = common::via(&proxy, &p.my).await;
    via.query_drop("INSERT INTO t VALUES (1, 1)").await.unwrap();
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    first.cancel.cancel();
    first.task.await.unwrap().unwrap();
    let stopped_at = stats.snapshot().checkpoint;

    const DDL: &[&str] = &[
        "ALTER TABLE t ADD COLUMN c int NULL",
        "CREATE TABLE u (id int NOT NULL PRIMARY KEY, w varchar(10) NULL)",
        "CREATE INDEX t_v ON t (v)",
        "CREATE TABLE gone (id int NOT NULL PRIMARY KEY)",
        "DROP TABLE gone",
    ];
    for s in DDL {
        via.query_drop(*s).await.unwrap();
    }
    // What the crashed stream had already done on MariaDB.
    p.my_sql(&DDL.join("; "));
    via.query_drop("UPDATE t SET c = 7 WHERE id = 1")
        .await
        .unwrap();
    via.query_drop("INSERT INTO u VALUES (1, 'one')")
        .await
        .unwrap();

    let stats2 = Arc::new(StreamStats::default());
    let second = p.start(&stats2);
    wait_caught_up(&p, &stats2, Duration::from_secs(30)).await;
    eprintln!(
        "checkpoint at the stop {stopped_at:?}; after the restart {:?}",
        stats2.snapshot().checkpoint
    );
    assert_eq!(
        p.my_count("SELECT CAST(c AS UNSIGNED) FROM t WHERE id = 1")
            .await,
        7,
        "the row change after the re-read ALTER arrived"
    );
    assert_eq!(p.my_count("SELECT count(*) FROM u").await, 1);
    p.assert_identical().await;
    second.cancel.cancel();
    second.task.await.unwrap().unwrap();
    proxy.shutdown.cancel();
    let _ = proxy.task.await;
}

/// DDL run on PostgreSQL directly carries no marker: when the table's
/// columns change under the stream (pgoutput re-sends its Relation) it is
/// logged and recorded in the drift log. Here the operator ran the same DDL
/// on MariaDB by hand, so the rows after it still apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_change_without_a_marker_goes_to_the_drift_log() {
    let p = pair("rev_unmarked", "stop");
    p.my_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v int NULL)");
    p.pg_sql("CREATE TABLE t (id int NOT NULL PRIMARY KEY, v int)");
    let config = p.config();
    let stats = Arc::new(StreamStats::default());
    let drift = DriftLog::start(config.mirror.drift_log.clone());
    let opener = Arc::new(
        ReverseOpener::from_config(&config, Arc::clone(&stats))
            .unwrap()
            .with_drift(drift.clone()),
    );
    let cfg = reverse::run_config(&config, Arc::new(Default::default())).unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run::run(
        cfg,
        opener,
        Arc::clone(&stats),
        Some(drift.clone()),
        cancel.clone(),
    ));
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    p.pg_sql("INSERT INTO t VALUES (1, 1)");
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    assert_eq!(drift.recorded(), 0, "no column change yet");

    p.my_sql("ALTER TABLE t ADD COLUMN z int NULL");
    p.pg_sql("ALTER TABLE t ADD COLUMN z int");
    p.pg_sql("INSERT INTO t VALUES (2, 2, 20)");
    wait_caught_up(&p, &stats, Duration::from_secs(30)).await;
    assert_eq!(drift.recorded(), 1, "one unmarked column change");
    let lines = common::settled_jsonl(&p.dir.join("drift.jsonl"), 1).await;
    let line = lines.last().expect("a drift record").to_string();
    assert!(line.contains("columns of table t changed"), "{line}");
    assert!(line.contains("id, v, z"), "{line}");
    assert_eq!(
        p.my_count("SELECT CAST(z AS UNSIGNED) FROM t WHERE id = 2")
            .await,
        20
    );
    p.assert_identical().await;
    cancel.cancel();
    task.await.unwrap().unwrap();
}
