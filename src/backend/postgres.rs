//! PostgreSQL backend. In this version it is only reached by `tandem check`;
//! the data path to PostgreSQL comes with the dual-write phases.

use crate::config::BackendTarget;

/// Connects, runs `SELECT version()`, and returns the server's version string.
pub async fn probe(target: &BackendTarget, timeout: std::time::Duration) -> Result<String, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&target.host)
        .port(target.port)
        .user(&target.user)
        .password(&target.password)
        .connect_timeout(timeout);
    if let Some(db) = &target.database {
        cfg.dbname(db);
    }
    let (client, conn) = tokio::time::timeout(timeout, cfg.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })?;
    let task = tokio::spawn(conn);
    let row = client
        .query_one("SELECT version()", &[])
        .await
        .map_err(|e| e.to_string())?;
    let version: String = row.get(0);
    drop(client);
    let _ = task.await;
    Ok(version)
}
