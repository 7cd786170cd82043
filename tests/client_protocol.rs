//! Client-visible protocol behaviour the proxy must not change, each compared
//! with the same client run against MariaDB directly: LOAD DATA LOCAL INFILE
//! (the `mariadb` CLI and PyMySQL, files up to several MB, clients without
//! local infile) and its report in `dual_write`; a client that connects
//! without a database; a backend connection that dies while its client is
//! idle (KILL, wait_timeout).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use mysql_async::prelude::*;

const LOAD_SQL: &str = "IGNORE INTO TABLE li FIELDS TERMINATED BY ',' ENCLOSED BY '\"'";
const CHECK_SQL: &str =
    "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, name, amount, note))) FROM li";

/// A CSV file of `rows` rows with ids from `first`: quoted names with commas,
/// NULLs (`\N`), decimals and a long note, so every field kind is exercised.
fn csv_file(dir: &Path, name: &str, first: u32, rows: u32) -> PathBuf {
    use std::fmt::Write;
    let mut text = String::new();
    for id in first..first + rows {
        let note = if id % 7 == 0 {
            "\\N".to_string()
        } else {
            format!("\"note {id} {}\"", "x".repeat((id % 40) as usize))
        };
        let _ = writeln!(
            text,
            "{id},\"name, {id}\",{}.{:02},{note}",
            id * 3,
            id % 100
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The `mariadb` CLI against `port`; `db` may be empty (no database).
fn cli(port: u16, user: &str, password: &str, db: &str, extra: &[&str], sql: &str) -> Output {
    let mut c = Command::new("mariadb");
    c.args([
        "--no-defaults",
        "--protocol=TCP",
        "-h127.0.0.1",
        &format!("-P{port}"),
        &format!("-u{user}"),
        &format!("-p{password}"),
    ]);
    c.args(extra);
    if !db.is_empty() {
        c.arg(db);
    }
    c.args(["-e", sql]);
    output(&mut c)
}

/// What a CLI run printed, with timings removed: status, stdout, stderr.
fn shown(o: &Output) -> String {
    let strip = |b: &[u8]| {
        let text = String::from_utf8_lossy(b).into_owned();
        let mut out = String::new();
        for line in text.lines() {
            let line = match line.find(" sec)") {
                Some(end) => match line[..end].rfind('(') {
                    Some(start) => format!("{}{}", &line[..start], &line[end + 5..]),
                    None => line.to_string(),
                },
                None => line.to_string(),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    };
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        strip(&o.stdout),
        strip(&o.stderr)
    )
}

fn python(script: &str, args: &[String]) -> serde_json::Value {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let o = output(Command::new("python3").arg(path).args(args));
    assert!(
        o.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

fn create_li(port: u16, user: &str, password: &str, db: &str) {
    let o = cli(
        port,
        user,
        password,
        db,
        &[],
        "CREATE TABLE li (id INT PRIMARY KEY, name VARCHAR(60), amount DECIMAL(12,2), note TEXT)",
    );
    assert!(o.status.success(), "{}", shown(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_local_with_the_cli_matches_direct() {
    let (db_p, proxy) = setup("ldcli").await;
    let db_d = servers::mariadb().create_database("ldcli_direct");
    let dir = tempfile::tempdir().unwrap();
    let small = csv_file(dir.path(), "small.csv", 1, 50);
    // Several MB, overlapping the small file: "Skipped" and warnings too.
    let big = csv_file(dir.path(), "big.csv", 1, 100_000);
    let size = std::fs::metadata(&big).unwrap().len();
    assert!(size > 5_000_000, "big file is {size} bytes");
    let port = servers::mariadb().port;
    let (pport, db_p2, db_d2) = (proxy.port(), db_p.clone(), db_d.clone());
    let runs = tokio::task::spawn_blocking(move || {
        let mut shown_by = Vec::new();
        for (port, user, pass, db) in [
            (port, "app", "apppass", &db_d2),
            (pport, PROXY_USER, PROXY_PASSWORD, &db_p2),
        ] {
            create_li(port, user, pass, db);
            let mut steps = Vec::new();
            for file in [&small, &big] {
                let sql = format!(
                    "LOAD DATA LOCAL INFILE '{}' {LOAD_SQL}; {CHECK_SQL}",
                    file.display()
                );
                let o = cli(port, user, pass, db, &["--local-infile=1", "-vvv"], &sql);
                steps.push(shown(&o));
            }
            // Local infile disabled in the client: refused, nothing loaded.
            let sql = format!(
                "LOAD DATA LOCAL INFILE '{}' REPLACE INTO TABLE li FIELDS TERMINATED BY ','",
                small.display()
            );
            steps.push(shown(&cli(
                port,
                user,
                pass,
                db,
                &["--local-infile=0"],
                &sql,
            )));
            steps.push(shown(&cli(port, user, pass, db, &[], CHECK_SQL)));
            shown_by.push(steps);
        }
        shown_by
    })
    .await
    .unwrap();
    let (direct, proxied) = (&runs[0], &runs[1]);
    assert!(
        proxied[0].contains("Records: 50  Deleted: 0  Skipped: 0  Warnings: 0"),
        "{}",
        proxied[0]
    );
    assert!(
        proxied[1].contains("Records: 100000  Deleted: 0  Skipped: 50  Warnings: 50"),
        "{}",
        proxied[1]
    );
    assert!(proxied[2].contains("ERROR 4166"), "{}", proxied[2]);
    assert!(proxied[3].contains("100000\t"), "{}", proxied[3]);
    for (d, p) in direct.iter().zip(proxied) {
        assert_eq!(d, p, "direct vs proxy");
    }
    // The session ended cleanly after each load: connections went back to
    // the pool, none is stuck mid-file.
    assert_released(&proxy).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_local_with_pymysql_matches_direct() {
    let (db_p, proxy) = setup("ldpy").await;
    let db_d = servers::mariadb().create_database("ldpy_direct");
    let dir = tempfile::tempdir().unwrap();
    let small = csv_file(dir.path(), "small.csv", 1, 50);
    let big = csv_file(dir.path(), "big.csv", 1, 100_000);
    let files = [small.display().to_string(), big.display().to_string()];
    let port = servers::mariadb().port;
    let pport = proxy.port();
    let runs = tokio::task::spawn_blocking(move || {
        let args = |port: u16, user: &str, pass: &str, db: &str| {
            let mut a = vec![
                "127.0.0.1".to_string(),
                port.to_string(),
                user.to_string(),
                pass.to_string(),
                db.to_string(),
            ];
            a.extend(files.iter().cloned());
            a
        };
        (
            python("load_data.py", &args(port, "app", "apppass", &db_d)),
            python(
                "load_data.py",
                &args(pport, PROXY_USER, PROXY_PASSWORD, &db_p),
            ),
        )
    })
    .await
    .unwrap();
    let (d, p) = runs;
    assert_eq!(p["loads"][1]["affected"], 99_950, "{p}");
    // PyMySQL keeps the info's length byte when session tracking is on.
    let info = p["loads"][1]["info"].as_str().unwrap_or_default();
    assert!(
        info.ends_with("Records: 100000  Deleted: 0  Skipped: 50  Warnings: 50"),
        "{info}"
    );
    assert_eq!(p["after_missing"], "still usable");
    assert_eq!(p["disabled"][0], 4166, "{p}");
    assert_eq!(p["table_after"][0], "100000");
    assert_eq!(d, p, "direct vs proxy");
    proxy.stop().await;
}

fn dual_config(primary: &str, secondary_url: &str, drift: &Path) -> String {
    config::TestConfig::new(primary)
        .phase("dual_write")
        .new_backend(secondary_url)
        .mirror("source", "\"statements\"")
        .drift_log(drift)
        .toml()
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_in_dual_write_is_reported_as_drift() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let primary = m.create_database("lddw");
    let secondary = pg.create_database("lddw_new");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let proxy = start_proxy_with(&dual_config(&primary, &pg.url(&secondary), &drift)).await;
    let admin = tandem::admin::start("127.0.0.1:0", proxy.state.clone(), proxy.shutdown.clone())
        .await
        .unwrap();
    let file = csv_file(dir.path(), "rows.csv", 1, 1234);
    let (pport, db) = (proxy.port(), primary.clone());
    let loaded = tokio::task::spawn_blocking(move || {
        create_li(pport, PROXY_USER, PROXY_PASSWORD, &db);
        let sql = format!(
            "LOAD DATA LOCAL INFILE '{}' {LOAD_SQL}; INSERT INTO li VALUES (5000, 'after', 1, NULL)",
            file.display()
        );
        shown(&cli(
            pport,
            PROXY_USER,
            PROXY_PASSWORD,
            &db,
            &["--local-infile=1", "-vvv"],
            &sql,
        ))
    })
    .await
    .unwrap();
    assert!(
        loaded.contains("Records: 1234  Deleted: 0  Skipped: 0"),
        "{loaded}"
    );
    wait_mirrored(&proxy).await;
    // The client's load is on the old side only, and said so.
    let events = common::settled_jsonl(&drift, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["kind"], "load_data");
    let why = e["error"].as_str().unwrap();
    assert!(
        why.contains("table li") && why.contains("1234 rows"),
        "{why}"
    );
    assert!(e["statement"]
        .as_str()
        .unwrap()
        .starts_with("LOAD DATA LOCAL"));
    let metrics = http_get(admin, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tandem_load_data_unmirrored_rows_total 1234"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "tandem_drift_events_total 1"),
        "{metrics}"
    );
    // The mirror went on: the table and the INSERT after the load are there.
    let on_new = pg.sql(&secondary, "SELECT count(*), max(id) FROM li");
    assert_eq!(on_new.trim(), "1|5000", "{on_new}");
    proxy.stop().await;
}

fn no_db_opts(opts: mysql_async::OptsBuilder) -> mysql_async::OptsBuilder {
    opts.db_name(None::<String>)
}

/// What a client without a database sees: DATABASE(), an unqualified table,
/// a qualified one.
async fn without_database(c: &mut mysql_async::Conn, db: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let current: Option<Option<String>> = c.query_first("SELECT DATABASE()").await.unwrap();
    seen.push(format!("{current:?}"));
    for sql in [
        "SELECT * FROM t".to_string(),
        "INSERT INTO t VALUES (1)".to_string(),
        format!("SELECT COUNT(*) FROM `{db}`.t"),
    ] {
        let r: Result<Vec<mysql_async::Row>, _> = c.query(&sql).await;
        seen.push(match r {
            Ok(rows) => format!("{:?}", rows.into_iter().map(row_text).collect::<Vec<_>>()),
            Err(mysql_async::Error::Server(e)) => {
                format!("ERROR {} ({}): {}", e.code, e.state, e.message)
            }
            Err(e) => panic!("{sql}: {e}"),
        });
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_database_has_none_selected() {
    // The proxy's URL names a database; the client's choice still wins.
    let (db_p, proxy) = setup("nodb").await;
    let db_d = servers::mariadb().create_database("nodb_direct");
    for db in [&db_p, &db_d] {
        let mut c = direct(db).await;
        c.query_drop("CREATE TABLE t (id INT)").await.unwrap();
        c.query_drop("INSERT INTO t VALUES (7)").await.unwrap();
    }
    let mut d = mysql_async::Conn::new(no_db_opts(direct_opts(&db_d)))
        .await
        .unwrap();
    let mut p = mysql_async::Conn::new(no_db_opts(proxy_opts(&proxy, &db_p)))
        .await
        .unwrap();
    let seen_d = without_database(&mut d, &db_d).await;
    let seen_p = without_database(&mut p, &db_p).await;
    assert_eq!(seen_p[0], "Some(None)");
    assert!(seen_p[1].starts_with("ERROR 1046 (3D000)"), "{seen_p:?}");
    assert_eq!(
        seen_d.join("\n").replace(&db_d, "DB"),
        seen_p.join("\n").replace(&db_p, "DB")
    );

    // COM_CHANGE_USER without a database leaves none selected.
    for (c, db) in [(&mut d, &db_d), (&mut p, &db_p)] {
        c.query_drop(format!("USE `{db}`")).await.unwrap();
        c.change_user(mysql_async::ChangeUserOpts::default().with_db_name(None))
            .await
            .unwrap();
        let current: Option<Option<String>> = c.query_first("SELECT DATABASE()").await.unwrap();
        assert_eq!(current, Some(None), "after COM_CHANGE_USER");
    }
    drop(d);
    p.disconnect().await.unwrap();

    // A pooled connection that had a database selected serves the next
    // client without one: it must have none.
    let mut with_db = via(&proxy, &db_p).await;
    let current: Option<String> = with_db.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(current.as_deref(), Some(db_p.as_str()));
    let backend_id: u32 = with_db
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    with_db.disconnect().await.unwrap();
    for _ in 0..100 {
        if proxy.state.old.idle_count() > 0 && proxy.state.old.leased_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut next = mysql_async::Conn::new(no_db_opts(proxy_opts(&proxy, &db_p)))
        .await
        .unwrap();
    let reused: u32 = next
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reused, backend_id, "the pooled connection was reused");
    let current: Option<Option<String>> = next.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(current, Some(None), "pooled connection kept a database");
    next.disconnect().await.unwrap();

    // The mariadb CLI without a database, as directly.
    let (port, pport) = (servers::mariadb().port, proxy.port());
    let sql = "SELECT DATABASE(); SELECT * FROM t";
    let (out_d, out_p) = tokio::task::spawn_blocking(move || {
        (
            shown(&cli(port, "app", "apppass", "", &[], sql)),
            shown(&cli(pport, PROXY_USER, PROXY_PASSWORD, "", &[], sql)),
        )
    })
    .await
    .unwrap();
    assert!(out_p.contains("ERROR 1046 (3D000)"), "{out_p}");
    assert_eq!(out_d, out_p);
    proxy.stop().await;
}

/// Runs dead_backend.py against `port` (the server itself or the proxy).
fn dead_backend(port: u16, user: &str, password: &str, mode: &str) -> serde_json::Value {
    dead_backend_on(servers::mariadb(), port, user, password, mode)
}

fn dead_backend_on(
    m: &servers::MariaDb,
    port: u16,
    user: &str,
    password: &str,
    mode: &str,
) -> serde_json::Value {
    python(
        "dead_backend.py",
        &[
            "127.0.0.1".into(),
            port.to_string(),
            user.into(),
            password.into(),
            m.port.to_string(),
            "app".into(),
            "apppass".into(),
            mode.into(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_or_timed_out_backend_closes_the_idle_client_like_the_server() {
    let (_db, proxy) = setup("dead").await;
    let port = servers::mariadb().port;
    let pport = proxy.port();
    for mode in ["kill", "wait_timeout"] {
        let (d, p) = tokio::task::spawn_blocking(move || {
            (
                dead_backend(port, "app", "apppass", mode),
                dead_backend(pport, PROXY_USER, PROXY_PASSWORD, mode),
            )
        })
        .await
        .unwrap();
        let (de, pe) = (
            d["elapsed"].as_f64().unwrap(),
            p["elapsed"].as_f64().unwrap(),
        );
        // The proxy closes within a second of the server closing (KILL is
        // immediate, wait_timeout=1 fires after one idle second).
        let limit = if mode == "kill" { 1.0 } else { 2.5 };
        assert!(pe < limit, "{mode}: proxy closed after {pe:.2}s: {p}");
        assert!(p["outcome"] != "still open", "{mode}: {p}");
        assert_ne!(p["ping"], "ok", "{mode}: {p}");
        println!("{mode}: direct {d}, proxy {p}");
        for key in ["outcome", "bytes", "ping"] {
            assert_eq!(
                d[key], p[key],
                "{mode} {key}: direct {d} (after {de:.2}s), proxy {p}"
            );
        }
    }
    // The dead connections were not pooled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_released(&proxy).await;
    assert_eq!(proxy.state.old.idle_count(), 0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_shutdown_closes_the_idle_client_like_the_server() {
    let server = tokio::task::spawn_blocking(servers::start_private_mariadb)
        .await
        .unwrap();
    let server = std::sync::Arc::new(std::sync::Mutex::new(server));
    let url = server.lock().unwrap().url("mysql");
    let toml = config::TestConfig::new("x").old_url(&url).toml();
    let proxy = start_proxy_with(&toml).await;
    let pport = proxy.port();
    let s = server.clone();
    let (d, p) = tokio::task::spawn_blocking(move || {
        let mut m = s.lock().unwrap();
        let port = m.port;
        let d = dead_backend_on(&m, port, "app", "apppass", "shutdown");
        m.restart();
        let p = dead_backend_on(&m, pport, PROXY_USER, PROXY_PASSWORD, "shutdown");
        (d, p)
    })
    .await
    .unwrap();
    println!("shutdown: direct {d}, proxy {p}");
    assert!(p["elapsed"].as_f64().unwrap() < 5.0, "{p}");
    assert!(p["outcome"] != "still open", "{p}");
    for key in ["outcome", "bytes", "ping"] {
        assert_eq!(d[key], p[key], "{key}: direct {d}, proxy {p}");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_database_reads_stay_on_the_old_backend() {
    // Every read routed to PostgreSQL and shadow-compared, yet a client
    // without a database gets MariaDB's answers, as directly.
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let primary = m.create_database("nodbrd");
    let secondary = pg.create_database("nodbrd_new");
    let dir = tempfile::tempdir().unwrap();
    let toml = dual_config(
        &primary,
        &pg.url(&secondary),
        &dir.path().join("drift.jsonl"),
    ) + &format!(
        "[reads]\nnew_percent = 100\n[shadow]\nsample_percent = 100\nlog = \"{}\"\n",
        dir.path().join("mismatches.jsonl").display()
    );
    let proxy = start_proxy_with(&toml).await;
    let mut c = via(&proxy, &primary).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO t VALUES (7)").await.unwrap();
    wait_mirrored(&proxy).await;
    // With its database, a read is answered by PostgreSQL.
    let routed = proxy
        .state
        .metrics
        .reads_to_new
        .load(std::sync::atomic::Ordering::Relaxed);
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM t").await.unwrap();
    assert_eq!(n, Some(1));
    let after = proxy
        .state
        .metrics
        .reads_to_new
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(after, routed + 1, "reads are routed to PostgreSQL");
    drop(c);

    let mut p = mysql_async::Conn::new(no_db_opts(proxy_opts(&proxy, &primary)))
        .await
        .unwrap();
    let mut d = mysql_async::Conn::new(no_db_opts(direct_opts(&primary)))
        .await
        .unwrap();
    let seen_p = without_database(&mut p, &primary).await;
    let seen_d = without_database(&mut d, &primary).await;
    assert_eq!(seen_p, seen_d);
    assert_eq!(seen_p[0], "Some(None)");
    assert!(seen_p[1].starts_with("ERROR 1046"), "{seen_p:?}");
    assert_eq!(
        proxy
            .state
            .metrics
            .reads_to_new
            .load(std::sync::atomic::Ordering::Relaxed),
        after,
        "no read of a client without a database went to PostgreSQL"
    );
    proxy.stop().await;
}

/// Every backend connection went back to the pool. The client process has
/// exited when this is called; its session notices the close a moment later.
async fn assert_released(proxy: &Proxy) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while proxy.state.old.leased_count() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        proxy.state.old.leased_count(),
        0,
        "a session still holds its backend connection"
    );
}
