//! What PostgreSQL runs for one statement while it is authoritative: the
//! client's parameters inlined and `NOW()`, `LAST_INSERT_ID()` … fixed to the
//! values the proxy computed, translated. Kept apart from the session loop
//! (`pg_primary`) so the one-parse rule (`sql::parse`) can be tested on the
//! very code the loop runs: the statement is parsed once, by classification
//! on a cache miss or here by pin analysis, and the translator gets that AST
//! with the pinned values substituted in it.

use std::ops::Range;

use crate::sql::parse::Parsed;
use crate::sql::pin::{self, WriteShape};
use crate::sql::schema::Schema;
use crate::sql::translate::{self, TranslateError, Translated};
use crate::wire::execute::ParamValue;

/// One statement made ready for PostgreSQL.
pub(super) struct Pinned {
    /// The statement's shape, when sqlparser could read it.
    pub shape: Option<WriteShape>,
    /// The MySQL text with parameters and pinned values written in: what
    /// the old backend gets mirrored and the shadow compares.
    pub mysql_text: String,
    /// The edits that made `mysql_text` of the statement's text.
    pub edits: Vec<(Range<usize>, String)>,
    /// `mysql_text` for PostgreSQL.
    pub translated: Result<Translated, TranslateError>,
}

/// Inlines `params` (a prepared statement's) and, for a write (`pin_writes`),
/// evaluates its non-deterministic calls locally (`pin::evaluate_locally`),
/// then translates: from `parsed`'s AST, parsed at most once.
pub(super) fn pin_and_translate(
    parsed: &mut Parsed<'_>,
    params: Option<&[ParamValue]>,
    pin_writes: bool,
    last_insert_id: u64,
    schema: &Schema,
) -> Pinned {
    let shape = pin::analyze_parsed(parsed).ok();
    let mut edits = Vec::new();
    if let (Some(shape), Some(values)) = (&shape, params) {
        for (range, v) in shape.placeholders.iter().zip(values) {
            edits.push((
                range.clone(),
                v.to_literal(true).unwrap_or_else(|| "NULL".into()),
            ));
        }
    }
    if pin_writes {
        if let Some(shape) = &shape {
            for p in &shape.pins {
                edits.push((p.range.clone(), pin::evaluate_locally(p, last_insert_id)));
            }
        }
    }
    let mysql_text = pin::apply_edits(parsed.text(), edits.clone());
    // The pinned values go into the AST parsed above, not through a second
    // parse of `mysql_text`.
    let translated = translate::to_postgres_parsed(parsed, schema, &edits);
    Pinned {
        shape,
        mysql_text,
        edits,
        translated,
    }
}

#[cfg(test)]
#[path = "pg_pinned_tests.rs"]
mod tests;
