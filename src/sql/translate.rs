// TEMPORARY: replaced by the translate branch (same API).
use super::schema::Schema;
pub struct Translated {
    pub statements: Vec<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot parse: {0}")]
    Parse(String),
    #[error("untranslatable: {construct}")]
    Untranslatable { construct: String },
}
pub fn to_postgres(mysql_sql: &str, _schema: &Schema) -> Result<Translated, TranslateError> {
    Ok(Translated {
        statements: vec![mysql_sql.replace('`', "\"")],
    })
}
