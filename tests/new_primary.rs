//! new_primary / new_only: PostgreSQL answers MySQL clients; in new_primary
//! every write is mirrored back to MariaDB with the ids PostgreSQL assigned.

mod common;

use common::*;
use mysql_async::prelude::*;

fn config(phase: &str, old_db: &str, pg_url: &str, drift: &std::path::Path) -> String {
    config::TestConfig::new(old_db)
        .phase(phase)
        .new_backend(pg_url)
        .mirror("source", "\"statements\"")
        .drift_log(drift)
        .toml()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_and_writes_flow_back_to_mysql() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database("np_old");
    let new = pg.create_database("np_new");
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.jsonl");

    // 1. dual_write: the schema and some rows reach both sides.
    let dual = start_proxy_with(&config("dual_write", &old, &pg.url(&new), &drift)).await;
    let mut c = via(&dual, &old).await;
    c.query_drop(
        "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL UNIQUE,
         price DECIMAL(10,2), active TINYINT(1) NOT NULL DEFAULT 1, updated DATETIME(6))",
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO items (name, price) VALUES ('a', 1.50), ('b', 2.25), ('c', NULL)")
        .await
        .unwrap();
    wait_mirrored(&dual).await;
    drop(c);
    dual.stop().await;
    // What `tandem cutover-check --fix` does: move the identity past the ids.
    pg.sql(
        &new,
        "SELECT setval(pg_get_serial_sequence('items', 'id'), (SELECT max(id) FROM items))",
    );

    // 2. new_primary: reads and writes are served by PostgreSQL.
    let proxy = start_proxy_with(&config("new_primary", &old, &pg.url(&new), &drift)).await;
    let mut p = via(&proxy, &old).await;
    let mut d = direct(&old).await;
    let sql = "SELECT id, name, price, active FROM items ORDER BY id";
    let from_pg: Vec<(i64, String, Option<String>, i64)> = p.query(sql).await.unwrap();
    let from_my: Vec<(i64, String, Option<String>, i64)> = d.query(sql).await.unwrap();
    assert_eq!(from_pg, from_my);
    // Column metadata as MySQL describes these columns.
    let r = p.query_iter(sql).await.unwrap();
    let cols: Vec<String> = r
        .columns_ref()
        .iter()
        .map(|c| format!("{:?}/{}", c.column_type(), c.decimals()))
        .collect();
    drop(r);
    let r = d.query_iter(sql).await.unwrap();
    let direct_cols: Vec<String> = r
        .columns_ref()
        .iter()
        .map(|c| format!("{:?}/{}", c.column_type(), c.decimals()))
        .collect();
    drop(r);
    assert_eq!(cols, direct_cols);

    // An insert gets PostgreSQL's id, and MariaDB gets the same row.
    p.exec_drop(
        "INSERT INTO items (name, price) VALUES (?, ?)",
        ("d", "9.99"),
    )
    .await
    .unwrap();
    let id = p.last_insert_id().expect("last insert id from RETURNING");
    assert_eq!(id, 4);
    p.query_drop("UPDATE items SET updated = NOW(6), price = price + 1 WHERE name IN ('a', 'd')")
        .await
        .unwrap();
    assert_eq!(p.affected_rows(), 2);
    // Errors carry MySQL's codes.
    let e = p
        .query_drop("INSERT INTO items (name) VALUES ('a')")
        .await
        .unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1062 && s.state == "23000"),
        "{e:?}"
    );
    let e = p.query_drop("SELECT * FROM nope").await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1146),
        "{e:?}"
    );
    // A rolled-back transaction reaches neither side; a committed one both.
    p.query_drop("BEGIN").await.unwrap();
    p.query_drop("INSERT INTO items (name) VALUES ('rolled back')")
        .await
        .unwrap();
    p.query_drop("ROLLBACK").await.unwrap();
    let mut tx = p.start_transaction(Default::default()).await.unwrap();
    tx.query_drop("INSERT INTO items (name, price) VALUES ('e', 5)")
        .await
        .unwrap();
    tx.query_drop("DELETE FROM items WHERE name = 'b'")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Prepared SELECT: binary rows from PostgreSQL.
    let row: Option<(i64, String)> = p
        .exec_first("SELECT id, name FROM items WHERE id = ?", (1,))
        .await
        .unwrap();
    assert_eq!(row, Some((1, "a".to_string())));
    wait_mirrored(&proxy).await;

    let compare = "SELECT id, name, price, active, updated FROM items ORDER BY id";
    let pg_rows = rows_text(&mut p, compare).await;
    let my_rows = rows_text(&mut d, compare).await;
    assert_eq!(
        pg_rows, my_rows,
        "MariaDB got every write with PostgreSQL's ids and values"
    );
    assert_eq!(pg_rows.len(), 4, "a, c, d, e");
    assert_eq!(proxy.state.mirror.load_full().unwrap().drift.recorded(), 0);
    drop(p);
    proxy.stop().await;

    // 3. new_only: PostgreSQL alone; MariaDB no longer receives writes.
    let only = start_proxy_with(&config("new_only", &old, &pg.url(&new), &drift)).await;
    assert!(only.state.mirror.load().is_none());
    let mut o = via(&only, &old).await;
    o.query_drop("INSERT INTO items (name) VALUES ('only on pg')")
        .await
        .unwrap();
    let on_pg: Option<i64> = o.query_first("SELECT COUNT(*) FROM items").await.unwrap();
    let on_my: Option<i64> = d.query_first("SELECT COUNT(*) FROM items").await.unwrap();
    assert_eq!((on_pg, on_my), (Some(5), Some(4)));
}
