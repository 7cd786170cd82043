//! One statement's PostgreSQL text for the prepared-statement protocol,
//! apart from `pg_primary` so that `handover` (which checks a session's
//! prepared statements before moving it) sits below the PostgreSQL side.

use crate::sql::parse::Parsed;
use crate::sql::translate;
use crate::state::AppState;
use crate::wire::packets::ServerError;

/// The single PostgreSQL statement `sql` becomes, or the MySQL error a
/// client sees when it cannot be run there.
pub(super) fn translate_one(sql: &str, state: &AppState) -> Result<String, ServerError> {
    translate_one_parsed(&mut Parsed::new(sql), state)
}

/// [`translate_one`] of a statement whose AST may be at hand already
/// (`sql::parse`: one parse per statement).
pub(super) fn translate_one_parsed(
    parsed: &mut Parsed<'_>,
    state: &AppState,
) -> Result<String, ServerError> {
    let schema = state.schema.load_full();
    match translate::to_postgres_parsed(parsed, &schema, &[]) {
        Ok(t) if t.statements.len() == 1 => Ok(t.statements.into_iter().next().unwrap_or_default()),
        Ok(_) => Err(ServerError::new(
            1295,
            b"HY000",
            "This command is not supported in the prepared statement protocol yet",
        )),
        Err(e) => Err(ServerError::new(
            1235,
            b"42000",
            format!("This statement cannot be run on PostgreSQL by tandem: {e}"),
        )),
    }
}
