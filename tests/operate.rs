//! Operating a running proxy: hot reload (file events), rejected edits, phase
//! changes at runtime, and the admin endpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

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

/// Retries `f` for up to `limit`; returns how long it took to succeed.
async fn within<F, Fut>(limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_edits_and_keeps_serving_on_bad_ones() {
    let m = servers::mariadb();
    let db = m.create_database("reload");
    let secondary = m.create_database("reload_new");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let drift = dir.path().join("drift.jsonl");
    let base = config_for(&db, "");
    std::fs::write(&path, &base).unwrap();
    let proxy = start_proxy_with(&base).await;
    tandem::reload::spawn(path.clone(), proxy.state.clone(), proxy.shutdown.clone());
    let mut c = via(&proxy, &db).await;
    c.query_drop("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        .await
        .unwrap();

    // 1. A new password takes effect in under a second; sessions stay up.
    std::fs::write(&path, base.replace(PROXY_PASSWORD, "rotated")).unwrap();
    let port = proxy.port();
    let took = within(Duration::from_secs(2), || {
        let db = db.clone();
        async move {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(port)
                .user(Some(PROXY_USER))
                .pass(Some("rotated"))
                .db_name(Some(db))
                .prefer_socket(false);
            mysql_async::Conn::new(opts).await.is_ok()
        }
    })
    .await;
    assert!(took < Duration::from_secs(1), "reload took {took:?}");
    c.query_drop("INSERT INTO t (v) VALUES (1)").await.unwrap();

    // 2. An invalid edit is rejected; the running config is kept.
    let failures = || {
        proxy
            .state
            .metrics
            .reload_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    std::fs::write(&path, base.replace("[limits]", "[limits]\nmax_clientz = 3")).unwrap();
    within(Duration::from_secs(2), || async { failures() >= 1 }).await;
    assert!(
        mysql_async::Conn::new(proxy_opts(&proxy, &db).pass(Some("rotated")))
            .await
            .is_ok()
    );

    // 3. A data-losing phase change is refused.
    std::fs::write(
        &path,
        base.replace("listen = ", "phase = \"new_only\"\nlisten = "),
    )
    .unwrap();
    within(Duration::from_secs(2), || async { failures() >= 2 }).await;
    assert_eq!(
        proxy.state.snapshot.load().config.phase.as_str(),
        "primary_only"
    );

    // 4. primary_only -> dual_write at runtime: the open session starts
    //    mirroring at its next statement outside a transaction.
    let dual = base
        .replace(PROXY_PASSWORD, "rotated")
        .replace("listen = ", "phase = \"dual_write\"\nlisten = ")
        + &format!(
            "[backends.new]\nkind = \"mysql\"\nurl = \"{}\"\n[mirror]\nsource = \"statements\"\ndrift_log = \"{}\"\n",
            m.url(&secondary),
            drift.display()
        );
    m.root_sql(&format!(
        "CREATE TABLE `{secondary}`.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    ));
    std::fs::write(&path, &dual).unwrap();
    within(Duration::from_secs(2), || async {
        proxy.state.mirror.load().is_some()
    })
    .await;
    c.query_drop("INSERT INTO t (v) VALUES (2), (3)")
        .await
        .unwrap();
    wait_mirrored(&proxy).await;
    let mirrored = m.root_sql(&format!("SELECT id, v FROM `{secondary}`.t ORDER BY id"));
    assert_eq!(
        mirrored, "2\t2\n3\t3\n",
        "only writes after the switch, with the primary's ids"
    );
    assert!(
        proxy
            .state
            .config_version
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_serves_metrics_and_status() {
    let (db, proxy) = setup("admin").await;
    let addr = tandem::admin::start("127.0.0.1:0", proxy.state.clone(), proxy.shutdown.clone())
        .await
        .unwrap();
    let mut c = via(&proxy, &db).await;
    let reads_before = proxy
        .state
        .metrics
        .statements(tandem::sql::classify::StatementClass::Read);
    for _ in 0..3 {
        let _: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    }
    c.query_drop("CREATE TABLE a (x INT)").await.unwrap();
    let reads = reads_before + 3;
    let metrics = http_get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let reads_line = metrics
        .lines()
        .find(|l| l.starts_with("tandem_statements_total{class=\"read\""))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(reads_line_ok(reads_line, reads), "{reads_line}");
    assert!(
        metrics.contains(&format!(
            "tandem_statement_duration_seconds_count{{class=\"read\"}} {reads}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("tandem_connections_active 1"));
    let status = http_get(addr, "/status").await;
    let body = status.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["phase"], "primary_only");
    assert_eq!(v["statements"]["read"], reads);
    assert_eq!(v["statements"]["ddl"], 1);
    assert!(http_get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
}

fn reads_line_ok(line: &str, n: u64) -> bool {
    line.ends_with(&format!(" {n}"))
}
