//! `tandem backfill`, `verify [--repair]`, `cutover-check` (and `schema`)
//! against a real MariaDB and PostgreSQL, through the real binary.

mod common;
#[path = "migrate/foreign_keys.rs"]
mod foreign_keys;
#[path = "migrate/identity.rs"]
mod identity;
#[path = "migrate/independent.rs"]
mod independent;
#[path = "migrate/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use independent::*;
use support::*;

#[test]
fn backfill_copies_every_type_and_verify_agrees() {
    let env = Env::new("mig_types");
    env.my(TYPES_MYSQL);
    env.my(
        "CREATE TABLE orders (customer VARCHAR(20) NOT NULL, n INT NOT NULL, total DECIMAL(12,2), \
           note TEXT, PRIMARY KEY (customer, n));
         INSERT INTO orders SELECT CONCAT(ELT(seq % 6 + 1, 'alice', 'Bob', 'émile', 'zed', 'ZOË', '_x'), seq DIV 97),
           seq, seq * 1.25, IF(seq % 3 = 0, NULL, REPEAT('é', seq % 40)) FROM seq_1_to_2500;
         CREATE TABLE events (at DATETIME NOT NULL, what VARCHAR(10));
         INSERT INTO events VALUES ('2024-01-01 00:00:00', 'a'), ('2024-01-01 00:00:00', 'a'), ('2024-01-02 00:00:00', NULL);",
    );
    env.pg(TYPES_PG);
    env.pg(
        "CREATE TABLE orders (customer varchar(20), n int, total numeric(12,2), note text, PRIMARY KEY (customer, n));
         CREATE TABLE events (at timestamp NOT NULL, what varchar(10));",
    );

    // Without --allow-no-pk the keyless table is reported and skipped.
    let first = env.tandem(&["backfill", "--chunk-rows", "100"]);
    first.expect_code(1);
    assert!(first.stdout.contains("events: SKIPPED"), "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("orders: copied: 2500 rows read, 2500 inserted"),
        "{}",
        first.stdout
    );
    let again = env.tandem(&["backfill", "--chunk-rows", "100", "--allow-no-pk"]);
    again.expect_code(0);
    assert!(
        again.stdout.contains("types: already complete"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("events: copied: 3 rows read"),
        "{}",
        again.stdout
    );

    let verify = env.tandem(&["verify", "--json", "--chunk-rows", "50", "--sample", "20"]);
    verify.expect_code(0);
    let report = verify.json();
    assert_eq!(report["clean"], true, "{report}");
    for t in ["types", "orders", "events"] {
        let r = table_report(&report, t);
        for field in ["missing", "extra", "different", "sample_mismatches"] {
            assert_eq!(r[field], 0, "{t}.{field}: {r}");
        }
        assert_eq!(r["rows_old"], r["rows_new"], "{t}: {r}");
    }
    assert_eq!(table_report(&report, "orders")["rows_new"], 2500);
    assert!(table_report(&report, "orders")["chunks"].as_u64().unwrap() >= 50);

    compare_independently(&env, "types", "id", &types_columns());
    let orders = [
        (
            "customer",
            "HEX(customer)".to_string(),
            "upper(encode(convert_to(customer, 'UTF8'), 'hex'))".to_string(),
            Cmp::Exact,
        ),
        ("n", "n".into(), "n::text".into(), Cmp::Exact),
        ("total", "total".into(), "total::text".into(), Cmp::Exact),
        (
            "note",
            "HEX(note)".into(),
            "upper(encode(convert_to(note, 'UTF8'), 'hex'))".into(),
            Cmp::Exact,
        ),
    ];
    compare_independently(&env, "orders", "n", &orders);

    // The text listing too.
    let text = env.tandem(&["verify"]);
    text.expect_code(0);
    assert!(text.stdout.contains("both sides match"), "{}", text.stdout);
}

#[test]
fn killed_backfill_resumes_without_loss_or_duplicates() {
    let env = Env::new("mig_kill");
    let total = 60_000u64;
    env.my(&format!(
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(80) NOT NULL, n DOUBLE);
         INSERT INTO big SELECT seq, CONCAT('row ', seq, ' ', REPEAT('x', seq % 50)), seq / 7 FROM seq_1_to_{total};"
    ));
    env.pg("CREATE TABLE big (id int PRIMARY KEY, v varchar(80) NOT NULL, n double precision);");

    let child = env
        .command(&["backfill", "--chunk-rows", "500", "--rate", "8000"])
        .spawn()
        .expect("start");
    let pid = child.id();
    let started = Instant::now();
    let at_kill = loop {
        let copied = checkpoint_rows(&env, "big");
        if copied >= total / 4 {
            break copied;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "backfill made no progress"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let killed = wait(child, Duration::from_secs(30), &["backfill"]);
    assert_ne!(
        killed.code, 0,
        "the backfill should have been killed mid-table"
    );
    let after_kill = checkpoint_rows(&env, "big");
    assert!(
        after_kill >= at_kill && after_kill < total,
        "killed at {after_kill} of {total}"
    );
    // Whatever committed matches the checkpoint exactly.
    let committed: u64 = env.pg("SELECT count(*) FROM big").trim().parse().unwrap();
    assert_eq!(committed, after_kill, "rows on the new side vs checkpoint");

    let resumed = env.tandem(&["backfill", "--chunk-rows", "500"]);
    resumed.expect_code(0);
    // It continued from the checkpoint instead of starting over.
    let expected = format!(
        "big: copied: {} rows read, {} inserted, 0 already present",
        total - after_kill,
        total - after_kill
    );
    assert!(
        resumed.stdout.contains(&expected),
        "{}\nexpected {expected}",
        resumed.stdout
    );

    assert_eq!(fingerprint_my(&env), fingerprint_pg(&env));
    assert_eq!(checkpoint_rows(&env, "big"), total);
    env.tandem(&["verify", "--json"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_writes_racing_the_backfill_converge_after_repair() {
    use mysql_async::prelude::Queryable;
    let env = Env::new("mig_race");
    let total = 20_000i64;
    env.my(&format!(
        "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(14,2) NOT NULL, version INT NOT NULL);
         INSERT INTO accounts SELECT seq, CONCAT('owner-', seq), seq * 10, 0 FROM seq_1_to_{total};"
    ));
    env.pg("CREATE TABLE accounts (id bigint PRIMARY KEY, owner varchar(40) NOT NULL, balance numeric(14,2) NOT NULL, version int NOT NULL);");

    // The real thing: a Tandem proxy in dual_write in front of both sides.
    let drift_dir = tempfile::tempdir().expect("tempdir");
    let proxy = common::start_proxy_with(&format!(
        "listen = \"127.0.0.1:0\"\nphase = \"dual_write\"\n[[users]]\nname = \"{}\"\npassword = \"{}\"\n\
         [backends.old]\nkind = \"mysql\"\nurl = \"{}\"\n[backends.new]\nkind = \"postgres\"\nurl = \"{}\"\n\
         [mirror]\nsource = \"statements\"\ndrift_log = \"{}\"\n",
        common::PROXY_USER,
        common::PROXY_PASSWORD,
        env.my_url(),
        env.pg_url(),
        drift_dir.path().join("drift.jsonl").display()
    ))
    .await;
    let db = env
        .my_url()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut my = common::via(&proxy, &db).await;

    let mut child = env
        .command(&["backfill", "--chunk-rows", "250", "--rate", "5000"])
        .spawn()
        .expect("start");
    // Writes through the proxy (MySQL first, mirrored to PostgreSQL) while
    // the backfill runs.
    let mut next_id = total + 1;
    let (mut inserts, mut updates, mut deletes) = (0, 0, 0);
    let mut seed = 0x2545f491u64;
    let mut rnd = move |n: i64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as i64 + 1
    };
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "backfill did not finish"
        );
        let statements: Vec<String> = match rnd(10) {
            1..=3 => {
                next_id += 1;
                inserts += 1;
                vec![format!(
                    "INSERT INTO accounts VALUES ({next_id}, 'new-{next_id}', 1.50, 0)"
                )]
            }
            4..=8 => {
                updates += 1;
                let id = rnd(total);
                vec![format!("UPDATE accounts SET balance = balance + 1.25, version = version + 1 WHERE id = {id}")]
            }
            _ => {
                deletes += 1;
                let id = rnd(total);
                vec![format!("DELETE FROM accounts WHERE id = {id}")]
            }
        };
        for s in statements {
            my.query_drop(&s).await.expect("write through the proxy");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let out = wait(child, Duration::from_secs(10), &["backfill"]);
    out.expect_code(0);
    common::wait_mirrored(&proxy).await;
    eprintln!(
        "workload during backfill: {inserts} inserts, {updates} updates, {deletes} deletes; {}",
        out.stdout.trim()
    );
    assert!(
        inserts + updates + deletes > 50,
        "the workload overlapped the backfill too little"
    );

    let repair = env.tandem(&["verify", "--repair", "--json", "--chunk-rows", "1000"]);
    let report = repair.json();
    let t = table_report(&report, "accounts");
    eprintln!(
        "verify --repair: missing {} extra {} different {} repair {}",
        t["missing"], t["extra"], t["different"], t["repair"]
    );
    repair.expect_code(0);
    assert_eq!(t["repair"]["still_different"], 0, "{t}");

    let check = env.tandem(&["verify", "--json"]);
    check.expect_code(0);
    let t = table_report(&check.json(), "accounts").clone();
    assert_eq!(
        (
            t["missing"].as_u64(),
            t["extra"].as_u64(),
            t["different"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(t["rows_old"], t["rows_new"]);
}

#[test]
fn verify_names_injected_drift_and_repair_fixes_it() {
    let env = Env::new("mig_drift");
    env.my(
        "CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(30), price DECIMAL(10,3), seen DATETIME(6));
         INSERT INTO items (name, price, seen) SELECT CONCAT('item ', seq), seq / 8, '2024-05-01 10:00:00' + INTERVAL seq SECOND FROM seq_1_to_3000;
         CREATE TABLE tags (item INT NOT NULL, tag VARCHAR(20) NOT NULL, weight FLOAT, PRIMARY KEY (item, tag));
         INSERT INTO tags SELECT seq, ELT(seq % 3 + 1, 'red', 'Blue', 'grün'), seq / 3 FROM seq_1_to_500;",
    );
    env.pg(
        "CREATE TABLE items (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name varchar(30), price numeric(10,3), seen timestamp(6));
         CREATE TABLE tags (item int, tag varchar(20), weight real, PRIMARY KEY (item, tag));",
    );
    env.tandem(&["backfill"]).expect_code(0);
    env.tandem(&["verify"]).expect_code(0);

    // Drift on both sides.
    env.pg("UPDATE items SET price = price + 0.001 WHERE id = 17;
            DELETE FROM items WHERE id = 2500;
            INSERT INTO items (id, name) VALUES (5000, 'only new');
            UPDATE tags SET weight = 99 WHERE item = 4 AND tag = 'Blue';
            DELETE FROM tags WHERE item = 300;");
    env.my(
        "UPDATE items SET seen = '2030-01-01 00:00:00.000001' WHERE id = 1;
            INSERT INTO items (id, name) VALUES (4000, 'only old');
            INSERT INTO tags VALUES (9, 'zzz', 1);",
    );

    let run = env.tandem(&["verify", "--json", "--chunk-rows", "400"]);
    run.expect_code(1);
    let report = run.json();
    assert_eq!(report["clean"], false);
    let items = table_report(&report, "items");
    assert_eq!(strings(&items["missing_keys"]), ["2500", "4000"], "{items}");
    assert_eq!(strings(&items["extra_keys"]), ["5000"], "{items}");
    let different: Vec<String> = items["different_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(different, ["1", "17"], "{items}");
    let cols: BTreeMap<String, String> = items["different_rows"][1]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["column"].as_str().unwrap().to_string(),
                c["new"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(cols.keys().collect::<Vec<_>>(), ["price"]);
    let tags = table_report(&report, "tags");
    assert_eq!(
        strings(&tags["missing_keys"]),
        ["(9, zzz)", "(300, red)"],
        "{tags}"
    );
    assert!(strings(&tags["extra_keys"]).is_empty(), "{tags}");
    let tag_diff: Vec<&str> = tags["different_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(tag_diff, ["(4, Blue)"], "{tags}");
    assert_eq!(
        (
            items["missing"].as_u64(),
            items["extra"].as_u64(),
            items["different"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );

    let repair = env.tandem(&["verify", "--repair", "--json", "--chunk-rows", "400"]);
    repair.expect_code(0);
    let r = repair.json();
    assert_eq!(table_report(&r, "items")["repair"]["upserted"], 4);
    assert_eq!(table_report(&r, "items")["repair"]["deleted"], 1);
    assert_eq!(table_report(&r, "tags")["repair"]["upserted"], 3);
    env.tandem(&["verify", "--json"]).expect_code(0);
    assert_eq!(
        env.pg("SELECT name FROM items WHERE id = 4000").trim(),
        "only old"
    );
    assert_eq!(
        env.pg("SELECT count(*) FROM items WHERE id = 5000").trim(),
        "0"
    );

    // cutover-check: the identity is still at 1 although ids reach 4000.
    let check = env.tandem(&["cutover-check"]);
    check.expect_code(1);
    // InnoDB hands out AUTO_INCREMENT values in batches, so the old side's
    // counter may be past 4001; the fix honours it.
    let needed: u64 = check
        .stdout
        .split("MISSING sequence items.id: next value 1, needs at least ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(needed >= 4001, "{}", check.stdout);
    assert!(
        check.stdout.contains("OK      backfill: complete"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("OK      verify: last full run"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("MISSING mirror queue: unknown (no proxy answered on"),
        "{}",
        check.stdout
    );
    let fixed = env.tandem(&["cutover-check", "--fix"]);
    assert!(
        fixed.stdout.contains(&format!(
            "OK      sequence items.id: moved from 1 to {needed} (--fix)"
        )),
        "{}",
        fixed.stdout
    );
    // Still not ready: nobody can vouch for the mirror queues yet.
    fixed.expect_code(1);
    env.pg("INSERT INTO items (name) VALUES ('after cutover')");
    assert_eq!(
        env.pg("SELECT id FROM items WHERE name = 'after cutover'")
            .trim(),
        needed.to_string()
    );
    let after = env.tandem(&["cutover-check"]);
    assert!(
        after
            .stdout
            .contains("OK      sequence items.id: next value"),
        "{}",
        after.stdout
    );
}

#[test]
fn commands_explain_what_to_do_when_the_setup_is_wrong() {
    let env = Env::new("mig_errors");
    env.my("CREATE TABLE a (id INT PRIMARY KEY, v TEXT);");
    let run = env.tandem(&["backfill"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("do not exist on the new side")
            && run.stderr.contains("tandem schema --apply"),
        "{}",
        run.stderr
    );
    env.pg("CREATE TABLE a (id int, v text);");
    let run = env.tandem(&["backfill"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("no primary key or unique constraint on (id)"),
        "{}",
        run.stderr
    );
    let run = env.tandem(&["verify", "--tables", "nope"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no table `nope`"), "{}", run.stderr);
}

#[test]
fn schema_apply_translates_the_old_tables_then_backfill_and_verify_pass() {
    let env = Env::new("mig_schema");
    env.my(
        "CREATE TABLE accounts (
           id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
           email VARCHAR(100) NOT NULL,
           active TINYINT(1) NOT NULL DEFAULT 1,
           kind ENUM('personal','business') NOT NULL DEFAULT 'personal',
           balance DECIMAL(30,10) NOT NULL DEFAULT '0.0000000000',
           big BIGINT, ubig BIGINT UNSIGNED,
           created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
           seen DATETIME(6) NULL, day DATE, at TIME,
           prefs JSON, bio TEXT, avatar BLOB,
           UNIQUE KEY uq_email (email), KEY idx_kind (kind)
         ) AUTO_INCREMENT = 500;
         INSERT INTO accounts (email, active, kind, balance, big, ubig, created, seen, day, at, prefs, bio, avatar)
         SELECT CONCAT('user', seq, '@example.com'), seq % 2, IF(seq % 3 = 0, 'business', 'personal'),
                seq * 1.0000000001, -seq * 1000000007, 18446744073709551615 - seq,
                '2024-01-01 00:00:00.000001' + INTERVAL seq MINUTE, IF(seq % 5 = 0, NULL, '2023-06-01 12:00:00' + INTERVAL seq SECOND),
                '2020-01-01' + INTERVAL seq DAY, SEC_TO_TIME(seq * 7), JSON_OBJECT('n', seq, 'tags', JSON_ARRAY('a', seq)),
                REPEAT('bio ', seq % 20), UNHEX(MD5(seq))
         FROM seq_1_to_1200;
         CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY);",
    );
    let printed = env.tandem(&["schema"]);
    // GEOMETRY has no translation: reported, exit 1, the rest printed.
    printed.expect_code(1);
    assert!(
        printed.stderr.contains("NOT TRANSLATED: shapes"),
        "{}",
        printed.stderr
    );
    assert!(
        printed.stdout.contains("CREATE TABLE \"accounts\""),
        "{}",
        printed.stdout
    );
    assert!(printed.stdout.contains("BOOLEAN"), "{}", printed.stdout);
    assert!(printed.stdout.contains("JSONB"), "{}", printed.stdout);
    assert!(printed.stdout.contains("IDENTITY"), "{}", printed.stdout);
    assert!(
        printed.stdout.contains("CREATE UNIQUE INDEX"),
        "{}",
        printed.stdout
    );
    assert!(
        env.pg("SELECT count(*) FROM pg_class WHERE relname = 'accounts'")
            .trim()
            == "0",
        "printing must not apply"
    );

    let applied = env.tandem(&["schema", "--apply"]);
    applied.expect_code(1);
    assert!(
        applied.stdout.contains("accounts: created"),
        "{}",
        applied.stdout
    );
    let types = env.pg(
        "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'accounts'",
    );
    for expected in [
        "active:boolean",
        "prefs:jsonb",
        "avatar:bytea",
        "ubig:numeric",
        "created:timestamp with time zone",
    ] {
        assert!(types.contains(expected), "{expected} in {types}");
    }
    assert_eq!(env.pg("SELECT count(*) FROM pg_indexes WHERE tablename = 'accounts' AND indexdef LIKE 'CREATE UNIQUE INDEX%email%'").trim(), "1");
    // Applying again leaves existing tables alone.
    let again = env.tandem(&["schema", "--apply"]);
    assert!(
        again
            .stdout
            .contains("accounts: exists on the new side, left unchanged"),
        "{}",
        again.stdout
    );

    env.tandem(&["backfill", "--tables", "accounts", "--chunk-rows", "300"])
        .expect_code(0);
    let verify = env.tandem(&["verify", "--tables", "accounts", "--json"]);
    verify.expect_code(0);
    assert_eq!(table_report(&verify.json(), "accounts")["rows_new"], 1200);
    // The identity continues after the copied ids once cutover-check fixed it.
    let check = env.tandem(&["cutover-check", "--fix"]);
    check.expect_code(1);
    // The identity starts where SHOW CREATE TABLE said AUTO_INCREMENT was.
    assert!(
        check
            .stdout
            .contains("OK      sequence accounts.id: next value"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("MISSING table shapes: does not exist on the new side"),
        "{}",
        check.stdout
    );
}

#[test]
fn rows_already_on_the_new_side_win_over_the_copy() {
    let env = Env::new("mig_present");
    env.my(
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL);
         INSERT INTO t SELECT seq, CONCAT('old ', seq) FROM seq_1_to_1000;",
    );
    // As if dual writes had already written (newer) versions of these rows.
    env.pg(
        "CREATE TABLE t (id int PRIMARY KEY, v varchar(20) NOT NULL);
         INSERT INTO t SELECT g, 'newer ' || g FROM generate_series(500, 510) g;",
    );
    let run = env.tandem(&["backfill", "--chunk-rows", "100"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("t: copied: 1000 rows read, 989 inserted, 11 already present"),
        "{}",
        run.stdout
    );
    assert_eq!(
        env.pg("SELECT count(*) FROM t WHERE v LIKE 'newer %'")
            .trim(),
        "11"
    );
    assert_eq!(env.pg("SELECT count(*) FROM t").trim(), "1000");
    // verify sees exactly those rows as different; repair makes old win.
    let report = env.tandem(&["verify", "--json"]).json();
    let t = table_report(&report, "t");
    assert_eq!(t["different"], 11, "{t}");
    assert_eq!(t["different_rows"][0]["key"], "500");
    env.tandem(&["verify", "--repair"]).expect_code(0);
    assert_eq!(env.pg("SELECT v FROM t WHERE id = 505").trim(), "old 505");
}
