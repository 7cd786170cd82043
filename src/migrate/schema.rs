//! `tandem schema [--apply]`: the new side's DDL, derived from the old
//! side's `SHOW CREATE TABLE` by the statement translator.
//!
//! Waiting for `crate::sql::translate` (branch `translate`).

use super::{MigrateError, Sides};

pub struct SchemaReport {
    pub statements: Vec<String>,
    pub problems: Vec<String>,
}

pub async fn run(_sides: &Sides, _apply: bool) -> Result<SchemaReport, MigrateError> {
    Err(MigrateError::Unsupported(
        "`tandem schema` (it needs the DDL translator, which is not in this build)".into(),
    ))
}
