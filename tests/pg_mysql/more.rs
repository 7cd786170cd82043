//! Errors, locks, parameters and a large result through the layer.

use std::time::Duration;

use mysql_async::prelude::*;
use mysql_async::Value;

use super::listener::{self, Listener, MapHints, Setup};
use super::{pg_target, servers};

/// A fresh PostgreSQL database with `sql` run in it, served without hints;
/// column definitions and errors name the MySQL database `shop`.
async fn pg_only(prefix: &str, sql: &str) -> Listener {
    let pg = servers::postgres();
    let db = pg.create_database(prefix);
    pg.sql(&db, sql);
    listener::start(Setup {
        pg: pg_target(&db),
        hints: MapHints::default(),
        deprecate_eof: true,
        schema: "shop".into(),
    })
    .await
}

fn server_error(e: mysql_async::Error) -> (u16, String, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.state, s.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_arrive_with_mysql_codes() {
    let l = pg_only(
        "pgm_errors",
        "CREATE TABLE p (id int PRIMARY KEY, email varchar(20) UNIQUE);
         CREATE TABLE ch (id int PRIMARY KEY, pid int CONSTRAINT fk1 REFERENCES p (id),
                          n int CHECK (n > 0), s varchar(5), small smallint, nn int NOT NULL);
         INSERT INTO p VALUES (1, 'a@x.org');",
    )
    .await;
    let mut c = l.conn().await;
    let cases: &[(&str, u16, &str, Option<&str>)] = &[
        (
            "INSERT INTO p VALUES (1, NULL)",
            1062,
            "23000",
            Some("Duplicate entry '1' for key 'PRIMARY'"),
        ),
        (
            "INSERT INTO p VALUES (2, 'a@x.org')",
            1062,
            "23000",
            Some("Duplicate entry 'a@x.org' for key 'email'"),
        ),
        (
            "INSERT INTO ch (id, pid, nn) VALUES (1, 5, 1)",
            1452,
            "23000",
            None,
        ),
        (
            "INSERT INTO ch (id, nn) VALUES (2, NULL)",
            1048,
            "23000",
            Some("Column 'nn' cannot be null"),
        ),
        (
            "SELECT * FROM nosuch",
            1146,
            "42S02",
            Some("Table 'shop.nosuch' doesn't exist"),
        ),
        (
            "SELECT nosuch FROM p",
            1054,
            "42S22",
            Some("Unknown column 'nosuch' in 'field list'"),
        ),
        ("SELEC 1", 1064, "42000", None),
        ("SELECT 1/0", 1365, "22012", Some("Division by 0")),
        (
            "INSERT INTO ch (id, nn, s) VALUES (3, 1, 'toolong')",
            1406,
            "22001",
            None,
        ),
        (
            "INSERT INTO ch (id, nn, small) VALUES (4, 1, 100000)",
            1264,
            "22003",
            None,
        ),
        (
            "INSERT INTO ch (id, nn, n) VALUES (5, 1, -1)",
            4025,
            "23000",
            Some("CONSTRAINT `ch_n_check` failed for `shop`.`ch`"),
        ),
        ("SELECT ARRAY[1, 2] AS a", 1105, "HY000", None),
    ];
    for (sql, code, state, message) in cases {
        let (got_code, got_state, got_message) =
            server_error(c.query_drop(*sql).await.expect_err(sql));
        assert_eq!(
            (got_code, got_state.as_str()),
            (*code, *state),
            "{sql}: {got_message}"
        );
        if let Some(m) = message {
            assert_eq!(got_message, *m, "{sql}");
        }
        // The session goes on after each error.
        let one: Option<i32> = c.query_first("SELECT 1").await.expect("after an error");
        assert_eq!(one, Some(1));
    }
    // In the binary protocol too.
    let e = c
        .exec_drop("INSERT INTO p VALUES ($1, $2)", (1, "b@x.org"))
        .await
        .expect_err("duplicate");
    assert_eq!(server_error(e).0, 1062);
    // A type with no MySQL form is refused before anything runs.
    let e = c
        .query_drop("SELECT ARRAY[1, 2] AS a")
        .await
        .expect_err("array");
    assert!(server_error(e).2.contains("cast it to text"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_and_deadlock() {
    let l = pg_only(
        "pgm_locks",
        "CREATE TABLE r (id int PRIMARY KEY, v int); INSERT INTO r VALUES (1, 0), (2, 0);",
    )
    .await;
    let (mut a, mut b) = (l.conn().await, l.conn().await);
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE r SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    b.query_drop("SET lock_timeout = '200ms'").await.unwrap();
    let e = b
        .query_drop("UPDATE r SET v = 2 WHERE id = 1")
        .await
        .expect_err("lock timeout");
    assert_eq!(server_error(e).0, 1205);
    b.query_drop("SET lock_timeout = 0").await.unwrap();
    a.query_drop("ROLLBACK").await.unwrap();

    for c in [&mut a, &mut b] {
        c.query_drop("SET deadlock_timeout = '100ms'")
            .await
            .unwrap();
        c.query_drop("BEGIN").await.unwrap();
    }
    a.query_drop("UPDATE r SET v = 1 WHERE id = 1")
        .await
        .unwrap();
    b.query_drop("UPDATE r SET v = 1 WHERE id = 2")
        .await
        .unwrap();
    let blocked = tokio::spawn(async move {
        let r = a.query_drop("UPDATE r SET v = 1 WHERE id = 2").await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rb = b.query_drop("UPDATE r SET v = 1 WHERE id = 1").await;
    let (mut a, ra) = blocked.await.expect("task");
    let codes: Vec<u16> = [ra, rb]
        .into_iter()
        .filter_map(|r| r.err().map(|e| server_error(e).0))
        .collect();
    assert_eq!(codes, vec![1213], "exactly one side is the deadlock victim");
    a.query_drop("ROLLBACK").await.unwrap();
    b.query_drop("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_bind_as_text() {
    let l = pg_only(
        "pgm_params",
        "CREATE TABLE v (id int PRIMARY KEY, d date, n numeric(12,2), b bytea, ts timestamp(6));",
    )
    .await;
    let mut c = l.conn().await;
    let blob = vec![0u8, b'\\', 0xff, b'x'];
    c.exec_drop(
        "INSERT INTO v VALUES ($1, $2, $3, $4, $5)",
        (
            1i64,
            Value::Date(2024, 1, 2, 0, 0, 0, 0),
            "12.5",
            blob.clone(),
            Value::Date(1999, 12, 31, 23, 59, 59, 123_456),
        ),
    )
    .await
    .expect("insert with an i64 for an int4 column, a date, a numeric string, bytes");
    let row: mysql_async::Row = c
        .exec_first("SELECT id, d, n, b, ts FROM v WHERE id = $1", (1i64,))
        .await
        .expect("select")
        .expect("one row");
    assert_eq!(
        row.unwrap(),
        vec![
            Value::Int(1),
            Value::Date(2024, 1, 2, 0, 0, 0, 0),
            Value::Bytes(b"12.50".to_vec()),
            Value::Bytes(blob),
            Value::Date(1999, 12, 31, 23, 59, 59, 123_456),
        ]
    );
    let is_null: Option<i64> = c
        .exec_first("SELECT CAST($1 AS int) IS NULL", (Value::NULL,))
        .await
        .expect("NULL parameter");
    assert_eq!(is_null, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_result_streams() {
    const N: u64 = 100_000;
    let l = pg_only("pgm_large", "SELECT 1;").await;
    let mut c = l.conn().await;
    let expected: u64 = c
        .query_first(format!(
            "SELECT sum(('x' || substr(md5(g::text), 1, 8))::bit(32)::bigint)::bigint
             FROM generate_series(1, {N}) AS g"
        ))
        .await
        .expect("checksum")
        .expect("a row");
    for binary in [false, true] {
        // (mysql_async reads `:name` as a named parameter: no `::` casts.)
        let sql = "SELECT g, md5(CAST(g AS text)) AS h FROM generate_series(1, $1) AS g";
        let (count, sum_g, sum_h) = if binary {
            tally(c.exec_iter(sql, (N,)).await.expect("large query")).await
        } else {
            let text = sql.replace("$1", &N.to_string());
            tally(c.query_iter(text).await.expect("large query")).await
        };
        assert_eq!(
            (count, sum_g, sum_h),
            (N, N * (N + 1) / 2, expected),
            "binary={binary}"
        );
        assert_eq!(l.last_summary().rows, N);
    }
}

/// Row count, sum of `g` and of the first 32 bits of `h`, row by row.
async fn tally<P: mysql_async::prelude::Protocol>(
    mut result: mysql_async::QueryResult<'_, '_, P>,
) -> (u64, u64, u64) {
    let (mut count, mut sum_g, mut sum_h) = (0u64, 0u64, 0u64);
    result
        .for_each(|row| {
            let (g, h): (u64, String) = mysql_async::from_row(row);
            count += 1;
            sum_g += g;
            sum_h += u64::from_str_radix(&h[..8], 16).unwrap_or(0);
        })
        .await
        .expect("stream");
    (count, sum_g, sum_h)
}

/// Expressions have no MySQL column: they get their PostgreSQL type's
/// natural MySQL type and MySQL-style text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expressions_take_natural_types() {
    let l = pg_only("pgm_exprs", "SELECT 1;").await;
    let mut c = l.conn().await;
    let sql = "SELECT 1 AS i, CAST(2.5 AS numeric(5,2)) AS n, 1.50 AS d, 'x' AS s, NULL AS z,
        true AS b, CAST('1999-12-31 23:59:59.5' AS timestamp) AS ts, interval '26 hours' AS iv,
        interval '1 mon 2 days' AS ivm, CAST('10.0.0.1' AS inet) AS ip, CAST(12345 AS oid) AS o,
        CAST('-infinity' AS date) AS inf, CAST('123e4567-e89b-12d3-a456-426614174000' AS uuid) AS u,
        B'101' AS bits, CAST('NaN' AS numeric) AS nan, CAST(1e300 AS float8) AS f";
    let mut result = c.query_iter(sql).await.expect("expressions");
    let types: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| format!("{:?}", c.column_type()).replace("MYSQL_TYPE_", ""))
        .collect();
    let rows: Vec<mysql_async::Row> = result.collect().await.expect("row");
    let text: Vec<String> = rows[0]
        .clone()
        .unwrap()
        .into_iter()
        .map(|v| match v {
            Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::NULL => "NULL".into(),
            other => format!("{other:?}"),
        })
        .collect();
    let got: Vec<(String, String)> = types.into_iter().zip(text).collect();
    let want = [
        ("LONG", "1"),
        ("NEWDECIMAL", "2.50"),
        ("NEWDECIMAL", "1.50"),
        ("BLOB", "x"),
        ("BLOB", "NULL"),
        ("TINY", "1"),
        ("DATETIME", "1999-12-31 23:59:59.500000"),
        ("TIME", "26:00:00.000000"),
        ("TIME", "1 mon 2 days"),
        ("VAR_STRING", "10.0.0.1"),
        ("LONG", "12345"),
        ("DATE", "-infinity"),
        ("STRING", "123e4567-e89b-12d3-a456-426614174000"),
        ("BIT", "\u{5}"),
        ("NEWDECIMAL", "NaN"),
        ("DOUBLE", "1e300"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
    // Binary protocol: typed values; an unrepresentable date is the zero date.
    let row: mysql_async::Row = c
        .exec_first(
            "SELECT CAST($1 AS int) AS i, CAST('-infinity' AS date) AS inf, interval '-26 hours' AS iv, true AS b",
            (7,),
        )
        .await
        .expect("binary expressions")
        .expect("a row");
    assert_eq!(
        row.unwrap(),
        vec![
            Value::Int(7),
            Value::Date(0, 0, 0, 0, 0, 0, 0),
            Value::Time(true, 1, 2, 0, 0, 0),
            Value::Int(1),
        ]
    );
    // An interval with months has no binary TIME: a clear error, mid-result.
    let e = c
        .exec_drop("SELECT interval '1 mon' AS m WHERE $1 = 1", (1,))
        .await
        .expect_err("months");
    let (code, _, message) = server_error(e);
    assert_eq!(code, 1105, "{message}");
    assert!(message.contains("cast it to text"), "{message}");
}
