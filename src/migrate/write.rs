//! Writing rows into one side of a table.
//!
//! PostgreSQL: rows are COPYed (text format) into a temporary staging table
//! and merged with `INSERT … SELECT … ON CONFLICT`, which is both the fastest
//! bulk path and the only way to give COPY conflict handling. MySQL:
//! multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements of bounded size.
//! Callers own the transaction, so a chunk and its checkpoint commit
//! together.

use bytes::Bytes;
use futures_util::SinkExt;

use crate::value::pg::PgType;
use crate::value::Row;

use super::catalog::{ColType, TablePlan};
use super::db::Db;
use super::sqltext::{delete_keys, ident, literal, Dialect};
use super::{MigrateError, Side};

/// What happens when a written row's key already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Leave the existing row alone (backfill: dual writes win).
    Keep,
    /// Replace it (repair: the authoritative side wins).
    Replace,
}

/// Largest MySQL INSERT we build (well below the default max_allowed_packet).
const MYSQL_STATEMENT_BYTES: usize = 4 << 20;

#[derive(Clone)]
pub struct Writer {
    side: Side,
    dialect: Dialect,
    table: String,
    /// Positions (in the plan's columns) of the columns written.
    cols: Vec<usize>,
    col_names: Vec<String>,
    key_names: Vec<String>,
    pg_types: Vec<(usize, PgType)>,
    col_types: Vec<ColType>,
    unique: bool,
    stage: String,
}

impl Writer {
    /// Writes into `side` of `plan`, which speaks `dialect`; `tag` names the
    /// session's staging table.
    pub fn new(plan: &TablePlan, side: Side, dialect: Dialect, tag: &str) -> Writer {
        let cols: Vec<usize> = (0..plan.columns.len())
            .filter(|&i| plan.columns[i].writable(side))
            .collect();
        let col_names: Vec<String> = cols
            .iter()
            .map(|&i| ident(dialect, plan.columns[i].name(side)))
            .collect();
        let key_names = plan
            .key_columns()
            .map(|c| ident(dialect, c.name(side)))
            .collect();
        let pg_types = cols
            .iter()
            .map(|&i| match plan.columns[i].ty(side) {
                ColType::Pg(t) => (i, t),
                ColType::My(_) => (i, PgType::Other),
            })
            .collect();
        let col_types = cols.iter().map(|&i| plan.columns[i].ty(side)).collect();
        let table = ident(dialect, plan.name(side));
        let stage = ident(dialect, &format!("tandem_stage_{tag}"));
        Writer {
            side,
            dialect,
            table,
            cols,
            col_names,
            key_names,
            pg_types,
            col_types,
            unique: plan.unique_on[side as usize],
            stage,
        }
    }

    /// Creates the staging table in this session (PostgreSQL; a no-op on
    /// MySQL). Its rows vanish at every commit.
    pub async fn create_stage(&self, db: &mut Db) -> Result<(), MigrateError> {
        if self.dialect == Dialect::Postgres {
            db.execute(&format!(
                "DROP TABLE IF EXISTS pg_temp.{stage}; \
                 CREATE TEMP TABLE {stage} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA",
                self.col_names.join(", "),
                self.table,
                stage = self.stage,
            ))
            .await?;
        }
        Ok(())
    }

    /// The staging table's name, quoted (PostgreSQL).
    pub fn stage(&self) -> String {
        self.stage.clone()
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// `COPY <stage> (…) FROM STDIN` (PostgreSQL).
    pub fn copy_statement(&self) -> String {
        format!(
            "COPY {} ({}) FROM STDIN",
            self.stage,
            self.col_names.join(", ")
        )
    }

    /// `COPY <table> (…) FROM STDIN`: straight into the table (PostgreSQL).
    pub fn direct_copy_statement(&self) -> String {
        format!(
            "COPY {} ({}) FROM STDIN",
            self.table,
            self.col_names.join(", ")
        )
    }

    /// Moves the staged rows into the table (PostgreSQL). Without a unique
    /// key on the target, conflicts cannot be detected and rows are appended.
    pub fn merge_statement(&self, conflict: OnConflict) -> String {
        let cols = self.col_names.join(", ");
        let mut sql = format!(
            "INSERT INTO {} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {}",
            self.table, self.stage
        );
        if self.unique {
            let target = self.key_names.join(", ");
            let updates: Vec<String> = self
                .col_names
                .iter()
                .filter(|c| !self.key_names.contains(c))
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            if conflict == OnConflict::Replace && !updates.is_empty() {
                sql.push_str(&format!(
                    " ON CONFLICT ({target}) DO UPDATE SET {}",
                    updates.join(", ")
                ));
            } else {
                sql.push_str(&format!(" ON CONFLICT ({target}) DO NOTHING"));
            }
        }
        sql
    }

    /// Appends `row` to a COPY text buffer (PostgreSQL). The error names the
    /// column that cannot be stored.
    pub fn encode_pg(
        &self,
        plan: &TablePlan,
        row: &[crate::value::Value],
        out: &mut Vec<u8>,
    ) -> Result<(), MigrateError> {
        super::copy::write_row(out, row, &self.pg_types).map_err(|(i, e)| {
            MigrateError::Unrepresentable {
                table: plan.name(self.side).to_string(),
                key: key_text(&plan.key_of(row)),
                column: plan.columns[i].name(self.side).to_string(),
                message: e.0,
            }
        })
    }

    /// MySQL INSERT statements for `rows`, each at most ~4 MiB.
    fn mysql_inserts(&self, rows: &[Row], conflict: OnConflict) -> Vec<String> {
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table,
            self.col_names.join(", ")
        );
        let tail = if !self.unique {
            String::new()
        } else if conflict == OnConflict::Replace {
            let updates: Vec<String> = self
                .col_names
                .iter()
                .map(|c| format!("{c} = VALUES({c})"))
                .collect();
            format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "))
        } else {
            let k = &self.key_names[0];
            format!(" ON DUPLICATE KEY UPDATE {k} = {k}")
        };
        let mut out = Vec::new();
        let mut sql = String::new();
        for row in rows {
            let values: Vec<String> = self
                .cols
                .iter()
                .zip(&self.col_types)
                .map(|(&i, ty)| literal(Dialect::Mysql, &row[i], *ty))
                .collect();
            let tuple = format!("({})", values.join(", "));
            if !sql.is_empty() && sql.len() + tuple.len() > MYSQL_STATEMENT_BYTES {
                sql.push_str(&tail);
                out.push(std::mem::take(&mut sql));
            }
            if sql.is_empty() {
                sql.push_str(&head);
            } else {
                sql.push_str(", ");
            }
            sql.push_str(&tuple);
        }
        if !sql.is_empty() {
            sql.push_str(&tail);
            out.push(sql);
        }
        out
    }

    /// Writes `rows` (read with all of the plan's columns) in the caller's
    /// transaction; returns the rows the server reports as affected.
    pub async fn write_rows(
        &self,
        db: &mut Db,
        plan: &TablePlan,
        rows: &[Row],
        conflict: OnConflict,
    ) -> Result<u64, MigrateError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut affected = 0;
        match db {
            Db::Pg(pg) => {
                let mut buf = Vec::new();
                for row in rows {
                    self.encode_pg(plan, row, &mut buf)?;
                }
                copy_in(&pg.client, &self.copy_statement(), buf).await?;
                affected = pg
                    .client
                    .execute(&self.merge_statement(conflict), &[])
                    .await?;
                pg.client
                    .batch_execute(&format!("TRUNCATE {}", self.stage))
                    .await?;
            }
            Db::My(_) => {
                for sql in self.mysql_inserts(rows, conflict) {
                    affected += db.execute_count(&sql).await?;
                }
            }
        }
        Ok(affected)
    }

    /// Deletes the rows with these keys.
    pub async fn delete(
        &self,
        db: &mut Db,
        plan: &TablePlan,
        keys: &[Row],
    ) -> Result<(), MigrateError> {
        if keys.is_empty() {
            return Ok(());
        }
        debug_assert_eq!(self.dialect, db.dialect());
        db.execute(&delete_keys(db.dialect(), plan, self.side, keys))
            .await
    }
}

/// Prepares a session that copies rows in: triggers and foreign-key checks
/// off, so an `ON UPDATE CURRENT_TIMESTAMP` trigger cannot rewrite the values
/// being copied and tables can be filled in any order. On PostgreSQL that
/// takes `session_replication_role`, which needs superuser; without it the
/// copy still works and a warning says what may differ.
pub async fn prepare_writer_session(db: &mut Db) {
    let (sql, what) = match db.dialect() {
        Dialect::Postgres => ("SET session_replication_role = replica", "triggers and foreign keys stay active on the new side (needs superuser to disable): ON UPDATE triggers may rewrite copied values, and child tables may fail until their parents are copied"),
        Dialect::Mysql => ("SET SESSION foreign_key_checks = 0", "foreign key checks stay on"),
    };
    if let Err(e) = db.execute(sql).await {
        tracing::warn!(error = %e, "{what}");
    }
}

/// Sends one buffer through `COPY … FROM STDIN`.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    data: Vec<u8>,
) -> Result<u64, MigrateError> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(data)).await?;
    Ok(sink.finish().await?)
}

/// A key for messages: `1` or `(1, 'a')`.
pub fn key_text(key: &[crate::value::Value]) -> String {
    let parts: Vec<String> = key.iter().map(|v| v.short()).collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("({})", parts.join(", "))
    }
}
