//! A backfill checkpoint belongs to the physical target table: a table
//! dropped and created again, or truncated, on the new side is copied again
//! instead of being reported "already complete".

use super::support::*;

fn count(env: &Env) -> String {
    env.pg("SELECT count(*) FROM t").trim().to_string()
}

#[test]
fn recreated_or_truncated_target_table_is_copied_again() {
    let env = Env::new("mig_ident");
    env.my(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
         INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_700;",
    );
    env.tandem(&["schema", "--apply"]).expect_code(0);
    env.tandem(&["backfill", "--chunk-rows", "200"])
        .expect_code(0);
    assert_eq!(count(&env), "700");
    // A second run trusts the checkpoint: the table is still the same one.
    let again = env.tandem(&["backfill"]);
    again.expect_code(0);
    assert!(again.stdout.contains("already"), "{}", again.stdout);
    assert!(
        !again.stderr.contains("no longer applies"),
        "{}",
        again.stderr
    );

    // Dropped and created again (empty) on the new side.
    env.pg("DROP TABLE t");
    env.tandem(&["schema", "--apply"]).expect_code(0);
    assert_eq!(count(&env), "0");
    let check = env.tandem(&["cutover-check"]);
    assert!(
        check
            .stdout
            .contains("backfill: not complete for t (recreated or truncated since)"),
        "{}",
        check.stdout
    );
    let run = env.tandem(&["backfill", "--chunk-rows", "200"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("checkpoint no longer applies")
            && run
                .stderr
                .contains("dropped and created again, or truncated"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("t: copied: 700 rows read, 700 inserted"),
        "{}",
        run.stdout
    );
    assert_eq!(count(&env), "700");
    env.tandem(&["verify"]).expect_code(0);

    // TRUNCATE keeps the oid but gives the table a new relfilenode; a few
    // rows written after it (as dual writes would) do not hide the loss.
    env.pg("TRUNCATE t; INSERT INTO t VALUES (5, 'v5')");
    let run = env.tandem(&["backfill"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("checkpoint no longer applies"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("t: copied: 700 rows read, 699 inserted, 1 already present"),
        "{}",
        run.stdout
    );
    env.tandem(&["verify"]).expect_code(0);

    // A checkpoint without a recorded identity (written by an older Tandem):
    // an empty target while the source has rows still means "copy again".
    env.pg("UPDATE tandem_backfill_checkpoint SET target_id = NULL; TRUNCATE t");
    let run = env.tandem(&["backfill"]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("the target table is empty while the source is not"),
        "{}",
        run.stderr
    );
    assert_eq!(count(&env), "700");
    env.tandem(&["verify"]).expect_code(0);
    // And the identity is recorded again: a further run trusts it.
    assert_ne!(
        env.pg("SELECT target_id FROM tandem_backfill_checkpoint WHERE table_name = 't'")
            .trim(),
        ""
    );
    let again = env.tandem(&["backfill"]);
    assert!(again.stdout.contains("already"), "{}", again.stdout);
}

/// The same on a MySQL new side (MariaDB → MariaDB): CREATE_TIME and the
/// emptiness probe stand in for PostgreSQL's relfilenode.
#[test]
fn mysql_target_recreated_or_truncated_is_copied_again() {
    use super::common::servers;
    let env = Env::new("mig_ident_my");
    let target = servers::mariadb().create_database("mig_ident_my_new");
    std::fs::write(
        &env.config,
        format!(
            "[[users]]\nname = \"app\"\npassword = \"x\"\n\
             [backends.old]\nkind = \"mysql\"\nurl = \"{}\"\n\
             [backends.new]\nkind = \"mysql\"\nurl = \"{}\"\n",
            env.my_url(),
            servers::mariadb().url(&target)
        ),
    )
    .unwrap();
    let new_side = |sql: &str| servers::mariadb().root_sql(&format!("USE `{target}`;\n{sql}"));
    env.my("CREATE TABLE z_parent (id INT PRIMARY KEY);
         CREATE TABLE t (id INT PRIMARY KEY, p_id INT, FOREIGN KEY (p_id) REFERENCES z_parent (id));
         INSERT INTO z_parent SELECT seq FROM seq_1_to_10;
         INSERT INTO t SELECT seq, seq % 10 + 1 FROM seq_1_to_300;");
    // Name order puts the child first: created with checks off.
    env.tandem(&["schema", "--apply"]).expect_code(0);
    env.tandem(&["backfill"]).expect_code(0);
    assert_eq!(new_side("SELECT COUNT(*) FROM t").trim(), "300");

    new_side("SET FOREIGN_KEY_CHECKS = 0; DROP TABLE t;");
    env.tandem(&["schema", "--apply"]).expect_code(0);
    let run = env.tandem(&["backfill"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("checkpoint no longer applies"),
        "{}",
        run.stderr
    );
    assert_eq!(new_side("SELECT COUNT(*) FROM t").trim(), "300");

    new_side("TRUNCATE t");
    let run = env.tandem(&["backfill"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("checkpoint no longer applies"),
        "{}",
        run.stderr
    );
    assert_eq!(new_side("SELECT COUNT(*) FROM t").trim(), "300");
    env.tandem(&["verify"]).expect_code(0);
}
