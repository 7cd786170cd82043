//! Protocol fidelity through the proxy, checked against the same statements on
//! a direct connection to the same MariaDB (mysql_async client: binary and
//! text protocol, CLIENT_DEPRECATE_EOF).

mod common;

use common::*;
use mysql_async::prelude::*;
use mysql_async::{Params, Value};

/// Two twin databases: one used directly, one through the proxy, so the same
/// statements give the same ids, counts and metadata on both.
struct Pair {
    d: mysql_async::Conn,
    p: mysql_async::Conn,
    db_d: String,
    db_p: String,
}

async fn pair(prefix: &str) -> (Pair, Proxy) {
    let (db_p, proxy) = setup(prefix).await;
    let db_d = servers::mariadb().create_database(&format!("{prefix}_direct"));
    let pair = Pair {
        d: direct(&db_d).await,
        p: via(&proxy, &db_p).await,
        db_d,
        db_p,
    };
    (pair, proxy)
}

impl Pair {
    async fn both(&mut self, sql: &str) {
        self.d
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("direct {sql}: {e}"));
        self.p
            .query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("proxy {sql}: {e}"));
    }

    async fn same(&mut self, sql: &str) -> Vec<Vec<String>> {
        same_text(&mut self.d, &mut self.p, sql, (&self.db_d, &self.db_p)).await
    }

    async fn same_error(&mut self, sql: &str) -> (u16, String) {
        same_error(&mut self.d, &mut self.p, sql, (&self.db_d, &self.db_p)).await
    }
}

/// Runs the same text query on both connections and asserts equal rows, column
/// metadata and OK-packet fields (database names aside).
async fn same_text(
    d: &mut mysql_async::Conn,
    p: &mut mysql_async::Conn,
    sql: &str,
    dbs: (&str, &str),
) -> Vec<Vec<String>> {
    let mut rd = d
        .query_iter(sql)
        .await
        .unwrap_or_else(|e| panic!("direct {sql}: {e}"));
    let cols_d: Vec<String> = rd
        .columns_ref()
        .iter()
        .map(|c| column_meta(c).replace(dbs.0, "<db>"))
        .collect();
    let rows_d: Vec<mysql_async::Row> = rd.collect().await.unwrap();
    drop(rd);
    let mut rp = p
        .query_iter(sql)
        .await
        .unwrap_or_else(|e| panic!("proxy {sql}: {e}"));
    let cols_p: Vec<String> = rp
        .columns_ref()
        .iter()
        .map(|c| column_meta(c).replace(dbs.1, "<db>"))
        .collect();
    let rows_p: Vec<mysql_async::Row> = rp.collect().await.unwrap();
    drop(rp);
    assert_eq!(cols_d, cols_p, "column metadata differs for {sql}");
    let (rd, rp): (Vec<_>, Vec<_>) = (
        rows_d.into_iter().map(row_text).collect(),
        rows_p.into_iter().map(row_text).collect(),
    );
    assert_eq!(rd, rp, "rows differ for {sql}");
    assert_eq!(
        d.affected_rows(),
        p.affected_rows(),
        "affected rows for {sql}"
    );
    assert_eq!(
        d.last_insert_id(),
        p.last_insert_id(),
        "insert id for {sql}"
    );
    assert_eq!(d.get_warnings(), p.get_warnings(), "warnings for {sql}");
    assert_eq!(d.info(), p.info(), "info for {sql}");
    rd
}

async fn same_error(
    d: &mut mysql_async::Conn,
    p: &mut mysql_async::Conn,
    sql: &str,
    dbs: (&str, &str),
) -> (u16, String) {
    let ed = d.query_drop(sql).await.expect_err("direct should fail");
    let ep = p.query_drop(sql).await.expect_err("proxy should fail");
    match (ed, ep) {
        (mysql_async::Error::Server(a), mysql_async::Error::Server(b)) => {
            let (ma, mb) = (
                a.message.replace(dbs.0, "<db>"),
                b.message.replace(dbs.1, "<db>"),
            );
            assert_eq!((a.code, &a.state, ma), (b.code, &b.state, mb), "{sql}");
            (b.code, b.state)
        }
        (a, b) => panic!("{sql}: expected server errors, got {a:?} / {b:?}"),
    }
}

const ALL_TYPES: &str = "CREATE TABLE all_types (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ti TINYINT, tb TINYINT(1), si SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT, bu BIGINT UNSIGNED,
    de DECIMAL(20,6), fl FLOAT, db DOUBLE, bt BIT(8),
    dt DATE, dtt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(2), yr YEAR,
    ch CHAR(5), vc VARCHAR(50) CHARACTER SET utf8mb4, vb VARBINARY(16), bl BLOB, tx TEXT,
    en ENUM('a','b'), st SET('x','y'), js JSON
) ENGINE=InnoDB";

const ALL_TYPES_ROWS: &str = "INSERT INTO all_types
    (ti, tb, si, mi, bi, bu, de, fl, db, bt, dt, dtt, ts, tm, yr, ch, vc, vb, bl, tx, en, st, js) VALUES
    (-128, 1, 65535, -8388608, -9223372036854775808, 18446744073709551615, -12345678901234.123456, 1.5, -2.25e300, b'10101010',
     '2024-02-29', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '-838:59:59.00', 2155,
     'ab', 'héllo ✓', x'00ff10', x'deadbeef', 'long text', 'b', 'x,y', '{\"k\": [1, 2]}'),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', '1000-01-01', '0000-00-00 00:00:00', NULL, '00:00:00', 1901,
     '', '', '', '', '', 'a', '', 'null')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_common_type_round_trips_text_and_binary() {
    let (mut x, _proxy) = pair("types").await;
    x.both("SET SESSION sql_mode = ''").await;
    x.both(ALL_TYPES).await;
    x.same(ALL_TYPES_ROWS).await;
    let rows = x.same("SELECT * FROM all_types ORDER BY id").await;
    assert_eq!(rows.len(), 3);
    let (d, p) = (&mut x.d, &mut x.p);
    // Binary protocol: same values and metadata through a prepared statement.
    let sql = "SELECT * FROM all_types WHERE id > ? ORDER BY id";
    let sd = d.prep(sql).await.unwrap();
    let sp = p.prep(sql).await.unwrap();
    let meta = |s: &mysql_async::Statement, db: &str| {
        s.columns()
            .iter()
            .map(|c| column_meta(c).replace(db, "<db>"))
            .collect::<Vec<_>>()
    };
    assert_eq!(meta(&sd, &x.db_d), meta(&sp, &x.db_p));
    assert_eq!(sd.num_params(), sp.num_params());
    let vd: Vec<mysql_async::Row> = d.exec(&sd, (0,)).await.unwrap();
    let vp: Vec<mysql_async::Row> = p.exec(&sp, (0,)).await.unwrap();
    let vd: Vec<_> = vd.into_iter().map(row_text).collect();
    let vp: Vec<_> = vp.into_iter().map(row_text).collect();
    assert_eq!(vd, vp);
    assert!(
        vp[1].iter().skip(1).all(|v| v == "NULL"),
        "NULL row: {:?}",
        vp[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_parameters_of_every_common_type() {
    let (db, proxy) = setup("params").await;
    let mut p = via(&proxy, &db).await;
    p.query_drop(ALL_TYPES).await.unwrap();
    let blob: Vec<u8> = (0..=255u8).collect();
    let params: Vec<Value> = vec![
        Value::Int(-5),
        Value::Int(1),
        Value::UInt(65535),
        Value::Int(-70000),
        Value::Int(i64::MIN),
        Value::UInt(u64::MAX),
        Value::Bytes(b"3.141593".to_vec()),
        Value::Float(0.5),
        Value::Double(1e-300),
        Value::Bytes(vec![0xAA]),
        Value::Date(2020, 1, 31, 0, 0, 0, 0),
        Value::Date(1999, 12, 31, 23, 59, 58, 999_999),
        Value::NULL,
        Value::Time(true, 1, 10, 0, 0, 120_000),
        Value::Int(1999),
        Value::Bytes(b"abcde".to_vec()),
        Value::Bytes("ünïcode ✓".as_bytes().to_vec()),
        Value::Bytes(vec![0, 1, 2]),
        Value::Bytes(blob.clone()),
        Value::Bytes(b"t".to_vec()),
        Value::Bytes(b"a".to_vec()),
        Value::Bytes(b"y".to_vec()),
        Value::Bytes(b"[1]".to_vec()),
    ];
    let insert = "INSERT INTO all_types (ti, tb, si, mi, bi, bu, de, fl, db, bt, dt, dtt, ts, tm, yr, ch, vc, vb, bl, tx, en, st, js)
                  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    p.exec_drop(insert, Params::Positional(params))
        .await
        .unwrap();
    assert_eq!(p.affected_rows(), 1);
    assert_eq!(p.last_insert_id(), Some(1));
    let row: mysql_async::Row = p
        .exec_first(
            "SELECT bi, bu, dtt, ts, tm, vc, bl FROM all_types WHERE id = ?",
            (1,),
        )
        .await
        .unwrap()
        .unwrap();
    let (bi, bu, dtt, ts, tm, vc, bl): (i64, u64, Value, Option<String>, Value, String, Vec<u8>) =
        mysql_async::from_row(row);
    assert_eq!(bi, i64::MIN);
    assert_eq!(bu, u64::MAX);
    assert_eq!(dtt, Value::Date(1999, 12, 31, 23, 59, 58, 999_999));
    assert_eq!(ts, None);
    assert_eq!(tm, Value::Time(true, 1, 10, 0, 0, 120_000));
    assert_eq!(vc, "ünïcode ✓");
    assert_eq!(bl, blob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_code_sqlstate_and_message() {
    let (mut x, _proxy) = pair("errors").await;
    x.both("CREATE TABLE u (id INT PRIMARY KEY, n INT CHECK (n > 0))")
        .await;
    x.both("INSERT INTO u VALUES (1, 1)").await;
    assert_eq!(x.same_error("INSERT INTO u VALUES (1, 2)").await.0, 1062);
    let (code, state) = x.same_error("SELEC 1").await;
    assert_eq!((code, state.as_str()), (1064, "42000"));
    let (code, state) = x.same_error("SELECT * FROM no_such_table").await;
    assert_eq!((code, state.as_str()), (1146, "42S02"));
    // Codes above 1885 (MariaDB's CHECK constraint violation).
    let (code, state) = x.same_error("INSERT INTO u VALUES (2, -1)").await;
    assert_eq!((code, state.as_str()), (4025, "23000"));
    let (code, state) = x
        .same_error("SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'custom'")
        .await;
    assert_eq!((code, state.as_str()), (1644, "45001"));
    let (_, state) = x
        .same_error("SIGNAL SQLSTATE 'HY123' SET MYSQL_ERRNO = 1234")
        .await;
    assert_eq!(state, "HY123");
    let p = &mut x.p;
    // Errors in prepared statements too.
    let ep = p
        .exec_drop("INSERT INTO u VALUES (?, ?)", (1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(ep, mysql_async::Error::Server(ref e) if e.code == 1062),
        "{ep:?}"
    );
    // The session is still usable after errors.
    let one: Option<i64> = p.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_packets_carry_counts_ids_warnings_and_info() {
    let (mut x, _proxy) = pair("okpkt").await;
    x.both("CREATE TABLE w (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(3), n TINYINT)")
        .await;
    x.both("SET SESSION sql_mode = ''").await;
    // Truncation warnings after an INSERT.
    x.same("INSERT INTO w (s, n) VALUES ('abcdef', 1000), ('x', 1)")
        .await;
    assert_eq!(x.p.get_warnings(), 2);
    assert_eq!(x.p.last_insert_id(), Some(1));
    x.same("SHOW WARNINGS").await;
    x.same("UPDATE w SET n = n - 1 WHERE id > 0").await;
    assert_eq!(x.p.affected_rows(), 2);
    assert!(x.p.info().contains("Rows matched"), "info: {}", x.p.info());
    x.same("INSERT INTO w (s) VALUES ('a'), ('b'), ('c')").await;
    assert_eq!(x.p.last_insert_id(), Some(3));
    x.same("DELETE FROM w WHERE id > 3").await;
    assert_eq!(x.p.affected_rows(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_with_two_result_sets_and_multi_statements() {
    let (db, proxy) = setup("multi").await;
    let mut d = direct(&db).await;
    let mut p = via(&proxy, &db).await;
    d.query_drop("CREATE PROCEDURE two() BEGIN SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; END")
        .await
        .unwrap();
    for conn in [&mut d, &mut p] {
        let mut r = conn.query_iter("CALL two()").await.unwrap();
        let first: Vec<i64> = r.collect().await.unwrap();
        let second: Vec<(String, i64)> = r.collect().await.unwrap();
        assert_eq!(first, vec![1]);
        assert_eq!(second, vec![("x".to_string(), 2)]);
        drop(r);
        // Multi-statement text (mysql_async negotiates MULTI_STATEMENTS).
        let mut r = conn.query_iter("SELECT 1; SELECT 2; DO 3").await.unwrap();
        let a: Vec<i64> = r.collect().await.unwrap();
        let b: Vec<i64> = r.collect().await.unwrap();
        drop(r);
        assert_eq!((a, b), (vec![1], vec![2]));
        let after: Option<i64> = conn.query_first("SELECT 42").await.unwrap();
        assert_eq!(after, Some(42));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_rollback() {
    let (db, proxy) = setup("txn").await;
    let mut p = via(&proxy, &db).await;
    let mut check = direct(&db).await;
    p.query_drop("CREATE TABLE acct (id INT PRIMARY KEY, bal INT) ENGINE=InnoDB")
        .await
        .unwrap();
    p.query_drop("INSERT INTO acct VALUES (1, 100)")
        .await
        .unwrap();
    p.query_drop("START TRANSACTION").await.unwrap();
    p.query_drop("UPDATE acct SET bal = 0 WHERE id = 1")
        .await
        .unwrap();
    p.query_drop("ROLLBACK").await.unwrap();
    let bal: Option<i64> = check.query_first("SELECT bal FROM acct").await.unwrap();
    assert_eq!(bal, Some(100));
    let mut tx = p.start_transaction(Default::default()).await.unwrap();
    tx.query_drop("UPDATE acct SET bal = 50 WHERE id = 1")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let bal: Option<i64> = check.query_first("SELECT bal FROM acct").await.unwrap();
    assert_eq!(bal, Some(50));
    // autocommit off: nothing is visible until COMMIT.
    p.query_drop("SET autocommit = 0").await.unwrap();
    p.query_drop("UPDATE acct SET bal = 7 WHERE id = 1")
        .await
        .unwrap();
    let seen: Option<i64> = check.query_first("SELECT bal FROM acct").await.unwrap();
    assert_eq!(seen, Some(50));
    p.query_drop("ROLLBACK").await.unwrap();
    let mine: Option<i64> = p.query_first("SELECT bal FROM acct").await.unwrap();
    assert_eq!(mine, Some(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_persists_on_the_pinned_connection() {
    let (db, proxy) = setup("pin").await;
    let other = servers::mariadb().create_database("pin_other");
    let mut p = via(&proxy, &db).await;
    p.query_drop(format!("USE `{other}`")).await.unwrap();
    p.query_drop("SET @v = 42, SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    p.query_drop("CREATE TEMPORARY TABLE tmp (x INT)")
        .await
        .unwrap();
    p.query_drop("CREATE TABLE auto (id INT AUTO_INCREMENT PRIMARY KEY)")
        .await
        .unwrap();
    p.query_drop("INSERT INTO auto VALUES (NULL), (NULL)")
        .await
        .unwrap();
    p.query_drop("INSERT INTO tmp VALUES (1)").await.unwrap();
    for _ in 0..20 {
        let row: (String, i64, String, i64, i64) = p
            .query_first(
                "SELECT DATABASE(), @v, @@sql_mode, (SELECT COUNT(*) FROM tmp), LAST_INSERT_ID()",
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row, (other.clone(), 42, "ANSI_QUOTES".to_string(), 1, 1));
    }
    // CONNECTION_ID() is the id the client was given in the handshake.
    let id: u32 = p
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, p.id());
    // COM_PING keeps the session (COM_INIT_DB is covered by the CLI tests).
    p.ping().await.unwrap();
    let v: Option<i64> = p.query_first("SELECT @v").await.unwrap();
    assert_eq!(v, Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blob_and_large_result_stream() {
    // The test servers run with max_allowed_packet = 64M: room for a 17 MiB row.
    let (db, proxy) = setup("large").await;
    let mut p = via(&proxy, &db).await;
    p.query_drop("CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)")
        .await
        .unwrap();
    let blob: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    p.exec_drop("INSERT INTO big VALUES (1, ?)", (blob.clone(),))
        .await
        .unwrap();
    let back: Vec<u8> = p
        .query_first("SELECT b FROM big WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.len(), blob.len());
    assert!(back == blob, "10 MB blob changed on the way");
    let stmt_back: Vec<u8> = p
        .exec_first("SELECT b FROM big WHERE id = ?", (1,))
        .await
        .unwrap()
        .unwrap();
    assert!(stmt_back == blob);
    // A row larger than one 16 MiB packet, in both directions.
    let huge: Vec<u8> = vec![0xfe; 17 * 1024 * 1024];
    p.exec_drop("INSERT INTO big VALUES (2, ?)", (huge.clone(),))
        .await
        .unwrap();
    let len: i64 = p
        .query_first("SELECT LENGTH(b) FROM big WHERE id = 2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len as usize, huge.len());
    let back: Vec<u8> = p
        .query_first("SELECT b FROM big WHERE id = 2")
        .await
        .unwrap()
        .unwrap();
    assert!(back == huge, "17 MiB row changed on the way");
    // 100k rows streamed.
    let mut r = p
        .query_iter("SELECT seq, REPEAT('x', 100) FROM seq_1_to_100000")
        .await
        .unwrap();
    let mut n = 0u64;
    let mut sum = 0u64;
    r.for_each(|row| {
        let (s, x): (u64, String) = mysql_async::from_row(row);
        assert_eq!(x.len(), 100);
        n += 1;
        sum += s;
    })
    .await
    .unwrap();
    drop(r);
    assert_eq!((n, sum), (100_000, 100_000 * 100_001 / 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_1045_and_never_reaches_the_backend() {
    let (db, proxy) = setup("auth").await;
    let before = servers::mariadb().root_sql("SHOW GLOBAL STATUS LIKE 'Aborted_connects'");
    let err = mysql_async::Conn::new(proxy_opts(&proxy, &db).pass(Some("wrong")))
        .await
        .expect_err("wrong password must fail");
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1045);
            assert_eq!(e.state, "28000");
            assert!(
                e.message
                    .starts_with("Access denied for user 'app'@'127.0.0.1'"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 1045, got {other:?}"),
    }
    let err = mysql_async::Conn::new(proxy_opts(&proxy, &db).user(Some("nobody")))
        .await
        .expect_err("unknown user must fail");
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 1045),
        "{err:?}"
    );
    // No failed login reached MariaDB: its aborted-connect counter did not move.
    let after = servers::mariadb().root_sql("SHOW GLOBAL STATUS LIKE 'Aborted_connects'");
    assert_eq!(before, after);
    assert_eq!(
        proxy
            .state
            .metrics
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hash_in_config_authenticates() {
    let db = servers::mariadb().create_database("hash");
    let hash = servers::mariadb().root_sql("SELECT PASSWORD('proxypass')");
    let toml = config_for(&db, "").replace(
        &format!("password = \"{PROXY_PASSWORD}\""),
        &format!("password_sha1 = \"{}\"", hash.trim()),
    );
    let proxy = start_proxy_with(&toml).await;
    let mut p = via(&proxy, &db).await;
    let one: Option<i64> = p.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    assert!(
        mysql_async::Conn::new(proxy_opts(&proxy, &db).pass(Some("nope")))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_and_reset_connection_do_what_the_server_does() {
    let (db, proxy) = setup("reset").await;
    let mut p = via(&proxy, &db).await;
    p.query_drop("SET @x = 1").await.unwrap();
    p.query_drop("CREATE TEMPORARY TABLE t1 (a INT)")
        .await
        .unwrap();
    // COM_RESET_CONNECTION clears user variables and temporary tables.
    p.reset().await.unwrap();
    let x: Option<Option<i64>> = p.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(None));
    assert!(p.query_drop("SELECT * FROM t1").await.is_err());
    // COM_CHANGE_USER with valid proxy credentials works and resets too.
    p.query_drop("SET @y = 2").await.unwrap();
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some(PROXY_USER.into()))
        .with_pass(Some(PROXY_PASSWORD.into()))
        .with_db_name(Some(db.clone()));
    p.change_user(opts).await.unwrap();
    let y: Option<Option<i64>> = p.query_first("SELECT @y").await.unwrap();
    assert_eq!(y, Some(None));
    let cur: Option<String> = p.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(cur, Some(db.clone()));
    // With a wrong password it is refused with 1045.
    let bad = mysql_async::ChangeUserOpts::default()
        .with_user(Some(PROXY_USER.into()))
        .with_pass(Some("bad".into()));
    let e = p.change_user(bad).await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1045),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_rows_and_charset_follow_the_client() {
    let (db, proxy) = setup("flags").await;
    let mut plain = via(&proxy, &db).await;
    let mut found = mysql_async::Conn::new(proxy_opts(&proxy, &db).client_found_rows(true))
        .await
        .unwrap();
    plain
        .query_drop("CREATE TABLE f (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    plain
        .query_drop("INSERT INTO f VALUES (1, 1)")
        .await
        .unwrap();
    plain
        .query_drop("UPDATE f SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        plain.affected_rows(),
        0,
        "changed rows without CLIENT_FOUND_ROWS"
    );
    found
        .query_drop("UPDATE f SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        found.affected_rows(),
        1,
        "matched rows with CLIENT_FOUND_ROWS"
    );
    let cs: Option<String> = plain
        .query_first("SELECT @@character_set_client")
        .await
        .unwrap();
    assert_eq!(
        cs.as_deref(),
        Some("utf8mb4"),
        "mysql_async asks for utf8mb4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_are_reset_between_clients() {
    let (db, proxy) = setup("pool").await;
    for round in 0..3 {
        let mut p = via(&proxy, &db).await;
        let leaked: Option<Option<i64>> = p.query_first("SELECT @leak").await.unwrap();
        assert_eq!(
            leaked,
            Some(None),
            "round {round}: user variable leaked from a previous client"
        );
        assert!(
            p.query_drop("SELECT * FROM leaked_tmp").await.is_err(),
            "round {round}: temp table leaked"
        );
        let in_txn: Option<i64> = p.query_first("SELECT @@in_transaction").await.unwrap();
        assert_eq!(in_txn, Some(0));
        p.query_drop("SET @leak = 1").await.unwrap();
        p.query_drop("CREATE TEMPORARY TABLE leaked_tmp (a INT)")
            .await
            .unwrap();
        p.query_drop("BEGIN").await.unwrap();
        p.disconnect().await.unwrap();
        // Let the background reset finish so the next client reuses it.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        proxy.state.old.idle_count() >= 1,
        "connection went back to the pool"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_sql_is_forwarded_and_counted() {
    let (db, proxy) = setup("unparsable").await;
    let mut p = via(&proxy, &db).await;
    p.query_drop("CREATE TABLE m (a INT)").await.unwrap();
    p.query_drop("INSERT INTO m VALUES (7)").await.unwrap();
    // Valid MariaDB that sqlparser does not parse.
    let v: Option<i64> = p
        .query_first("SELECT a MOD 4 FROM m LOCK IN SHARE MODE")
        .await
        .unwrap();
    assert_eq!(v, Some(3));
    p.query_drop("DO 1").await.unwrap();
    assert!(proxy.state.classifier.parse_failures() >= 2);
    assert!(
        proxy
            .state
            .metrics
            .statements(tandem::sql::classify::StatementClass::Write)
            >= 3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_shows_the_backend_identity() {
    let (db, proxy) = setup("greeting").await;
    let mut d = direct(&db).await;
    let mut p = via(&proxy, &db).await;
    assert_eq!(d.server_version(), p.server_version());
    let vd: Option<String> = d.query_first("SELECT @@version").await.unwrap();
    let vp: Option<String> = p.query_first("SELECT @@version").await.unwrap();
    assert_eq!(vd, vp);
    let mp_d: Option<u64> = d.query_first("SELECT @@max_allowed_packet").await.unwrap();
    let mp_p: Option<u64> = p.query_first("SELECT @@max_allowed_packet").await.unwrap();
    assert_eq!(mp_d, mp_p, "@@max_allowed_packet comes from the server");
}
