//! The translator against real servers: MySQL DDL is run on MariaDB and its
//! translation on PostgreSQL, the translator's schema is read back from
//! MariaDB's information_schema (as the proxy does), then a property test
//! generates MySQL DML over that schema and checks that every statement
//! MariaDB accepts translates and is accepted by PostgreSQL. A second test
//! checks translated statements return what MySQL returns.

mod common;
#[path = "translate_pg/generators.rs"]
mod generators;

use common::servers;
use mysql_async::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tandem::sql::schema::Schema;
use tandem::sql::translate::to_postgres;
use tandem::wire::packets::OkInfo;

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
            // The one id-replay path production uses, then the translation.
            let ok = OkInfo {
                affected_rows: my.affected_rows(),
                last_insert_id: my.last_insert_id().unwrap_or(0),
                ..Default::default()
            };
            let replayed = tandem::dualwrite::statement::replay_text(sql, &ok, schema, 1)?;
            let translated = to_postgres(&replayed, schema).map_err(|e| e.to_string())?;
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

#[test]
fn generated_dml_runs_on_postgres() {
    let mut env = setup("translate_prop");
    // PROPTEST_CASES=5000 for a longer hunt; SHOW_CASES=1 prints every
    // statement with its translation.
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
    let result = runner.run(&generators::statement(), |sql| {
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
        ("SELECT SUBSTRING('hello', 2, 3)", &["ell"]),
        ("SELECT SUBSTR('hello', 2)", &["ello"]),
        ("SELECT SUBSTRING('hello' FROM 2 FOR 3)", &["ell"]),
        ("SELECT LEFT('hello', 2)", &["he"]),
        ("SELECT ROUND(2.5), ROUND(-2.5)", &["3"]),
        ("SELECT ROUND(-2.5)", &["-3"]),
        ("SELECT ROUND(1.2345e0, 2)", &["1.23"]),
        ("SELECT TRUNCATE(1.999, 2)", &["1.99"]),
        ("SELECT POW(2, 10)", &["1024"]),
        ("SELECT LN(1) + LOG(1) + LOG(2, 8)", &["3"]),
        ("SELECT 5 <=> NULL", &["f"]),
        ("SELECT NULL <=> NULL", &["t"]),
        ("SELECT 6 ^ 3", &["5"]),
        ("SELECT (1 > 0) XOR (2 > 1)", &["f"]),
        ("SELECT 'a' = BINARY 'a'", &["t"]),
        ("SELECT CAST('12.7' AS DECIMAL)", &["13"]),
        ("SELECT CAST(12.7 AS SIGNED)", &["13"]),
        ("SELECT CAST(123 AS CHAR(2))", &["12"]),
        ("SELECT DATE('2024-02-29 10:00:00')", &["2024-02-29"]),
        ("SELECT YEAR('2024-02-29'), MONTH('2024-02-29')", &["2024"]),
        ("SELECT DAY('2024-02-29')", &["29"]),
        ("SELECT GREATEST(1, 3, 2)", &["3"]),
        ("SELECT 'x\\\\\\'y'", &["x\\'y"]),
        (
            "SELECT NOW() IS NOT NULL AND CURTIME() IS NOT NULL AND UUID() IS NOT NULL",
            &["t"],
        ),
        ("SELECT CURDATE() = CURRENT_DATE", &["t"]),
        (
            "SELECT flag, COUNT(*) FROM kinds GROUP BY flag WITH ROLLUP HAVING flag IS NULL",
            &["NULL"],
        ),
        ("SELECT 1 FROM DUAL WHERE 1 = 1", &["1"]),
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
        ("INSERT INTO events () VALUES ()", "SELECT MAX(id) FROM events", &["3"]),
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
