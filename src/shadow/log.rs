//! The mismatch log: one JSON object per line for every shadow comparison
//! that still differed after its recheck. `tandem mismatches` reads it back
//! (see `summary`), so the record shape is the contract between the two.

use serde::{Deserialize, Serialize};

/// How the two answers to one read differed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Different numbers of rows.
    RowCount,
    /// Same number of rows, different values (as a multiset, or as a
    /// sequence for ordered queries).
    Values,
    /// Same rows, different order, in a query with ORDER BY (ties sorted
    /// differently by the two engines, or a collation difference).
    Order,
    /// The authoritative backend failed, the other answered.
    ErrorPrimaryOnly,
    /// The other backend failed, the authoritative one answered.
    ErrorSecondaryOnly,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::RowCount,
        Category::Values,
        Category::Order,
        Category::ErrorPrimaryOnly,
        Category::ErrorSecondaryOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::RowCount => "row_count",
            Category::Values => "values",
            Category::Order => "order",
            Category::ErrorPrimaryOnly => "error_primary_only",
            Category::ErrorSecondaryOnly => "error_secondary_only",
        }
    }
}

/// Which side a sample row or an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Primary,
    Secondary,
}

/// One differing row, its values printed (NULL as JSON null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    pub side: Side,
    /// Position in that side's answer (0-based), when the query is ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub row: Vec<Option<String>>,
}

/// An error one side returned, in MySQL terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideError {
    pub code: u16,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PerSide {
    pub primary: u64,
    pub secondary: u64,
}

/// One line of the mismatch log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MismatchRecord {
    /// RFC 3339 UTC with microseconds.
    pub time: String,
    pub session: u64,
    /// The statement with literals stripped: the grouping key.
    pub fingerprint: String,
    /// The statement as the client sent it (prepared: with its parameters
    /// inlined).
    pub statement: String,
    /// What the PostgreSQL backend ran, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translated: Option<String>,
    pub category: Category,
    /// "old" or "new": which backend was authoritative.
    pub primary: String,
    /// Row counts on each side.
    pub rows: PerSide,
    /// Column names of the primary's answer (the secondary's when the primary
    /// failed).
    pub columns: Vec<String>,
    /// A bounded sample of rows present on one side and not the other (or
    /// at different positions, for `order`).
    pub sample: Vec<SampleRow>,
    /// The error of the side that failed (`error_*_only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SideError>,
    /// Wall time of each side's answer, in microseconds.
    pub latency_us: PerSide,
    /// The answers were too large to keep: compared by streaming hash, so
    /// no sample rows.
    #[serde(default)]
    pub hashed: bool,
}
