//! Unit tests for the parts of the PostgreSQL-authoritative side that are
//! decided from the statement text alone (no server): which SET / USE is
//! applied, acknowledged or refused, the PostgreSQL text of transaction
//! statements, and which `SELECT @@…` the proxy answers itself and with
//! what. The paths that talk to PostgreSQL are covered by
//! `tests/new_primary.rs` and `tests/pg_mysql.rs`.

use super::{session_action, transaction_sql, SessionAction};
use crate::frontend::mysql::pg_vars::{default_value, system_variables};
use crate::sql::classify::{Classifier, StatementClass, TxnOp};

fn vars(sql: &str) -> Vec<(String, String)> {
    system_variables(sql).unwrap_or_else(|| panic!("{sql:?} should be answered by the proxy"))
}

fn pair(var: &str, label: &str) -> (String, String) {
    (var.to_string(), label.to_string())
}

#[test]
fn use_names_the_schema_without_quotes_or_semicolon() {
    assert_eq!(
        session_action("USE shop"),
        SessionAction::Use("shop".into())
    );
    assert_eq!(
        session_action("use `Shop`"),
        SessionAction::Use("Shop".into())
    );
    assert_eq!(
        session_action("  USE shop ;  "),
        SessionAction::Use("shop".into())
    );
    assert_eq!(
        session_action("USE shop;"),
        SessionAction::Use("shop".into())
    );
}

#[test]
fn autocommit_forms_are_recognised() {
    for on in [
        "SET autocommit=1",
        "set autocommit = ON",
        "SET SESSION autocommit = true",
        "SET @@session.autocommit=1;",
        "SET @@autocommit = 1",
    ] {
        assert_eq!(session_action(on), SessionAction::Autocommit(true), "{on}");
    }
    for off in [
        "SET autocommit=0",
        "SET autocommit = OFF",
        "set @@SESSION.autocommit = false",
    ] {
        assert_eq!(
            session_action(off),
            SessionAction::Autocommit(false),
            "{off}"
        );
    }
}

#[test]
fn harmless_sets_are_acknowledged() {
    for sql in [
        "SET NAMES utf8mb4",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "SET CHARACTER SET utf8",
        "SET sql_mode = 'STRICT_ALL_TABLES'",
        "SET SESSION sql_mode='ANSI_QUOTES'",
        "SET @@session.sql_mode = ''",
        "SET time_zone = '+00:00'",
        "SET character_set_results = NULL",
        "SET collation_connection = utf8mb4_bin",
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET TRANSACTION READ ONLY",
    ] {
        assert_eq!(session_action(sql), SessionAction::Acknowledge, "{sql}");
    }
}

#[test]
fn other_sets_are_refused() {
    for sql in [
        "SET @x = 1",
        "SET foreign_key_checks = 0",
        "SET GLOBAL max_connections = 10",
        "SET autocommitx = 1",
        "SET",
        "",
    ] {
        assert_eq!(session_action(sql), SessionAction::Refuse, "{sql:?}");
    }
}

#[test]
fn transaction_statements_get_postgres_text() {
    assert_eq!(
        transaction_sql(Some(TxnOp::Begin), "START TRANSACTION"),
        "BEGIN"
    );
    assert_eq!(
        transaction_sql(Some(TxnOp::Commit), "commit work"),
        "COMMIT"
    );
    assert_eq!(
        transaction_sql(Some(TxnOp::Rollback), "ROLLBACK"),
        "ROLLBACK"
    );
    assert_eq!(
        transaction_sql(Some(TxnOp::Savepoint), "SAVEPOINT `sp 1`"),
        "SAVEPOINT \"sp 1\""
    );
    assert_eq!(
        transaction_sql(Some(TxnOp::RollbackToSavepoint), "ROLLBACK TO SAVEPOINT sp"),
        "ROLLBACK TO SAVEPOINT sp"
    );
    assert_eq!(
        transaction_sql(None, "RELEASE SAVEPOINT `a`"),
        "RELEASE SAVEPOINT \"a\""
    );
}

#[test]
fn classified_transaction_statements_map_through() {
    let classifier = Classifier::new(0);
    for (sql, want) in [
        ("BEGIN", "BEGIN"),
        ("START TRANSACTION", "BEGIN"),
        ("COMMIT", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
    ] {
        let c = classifier.classify(sql);
        assert_eq!(c.class, StatementClass::Transaction, "{sql}");
        let op = c.statements.first().and_then(|s| s.txn);
        assert_eq!(transaction_sql(op, sql), want, "{sql}");
    }
}

#[test]
fn connect_time_variable_selects_are_answered() {
    // What the mariadb CLI, PyMySQL and mysql-connector ask at connect.
    assert_eq!(
        vars("select @@version_comment limit 1"),
        vec![pair("version_comment", "@@version_comment")]
    );
    assert_eq!(
        vars("SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS `cs`, @@GLOBAL.max_allowed_packet"),
        vec![
            pair("auto_increment_increment", "auto_increment_increment"),
            pair("character_set_client", "cs"),
            pair("max_allowed_packet", "@@GLOBAL.max_allowed_packet"),
        ]
    );
    assert_eq!(
        vars("SELECT @@version FROM DUAL LIMIT 1"),
        vec![pair("version", "@@version")]
    );
    assert_eq!(
        vars("SELECT @@Tx_Isolation tx;"),
        vec![pair("tx_isolation", "tx")]
    );
}

#[test]
fn other_selects_go_to_postgres() {
    for sql in [
        "SELECT 1",
        "SELECT @@version, 1",
        "SELECT @@",
        "SELECT @@a-b",
        "SELECT @@version FROM t",
        "SELECT @@version LIMIT 1 OFFSET 2",
        "SELECT @x",
        "SELECT",
        "SELEC @@version",
        "",
    ] {
        assert_eq!(system_variables(sql), None, "{sql:?}");
    }
}

#[test]
fn variable_selects_never_panic_on_odd_text() {
    for sql in [
        "SELECT é",
        "SELECTé@@a",
        "SELECT @@é",
        "séléct @@a",
        "SELECT @@a AS",
        "SELECT ,,",
    ] {
        let _ = system_variables(sql);
        let _ = session_action(sql);
    }
}

#[test]
fn defaults_cover_what_drivers_read() {
    assert_eq!(default_value("max_allowed_packet"), Some("16777216"));
    assert_eq!(
        default_value("wait_timeout"),
        default_value("interactive_timeout")
    );
    assert_eq!(default_value("tx_isolation"), Some("READ-COMMITTED"));
    assert_eq!(default_value("character_set_results"), Some("utf8mb4"));
    assert!(default_value("version_comment").is_some_and(|v| v.contains("PostgreSQL")));
    assert_eq!(default_value("no_such_variable"), None);
}
