//! The one-parse rule on the new-primary path, counted with
//! `sql::parse::parses`, and the AST route giving exactly what the old
//! splice-then-parse route gave.

use super::*;
use crate::sql::classify::Classifier;
use crate::sql::parse::parses;
use crate::sql::schema::TableInfo;

fn schema() -> Schema {
    let mut s = Schema::default();
    s.insert(TableInfo::simple(
        "users",
        &[
            ("id", "int(10) unsigned", true),
            ("name", "varchar(50)", false),
            ("score", "int(11)", false),
            ("created", "datetime(3)", false),
            ("born", "date", false),
        ],
    ));
    s
}

/// The text route the translator took before: splice, parse again.
fn spliced(p: &Pinned, schema: &Schema) -> Vec<String> {
    translate::to_postgres(&p.mysql_text, schema)
        .map(|t| t.statements)
        .unwrap_or_else(|e| vec![format!("ERR {e}")])
}

fn statements(p: &Pinned) -> Vec<String> {
    match &p.translated {
        Ok(t) => t.statements.clone(),
        Err(e) => vec![format!("ERR {e}")],
    }
}

#[test]
fn insert_with_now_and_an_auto_increment_id_is_parsed_once() {
    let schema = schema();
    let classifier = Classifier::new(64);
    let sql = "INSERT INTO users (name, score, created) VALUES ('a', LAST_INSERT_ID(), NOW(3))";
    let before = parses();
    // As the pipeline does: classify (a cache miss), keep the AST, hand it on.
    let mut parsed = Parsed::new(sql);
    let classified = classifier.classify_parsed(&mut parsed);
    assert!(classified.parsed);
    let mut parsed = Parsed::resume(sql, parsed.keep());
    let pinned = pin_and_translate(&mut parsed, None, true, 42, &schema);
    assert_eq!(
        parses() - before,
        1,
        "one parse for classify + pin + translate"
    );

    let out = statements(&pinned);
    assert_eq!(out.len(), 1, "{out:?}");
    let upper = out[0].to_ascii_uppercase();
    assert!(
        !upper.contains("NOW") && !upper.contains("LAST_INSERT_ID"),
        "{out:?}"
    );
    assert!(out[0].contains("42"), "{out:?}");
    assert!(
        pinned.mysql_text.contains("TIMESTAMP'20"),
        "{}",
        pinned.mysql_text
    );
    // The auto-increment column is PostgreSQL's to number; the shape that
    // `pg_primary` asks `RETURNING "id"` from is there.
    let insert = pinned.shape.as_ref().and_then(|s| s.insert.as_ref());
    assert_eq!(insert.map(|i| i.table.as_str()), Some("users"));
    assert_eq!(out, spliced(&pinned, &schema));
}

#[test]
fn prepared_parameters_are_substituted_in_the_ast_with_one_parse() {
    let schema = schema();
    let sql =
        "UPDATE users SET name = ?, score = ?, born = ?, created = NOW() WHERE id = ? LIMIT ?";
    let params = [
        ParamValue::Bytes(b"it's a \\ test".to_vec()),
        ParamValue::Int(-5),
        ParamValue::Date(2026, 12, 4),
        ParamValue::UInt(7),
        ParamValue::Null,
    ];
    let before = parses();
    let pinned = pin_and_translate(&mut Parsed::new(sql), Some(&params), true, 0, &schema);
    assert_eq!(parses() - before, 1);
    let out = statements(&pinned);
    assert!(!out[0].contains('?') && !out[0].contains('$'), "{out:?}");
    assert_eq!(out, spliced(&pinned, &schema));
}

#[test]
fn reads_are_not_pinned_and_keep_their_calls() {
    let schema = schema();
    let sql = "SELECT name, NOW() FROM users WHERE id = ?";
    let before = parses();
    let pinned = pin_and_translate(
        &mut Parsed::new(sql),
        Some(&[ParamValue::Int(3)]),
        false,
        0,
        &schema,
    );
    assert_eq!(parses() - before, 1);
    assert_eq!(statements(&pinned), spliced(&pinned, &schema));
}

#[test]
fn an_edit_the_ast_cannot_take_falls_back_to_the_spliced_text() {
    // The placeholder lies inside a pinned call: the splice keeps the call's
    // value and drops the inner edit; the AST route cannot place that edit,
    // so it translates the spliced text (a second parse) — same answer.
    let schema = schema();
    let sql = "UPDATE users SET score = RAND(?) WHERE id = 1";
    let before = parses();
    let pinned = pin_and_translate(
        &mut Parsed::new(sql),
        Some(&[ParamValue::Int(9)]),
        true,
        0,
        &schema,
    );
    assert_eq!(parses() - before, 2);
    assert!(!pinned.mysql_text.contains("RAND"), "{}", pinned.mysql_text);
    assert_eq!(statements(&pinned), spliced(&pinned, &schema));
}

#[test]
fn every_pin_kind_and_layout_gives_the_spliced_answer_with_one_parse() {
    let schema = schema();
    for sql in [
        "INSERT INTO users (name, created, born) VALUES (UUID(), CURRENT_TIMESTAMP, CURDATE())",
        "UPDATE users\n  SET created = NOW(6),\n      score = UNIX_TIMESTAMP()\n WHERE name = 'é€'",
        "INSERT INTO users (name) VALUES ('x'); UPDATE users SET born = UTC_DATE() WHERE id = LAST_INSERT_ID()",
        "DELETE FROM users WHERE created < SYSDATE() ORDER BY id LIMIT 10",
        "INSERT INTO users (name, score) VALUES ('a', 1), ('b', RAND()) ON DUPLICATE KEY UPDATE created = NOW()",
    ] {
        let before = parses();
        let pinned = pin_and_translate(&mut Parsed::new(sql), None, true, 5, &schema);
        assert_eq!(parses() - before, 1, "{sql}");
        assert_ne!(pinned.mysql_text, sql, "nothing pinned in {sql}");
        assert!(pinned.translated.is_ok(), "{sql}: {:?}", pinned.translated);
        assert_eq!(statements(&pinned), spliced(&pinned, &schema), "{sql}");
    }
}
