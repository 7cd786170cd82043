//! The applier with source transactions built by hand.

use std::sync::Arc;
use std::time::Instant;

use tandem::config::{BackendConfig, Config};
use tandem::stream::apply::{Applier, ApplyError, ApplyOptions, NoKey, OnError, StreamStats};
use tandem::stream::{Change, Position, RowChange, SourceColumn, SourceTable};
use tandem::value::mysql::MysqlType;
use tandem::value::Value;

use crate::common::servers;

/// `[backends.new]` for a PostgreSQL (or MariaDB) database.
pub fn backend(kind: &str, url: &str) -> BackendConfig {
    let toml = format!(
        "[[users]]\nname = \"a\"\npassword = \"b\"\n[backends.old]\nkind = \"mysql\"\nurl = \"mysql://a:b@127.0.0.1:1/x\"\n\
         [backends.new]\nkind = \"{kind}\"\nurl = \"{url}\"\n"
    );
    Config::from_toml(&toml, |_| None)
        .expect("config")
        .backends
        .new
        .expect("new backend")
}

pub fn table(db: &str, name: &str, cols: &[(&str, &str)], key: &[usize]) -> Arc<SourceTable> {
    Arc::new(SourceTable {
        database: db.into(),
        name: name.into(),
        columns: cols
            .iter()
            .map(|(n, t)| SourceColumn {
                name: n.to_string(),
                ty: MysqlType::from_column_type(t),
                column_type: t.to_string(),
            })
            .collect(),
        key: key.to_vec(),
    })
}

pub fn pos(n: u64) -> Position {
    Position {
        file: "mariadb-bin.000001".into(),
        offset: 1000 + n,
        gtid: Some(format!("0-1-{n}")),
    }
}

fn row(id: i128, name: &str, amount: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::Text(name.into()),
        Value::parse_decimal(amount).expect("decimal"),
    ]
}

fn ins(t: &Arc<SourceTable>, after: Vec<Value>) -> Change {
    Change {
        table: Arc::clone(t),
        change: RowChange::Insert { after },
    }
}

fn upd(t: &Arc<SourceTable>, before: Vec<Value>, after: Vec<Value>) -> Change {
    Change {
        table: Arc::clone(t),
        change: RowChange::Update { before, after },
    }
}

fn del(t: &Arc<SourceTable>, before: Vec<Value>) -> Change {
    Change {
        table: Arc::clone(t),
        change: RowChange::Delete { before },
    }
}

const ACCOUNTS: &[(&str, &str)] = &[
    ("id", "int(11)"),
    ("name", "varchar(40)"),
    ("amount", "decimal(10,2)"),
];

/// A PostgreSQL database with `accounts`.
fn pg_db(prefix: &str) -> (String, BackendConfig) {
    let pg = servers::postgres();
    let db = pg.create_database(prefix);
    pg.sql(
        &db,
        "CREATE TABLE accounts (id integer PRIMARY KEY, name varchar(40) NOT NULL, amount numeric(10,2))",
    );
    let b = backend("postgres", &pg.url(&db));
    (db, b)
}

async fn applier(b: &BackendConfig, opts: ApplyOptions) -> Applier {
    Applier::connect(b, opts, Arc::new(StreamStats::default()), None)
        .await
        .expect("applier connects")
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        database: Some("src".into()),
        ..ApplyOptions::default()
    }
}

/// Applies one source transaction and commits it alone.
async fn apply_txn(a: &mut Applier, n: u64, changes: Vec<Change>) -> Result<(), ApplyError> {
    a.begin(Some(format!("0-1-{n}")), 1_700_000_000 + n as u32);
    a.rows(&changes).await?;
    a.commit_txn(pos(n));
    a.commit().await
}

fn pg_rows(db: &str, sql: &str) -> String {
    servers::postgres().sql(db, sql).trim().to_string()
}

#[tokio::test]
async fn inserts_updates_key_changes_and_deletes_reach_postgres() {
    let (db, b) = pg_db("stream_rows");
    let t = table("src", "accounts", ACCOUNTS, &[0]);
    let mut a = applier(&b, opts()).await;
    assert_eq!(a.checkpoint().await.unwrap(), None);
    apply_txn(
        &mut a,
        1,
        vec![
            ins(&t, row(1, "ann", "10.50")),
            ins(&t, row(2, "bob", "20.00")),
            ins(&t, row(3, "cy", "-3.25")),
        ],
    )
    .await
    .unwrap();
    apply_txn(
        &mut a,
        2,
        vec![upd(&t, row(2, "bob", "20.00"), row(2, "bob's", "21.00"))],
    )
    .await
    .unwrap();
    // Key change: 3 becomes 30.
    apply_txn(
        &mut a,
        3,
        vec![upd(&t, row(3, "cy", "-3.25"), row(30, "cy", "-3.25"))],
    )
    .await
    .unwrap();
    apply_txn(&mut a, 4, vec![del(&t, row(1, "ann", "10.50"))])
        .await
        .unwrap();
    // A change to another database is not applied.
    let other = table("elsewhere", "accounts", ACCOUNTS, &[0]);
    apply_txn(&mut a, 5, vec![ins(&other, row(99, "x", "1"))])
        .await
        .unwrap();
    assert_eq!(
        pg_rows(&db, "SELECT id, name, amount FROM accounts ORDER BY id"),
        "2|bob's|21.00\n30|cy|-3.25"
    );
    let cp = a.checkpoint().await.unwrap().expect("checkpoint stored");
    assert_eq!(cp.position, pos(5));
    assert_eq!(
        pg_rows(
            &db,
            "SELECT stream_id, file, \"offset\", gtid FROM tandem_stream_checkpoint"
        ),
        "default|mariadb-bin.000001|1005|0-1-5"
    );
}

#[tokio::test]
async fn grouped_transactions_commit_once_and_replays_change_nothing() {
    let (db, b) = pg_db("stream_group");
    let t = table("src", "accounts", ACCOUNTS, &[0]);
    // 300 source transactions: inserts, updates of rows inserted earlier in
    // the same group, key changes and deletes, all in one target transaction.
    let mut txns: Vec<Vec<Change>> = Vec::new();
    for i in 0..100i128 {
        txns.push(vec![ins(&t, row(i, &format!("n{i}"), "1.00"))]);
    }
    for i in 0..100i128 {
        txns.push(vec![upd(
            &t,
            row(i, &format!("n{i}"), "1.00"),
            row(i, &format!("n{i}"), &format!("{i}.50")),
        )]);
    }
    for i in 0..50i128 {
        // Even ids move to id + 1000; odd ones are deleted.
        let before = row(2 * i, &format!("n{}", 2 * i), &format!("{}.50", 2 * i));
        let mut after = before.clone();
        after[0] = Value::Int(2 * i + 1000);
        txns.push(vec![upd(&t, before, after)]);
        let odd = 2 * i + 1;
        txns.push(vec![del(
            &t,
            row(odd, &format!("n{odd}"), &format!("{odd}.50")),
        )]);
    }
    let mut a = applier(&b, opts()).await;
    let stats_before = std::time::Instant::now();
    for (n, changes) in txns.iter().enumerate() {
        a.begin(None, 0);
        a.rows(changes).await.unwrap();
        a.commit_txn(pos(n as u64 + 1));
    }
    assert_eq!(a.group_txns(), 300);
    // Nothing is visible before the group commits.
    assert_eq!(pg_rows(&db, "SELECT count(*) FROM accounts"), "0");
    a.commit().await.unwrap();
    let expect = pg_rows(
        &db,
        "SELECT count(*), min(id), max(id), sum(amount) FROM accounts",
    );
    let want_sum: f64 = (0..50).map(|i| (2 * i) as f64 + 0.5).sum();
    assert_eq!(expect, format!("50|1000|1098|{want_sum:.2}"));
    assert_eq!(a.checkpoint().await.unwrap().unwrap().position, pos(300));
    eprintln!(
        "300 transactions in one group: {:?}",
        stats_before.elapsed()
    );

    // A source that delivers everything again (at-least-once) changes nothing.
    let mut again = applier(&b, opts()).await;
    for (n, changes) in txns.iter().enumerate() {
        again.begin(None, 0);
        again.rows(changes).await.unwrap();
        again.commit_txn(pos(n as u64 + 1));
        if n % 7 == 0 {
            again.commit().await.unwrap();
        }
    }
    again.commit().await.unwrap();
    assert_eq!(
        pg_rows(
            &db,
            "SELECT count(*), min(id), max(id), sum(amount) FROM accounts"
        ),
        expect
    );
}

#[tokio::test]
async fn an_uncommitted_group_leaves_neither_rows_nor_checkpoint() {
    let (db, b) = pg_db("stream_crash");
    let t = table("src", "accounts", ACCOUNTS, &[0]);
    let mut a = applier(&b, opts()).await;
    apply_txn(&mut a, 1, vec![ins(&t, row(1, "a", "1"))])
        .await
        .unwrap();
    // A transaction large enough to be sent in parts, then the process
    // "dies" before its commit: the connection is dropped.
    let small = ApplyOptions {
        max_batch_changes: 50,
        ..opts()
    };
    let mut b2 = applier(&b, small).await;
    b2.begin(None, 0);
    let big: Vec<Change> = (2..500).map(|i| ins(&t, row(i, "big", "2"))).collect();
    b2.rows(&big).await.unwrap();
    b2.commit_txn(pos(2));
    drop(b2);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(pg_rows(&db, "SELECT count(*) FROM accounts"), "1");
    let mut restarted = applier(&b, opts()).await;
    let cp = restarted.checkpoint().await.unwrap().unwrap();
    assert_eq!(
        cp.position,
        pos(1),
        "restart resumes after the last committed transaction"
    );
    // The resumed stream applies it, in parts, exactly once.
    let mut c = applier(
        &b,
        ApplyOptions {
            max_batch_changes: 50,
            ..opts()
        },
    )
    .await;
    apply_txn(&mut c, 2, big).await.unwrap();
    assert_eq!(
        pg_rows(&db, "SELECT count(*), count(DISTINCT id) FROM accounts"),
        "499|499"
    );
    assert_eq!(c.checkpoint().await.unwrap().unwrap().position, pos(2));
}

#[tokio::test]
async fn a_refused_transaction_stops_or_is_skipped_into_the_drift_log() {
    let (db, b) = pg_db("stream_refused");
    let t = table("src", "accounts", ACCOUNTS, &[0]);
    // NULL into a NOT NULL column on the target.
    let bad = vec![Value::Int(7), Value::Null, Value::Int(1)];
    let mut a = applier(&b, opts()).await;
    apply_txn(&mut a, 1, vec![ins(&t, row(1, "a", "1"))])
        .await
        .unwrap();
    let err = apply_txn(
        &mut a,
        2,
        vec![ins(&t, row(2, "b", "1")), ins(&t, bad.clone())],
    )
    .await
    .expect_err("the target refuses NULL");
    assert!(
        matches!(&err, ApplyError::Refused { gtid: Some(g), message } if g == "0-1-2" && message.contains("null")),
        "{err}"
    );
    assert_eq!(a.checkpoint().await.unwrap().unwrap().position, pos(1));
    assert_eq!(pg_rows(&db, "SELECT count(*) FROM accounts"), "1");

    let dir = std::env::temp_dir().join(format!("tandem-stream-drift-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("drift.jsonl");
    let drift = tandem::dualwrite::drift::DriftLog::start(path.clone());
    let mut s = Applier::connect(
        &b,
        ApplyOptions {
            on_error: OnError::Skip,
            ..opts()
        },
        Arc::new(StreamStats::default()),
        Some(drift.clone()),
    )
    .await
    .unwrap();
    s.begin(Some("0-1-2".into()), 0);
    s.rows(&[ins(&t, row(2, "b", "1")), ins(&t, bad)])
        .await
        .unwrap();
    s.commit_txn(pos(2));
    let err = s.commit().await.expect_err("refused");
    s.begin(Some("0-1-2".into()), 0);
    s.skip_txn(pos(2), &err).await.unwrap();
    apply_txn(&mut s, 3, vec![ins(&t, row(3, "c", "1"))])
        .await
        .unwrap();
    assert_eq!(pg_rows(&db, "SELECT id FROM accounts ORDER BY id"), "1\n3");
    assert_eq!(s.checkpoint().await.unwrap().unwrap().position, pos(3));
    let mut logged = String::new();
    for _ in 0..50 {
        logged = std::fs::read_to_string(&path).unwrap_or_default();
        if !logged.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        logged.contains("0-1-2") && logged.contains("\"phase\":\"stream\""),
        "{logged}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tables_without_a_key_match_all_columns_or_are_skipped() {
    let pg = servers::postgres();
    let (db, b) = pg_db("stream_nokey");
    pg.sql(&db, "CREATE TABLE events (kind text, n integer)");
    let t = table(
        "src",
        "events",
        &[("kind", "varchar(10)"), ("n", "int(11)")],
        &[],
    );
    let ev = |k: &str, n: i128| vec![Value::Text(k.into()), Value::Int(n)];
    let mut a = applier(&b, opts()).await;
    apply_txn(
        &mut a,
        1,
        vec![
            ins(&t, ev("a", 1)),
            ins(&t, ev("a", 1)),
            ins(&t, ev("b", 2)),
        ],
    )
    .await
    .unwrap();
    apply_txn(
        &mut a,
        2,
        vec![del(&t, ev("a", 1)), upd(&t, ev("b", 2), ev("b", 3))],
    )
    .await
    .unwrap();
    assert_eq!(
        pg_rows(&db, "SELECT kind, n FROM events ORDER BY kind, n"),
        "a|1\nb|3"
    );

    let mut skip = applier(
        &b,
        ApplyOptions {
            no_key: NoKey::Skip,
            ..opts()
        },
    )
    .await;
    apply_txn(&mut skip, 3, vec![ins(&t, ev("c", 9))])
        .await
        .unwrap();
    assert_eq!(pg_rows(&db, "SELECT count(*) FROM events"), "2");
    assert_eq!(skip.checkpoint().await.unwrap().unwrap().position, pos(3));
}

#[tokio::test]
async fn ddl_is_translated_and_the_new_table_is_written() {
    let (db, b) = pg_db("stream_ddl");
    let mut a = applier(&b, opts()).await;
    a.ddl(
        "src",
        "CREATE TABLE `items` (`id` bigint unsigned NOT NULL AUTO_INCREMENT, `label` varchar(20) DEFAULT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB",
        Some("0-1-1".into()),
        pos(1),
    )
    .await
    .unwrap();
    let t = table(
        "src",
        "items",
        &[("id", "bigint(20) unsigned"), ("label", "varchar(20)")],
        &[0],
    );
    apply_txn(
        &mut a,
        2,
        vec![ins(&t, vec![Value::Int(5), Value::Text("x".into())])],
    )
    .await
    .unwrap();
    a.ddl(
        "src",
        "ALTER TABLE items ADD COLUMN qty int NOT NULL DEFAULT 0",
        None,
        pos(3),
    )
    .await
    .unwrap();
    let t2 = table(
        "src",
        "items",
        &[
            ("id", "bigint(20) unsigned"),
            ("label", "varchar(20)"),
            ("qty", "int(11)"),
        ],
        &[0],
    );
    apply_txn(
        &mut a,
        4,
        vec![ins(&t2, vec![Value::Int(6), Value::Null, Value::Int(3)])],
    )
    .await
    .unwrap();
    assert_eq!(
        pg_rows(&db, "SELECT id, label, qty FROM items ORDER BY id"),
        "5|x|0\n6||3"
    );
    assert_eq!(a.checkpoint().await.unwrap().unwrap().position, pos(4));
}

#[tokio::test]
async fn a_mysql_target_gets_the_same_rows() {
    let m = servers::mariadb();
    let db = m.create_database("stream_my");
    m.root_sql(&format!(
        "CREATE TABLE `{db}`.accounts (id int PRIMARY KEY, name varchar(40) NOT NULL, amount decimal(10,2))"
    ));
    let b = backend("mysql", &m.url(&db));
    let t = table("src", "accounts", ACCOUNTS, &[0]);
    let mut a = applier(&b, opts()).await;
    apply_txn(
        &mut a,
        1,
        vec![ins(&t, row(1, "ann", "10.50")), ins(&t, row(2, "bob", "2"))],
    )
    .await
    .unwrap();
    apply_txn(
        &mut a,
        2,
        vec![
            upd(&t, row(2, "bob", "2"), row(20, "bob", "2.5")),
            del(&t, row(1, "ann", "10.50")),
        ],
    )
    .await
    .unwrap();
    // Replayed: no change.
    apply_txn(
        &mut a,
        2,
        vec![
            upd(&t, row(2, "bob", "2"), row(20, "bob", "2.5")),
            del(&t, row(1, "ann", "10.50")),
        ],
    )
    .await
    .unwrap();
    let out = m.root_sql(&format!(
        "SELECT id, name, amount FROM `{db}`.accounts ORDER BY id"
    ));
    assert_eq!(out.trim(), "20\tbob\t2.50");
    assert_eq!(a.checkpoint().await.unwrap().unwrap().position, pos(2));
}

/// Catch-up speed of the applier alone: 100,000 rows in transactions of 10
/// rows, grouped as a catching-up stream groups them.
#[tokio::test]
async fn catch_up_rate_of_the_applier() {
    let (db, b) = pg_db("stream_rate");
    let t = table("src", "accounts", ACCOUNTS, &[0]);
    let mut a = applier(&b, opts()).await;
    let started = Instant::now();
    let mut id = 0i128;
    for n in 0..10_000u64 {
        a.begin(None, 0);
        let changes: Vec<Change> = (0..10)
            .map(|_| {
                id += 1;
                ins(&t, row(id, "some customer name", "123.45"))
            })
            .collect();
        a.rows(&changes).await.unwrap();
        a.commit_txn(pos(n + 1));
        if a.group_full() || n % 500 == 499 {
            a.commit().await.unwrap();
        }
    }
    a.commit().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let rate = 100_000.0 / secs;
    eprintln!("applier catch-up: 100000 rows in {secs:.2} s = {rate:.0} rows/s");
    assert_eq!(pg_rows(&db, "SELECT count(*) FROM accounts"), "100000");
    assert!(rate > 5_000.0, "{rate:.0} rows/s");
}

/// MariaDB logs `CREATE TABLE … SELECT` as one transaction: the DDL, then
/// its rows. Both land in one target transaction with the checkpoint.
#[tokio::test]
async fn ddl_inside_a_transaction_is_applied_with_its_rows() {
    let (db, b) = pg_db("stream_ctas");
    let mut a = applier(&b, opts()).await;
    a.begin(Some("0-1-1".into()), 0);
    a.ddl_in_txn(
        "src",
        "CREATE TABLE `copy` (`id` int NOT NULL, `v` varchar(10) DEFAULT NULL, PRIMARY KEY (`id`))",
    )
    .await
    .unwrap();
    let t = table(
        "src",
        "copy",
        &[("id", "int(11)"), ("v", "varchar(10)")],
        &[0],
    );
    a.rows(&[
        ins(&t, vec![Value::Int(1), Value::Text("a".into())]),
        ins(&t, vec![Value::Int(2), Value::Null]),
    ])
    .await
    .unwrap();
    a.commit_txn(pos(1));
    a.commit().await.unwrap();
    assert_eq!(
        pg_rows(&db, "SELECT id, v FROM copy ORDER BY id"),
        "1|a\n2|"
    );
    assert_eq!(a.checkpoint().await.unwrap().unwrap().position, pos(1));
}
