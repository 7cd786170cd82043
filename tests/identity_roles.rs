//! Per-user privileges on the PostgreSQL side: `[auth.roles]` maps a MySQL
//! account to a PostgreSQL role, and statements PostgreSQL answers for that
//! user (reads routed in `dual_write`, every statement in `new_primary`) run
//! as that role. Unmapped users follow the documented rule: in passthrough
//! mode their reads stay on MySQL; in users mode they run as the URL account.

mod common;

use common::*;
use mysql_async::prelude::*;

/// A PostgreSQL role allowed to read `t` only (roles are cluster-wide: named
/// after the database).
fn reader_role(pg: &servers::Postgres, db: &str) -> String {
    let role = format!("r_{}", db.replace('-', "_"));
    pg.sql(
        db,
        &format!(
            "CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 100), (2, 200);\
             CREATE TABLE secret (id INT PRIMARY KEY); INSERT INTO secret VALUES (7);\
             CREATE ROLE \"{role}\" NOLOGIN; GRANT SELECT ON t TO \"{role}\";"
        ),
    );
    role
}

fn mysql_side(db: &str) {
    servers::mariadb().root_sql(&format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT); INSERT INTO `{db}`.t VALUES (1, 10), (2, 20);\
         CREATE TABLE `{db}`.secret (id INT PRIMARY KEY); INSERT INTO `{db}`.secret VALUES (7);"
    ));
}

fn err_text(e: mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("{} {}", s.code, s.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_primary_runs_a_mapped_user_as_its_role() {
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = servers::mariadb().create_database("idr_np");
    let new = pg.create_database("idr_np");
    mysql_side(&old);
    let role = reader_role(pg, &new);
    let dir = tempfile::tempdir().unwrap();
    let toml = config::TestConfig::new(&old)
        .phase("new_primary")
        .new_backend(&pg.url(&new))
        .drift_log(&dir.path().join("drift.jsonl"))
        .table("[[users]]\nname = \"reader\"\npassword = \"readerpass\"")
        .table(&format!("[auth.roles]\nreader = \"{role}\""))
        .toml();
    let proxy = start_proxy_with(&toml).await;
    let opts = proxy_opts(&proxy, &old)
        .user(Some("reader"))
        .pass(Some("readerpass"));
    let mut reader = mysql_async::Conn::new(opts).await.unwrap();
    // PostgreSQL answers (its rows, not MySQL's) as the role.
    assert_eq!(
        rows_text(&mut reader, "SELECT v FROM t ORDER BY id").await,
        vec![vec!["'100'".to_string()], vec!["'200'".to_string()]]
    );
    let e = err_text(reader.query_drop("UPDATE t SET v = 0").await.unwrap_err());
    assert!(e.contains("permission denied"), "{e}");
    let e = err_text(
        reader
            .query_drop("SELECT id FROM secret")
            .await
            .unwrap_err(),
    );
    assert!(e.contains("permission denied"), "{e}");
    // The client cannot leave the role.
    let _ = reader.query_drop("SET ROLE NONE").await;
    let _ = reader.query_drop("RESET ROLE").await;
    let e = err_text(reader.query_drop("UPDATE t SET v = 0").await.unwrap_err());
    assert!(e.contains("permission denied"), "{e}");
    drop(reader);
    assert_eq!(pg.sql(&new, "SELECT sum(v) FROM t").trim(), "300");
    // An unmapped users-mode account runs as the URL account, as on MySQL.
    let mut app = via(&proxy, &old).await;
    let rows = rows_text(&mut app, "SELECT id FROM secret").await;
    assert_eq!(rows, vec![vec!["'7'".to_string()]]);
    drop(app);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_reads_run_as_the_mapped_role_and_unmapped_stay_on_mysql() {
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let m = servers::mariadb();
    let old = m.create_database("idr_dw");
    let new = pg.create_database("idr_dw");
    mysql_side(&old);
    let role = reader_role(pg, &new);
    let tail = &old[old.len().saturating_sub(12)..];
    let (mapped, unmapped) = (format!("m_{tail}"), format!("u_{tail}"));
    for user in [&mapped, &unmapped] {
        for host in ["%", "localhost"] {
            m.root_sql(&format!(
                "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'pw-1'; GRANT SELECT ON `{old}`.* TO '{user}'@'{host}';"
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nphase = \"dual_write\"\n\
         [backends.old]\nkind = \"mysql\"\nurl = \"{}\"\n\
         [backends.new]\nkind = \"postgres\"\nurl = \"{}\"\n\
         [mirror]\ndrift_log = \"{}\"\n[reads]\nnew_percent = 100.0\n\
         [auth.roles]\n{mapped} = \"{role}\"\n",
        m.url(&old),
        pg.url(&new),
        dir.path().join("drift.jsonl").display()
    );
    let proxy = start_proxy_with(&toml).await;
    assert!(proxy.state.old.passthrough());
    let login = |user: &str| {
        proxy_opts(&proxy, &old)
            .user(Some(user.to_string()))
            .pass(Some("pw-1"))
    };
    let sum = "SELECT CAST(SUM(v) AS SIGNED) FROM t";
    // Mapped: PostgreSQL's rows (300), with the role's privileges.
    let mut c = mysql_async::Conn::new(login(&mapped)).await.unwrap();
    let v: Option<i64> = c.query_first(sum).await.unwrap();
    assert_eq!(v, Some(300));
    let e = err_text(c.query_drop("SELECT id FROM secret").await.unwrap_err());
    assert!(e.contains("permission denied"), "{e}");
    drop(c);
    // Unmapped: MySQL serves every read (30), as this account.
    let mut c = mysql_async::Conn::new(login(&unmapped)).await.unwrap();
    let v: Option<i64> = c.query_first(sum).await.unwrap();
    assert_eq!(v, Some(30));
    let rows = rows_text(&mut c, "SELECT id FROM secret").await;
    assert_eq!(rows, vec![vec!["'7'".to_string()]]);
    drop(c);
    proxy.stop().await;
}
