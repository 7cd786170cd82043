//! Which source transactions may be applied side by side: writesets.
//!
//! Two transactions commute on the target when they touch no common row.
//! A transaction's writeset is the set of rows it touches, named by
//! `database.table` plus the primary-key values of every before and after
//! image (an update that changes the key touches both keys). A transaction
//! whose rows cannot be named — a table without a key, DDL, anything the
//! dispatcher does not understand — has no writeset: it is a *barrier*,
//! applied only once everything before it has committed, and everything
//! after it waits for it.
//!
//! [`Tracker`] remembers, for every key, the last in-flight transaction that
//! wrote it; a new transaction depends on the in-flight transactions that
//! last wrote any of its keys (the newest writer of a key already orders
//! itself after the older ones, so one edge per key is enough).

use std::collections::{HashMap, HashSet};

use crate::stream::{Change, RowChange};
use crate::value::to_tagged_json;

/// The rows a transaction touches, or `None` for a barrier.
pub type Writeset = Option<HashSet<String>>;

/// Adds the keys of `changes` to `set`; turns it into a barrier (`None`)
/// when a table has no key.
pub fn add(set: &mut Writeset, changes: &[Change]) {
    let Some(keys) = set.as_mut() else {
        return;
    };
    for c in changes {
        let t = &c.table;
        if t.key.is_empty() {
            *set = None;
            return;
        }
        let mut key_of = |row: &[crate::value::Value]| {
            let values: Vec<_> = t
                .key
                .iter()
                .map(|&i| row.get(i).cloned().unwrap_or(crate::value::Value::Null))
                .collect();
            // Database and table names cannot hold NUL: the separator is
            // unambiguous.
            keys.insert(format!(
                "{}\0{}\0{}",
                t.database,
                t.name,
                to_tagged_json(&values)
            ));
        };
        match &c.change {
            RowChange::Insert { after } => key_of(after),
            RowChange::Update { before, after } => {
                key_of(before);
                key_of(after);
            }
            RowChange::Delete { before } => key_of(before),
        }
    }
}

/// Dependencies between in-flight transactions, by sequence number
/// (dispatch order).
#[derive(Default)]
pub struct Tracker {
    /// Key → the last in-flight transaction that wrote it.
    last_writer: HashMap<String, u64>,
    /// In-flight transaction → its keys (to forget them when it is done).
    keys: HashMap<u64, Vec<String>>,
}

impl Tracker {
    /// The in-flight transactions `set` depends on.
    pub fn dependencies(&self, set: &HashSet<String>) -> HashSet<u64> {
        set.iter()
            .filter_map(|k| self.last_writer.get(k).copied())
            .collect()
    }

    /// `seq` is dispatched and writes `set`.
    pub fn dispatched(&mut self, seq: u64, set: HashSet<String>) {
        let keys: Vec<String> = set.into_iter().collect();
        for k in &keys {
            self.last_writer.insert(k.clone(), seq);
        }
        self.keys.insert(seq, keys);
    }

    /// `seq` committed: its keys no longer order anything (unless a later
    /// transaction has written them since).
    pub fn done(&mut self, seq: u64) {
        if let Some(keys) = self.keys.remove(&seq) {
            for k in keys {
                if self.last_writer.get(&k) == Some(&seq) {
                    self.last_writer.remove(&k);
                }
            }
        }
    }

    /// Keys currently remembered (bounded by the in-flight transactions).
    pub fn len(&self) -> usize {
        self.last_writer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_writer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::stream::{SourceColumn, SourceTable};
    use crate::value::mysql::MysqlType;
    use crate::value::Value;

    fn table(name: &str, key: Vec<usize>) -> Arc<SourceTable> {
        let col = |n: &str| SourceColumn {
            name: n.into(),
            ty: MysqlType::from_column_type("int(11)"),
            column_type: "int(11)".into(),
        };
        Arc::new(SourceTable {
            database: "db".into(),
            name: name.into(),
            columns: vec![col("id"), col("v")],
            key,
        })
    }

    fn update(t: &Arc<SourceTable>, from: i128, to: i128) -> Change {
        Change {
            table: Arc::clone(t),
            change: RowChange::Update {
                before: vec![Value::Int(from), Value::Int(1)],
                after: vec![Value::Int(to), Value::Int(2)],
            },
        }
    }

    fn set_of(changes: &[Change]) -> Writeset {
        let mut s = Some(HashSet::new());
        add(&mut s, changes);
        s
    }

    #[test]
    fn keys_name_table_and_both_images() {
        let a = table("a", vec![0]);
        let b = table("b", vec![0]);
        let s = set_of(&[update(&a, 1, 2)]).unwrap();
        assert_eq!(s.len(), 2, "before and after keys");
        let other = set_of(&[update(&b, 1, 1)]).unwrap();
        assert!(s.is_disjoint(&other), "same key values, other table");
        assert!(set_of(&[update(&table("c", vec![]), 1, 1)]).is_none());
    }

    #[test]
    fn a_transaction_depends_on_the_last_writers_of_its_keys() {
        let a = table("a", vec![0]);
        let mut t = Tracker::default();
        t.dispatched(1, set_of(&[update(&a, 1, 1)]).unwrap());
        t.dispatched(2, set_of(&[update(&a, 2, 2)]).unwrap());
        let both = set_of(&[update(&a, 1, 1), update(&a, 2, 2)]).unwrap();
        assert_eq!(t.dependencies(&both), HashSet::from([1, 2]));
        t.dispatched(3, both);
        // Key 1 is now last written by 3: 4 waits for 3 only.
        t.done(1);
        let one = set_of(&[update(&a, 1, 1)]).unwrap();
        assert_eq!(t.dependencies(&one), HashSet::from([3]));
        t.done(3);
        t.done(2);
        assert!(t.dependencies(&one).is_empty());
        assert!(t.is_empty());
    }
}
