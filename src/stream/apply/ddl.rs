//! DDL through the applier: a source transaction's schema changes, applied
//! in commit order with its rows. A DDL outside a transaction is its own
//! target transaction with its checkpoint; one inside (MariaDB's
//! `CREATE TABLE … SELECT`) joins the open one. Translated for PostgreSQL;
//! triggers, routines and events are reported, not carried.

use super::*;

impl Applier {
    /// DDL inside the open source transaction (MariaDB logs
    /// `CREATE TABLE … SELECT` as one transaction of the CREATE and its
    /// rows): applied inside the open target transaction, rows before it
    /// first; the checkpoint comes with the transaction's commit.
    pub async fn ddl_in_txn(&mut self, database: &str, sql: &str) -> Result<(), ApplyError> {
        if self
            .opts
            .database
            .as_deref()
            .is_some_and(|d| d != database && !database.is_empty())
            || routine_ddl(sql).is_some()
        {
            return Ok(());
        }
        let gtid = self.current_gtid();
        let statements = self.translate_ddl(sql, gtid.clone())?;
        self.flush().await?;
        if self.dialect == Dialect::Mysql {
            // MySQL commits around DDL: the rest of the transaction and its
            // checkpoint go in a transaction opened after it.
            for s in &statements {
                self.send_mysql_ddl(s, gtid.clone()).await?;
            }
            self.send(begin_sql(self.dialect).to_string(), gtid).await?;
            self.open = true;
        } else {
            let mut text = String::new();
            if !self.open {
                text.push_str(begin_sql(self.dialect));
                text.push_str(";\n");
            }
            text.push_str(&statements.join(";\n"));
            self.open = true;
            self.send(text, gtid).await?;
        }
        // Plans are re-read inside the transaction, which sees the new table.
        self.tables.invalidate();
        tracing::info!(sql, "applied DDL from the binlog (inside its transaction)");
        Ok(())
    }

    /// One DDL statement on a MySQL target. An error saying it already took
    /// effect (`reverse::ddl::already_applied`: the DDL committed implicitly,
    /// then the stream stopped before its checkpoint and re-read it) is
    /// logged and passed over, so a restart there does not stop the stream.
    async fn send_mysql_ddl(&mut self, sql: &str, gtid: Option<String>) -> Result<(), ApplyError> {
        match self.db.execute(sql).await {
            Err(MigrateError::Mysql(mysql_async::Error::Server(e)))
                if crate::stream::reverse::ddl::already_applied(e.code) =>
            {
                tracing::warn!(sql, code = e.code, error = %e.message, "DDL already applied on the target (re-read after a restart): passed over");
                Ok(())
            }
            Err(e) => {
                let err = ApplyError::from_target(e, gtid);
                self.rollback().await;
                Err(err)
            }
            Ok(()) => Ok(()),
        }
    }

    fn translate_ddl(&self, sql: &str, gtid: Option<String>) -> Result<Vec<String>, ApplyError> {
        match self.dialect {
            Dialect::Postgres => translate::to_postgres(sql, &self.schema)
                .map(|t| t.statements)
                .map_err(|e| ApplyError::Refused {
                    gtid,
                    message: format!("DDL cannot be translated ({e}): {sql}"),
                }),
            Dialect::Mysql => Ok(vec![sql.to_string()]),
        }
    }

    /// DDL the primary ran: translated (PostgreSQL) and applied with its
    /// checkpoint; table plans are re-read afterwards. Call with no open group.
    pub async fn ddl(
        &mut self,
        database: &str,
        sql: &str,
        gtid: Option<String>,
        position: Position,
    ) -> Result<(), ApplyError> {
        self.commit().await?;
        if self
            .opts
            .database
            .as_deref()
            .is_some_and(|d| d != database && !database.is_empty())
        {
            self.progress(position, 0);
            return self.commit().await;
        }
        if let Some(kind) = routine_ddl(sql) {
            // The binlog carries what triggers and routines wrote as rows:
            // creating them on the target would apply those rows twice.
            tracing::warn!(
                kind,
                sql,
                "not applied to the new backend: the binlog already carries the rows it writes"
            );
            self.progress(position, 0);
            return self.commit().await;
        }
        let statements = self.translate_ddl(sql, gtid.clone())?;
        self.tables.invalidate();
        if self.dialect == Dialect::Mysql {
            // MySQL commits DDL implicitly: the checkpoint follows it.
            for s in &statements {
                self.send_mysql_ddl(s, gtid.clone()).await?;
            }
        } else {
            self.open = true;
            self.send(format!("BEGIN;\n{}", statements.join(";\n")), gtid.clone())
                .await?;
        }
        tracing::info!(sql, "applied DDL from the binlog");
        self.last_gtid = gtid;
        self.group_txns += 1;
        self.mark(&position);
        self.end = Some(Checkpoint {
            position,
            source_ts: 0,
        });
        self.commit().await
    }
}

/// `Some("TRIGGER")` … for DDL that creates, alters or drops a trigger,
/// stored routine or event.
pub fn routine_ddl(sql: &str) -> Option<&'static str> {
    let head: String = sql
        .chars()
        .take(300)
        .collect::<String>()
        .to_ascii_uppercase();
    let mut words = head
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    if !matches!(words.next(), Some("CREATE" | "DROP" | "ALTER")) {
        return None;
    }
    // Skips OR REPLACE, DEFINER = user@host, IF [NOT] EXISTS, AGGREGATE.
    for w in words.take(12) {
        match w {
            "TRIGGER" => return Some("TRIGGER"),
            "PROCEDURE" => return Some("PROCEDURE"),
            "FUNCTION" => return Some("FUNCTION"),
            "EVENT" => return Some("EVENT"),
            "TABLE" | "INDEX" | "VIEW" | "DATABASE" | "SCHEMA" | "USER" | "SEQUENCE" => {
                return None
            }
            _ => {}
        }
    }
    None
}
