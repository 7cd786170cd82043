//! Comparing two answers to the same read on the normalized value model
//! (`value`): what counts as equal is decided there (integers across
//! widths, decimals by value, floats within a tolerance, times in UTC
//! microseconds, TINYINT(1) = boolean, text by bytes).
//!
//! Rows are kept up to a limit; past it an answer is summarized by its row
//! count and two 128-bit hashes (one order-independent, one ordered), so a
//! huge result costs bounded memory and is still compared, only without
//! sample rows.

use std::collections::HashMap;

use crate::value::{row_fingerprint, Row, Value};

use super::log::{Category, SampleRow, Side};

/// One side's answer, collected row by row.
#[derive(Debug, Clone)]
pub struct Collected {
    pub columns: Vec<String>,
    pub count: u64,
    /// The first `max_rows` rows.
    pub rows: Vec<Row>,
    max_rows: usize,
    /// Wrapping sum of row fingerprints: equal for equal multisets.
    multiset: u128,
    /// Chained fingerprints: equal for equal sequences.
    sequence: u128,
    scratch: Vec<u8>,
}

impl Collected {
    pub fn new(columns: Vec<String>, max_rows: usize) -> Self {
        Self {
            columns,
            count: 0,
            rows: Vec::new(),
            max_rows,
            multiset: 0,
            sequence: 0,
            scratch: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        let fp = row_fingerprint(&row, &mut self.scratch);
        self.multiset = self.multiset.wrapping_add(fp);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.sequence.to_le_bytes());
        self.scratch.extend_from_slice(&fp.to_le_bytes());
        self.sequence = twox_hash::XxHash3_128::oneshot(&self.scratch);
        self.count += 1;
        if self.rows.len() < self.max_rows {
            self.rows.push(row);
        }
    }

    /// Every row is kept (not only summarized by hashes).
    pub fn complete(&self) -> bool {
        self.count as usize == self.rows.len()
    }
}

/// How two successful answers differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub category: Category,
    pub sample: Vec<SampleRow>,
    /// Compared by hashes only (no rows to show).
    pub hashed: bool,
}

/// Rows of either side that found no equal partner, as indexes.
struct Unmatched {
    primary: Vec<usize>,
    secondary: Vec<usize>,
}

/// Most rows left over after hash matching that are paired by tolerant
/// comparison (quadratic): beyond it, leftovers are reported as they are.
const MAX_FUZZY_PAIRING: usize = 512;

/// Compares two answers; `None` when they agree. `ordered` compares rows as a
/// sequence (the query has ORDER BY); `sample` bounds the rows reported.
pub fn compare(
    primary: &Collected,
    secondary: &Collected,
    ordered: bool,
    sample: usize,
) -> Option<Difference> {
    if !primary.complete() || !secondary.complete() {
        return compare_hashed(primary, secondary, ordered);
    }
    // The common case, decided by the hashes already computed: equal.
    // (Unequal hashes may still be equal within the float tolerance, so
    // they fall through to the row-level comparison.)
    compare_hashed(primary, secondary, ordered)?;
    let unmatched = multiset_difference(&primary.rows, &secondary.rows);
    if !unmatched.primary.is_empty() || !unmatched.secondary.is_empty() {
        let category = if primary.count != secondary.count {
            Category::RowCount
        } else {
            Category::Values
        };
        let mut rows = Vec::new();
        // Interleave so both sides appear in a short sample.
        let (p, s) = (&unmatched.primary, &unmatched.secondary);
        for i in 0..p.len().max(s.len()) {
            if let Some(&idx) = p.get(i) {
                rows.push(sample_row(Side::Primary, ordered, idx, &primary.rows[idx]));
            }
            if let Some(&idx) = s.get(i) {
                rows.push(sample_row(
                    Side::Secondary,
                    ordered,
                    idx,
                    &secondary.rows[idx],
                ));
            }
            if rows.len() >= sample {
                break;
            }
        }
        rows.truncate(sample);
        return Some(Difference {
            category,
            sample: rows,
            hashed: false,
        });
    }
    if !ordered {
        return None;
    }
    // Same rows: for an ordered query, are they in the same order?
    let mut rows = Vec::new();
    for (idx, (a, b)) in primary.rows.iter().zip(&secondary.rows).enumerate() {
        if !rows_equal(a, b) {
            rows.push(sample_row(Side::Primary, true, idx, a));
            rows.push(sample_row(Side::Secondary, true, idx, b));
            if rows.len() >= sample {
                break;
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    rows.truncate(sample);
    Some(Difference {
        category: Category::Order,
        sample: rows,
        hashed: false,
    })
}

fn compare_hashed(primary: &Collected, secondary: &Collected, ordered: bool) -> Option<Difference> {
    let category = if primary.count != secondary.count {
        Category::RowCount
    } else if primary.multiset != secondary.multiset {
        Category::Values
    } else if ordered && primary.sequence != secondary.sequence {
        Category::Order
    } else {
        return None;
    };
    Some(Difference {
        category,
        sample: Vec::new(),
        hashed: true,
    })
}

/// Rows of `a` and `b` left when every row is paired with an equal row of the
/// other side: first by fingerprint (exact), then the leftovers by the
/// tolerant comparison (floats within tolerance may hash differently).
fn multiset_difference(a: &[Row], b: &[Row]) -> Unmatched {
    let mut scratch = Vec::new();
    let mut counts: HashMap<u128, Vec<usize>> = HashMap::with_capacity(a.len());
    for (i, row) in a.iter().enumerate() {
        counts
            .entry(row_fingerprint(row, &mut scratch))
            .or_default()
            .push(i);
    }
    let mut secondary = Vec::new();
    for (j, row) in b.iter().enumerate() {
        match counts.get_mut(&row_fingerprint(row, &mut scratch)) {
            Some(idxs) if !idxs.is_empty() => {
                idxs.pop();
            }
            _ => secondary.push(j),
        }
    }
    let mut primary: Vec<usize> = counts.into_values().flatten().collect();
    primary.sort_unstable();
    if primary.len() <= MAX_FUZZY_PAIRING && secondary.len() <= MAX_FUZZY_PAIRING {
        let mut taken = vec![false; secondary.len()];
        primary.retain(|&i| {
            let partner = secondary
                .iter()
                .enumerate()
                .position(|(k, &j)| !taken[k] && rows_equal(&a[i], &b[j]));
            match partner {
                Some(k) => {
                    taken[k] = true;
                    false
                }
                None => true,
            }
        });
        let mut k = 0;
        secondary.retain(|_| {
            let keep = !taken[k];
            k += 1;
            keep
        });
    }
    Unmatched { primary, secondary }
}

fn rows_equal(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.approx_eq(y))
}

fn sample_row(side: Side, ordered: bool, idx: usize, row: &[Value]) -> SampleRow {
    SampleRow {
        side,
        position: ordered.then_some(idx as u64),
        row: row
            .iter()
            .map(|v| (!v.is_null()).then(|| v.short()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(rows: Vec<Row>, max: usize) -> Collected {
        let mut c = Collected::new(vec!["a".into(), "b".into()], max);
        rows.into_iter().for_each(|r| c.push(r));
        c
    }

    fn r(a: i128, b: &str) -> Row {
        vec![Value::Int(a), Value::Text(b.into())]
    }

    #[test]
    fn equal_multisets_in_any_order_agree_without_order_by() {
        let p = collect(vec![r(1, "x"), r(2, "y"), r(2, "y")], 100);
        let s = collect(vec![r(2, "y"), r(1, "x"), r(2, "y")], 100);
        assert_eq!(compare(&p, &s, false, 10), None);
    }

    #[test]
    fn order_matters_only_with_order_by() {
        let p = collect(vec![r(1, "x"), r(2, "y")], 100);
        let s = collect(vec![r(2, "y"), r(1, "x")], 100);
        let d = compare(&p, &s, true, 10).expect("order difference");
        assert_eq!(d.category, Category::Order);
        assert_eq!(d.sample.len(), 4);
        assert_eq!(d.sample[0].position, Some(0));
        assert_eq!(
            d.sample[0].row,
            vec![Some("1".to_string()), Some("x".to_string())]
        );
    }

    #[test]
    fn changed_value_is_values_with_both_rows() {
        let p = collect(vec![r(1, "x"), r(2, "y")], 100);
        let s = collect(vec![r(1, "x"), r(2, "z")], 100);
        let d = compare(&p, &s, false, 10).expect("difference");
        assert_eq!(d.category, Category::Values);
        assert_eq!(d.sample.len(), 2);
        assert_eq!(d.sample[0].side, Side::Primary);
        assert_eq!(d.sample[0].row[1].as_deref(), Some("y"));
        assert_eq!(d.sample[1].side, Side::Secondary);
        assert_eq!(d.sample[1].row[1].as_deref(), Some("z"));
    }

    #[test]
    fn missing_row_is_row_count() {
        let p = collect(vec![r(1, "x"), r(2, "y")], 100);
        let s = collect(vec![r(1, "x")], 100);
        let d = compare(&p, &s, false, 10).expect("difference");
        assert_eq!(d.category, Category::RowCount);
        assert_eq!(d.sample.len(), 1);
        assert_eq!(d.sample[0].row[0].as_deref(), Some("2"));
    }

    #[test]
    fn normalized_values_agree_across_engines() {
        // MySQL spellings vs PostgreSQL spellings of the same row.
        let p = collect(
            vec![vec![
                Value::Bool(true),
                Value::parse_decimal("2.5000").unwrap_or(Value::Null),
            ]],
            10,
        );
        let s = collect(
            vec![vec![
                Value::Int(1),
                Value::parse_decimal("2.5").unwrap_or(Value::Null),
            ]],
            10,
        );
        assert_eq!(compare(&p, &s, true, 10), None);
    }

    #[test]
    fn floats_within_tolerance_agree_even_when_they_hash_apart() {
        let x = 0.1f64 + 0.2;
        let p = collect(vec![vec![Value::float(x), Value::Null]], 10);
        let s = collect(vec![vec![Value::float(0.3), Value::Null]], 10);
        assert_eq!(compare(&p, &s, false, 10), None);
        let far = collect(vec![vec![Value::float(0.31), Value::Null]], 10);
        assert!(compare(&p, &far, false, 10).is_some());
    }

    #[test]
    fn large_answers_compare_by_hash() {
        let rows: Vec<Row> = (0..1000).map(|i| r(i, "v")).collect();
        let mut reversed = rows.clone();
        reversed.reverse();
        let p = collect(rows.clone(), 10);
        let s = collect(reversed, 10);
        assert!(!p.complete());
        assert_eq!(compare(&p, &s, false, 10), None);
        let d = compare(&p, &s, true, 10).expect("order");
        assert_eq!((d.category, d.hashed), (Category::Order, true));
        let mut changed = rows;
        changed[500] = r(500, "w");
        let d = compare(&p, &collect(changed, 10), false, 10).expect("values");
        assert_eq!((d.category, d.hashed), (Category::Values, true));
    }

    #[test]
    fn sample_is_bounded() {
        let p = collect((0..100).map(|i| r(i, "a")).collect(), 1000);
        let s = collect((0..100).map(|i| r(i, "b")).collect(), 1000);
        let d = compare(&p, &s, false, 6).expect("difference");
        assert_eq!(d.sample.len(), 6);
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(|i| Value::Int(i as i128)),
            "[a-c]{0,3}".prop_map(Value::Text),
            (-1000i64..1000).prop_map(|i| Value::float(i as f64 / 8.0)),
        ]
    }

    proptest! {
        /// Any permutation of the same rows agrees as a multiset, kept or
        /// hashed; a changed cell never does.
        #[test]
        fn permutations_agree_and_changes_do_not(
            rows in prop::collection::vec(prop::collection::vec(value(), 2), 1..40),
            seed in any::<u64>(),
            cut in 1usize..50,
        ) {
            let mut shuffled = rows.clone();
            let n = shuffled.len();
            let mut x = seed | 1;
            for i in (1..n).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let p = collect(rows.clone(), cut);
            prop_assert_eq!(compare(&p, &collect(shuffled, cut), false, 5), None);
            let mut changed = rows;
            changed[0][0] = Value::Text("changed!".into());
            prop_assert!(compare(&p, &collect(changed, cut), false, 5).is_some());
        }
    }
}
