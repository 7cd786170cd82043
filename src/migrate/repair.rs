//! `verify --repair`: makes the non-authoritative side match the
//! authoritative one for the keys a chunk comparison found, then compares
//! those keys again.
//!
//! Which side is authoritative is a parameter: the old side before
//! `new_primary` (this version), the new side after it.

use crate::value::Row;

use super::catalog::TablePlan;
use super::db::Db;
use super::differences::{confirm_different, rows_by_key, RepairStats, LISTED};
use super::write::{key_text, OnConflict, Writer};
use super::{MigrateError, Side};

/// Rows re-copied per transaction.
const BATCH: usize = 200;

pub struct Repairer {
    authoritative: Side,
    writer: Writer,
    stats: RepairStats,
}

impl Repairer {
    /// `target` is a connection to the side that gets changed.
    pub async fn new(
        plan: &TablePlan,
        authoritative: Side,
        target: &mut Db,
    ) -> Result<Repairer, MigrateError> {
        let writer = Writer::new(plan, authoritative.other(), target.dialect(), "repair");
        writer.create_stage(target).await?;
        super::write::prepare_writer_session(target).await;
        Ok(Repairer {
            authoritative,
            writer,
            stats: RepairStats::default(),
        })
    }

    /// Copies `missing` (old only), removes `extra` (new only) and rewrites
    /// `different` rows — with "old" and "new" swapped when the new side is
    /// authoritative — then re-compares all of them.
    pub async fn repair(
        &mut self,
        old: &mut Db,
        new: &mut Db,
        plan: &TablePlan,
        missing: &[Row],
        extra: &[Row],
        different: &[Row],
    ) -> Result<(), MigrateError> {
        let (source, target, only_source, only_target) = match self.authoritative {
            Side::Old => (old, new, missing, extra),
            Side::New => (new, old, extra, missing),
        };
        let to_copy: Vec<Row> = only_source.iter().chain(different).cloned().collect();
        for batch in to_copy.chunks(BATCH) {
            let rows = rows_by_key(source, plan, self.authoritative, batch).await?;
            // A key gone from the authoritative side since the scan must go
            // from the target too.
            let vanished: Vec<Row> = batch
                .iter()
                .filter(|k| !rows.contains_key(*k))
                .cloned()
                .collect();
            let rows: Vec<Row> = rows.into_values().collect();
            target.begin().await?;
            self.writer
                .write_rows(target, plan, &rows, OnConflict::Replace)
                .await?;
            self.writer.delete(target, plan, &vanished).await?;
            target.execute("COMMIT").await?;
            self.stats.upserted += rows.len() as u64;
            self.stats.deleted += vanished.len() as u64;
        }
        for batch in only_target.chunks(BATCH) {
            // Only delete what the authoritative side still lacks.
            let present = rows_by_key(source, plan, self.authoritative, batch).await?;
            let gone: Vec<Row> = batch
                .iter()
                .filter(|k| !present.contains_key(*k))
                .cloned()
                .collect();
            target.begin().await?;
            self.writer.delete(target, plan, &gone).await?;
            let back: Vec<Row> = present.into_values().collect();
            self.writer
                .write_rows(target, plan, &back, OnConflict::Replace)
                .await?;
            target.execute("COMMIT").await?;
            self.stats.deleted += gone.len() as u64;
            self.stats.upserted += back.len() as u64;
        }
        let touched: Vec<Row> = to_copy
            .into_iter()
            .chain(only_target.iter().cloned())
            .collect();
        let (old, new) = match self.authoritative {
            Side::Old => (source, target),
            Side::New => (target, source),
        };
        let still = confirm_different(old, new, plan, &touched).await?;
        self.stats.still_different += still.len() as u64;
        let room = LISTED.saturating_sub(self.stats.still_different_keys.len());
        self.stats
            .still_different_keys
            .extend(still.iter().take(room).map(|(k, _)| key_text(k)));
        Ok(())
    }

    pub fn into_stats(self) -> RepairStats {
        self.stats
    }
}
