//! The dual-write mirror's part in held-back foreign keys
//! ([`crate::foreign_keys`] explains the design).
//!
//! A mirrored CREATE TABLE arrives with its foreign keys split off. After
//! the table is created each key is added at once when the tables it joins
//! exist and its rows satisfy it; otherwise (a dump creating children before
//! parents, `FOREIGN_KEY_CHECKS=0`) it is recorded as pending and retried
//! after every later DDL unit. When the mirror stops, keys that never
//! applied are drift events (they stay pending for `tandem backfill`).
//!
//! The old side decides integrity while it is authoritative: a mirrored
//! write that PostgreSQL refuses for a foreign key (SQLSTATE 23503: the
//! parent is not backfilled yet, or the primary's session had checks off)
//! takes that key off the table (pending again) and the write is applied.

use tokio_postgres::Client;

use crate::foreign_keys::{self, Outcome};
use crate::sql::translate::ForeignKey;

/// Keys this mirror held back and retries after DDL.
#[derive(Default)]
pub(super) struct MirrorFks {
    waiting: Vec<(ForeignKey, String)>,
}

const HELD: &str =
    "held back by the dual-write mirror until the tables it joins exist and hold matching rows";

impl MirrorFks {
    /// After a unit that changed the schema: adds the keys of the tables it
    /// created, then retries those still waiting. A failure talking to
    /// PostgreSQL comes back as (statements, error) for the drift log.
    pub async fn after_ddl(
        &mut self,
        c: &Client,
        created: Vec<ForeignKey>,
    ) -> Option<(String, String)> {
        let text = created
            .iter()
            .map(|f| f.add_sql(false))
            .collect::<Vec<_>>()
            .join(";\n");
        let result = async {
            for fk in created {
                self.try_add(c, fk, true).await?;
            }
            for (fk, _) in std::mem::take(&mut self.waiting) {
                self.try_add(c, fk, false).await?;
            }
            Ok::<(), tokio_postgres::Error>(())
        }
        .await;
        result.err().map(|e| {
            (
                text,
                format!("adding or holding back foreign keys failed: {e}"),
            )
        })
    }

    async fn try_add(
        &mut self,
        c: &Client,
        fk: ForeignKey,
        new: bool,
    ) -> Result<(), tokio_postgres::Error> {
        if new {
            // Recorded first, so a failure below leaves it pending with why.
            foreign_keys::hold(c, &fk, HELD).await?;
        }
        match foreign_keys::add(c, &fk).await? {
            Outcome::Added => {
                self.waiting.retain(|(w, _)| w != &fk);
                tracing::info!(foreign_key = %foreign_keys::label(&fk), "foreign key added on the secondary")
            }
            other => {
                tracing::info!(foreign_key = %foreign_keys::label(&fk), outcome = %other.describe(), "foreign key held back on the secondary");
                self.waiting.retain(|(w, _)| w != &fk);
                self.waiting.push((fk, other.describe()));
            }
        }
        Ok(())
    }

    /// A write was refused for `constraint` on `table`: the key leaves the
    /// table and waits. The drift message, or `None` when there was no such
    /// key (nothing to undo) or holding it back failed.
    pub async fn demote(&mut self, c: &Client, table: &str, constraint: &str) -> Option<String> {
        let reason = "a mirrored write the primary accepted violated it (rows not backfilled yet, or FOREIGN_KEY_CHECKS=0 on the primary)";
        let fk = match foreign_keys::demote(c, table, constraint, reason).await {
            Ok(Some(fk)) => fk,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "holding back a foreign key on the secondary failed");
                return None;
            }
        };
        self.waiting.retain(|(w, _)| w != &fk);
        self.waiting.push((fk, reason.to_string()));
        Some(format!(
            "foreign key {table}.{constraint} taken off the secondary and held back: the primary accepted \
             this write, which violates it here; the write is applied, `tandem backfill` adds the key \
             again once every table is copied"
        ))
    }

    /// Drift events for keys that never applied: (statement, error).
    pub fn never_applied(&self) -> Vec<(String, String)> {
        self.waiting
            .iter()
            .map(|(fk, why)| {
                (
                    fk.add_sql(false),
                    format!(
                        "foreign key {} never applied while the mirror ran ({why}); it stays in {} for `tandem backfill`",
                        foreign_keys::label(fk),
                        foreign_keys::PENDING_TABLE
                    ),
                )
            })
            .collect()
    }
}

/// Whether a unit (as PostgreSQL runs it) changed the schema, so held-back
/// keys may apply now.
pub(super) fn changes_schema(batch: &[String], created: &[ForeignKey]) -> bool {
    !created.is_empty()
        || batch.iter().any(|s| {
            let head = s.trim_start().get(..6).unwrap_or_default();
            head.eq_ignore_ascii_case("CREATE") || head.eq_ignore_ascii_case("ALTER ")
        })
}
