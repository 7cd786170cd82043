//! What `tandem check` asks the primary before the change stream can run,
//! each finding with exactly what to change; and the primary's current
//! position, which the applier and the backfill start from.

use crate::backend::mysql::BackendConn;
use crate::backend::BackendError;
use crate::stream::Position;

use super::error::StreamError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Ok,
    /// Works, but an operator should know (retention, metadata).
    Warn,
    /// The stream cannot run until this is fixed.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// What was found (`binlog_format=ROW`).
    pub what: String,
    /// What to change, when something must change.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn bad(severity: Severity, what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            severity,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Ok => "ok",
            Severity::Warn => "WARN",
            Severity::Error => "FAILED",
        };
        write!(f, "binlog: {tag}: {}", self.what)?;
        if let Some(fix) = &self.fix {
            write!(f, " — {fix}")?;
        }
        Ok(())
    }
}

async fn one_row(conn: &mut BackendConn, sql: &str) -> Result<Vec<Option<String>>, BackendError> {
    Ok(conn
        .query_rows(sql)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default())
}

fn col(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// Checks that the primary behind `conn` (logged in as `user`, the backend
/// URL's user) can feed the change stream.
pub async fn check(conn: &mut BackendConn, user: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let row = match one_row(
        conn,
        "SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, \
         @@global.server_id, @@version, CURRENT_USER()",
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            out.push(Finding::bad(
                Severity::Error,
                format!("cannot read the binlog settings: {e}"),
                "check the [backends.old] url",
            ));
            return out;
        }
    };
    let (log_bin, format, image) = (col(&row, 0), col(&row, 1), col(&row, 2));
    let (server_id, version, current) = (col(&row, 3), col(&row, 4), col(&row, 5));
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    if log_bin == "1" || log_bin.eq_ignore_ascii_case("on") {
        out.push(Finding::ok("log_bin=ON"));
    } else {
        out.push(Finding::bad(
            Severity::Error,
            "log_bin=OFF: the primary writes no binlog",
            "set `log_bin=mysql-bin` under [mysqld] and restart",
        ));
    }
    if format.eq_ignore_ascii_case("ROW") {
        out.push(Finding::ok("binlog_format=ROW"));
    } else {
        out.push(Finding::bad(
            Severity::Error,
            format!("binlog_format={format}"),
            "set `binlog_format=ROW` under [mysqld] and `SET GLOBAL binlog_format=ROW`",
        ));
    }
    if image.eq_ignore_ascii_case("FULL") {
        out.push(Finding::ok("binlog_row_image=FULL"));
    } else {
        out.push(Finding::bad(
            Severity::Error,
            format!("binlog_row_image={image}"),
            "set `binlog_row_image=FULL` under [mysqld] and `SET GLOBAL binlog_row_image=FULL`",
        ));
    }
    if server_id.is_empty() || server_id == "0" {
        out.push(Finding::bad(
            Severity::Error,
            "server_id=0: a primary without a server id refuses replicas",
            "set `server_id=1` (any unique non-zero id) under [mysqld]",
        ));
    } else {
        out.push(Finding::ok(format!("server_id={server_id}")));
    }
    match one_row(conn, "SELECT @@global.binlog_row_metadata").await {
        Ok(r) if col(&r, 0).eq_ignore_ascii_case("FULL") => {
            out.push(Finding::ok("binlog_row_metadata=FULL"))
        }
        Ok(r) => out.push(Finding::bad(
            Severity::Warn,
            format!(
                "binlog_row_metadata={}: column names come from information_schema, which is wrong while a DDL is in flight",
                col(&r, 0)
            ),
            "set `binlog_row_metadata=FULL` under [mysqld] and `SET GLOBAL binlog_row_metadata=FULL`",
        )),
        Err(_) => out.push(Finding::bad(
            Severity::Warn,
            "binlog_row_metadata is not available on this server version",
            "upgrade to MariaDB 10.5+ or MySQL 8.0.1+ for full row metadata",
        )),
    }
    out.push(privileges(conn, user, &current, mariadb, &version).await);
    out.push(retention(conn).await);
    out
}

async fn privileges(
    conn: &mut BackendConn,
    user: &str,
    current: &str,
    mariadb: bool,
    version: &str,
) -> Finding {
    // MariaDB 10.5 split BINLOG MONITOR out of REPLICATION CLIENT.
    let modern = mariadb && {
        let mut parts = version.split(['.', '-']);
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (major, minor) >= (10, 5)
    };
    let needed: &[&str] = if modern {
        &["REPLICATION SLAVE", "BINLOG MONITOR"]
    } else {
        &["REPLICATION SLAVE", "REPLICATION CLIENT"]
    };
    let grants = match conn.query_rows("SHOW GRANTS").await {
        Ok(rows) => rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .map(|g| g.to_ascii_uppercase())
            .collect::<Vec<_>>(),
        Err(e) => {
            return Finding::bad(
                Severity::Warn,
                format!("cannot read the grants of {current}: {e}"),
                "make sure it has REPLICATION SLAVE and BINLOG MONITOR (MariaDB) / REPLICATION CLIENT (MySQL)",
            )
        }
    };
    let global = |p: &str| {
        grants.iter().any(|g| {
            g.contains(" ON *.* ")
                && (g.starts_with("GRANT ALL PRIVILEGES")
                    || g.contains(p)
                    || (p == "REPLICATION CLIENT" && g.contains("BINLOG MONITOR")))
        })
    };
    let missing: Vec<&str> = needed.iter().copied().filter(|p| !global(p)).collect();
    if missing.is_empty() {
        Finding::ok(format!("{current} has {}", needed.join(" + ")))
    } else {
        let account = if current.is_empty() {
            format!("'{user}'@'%'")
        } else {
            match current.rsplit_once('@') {
                Some((u, h)) => format!("'{u}'@'{h}'"),
                None => current.to_string(),
            }
        };
        Finding::bad(
            Severity::Error,
            format!("{current} lacks {}", missing.join(", ")),
            format!("GRANT {} ON *.* TO {account}", missing.join(", ")),
        )
    }
}

async fn retention(conn: &mut BackendConn) -> Finding {
    let logs = match conn.query_rows("SHOW BINARY LOGS").await {
        Ok(rows) => rows,
        Err(e) => {
            return Finding::bad(
                Severity::Warn,
                format!("cannot list the binlogs: {e}"),
                "grant BINLOG MONITOR (MariaDB) / REPLICATION CLIENT (MySQL) to see retention",
            )
        }
    };
    let first = logs.first().map(|r| col(r, 0)).unwrap_or_default();
    let last = logs.last().map(|r| col(r, 0)).unwrap_or_default();
    let bytes: u64 = logs
        .iter()
        .filter_map(|r| col(r, 1).parse::<u64>().ok())
        .sum();
    let expire = one_row(conn, "SELECT @@global.binlog_expire_logs_seconds")
        .await
        .ok()
        .map(|r| col(&r, 0))
        .unwrap_or_default();
    let what = format!(
        "{} binlog file(s) kept ({first} … {last}, {} MiB); binlog_expire_logs_seconds={}",
        logs.len(),
        bytes >> 20,
        if expire.is_empty() { "?" } else { &expire }
    );
    if expire == "0" || expire.is_empty() {
        Finding::ok(what)
    } else if expire.parse::<u64>().unwrap_or(0) < 86_400 {
        Finding::bad(
            Severity::Warn,
            format!("{what}: a stream stopped for longer than that cannot resume"),
            "keep binlogs longer: `binlog_expire_logs_seconds=604800` under [mysqld]",
        )
    } else {
        Finding::ok(what)
    }
}

/// The primary's current end of binlog: `SHOW MASTER STATUS` and the GTID
/// state (`@@gtid_binlog_pos` on MariaDB, `@@gtid_executed` on MySQL), read
/// until both describe the same moment (on a server that keeps writing, the
/// GTID state may then be older than the file position, never newer).
pub async fn current_position(conn: &mut BackendConn) -> Result<Position, StreamError> {
    let map = |e| StreamError::from_backend(e, "the backend user");
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let before = gtid_pos(conn).await.map_err(map)?;
        let status = match conn.query_rows("SHOW MASTER STATUS").await {
            Ok(rows) => rows,
            // MySQL 8.4 renamed it.
            Err(BackendError::Server(e)) if e.code == 1064 => conn
                .query_rows("SHOW BINARY LOG STATUS")
                .await
                .map_err(map)?,
            Err(e) => return Err(map(e)),
        };
        let after = gtid_pos(conn).await.map_err(map)?;
        let Some(row) = status.into_iter().next() else {
            return Err(StreamError::Unsupported(
                "SHOW MASTER STATUS is empty: the primary has no binlog (set `log_bin` under [mysqld])"
                    .into(),
            ));
        };
        let offset = col(&row, 1).parse::<u64>().map_err(|_| {
            StreamError::Unsupported("SHOW MASTER STATUS without a position".into())
        })?;
        let position = |gtid: Option<String>| Position {
            file: col(&row, 0),
            offset,
            gtid: gtid.filter(|g| !g.is_empty()),
        };
        if before == after {
            return Ok(position(after));
        }
        // A server that never stops writing (other databases, other
        // applications) may never hold still between the reads. The state
        // read first is then the safe side: it is not newer than the file
        // position, so a reader of GTIDs waits for more, never for less.
        if attempt >= 50 {
            return Ok(position(before));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn gtid_pos(conn: &mut BackendConn) -> Result<Option<String>, BackendError> {
    match conn.query_rows("SELECT @@global.gtid_binlog_pos").await {
        Ok(rows) => Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())),
        // Unknown system variable: MySQL.
        Err(BackendError::Server(e)) if e.code == 1193 => Ok(conn
            .query_rows("SELECT @@global.gtid_executed")
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .map(|g| g.replace(['\n', ' '], ""))),
        Err(e) => Err(e),
    }
}
