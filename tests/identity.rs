//! Every client keeps its own identity (passthrough authentication): logins
//! and COM_CHANGE_USER are relayed to the real MariaDB, which decides who gets
//! in and with which privileges. Each check is compared with the same thing
//! done directly against MariaDB, with real clients (mysql_async, the
//! `mariadb` CLI, mysql-connector-python, PyMySQL).

mod common;

use std::process::{Command, Output, Stdio};

use common::servers;
use common::*;
use mysql_async::prelude::*;

const RO_PASSWORD: &str = "ro-Pass-1";
const RW_PASSWORD: &str = "rw-Pass-1";

/// A SELECT-only and a read-write account on `db`, named after it (accounts
/// are server-wide; databases are per test).
fn accounts(db: &str) -> (String, String) {
    let tail: String = db
        .chars()
        .rev()
        .take(12)
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    let (ro, rw) = (format!("ro_{tail}"), format!("rw_{tail}"));
    let m = servers::mariadb();
    for host in ["%", "localhost"] {
        m.root_sql(&format!(
            "CREATE USER '{ro}'@'{host}' IDENTIFIED BY '{RO_PASSWORD}';\
             GRANT SELECT ON `{db}`.* TO '{ro}'@'{host}';\
             CREATE USER '{rw}'@'{host}' IDENTIFIED BY '{RW_PASSWORD}';\
             GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO '{rw}'@'{host}';"
        ));
    }
    m.root_sql(&format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT); INSERT INTO `{db}`.t VALUES (1, 10), (2, 20);"
    ));
    (ro, rw)
}

/// A passthrough proxy (no `[[users]]`) in front of the shared MariaDB.
async fn passthrough(db: &str, pool_size: u32) -> Proxy {
    let toml = format!(
        "listen = \"127.0.0.1:0\"\n\
         [backends.old]\nkind = \"mysql\"\nurl = \"{}\"\npool_size = {pool_size}\nacquire_timeout_ms = 2000\n\
         [limits]\nshutdown_timeout_ms = 5000\n",
        servers::mariadb().url(db)
    );
    let proxy = start_proxy_with(&toml).await;
    assert!(proxy.state.old.passthrough());
    proxy
}

fn opts(port: u16, user: &str, password: &str, db: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(db))
        .prefer_socket(false)
}

async fn connect(
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    mysql_async::Conn::new(opts(port, user, password, db)).await
}

async fn current_user(c: &mut mysql_async::Conn) -> String {
    let v: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    v.unwrap()
}

/// The server error of a failed statement or login: (code, SQLSTATE, message).
fn server_error(e: mysql_async::Error) -> (u16, String, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.state, s.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn cli(port: u16, user: &str, password: &str, db: &str, sql: &str) -> (bool, String) {
    let out = output(Command::new("mariadb").args([
        "--no-defaults",
        "--protocol=TCP",
        "-h127.0.0.1",
        &format!("-P{port}"),
        &format!("-u{user}"),
        &format!("--password={password}"),
        "-N",
        "-B",
        db,
        "-e",
        sql,
    ]));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn python(script: String) -> (bool, String) {
    let out =
        tokio::task::spawn_blocking(move || output(Command::new("python3").args(["-c", &script])))
            .await
            .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_only_account_keeps_its_identity_and_privileges() {
    let db = servers::mariadb().create_database("ident_ro");
    let (ro, _) = accounts(&db);
    let proxy = passthrough(&db, 4).await;
    let direct_port = servers::mariadb().port;

    let mut d = connect(direct_port, &ro, RO_PASSWORD, &db).await.unwrap();
    let mut p = connect(proxy.port(), &ro, RO_PASSWORD, &db).await.unwrap();
    let direct_user = current_user(&mut d).await;
    assert!(direct_user.starts_with(&format!("{ro}@")), "{direct_user}");
    assert_eq!(current_user(&mut p).await, direct_user);
    // USER() too: the server sees the proxy's host, which here is the
    // client's (both on 127.0.0.1).
    let who: Option<String> = p.query_first("SELECT USER()").await.unwrap();
    assert!(who.unwrap().starts_with(&format!("{ro}@")));
    // Reads work, the UPDATE is refused with the server's own error.
    assert_eq!(
        rows_text(&mut p, "SELECT v FROM t ORDER BY id").await.len(),
        2
    );
    let sql = "UPDATE t SET v = v + 1";
    let de = server_error(d.query_drop(sql).await.unwrap_err());
    let pe = server_error(p.query_drop(sql).await.unwrap_err());
    assert_eq!(de.0, 1142, "{de:?}");
    assert_eq!(pe, de);
    // Nothing changed.
    let mut admin = direct(&db).await;
    assert_eq!(
        rows_text(&mut admin, "SELECT SUM(v) FROM t").await,
        vec![vec!["'30'".to_string()]]
    );
    drop((d, p));

    // The mariadb CLI: same identity, same refusal text.
    let q = "SELECT CURRENT_USER()";
    let direct_cli = cli(direct_port, &ro, RO_PASSWORD, &db, q);
    let proxy_cli = cli(proxy.port(), &ro, RO_PASSWORD, &db, q);
    assert!(direct_cli.0, "{direct_cli:?}");
    assert_eq!(proxy_cli, direct_cli);
    let del = "DELETE FROM t";
    let direct_cli = cli(direct_port, &ro, RO_PASSWORD, &db, del);
    let proxy_cli = cli(proxy.port(), &ro, RO_PASSWORD, &db, del);
    assert!(
        !direct_cli.0 && direct_cli.1.contains("1142"),
        "{direct_cli:?}"
    );
    assert_eq!(proxy_cli, direct_cli);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_switches_to_another_server_account() {
    let db = servers::mariadb().create_database("ident_cu");
    let (ro, rw) = accounts(&db);
    let proxy = passthrough(&db, 4).await;
    let direct_port = servers::mariadb().port;

    let mut seen = Vec::new();
    for port in [direct_port, proxy.port()] {
        let mut c = connect(port, &ro, RO_PASSWORD, &db).await.unwrap();
        c.query_drop("SET @marker = 1").await.unwrap();
        let before = current_user(&mut c).await;
        let refused = server_error(
            c.query_drop("UPDATE t SET v = 0 WHERE id = 2")
                .await
                .unwrap_err(),
        );
        c.change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some(rw.clone()))
                .with_pass(Some(RW_PASSWORD.into()))
                .with_db_name(Some(db.clone())),
        )
        .await
        .unwrap();
        let after = current_user(&mut c).await;
        // The session was reset as the server does it.
        let marker: Option<Option<i64>> = c.query_first("SELECT @marker").await.unwrap();
        c.query_drop(format!(
            "UPDATE t SET v = v + 1 WHERE id = {}",
            if port == direct_port { 1 } else { 2 }
        ))
        .await
        .unwrap();
        seen.push((before, refused, after, marker));
    }
    let (direct_seen, proxy_seen) = (&seen[0], &seen[1]);
    assert!(
        direct_seen.2.starts_with(&format!("{rw}@")),
        "{direct_seen:?}"
    );
    assert_eq!(proxy_seen, direct_seen);
    let mut admin = direct(&db).await;
    assert_eq!(
        rows_text(&mut admin, "SELECT v FROM t ORDER BY id").await,
        vec![vec!["'11'".to_string()], vec!["'21'".to_string()]]
    );

    // A change-user to a wrong password: the server's error, as directly.
    let mut errs = Vec::new();
    for port in [direct_port, proxy.port()] {
        let mut c = connect(port, &rw, RW_PASSWORD, &db).await.unwrap();
        let e = c
            .change_user(
                mysql_async::ChangeUserOpts::default()
                    .with_user(Some(ro.clone()))
                    .with_pass(Some("wrong".into())),
            )
            .await
            .unwrap_err();
        errs.push(server_error(e));
    }
    assert_eq!(errs[0].0, 1045, "{errs:?}");
    assert_eq!(errs[1], errs[0]);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_get_the_servers_error() {
    let db = servers::mariadb().create_database("ident_pw");
    let (ro, _) = accounts(&db);
    let proxy = passthrough(&db, 2).await;
    let direct_port = servers::mariadb().port;
    for (user, password) in [
        (ro.as_str(), "wrong"),
        ("nobody_here", "x"),
        (ro.as_str(), ""),
    ] {
        let d = server_error(connect(direct_port, user, password, &db).await.unwrap_err());
        let p = server_error(
            connect(proxy.port(), user, password, &db)
                .await
                .unwrap_err(),
        );
        assert_eq!(d.0, 1045, "{d:?}");
        assert_eq!(p, d, "{user}/{password}");
        let d = cli(direct_port, user, password, &db, "SELECT 1");
        let p = cli(proxy.port(), user, password, &db, "SELECT 1");
        assert!(!d.0 && d.1.contains("1045"), "{d:?}");
        assert_eq!(p, d);
    }
    // Refused logins leave nothing behind: the pool of 2 still serves.
    for _ in 0..3 {
        let mut c = connect(proxy.port(), &ro, RO_PASSWORD, &db).await.unwrap();
        assert!(current_user(&mut c).await.starts_with(&ro));
    }
    assert_eq!(
        proxy
            .state
            .metrics
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        6
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_alternating_on_a_small_pool_keep_their_identity() {
    let db = servers::mariadb().create_database("ident_pool");
    let (ro, rw) = accounts(&db);
    let proxy = passthrough(&db, 2).await;
    let port = proxy.port();
    for round in 0..6 {
        let (user, password) = if round % 2 == 0 {
            (&ro, RO_PASSWORD)
        } else {
            (&rw, RW_PASSWORD)
        };
        let mut c = connect(port, user, password, &db).await.unwrap();
        assert!(current_user(&mut c).await.starts_with(&format!("{user}@")));
        let update = c.query_drop("UPDATE t SET v = v WHERE id = 1").await;
        assert_eq!(update.is_ok(), user == &rw, "round {round}: {update:?}");
        c.disconnect().await.unwrap();
    }
    // Both at once, then a third waits for a slot (pool_size = 2) and gets
    // its own identity, not a released connection's.
    let mut a = connect(port, &ro, RO_PASSWORD, &db).await.unwrap();
    let mut b = connect(port, &rw, RW_PASSWORD, &db).await.unwrap();
    assert!(current_user(&mut a).await.starts_with(&format!("{ro}@")));
    assert!(current_user(&mut b).await.starts_with(&format!("{rw}@")));
    let third = tokio::spawn({
        let (rw, db) = (rw.clone(), db.clone());
        async move {
            let mut c = connect(port, &rw, RW_PASSWORD, &db).await.unwrap();
            current_user(&mut c).await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    a.disconnect().await.unwrap();
    assert!(third.await.unwrap().starts_with(&format!("{rw}@")));
    assert!(current_user(&mut b).await.starts_with(&format!("{rw}@")));
    // Relayed logins are never kept for another client.
    assert_eq!(proxy.state.old.idle_count(), 0);
    drop(b);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_client_is_switched_by_mariadb_through_the_relay() {
    let db = servers::mariadb().create_database("ident_sha");
    let (ro, _) = accounts(&db);
    let proxy = passthrough(&db, 2).await;
    let script = |port: u16, password: &str| {
        format!(
            "import mysql.connector\n\
             c = mysql.connector.connect(host='127.0.0.1', port={port}, user='{ro}', password='{password}', \
             database='{db}', use_pure=True, auth_plugin='caching_sha2_password', ssl_disabled=True)\n\
             cur = c.cursor(); cur.execute('SELECT CURRENT_USER()'); print(cur.fetchone()[0])\n"
        )
    };
    let direct_port = servers::mariadb().port;
    let (ok, direct_out) = python(script(direct_port, RO_PASSWORD)).await;
    assert!(
        ok && direct_out.starts_with(&format!("{ro}@")),
        "{direct_out}"
    );
    let (ok, out) = python(script(proxy.port(), RO_PASSWORD)).await;
    assert!(ok, "{out}");
    assert_eq!(out, direct_out);
    let (ok, direct_out) = python(script(direct_port, "wrong")).await;
    assert!(!ok && direct_out.contains("1045"), "{direct_out}");
    let (ok, out) = python(script(proxy.port(), "wrong")).await;
    assert!(!ok && out.contains("1045"), "{out}");
    // PyMySQL too (it starts with mysql_native_password).
    let pymysql = |port: u16| {
        format!(
            "import pymysql\n\
             c = pymysql.connect(host='127.0.0.1', port={port}, user='{ro}', password='{RO_PASSWORD}', database='{db}')\n\
             cur = c.cursor(); cur.execute('SELECT CURRENT_USER()'); print(cur.fetchone()[0])\n"
        )
    };
    let (ok, direct_out) = python(pymysql(direct_port)).await;
    assert!(ok, "{direct_out}");
    assert_eq!(python(pymysql(proxy.port())).await, (true, direct_out));
    proxy.stop().await;
}

const SHA_USER: &str = "sha";
const SHA_PASSWORD: &str = "sha-Pass-1";

/// caching_sha2 fast auth, full auth and the RSA key exchange relayed both
/// ways. No MySQL 8 server exists here: the server side is a users-mode
/// Tandem with a caching_sha2 account (MySQL's protocol, proved against
/// Oracle's client in tests/caching_sha2.rs), behind a passthrough Tandem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_exchanges_are_relayed_and_clear_text_needs_tls() {
    let db = servers::mariadb().create_database("ident_sha_chain");
    let c = common::tls::certs();
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        c.cert.display(),
        c.key.display()
    );
    let server = start_proxy_with(&format!(
        "{}\n[[users]]\nname = \"{SHA_USER}\"\npassword = \"{SHA_PASSWORD}\"\nplugin = \"caching_sha2_password\"\n{tls}",
        config_for(&db, "")
    ))
    .await;
    let relay = |params: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\n\
             [backends.old]\nkind = \"mysql\"\nurl = \"mysql://{PROXY_USER}:{PROXY_PASSWORD}@localhost:{}/{db}?{params}\"\n{tls}",
            server.port()
        )
    };
    let plain_hop = start_proxy_with(&relay("ssl-mode=DISABLED")).await;
    let tls_hop = start_proxy_with(&relay(&format!(
        "ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        c.ca.display()
    )))
    .await;
    let connector = |port: u16, password: &str, tls: bool| {
        let ssl = if tls {
            format!("ssl_ca='{}', ssl_verify_identity=True", c.ca.display())
        } else {
            "ssl_disabled=True".into()
        };
        format!(
            "import mysql.connector\n\
             c = mysql.connector.connect(host='localhost', port={port}, user='{SHA_USER}', password='{password}', \
             database='{db}', use_pure=True, auth_plugin='caching_sha2_password', {ssl})\n\
             cur = c.cursor(); cur.execute('SELECT 6 * 7'); print(cur.fetchone()[0])\n"
        )
    };
    let cached = || server.state.sha2.cached(SHA_USER).is_some();

    // Full auth: the client sends its password in clear (it is on TLS), but
    // the backend hop is plaintext: refused by the proxy, nothing relayed.
    let (ok, out) = python(connector(plain_hop.port(), SHA_PASSWORD, true)).await;
    assert!(
        !ok && out.contains("refuses to relay a clear-text password"),
        "{out}"
    );
    assert!(!cached());
    // With TLS on the backend hop the same exchange is relayed and succeeds.
    let (ok, out) = python(connector(tls_hop.port(), SHA_PASSWORD, true)).await;
    assert!(ok && out.trim() == "42", "{out}");
    assert!(cached());
    // Fast auth from the server's cache, through the plaintext hop; a wrong
    // password is the server's 1045.
    let (ok, out) = python(connector(plain_hop.port(), SHA_PASSWORD, false)).await;
    assert!(ok && out.trim() == "42", "{out}");
    let (ok, out) = python(connector(plain_hop.port(), "wrong", false)).await;
    assert!(!ok && out.contains("1045"), "{out}");

    // RSA: PyMySQL on plaintext (it prefers TLS unless told not to) asks the
    // server for its key; the request,
    // the key and the encrypted password are relayed.
    server.state.sha2.forget(SHA_USER);
    let (ok, out) = python(format!(
        "import pymysql\n\
         c = pymysql.connect(host='127.0.0.1', port={}, user='{SHA_USER}', password='{SHA_PASSWORD}', database='{db}', ssl_disabled=True)\n\
         cur = c.cursor(); cur.execute('SELECT 6 * 7'); print(cur.fetchone()[0])\n",
        plain_hop.port()
    ))
    .await;
    assert!(ok && out.trim() == "42", "{out}");
    assert!(cached());
    plain_hop.stop().await;
    tls_hop.stop().await;
    server.stop().await;
}
