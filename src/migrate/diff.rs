//! Chunk comparison: both sides' rows of one key range, reduced to (key,
//! fingerprint) pairs in key order, compared by checksum and, when the
//! checksums differ, by a merge walk that names missing, extra and
//! different keys.

use std::cmp::Ordering;

use crate::value::{key_cmp, Row};

/// One row reduced to its key and the fingerprint of all its values.
#[derive(Debug, Clone)]
pub struct Fingerprinted {
    pub key: Row,
    pub fp: u128,
}

pub fn cmp_keys(a: &[crate::value::Value], b: &[crate::value::Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match key_cmp(x, y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// Order-independent checksum of a set of rows (wrapping sum of
/// fingerprints, plus the count so that empty and zero-sum sets differ).
pub fn checksum<'a>(rows: impl IntoIterator<Item = &'a Fingerprinted>) -> (u64, u128) {
    rows.into_iter()
        .fold((0, 0), |(n, sum), r| (n + 1, sum.wrapping_add(r.fp)))
}

/// Index of the first row not strictly after its predecessor, if any: the
/// scan's order disagrees with ours and a merge would report nonsense.
pub fn first_out_of_order(rows: &[Fingerprinted]) -> Option<usize> {
    rows.windows(2)
        .position(|w| cmp_keys(&w[0].key, &w[1].key) != Ordering::Less)
        .map(|i| i + 1)
}

/// Where a chunk ends, given what each side returned for "the next `limit`
/// rows after the previous chunk". A side that returned fewer than `limit`
/// rows is exhausted. The chunk ends at the smaller of the two last keys
/// among full sides (rows past it are compared in the next chunk), or is
/// unbounded once both sides are exhausted.
pub fn chunk_end<'a>(
    old: &'a [Fingerprinted],
    new: &'a [Fingerprinted],
    limit: usize,
) -> Option<&'a Row> {
    let old_full = old.len() >= limit && limit > 0;
    let new_full = new.len() >= limit && limit > 0;
    match (old_full, new_full) {
        (false, false) => None,
        (true, false) => old.last().map(|r| &r.key),
        (false, true) => new.last().map(|r| &r.key),
        (true, true) => {
            let (a, b) = (&old[old.len() - 1].key, &new[new.len() - 1].key);
            Some(if cmp_keys(a, b) == Ordering::Greater {
                b
            } else {
                a
            })
        }
    }
}

/// Drops rows after `end`.
pub fn truncate_after(rows: &mut Vec<Fingerprinted>, end: Option<&Row>) {
    if let Some(end) = end {
        let keep = rows.partition_point(|r| cmp_keys(&r.key, end) != Ordering::Greater);
        rows.truncate(keep);
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct ChunkDiff {
    /// On the old side only.
    pub missing: Vec<Row>,
    /// On the new side only.
    pub extra: Vec<Row>,
    /// On both, with different fingerprints (to be confirmed value by value).
    pub different: Vec<Row>,
}

/// Merge-walks two key-ordered lists.
pub fn diff_sorted(old: &[Fingerprinted], new: &[Fingerprinted]) -> ChunkDiff {
    let mut out = ChunkDiff::default();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let ord = match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) => cmp_keys(&a.key, &b.key),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match ord {
            Ordering::Less => {
                out.missing.push(old[i].key.clone());
                i += 1;
            }
            Ordering::Greater => {
                out.extra.push(new[j].key.clone());
                j += 1;
            }
            Ordering::Equal => {
                if old[i].fp != new[j].fp {
                    out.different.push(old[i].key.clone());
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn rows(spec: &[(i128, u128)]) -> Vec<Fingerprinted> {
        spec.iter()
            .map(|&(k, fp)| Fingerprinted {
                key: vec![Value::Int(k)],
                fp,
            })
            .collect()
    }

    #[test]
    fn merge_names_each_kind_of_difference() {
        let old = rows(&[(1, 10), (2, 20), (3, 30), (5, 50)]);
        let new = rows(&[(1, 10), (3, 31), (4, 40), (5, 50)]);
        let d = diff_sorted(&old, &new);
        assert_eq!(d.missing, vec![vec![Value::Int(2)]]);
        assert_eq!(d.extra, vec![vec![Value::Int(4)]]);
        assert_eq!(d.different, vec![vec![Value::Int(3)]]);
        assert_eq!(diff_sorted(&old, &old), ChunkDiff::default());
    }

    #[test]
    fn checksum_is_order_independent_and_counts() {
        let a = rows(&[(1, 10), (2, 20)]);
        let b = rows(&[(2, 20), (1, 10)]);
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&rows(&[(1, 0)])), checksum(&rows(&[])));
    }

    #[test]
    fn chunk_boundaries() {
        let old = rows(&[(1, 0), (2, 0), (3, 0)]);
        let new = rows(&[(1, 0), (2, 0), (5, 0)]);
        // Both full: end at the smaller last key; the new side's 5 waits.
        let end = chunk_end(&old, &new, 3).cloned();
        assert_eq!(end, Some(vec![Value::Int(3)]));
        let mut n = new.clone();
        truncate_after(&mut n, end.as_ref());
        assert_eq!(n.len(), 2);
        // One side exhausted: the full side's last key ends the chunk.
        assert_eq!(
            chunk_end(&old, &new[..1], 3).cloned(),
            Some(vec![Value::Int(3)])
        );
        assert_eq!(chunk_end(&old[..2], &new[..1], 3), None);
    }

    #[test]
    fn order_violations_are_found() {
        assert_eq!(
            first_out_of_order(&rows(&[(1, 0), (3, 0), (2, 0)])),
            Some(2)
        );
        assert_eq!(first_out_of_order(&rows(&[(1, 0), (1, 0)])), Some(1));
        assert_eq!(first_out_of_order(&rows(&[(1, 0), (2, 0)])), None);
    }

    #[test]
    fn composite_keys_compare_lexicographically() {
        let a = vec![Value::Int(1), Value::Text("b".into())];
        let b = vec![Value::Int(1), Value::Text("c".into())];
        let c = vec![Value::Int(2), Value::Text("a".into())];
        assert_eq!(cmp_keys(&a, &b), Ordering::Less);
        assert_eq!(cmp_keys(&b, &c), Ordering::Less);
    }
}
