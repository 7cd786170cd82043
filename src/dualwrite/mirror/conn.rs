//! The mirror applier's connection to the secondary: running a batch,
//! reconnecting with backoff when it is down, and noting the foreign key a
//! refused write violated (see `fk`).

use std::time::{Duration, Instant};

use super::{Applier, SecondaryConn, DOWN};
use crate::backend::mysql;
use crate::config::BackendKind;

impl Applier {
    pub(super) async fn exec(&mut self, sql: &str) -> Result<(), String> {
        self.fk_violation = None;
        self.ensure_connected().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(format!("{DOWN}: no connection"));
        };
        let result = match conn {
            SecondaryConn::Postgres(client) => client.batch_execute(sql).await.map_err(|e| {
                let msg = match e.as_db_error() {
                    Some(db) => {
                        if db.code() == &tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION {
                            if let (Some(t), Some(c)) = (db.table(), db.constraint()) {
                                self.fk_violation = Some((t.to_string(), c.to_string()));
                            }
                        }
                        format!("{} (SQLSTATE {})", db.message(), db.code().code())
                    }
                    None => e.to_string(),
                };
                (e.is_closed(), msg)
            }),
            SecondaryConn::Mysql(c) => c.execute(sql).await.map(|_| ()).map_err(|e| {
                let lost = matches!(e, crate::backend::BackendError::Wire(_));
                (lost, e.to_string())
            }),
        };
        match result {
            Ok(()) => Ok(()),
            Err((lost, msg)) => {
                if lost {
                    self.conn = None;
                    self.mark_down();
                    return Err(format!("{DOWN}: {msg}"));
                }
                Err(msg)
            }
        }
    }

    async fn ensure_connected(&mut self) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        if let Some(until) = self.down_until {
            if Instant::now() < until {
                return Err(format!("{DOWN}: reconnecting (backoff)"));
            }
        }
        match tokio::time::timeout(self.connect_timeout, self.connect()).await {
            Ok(Ok(conn)) => {
                self.conn = Some(conn);
                self.down_until = None;
                self.backoff = Duration::from_millis(50);
                Ok(())
            }
            Ok(Err(e)) => {
                self.mark_down();
                Err(format!("{DOWN}: {e}"))
            }
            Err(_) => {
                self.mark_down();
                Err(format!("{DOWN}: connect timed out"))
            }
        }
    }

    fn mark_down(&mut self) {
        self.down_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
    }

    async fn connect(&self) -> Result<SecondaryConn, String> {
        let t = &self.target;
        match self.kind {
            BackendKind::Postgres => {
                // Pinned timestamps are written as the primary's session saw them.
                let (client, _task) = crate::backend::postgres::connect_with(
                    t,
                    self.connect_timeout,
                    "tandem-mirror",
                    Some("-c TimeZone=UTC"),
                )
                .await
                .map_err(|e| e.reason())?;
                Ok(SecondaryConn::Postgres(client))
            }
            BackendKind::Mysql => {
                let greeted = mysql::connect(t, self.max_packet)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut opts = mysql::default_opts(t.database.as_deref());
                // A transaction is sent as one multi-statement batch.
                opts.capabilities |= crate::wire::CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits();
                let (conn, _) = greeted
                    .authenticate(t, opts)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(SecondaryConn::Mysql(Box::new(conn)))
            }
        }
    }
}
