//! Foreign keys on a PostgreSQL new side: `schema --apply` creates tables
//! first and holds the keys back, `backfill` adds them (NOT VALID, then
//! VALIDATE) once every table is copied; self-references and cycles work,
//! a violation is reported with its table and constraint.

use super::support::*;

/// users ↔ orders form a cycle, order_items → orders, categories → itself
/// (created in name order, as a dump would, with checks off).
const SHOP_DDL: &str = "SET FOREIGN_KEY_CHECKS = 0;
CREATE TABLE categories (id INT PRIMARY KEY, parent_id INT NULL, name VARCHAR(20),
  FOREIGN KEY (parent_id) REFERENCES categories (id));
CREATE TABLE order_items (id INT PRIMARY KEY, order_id INT NOT NULL, sku VARCHAR(20),
  FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE);
CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, total DECIMAL(10,2),
  FOREIGN KEY (user_id) REFERENCES users (id));
CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, best_order_id INT NULL,
  CONSTRAINT users_best_order FOREIGN KEY (best_order_id) REFERENCES orders (id) ON DELETE SET NULL);";

/// Rows in child-before-parent order; categories point forwards and back.
const SHOP_ROWS: &str = "SET FOREIGN_KEY_CHECKS = 0;
INSERT INTO order_items SELECT seq, seq % 400 + 1, CONCAT('sku', seq) FROM seq_1_to_1000;
INSERT INTO orders SELECT seq, seq % 60 + 1, seq * 1.25 FROM seq_1_to_400;
INSERT INTO users SELECT seq, CONCAT('u', seq), IF(seq % 3 = 0, seq * 2, NULL) FROM seq_1_to_60;
INSERT INTO categories SELECT seq, IF(seq = 1, NULL, IF(seq % 2 = 0, seq + 1, seq DIV 2)), CONCAT('c', seq)
  FROM seq_1_to_41;";

/// `table.constraint -> referenced (validated)` of every foreign key.
fn pg_fks(env: &Env) -> Vec<String> {
    env.pg(
        "SELECT conrelid::regclass || '.' || conname || ' -> ' || confrelid::regclass || ' ' || convalidated \
         FROM pg_constraint WHERE contype = 'f' ORDER BY 1",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn schema_then_backfill_adds_foreign_keys_after_the_rows() {
    let env = Env::new("mig_fk");
    env.my(SHOP_DDL);
    env.my(SHOP_ROWS);
    let applied = env.tandem(&["schema", "--apply"]);
    applied.expect_code(0);
    assert!(
        applied
            .stdout
            .contains("foreign key orders.orders_ibfk_1 -> users: pending"),
        "{}",
        applied.stdout
    );
    // Tables and indexes exist, no foreign key yet.
    assert_eq!(
        env.pg("SELECT count(*) FROM pg_class WHERE relname IN ('users','orders','order_items','categories') AND relkind = 'r'")
            .trim(),
        "4"
    );
    assert!(pg_fks(&env).is_empty(), "{:?}", pg_fks(&env));
    let check = env.tandem(&["cutover-check"]);
    assert!(
        check.stdout.contains("MISSING foreign keys: 4 pending"),
        "{}",
        check.stdout
    );

    // Only some tables copied: the keys keep waiting.
    let partial = env.tandem(&[
        "backfill",
        "--tables",
        "order_items,categories",
        "--chunk-rows",
        "97",
    ]);
    partial.expect_code(0);
    assert!(
        partial.stdout.contains(
            "foreign keys: 4 pending until every table is copied (not yet: orders, users)"
        ),
        "{}",
        partial.stdout
    );
    assert!(pg_fks(&env).is_empty());

    // Children were copied before their parents; the keys come after.
    let run = env.tandem(&["backfill", "--chunk-rows", "97"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout.matches("added and validated").count(),
        4,
        "{}",
        run.stdout
    );
    assert_eq!(
        pg_fks(&env),
        [
            "categories.categories_ibfk_1 -> categories true",
            "order_items.order_items_ibfk_1 -> orders true",
            "orders.orders_ibfk_1 -> users true",
            "users.users_best_order -> orders true",
        ]
    );
    // ON DELETE actions carried over.
    assert_eq!(
        env.pg("SELECT confdeltype FROM pg_constraint WHERE conname = 'order_items_ibfk_1'")
            .trim(),
        "c"
    );
    assert_eq!(
        env.pg("SELECT count(*) FROM tandem_pending_foreign_keys")
            .trim(),
        "0"
    );
    env.tandem(&["verify"]).expect_code(0);
    let check = env.tandem(&["cutover-check"]);
    assert!(
        check.stdout.contains("OK      foreign keys: none pending"),
        "{}",
        check.stdout
    );
    // Enforced now: an orphan is refused by PostgreSQL.
    let err = super::common::servers::postgres()
        .try_sql(&env.pg, "INSERT INTO order_items VALUES (5000, 99999, 'x')")
        .unwrap_err();
    assert!(err.contains("order_items_ibfk_1"), "{err}");
}

#[test]
fn a_violated_foreign_key_is_reported_and_stays_pending() {
    let env = Env::new("mig_fk_bad");
    env.my(
        "CREATE TABLE parent (id INT PRIMARY KEY);
         CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) REFERENCES parent (id));
         INSERT INTO parent VALUES (1), (2);
         SET FOREIGN_KEY_CHECKS = 0;
         INSERT INTO child VALUES (1, 1), (2, 99);",
    );
    env.tandem(&["schema", "--apply"]).expect_code(0);
    let run = env.tandem(&["backfill"]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("foreign key child.child_ibfk_1 -> parent: VIOLATED: table child, constraint child_ibfk_1")
            && run.stdout.contains("Key (parent_id)=(99) is not present in table \"parent\""),
        "{}",
        run.stdout
    );
    // Not left half-added; still pending, with the reason.
    assert!(pg_fks(&env).is_empty(), "{:?}", pg_fks(&env));
    let check = env.tandem(&["cutover-check"]);
    assert!(
        check
            .stdout
            .contains("foreign keys: 1 pending: child.child_ibfk_1 -> parent (VIOLATED"),
        "{}",
        check.stdout
    );
    // Fixed on the old side and repaired: the next backfill adds it.
    env.my("INSERT INTO parent VALUES (99)");
    env.tandem(&["verify", "--repair"]).expect_code(0);
    let run = env.tandem(&["backfill"]);
    run.expect_code(0);
    assert_eq!(pg_fks(&env), ["child.child_ibfk_1 -> parent true"]);
}

#[test]
fn foreign_keys_now_on_an_empty_database() {
    let env = Env::new("mig_fk_now");
    env.my(SHOP_DDL);
    let applied = env.tandem(&["schema", "--apply", "--foreign-keys", "now"]);
    applied.expect_code(0);
    assert_eq!(pg_fks(&env).len(), 4, "{}", applied.stdout);
    assert!(pg_fks(&env).iter().all(|f| f.ends_with(" true")));
}
