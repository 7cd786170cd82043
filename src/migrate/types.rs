//! The two words every part of `migrate` shares: a column's type on one side
//! and the SQL dialect a side speaks. A leaf module, so the catalog, the
//! connections (`db`) and the SQL text builders (`sqltext`) can all use them
//! without importing one another in a circle.

use crate::value::mysql::{MysqlKind, MysqlType};
use crate::value::pg::PgType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Mysql,
    Postgres,
}

/// A column's type on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    My(MysqlType),
    Pg(PgType),
}

impl ColType {
    /// Strings that engines may order by collation: keyset scans that must
    /// agree across engines order them by their UTF-8 bytes instead.
    pub fn is_textual(self) -> bool {
        match self {
            ColType::My(t) => matches!(
                t.kind,
                MysqlKind::Text
                    | MysqlKind::Enum
                    | MysqlKind::Set
                    | MysqlKind::Json
                    | MysqlKind::Other
            ),
            ColType::Pg(t) => matches!(
                t,
                PgType::Text
                    | PgType::Bpchar
                    | PgType::Other
                    | PgType::Uuid
                    | PgType::Json
                    | PgType::Jsonb
            ),
        }
    }
}
