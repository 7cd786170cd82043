//! The backfill's last step and cutover-check's view of foreign keys held
//! back on a PostgreSQL new side ([`crate::foreign_keys`] explains why they
//! wait): once every keyed table is copied, each pending key is added
//! (`NOT VALID`, then `VALIDATE`), and a violation is reported with its
//! table, constraint and key.

use crate::foreign_keys::{self, Outcome};
use crate::sql::translate::ForeignKey;

use super::checkpoint::read_checkpoint;
use super::db::Db;
use super::{MigrateError, Side, Sides};

/// What the backfill did about pending foreign keys.
#[derive(Debug, Default)]
pub enum FkStep {
    /// None pending (or the new side is not PostgreSQL).
    #[default]
    NonePending,
    /// Some are pending, but these tables are not completely copied yet.
    NotYet {
        pending: usize,
        incomplete: Vec<String>,
    },
    /// Each pending key and what adding it gave.
    Tried(Vec<(ForeignKey, Outcome)>),
}

impl FkStep {
    /// False when a key was refused (violated or invalid); one waiting for a
    /// table that does not exist is reported but does not fail the backfill.
    pub fn ok(&self) -> bool {
        match self {
            FkStep::Tried(t) => t
                .iter()
                .all(|(_, o)| matches!(o, Outcome::Added | Outcome::Waiting(_))),
            _ => true,
        }
    }
}

/// Adds the pending foreign keys when every keyed table's backfill is
/// complete.
pub async fn add_when_complete(sides: &Sides) -> Result<FkStep, MigrateError> {
    let mut new = sides.connect(Side::New).await?;
    let pending = match &new {
        Db::Pg(pg) => foreign_keys::list(&pg.client).await?.len(),
        Db::My(_) => 0,
    };
    if pending == 0 {
        return Ok(FkStep::NonePending);
    }
    let incomplete = incomplete_tables(sides, &mut new).await?;
    if !incomplete.is_empty() {
        return Ok(FkStep::NotYet {
            pending,
            incomplete,
        });
    }
    let Db::Pg(pg) = &new else {
        return Ok(FkStep::NonePending);
    };
    let tried = foreign_keys::add_all(&pg.client).await?;
    for (fk, outcome) in &tried {
        match outcome {
            Outcome::Added => {
                tracing::info!(foreign_key = %foreign_keys::label(fk), "foreign key added and validated")
            }
            other => {
                tracing::warn!(foreign_key = %foreign_keys::label(fk), outcome = %other.describe(), "foreign key not added")
            }
        }
    }
    Ok(FkStep::Tried(tried))
}

/// Keyed old-side tables whose backfill has not completed.
async fn incomplete_tables(sides: &Sides, new: &mut Db) -> Result<Vec<String>, MigrateError> {
    let (plans, _) = super::plan_tables_lenient(sides, None).await?;
    let mut out = Vec::new();
    for p in plans.iter().filter(|p| !p.key.is_empty()) {
        let done = read_checkpoint(new, &p.old_name)
            .await?
            .is_some_and(|c| c.done);
        if !done {
            out.push(p.old_name.clone());
        }
    }
    Ok(out)
}

/// cutover-check: every foreign key still pending, with why.
pub async fn pending_report(new: &mut Db) -> Result<Vec<String>, MigrateError> {
    let Db::Pg(pg) = new else {
        return Ok(Vec::new());
    };
    Ok(foreign_keys::list(&pg.client)
        .await?
        .into_iter()
        .map(|p| {
            format!(
                "{} -> {} ({})",
                foreign_keys::label(&p.fk),
                p.fk.references,
                p.last_error.unwrap_or(p.reason)
            )
        })
        .collect())
}
