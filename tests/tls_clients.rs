//! TLS between real MySQL clients and the proxy: the `mariadb` CLI with
//! `--ssl-verify-server-cert`, PyMySQL with a CA; the wrong CA, an expired
//! certificate and a host-name mismatch refused by the client; `[tls]
//! require` refusing plaintext with the same error MariaDB gives under
//! `require_secure_transport`; the certificate replaced on disk and picked up
//! without a restart (a broken file keeps the previous one).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::servers::{self, APP_PASSWORD, APP_USER};
use common::tls::{self as certs_mod, certs};
use common::*;

/// A proxy in front of the shared MariaDB whose client TLS uses `cert`/`key`.
async fn tls_proxy(db: &str, cert: &Path, key: &Path, require: bool) -> Proxy {
    let toml = format!(
        "{}\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nrequire = {require}\n",
        config_for(db, ""),
        cert.display(),
        key.display()
    );
    start_proxy_with(&toml).await
}

/// Runs the `mariadb` CLI with `args` and returns its output (not asserting).
async fn cli(port: u16, host: &str, user: &str, pass: &str, db: &str, args: &[&str]) -> Output {
    let mut c = Command::new("mariadb");
    c.args([
        "--protocol=TCP",
        &format!("-h{host}"),
        &format!("-P{port}"),
        &format!("-u{user}"),
        &format!("-p{pass}"),
        db,
    ])
    .args(args);
    tokio::task::spawn_blocking(move || c.output().expect("run mariadb"))
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The CLI's `status` through the proxy with server-certificate verification.
async fn verified_status(port: u16, host: &str, db: &str, ca: &Path) -> Output {
    let ca = format!("--ssl-ca={}", ca.display());
    cli(
        port,
        host,
        PROXY_USER,
        PROXY_PASSWORD,
        db,
        &["--ssl", "--ssl-verify-server-cert", &ca, "-e", "status"],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_and_pymysql_over_tls() {
    let c = certs();
    let db = servers::mariadb().create_database("tls_cli");
    let proxy = tls_proxy(&db, &c.cert, &c.key, false).await;

    let ok = verified_status(proxy.port(), "localhost", &db, &c.ca).await;
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("Cipher in use is TLS"), "{}", text(&ok));

    // The certificate is for localhost: 127.0.0.1 is a host-name mismatch.
    let wrong_host = verified_status(proxy.port(), "127.0.0.1", &db, &c.ca).await;
    assert!(!wrong_host.status.success());
    assert!(
        text(&wrong_host).contains("ERROR 2026"),
        "{}",
        text(&wrong_host)
    );
    // A CA that did not sign it.
    let wrong_ca = verified_status(proxy.port(), "localhost", &db, &c.other_ca).await;
    assert!(!wrong_ca.status.success());
    assert!(
        text(&wrong_ca).contains("ERROR 2026"),
        "{}",
        text(&wrong_ca)
    );

    // Plaintext is still served when not required.
    let plain = cli(
        proxy.port(),
        "127.0.0.1",
        PROXY_USER,
        PROXY_PASSWORD,
        &db,
        &["--skip-ssl", "-e", "status"],
    )
    .await;
    assert!(plain.status.success(), "{}", text(&plain));
    assert!(
        text(&plain).contains("SSL:\t\t\tNot in use"),
        "{}",
        text(&plain)
    );

    // PyMySQL with the CA and host-name checking.
    let script = format!(
        "import pymysql\n\
         c = pymysql.connect(host='localhost', port={}, user='{PROXY_USER}', password='{PROXY_PASSWORD}', \
         database='{db}', ssl={{'ca': '{}', 'check_hostname': True}})\n\
         cur = c.cursor(); cur.execute('SELECT 40 + 2'); print(cur.fetchone()[0], c._sock.version())\n",
        proxy.port(),
        c.ca.display()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.starts_with("42 TLSv1."), "{printed}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_refused_by_the_client() {
    let c = certs();
    let db = servers::mariadb().create_database("tls_expired");
    let proxy = tls_proxy(&db, &c.expired_cert, &c.expired_key, false).await;
    let out = verified_status(proxy.port(), "localhost", &db, &c.ca).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("ERROR 2026"), "{}", text(&out));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_refuses_plaintext_like_mariadb() {
    let c = certs();
    // MariaDB itself under require_secure_transport, for the reference error.
    let m = servers::start_private_mariadb_with(certs_mod::mariadb_args(&c.cert, &c.key, true));
    m.root_sql("CREATE DATABASE r");
    let direct = cli(
        m.port,
        "127.0.0.1",
        APP_USER,
        APP_PASSWORD,
        "r",
        &["--skip-ssl", "-e", "SELECT 1"],
    )
    .await;
    assert!(!direct.status.success());

    let db = servers::mariadb().create_database("tls_require");
    let proxy = tls_proxy(&db, &c.cert, &c.key, true).await;
    let proxied = cli(
        proxy.port(),
        "127.0.0.1",
        PROXY_USER,
        PROXY_PASSWORD,
        &db,
        &["--skip-ssl", "-e", "SELECT 1"],
    )
    .await;
    assert!(!proxied.status.success());
    let (d, p) = (text(&direct), text(&proxied));
    let code = |s: &str| s.split(':').next().unwrap_or("").to_string();
    assert_eq!(code(&d), "ERROR 1045 (28000)", "{d}");
    assert_eq!(code(&p), code(&d), "proxy: {p}\ndirect: {d}");
    assert!(
        p.contains("Access denied for user 'app'@'127.0.0.1'"),
        "{p}"
    );
    // With TLS the same login works.
    let ok = verified_status(proxy.port(), "localhost", &db, &c.ca).await;
    assert!(ok.status.success(), "{}", text(&ok));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_are_reloaded_without_restart() {
    let c = certs();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("proxy.pem"), dir.path().join("proxy.key"));
    let install = |src_cert: &Path, src_key: &Path| {
        // Written aside and renamed, as certificate tooling does.
        std::fs::copy(src_cert, dir.path().join("new.pem")).unwrap();
        std::fs::copy(src_key, dir.path().join("new.key")).unwrap();
        std::fs::rename(dir.path().join("new.key"), &key).unwrap();
        std::fs::rename(dir.path().join("new.pem"), &cert).unwrap();
    };
    install(&c.cert, &c.key);
    let db = servers::mariadb().create_database("tls_reload");
    let proxy = tls_proxy(&db, &cert, &key, false).await;
    let port = proxy.port();
    let first = verified_status(port, "localhost", &db, &c.ca).await;
    assert!(first.status.success(), "{}", text(&first));

    // Now a certificate for another host: verification against localhost fails.
    install(&c.wrong_host_cert, &c.wrong_host_key);
    let out = verified_status(port, "localhost", &db, &c.ca).await;
    assert!(!out.status.success(), "old certificate still served");
    assert!(text(&out).contains("ERROR 2026"), "{}", text(&out));

    // A broken file keeps the last good certificate (wrong.example) in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    let unverified = cli(
        port,
        "127.0.0.1",
        PROXY_USER,
        PROXY_PASSWORD,
        &db,
        &["--ssl", "-e", "status"],
    )
    .await;
    assert!(unverified.status.success(), "{}", text(&unverified));
    assert!(
        text(&unverified).contains("Cipher in use"),
        "{}",
        text(&unverified)
    );

    // Back to the localhost certificate.
    install(&c.cert, &c.key);
    let ok = verified_status(port, "localhost", &db, &c.ca).await;
    assert!(ok.status.success(), "{}", text(&ok));
    proxy.stop().await;
}

/// `curl` against the admin endpoint: (HTTP status code, body), or None when
/// no HTTP answer came back.
async fn curl(url: String, ca: &Path, token: Option<&str>) -> Option<(String, String)> {
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    c.arg(url);
    let out = tokio::task::spawn_blocking(move || c.output().expect("curl"))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    (out.status.success() && code != "000").then(|| (code.to_string(), body.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_with_token_and_tls() {
    let c = certs();
    let db = servers::mariadb().create_database("tls_admin");
    let admin_port = servers::free_port();
    let toml = format!(
        "{}\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = \"tok-123\"\ntls = true\n\
         cert = \"{}\"\nkey = \"{}\"\n",
        config_for(&db, ""),
        c.cert.display(),
        c.key.display()
    );
    let proxy = start_proxy_with(&toml).await;
    tandem::admin::start(
        &format!("127.0.0.1:{admin_port}"),
        proxy.state.clone(),
        proxy.shutdown.clone(),
    )
    .await
    .unwrap();
    let https = |path: &str| format!("https://localhost:{admin_port}{path}");
    let (code, body) = curl(https("/status"), &c.ca, Some("tok-123"))
        .await
        .expect("answer");
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"phase\""), "{body}");
    let (code, _) = curl(https("/metrics"), &c.ca, None).await.expect("answer");
    assert_eq!(code, "401");
    let (code, _) = curl(https("/metrics"), &c.ca, Some("tok-124"))
        .await
        .expect("answer");
    assert_eq!(code, "401");
    // No plaintext HTTP on a TLS endpoint.
    let plain = curl(
        format!("http://127.0.0.1:{admin_port}/status"),
        &c.ca,
        Some("tok-123"),
    )
    .await;
    assert!(plain.is_none(), "{plain:?}");
    // The CLI's own client (cutover-check) sends the token over TLS.
    let config = tandem::config::Config::from_toml(&toml, |_| None).unwrap();
    let body = tandem::admin::get(&config, "/status")
        .await
        .expect("cutover-check's fetch");
    assert!(body.contains("\"phase\""), "{body}");
    proxy.stop().await;
}
