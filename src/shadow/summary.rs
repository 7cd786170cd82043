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
#[path = "summary_tests.rs"]
mod tests;
