//! Shared test support: real servers (`servers`) and an in-process proxy.
#![allow(dead_code)]

pub mod config;
pub mod pair;
pub mod servers;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use mysql_async::prelude::*;
use tokio_util::sync::CancellationToken;

use tandem::config::Config;
use tandem::server::AppState;

pub const PROXY_USER: &str = "app";
pub const PROXY_PASSWORD: &str = "proxypass";

/// A proxy running inside the test process on a free port.
pub struct Proxy {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting and waits for the accept loop to drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// A proxy.toml in front of the shared MariaDB, default database `db`.
pub fn config_for(db: &str, extra_backend: &str) -> String {
    let m = servers::mariadb();
    format!(
        r#"
listen = "127.0.0.1:0"
[[users]]
name = "{PROXY_USER}"
password = "{PROXY_PASSWORD}"
[backends.old]
kind = "mysql"
url = "{url}"
{extra_backend}
[limits]
shutdown_timeout_ms = 5000
"#,
        url = m.url(db)
    )
}

pub async fn start_proxy_with(toml: &str) -> Proxy {
    let config = Config::from_toml(toml, |k| std::env::var(k).ok()).expect("test config is valid");
    let (listener, addr) = tandem::server::bind(&config).await.expect("bind");
    let state = AppState::new(config).expect("state");
    // As `tandem serve` does: a backend that is down only delays it.
    let _ = state.refresh_schema().await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(tandem::server::run(
        listener,
        state.clone(),
        shutdown.clone(),
    ));
    Proxy {
        addr,
        state,
        shutdown,
        task,
    }
}

/// Waits until every session's mirror queue is empty (dual_write).
pub async fn wait_mirrored(proxy: &Proxy) {
    let Some(m) = proxy.state.mirror.load_full() else {
        return;
    };
    for _ in 0..600 {
        if m.stats.queued.load(std::sync::atomic::Ordering::Relaxed) <= 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("mirror queues did not drain");
}

/// The records of a JSON-lines log (drift, mismatches) as written so far.
pub fn jsonl_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// JSON-lines logs are written by a background thread: waits (bounded, 5 s)
/// until `expected` records are there, then returns all of them.
pub async fn settled_jsonl(path: &std::path::Path, expected: usize) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let records = jsonl_records(path);
        if records.len() >= expected {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    jsonl_records(path)
}

/// A fresh database on the shared MariaDB and a proxy in front of it.
pub async fn setup(prefix: &str) -> (String, Proxy) {
    let db = servers::mariadb().create_database(prefix);
    let proxy = start_proxy_with(&config_for(&db, "")).await;
    (db, proxy)
}

pub fn direct_opts(db: &str) -> mysql_async::OptsBuilder {
    let m = servers::mariadb();
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(m.port)
        .user(Some("app"))
        .pass(Some("apppass"))
        .db_name(Some(db))
        .prefer_socket(false)
}

pub fn proxy_opts(proxy: &Proxy, db: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(proxy.port())
        .user(Some(PROXY_USER))
        .pass(Some(PROXY_PASSWORD))
        .db_name(Some(db))
        // Otherwise mysql_async reconnects over the server's unix socket,
        // bypassing the proxy.
        .prefer_socket(false)
}

pub async fn direct(db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(direct_opts(db))
        .await
        .expect("direct connection")
}

pub async fn via(proxy: &Proxy, db: &str) -> mysql_async::Conn {
    mysql_async::Conn::new(proxy_opts(proxy, db))
        .await
        .expect("proxy connection")
}

/// Runs `sql` and returns every row as text (NULL as "NULL"), for comparisons.
pub async fn rows_text(conn: &mut mysql_async::Conn, sql: &str) -> Vec<Vec<String>> {
    let rows: Vec<mysql_async::Row> = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().map(row_text).collect()
}

pub fn row_text(row: mysql_async::Row) -> Vec<String> {
    row.unwrap()
        .into_iter()
        // as_sql prints the whole value (Debug truncates long bytes).
        .map(|v| v.as_sql(false))
        .collect()
}

/// The column metadata a client sees, field by field.
pub fn column_meta(c: &mysql_async::Column) -> String {
    format!(
        "{}|{}|{}|{}|{:?}|{:?}|{}|{}|{}",
        c.schema_str(),
        c.table_str(),
        c.org_table_str(),
        c.name_str(),
        c.column_type(),
        c.flags(),
        c.decimals(),
        c.character_set(),
        c.column_length()
    )
}
