//! Passwords never leak: a real `tandem serve` (debug logging) with a client
//! that gets its password wrong, a new backend that refuses the proxy's
//! password (so the mirror fails and writes drift), and `tandem check` against
//! an old backend with a wrong password. The logs, `/status`, the drift log and
//! `check`'s report are searched for every password involved.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::{self, free_port};

use mysql_async::prelude::*;

const CLIENT_PASSWORD: &str = "client-Secret-11";
const WRONG_CLIENT_PASSWORD: &str = "wrong-Secret-22";
const NEW_PASSWORD: &str = "pg-Secret-33";
const WRONG_OLD_PASSWORD: &str = "old-Secret-44";

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("admin endpoint");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_logs_status_drift_or_check() {
    let m = servers::mariadb();
    let pg = servers::postgres();
    let db = m.create_database("secrets");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");
    let (port, admin) = (free_port(), free_port());
    let toml = format!(
        r#"
listen = "127.0.0.1:{port}"
phase = "dual_write"
[[users]]
name = "app"
password = "{CLIENT_PASSWORD}"
[backends.old]
kind = "mysql"
url = "{old}"
[backends.new]
kind = "postgres"
url = "postgres://app:{NEW_PASSWORD}@127.0.0.1:{pg_port}/postgres"
connect_timeout_ms = 2000
[mirror]
source = "statements"
drift_log = "{drift}"
[admin]
listen = "127.0.0.1:{admin}"
"#,
        old = m.url(&db),
        pg_port = pg.port,
        drift = drift.display(),
    );
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, &toml).unwrap();
    let serve = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("TANDEM_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tandem serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tandem serve did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opts = |password: &str| {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .user(Some("app"))
            .pass(Some(password.to_string()))
            .db_name(Some(db.clone()))
            .prefer_socket(false)
    };
    let err = mysql_async::Conn::new(opts(WRONG_CLIENT_PASSWORD))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Access denied"), "{err}");
    let mut conn = mysql_async::Conn::new(opts(CLIENT_PASSWORD)).await.unwrap();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    // Wait until the mirror has given up on the write (drift written).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&drift)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no drift written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = http_get(admin, "/status");
    let metrics = http_get(admin, "/metrics");
    drop(conn);
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let out = serve.wait_with_output().unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let drift_text = std::fs::read_to_string(&drift).unwrap();
    // The failures did happen and were reported ...
    assert!(logs.contains("authentication failed"), "{logs}");
    assert!(
        drift_text.contains("password authentication failed"),
        "{drift_text}"
    );

    // ... and `tandem check` against an old backend with a wrong password.
    let bad = toml.replace(
        &m.url(&db),
        &m.url(&db)
            .replace(servers::APP_PASSWORD, WRONG_OLD_PASSWORD),
    );
    std::fs::write(&config, &bad).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--config"])
        .arg(&config)
        .env("TANDEM_LOG", "debug")
        .output()
        .unwrap();
    let check_text = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!check.status.success());
    assert!(check_text.contains("Access denied"), "{check_text}");

    for (what, text) in [
        ("serve logs", &logs),
        ("/status", &status),
        ("/metrics", &metrics),
        ("drift log", &drift_text),
        ("check", &check_text),
    ] {
        for secret in [
            CLIENT_PASSWORD,
            WRONG_CLIENT_PASSWORD,
            NEW_PASSWORD,
            WRONG_OLD_PASSWORD,
            servers::APP_PASSWORD,
        ] {
            assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
        }
    }
}
