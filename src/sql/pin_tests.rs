//! Pinning tests: which calls are pinned, and the rewritten statement.

use super::*;

fn pins(sql: &str) -> Vec<(String, PinKind)> {
    analyze(sql)
        .unwrap()
        .pins
        .into_iter()
        .map(|p| (sql[p.range].to_string(), p.kind))
        .collect()
}

#[test]
fn finds_calls_with_their_parentheses() {
    let sql = "INSERT INTO t (a, b, c) VALUES (NOW(), UUID( ), CURRENT_TIMESTAMP)";
    assert_eq!(
        pins(sql),
        vec![
            ("NOW()".into(), PinKind::DateTime),
            ("UUID( )".into(), PinKind::Str),
            ("CURRENT_TIMESTAMP".into(), PinKind::DateTime)
        ]
    );
    let sql = "UPDATE t SET at = now(6), r = RAND(), d = CURDATE(),\n u = UNIX_TIMESTAMP() WHERE id = LAST_INSERT_ID()";
    let found = pins(sql);
    assert_eq!(found[0].0, "now(6)");
    assert_eq!(found[1].0, "RAND()");
    assert_eq!(found[2], ("CURDATE()".into(), PinKind::Date));
    assert_eq!(found[3], ("UNIX_TIMESTAMP()".into(), PinKind::Number));
    assert_eq!(found[4].0, "LAST_INSERT_ID()");
}

#[test]
fn deterministic_calls_are_left_alone() {
    assert!(
        pins("UPDATE t SET a = UNIX_TIMESTAMP('2024-01-01'), b = LAST_INSERT_ID(5)").is_empty()
    );
    assert!(pins("INSERT INTO t VALUES (CONCAT('a', 'b'), 'NOW()')").is_empty());
}

#[test]
fn unicode_before_a_call_keeps_byte_offsets_right() {
    let sql = "INSERT INTO t (a, b) VALUES ('ünïcødé ✓', NOW())";
    assert_eq!(pins(sql)[0].0, "NOW()");
}

#[test]
fn placeholders_in_order() {
    let sql = "UPDATE t SET a = ?, b = 'x?' WHERE id = ? LIMIT ?";
    let s = analyze(sql).unwrap();
    let texts: Vec<&str> = s.placeholders.iter().map(|r| &sql[r.clone()]).collect();
    assert_eq!(texts, vec!["?", "?", "?"]);
    assert!(s.placeholders[0].start < s.placeholders[1].start);
}

#[test]
fn multi_statement_inserts_are_listed() {
    let shape = analyze(
        "INSERT INTO a (x) VALUES (1); SELECT LAST_INSERT_ID(); REPLACE INTO `b` VALUES (2)",
    )
    .unwrap();
    assert!(shape.multi);
    assert!(shape.insert.is_none());
    assert_eq!(shape.multi_inserts, vec!["a", "b"]);
    assert!(analyze("INSERT INTO a (x) VALUES (1)")
        .unwrap()
        .multi_inserts
        .is_empty());
}

#[test]
fn insert_shape_has_columns_and_rows() {
    let sql = "INSERT INTO `orders` (`customer`, total) VALUES (1, 2.5), (3, NULL)";
    let ins = analyze(sql).unwrap().insert.unwrap();
    assert_eq!(ins.table, "orders");
    assert_eq!(ins.columns, vec!["customer", "total"]);
    assert_eq!(&sql[ins.first_column_at.unwrap()..][..10], "`customer`");
    assert_eq!(ins.rows.len(), 2);
    assert_eq!(&sql[ins.rows[1][1].clone()], "NULL");
    assert_eq!(&sql[ins.row_starts[1]..][..1], "3");
    assert!(!ins.on_duplicate_key_update);
}

#[test]
fn ddl_defaults_are_not_pinned() {
    // A column default is evaluated per row later: pinning it would
    // change the primary's schema to a fixed value.
    let s = analyze("CREATE TABLE t (id INT, ts DATETIME DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, u CHAR(36) DEFAULT (UUID()))").unwrap();
    assert!(s.pins.is_empty(), "{:?}", s.pins);
    let s = analyze("ALTER TABLE t ADD COLUMN at DATETIME DEFAULT NOW()").unwrap();
    assert!(s.pins.is_empty(), "{:?}", s.pins);
    assert_eq!(pins("INSERT INTO t (ts) VALUES (NOW())").len(), 1);
}

#[test]
fn returning_clause_is_found_whole() {
    for (sql, clause) in [
        (
            "INSERT INTO p (name) VALUES ('a'), ('b') RETURNING p.id",
            "RETURNING p.id",
        ),
        (
            "REPLACE INTO p (id, name) VALUES (1, 'x') returning id, name AS n",
            "returning id, name AS n",
        ),
        ("DELETE FROM p WHERE id > 3 RETURNING id", "RETURNING id"),
    ] {
        let shape = analyze(sql).unwrap();
        let r = shape.returning.expect(sql).range.expect(sql);
        assert_eq!(&sql[r], clause);
    }
    assert!(analyze("INSERT INTO p VALUES (1)")
        .unwrap()
        .returning
        .is_none());
}

#[test]
fn edits_replace_and_insert() {
    let sql = "INSERT INTO t (a) VALUES (NOW())";
    let s = analyze(sql).unwrap();
    let p = &s.pins[0];
    let ins = s.insert.unwrap();
    let out = apply_edits(
        sql,
        vec![
            (
                p.range.clone(),
                literal(p.kind, Some("2024-01-01 10:00:00")),
            ),
            (
                ins.first_column_at.unwrap()..ins.first_column_at.unwrap(),
                "id, ".into(),
            ),
            (ins.row_starts[0]..ins.row_starts[0], "7, ".into()),
        ],
    );
    assert_eq!(
        out,
        "INSERT INTO t (id, a) VALUES (7, TIMESTAMP'2024-01-01 10:00:00')"
    );
}

#[test]
fn literals() {
    assert_eq!(literal(PinKind::Str, Some("it's")), "'it''s'");
    assert_eq!(quote_string(b"a\\b\0", true), "'a\\\\b\\0'");
    assert_eq!(quote_string(b"a\\b", false), "'a\\b'");
    assert_eq!(quote_string(&[0xff, 0x00], true), "X'FF00'");
    assert_eq!(literal(PinKind::Number, Some("0.5")), "0.5");
    assert_eq!(literal(PinKind::Number, Some("1; DROP")), "'1; DROP'");
    assert_eq!(literal(PinKind::Date, None), "NULL");
}
