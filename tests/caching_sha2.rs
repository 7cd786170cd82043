//! caching_sha2_password on both sides. No MySQL 8 server exists on these
//! machines, so the proxy's server side is proved with Oracle's own client
//! implementation (mysql-connector-python) and PyMySQL (the RSA path), and the
//! proxy's client side against the proxy's server side (a proxy in front of a
//! proxy). Fast auth from the cache, full auth over TLS, full auth with RSA,
//! and a clear password on plaintext refused.

mod common;

use std::process::Command;

use common::servers;
use common::tls::certs;
use common::*;
use mysql_async::prelude::*;

const SHA_USER: &str = "sha";
const SHA_PASSWORD: &str = "sha-Pass-1";

/// A proxy in front of the shared MariaDB with a caching_sha2 user and TLS.
async fn front(db: &str) -> Proxy {
    let c = certs();
    let toml = format!(
        "{}\n[[users]]\nname = \"{SHA_USER}\"\npassword = \"{SHA_PASSWORD}\"\nplugin = \"caching_sha2_password\"\n\
         [tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        config_for(db, ""),
        c.cert.display(),
        c.key.display()
    );
    start_proxy_with(&toml).await
}

/// Runs a Python snippet; returns (success, stdout + stderr).
async fn python(script: String) -> (bool, String) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap()
    })
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

fn connector(port: u16, db: &str, password: &str, tls: bool) -> String {
    let ssl = if tls {
        format!(
            "ssl_ca='{}', ssl_verify_identity=True",
            certs().ca.display()
        )
    } else {
        "ssl_disabled=True".into()
    };
    format!(
        "import mysql.connector\n\
         c = mysql.connector.connect(host='localhost', port={port}, user='{SHA_USER}', password='{password}', \
         database='{db}', use_pure=True, auth_plugin='caching_sha2_password', {ssl})\n\
         cur = c.cursor(); cur.execute('SELECT 6 * 7'); print(cur.fetchone()[0])\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_log_in_with_caching_sha2() {
    let db = servers::mariadb().create_database("sha2_clients");
    let proxy = front(&db).await;
    let port = proxy.port();
    let cached = || proxy.state.sha2.cached(SHA_USER).is_some();

    // Empty cache, plaintext: Oracle's pure-Python client answers full auth
    // with the clear password, which a server must not accept off TLS.
    let (ok, out) = python(connector(port, &db, SHA_PASSWORD, false)).await;
    assert!(!ok && out.contains("1045"), "{out}");
    assert!(!cached());
    // Over TLS: full authentication with the clear password, then cached.
    let (ok, out) = python(connector(port, &db, SHA_PASSWORD, true)).await;
    assert!(ok && out.trim() == "42", "{out}");
    assert!(cached());
    // Now fast auth works without TLS; a wrong password does not.
    let (ok, out) = python(connector(port, &db, SHA_PASSWORD, false)).await;
    assert!(ok && out.trim() == "42", "{out}");
    let (ok, out) = python(connector(port, &db, "wrong", false)).await;
    assert!(!ok && out.contains("1045"), "{out}");

    // RSA: PyMySQL on plaintext with an empty cache asks for the public key.
    proxy.state.sha2.forget(SHA_USER);
    let pymysql = |password: &str| {
        format!(
            "import pymysql\n\
             c = pymysql.connect(host='127.0.0.1', port={port}, user='{SHA_USER}', password='{password}', database='{db}')\n\
             cur = c.cursor(); cur.execute('SELECT 6 * 7'); print(cur.fetchone()[0])\n"
        )
    };
    let (ok, out) = python(pymysql("wrong")).await;
    assert!(!ok && out.contains("1045"), "{out}");
    assert!(!cached());
    let (ok, out) = python(pymysql(SHA_PASSWORD)).await;
    assert!(ok && out.trim() == "42", "{out}");
    assert!(cached());
    proxy.stop().await;
}

/// A proxy whose old backend is `front` (logging in as the caching_sha2
/// user with `params`); returns what a client reads through it.
async fn through_chain(front: &Proxy, db: &str, params: &str) -> Result<String, String> {
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
[[users]]
name = "{PROXY_USER}"
password = "{PROXY_PASSWORD}"
[backends.old]
kind = "mysql"
url = "mysql://{SHA_USER}:{SHA_PASSWORD}@localhost:{port}/{db}?{params}"
"#,
        port = front.port()
    );
    let back = start_proxy_with(&toml).await;
    let result = async {
        let mut conn = mysql_async::Conn::new(proxy_opts(&back, db))
            .await
            .map_err(|e| e.to_string())?;
        let v: Option<String> = conn
            .query_first("SELECT CONCAT('ok ', 6 * 7)")
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.disconnect().await;
        Ok(v.unwrap_or_default())
    }
    .await;
    back.stop().await;
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tandem_logs_in_to_a_caching_sha2_server() {
    let db = servers::mariadb().create_database("sha2_backend");
    let front = front(&db).await;
    let ca = certs().ca.display().to_string();
    // Full auth with RSA (no TLS on that hop), then fast auth from the cache.
    assert_eq!(
        through_chain(&front, &db, "ssl-mode=DISABLED").await,
        Ok("ok 42".into())
    );
    assert!(front.state.sha2.cached(SHA_USER).is_some());
    assert_eq!(
        through_chain(&front, &db, "ssl-mode=DISABLED").await,
        Ok("ok 42".into())
    );
    // Full auth with the clear password inside verified TLS.
    front.state.sha2.forget(SHA_USER);
    let tls = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
    assert_eq!(through_chain(&front, &db, &tls).await, Ok("ok 42".into()));
    assert!(front.state.sha2.cached(SHA_USER).is_some());
    front.stop().await;
}
