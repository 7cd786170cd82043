//! Foreign keys held back on a PostgreSQL new side until its rows can
//! satisfy them.
//!
//! While the old side is authoritative, PostgreSQL is a copy being filled:
//! the backfill copies tables one by one (a child's rows may land before its
//! parent's), and a session on the old side may run with
//! `FOREIGN_KEY_CHECKS=0` (a mysqldump restore creates tables in name order,
//! children before parents, and loads rows the same way). A foreign key
//! enforced on PostgreSQL during that time rejects rows the old side holds,
//! so, like pg_dump and pgloader, Tandem creates tables and indexes first and
//! adds foreign keys once the data is there:
//!
//! * `tandem schema --apply` creates the tables and records their foreign
//!   keys here (`--foreign-keys now` adds them at once, for an empty
//!   database);
//! * `tandem backfill` adds every pending key once every keyed table is
//!   copied: `ADD CONSTRAINT … NOT VALID`, then `VALIDATE CONSTRAINT`, so a
//!   violation names the table, the constraint and the offending key;
//! * the dual-write mirror adds a mirrored CREATE TABLE's keys right after
//!   the table, keeps those whose referenced table does not exist yet here
//!   and retries them after later DDL; a mirrored write that PostgreSQL
//!   rejects for a foreign key (the old side accepted the row) moves that key
//!   back here and the write is applied;
//! * `tandem cutover-check` reports every key still pending.
//!
//! The list is the table [`PENDING_TABLE`] in the new database, so all of
//! them (and an operator, with SQL) see the same state. A pending key is not
//! on the table: adding it removes the row, and a key that fails validation
//! is dropped again and stays pending with the reason.

use tokio_postgres::Client;

use crate::sql::translate::{quote, ForeignKey};

pub const PENDING_TABLE: &str = "tandem_pending_foreign_keys";

/// A key waiting to be added, with why it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub fk: ForeignKey,
    /// Why it was held back.
    pub reason: String,
    /// What went wrong the last time adding it was tried.
    pub last_error: Option<String>,
}

/// The result of trying to add one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Added,
    /// A table it needs does not exist (yet).
    Waiting(String),
    /// Rows on the table violate it; the message names the key value.
    Violated(String),
    /// PostgreSQL refused the definition itself.
    Failed(String),
}

impl Outcome {
    pub fn is_added(&self) -> bool {
        *self == Outcome::Added
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Added => "added and validated".into(),
            Outcome::Waiting(m) => format!("waiting: {m}"),
            Outcome::Violated(m) => format!("VIOLATED: {m}"),
            Outcome::Failed(m) => format!("FAILED: {m}"),
        }
    }
}

pub fn label(fk: &ForeignKey) -> String {
    format!("{}.{}", fk.table, fk.name)
}

pub async fn ensure_table(c: &Client) -> Result<(), tokio_postgres::Error> {
    c.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (\
           table_name text NOT NULL, constraint_name text NOT NULL, \
           referenced_table text NOT NULL, definition text NOT NULL, \
           reason text NOT NULL, last_error text, \
           since timestamptz NOT NULL DEFAULT now(), \
           PRIMARY KEY (table_name, constraint_name))"
    ))
    .await
}

/// Records `fk` as pending (replacing an earlier record of the same key).
pub async fn hold(c: &Client, fk: &ForeignKey, reason: &str) -> Result<(), tokio_postgres::Error> {
    ensure_table(c).await?;
    c.execute(
        &format!(
            "INSERT INTO {PENDING_TABLE} (table_name, constraint_name, referenced_table, definition, reason) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (table_name, constraint_name) DO UPDATE SET \
             referenced_table = EXCLUDED.referenced_table, definition = EXCLUDED.definition, \
             reason = EXCLUDED.reason, last_error = NULL"
        ),
        &[&fk.table, &fk.name, &fk.references, &fk.definition, &reason],
    )
    .await?;
    Ok(())
}

/// Every pending key (none when the table was never created).
pub async fn list(c: &Client) -> Result<Vec<Pending>, tokio_postgres::Error> {
    let exists: bool = c
        .query_one(
            &format!("SELECT to_regclass('{PENDING_TABLE}') IS NOT NULL"),
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            &format!(
                "SELECT table_name, constraint_name, referenced_table, definition, reason, last_error \
                 FROM {PENDING_TABLE} ORDER BY since, table_name, constraint_name"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Pending {
            fk: ForeignKey {
                table: r.get(0),
                name: r.get(1),
                references: r.get(2),
                definition: r.get(3),
            },
            reason: r.get(4),
            last_error: r.get(5),
        })
        .collect())
}

async fn table_exists(c: &Client, name: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(
        c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&quote(name)])
            .await?
            .get(0),
    )
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

/// Adds one key (`NOT VALID`, then `VALIDATE`); on success its pending
/// record (if any) is removed, otherwise the record notes why it failed and
/// the key is not left half-added on the table.
pub async fn add(c: &Client, fk: &ForeignKey) -> Result<Outcome, tokio_postgres::Error> {
    let outcome = try_add(c, fk).await?;
    if !outcome.is_added() {
        let _ = c
            .batch_execute(&format!(
                "ALTER TABLE IF EXISTS {} DROP CONSTRAINT IF EXISTS {}",
                quote(&fk.table),
                quote(&fk.name)
            ))
            .await;
    }
    let exists: bool = c
        .query_one(
            &format!("SELECT to_regclass('{PENDING_TABLE}') IS NOT NULL"),
            &[],
        )
        .await?
        .get(0);
    if exists {
        let sql = if outcome.is_added() {
            format!("DELETE FROM {PENDING_TABLE} WHERE table_name = $1 AND constraint_name = $2")
        } else {
            format!(
                "UPDATE {PENDING_TABLE} SET last_error = $3 WHERE table_name = $1 AND constraint_name = $2"
            )
        };
        let text = outcome.describe();
        if outcome.is_added() {
            c.execute(&sql, &[&fk.table, &fk.name]).await?;
        } else {
            c.execute(&sql, &[&fk.table, &fk.name, &text]).await?;
        }
    }
    Ok(outcome)
}

async fn try_add(c: &Client, fk: &ForeignKey) -> Result<Outcome, tokio_postgres::Error> {
    for t in [&fk.table, &fk.references] {
        if !table_exists(c, t).await? {
            return Ok(Outcome::Waiting(format!("table {t} does not exist")));
        }
    }
    let present = c
        .query_opt(
            "SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2",
            &[&quote(&fk.table), &fk.name],
        )
        .await?
        .map(|r| r.get::<_, bool>(0));
    if present.is_none() {
        if let Err(e) = c.batch_execute(&fk.add_sql(true)).await {
            return Ok(Outcome::Failed(db_message(&e)));
        }
    }
    if present != Some(true) {
        let validate = format!(
            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
            quote(&fk.table),
            quote(&fk.name)
        );
        if let Err(e) = c.batch_execute(&validate).await {
            let violated = e.as_db_error().is_some_and(|d| {
                d.code() == &tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION
            });
            let msg = format!(
                "table {}, constraint {}: {}",
                fk.table,
                fk.name,
                db_message(&e)
            );
            return Ok(if violated {
                Outcome::Violated(msg)
            } else {
                Outcome::Failed(msg)
            });
        }
    }
    Ok(Outcome::Added)
}

/// Tries every pending key, in the order they were held back.
pub async fn add_all(c: &Client) -> Result<Vec<(ForeignKey, Outcome)>, tokio_postgres::Error> {
    let mut out = Vec::new();
    for p in list(c).await? {
        let outcome = add(c, &p.fk).await?;
        out.push((p.fk, outcome));
    }
    Ok(out)
}

/// Takes the foreign key `constraint` of `table` off the table and records it
/// as pending: rows the authoritative side holds violate it here for now.
/// `None` when there is no such foreign key.
pub async fn demote(
    c: &Client,
    table: &str,
    constraint: &str,
    reason: &str,
) -> Result<Option<ForeignKey>, tokio_postgres::Error> {
    let row = c
        .query_opt(
            "SELECT t.relname::text, r.relname::text, pg_get_constraintdef(k.oid) \
             FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid \
             WHERE k.contype = 'f' AND k.conname = $1 AND t.relname = $2 \
             AND t.relnamespace = current_schema()::regnamespace",
            &[&constraint, &table],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let definition: String = row.get(2);
    let fk = ForeignKey {
        table: row.get(0),
        name: constraint.to_string(),
        references: row.get(1),
        definition: definition
            .strip_suffix(" NOT VALID")
            .unwrap_or(&definition)
            .to_string(),
    };
    hold(c, &fk, reason).await?;
    c.batch_execute(&format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        quote(&fk.table),
        quote(&fk.name)
    ))
    .await?;
    Ok(Some(fk))
}
