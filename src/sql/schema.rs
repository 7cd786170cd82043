// TEMPORARY: replaced by the translate branch (same API).
use std::collections::HashMap;
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    pub column_type: String,
    pub nullable: bool,
    pub auto_increment: bool,
}
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
    pub unique_keys: Vec<Vec<String>>,
}
impl TableInfo {
    pub fn auto_increment_column(&self) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.auto_increment)
    }
}
#[derive(Debug, Clone, Default)]
pub struct Schema {
    tables: HashMap<String, TableInfo>,
}
impl Schema {
    pub const COLUMNS_QUERY: &'static str = "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION";
    pub const KEYS_QUERY: &'static str = "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";
    pub fn insert(&mut self, t: TableInfo) {
        self.tables.insert(t.name.to_lowercase(), t);
    }
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.get(&name.to_lowercase())
    }
    pub fn from_rows(columns: &[Vec<Option<String>>], _keys: &[Vec<Option<String>>]) -> Schema {
        let mut s = Schema::default();
        for r in columns {
            let g = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let t = g(0).to_lowercase();
            let e = s.tables.entry(t.clone()).or_insert_with(|| TableInfo {
                name: g(0),
                columns: vec![],
                primary_key: vec![],
                unique_keys: vec![],
            });
            e.columns.push(ColumnInfo {
                name: g(1),
                column_type: g(2),
                nullable: g(3) == "YES",
                auto_increment: g(4).contains("auto_increment"),
            });
        }
        s
    }
}
