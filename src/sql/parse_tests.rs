//! Parses counted along the paths a statement takes after classification:
//! a routed read, a statement-mirror write, a cached fingerprint.

use super::{parses, Parsed};
use crate::sql::classify::Classifier;
use crate::sql::pin;
use crate::sql::schema::{ColumnInfo, Schema, TableInfo};
use crate::sql::translate;

fn schema() -> Schema {
    let col = |name: &str, ty: &str| ColumnInfo {
        name: name.into(),
        column_type: ty.into(),
        nullable: true,
        auto_increment: false,
    };
    let mut s = Schema::default();
    s.insert(TableInfo {
        name: "t".into(),
        columns: vec![
            col("id", "int"),
            col("a", "tinyint(1)"),
            col("at", "datetime"),
        ],
        primary_key: vec!["id".into()],
        unique_keys: vec![],
    });
    s
}

#[test]
fn a_read_routed_to_postgres_after_a_cache_miss_is_parsed_once() {
    let schema = schema();
    let classifier = Classifier::new(64);
    let sql = "SELECT id, IF(a, 'y', 'n') FROM t WHERE at > NOW() ORDER BY id LIMIT 5, 10";
    let before = parses();
    // `pipeline::classify_keeping_ast`, then `reads::try_new`.
    let mut parsed = Parsed::new(sql);
    classifier.classify_parsed(&mut parsed);
    let ast = parsed.keep();
    let translated = translate::to_postgres_parsed(&mut Parsed::resume(sql, ast), &schema, &[]);
    assert_eq!(parses() - before, 1);
    let translated = translated.expect("translates");
    assert_eq!(
        translated.statements,
        translate::to_postgres(sql, &schema)
            .expect("translates")
            .statements
    );
}

#[test]
fn a_cached_fingerprint_is_classified_without_parsing() {
    let classifier = Classifier::new(64);
    classifier.classify("UPDATE t SET a = 1 WHERE id = 2");
    let before = parses();
    let mut parsed = Parsed::new("UPDATE t SET a = 7 WHERE id = 99");
    let classified = classifier.classify_parsed(&mut parsed);
    assert_eq!(parses() - before, 0);
    assert!(classified.parsed);
    assert!(!parsed.is_parsed() && parsed.keep().is_none());
    classifier.classify("UPDATE t SET a = 3 WHERE id = 4");
    assert_eq!(parses() - before, 0);
}

#[test]
fn a_statement_mirror_update_with_now_parses_once_per_side() {
    // The session: classification (a miss) and pin analysis share one parse
    // (`write::query_as` → `dualwrite::statement::plan`).
    let classifier = Classifier::new(64);
    let sql = "UPDATE t SET at = NOW(), a = 1 WHERE id = 3";
    let before = parses();
    let mut parsed = Parsed::new(sql);
    classifier.classify_parsed(&mut parsed);
    let mut parsed = Parsed::resume(sql, parsed.keep());
    let shape = pin::analyze_parsed(&mut parsed).expect("analyzed");
    assert_eq!(parses() - before, 1);
    let [p] = shape.pins.as_slice() else {
        panic!("{:?}", shape.pins)
    };
    // The applier: the queued, pinned MySQL text is translated there, with
    // the schema as of that point of the queue (earlier DDL applied), and
    // parsed once more; the queue carries text, whose bytes bound it.
    let pinned = pin::apply_edits(
        sql,
        vec![(
            p.range.clone(),
            pin::literal(p.kind, Some("2026-12-04 17:00:00")),
        )],
    );
    let before = parses();
    let out = translate::to_postgres(&pinned, &schema()).expect("translates");
    assert_eq!(parses() - before, 1);
    assert!(out.statements[0].contains("2026-12-04 17:00:00"), "{out:?}");
}

#[test]
fn executable_comments_are_classified_on_their_own_parse() {
    // Classification reads the body of `/*! … */`, pin and translate the text
    // as written: two different texts, two parses, each step as before.
    let classifier = Classifier::new(64);
    let sql = "UPDATE t SET a = 1 /*!50000 , at = NOW() */ WHERE id = 1";
    let before = parses();
    let mut parsed = Parsed::new(sql);
    classifier.classify_parsed(&mut parsed);
    assert!(!parsed.is_parsed());
    assert_eq!(parses() - before, 1);
}
