//! `tandem mismatches`: reads the mismatch log back and groups it by
//! statement fingerprint, so an operator sees which statements differ, how
//! often, how, and one concrete example of each.
//!
//! The log can be large, so it is streamed: memory grows with the number of
//! distinct fingerprints (capped), never with the number of lines.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::log::{Category, MismatchRecord, SampleRow};

/// Distinct fingerprints kept as groups; records of further ones are only
/// counted (`Summary::other_fingerprints`).
pub const MAX_GROUPS: usize = 10_000;

/// Sample rows printed per example in the text report.
const SHOWN_SAMPLE_ROWS: usize = 5;
/// Characters of a statement, fingerprint or error message shown.
const TEXT_CHARS: usize = 200;
/// Characters of one value shown.
const VALUE_CHARS: usize = 80;
/// Characters of one printed row (or the column list) shown.
const ROW_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(
        "mismatch log {} does not exist: no mismatches were logged yet, or the log is elsewhere (check `[shadow] log`, or pass --log)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("cannot read the mismatch log {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// All mismatches of one fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub fingerprint: String,
    pub count: u64,
    /// Only categories that occurred.
    pub categories: BTreeMap<Category, u64>,
    /// Earliest and latest `time` (fixed-width RFC 3339 UTC, so comparing the
    /// strings compares the instants; the log is not strictly time-ordered).
    pub first_seen: String,
    pub last_seen: String,
    /// The first record of this fingerprint in the file.
    pub example: MismatchRecord,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Mismatch records read, including those in `other_fingerprints`.
    pub total: u64,
    /// Lines that were not a mismatch record (bad JSON, other shape, a line
    /// cut short by a crash), skipped.
    pub malformed_lines: u64,
    /// Records whose fingerprint came after `MAX_GROUPS` distinct ones: in
    /// `total`, in no group.
    pub other_fingerprints: u64,
    /// Most frequent first; equal counts by fingerprint.
    pub groups: Vec<Group>,
}

/// Running totals of one fingerprint; the key holds the fingerprint.
struct Acc {
    count: u64,
    categories: BTreeMap<Category, u64>,
    first_seen: String,
    last_seen: String,
    example: MismatchRecord,
}

/// Reads and groups the log at `path`.
pub fn read_log(path: &Path) -> Result<Summary, SummaryError> {
    let file = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SummaryError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            SummaryError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    summarize(std::io::BufReader::new(file), MAX_GROUPS).map_err(|source| SummaryError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Groups the records read from `reader`, keeping at most `max_groups`
/// fingerprints.
pub fn summarize<R: BufRead>(mut reader: R, max_groups: usize) -> std::io::Result<Summary> {
    let mut groups: HashMap<String, Acc> = HashMap::new();
    let mut summary = Summary::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bytes, not `lines()`: a line that is not UTF-8 is a malformed line,
        // not a read error ending the whole summary.
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<MismatchRecord>(&line) else {
            summary.malformed_lines += 1;
            continue;
        };
        summary.total += 1;
        if let Some(acc) = groups.get_mut(&record.fingerprint) {
            acc.count += 1;
            *acc.categories.entry(record.category).or_default() += 1;
            if record.time < acc.first_seen {
                acc.first_seen.clone_from(&record.time);
            }
            if record.time > acc.last_seen {
                acc.last_seen.clone_from(&record.time);
            }
        } else if groups.len() < max_groups {
            groups.insert(
                record.fingerprint.clone(),
                Acc {
                    count: 1,
                    categories: BTreeMap::from([(record.category, 1)]),
                    first_seen: record.time.clone(),
                    last_seen: record.time.clone(),
                    example: record,
                },
            );
        } else {
            summary.other_fingerprints += 1;
        }
    }
    summary.groups = groups
        .into_iter()
        .map(|(fingerprint, a)| Group {
            fingerprint,
            count: a.count,
            categories: a.categories,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            example: a.example,
        })
        .collect();
    summary.groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    Ok(summary)
}

/// The summary as one JSON object (the `--json` output).
pub fn render_json(summary: &Summary) -> String {
    // Only strings, integers and maps with string keys: cannot fail.
    serde_json::to_string_pretty(summary).expect("summary serializes")
}

/// The terminal report; `limit` keeps the N most frequent statements.
pub fn render_text(summary: &Summary, limit: Option<usize>) -> String {
    let mut out = String::new();
    let shown = limit.unwrap_or(usize::MAX).min(summary.groups.len());
    if summary.total == 0 {
        out.push_str("no mismatches logged");
    } else {
        let _ = write!(
            out,
            "{} in {}",
            plural(summary.total, "mismatch", "mismatches"),
            plural(summary.groups.len() as u64, "statement", "statements")
        );
    }
    if summary.other_fingerprints > 0 {
        let _ = write!(
            out,
            ", plus {} of statements beyond the first {MAX_GROUPS} (not grouped)",
            plural(summary.other_fingerprints, "mismatch", "mismatches")
        );
    }
    if summary.malformed_lines > 0 {
        let _ = write!(
            out,
            "; {} skipped (not a mismatch record)",
            plural(summary.malformed_lines, "malformed line", "malformed lines")
        );
    }
    out.push('\n');

    for (i, g) in summary.groups[..shown].iter().enumerate() {
        out.push('\n');
        render_group(&mut out, i + 1, g);
    }

    let hidden = &summary.groups[shown..];
    if !hidden.is_empty() {
        let _ = writeln!(
            out,
            "\n… {} more {} ({}) not shown (--limit)",
            hidden.len(),
            if hidden.len() == 1 {
                "statement"
            } else {
                "statements"
            },
            plural(
                hidden.iter().map(|g| g.count).sum(),
                "mismatch",
                "mismatches"
            )
        );
    }
    out
}

fn render_group(out: &mut String, rank: usize, g: &Group) {
    // Most frequent category first: that is what the statement mostly does.
    let mut cats: Vec<(Category, u64)> = g.categories.iter().map(|(c, n)| (*c, *n)).collect();
    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let cats = cats
        .iter()
        .map(|(c, n)| format!("{} {n}", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "#{rank}  {}: {cats}",
        plural(g.count, "mismatch", "mismatches")
    );
    if g.first_seen == g.last_seen {
        let _ = writeln!(out, "    seen {}", g.first_seen);
    } else {
        let _ = writeln!(out, "    first {}  last {}", g.first_seen, g.last_seen);
    }
    let _ = writeln!(
        out,
        "    fingerprint: {}",
        one_line(&g.fingerprint, TEXT_CHARS)
    );

    let r = &g.example;
    let secondary = match r.primary.as_str() {
        "old" => "new",
        "new" => "old",
        _ => "?",
    };
    let _ = writeln!(
        out,
        "    example ({}, session {}, {}):",
        r.time,
        r.session,
        r.category.as_str()
    );
    field(out, "statement", &one_line(&r.statement, TEXT_CHARS));
    if let Some(t) = &r.translated {
        field(out, "translated", &one_line(t, TEXT_CHARS));
    }
    field(
        out,
        "rows",
        &format!(
            "primary ({}) {}, secondary ({secondary}) {}",
            r.primary, r.rows.primary, r.rows.secondary
        ),
    );
    if !r.columns.is_empty() {
        field(out, "columns", &clip(&r.columns.join(", "), ROW_CHARS));
    }
    for s in r.sample.iter().take(SHOWN_SAMPLE_ROWS) {
        field(out, &sample_label(s), &row(&s.row));
    }
    if r.sample.len() > SHOWN_SAMPLE_ROWS {
        let _ = writeln!(
            out,
            "      … {} more sample rows in the log",
            r.sample.len() - SHOWN_SAMPLE_ROWS
        );
    }
    if r.hashed {
        field(
            out,
            "compared",
            "by hash (answers too large to keep): no sample rows",
        );
    }
    if let Some(e) = &r.error {
        // The category says which side failed.
        let side = match r.category {
            Category::ErrorPrimaryOnly => format!("primary ({}) ", r.primary),
            Category::ErrorSecondaryOnly => format!("secondary ({secondary}) "),
            _ => String::new(),
        };
        field(
            out,
            "error",
            &format!("{side}{}: {}", e.code, one_line(&e.message, TEXT_CHARS)),
        );
    }
    field(
        out,
        "latency",
        &format!(
            "primary {}, secondary {}",
            duration(r.latency_us.primary),
            duration(r.latency_us.secondary)
        ),
    );
}

fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "      {:<12} {value}", format!("{label}:"));
}

fn sample_label(s: &SampleRow) -> String {
    let side = match s.side {
        super::log::Side::Primary => "primary",
        super::log::Side::Secondary => "secondary",
    };
    match s.position {
        Some(p) => format!("{side} #{p}"),
        None => side.to_string(),
    }
}

/// `('a', NULL, '3')`: values quoted and escaped so that trailing spaces,
/// empty strings and the text "NULL" stay distinguishable from each other —
/// exactly the differences a mismatch is often about.
fn row(values: &[Option<String>]) -> String {
    let inner = values
        .iter()
        .map(|v| match v {
            None => "NULL".to_string(),
            Some(s) => quote(s, VALUE_CHARS),
        })
        .collect::<Vec<_>>()
        .join(", ");
    clip(&format!("({inner})"), ROW_CHARS)
}

fn quote(s: &str, max: usize) -> String {
    let mut out = String::from("'");
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push_str("'…");
            return out;
        }
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// At most `max` characters, with `…` when cut (on a char boundary).
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// Whitespace runs (newlines, indentation) folded to one space so a
/// statement fits one line, then clipped to `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for word in s.split_whitespace() {
        if n > 0 {
            if n == max {
                out.push('…');
                return out;
            }
            out.push(' ');
            n += 1;
        }
        for c in word.chars() {
            if n == max {
                out.push('…');
                return out;
            }
            out.push(c);
            n += 1;
        }
    }
    out
}

fn duration(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::log::{PerSide, Side, SideError};

    fn record(time: &str, fingerprint: &str, category: Category) -> MismatchRecord {
        MismatchRecord {
            time: time.into(),
            session: 7,
            fingerprint: fingerprint.into(),
            statement: fingerprint.replace('?', "1"),
            translated: None,
            category,
            primary: "old".into(),
            rows: PerSide {
                primary: 1,
                secondary: 1,
            },
            columns: vec!["id".into(), "name".into()],
            sample: vec![],
            error: None,
            latency_us: PerSide {
                primary: 850,
                secondary: 2_400,
            },
            hashed: false,
        }
    }

    const USERS: &str = "SELECT name FROM users WHERE id = ?";
    const ORDERS: &str = "SELECT * FROM orders ORDER BY created";
    const MISSING: &str = "SELECT x FROM gone";

    /// Three fingerprints, mixed categories, out-of-order times, one
    /// malformed line, one record of another shape and a blank line.
    fn sample_log() -> Vec<String> {
        let mut first = record("2025-03-01T10:00:05.000000Z", USERS, Category::Values);
        first.statement = "SELECT name\n  FROM users\n WHERE id = 42".into();
        first.translated = Some("SELECT \"name\" FROM \"users\" WHERE \"id\" = 42".into());
        first.sample = vec![
            SampleRow {
                side: Side::Primary,
                position: None,
                row: vec![Some("42".into()), Some("Ann ".into())],
            },
            SampleRow {
                side: Side::Secondary,
                position: None,
                row: vec![Some("42".into()), None],
            },
        ];
        let mut gone = record(
            "2025-03-01T10:00:03.000000Z",
            MISSING,
            Category::ErrorSecondaryOnly,
        );
        gone.error = Some(SideError {
            code: 1146,
            message: "Table 'app.gone' doesn't exist".into(),
        });
        gone.rows.secondary = 0;
        let records = [
            record("2025-03-01T10:00:01.000000Z", ORDERS, Category::Order),
            first,
            // Earlier than the first USERS line: first_seen is the minimum,
            // the example stays the first line.
            record("2025-03-01T10:00:02.000000Z", USERS, Category::Values),
            record("2025-03-01T10:00:09.000000Z", USERS, Category::RowCount),
            gone,
            record("2025-03-01T10:00:07.000000Z", USERS, Category::Values),
            record("2025-03-01T10:00:08.000000Z", ORDERS, Category::Order),
        ];
        let mut lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        lines.insert(3, "{\"time\": \"2025-03-01T10:00:04Z\", \"trunc".into());
        lines.insert(5, "{\"event\": \"drift\"}".into());
        lines.insert(6, "   ".into());
        lines
    }

    fn write_log(lines: &[String]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        f.flush().unwrap();
        f
    }

    #[test]
    fn groups_counts_and_orders_by_frequency() {
        let f = write_log(&sample_log());
        let s = read_log(f.path()).unwrap();
        assert_eq!(s.total, 7);
        assert_eq!(s.malformed_lines, 2);
        assert_eq!(s.other_fingerprints, 0);
        let order: Vec<_> = s.groups.iter().map(|g| g.fingerprint.as_str()).collect();
        assert_eq!(order, [USERS, ORDERS, MISSING]);

        let users = &s.groups[0];
        assert_eq!(users.count, 4);
        assert_eq!(
            users.categories,
            BTreeMap::from([(Category::Values, 3), (Category::RowCount, 1)])
        );
        assert_eq!(users.first_seen, "2025-03-01T10:00:02.000000Z");
        assert_eq!(users.last_seen, "2025-03-01T10:00:09.000000Z");
        assert_eq!(users.example.time, "2025-03-01T10:00:05.000000Z");
        assert_eq!(users.example.sample.len(), 2);
        assert!(users.example.translated.is_some());

        let orders = &s.groups[1];
        assert_eq!(orders.count, 2);
        assert_eq!(orders.categories, BTreeMap::from([(Category::Order, 2)]));
        assert_eq!(orders.first_seen, "2025-03-01T10:00:01.000000Z");
        assert_eq!(orders.last_seen, "2025-03-01T10:00:08.000000Z");

        assert_eq!(s.groups[2].count, 1);
        assert_eq!(s.groups[2].example.error.as_ref().unwrap().code, 1146);
    }

    #[test]
    fn equal_counts_sort_by_fingerprint() {
        let lines: Vec<String> = ["b", "c", "a"]
            .iter()
            .map(|fp| {
                serde_json::to_string(&record("2025-01-01T00:00:00.000000Z", fp, Category::Values))
                    .unwrap()
            })
            .collect();
        let s = summarize(lines.join("\n").as_bytes(), MAX_GROUPS).unwrap();
        let order: Vec<_> = s.groups.iter().map(|g| g.fingerprint.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn fingerprints_past_the_cap_are_only_counted() {
        let lines: Vec<String> = ["a", "b", "c", "a", "c", "d"]
            .iter()
            .map(|fp| {
                serde_json::to_string(&record("2025-01-01T00:00:00.000000Z", fp, Category::Values))
                    .unwrap()
            })
            .collect();
        let s = summarize(lines.join("\n").as_bytes(), 2).unwrap();
        assert_eq!(s.total, 6);
        // c twice and d: fingerprints first seen after the cap was reached.
        assert_eq!(s.other_fingerprints, 3);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.groups[0].fingerprint, "a");
        assert_eq!(s.groups[0].count, 2);
        assert!(render_text(&s, None).contains("plus 3 mismatches of statements beyond"));
    }

    #[test]
    fn invalid_utf8_is_a_malformed_line_not_an_error() {
        let good = serde_json::to_string(&record(
            "2025-01-01T00:00:00.000000Z",
            "a",
            Category::Values,
        ))
        .unwrap();
        let mut bytes = b"\xff\xfe not json\n".to_vec();
        bytes.extend_from_slice(good.as_bytes());
        let s = summarize(&bytes[..], MAX_GROUPS).unwrap();
        assert_eq!((s.total, s.malformed_lines), (1, 1));
    }

    #[test]
    fn text_report_has_the_key_facts() {
        let f = write_log(&sample_log());
        let s = read_log(f.path()).unwrap();
        let text = render_text(&s, None);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "7 mismatches in 3 statements; 2 malformed lines skipped (not a mismatch record)"
        );
        for needle in [
            "#1  4 mismatches: values 3, row_count 1",
            "first 2025-03-01T10:00:02.000000Z  last 2025-03-01T10:00:09.000000Z",
            "fingerprint: SELECT name FROM users WHERE id = ?",
            "example (2025-03-01T10:00:05.000000Z, session 7, values):",
            // Whitespace folded to keep the statement on one line.
            "statement:   SELECT name FROM users WHERE id = 42",
            "translated:  SELECT \"name\" FROM \"users\" WHERE \"id\" = 42",
            "rows:        primary (old) 1, secondary (new) 1",
            "columns:     id, name",
            "primary:     ('42', 'Ann ')",
            "secondary:   ('42', NULL)",
            "latency:     primary 850 µs, secondary 2.4 ms",
            "#2  2 mismatches: order 2",
            "#3  1 mismatch: error_secondary_only 1",
            "seen 2025-03-01T10:00:03.000000Z",
            "error:       secondary (new) 1146: Table 'app.gone' doesn't exist",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }

        let top = render_text(&s, Some(1));
        assert!(top.contains("#1 "));
        assert!(!top.contains("#2 "));
        assert!(
            top.contains("… 2 more statements (3 mismatches) not shown (--limit)"),
            "{top}"
        );
    }

    #[test]
    fn text_report_of_an_empty_log() {
        let s = summarize(&b""[..], MAX_GROUPS).unwrap();
        assert_eq!(s, Summary::default());
        assert_eq!(render_text(&s, None), "no mismatches logged\n");
    }

    #[test]
    fn long_statements_and_values_are_clipped_on_char_boundaries() {
        let mut r = record("2025-01-01T00:00:00.000000Z", "a", Category::Values);
        r.statement = format!("SELECT '{}'", "é".repeat(500));
        r.sample = (0..8)
            .map(|i| SampleRow {
                side: Side::Secondary,
                position: Some(i),
                row: vec![Some("ü".repeat(300)), Some("a'b\nc".into())],
            })
            .collect();
        let s = summarize(serde_json::to_string(&r).unwrap().as_bytes(), MAX_GROUPS).unwrap();
        let text = render_text(&s, None);
        let statement = text
            .lines()
            .find(|l| l.contains("statement:"))
            .unwrap()
            .split("statement:")
            .nth(1)
            .unwrap()
            .trim();
        assert_eq!(statement.chars().count(), TEXT_CHARS + 1);
        assert!(statement.ends_with('…'));
        assert!(text.contains(&format!(
            "secondary #0: ('{}'…, 'a\\'b\\nc')",
            "ü".repeat(80)
        )));
        assert!(text.contains("secondary #4:"));
        assert!(!text.contains("secondary #5:"));
        assert!(text.contains("… 3 more sample rows in the log"));
    }

    #[test]
    fn json_round_trips_the_numbers() {
        let f = write_log(&sample_log());
        let s = read_log(f.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&render_json(&s)).unwrap();
        assert_eq!(v["total"], 7);
        assert_eq!(v["malformed_lines"], 2);
        assert_eq!(v["other_fingerprints"], 0);
        let groups = v["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0]["fingerprint"], USERS);
        assert_eq!(groups[0]["count"], 4);
        assert_eq!(
            groups[0]["categories"],
            serde_json::json!({"values": 3, "row_count": 1})
        );
        assert_eq!(groups[0]["first_seen"], "2025-03-01T10:00:02.000000Z");
        assert_eq!(groups[0]["last_seen"], "2025-03-01T10:00:09.000000Z");
        // The example is a whole log record again.
        let example: MismatchRecord = serde_json::from_value(groups[0]["example"].clone()).unwrap();
        assert_eq!(example, s.groups[0].example);
        assert_eq!(groups[2]["categories"]["error_secondary_only"], 1);
    }

    #[test]
    fn missing_log_names_the_path_and_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.jsonl");
        let err = read_log(&path).unwrap_err();
        assert!(matches!(err, SummaryError::Missing { .. }));
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("no mismatches were logged yet"), "{msg}");
        assert!(msg.contains("[shadow] log"), "{msg}");
    }
}
