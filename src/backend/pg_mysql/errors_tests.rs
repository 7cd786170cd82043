//! Inputs are PostgreSQL 15's own reports for the situations; expected
//! messages follow MariaDB 10.11's wording.

use super::*;

const CTX: ErrorContext<'static> = ErrorContext { schema: "shop" };

fn map(f: ErrorFields<'_>) -> (u16, String, String) {
    let e = map_fields(&f, CTX);
    (e.code, e.state_str().to_string(), e.message)
}

fn fields<'a>(code: &'a str, message: &'a str) -> ErrorFields<'a> {
    ErrorFields {
        code,
        message,
        ..Default::default()
    }
}

#[test]
fn unique_violation_names_entry_and_key() {
    let pk = ErrorFields {
        detail: Some("Key (id)=(1) already exists."),
        table: Some("t"),
        constraint: Some("t_pkey"),
        ..fields(
            "23505",
            "duplicate key value violates unique constraint \"t_pkey\"",
        )
    };
    assert_eq!(
        map(pk),
        (
            1062,
            "23000".into(),
            "Duplicate entry '1' for key 'PRIMARY'".into()
        )
    );
    let uk = ErrorFields {
        detail: Some("Key (email)=(a@x.org) already exists."),
        table: Some("users"),
        constraint: Some("users_email_key"),
        ..fields(
            "23505",
            "duplicate key value violates unique constraint \"users_email_key\"",
        )
    };
    assert_eq!(map(uk).2, "Duplicate entry 'a@x.org' for key 'email'");
    let two = ErrorFields {
        detail: Some("Key (a, b)=(1, x) already exists."),
        table: Some("t"),
        constraint: Some("uniq_ab"),
        ..fields(
            "23505",
            "duplicate key value violates unique constraint \"uniq_ab\"",
        )
    };
    assert_eq!(map(two).2, "Duplicate entry '1-x' for key 'uniq_ab'");
}

#[test]
fn foreign_keys_child_and_parent() {
    let child = ErrorFields {
        detail: Some("Key (pid)=(5) is not present in table \"p\"."),
        table: Some("ch"),
        constraint: Some("fk1"),
        ..fields(
            "23503",
            "insert or update on table \"ch\" violates foreign key constraint \"fk1\"",
        )
    };
    assert_eq!(
        map(child),
        (
            1452,
            "23000".into(),
            "Cannot add or update a child row: a foreign key constraint fails (`shop`.`ch`, CONSTRAINT `fk1` FOREIGN KEY (`pid`))".into()
        )
    );
    let parent = ErrorFields {
        detail: Some("Key (id)=(1) is still referenced from table \"ch\"."),
        table: Some("ch"),
        constraint: Some("fk1"),
        ..fields("23503", "update or delete on table \"p\" violates foreign key constraint \"fk1\" on table \"ch\"")
    };
    assert_eq!(map(parent).0, 1451);
}

#[test]
fn codes_and_states() {
    let cases: &[(ErrorFields<'_>, u16, &str, &str)] = &[
        (
            ErrorFields {
                column: Some("bi"),
                table: Some("t"),
                ..fields("23502", "null value in column \"bi\" of relation \"t\" violates not-null constraint")
            },
            1048,
            "23000",
            "Column 'bi' cannot be null",
        ),
        (
            ErrorFields {
                table: Some("ch"),
                constraint: Some("ch_n_check"),
                ..fields("23514", "new row for relation \"ch\" violates check constraint \"ch_n_check\"")
            },
            4025,
            "23000",
            "CONSTRAINT `ch_n_check` failed for `shop`.`ch`",
        ),
        (
            fields("42P01", "relation \"nosuch\" does not exist"),
            1146,
            "42S02",
            "Table 'shop.nosuch' doesn't exist",
        ),
        (
            fields("42703", "column \"nosuch\" does not exist"),
            1054,
            "42S22",
            "Unknown column 'nosuch' in 'field list'",
        ),
        (
            fields("42703", "column t.nosuch does not exist"),
            1054,
            "42S22",
            "Unknown column 't.nosuch' in 'field list'",
        ),
        (
            fields("42601", "syntax error at or near \"SELEC\""),
            1064,
            "42000",
            "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'SELEC' at line 1",
        ),
        (
            fields("40001", "could not serialize access due to concurrent update"),
            1213,
            "40001",
            "Deadlock found when trying to get lock; try restarting transaction",
        ),
        (fields("40P01", "deadlock detected"), 1213, "40001", "Deadlock found when trying to get lock; try restarting transaction"),
        (
            fields("55P03", "canceling statement due to lock timeout"),
            1205,
            "HY000",
            "Lock wait timeout exceeded; try restarting transaction",
        ),
        (
            fields("57014", "canceling statement due to lock timeout"),
            1205,
            "HY000",
            "Lock wait timeout exceeded; try restarting transaction",
        ),
        (
            fields("57014", "canceling statement due to user request"),
            1317,
            "70100",
            "Query execution was interrupted",
        ),
        (fields("22012", "division by zero"), 1365, "22012", "Division by 0"),
        (
            fields("22001", "value too long for type character varying(5)"),
            1406,
            "22001",
            "Data too long (value too long for type character varying(5))",
        ),
        (
            fields("22003", "smallint out of range"),
            1264,
            "22003",
            "Out of range value (smallint out of range)",
        ),
        (
            fields("42P07", "relation \"t\" already exists"),
            1050,
            "42S01",
            "Table 't' already exists",
        ),
        (
            fields("25P02", "current transaction is aborted, commands ignored until end of transaction block"),
            1105,
            "HY000",
            "current transaction is aborted, commands ignored until end of transaction block",
        ),
        (
            fields("42601", "cannot insert multiple commands into a prepared statement"),
            1064,
            "42000",
            "You have an error in your SQL syntax: cannot insert multiple commands into a prepared statement",
        ),
        (fields("XX000", "internal"), 1105, "HY000", "internal"),
    ];
    for (f, code, state, message) in cases {
        assert_eq!(
            map(*f),
            (*code, state.to_string(), message.to_string()),
            "{}",
            f.code
        );
    }
}

#[test]
fn odd_reports_do_not_panic() {
    for detail in [
        "",
        "Key (",
        "Key (a)=(",
        "Key ()=()",
        "Key (a, b)=(1) already exists.",
    ] {
        let f = ErrorFields {
            detail: Some(detail),
            constraint: Some("c"),
            ..fields("23505", "\"")
        };
        assert_eq!(map(f).0, 1062);
        let f = ErrorFields {
            detail: Some(detail),
            ..fields("23503", "")
        };
        assert_eq!(map(f).0, 1452);
    }
    assert_eq!(
        map(fields("42P01", "relation")).2,
        "Table 'shop.' doesn't exist"
    );
    assert_eq!(map(fields("42703", "x")).0, 1054);
}
