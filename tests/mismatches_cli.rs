//! `tandem mismatches` as an operator runs it: the built binary on a log file
//! (no database involved).

use std::path::Path;
use std::process::{Command, Output};

fn tandem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .expect("run tandem")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn line(time: &str, fingerprint: &str, statement: &str, category: &str) -> String {
    serde_json::json!({
        "time": time,
        "session": 3,
        "fingerprint": fingerprint,
        "statement": statement,
        "category": category,
        "primary": "old",
        "rows": {"primary": 2, "secondary": 1},
        "columns": ["id"],
        "sample": [{"side": "primary", "row": ["2"]}],
        "latency_us": {"primary": 400, "secondary": 900}
    })
    .to_string()
}

fn write(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[test]
fn reports_mismatches_as_text_and_json_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mismatches.jsonl");
    write(
        &log,
        &[
            line(
                "2025-03-01T10:00:00.000000Z",
                "SELECT id FROM t WHERE a > ?",
                "SELECT id FROM t WHERE a > 1",
                "row_count",
            ),
            line(
                "2025-03-01T10:00:01.000000Z",
                "SELECT id FROM t WHERE a > ?",
                "SELECT id FROM t WHERE a > 5",
                "row_count",
            ),
            line(
                "2025-03-01T10:00:02.000000Z",
                "SELECT id FROM u",
                "SELECT id FROM u",
                "values",
            ),
            "not json".into(),
        ],
    );
    let log = log.to_str().unwrap();

    let out = tandem(&["mismatches", "--log", log]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("3 mismatches in 2 statements; 1 malformed line skipped"),
        "{text}"
    );
    assert!(text.contains("#1  2 mismatches: row_count 2"), "{text}");
    assert!(
        text.contains("fingerprint: SELECT id FROM t WHERE a > ?"),
        "{text}"
    );
    assert!(
        text.contains("statement:   SELECT id FROM t WHERE a > 1"),
        "{text}"
    );
    assert!(text.contains("#2  1 mismatch: values 1"), "{text}");
    // Nothing but the report on stdout, nothing at all on stderr.
    assert!(out.stderr.is_empty(), "{out:?}");

    let out = tandem(&["mismatches", "--log", log, "--json", "--limit", "1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["total"], 3);
    assert_eq!(v["malformed_lines"], 1);
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["groups"][0]["count"], 2);
    assert_eq!(v["groups"][0]["categories"]["row_count"], 2);
    assert_eq!(
        v["groups"][0]["example"]["statement"],
        "SELECT id FROM t WHERE a > 1"
    );
}

#[test]
fn empty_log_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mismatches.jsonl");
    std::fs::write(&log, "").unwrap();
    let out = tandem(&["mismatches", "--log", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("no mismatches"), "{out:?}");
}

#[test]
fn missing_log_from_the_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("absent.jsonl");
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[users]]
name = "app"
password = "x"
[backends.old]
kind = "mysql"
url = "mysql://app:x@127.0.0.1:3306/app"
[shadow]
log = "{}"
"#,
            log.display()
        ),
    )
    .unwrap();
    let out = tandem(&["mismatches", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&log.display().to_string()), "{err}");
    assert!(err.contains("[shadow] log"), "{err}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

/// An operator mid-edit: an unrelated key is invalid, yet the summary (which
/// needs only `[shadow] log`) runs, with `${VAR}` expanded in the log path and
/// a warning naming the bad key on stderr.
#[test]
fn invalid_unrelated_key_warns_and_still_reads_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mismatches.jsonl");
    write(
        &log,
        &[line(
            "2025-03-01T10:00:00.000000Z",
            "SELECT id FROM u",
            "SELECT id FROM u",
            "values",
        )],
    );
    let config = dir.path().join("proxy.toml");
    std::fs::write(
        &config,
        r#"
phase = "dual_write"
[[users]]
name = "app"
password = "${TANDEM_TEST_UNSET_PASSWORD}"
[backends.old]
kind = "mysql"
url = "mysql://app:x@127.0.0.1:3306/app"
pool_sise = 3
[shadow]
log = "${TANDEM_TEST_SHADOW_DIR}/mismatches.jsonl"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["mismatches", "-c", config.to_str().unwrap()])
        .env("TANDEM_TEST_SHADOW_DIR", dir.path())
        .env_remove("TANDEM_TEST_UNSET_PASSWORD")
        .output()
        .expect("run tandem");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).starts_with("1 mismatch in 1 statement"),
        "{out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("warning: "), "{err}");
    // The first invalid key met is named (here the unset variable).
    assert!(err.contains("users[0].password"), "{err}");
    assert!(err.contains(&log.display().to_string()), "{err}");

    // Fixed that one, the next invalid key is the one named.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("${TANDEM_TEST_UNSET_PASSWORD}", "x")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["mismatches", "-c", config.to_str().unwrap(), "--json"])
        .env("TANDEM_TEST_SHADOW_DIR", dir.path())
        .output()
        .expect("run tandem");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["total"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backends.old.pool_sise"), "{err}");

    // The log path itself unresolvable: that is an error (exit 2), not a guess.
    std::fs::write(
        &config,
        "[shadow]\nlog = \"${TANDEM_TEST_UNSET_DIR}/m.jsonl\"\nphase = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["mismatches", "-c", config.to_str().unwrap()])
        .env_remove("TANDEM_TEST_UNSET_DIR")
        .output()
        .expect("run tandem");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shadow.log"), "{err}");
    assert!(err.contains("TANDEM_TEST_UNSET_DIR"), "{err}");
}
