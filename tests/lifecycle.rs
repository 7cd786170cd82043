//! Connection lifecycle: limits, shutdown, failing backends, malformed input,
//! and the `tandem` binary itself (check, serve, signals, log format).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_limit_gives_1040_after_acquire_timeout() {
    let db = servers::mariadb().create_database("limit");
    let toml = config_for(&db, "pool_size = 2\nacquire_timeout_ms = 300");
    let proxy = start_proxy_with(&toml).await;
    let a = via(&proxy, &db).await;
    let _b = via(&proxy, &db).await;
    let started = Instant::now();
    let err = mysql_async::Conn::new(proxy_opts(&proxy, &db))
        .await
        .expect_err("third client must wait and fail");
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 1040),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A freed slot is usable again.
    a.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = via(&proxy, &db).await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_statements_finish() {
    let (db, proxy) = setup("shutdown").await;
    let mut busy = via(&proxy, &db).await;
    let mut idle = via(&proxy, &db).await;
    let running = tokio::spawn(async move {
        let v: Option<i64> = busy.query_first("SELECT SLEEP(1) + 7").await.unwrap();
        v
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = proxy.addr;
    proxy.shutdown.cancel();
    // The statement in flight completes with its real result.
    assert_eq!(running.await.unwrap(), Some(7));
    tokio::time::timeout(Duration::from_secs(5), proxy.task)
        .await
        .expect("proxy stops")
        .unwrap();
    // New connections are refused, idle sessions are closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(idle.query_drop("SELECT 1").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backend_is_a_clear_error() {
    let port = servers::free_port();
    let toml = format!(
        r#"listen = "127.0.0.1:0"
[[users]]
name = "app"
password = "x"
[backends.old]
kind = "mysql"
url = "mysql://app:apppass@127.0.0.1:{port}/db"
connect_timeout_ms = 500
"#
    );
    let proxy = start_proxy_with(&toml).await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(proxy.port())
        .user(Some("app"))
        .pass(Some("x"))
        .prefer_socket(false);
    let err = mysql_async::Conn::new(opts).await.expect_err("no backend");
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 2003);
            assert!(e.message.contains(&port.to_string()), "{}", e.message);
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_backend_ends_sessions_and_recovers_after_restart() {
    let mut server = tokio::task::spawn_blocking(servers::start_private_mariadb)
        .await
        .unwrap();
    let toml = format!(
        r#"listen = "127.0.0.1:0"
[[users]]
name = "{PROXY_USER}"
password = "{PROXY_PASSWORD}"
[backends.old]
kind = "mysql"
url = "{}"
connect_timeout_ms = 1000
"#,
        server.url("mysql")
    );
    let proxy = start_proxy_with(&toml).await;
    let mut c = via(&proxy, "mysql").await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let server = tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();
    // The session's backend is gone: the client sees its connection drop.
    assert!(c.query_drop("SELECT 1").await.is_err());
    // New clients get a clear error while the backend is down.
    let err = mysql_async::Conn::new(proxy_opts(&proxy, "mysql"))
        .await
        .expect_err("backend down");
    assert!(
        matches!(err, mysql_async::Error::Server(ref e) if e.code == 2003),
        "{err:?}"
    );
    let mut server = server;
    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    let mut c = via(&proxy, "mysql").await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_get_errors_not_crashes() {
    let (db, proxy) = setup("malformed").await;
    let addr = proxy.addr;
    // Garbage instead of a handshake response.
    let handshake_reply = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut greeting = [0u8; 4];
        s.read_exact(&mut greeting).unwrap();
        let len = u32::from_le_bytes([greeting[0], greeting[1], greeting[2], 0]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).unwrap();
        assert_eq!(body[0], 10, "protocol version 10 greeting");
        s.write_all(&[3, 0, 0, 1, 0xde, 0xad, 0xbe]).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        reply
    })
    .await
    .unwrap();
    assert!(
        handshake_reply.len() > 7 && handshake_reply[4] == 0xff,
        "ERR packet: {handshake_reply:?}"
    );
    // A client that insists on TLS (an SSLRequest although CLIENT_SSL was not
    // offered) gets a clear error.
    let tls_reply = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut h = [0u8; 4];
        s.read_exact(&mut h).unwrap();
        let mut body = vec![0u8; u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize];
        s.read_exact(&mut body).unwrap();
        let caps: u32 = 0x0000_0200 | 0x0000_0800 | 0x0000_8000;
        let mut req = caps.to_le_bytes().to_vec();
        req.extend_from_slice(&(16u32 << 20).to_le_bytes());
        req.push(45);
        req.extend_from_slice(&[0; 23]);
        s.write_all(&[32, 0, 0, 1]).unwrap();
        s.write_all(&req).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        reply
    })
    .await
    .unwrap();
    assert_eq!(tls_reply.get(4), Some(&0xff), "{tls_reply:?}");
    assert!(String::from_utf8_lossy(&tls_reply).contains("TLS is not configured"));
    assert_eq!(
        u16::from_le_bytes([handshake_reply[5], handshake_reply[6]]),
        1043
    );
    // A logged-in client sending a truncated COM_STMT_EXECUTE and an unknown
    // command: the server's error / 1047, and the session goes on.
    let mut c = via(&proxy, &db).await;
    let stmt = c.prep("SELECT ?").await.unwrap();
    let _ = stmt;
    // mysql_async has no raw packet API; use a raw socket for the rest.
    let port = proxy.port();
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || raw_session_checks(port, &db2))
        .await
        .unwrap();
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1), "proxy still serves other sessions");
}

/// Logs in over a raw socket with mysql_native_password and sends broken
/// commands.
fn raw_session_checks(port: u16, db: &str) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let read = |s: &mut std::net::TcpStream| -> Vec<u8> {
        let mut h = [0u8; 4];
        s.read_exact(&mut h).unwrap();
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        let mut b = vec![0u8; len];
        s.read_exact(&mut b).unwrap();
        b
    };
    let write = |s: &mut std::net::TcpStream, seq: u8, p: &[u8]| {
        let l = (p.len() as u32).to_le_bytes();
        s.write_all(&[l[0], l[1], l[2], seq]).unwrap();
        s.write_all(p).unwrap();
    };
    let greeting = read(&mut s);
    let vlen = greeting[1..].iter().position(|&b| b == 0).unwrap();
    let rest = &greeting[1 + vlen + 1..];
    let mut salt = rest[4..12].to_vec();
    salt.extend_from_slice(&rest[31..43]);
    let token = tandem::auth::native_token(&salt, PROXY_PASSWORD);
    let caps: u32 =
        0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0000_0008 | 0x0002_0000 | 0x0100_0000;
    let mut resp = caps.to_le_bytes().to_vec();
    resp.extend_from_slice(&(16u32 << 20).to_le_bytes());
    resp.push(45);
    resp.extend_from_slice(&[0; 23]);
    resp.extend_from_slice(PROXY_USER.as_bytes());
    resp.push(0);
    resp.push(token.len() as u8);
    resp.extend_from_slice(&token);
    resp.extend_from_slice(db.as_bytes());
    resp.push(0);
    resp.extend_from_slice(b"mysql_native_password\0");
    write(&mut s, 1, &resp);
    let ok = read(&mut s);
    assert_eq!(ok[0], 0, "login OK: {ok:?}");
    // Truncated COM_STMT_EXECUTE for a statement that does not exist.
    write(&mut s, 0, &[0x17, 1, 0]);
    let err = read(&mut s);
    assert_eq!(err[0], 0xff, "error for a broken execute: {err:?}");
    // Unknown command byte.
    write(&mut s, 0, &[0xee, 1, 2, 3]);
    let err = read(&mut s);
    assert_eq!(err[0], 0xff);
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1047);
    // Empty packet.
    write(&mut s, 0, &[]);
    let err = read(&mut s);
    assert_eq!(err[0], 0xff);
    // This client did not negotiate CLIENT_MULTI_STATEMENTS: the server
    // refuses a multi-statement text exactly as it would directly.
    write(&mut s, 0, b"\x03SELECT 1; SELECT 2");
    let err = read(&mut s);
    assert_eq!(err[0], 0xff, "multi-statement refused: {err:?}");
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1064);
    // Still alive: COM_PING.
    write(&mut s, 0, &[0x0e]);
    assert_eq!(read(&mut s)[0], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_command_reports_each_backend() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = format!(
        r#"[[users]]
name = "app"
password = "${{APP_PASSWORD}}"
[backends.old]
kind = "mysql"
url = "{}"
[backends.new]
kind = "postgres"
url = "{}"
"#,
        m.url("mysql"),
        pg.url("postgres")
    );
    let path = write_config(&dir, &good);
    let out = tandem()
        .args(["check", "--config"])
        .arg(&path)
        .env("APP_PASSWORD", "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("backends.old: ok (10."), "{text}");
    assert!(text.contains("backends.new: ok (PostgreSQL"), "{text}");

    let bad = good.replace(":apppass@", ":wrong@");
    let path = write_config(&dir, &bad);
    let out = tandem()
        .args(["check", "--config"])
        .arg(&path)
        .env("APP_PASSWORD", "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("backends.old: FAILED") && text.contains("1045"),
        "{text}"
    );
    assert!(
        text.contains("backends.new: FAILED") && text.contains("password authentication failed"),
        "{text}"
    );

    // Config problems name the key and exit non-zero.
    let out = tandem()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("users[0].password") && text.contains("APP_PASSWORD"),
        "{text}"
    );
    let path = write_config(
        &dir,
        &good.replace("kind = \"mysql\"", "kind = \"mysql\"\npool_size = -1"),
    );
    let out = tandem()
        .args(["check", "--config"])
        .arg(&path)
        .env("APP_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("backends.old.pool_size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binary_logs_json_and_stops_on_sigterm() {
    let db = servers::mariadb().create_database("bin");
    let port = servers::free_port();
    let dir = tempfile::tempdir().unwrap();
    // The admin endpoint on a free port too, never the default 9307.
    let text = config::TestConfig::new(&db)
        .port(port)
        .admin_listen("127.0.0.1:0")
        .toml();
    let path = write_config(&dir, &text);
    let mut child = tandem()
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(PROXY_USER))
        .pass(Some(PROXY_PASSWORD))
        .db_name(Some(db.clone()))
        .prefer_socket(false);
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = mysql_async::Conn::new(opts.clone()).await {
            conn = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut conn = conn.expect("tandem serve accepts connections");
    let v: Option<i64> = conn.query_first("SELECT 40 + 2").await.unwrap();
    assert_eq!(v, Some(42));
    drop(conn);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (s, err);
            }
            assert!(Instant::now() < deadline, "tandem did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}", status.0);
    let lines: Vec<&str> = status.1.lines().collect();
    assert!(lines.len() >= 2, "{}", status.1);
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
        assert!(v.get("level").is_some());
    }
    assert!(status.1.contains("SIGTERM"));
}
