//! Tests of `tandem mismatches`' grouping and rendering (kept beside
//! `summary.rs`, in their own file so each stays readable).

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
