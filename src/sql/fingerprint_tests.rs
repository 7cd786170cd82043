//! Fingerprint tests: literals normalised, the same shape gives the same
//! fingerprint.

use super::*;

/// Checks (input, expected fingerprint) rows, reporting all mismatches.
fn cases(rows: &[(&str, &str)]) {
    let bad: Vec<String> = rows
        .iter()
        .filter(|(sql, want)| fingerprint(sql) != *want)
        .map(|(sql, want)| {
            format!(
                "{sql:?}\n    got  {:?}\n    want {want:?}",
                fingerprint(sql)
            )
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[rustfmt::skip]
#[test]
fn literals() {
    cases(&[
        ("SELECT 'a', \"b\" FROM t", "SELECT ?, ? FROM t"),
        (r"SELECT 'it\'s', 'it''s', 'a\\' FROM t", "SELECT ?, ?, ? FROM t"),
        (r#"SELECT "say ""hi""", "x\"y""#, "SELECT ?, ?"),
        ("SELECT 'a -- b /* c */ # d'", "SELECT ?"),
        ("SELECT _utf8mb4'abc' COLLATE utf8mb4_bin", "SELECT _utf8mb4? COLLATE utf8mb4_bin"),
        ("SELECT N'x', 'héllo wörld'", "SELECT ?, ?"),
        ("SELECT 1, 23, 4.5, .5, 1.5e-3, 2E+10, 7e3", "SELECT ?, ?, ?, ?, ?, ?, ?"),
        ("SELECT 0x1F, X'1f', x'AB', B'0101', b'1', 0b101", "SELECT ?, ?, ?, ?, ?, ?"),
        ("SELECT -5, a-1, a - -2", "SELECT -?, a-?, a - -?"),
        ("SELECT 1--1", "SELECT ?--?"),
        ("SELECT c FROM sbtest1 WHERE id=?", "SELECT c FROM sbtest1 WHERE id=?"),
        ("SELECT c FROM sbtest1 WHERE id=42", "SELECT c FROM sbtest1 WHERE id=?"),
        // Unterminated literals are kept: the parser rejects them.
        ("SELECT 'unterminated  x", "SELECT 'unterminated  x"),
        ("SELECT X'1F", "SELECT X'1F"),
    ]);
}

#[rustfmt::skip]
#[test]
fn identifiers_are_kept() {
    cases(&[
        ("SELECT col_2, t1.c3 FROM t1 WHERE x2=3", "SELECT col_2, t1.c3 FROM t1 WHERE x2=?"),
        ("SELECT 1abc, 0xZZ, 1e FROM `tbl 1`", "SELECT 1abc, 0xZZ, 1e FROM `tbl 1`"),
        ("SELECT t.1col, db.2t.x, t1.5 FROM t", "SELECT t.1col, db.2t.x, t1.5 FROM t"),
        ("select u1_0.id from users u1_0 where u1_0.id=5", "select u1_0.id from users u1_0 where u1_0.id=?"),
        ("SELECT $x, é1 FROM ünï", "SELECT $x, é1 FROM ünï"),
        ("SELECT `a``b 'c'` , `1` FROM `db`.`t 2`", "SELECT `a``b 'c'` , `1` FROM `db`.`t 2`"),
        ("SELECT `t`.`id` FROM `t` WHERE `t`.`id` = 7", "SELECT `t`.`id` FROM `t` WHERE `t`.`id` = ?"),
    ]);
}

#[rustfmt::skip]
#[test]
fn comments_whitespace_semicolons() {
    cases(&[
        ("SELECT 1 -- trailing\nFROM t", "SELECT ? FROM t"),
        ("SELECT 1 # hash\n FROM t", "SELECT ? FROM t"),
        ("/* app=web */ SELECT /* mid */ 1", "SELECT ?"),
        // Like sqlparser: `--` needs trailing whitespace to start a comment.
        ("SELECT 1 --", "SELECT ? --"),
        ("SELECT 1 /* open", "SELECT ? /* open"),
        ("SELECT /*! SQL_NO_CACHE */ 1", "SELECT /*! SQL_NO_CACHE */ ?"),
        ("/*!40101 SET NAMES utf8 */;", "/*!40101 SET NAMES utf8 */"),
        ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", "SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t"),
        ("  -- only a comment\n /* x */ ", ""),
        ("  select\t*\n\n  FROM   T  ;  ", "select * FROM T"),
        ("SELECT 1;;", "SELECT ?"),
        ("UPDATE t SET a=1; SELECT * FROM t;", "UPDATE t SET a=?; SELECT * FROM t"),
        ("", ""),
        (" ; ", ""),
    ]);
}

#[rustfmt::skip]
#[test]
fn placeholder_lists_fold() {
    cases(&[
        ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?+)"),
        ("SELECT * FROM t WHERE id IN (1)", "SELECT * FROM t WHERE id IN (?+)"),
        ("SELECT * FROM t WHERE id IN (?,?,?)", "SELECT * FROM t WHERE id IN (?+)"),
        ("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'),(3,'z')", "INSERT INTO t (a, b) VALUES (?+)"),
        ("INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT INTO t (a, b) VALUES (?+)"),
        ("INSERT INTO t VALUES (1, NOW()), (2, NOW())", "INSERT INTO t VALUES (?, NOW()), (?, NOW())"),
        ("SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4))", "SELECT * FROM t WHERE (a, b) IN ((?+))"),
        ("SELECT COUNT(*), f() FROM t WHERE x IN (-1, 2)", "SELECT COUNT(*), f() FROM t WHERE x IN (?+)"),
        // Malformed lists do not fold (the parser rejects them).
        ("SELECT * FROM t WHERE x IN (1,)", "SELECT * FROM t WHERE x IN (?,)"),
        ("SELECT * FROM t WHERE x IN (1 2)", "SELECT * FROM t WHERE x IN (? ?)"),
        ("SELECT * FROM t WHERE x IN (1 - 2)", "SELECT * FROM t WHERE x IN (? - ?)"),
    ]);
}

#[rustfmt::skip]
#[test]
fn same_shape_same_fingerprint() {
    let same = [
        ("SELECT * FROM t WHERE id = 1 AND name = 'bob'", "SELECT * FROM t WHERE id = 99 AND name = 'alice'"),
        ("UPDATE t SET c='x' WHERE id IN (1,2)", "UPDATE t SET c='yy' WHERE id IN (3,4,5,6)"),
        ("INSERT INTO t VALUES (1,'a')", "INSERT INTO t VALUES (2,'b'),(3,'c')"),
        ("SELECT 1.5e3 /* c1 */", "SELECT 0x10   -- c2"),
    ];
    for (a, b) in same {
        assert_eq!(fingerprint(a), fingerprint(b), "{a} vs {b}");
        assert_eq!(fingerprint_hash(a), fingerprint_hash(b));
    }
    let differ = [
        ("SELECT * FROM t1 WHERE id = 1", "SELECT * FROM t2 WHERE id = 1"),
        ("SELECT a FROM t WHERE id = 1", "SELECT b FROM t WHERE id = 1"),
        ("SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id > 1"),
        ("SELECT * FROM `t1`", "SELECT * FROM `t2`"),
        ("SELECT * FROM t LIMIT 1", "SELECT * FROM t"),
        ("SELECT /*!50000 1 */", "SELECT /*!50000 2 */"),
    ];
    for (a, b) in differ {
        assert_ne!(fingerprint(a), fingerprint(b), "{a} vs {b}");
        assert_ne!(fingerprint_hash(a), fingerprint_hash(b));
    }
}

#[test]
fn hash_is_stable_fnv1a() {
    // Published FNV-1a 64 test vectors.
    assert_eq!(hash_fingerprint(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(hash_fingerprint("a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn executable_comments_unwrap() {
    assert_eq!(unwrap_executable_comments("SELECT 1"), None);
    assert_eq!(unwrap_executable_comments("SELECT '/*!x*/'"), None);
    let unwrapped = unwrap_executable_comments("/*!40101 SET NAMES utf8 */;");
    assert_eq!(unwrapped.as_deref(), Some("  SET NAMES utf8  ;"));
    let open = unwrap_executable_comments("SELECT /*! 1");
    assert_eq!(open.as_deref(), Some("SELECT   1 "));
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        "'", "\"", "`", "/*", "/*!", "--", "#", "0x", "0b", "1e", "1e+", ".", "(", ")", "x'", "\\",
        "é", "(?", "?)", "((()))", ",(?),", "(?+)", "'\\",
    ];
    for s in odd {
        let _ = fingerprint(s);
        let _ = unwrap_executable_comments(s);
    }
}
