//! The change stream's binlog source against a real MariaDB (log-bin, ROW,
//! FULL image and metadata): every column type decoded as a SELECT reads it,
//! transactions, DDL, resume, filtering, purged binlogs, a killed server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

use tandem::config::BackendTarget;
use tandem::stream::binlog::{BinlogSource, SourceFilter, SourceOptions, Start, StreamError};
use tandem::stream::{Item, Position, RowChange, SourceTable};
use tandem::value::mysql::{from_mysql, MysqlKind};
use tandem::value::{Row, Value};

/// Tests with a private MariaDB (purge, kill, stall, compression).
#[path = "stream_source/faults.rs"]
mod faults;

fn target(port: u16) -> BackendTarget {
    BackendTarget {
        host: "127.0.0.1".into(),
        port,
        user: "app".into(),
        password: "apppass".into(),
        database: None,
        tls: Default::default(),
    }
}

async fn source_at(port: u16, db: &str, start: Start) -> BinlogSource {
    let mut opts = SourceOptions::new(SourceFilter::databases([db]));
    opts.start = start;
    BinlogSource::connect(&target(port), opts)
        .await
        .expect("binlog source connects")
}

async fn source(db: &str) -> BinlogSource {
    source_at(servers::mariadb().port, db, Start::Now).await
}

/// Items (without `Progress`) until `commits` transactions (Commit or Ddl)
/// have ended.
async fn items(src: &mut BinlogSource, commits: usize) -> Vec<Item> {
    let mut out = Vec::new();
    let mut seen = 0;
    while seen < commits {
        let item = tokio::time::timeout(Duration::from_secs(30), src.next_item())
            .await
            .expect("an item within 30 s")
            .expect("no stream error");
        match item {
            Item::Progress { .. } => continue,
            Item::Commit { .. } | Item::Ddl { .. } => seen += 1,
            _ => {}
        }
        out.push(item);
    }
    out
}

/// The row changes of `items`, flattened.
fn changes(items: &[Item]) -> Vec<RowChange> {
    items
        .iter()
        .flat_map(|i| match i {
            Item::Rows(c) => c.iter().map(|c| c.change.clone()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn table_of(items: &[Item]) -> std::sync::Arc<SourceTable> {
    items
        .iter()
        .find_map(|i| match i {
            Item::Rows(c) => c.first().map(|c| c.table.clone()),
            _ => None,
        })
        .expect("a rows item")
}

/// The table's rows as a SELECT returns them, normalized with the column
/// types the stream reported (FLOAT read exactly through DOUBLE).
async fn select_rows(conn: &mut mysql_async::Conn, table: &SourceTable) -> Vec<Row> {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.ty.kind {
            MysqlKind::Float => format!("CAST(`{}` AS DOUBLE)", c.name),
            _ => format!("`{}`", c.name),
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM `{}` ORDER BY 1",
        cols.join(", "),
        table.name
    );
    let rows: Vec<mysql_async::Row> = conn.query(&sql).await.unwrap();
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .zip(&table.columns)
                .map(|(v, c)| from_mysql(v, c.ty))
                .collect()
        })
        .collect()
}

fn assert_rows_eq(what: &str, table: &SourceTable, got: &Row, want: &Row) {
    assert_eq!(got.len(), want.len(), "{what}: column count");
    for ((g, w), c) in got.iter().zip(want).zip(&table.columns) {
        assert!(
            g.approx_eq(w),
            "{what}: column `{}` ({}): stream {g:?}, SELECT {w:?}",
            c.name,
            c.column_type
        );
    }
}

const TYPES_DDL: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, b TINYINT(1), si SMALLINT, siu SMALLINT UNSIGNED,
    mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
    d1 DECIMAL(10,2), d2 DECIMAL(65,30), d3 DECIMAL(5,0), d4 DECIMAL(18,9) UNSIGNED,
    f FLOAT, dbl DOUBLE, bt BIT(10), bt64 BIT(64), y YEAR,
    dt DATE, dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
    ts TIMESTAMP NULL DEFAULT NULL, ts2 TIMESTAMP(2) NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL,
    tm TIME, tm1 TIME(1), tm3 TIME(3), tm6 TIME(6),
    c CHAR(10), vc VARCHAR(300), tx TEXT, lt LONGTEXT,
    cl CHAR(5) CHARACTER SET latin1, vl VARCHAR(20) CHARACTER SET latin1, tl TEXT CHARACTER SET latin1,
    bn BINARY(6), vb VARBINARY(20), bl BLOB, mb MEDIUMBLOB,
    e ENUM('a','b','it''s'), s SET('x','y','z'), j JSON
) DEFAULT CHARSET=utf8mb4";

const TYPES_INSERT: &str = "INSERT INTO t VALUES
 (1, -128, 0, 1, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -12345678.99, '-12345678901234567890123456789012345.123456789012345678901234567890', -99999, 0.000000001,
  -1.5e-10, -2.2250738585072014e-308, b'0', 0, 1901,
  '1000-01-01', '1000-01-01 00:00:00', '2024-02-29 12:34:56.789', '9999-12-31 23:59:59.999999',
  '1970-01-01 00:00:01', '2001-02-03 04:05:06.07', '2038-01-19 03:14:07.999999',
  '-838:59:59', '-00:00:00.5', '-12:34:56.789', '-00:00:01.000001',
  'abc', REPEAT('é', 300), 'text ✓', '{\"a\": 1}',
  'é€', 'Ärger‰', 'ÿ þ',
  'ab', 0x00ff, 0x000102, REPEAT('x', 70000),
  'it''s', 'x,z', '{\"k\": [1, 2.5, null]}'),
 (2, 127, 255, 0, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
  99999999.99, '0.000000000000000000000000000001', 0, 999999999.999999999,
  3.4e38, 1.7976931348623157e308, b'1111111111', 0xffffffffffffffff, 2155,
  '9999-12-31', '9999-12-31 23:59:59', '1999-12-31 23:59:59.001', '2000-01-01 00:00:00.000001',
  '2038-01-19 03:14:07', '1999-01-01 00:00:00.99', '1980-06-15 12:00:00.5',
  '838:59:59', '00:00:00.1', '23:59:59.999', '-838:59:59.000000',
  'a  ', '', '', '',
  '', '', '',
  0x000000000000, '', '', '',
  'a', '', '[]'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_decodes_as_select_reads_it() {
    let db = servers::mariadb().create_database("src_types");
    let mut conn = direct(&db).await;
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    conn.query_drop(TYPES_DDL).await.unwrap();
    let mut src = source(&db).await;

    conn.query_drop(TYPES_INSERT).await.unwrap();
    let inserted = items(&mut src, 1).await;
    let table = table_of(&inserted);
    assert_eq!(table.key, vec![0], "primary key is column 0");
    assert_eq!(table.columns[2].column_type, "tinyint(3) unsigned");
    let after_insert = select_rows(&mut conn, &table).await;
    let ins = changes(&inserted);
    assert_eq!(ins.len(), 3);
    for (change, want) in ins.iter().zip(&after_insert) {
        let RowChange::Insert { after } = change else {
            panic!("expected an insert, got {change:?}")
        };
        assert_rows_eq("insert", &table, after, want);
    }
    // Spot checks that the comparison itself is not vacuous.
    assert_eq!(after_insert[1][11], Value::Int(u64::MAX as i128));
    assert_eq!(after_insert[0][43].clone(), Value::Text("it's".into()));
    assert!(matches!(&after_insert[1][39], Value::Bytes(b) if b == &[0u8; 6]));

    conn.query_drop(
        "UPDATE t SET i = i + 1, vc = 'changed', bn = 'xy', tm6 = '01:02:03.4' WHERE id = 1",
    )
    .await
    .unwrap();
    conn.query_drop("DELETE FROM t WHERE id = 2").await.unwrap();
    let later = items(&mut src, 2).await;
    let after_update = select_rows(&mut conn, &table).await;
    match changes(&later).as_slice() {
        [RowChange::Update { before, after }, RowChange::Delete { before: deleted }] => {
            assert_rows_eq("update before", &table, before, &after_insert[0]);
            assert_rows_eq("update after", &table, after, &after_update[0]);
            assert_rows_eq("delete", &table, deleted, &after_insert[1]);
        }
        other => panic!("expected update then delete, got {other:?}"),
    }
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_whole_and_rollbacks_absent() {
    let db = servers::mariadb().create_database("src_txn");
    let mut conn = direct(&db).await;
    conn.query_drop("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(10))")
        .await
        .unwrap();
    let mut src = source(&db).await;

    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO a VALUES (1, 10), (2, 20)")
        .await
        .unwrap();
    conn.query_drop("UPDATE a SET v = 11 WHERE id = 1")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO b VALUES (1, 'x')")
        .await
        .unwrap();
    conn.query_drop("COMMIT").await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO a VALUES (3, 30)")
        .await
        .unwrap();
    conn.query_drop("ROLLBACK").await.unwrap();
    conn.query_drop("INSERT INTO a VALUES (4, 40)")
        .await
        .unwrap();

    let got = items(&mut src, 2).await;
    // Begin, rows (a), rows (a), rows (b), Commit, Begin, rows, Commit.
    let shape: Vec<&str> = got
        .iter()
        .map(|i| match i {
            Item::Begin { .. } => "B",
            Item::Rows(_) => "R",
            Item::Commit { .. } => "C",
            _ => "?",
        })
        .collect();
    assert_eq!(shape, ["B", "R", "R", "R", "C", "B", "R", "C"]);
    let ids: Vec<Value> = changes(&got)
        .iter()
        .map(|c| match c {
            RowChange::Insert { after } | RowChange::Update { after, .. } => after[0].clone(),
            RowChange::Delete { before } => before[0].clone(),
        })
        .collect();
    assert_eq!(
        ids,
        [1, 2, 1, 1, 4].map(Value::Int).to_vec(),
        "the rolled-back id 3 never appears"
    );
    let (Item::Begin { gtid: Some(g1), .. }, Item::Commit { position: p1 }) = (&got[0], &got[4])
    else {
        panic!("transaction framing: {got:?}")
    };
    assert!(
        p1.gtid.as_deref().is_some_and(|s| s.contains(g1.as_str())),
        "{p1:?} after {g1}"
    );
    let Item::Commit { position: p2 } = &got[7] else {
        panic!()
    };
    assert!(p2.offset > p1.offset || p2.file > p1.file);
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_arrives_and_later_rows_use_the_new_shape() {
    let db = servers::mariadb().create_database("src_ddl");
    let mut conn = direct(&db).await;
    let mut src = source(&db).await;
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    conn.query_drop("ALTER TABLE t ADD COLUMN note VARCHAR(20) NOT NULL DEFAULT 'n'")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (2, 'two')")
        .await
        .unwrap();
    let got = items(&mut src, 4).await;
    let ddl: Vec<(&str, &str)> = got
        .iter()
        .filter_map(|i| match i {
            Item::Ddl {
                database,
                sql,
                gtid,
                ..
            } => {
                assert!(gtid.is_some());
                Some((database.as_str(), sql.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(ddl.len(), 2, "{got:?}");
    assert_eq!(ddl[0].0, db);
    assert!(ddl[0].1.starts_with("CREATE TABLE t"));
    assert!(ddl[1].1.starts_with("ALTER TABLE t ADD COLUMN note"));
    let rows = changes(&got);
    let last = got
        .iter()
        .rev()
        .find_map(|i| match i {
            Item::Rows(c) => c.first().map(|c| c.table.clone()),
            _ => None,
        })
        .unwrap();
    let names: Vec<&str> = last.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "note"]);
    assert_eq!(
        rows.last(),
        Some(&RowChange::Insert {
            after: vec![Value::Int(2), Value::Text("two".into())]
        })
    );
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_databases_are_filtered_to_progress() {
    let m = servers::mariadb();
    let db = m.create_database("src_filt");
    let other = m.create_database("src_other");
    let mut mine = direct(&db).await;
    let mut theirs = direct(&other).await;
    mine.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    theirs
        .query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut src = source(&db).await;
    theirs
        .query_drop("INSERT INTO t VALUES (100)")
        .await
        .unwrap();
    theirs.query_drop("CREATE TABLE u (id INT)").await.unwrap();
    mine.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let mut progress = 0;
    let got = loop {
        match tokio::time::timeout(Duration::from_secs(30), src.next_item())
            .await
            .unwrap()
            .unwrap()
        {
            Item::Progress { .. } => progress += 1,
            Item::Begin { .. } => break items(&mut src, 1).await,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        progress >= 2,
        "the other database's insert and DDL are progress"
    );
    assert_eq!(
        changes(&got),
        [RowChange::Insert {
            after: vec![Value::Int(1)]
        }]
    );
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_saved_position_loses_and_repeats_nothing() {
    let db = servers::mariadb().create_database("src_resume");
    let mut conn = direct(&db).await;
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let mut src = source(&db).await;
    for i in 1..=10 {
        conn.query_drop(format!("INSERT INTO t VALUES ({i}, {i})"))
            .await
            .unwrap();
    }
    let first = items(&mut src, 4).await;
    let saved: Position = match first.last() {
        Some(Item::Commit { position }) => position.clone(),
        other => panic!("{other:?}"),
    };
    let rest = items(&mut src, 6).await;
    src.close().await;

    // By file and offset.
    let port = servers::mariadb().port;
    let mut again = source_at(port, &db, Start::At(saved.clone())).await;
    let replay = items(&mut again, 6).await;
    assert_eq!(changes(&replay), changes(&rest));
    assert_eq!(
        replay.last(),
        rest.last(),
        "same end position and GTID state"
    );
    again.close().await;

    // By GTID state.
    let mut by_gtid = source_at(port, &db, Start::Gtid(saved.gtid.clone().unwrap())).await;
    let replay = items(&mut by_gtid, 6).await;
    assert_eq!(changes(&replay), changes(&rest));
    by_gtid.close().await;
}

/// Rows of a 100k-row insert streamed and decoded, rows/s (printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_throughput_of_a_large_insert() {
    let db = servers::mariadb().create_database("src_bulk");
    let mut conn = direct(&db).await;
    conn.query_drop(
        "CREATE TABLE t (id INT PRIMARY KEY, a BIGINT, b VARCHAR(40), c DATETIME(6), d DECIMAL(12,2))",
    )
    .await
    .unwrap();
    let mut src = source(&db).await;
    conn.query_drop(
        "INSERT INTO t SELECT seq, seq * 7, CONCAT('row-', seq), NOW(6), seq / 100 FROM seq_1_to_100000",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut rows = 0usize;
    let mut batches = 0usize;
    loop {
        match src.next_item().await.unwrap() {
            Item::Rows(c) => {
                rows += c.len();
                batches += 1;
            }
            Item::Commit { .. } => break,
            _ => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(rows, 100_000);
    assert!(
        batches > 10,
        "a large transaction streams in many batches ({batches})"
    );
    println!(
        "decode throughput: {rows} rows in {secs:.2} s = {:.0} rows/s ({batches} rows events)",
        rows as f64 / secs
    );
    src.close().await;
}

async fn backend_conn(user: &str, password: &str) -> tandem::backend::mysql::BackendConn {
    let mut t = target(servers::mariadb().port);
    t.user = user.into();
    t.password = password.into();
    let greeted = tandem::backend::mysql::connect(&t, 1 << 24).await.unwrap();
    greeted
        .authenticate(&t, tandem::backend::mysql::default_opts(None))
        .await
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_privileges() {
    use tandem::stream::binlog::{check, current_position, Severity};
    let m = servers::mariadb();
    let mut app = backend_conn("app", "apppass").await;
    let findings = check(&mut app, "app").await;
    let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(
        findings.iter().all(|f| f.severity != Severity::Error),
        "{text:#?}"
    );
    for expected in [
        "log_bin=ON",
        "binlog_format=ROW",
        "binlog_row_image=FULL",
        "server_id=1",
        "binlog_row_metadata=FULL",
        "REPLICATION SLAVE + BINLOG MONITOR",
        "binlog file(s) kept",
    ] {
        assert!(
            text.iter().any(|l| l.contains(expected)),
            "{expected}: {text:#?}"
        );
    }
    let pos = current_position(&mut app).await.unwrap();
    assert!(
        pos.file.starts_with("mariadb-bin.") && pos.offset > 4,
        "{pos:?}"
    );
    let gtid = m.root_sql("SELECT @@gtid_binlog_pos");
    assert!(pos.gtid.is_some() && !gtid.trim().is_empty());

    // A user without replication privileges: check says which GRANT, the
    // source refuses with the same advice.
    let user = format!("norepl_{}", std::process::id());
    m.root_sql(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO '{user}'@'%'"
    ));
    let mut weak = backend_conn(&user, "pw").await;
    let findings = check(&mut weak, &user).await;
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(
        bad[0].contains(&format!(
            "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'"
        )),
        "{}",
        bad[0]
    );
    let mut t = target(m.port);
    t.user = user.clone();
    t.password = "pw".into();
    let err = BinlogSource::connect(&t, SourceOptions::new(SourceFilter::all()))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StreamError::Privileges { .. }), "{err:?}");
    assert!(err.to_string().contains("GRANT REPLICATION SLAVE"), "{err}");
    m.root_sql(&format!("DROP USER '{user}'@'%'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_as_a_replica() {
    let db = servers::mariadb().create_database("src_reg");
    let mut opts = SourceOptions::new(SourceFilter::databases([db.as_str()]));
    opts.server_id = 0x7b00_0000 | (std::process::id() & 0xffff);
    let src = BinlogSource::connect(&target(servers::mariadb().port), opts.clone())
        .await
        .unwrap();
    let hosts = servers::mariadb().root_sql("SHOW SLAVE HOSTS");
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&format!("{}\ttandem", opts.server_id))),
        "{hosts}"
    );
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_select_is_one_transaction_with_its_ddl_inside() {
    let db = servers::mariadb().create_database("src_ctas");
    let mut conn = direct(&db).await;
    conn.query_drop("CREATE TABLE a (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO a VALUES (1), (2)")
        .await
        .unwrap();
    let mut src = source(&db).await;
    let before = src.position();
    conn.query_drop("CREATE TABLE b AS SELECT id * 10 AS x FROM a")
        .await
        .unwrap();
    // `items` counts a Ddl as an end; here it is inside: read to the Commit.
    let mut got = items(&mut src, 1).await;
    while !matches!(got.last(), Some(Item::Commit { .. })) {
        got.extend(items(&mut src, 1).await);
    }
    match got.as_slice() {
        [Item::Begin { gtid: Some(_), .. }, Item::Ddl {
            sql,
            gtid: None,
            position,
            ..
        }, Item::Rows(rows), Item::Commit { position: end }] => {
            assert!(
                (position.file.as_str(), position.offset) < (end.file.as_str(), end.offset),
                "{position:?} before the commit's {end:?}"
            );
            assert!(sql.starts_with("CREATE TABLE `b`"), "{sql}");
            // At the transaction's start: not before where the stream stood
            // (other tests' writes to other databases may come in between).
            assert!(
                (position.file.as_str(), position.offset) >= (before.file.as_str(), before.offset),
                "the Ddl sits at the transaction's start: {position:?} vs {before:?}"
            );
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0].table.name, "b");
        }
        other => panic!("expected Begin, Ddl, Rows, Commit: {other:?}"),
    }
    src.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_logged_write_stops_the_stream_as_not_row() {
    let db = servers::mariadb().create_database("src_stmt");
    let mut conn = direct(&db).await;
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let mut src = source(&db).await;
    conn.query_drop("SET SESSION binlog_format = 'STATEMENT'")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(30), src.next_item())
            .await
            .unwrap()
        {
            Ok(Item::Progress { .. }) => continue,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StreamError::NotRow { .. }), "{err:?}");
    assert!(err.to_string().contains("binlog_format=ROW"), "{err}");
}
