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

const HELD: &str = "held back by the dual-write mirror until the tables it joins exist and hold matching rows";

impl MirrorFks {
    /// After a unit ran: adds the keys of the tables it created, then
    /// retries those still waiting when the unit changed the schema.
    /// Returns errors talking to PostgreSQL, for the drift log.
    pub async fn after_unit(
        &mut self,
        c: &Client,
        created: Vec<ForeignKey>,
        ddl: bool,
    ) -> Result<(), tokio_postgres::Error> {
        let retry = ddl && !self.waiting.is_empty();
        for fk in created {
            self.try_add(c, fk, true).await?;
        }
        if retry {
            for (fk, _) in std::mem::take(&mut self.waiting) {
                self.try_add(c, fk, false).await?;
            }
        }
        Ok(())
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
    /// table and waits. False when there was no such key (nothing to undo).
    pub async fn demote(
        &mut self,
        c: &Client,
        table: &str,
        constraint: &str,
    ) -> Result<bool, tokio_postgres::Error> {
        let reason = "a mirrored write the primary accepted violated it (rows not backfilled yet, or FOREIGN_KEY_CHECKS=0 on the primary)";
        let Some(fk) = foreign_keys::demote(c, table, constraint, reason).await? else {
            return Ok(false);
        };
        self.waiting.retain(|(w, _)| w != &fk);
        self.waiting.push((fk, reason.to_string()));
        Ok(true)
    }

    /// Keys that never applied, with the last reason.
    pub fn waiting(&self) -> &[(ForeignKey, String)] {
        &self.waiting
    }
}
