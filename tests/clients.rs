//! Independent clients through the proxy, each compared with the same run
//! against MariaDB directly: PyMySQL and mysql-connector-python (autocommit,
//! bytes, multi-result CALL, SIGNAL), the `mariadb` CLI (classic EOF protocol,
//! COM_INIT_DB, column metadata), `mysqldump` and sysbench.

mod common;

use std::process::Command;

use common::*;

fn run(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_bytes(cmd)).into_owned()
}

fn run_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

/// `mariadb` CLI arguments for the proxy or the direct server.
fn cli(port: u16, user: &str, password: &str, db: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args([
        "--protocol=TCP",
        "-h127.0.0.1",
        &format!("-P{port}"),
        &format!("-u{user}"),
        &format!("-p{password}"),
        db,
    ]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_see_the_same_as_direct() {
    let (db_p, proxy) = setup("py").await;
    let db_d = servers::mariadb().create_database("py_direct");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/probe.py");
    let port = servers::mariadb().port;
    let direct = tokio::task::spawn_blocking(move || {
        run(Command::new("python3").args([
            script,
            "127.0.0.1",
            &port.to_string(),
            "app",
            "apppass",
            &db_d,
        ]))
    });
    let pport = proxy.port();
    let proxied = tokio::task::spawn_blocking(move || {
        run(Command::new("python3").args([
            script,
            "127.0.0.1",
            &pport.to_string(),
            PROXY_USER,
            PROXY_PASSWORD,
            &db_p,
        ]))
    });
    let (direct, proxied) = (direct.await.unwrap(), proxied.await.unwrap());
    let d: serde_json::Value = serde_json::from_str(&direct).unwrap();
    let p: serde_json::Value = serde_json::from_str(&proxied).unwrap();
    // Facts that must hold, then full equality with direct.
    assert_eq!(
        p["balance_after_rollback"], 100,
        "rollback with autocommit off lost data: {p}"
    );
    assert_eq!(
        p["blob_types"],
        serde_json::json!(["bytes", "bytes", "str"])
    );
    assert_eq!(p["call_sets"], serde_json::json!([[[1]], [["x", 2]], []]));
    assert_eq!(p["signal"][0], 1644);
    assert_eq!(p["insert_warnings"], 1);
    assert_eq!(p["connector_dup"], serde_json::json!([1062, "23000"]));
    assert_eq!(d, p, "direct:\n{direct}\nproxy:\n{proxied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_metadata_and_results_match_direct() {
    let (db_p, proxy) = setup("cli").await;
    let db_d = servers::mariadb().create_database("cli_direct");
    let port = servers::mariadb().port;
    let script = "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, d DECIMAL(10,3), b BLOB, v VARCHAR(20), ts DATETIME(3));
INSERT INTO t (d, b, v, ts) VALUES (1.5, x'00', 'x', '2024-01-01 10:00:00.5'), (NULL, NULL, NULL, NULL);
SELECT * FROM t ORDER BY id;
SELECT COUNT(*), SUM(d), MAX(v) FROM t;
DELIMITER //
CREATE PROCEDURE p() BEGIN SELECT 1 AS one; SELECT 2 AS two; END//
DELIMITER ;
CALL p();
SELECT 1; SELECT 'multi';
UPDATE t SET v = 'y' WHERE id = 1;
SHOW WARNINGS;
SELECT DATABASE();
use mysql
SELECT DATABASE();
";
    let out = |p: u16, user: &str, pass: &str, db: &str| {
        let mut c = cli(p, user, pass, db);
        c.args(["--column-type-info", "-vvv", "--table"]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("mariadb CLI");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Timings differ from run to run.
        let text = String::from_utf8_lossy(&o.stdout).replace(db, "<db>");
        text.lines()
            .map(|l| match l.find(" sec)") {
                Some(_) => l.split(" (").next().unwrap_or(l).to_string(),
                None => l.to_string(),
            })
            // Table borders and Max_length (computed by the client from the
            // values) depend on the databases' different names.
            .filter(|l| !l.starts_with("Max_length:"))
            .map(|l| collapse(&l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (dd, dp) = (db_d.clone(), db_p.clone());
    let direct = tokio::task::spawn_blocking(move || out(port, "app", "apppass", &dd))
        .await
        .unwrap();
    let pport = proxy.port();
    let proxied = tokio::task::spawn_blocking(move || out(pport, PROXY_USER, PROXY_PASSWORD, &dp))
        .await
        .unwrap();
    assert!(proxied.contains("NEWDECIMAL"), "{proxied}");
    assert!(
        proxied.lines().any(|l| l == "| mysql |"),
        "COM_INIT_DB through the CLI use: {proxied}"
    );
    assert_eq!(direct, proxied);
}

fn collapse(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if (c == ' ' || c == '-') && out.ends_with(c) {
            continue;
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysqldump_through_the_proxy_matches_and_restores() {
    let (db, proxy) = setup("dump").await;
    let mut p = via(&proxy, &db).await;
    use mysql_async::prelude::*;
    p.query_drop("CREATE TABLE c (id INT PRIMARY KEY, name VARCHAR(20), data BLOB, at DATETIME)")
        .await
        .unwrap();
    p.query_drop("INSERT INTO c SELECT seq, CONCAT('n', seq), UNHEX(MD5(seq)), '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_2000").await.unwrap();
    p.query_drop("CREATE VIEW cv AS SELECT id, name FROM c WHERE id < 10")
        .await
        .unwrap();
    let port = servers::mariadb().port;
    let pport = proxy.port();
    let dbc = db.clone();
    let (direct, proxied) = tokio::task::spawn_blocking(move || {
        let dump = |port: u16, user: &str, pass: &str| {
            // Bytes, not text: the dump holds raw BLOB bytes.
            let dump = run_bytes(Command::new("mysqldump").args([
                "--protocol=TCP",
                "-h127.0.0.1",
                &format!("-P{port}"),
                &format!("-u{user}"),
                &format!("-p{pass}"),
                "--skip-dump-date",
                "--single-transaction",
                "--routines",
                &dbc,
            ]));
            dump.split(|&b| b == b'\n')
                .filter(|l| !l.starts_with(b"-- Host:"))
                .collect::<Vec<_>>()
                .join(&b'\n')
        };
        (
            dump(port, "app", "apppass"),
            dump(pport, PROXY_USER, PROXY_PASSWORD),
        )
    })
    .await
    .unwrap();
    assert!(
        proxied.windows(22).any(|w| w == b"INSERT INTO `c` VALUES"),
        "dump has data"
    );
    assert!(direct == proxied, "dumps differ");
    // Restore the dump through the proxy into another database.
    let copy = servers::mariadb().create_database("dump_copy");
    let copy2 = copy.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = cli(pport, PROXY_USER, PROXY_PASSWORD, &copy2);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&proxied).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    })
    .await
    .unwrap();
    let sums = servers::mariadb().root_sql(&format!(
        "CHECKSUM TABLE `{db}`.c, `{copy}`.c; SELECT COUNT(*) FROM `{copy}`.cv"
    ));
    let vals: Vec<&str> = sums
        .lines()
        .map(|l| l.split('\t').next_back().unwrap_or(""))
        .collect();
    assert_eq!(vals.len(), 3, "{sums}");
    let diff = servers::mariadb().root_sql(&format!("SELECT * FROM `{db}`.c EXCEPT SELECT * FROM `{copy}`.c LIMIT 2; SELECT * FROM `{copy}`.c EXCEPT SELECT * FROM `{db}`.c LIMIT 2; SHOW CREATE TABLE `{db}`.c; SHOW CREATE TABLE `{copy}`.c"));
    assert_eq!(vals[0], vals[1], "restored table differs: {sums}\n{diff}");
    assert_eq!(vals[2], "9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_read_write_runs_without_errors() {
    if Command::new("sysbench").arg("--version").output().is_err() {
        panic!("sysbench is not installed (scripts/test.sh installs it)");
    }
    let (db, proxy) = setup("sb").await;
    let pport = proxy.port();
    let out = tokio::task::spawn_blocking(move || {
        let common = |cmd: &str| {
            let mut c = Command::new("sysbench");
            c.args([
                "oltp_read_write",
                "--db-driver=mysql",
                "--mysql-host=127.0.0.1",
                &format!("--mysql-port={pport}"),
                &format!("--mysql-user={PROXY_USER}"),
                &format!("--mysql-password={PROXY_PASSWORD}"),
                &format!("--mysql-db={db}"),
                "--tables=1",
                "--table-size=1000",
                "--threads=4",
                "--time=3",
                "--db-ps-mode=auto",
                cmd,
            ]);
            run(&mut c)
        };
        common("prepare");
        common("run")
    })
    .await
    .unwrap();
    // sysbench exits non-zero on any error other than the deadlocks and lock
    // waits it retries ("ignored errors"), which contention causes directly too.
    let tx: u64 = out
        .lines()
        .find(|l| l.trim_start().starts_with("transactions:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no transaction count in sysbench output:\n{out}"));
    assert!(tx > 10, "too few transactions: {out}");
}
