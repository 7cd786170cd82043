//! The translator against real servers: MySQL DDL is run on MariaDB and its
//! translation on PostgreSQL, the translator's schema is read back from
//! MariaDB's information_schema (as the proxy does), then a property test
//! generates MySQL DML over that schema and checks that every statement
//! MariaDB accepts translates and is accepted by PostgreSQL. A second test
//! checks translated statements return what MySQL returns.

mod common;

use common::servers;
use mysql_async::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tandem::sql::schema::Schema;
use tandem::sql::translate::{to_postgres, to_postgres_replay, MysqlOutcome};

const SCHEMA: &[&str] = &[
    "CREATE TABLE kinds (
        id int unsigned NOT NULL AUTO_INCREMENT,
        flag tinyint(1) NOT NULL DEFAULT 0,
        tiny tinyint, tiny_u tinyint unsigned, small smallint, small_u smallint unsigned,
        medium mediumint, medium_u mediumint unsigned, num int, big bigint, big_u bigint unsigned,
        price decimal(10,2), ratio double, f float,
        name varchar(50) NOT NULL DEFAULT '', code char(3), body text, tiny_t tinytext,
        medium_t mediumtext, long_t longtext,
        data blob, tiny_b tinyblob, medium_b mediumblob, long_b longblob, vb varbinary(16), fixed binary(4),
        created datetime, created6 datetime(6), seen timestamp NULL DEFAULT NULL,
        changed timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        day date, at_time time, yr year, bits bit(8), size enum('s','m','l') DEFAULT 'm',
        tags set('a','b','c'), doc json,
        PRIMARY KEY (id),
        UNIQUE KEY uk_name (name),
        KEY idx_num (num),
        KEY idx_body (body(20))
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=1000",
    "CREATE TABLE counters (
        k varchar(20) NOT NULL, n int NOT NULL DEFAULT 0, note varchar(100), PRIMARY KEY (k)
    ) ENGINE=InnoDB",
    "CREATE TABLE events (
        id bigint NOT NULL AUTO_INCREMENT, kind_id int unsigned, msg text, at datetime,
        PRIMARY KEY (id), KEY (kind_id),
        CONSTRAINT fk_kind FOREIGN KEY (kind_id) REFERENCES kinds (id) ON DELETE CASCADE
    ) ENGINE=InnoDB",
];

const SEED: &[&str] = &[
    "INSERT INTO kinds (name, flag, num, price, body, seen, bits, tags) VALUES
        ('seed1', 1, 5, 10.50, 'first', NULL, b'101', 'a,b'),
        ('seed2', 0, NULL, NULL, NULL, '2024-01-02 03:04:05', 3, ''),
        ('seed3', 1, 7, 99.99, 'third\\'s', NULL, NULL, 'c')",
    "INSERT INTO counters (k, n, note) VALUES ('a', 1, NULL), ('b', 2, 'two')",
    "INSERT INTO events (kind_id, msg, at) VALUES (1000, 'hello', '2024-01-01 00:00:00'), (1001, NULL, NULL)",
];

struct Env {
    rt: tokio::runtime::Runtime,
    pg: tokio_postgres::Client,
    my: mysql_async::Conn,
    schema: Schema,
}

fn rows_as_text(rows: Vec<mysql_async::Row>) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                })
                .collect()
        })
        .collect()
}

/// Creates the schema on both servers (PostgreSQL's through the translator),
/// reads the translator's schema from MariaDB and seeds both.
fn setup(prefix: &str) -> Env {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pg_server = servers::postgres();
    let pg_db = pg_server.create_database(prefix);
    let my_db = servers::mariadb().create_database(prefix);
    let (pg, mut my) = rt.block_on(async {
        let (pg, conn) = tokio_postgres::connect(&pg_server.url(&pg_db), tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        pg.batch_execute("SET TIME ZONE 'UTC'")
            .await
            .expect("time zone");
        let mut my = common::direct(&my_db).await;
        my.query_drop("SET time_zone = '+00:00'")
            .await
            .expect("time zone");
        (pg, my)
    });
    let empty = Schema::default();
    for ddl in SCHEMA {
        rt.block_on(my.query_drop(*ddl))
            .unwrap_or_else(|e| panic!("MariaDB: {e}\n{ddl}"));
        let translated = to_postgres(ddl, &empty).unwrap_or_else(|e| panic!("{e}\n{ddl}"));
        for statement in &translated.statements {
            rt.block_on(pg.batch_execute(statement))
                .unwrap_or_else(|e| panic!("PostgreSQL: {e:?}\n{statement}"));
        }
    }
    let mut env = Env {
        rt,
        pg,
        my,
        schema: Schema::default(),
    };
    env.refresh_schema();
    for sql in SEED {
        env.both(sql).unwrap_or_else(|e| panic!("seed: {e}\n{sql}"));
    }
    // The seeds carried MySQL's ids explicitly, which leaves the identity
    // sequences behind; move them on, as a cutover would.
    let sync =
        "SELECT setval(pg_get_serial_sequence('kinds', 'id'), (SELECT max(id) FROM kinds)), \
                setval(pg_get_serial_sequence('events', 'id'), (SELECT max(id) FROM events))";
    env.rt.block_on(env.pg.batch_execute(sync)).expect("setval");
    env
}

impl Env {
    /// Reads the translator's schema from MariaDB's information_schema.
    fn refresh_schema(&mut self) {
        let Env { rt, my, schema, .. } = self;
        *schema = rt.block_on(async {
            let columns: Vec<mysql_async::Row> =
                my.query(Schema::COLUMNS_QUERY).await.expect("columns");
            let keys: Vec<mysql_async::Row> = my.query(Schema::KEYS_QUERY).await.expect("keys");
            Schema::from_rows(&rows_as_text(columns), &rows_as_text(keys))
        });
    }

    /// Runs `sql` on MariaDB and its replay translation on PostgreSQL.
    fn both(&mut self, sql: &str) -> Result<(), String> {
        let Env { rt, pg, my, schema } = self;
        rt.block_on(async {
            my.query_drop(sql)
                .await
                .map_err(|e| format!("MariaDB: {e}"))?;
            let outcome = MysqlOutcome {
                last_insert_id: my.last_insert_id().unwrap_or(0),
                auto_increment_increment: 1,
            };
            let translated =
                to_postgres_replay(sql, schema, &outcome).map_err(|e| e.to_string())?;
            for statement in &translated.statements {
                pg.batch_execute(statement)
                    .await
                    .map_err(|e| format!("PostgreSQL: {e:?}\n{statement}"))?;
            }
            Ok(())
        })
    }

    /// Whether MariaDB accepts `sql` (in a transaction that is rolled back).
    fn mysql_accepts(&mut self, sql: &str) -> Result<(), String> {
        let Env { rt, my, .. } = self;
        rt.block_on(async {
            my.query_drop("START TRANSACTION")
                .await
                .map_err(|e| e.to_string())?;
            let result = my.query_drop(sql).await.map_err(|e| e.to_string());
            my.query_drop("ROLLBACK").await.map_err(|e| e.to_string())?;
            result
        })
    }

    /// Runs the PostgreSQL statements in a transaction that is rolled back.
    fn postgres_accepts(&mut self, statements: &[String]) -> Result<(), String> {
        let Env { rt, pg, .. } = self;
        rt.block_on(async {
            pg.batch_execute("BEGIN")
                .await
                .map_err(|e| format!("{e:?}"))?;
            let mut result = Ok(());
            for statement in statements {
                if let Err(e) = pg.simple_query(statement).await {
                    let detail = e
                        .as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or_else(|| e.to_string());
                    result = Err(format!("{detail}\n{statement}"));
                    break;
                }
            }
            pg.batch_execute("ROLLBACK")
                .await
                .map_err(|e| format!("{e:?}"))?;
            result
        })
    }

    /// The first column of every row, as PostgreSQL prints it (NULL as "NULL").
    fn pg_column(&mut self, mysql: &str) -> Vec<String> {
        let translated =
            to_postgres(mysql, &self.schema).unwrap_or_else(|e| panic!("{e}\n{mysql}"));
        let [statement] = translated.statements.as_slice() else {
            panic!("one statement expected from {mysql}");
        };
        let messages = self
            .rt
            .block_on(self.pg.simple_query(statement))
            .unwrap_or_else(|e| panic!("{e:?}\n{statement}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    row.get(0)
                        .map_or_else(|| "NULL".to_string(), str::to_string),
                ),
                _ => None,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Generators: MySQL literals per column, statements over the schema.
// ---------------------------------------------------------------------------

fn mysql_string(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn text(max: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[a-zA-Z0-9 '\"\\\\%_\n\téü中🙂]{{0,{max}}}"))
        .expect("regex")
        .prop_map(|s| mysql_string(&s))
        .boxed()
}

fn bytes(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=max).prop_map(|b| {
            if b.is_empty() {
                "''".to_string()
            } else {
                format!(
                    "X'{}'",
                    b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                )
            }
        }),
        proptest::string::string_regex(&format!("[a-z\0'\\\\]{{0,{max}}}"))
            .expect("regex")
            .prop_map(|s| mysql_string(&s)),
    ]
    .boxed()
}

fn int(min: i64, max: i64) -> BoxedStrategy<String> {
    (min..=max).prop_map(|n| n.to_string()).boxed()
}

fn datetime(fraction: bool, first_year: i32) -> BoxedStrategy<String> {
    (
        first_year..2037,
        1..=12u32,
        1..=28u32,
        0..24u32,
        0..60u32,
        0..60u32,
        0..1_000_000u32,
    )
        .prop_map(move |(y, mo, d, h, mi, s, us)| {
            if fraction {
                format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'")
            } else {
                format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}'")
            }
        })
        .boxed()
}

/// A literal for a column of `kinds` (NULL included where allowed).
fn value(column: &str) -> BoxedStrategy<String> {
    let v = match column {
        "flag" => prop_oneof![Just("0".into()), Just("1".into()), Just("TRUE".into())].boxed(),
        "tiny" => int(-128, 127),
        "tiny_u" => int(0, 255),
        "small" => int(-32768, 32767),
        "small_u" => int(0, 65535),
        "medium" => int(-8_388_608, 8_388_607),
        "medium_u" => int(0, 16_777_215),
        "num" => int(-1_000_000, 1_000_000),
        "big" => any::<i64>().prop_map(|n| n.to_string()).boxed(),
        "big_u" => any::<u64>().prop_map(|n| n.to_string()).boxed(),
        "price" => (-9_999_999_999i64..=9_999_999_999)
            .prop_map(|c| format!("{:.2}", c as f64 / 100.0))
            .boxed(),
        "ratio" => (-1e6f64..1e6).prop_map(|x| format!("{x:e}")).boxed(),
        "f" => (-1e4f64..1e4).prop_map(|x| format!("{x:.3}")).boxed(),
        "code" => text(3),
        "body" | "tiny_t" | "medium_t" | "long_t" => text(30),
        "data" | "tiny_b" | "medium_b" | "long_b" => bytes(12),
        "vb" => bytes(16),
        "fixed" => bytes(4),
        "created" => datetime(false, 1900),
        "created6" => datetime(true, 1900),
        "seen" => datetime(false, 1971),
        "day" => (1900..2100i32, 1..=12u32, 1..=28u32)
            .prop_map(|(y, m, d)| format!("'{y:04}-{m:02}-{d:02}'"))
            .boxed(),
        "at_time" => (0..24u32, 0..60u32, 0..60u32)
            .prop_map(|(h, m, s)| format!("'{h:02}:{m:02}:{s:02}'"))
            .boxed(),
        "yr" => int(1901, 2155),
        "bits" => prop_oneof![
            (0..=255u32).prop_map(|n| n.to_string()),
            (0..=255u32).prop_map(|n| format!("b'{n:b}'")),
        ]
        .boxed(),
        "size" => prop_oneof![Just("'s'".into()), Just("'m'".into()), Just("'L'".into())].boxed(),
        "tags" => proptest::sample::subsequence(vec!["a", "b", "c"], 0..=3)
            .prop_shuffle()
            .prop_map(|t| format!("'{}'", t.join(",")))
            .boxed(),
        "doc" => prop_oneof![
            Just("'{\"a\": 1}'".into()),
            Just("'[1, \"x\", null]'".into())
        ]
        .boxed(),
        other => panic!("no generator for column {other}"),
    };
    if column == "flag" {
        return v;
    }
    prop_oneof![1 => Just("NULL".to_string()), 6 => v].boxed()
}

const VALUE_COLUMNS: &[&str] = &[
    "flag", "tiny", "tiny_u", "small", "small_u", "medium", "medium_u", "num", "big", "big_u",
    "price", "ratio", "f", "code", "body", "tiny_t", "medium_t", "long_t", "data", "tiny_b",
    "medium_b", "long_b", "vb", "fixed", "created", "created6", "seen", "day", "at_time", "yr",
    "bits", "size", "tags", "doc",
];

/// A unique, quote-laden `name`.
fn name() -> BoxedStrategy<String> {
    (any::<u32>(), "[a-z'\\\\ é]{0,6}")
        .prop_map(|(n, s)| mysql_string(&format!("n{n}{s}")))
        .boxed()
}

fn condition() -> BoxedStrategy<String> {
    prop_oneof![
        Just("flag = 1".to_string()),
        Just("flag = 0".to_string()),
        Just("flag <> 0 AND body IS NOT NULL".to_string()),
        (-10..10i32).prop_map(|n| format!("num > {n}")),
        Just("name LIKE 'seed%'".to_string()),
        Just("seen IS NULL".to_string()),
        Just("id IN (1000, 1001, 1002)".to_string()),
        Just("price BETWEEN 1 AND 1000".to_string()),
        Just("size = 'm'".to_string()),
    ]
    .boxed()
}

fn order_column() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["id", "num", "name", "seen", "price", "body"]),
        any::<bool>(),
    )
        .prop_map(|(c, desc)| {
            if desc {
                format!("{c} DESC")
            } else {
                c.to_string()
            }
        })
}

/// A row for `columns` (name first).
fn row(columns: Vec<&'static str>) -> BoxedStrategy<String> {
    let values: Vec<BoxedStrategy<String>> = columns.iter().map(|c| value(c)).collect();
    (name(), values)
        .prop_map(|(n, vs)| format!("({n}, {})", vs.join(", ")))
        .boxed()
}

fn some_columns() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(VALUE_COLUMNS.to_vec(), 1..8)
}

fn statement() -> BoxedStrategy<String> {
    let insert = some_columns()
        .prop_flat_map(|cols| {
            let list = cols.join(", ");
            (proptest::collection::vec(row(cols), 1..4), any::<bool>()).prop_map(
                move |(rows, ignore)| {
                    let ignore = if ignore { "IGNORE " } else { "" };
                    format!(
                        "INSERT {ignore}INTO kinds (name, {list}) VALUES {}",
                        rows.join(", ")
                    )
                },
            )
        })
        .boxed();
    let upsert_kinds = (1000..1005u32, name(), value("num"), value("price")).prop_map(|(id, n, num, price)| {
        format!(
            "INSERT INTO kinds (id, name, num, price) VALUES ({id}, {n}, {num}, {price}) \
             ON DUPLICATE KEY UPDATE num = IFNULL(num, 0) + 1, price = VALUES(price), ratio = num / 3"
        )
    });
    let upsert_counters = (prop::sample::select(vec!["a", "b", "c"]), 0..100i32, text(20)).prop_map(|(k, n, note)| {
        format!(
            "INSERT INTO counters (k, n, note) VALUES ('{k}', {n}, {note}) \
             ON DUPLICATE KEY UPDATE n = n + VALUES(n), note = CONCAT(IFNULL(note, ''), VALUES(note))"
        )
    });
    let replace = prop_oneof![
        (prop::sample::select(vec!["a", "b", "z"]), 0..100i32)
            .prop_map(|(k, n)| format!("REPLACE INTO counters (k, n) VALUES ('{k}', {n})")),
        (prop::sample::select(vec!["a", "q"]), text(20))
            .prop_map(|(k, note)| format!("REPLACE INTO counters SET k = '{k}', note = {note}")),
        (1000..1004u32, name(), value("body")).prop_map(|(id, n, b)| format!(
            "REPLACE INTO kinds (id, name, body) VALUES ({id}, {n}, {b})"
        )),
    ];
    let update = (
        prop::sample::select(VALUE_COLUMNS.to_vec()).prop_flat_map(|c| value(c).prop_map(move |v| format!("{c} = {v}"))),
        any::<bool>(),
        condition(),
        proptest::option::of((order_column(), 1..4u32)),
    )
        .prop_map(|(set, extra, cond, order)| {
            let extra = if extra {
                ", code = IF(flag, 'yes', 'no'), medium_t = CONCAT(name, '-', IFNULL(num, 0)), num = num + 1"
            } else {
                ""
            };
            let tail = order.map(|(o, n)| format!(" ORDER BY {o} LIMIT {n}")).unwrap_or_default();
            format!("UPDATE kinds SET {set}{extra} WHERE {cond}{tail}")
        });
    let delete = prop_oneof![
        (condition(), order_column(), 1..3u32).prop_map(|(c, o, n)| format!("DELETE FROM kinds WHERE {c} ORDER BY {o} LIMIT {n}")),
        Just("DELETE FROM events WHERE msg IS NULL LIMIT 1".to_string()),
        Just("DELETE e FROM events e JOIN kinds k ON k.id = e.kind_id WHERE k.flag = 1".to_string()),
        Just("UPDATE kinds k JOIN events e ON e.kind_id = k.id SET k.num = 7, k.flag = 0 WHERE e.msg IS NOT NULL".to_string()),
    ];
    let select = prop_oneof![
        (prop::sample::select(VALUE_COLUMNS.to_vec()), condition(), order_column(), 0..3u32, 1..4u32)
            .prop_map(|(c, cond, o, a, b)| format!("SELECT id, name, {c} FROM kinds WHERE {cond} ORDER BY {o} LIMIT {a}, {b}")),
        Just("SELECT flag, COUNT(*), GROUP_CONCAT(name ORDER BY id SEPARATOR ', ') FROM kinds GROUP BY flag".to_string()),
        Just("SELECT k.name, COUNT(e.id) AS n FROM kinds k LEFT JOIN events e ON e.kind_id = k.id GROUP BY k.name ORDER BY n DESC, k.name LIMIT 3".to_string()),
        Just("SELECT * FROM kinds WHERE id IN (SELECT kind_id FROM events) FOR UPDATE".to_string()),
        Just("SELECT CONCAT(name, ':', flag), IF(num > 5, 'big', 'small'), LENGTH(body), UNIX_TIMESTAMP(seen) FROM kinds".to_string()),
    ];
    prop_oneof![
        4 => insert,
        1 => upsert_kinds,
        1 => upsert_counters,
        1 => replace,
        3 => update,
        1 => delete,
        2 => select,
    ]
    .boxed()
}

#[test]
fn generated_dml_runs_on_postgres() {
    let mut env = setup("translate_prop");
    // PROPTEST_CASES=5000 for a longer hunt.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    });
    let env = std::cell::RefCell::new(&mut env);
    let result = runner.run(&statement(), |sql| {
        let mut env = env.borrow_mut();
        if let Err(e) = env.mysql_accepts(&sql) {
            // The generator only aims at valid MySQL; say so when it misses.
            return Err(TestCaseError::fail(format!(
                "MariaDB rejected the generated statement: {e}\n{sql}"
            )));
        }
        let translated = to_postgres(&sql, &env.schema)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{sql}")))?;
        if std::env::var_os("SHOW_CASES").is_some() {
            eprintln!("{sql}\n  => {}", translated.statements.join("; "));
        }
        env.postgres_accepts(&translated.statements).map_err(|e| {
            TestCaseError::fail(format!(
                "PostgreSQL rejected the translation: {e}\nMySQL: {sql}"
            ))
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Answers MySQL gives for these statements (MySQL 8 / MariaDB 10.11).
#[test]
fn translations_return_what_mysql_returns() {
    let mut env = setup("translate_facts");
    let facts: &[(&str, &[&str])] = &[
        // `/` never truncates (MySQL prints 3.5000); DIV truncates toward zero.
        ("SELECT 7 / 2 = 3.5", &["t"]),
        ("SELECT 7 DIV 2", &["3"]),
        ("SELECT -7 DIV 2", &["-3"]),
        ("SELECT -7 % 3", &["-1"]),
        // Division and modulo by zero are NULL.
        ("SELECT 1 / 0", &["NULL"]),
        ("SELECT 5 % 0", &["NULL"]),
        ("SELECT MOD(5, 0)", &["NULL"]),
        // CONCAT is NULL if any argument is; CONCAT_WS skips NULLs.
        ("SELECT CONCAT('a', NULL, 'b')", &["NULL"]),
        ("SELECT CONCAT_WS(',', 'a', NULL, 'b')", &["a,b"]),
        ("SELECT CONCAT('n', 1, 2.5)", &["n12.5"]),
        (
            "SELECT CONCAT(name, flag) FROM kinds WHERE id = 1000",
            &["seed11"],
        ),
        ("SELECT GREATEST(1, NULL, 3)", &["NULL"]),
        ("SELECT IFNULL(NULL, 'x'), IF(1 > 2, 'y', 'n')", &["x"]),
        ("SELECT LENGTH('ü'), CHAR_LENGTH('ü')", &["2"]),
        ("SELECT CHAR_LENGTH('ü')", &["1"]),
        ("SELECT 'it\\'s a \\\\ and ''q'''", &["it's a \\ and 'q'"]),
        (
            "SELECT UNIX_TIMESTAMP('2024-01-01 00:00:00')",
            &["1704067200"],
        ),
        // NULLs sort first ascending, last descending.
        ("SELECT num FROM kinds ORDER BY num", &["NULL", "5", "7"]),
        (
            "SELECT num FROM kinds ORDER BY num DESC",
            &["7", "5", "NULL"],
        ),
        (
            "SELECT name FROM kinds ORDER BY id LIMIT 1, 5",
            &["seed2", "seed3"],
        ),
        (
            "SELECT GROUP_CONCAT(name ORDER BY id DESC SEPARATOR '|') FROM kinds",
            &["seed3|seed2|seed1"],
        ),
        (
            "SELECT GROUP_CONCAT(num) FROM kinds WHERE num IS NULL",
            &["NULL"],
        ),
        ("SELECT COUNT(*) FROM kinds WHERE flag = 1", &["2"]),
        ("SELECT bits FROM kinds ORDER BY id", &["5", "3", "NULL"]),
        ("SELECT tags FROM kinds WHERE id = 1000", &["a,b"]),
        ("SELECT body FROM kinds WHERE id = 1002", &["third's"]),
        // Ids are MySQL's (AUTO_INCREMENT=1000), replayed explicitly.
        (
            "SELECT id FROM kinds ORDER BY id",
            &["1000", "1001", "1002"],
        ),
    ];
    for (mysql, expected) in facts {
        assert_eq!(env.pg_column(mysql), *expected, "\nMySQL: {mysql}");
    }

    // Writes, replayed on both servers, then read back from PostgreSQL.
    let writes: &[(&str, &str, &[&str])] = &[
        // SET assignments see earlier ones (left to right).
        ("UPDATE counters SET n = n + 10, note = n WHERE k = 'a'", "SELECT note FROM counters WHERE k = 'a'", &["11"]),
        ("UPDATE counters SET n = 1, n = n + 1 WHERE k = 'a'", "SELECT n FROM counters WHERE k = 'a'", &["2"]),
        (
            "INSERT INTO counters (k, n) VALUES ('b', 5) ON DUPLICATE KEY UPDATE n = n + VALUES(n), note = n",
            "SELECT CONCAT(n, '/', note) FROM counters WHERE k = 'b'",
            &["7/7"],
        ),
        // REPLACE resets the columns it does not name.
        (
            "REPLACE INTO counters (k, n) VALUES ('b', 1)",
            "SELECT CONCAT(n, '/', IFNULL(note, 'NULL')) FROM counters WHERE k = 'b'",
            &["1/NULL"],
        ),
        ("INSERT IGNORE INTO counters (k, n) VALUES ('b', 9), ('c', 3)", "SELECT n FROM counters ORDER BY k", &["2", "1", "3"]),
        // ORDER BY … LIMIT picks MySQL's rows.
        ("UPDATE kinds SET num = 0 ORDER BY num DESC LIMIT 1", "SELECT id FROM kinds WHERE num = 0", &["1002"]),
        ("DELETE FROM events ORDER BY id DESC LIMIT 1", "SELECT id FROM events", &["1"]),
        ("INSERT INTO kinds (name, data, fixed) VALUES ('bin', X'00FF', 'ab')", "SELECT data FROM kinds WHERE name = 'bin'", &["\\x00ff"]),
        ("UPDATE kinds SET vb = 'a\\0b' WHERE name = 'bin'", "SELECT fixed FROM kinds WHERE vb = 'a\\0b'", &["\\x61620000"]),
        // The id MySQL generated, not PostgreSQL's own sequence.
        ("INSERT INTO kinds (name) VALUES ('next')", "SELECT id FROM kinds WHERE name = 'next'", &["1004"]),
        ("UPDATE kinds SET flag = 1 WHERE flag = 0 AND name = 'seed2'", "SELECT COUNT(*) FROM kinds WHERE flag = 1", &["3"]),
    ];
    for (write, read, expected) in writes {
        env.both(write)
            .unwrap_or_else(|e| panic!("{e}\nMySQL: {write}"));
        assert_eq!(
            env.pg_column(read),
            *expected,
            "\nafter: {write}\nread: {read}"
        );
    }
}

/// Schema changes run on both servers; PostgreSQL must accept every
/// translated statement and end up with the indexes MySQL has.
#[test]
fn schema_changes_follow_mysql() {
    let mut env = setup("translate_ddl");
    let steps = [
        "CREATE TABLE `Audit` (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, who varchar(20) NOT NULL, `when` datetime(3), `user` int, KEY by_who (who)) AUTO_INCREMENT=50",
        "ALTER TABLE `Audit` ADD COLUMN note text AFTER who, ADD INDEX by_when (`when`), ADD UNIQUE KEY uk (`user`)",
        "ALTER TABLE `Audit` MODIFY who varchar(40) NULL DEFAULT 'nobody', CHANGE note remark varchar(200) NOT NULL DEFAULT ''",
        "ALTER TABLE `Audit` ADD COLUMN touched timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP",
        "CREATE INDEX by_remark ON `Audit` (remark(10), who)",
        "ALTER TABLE `Audit` DROP INDEX by_when",
        "RENAME TABLE `Audit` TO audit_log",
        "DROP INDEX by_who ON audit_log",
        "ALTER TABLE audit_log RENAME COLUMN remark TO comment, ADD INDEX by_comment (comment)",
        "ALTER TABLE audit_log ALTER COLUMN comment SET DEFAULT 'none', CHANGE who author varchar(40), ADD INDEX by_author (author)",
        "INSERT INTO audit_log (author, `user`) VALUES ('a', 1), ('b', 2)",
        "UPDATE audit_log SET author = 'c' WHERE `user` = 2",
        "CHECK INDEXES",
        "TRUNCATE audit_log",
        "ALTER TABLE counters ADD CONSTRAINT fk_note CHECK (n >= 0), DROP PRIMARY KEY, ADD PRIMARY KEY (k, n)",
        "DROP TABLE IF EXISTS audit_log, nothing_here",
    ];
    for step in steps {
        if step == "CHECK INDEXES" {
            // Every MySQL index exists in PostgreSQL as `<table>_<index>`,
            // renamed along with the table.
            let mut mysql: Vec<String> = env
                .rt
                .block_on(env.my.query::<String, _>(
                    "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS \
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'audit_log'",
                ))
                .expect("index names")
                .into_iter()
                .map(|index| {
                    if index == "PRIMARY" {
                        "pkey".into()
                    } else {
                        index
                    }
                })
                .map(|index| format!("audit_log_{index}"))
                .collect();
            mysql.sort();
            let postgres = env.pg_column(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_log' ORDER BY indexname",
            );
            assert_eq!(postgres, mysql);
            continue;
        }
        // The translator's schema follows MySQL, as the proxy's would.
        env.both(step)
            .unwrap_or_else(|e| panic!("{e}\nMySQL: {step}"));
        env.refresh_schema();
    }
    let indexes = env.pg_column(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'counters' ORDER BY indexname",
    );
    assert_eq!(indexes, ["counters_pkey"]);
}
