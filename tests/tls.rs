//! TLS on the proxy's backend hops, against real servers with real
//! certificates (tests/common/tls.rs): a PostgreSQL that accepts TLS only
//! (`hostssl` pg_hba), a MariaDB with `require_secure_transport=ON`, one with
//! an expired certificate, and the shared plaintext MariaDB. Each URL mode is
//! checked for what it must accept and what it must refuse, with the error the
//! user sees; a verified mode never ends up in plaintext.

mod common;

use std::time::Duration;

use common::servers::{self, APP_PASSWORD, APP_USER};
use common::tls::{self as certs_mod, certs};
use common::*;
use mysql_async::prelude::*;
use tandem::config::{BackendConfig, BackendTarget};

fn backend(kind: &str, url: &str) -> BackendConfig {
    toml::from_str(&format!(
        "kind = \"{kind}\"\nurl = \"{url}\"\nconnect_timeout_ms = 5000"
    ))
    .expect("backend config")
}

fn target(kind: &str, url: &str) -> Result<BackendTarget, String> {
    backend(kind, url).target()
}

const T: Duration = Duration::from_secs(5);

async fn pg_ssl(url: &str) -> Result<bool, String> {
    let t = target("postgres", url)?;
    let client = tandem::backend::postgres::connect(&t, T)
        .await
        .map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sslmodes_against_a_tls_only_server() {
    let c = certs();
    let setup = certs_mod::postgres_setup(c.cert.clone(), c.key.clone(), true);
    let pg = servers::start_private_postgres(&setup);
    let db = pg.create_database("tls");
    let url = |host: &str, params: &str| {
        format!(
            "postgres://{APP_USER}:{APP_PASSWORD}@{host}:{}/{db}?{params}",
            pg.port
        )
    };
    let ca = c.ca.display();
    let other = c.other_ca.display();

    // pg_hba refuses plaintext: `disable` gets the server's own refusal.
    let err = pg_ssl(&url("127.0.0.1", "sslmode=disable"))
        .await
        .unwrap_err();
    assert!(err.contains("no encryption"), "{err}");
    // Everything else is encrypted.
    for params in [
        "sslmode=prefer".to_string(),
        "sslmode=require".to_string(),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
    ] {
        assert_eq!(
            pg_ssl(&url("127.0.0.1", &params)).await,
            Ok(true),
            "{params}"
        );
    }
    assert_eq!(
        pg_ssl(&url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}")
        ))
        .await,
        Ok(true)
    );
    // The certificate names `localhost`, not 127.0.0.1.
    let err = pg_ssl(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");
    // Signed by a CA we were not told to trust (require + a root = verify-ca, as libpq).
    for mode in ["verify-ca", "verify-full", "require"] {
        let err = pg_ssl(&url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={other}"),
        ))
        .await
        .unwrap_err();
        assert!(err.contains("invalid peer certificate"), "{mode}: {err}");
    }
    // A verified mode without a CA is a config error, not a silent downgrade.
    let err = target("postgres", &url("localhost", "sslmode=verify-full")).unwrap_err();
    assert!(err.contains("sslrootcert"), "{err}");
    let err = target("postgres", &url("localhost", "sslmode=verify")).unwrap_err();
    assert!(err.contains("verify-full"), "{err}");

    // The migrate commands' connections go through the same function.
    let b = backend(
        "postgres",
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
    );
    let mut conn = tandem::migrate::db::connect(&b, "backends.new")
        .await
        .expect("migrate connect");
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();

    // And so does the mirror: a dual_write proxy whose new backend needs TLS.
    let my_db = servers::mariadb().create_database("tls_mirror");
    let mut direct = direct(&my_db).await;
    direct
        .query_drop("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    let new = format!(
        "[backends.new]\nkind = \"postgres\"\nurl = \"{}\"\n[mirror]\nsource = \"statements\"\n",
        url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}")
        )
    );
    let proxy = start_proxy_with(&config_for(&my_db, &new).replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nphase = \"dual_write\"",
    ))
    .await;
    let mut client = via(&proxy, &my_db).await;
    client
        .query_drop("INSERT INTO t VALUES (1, 'over tls')")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    assert_eq!(
        pg.sql(&db, "SELECT v FROM t WHERE id = 1").trim(),
        "over tls"
    );
    let ssl_sessions = pg.sql(
        &db,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'tandem-mirror' AND s.ssl",
    );
    assert_eq!(ssl_sessions.trim(), "1");
    drop(client);
    proxy.stop().await;
}

/// `Ssl_cipher` of the backend session a proxy client is relayed to.
async fn proxied_cipher(backend_url: &str) -> Result<String, String> {
    let toml = format!(
        r#"
listen = "127.0.0.1:0"
[[users]]
name = "{PROXY_USER}"
password = "{PROXY_PASSWORD}"
[backends.old]
kind = "mysql"
url = "{backend_url}"
connect_timeout_ms = 3000
"#
    );
    let proxy = start_proxy_with(&toml).await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(proxy.port())
        .user(Some(PROXY_USER))
        .pass(Some(PROXY_PASSWORD))
        .prefer_socket(false);
    let result = async {
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .map_err(|e| e.to_string())?;
        let row: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.disconnect().await;
        Ok(row.map(|r| r.1).unwrap_or_default())
    }
    .await;
    proxy.stop().await;
    result
}

/// `Ssl_cipher` of a migrate-command (mysql_async) connection.
async fn async_cipher(url: &str) -> Result<String, String> {
    let b = backend("mysql", url);
    let conn = tandem::migrate::db::connect(&b, "backends.old")
        .await
        .map_err(|e| e.to_string())?;
    let tandem::migrate::db::Db::My(mut conn) = conn else {
        panic!("a MySQL URL gave a PostgreSQL connection")
    };
    let row: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.map(|r| r.1).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_ssl_modes_against_require_secure_transport() {
    let c = certs();
    let m = servers::start_private_mariadb_with(certs_mod::mariadb_args(&c.cert, &c.key, true));
    m.root_sql("CREATE DATABASE tls");
    let url = |host: &str, params: &str| {
        format!(
            "mysql://{APP_USER}:{APP_PASSWORD}@{host}:{}/tls?{params}",
            m.port
        )
    };
    let (ca, other) = (c.ca.display(), c.other_ca.display());

    // Plaintext is refused by the server itself (MariaDB answers 1045 to a
    // plaintext login under require_secure_transport), and the client hears it.
    let err = proxied_cipher(&url("127.0.0.1", "ssl-mode=DISABLED"))
        .await
        .unwrap_err();
    assert!(
        err.contains("1045") && err.contains("Access denied"),
        "{err}"
    );
    let err = async_cipher(&url("127.0.0.1", "ssl-mode=DISABLED"))
        .await
        .unwrap_err();
    assert!(err.contains("Access denied"), "{err}");

    let ok = [
        url("127.0.0.1", ""), // PREFERRED by default, as the mysql client
        url("127.0.0.1", "ssl-mode=REQUIRED"),
        url("localhost", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}")),
        url("localhost", &format!("ssl-ca={ca}")), // ssl-ca alone means VERIFY_CA
        url(
            "localhost",
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
        ),
    ];
    for u in &ok {
        let relayed = proxied_cipher(u)
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
        assert!(!relayed.is_empty(), "{u}: relay connection not encrypted");
        let migrate = async_cipher(u).await.unwrap_or_else(|e| panic!("{u}: {e}"));
        assert!(!migrate.is_empty(), "{u}: migrate connection not encrypted");
    }

    // VERIFY_CA does not check the name: the relay connects to 127.0.0.1
    // with a certificate for localhost. mysql_async cannot skip only the name
    // check; it refuses (fails closed) and says why.
    let u = url("127.0.0.1", &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"));
    assert!(!proxied_cipher(&u).await.unwrap().is_empty());
    let err = async_cipher(&u).await.unwrap_err();
    assert!(
        err.contains("checks the host name even under VERIFY_CA"),
        "{err}"
    );

    let refused = [
        (
            url(
                "127.0.0.1",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"),
            ),
            "not valid for name",
        ),
        (
            url("localhost", &format!("ssl-mode=VERIFY_CA&ssl-ca={other}")),
            "invalid peer certificate",
        ),
        (
            url(
                "localhost",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={other}"),
            ),
            "invalid peer certificate",
        ),
    ];
    for (u, want) in &refused {
        let err = proxied_cipher(u).await.unwrap_err();
        assert!(err.contains(want) && err.contains("TLS"), "{u}: {err}");
        let err = async_cipher(u).await.unwrap_err();
        // mysql_async words it its own way; it must still refuse.
        assert!(!err.is_empty(), "{u}");
    }
    let err = target("mysql", &url("localhost", "ssl-mode=VERIFY_CA")).unwrap_err();
    assert!(err.contains("ssl-ca"), "{err}");
    let err = target("mysql", &url("localhost", "sslmode=REQUIRED")).unwrap_err();
    assert!(err.contains("unknown URL parameter `sslmode`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_expired_certificate_is_refused_by_verified_modes() {
    let c = certs();
    let m = servers::start_private_mariadb_with(certs_mod::mariadb_args(
        &c.expired_cert,
        &c.expired_key,
        false,
    ));
    m.root_sql("CREATE DATABASE tls");
    let url = |params: &str| {
        format!(
            "mysql://{APP_USER}:{APP_PASSWORD}@localhost:{}/tls?{params}",
            m.port
        )
    };
    let ca = c.ca.display();
    for mode in ["VERIFY_CA", "VERIFY_IDENTITY"] {
        let u = url(&format!("ssl-mode={mode}&ssl-ca={ca}"));
        let err = proxied_cipher(&u).await.unwrap_err();
        assert!(err.to_lowercase().contains("expired"), "{mode}: {err}");
        assert!(
            async_cipher(&u).await.is_err(),
            "{mode}: mysql_async accepted an expired cert"
        );
    }
    // REQUIRED encrypts without checking, like the mysql client's REQUIRED.
    let cipher = proxied_cipher(&url("ssl-mode=REQUIRED")).await.unwrap();
    assert!(!cipher.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_server_without_tls() {
    let m = servers::mariadb();
    let db = m.create_database("notls");
    let url = |params: &str| format!("{}?{params}", m.url(&db));
    // PREFERRED falls back to plaintext when the server offers no TLS ...
    assert_eq!(
        proxied_cipher(&url("ssl-mode=PREFERRED")).await,
        Ok(String::new())
    );
    assert_eq!(
        async_cipher(&url("ssl-mode=PREFERRED")).await,
        Ok(String::new())
    );
    // ... REQUIRED and the verified modes never do.
    let ca = certs().ca.display();
    for params in [
        "ssl-mode=REQUIRED".to_string(),
        format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
    ] {
        let err = proxied_cipher(&url(&params)).await.unwrap_err();
        assert!(err.contains("does not offer TLS"), "{params}: {err}");
        assert!(async_cipher(&url(&params)).await.is_err(), "{params}");
    }
}
