//! `tandem plan` against a schema with known risks, and the `tandem serve`
//! binary running (and stopping) the cockpit.

use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::common::*;
use super::tandem_cli;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_names_exactly_the_risks_this_schema_has() {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database("plan");
    let new = pg.create_database("plan");
    let mut c = direct(&old).await;
    for ddl in [
        // A table without any key.
        "CREATE TABLE audit (at DATETIME, what VARCHAR(20))",
        // A case-insensitive unique key (and a plain index, no risk).
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100) COLLATE utf8mb4_general_ci NOT NULL, \
         name VARCHAR(40) COLLATE utf8mb4_general_ci, UNIQUE KEY email (email), KEY by_name (name)) \
         CHARACTER SET utf8mb4",
        // ON UPDATE CURRENT_TIMESTAMP; a DATE with real dates and a DOUBLE (no risk).
        "CREATE TABLE events (id INT PRIMARY KEY, born DATE, ratio DOUBLE, \
         changed TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP)",
        // Something the translator refuses.
        "CREATE TABLE secrets (id INT PRIMARY KEY, hidden INT INVISIBLE)",
        "INSERT INTO events (id, born, ratio) VALUES (1, '2024-01-02', 0.5)",
        "INSERT INTO audit VALUES ('2024-01-01 00:00:00', 'x')",
    ] {
        c.query_drop(ddl).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    let toml = config_for(
        &old,
        &format!(
            "[backends.new]\nkind = \"postgres\"\nurl = \"{}\"",
            pg.url(&new)
        ),
    ) + "[admin]\nlisten = \"\"\n";
    std::fs::write(&path, toml).unwrap();
    let json_out = dir.path().join("plan.json");
    let md_out = dir.path().join("plan.md");
    let (p, cfg) = (
        path.to_str().unwrap().to_string(),
        json_out.to_str().unwrap().to_string(),
    );
    let md = md_out.to_str().unwrap().to_string();
    tokio::task::spawn_blocking(move || {
        tandem_cli(&["plan", "--config", &p, "--format", "json", "--out", &cfg]);
        tandem_cli(&["plan", "--config", &p, "--out", &md]);
    })
    .await
    .unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    let mut found: Vec<(String, String)> = plan["risks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["table"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let want: Vec<(String, String)> = [
        ("ci_unique_key", "users"),
        ("no_primary_key", "audit"),
        ("on_update_current_timestamp", "events"),
        ("untranslatable", "secrets"),
    ]
    .iter()
    .map(|(k, t)| (k.to_string(), t.to_string()))
    .collect();
    assert_eq!(found, want, "{:#}", plan["risks"]);
    assert_eq!(plan["overview"]["risk_level"], "high");
    assert_eq!(plan["overview"]["tables"], 4);
    // Every phase with steps, a gate and a rollback.
    let phases = plan["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 6);
    for ph in phases {
        assert!(!ph["rollback"].as_str().unwrap().is_empty(), "{ph}");
        assert!(!ph["gate"].as_array().unwrap().is_empty(), "{ph}");
        assert!(!ph["steps"].as_array().unwrap().is_empty(), "{ph}");
    }
    // The checklist is read from the live system: reachable, nothing done yet.
    let status = |needle: &str| {
        plan["checklist"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["item"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no checklist item `{needle}`: {:#}", plan["checklist"]))
            ["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("old backend reachable"), "done");
    assert_eq!(status("schema created on the new side (0 of 4"), "pending");
    assert_eq!(status("backfill"), "pending");
    assert_eq!(status("proxy running"), "pending");
    assert!(plan["rates"]["source"] == "server", "{}", plan["rates"]);
    let md = std::fs::read_to_string(&md_out).unwrap();
    for s in [
        "# Migration plan",
        "## Phases",
        "Rollback:",
        "## Risks in this schema",
        "| untranslatable | secrets |",
        "## Communication timeline",
        "## Testing checklist",
        "- [x] old backend reachable",
        "- [ ] proxy running",
    ] {
        assert!(md.contains(s), "`{s}` missing from:\n{md}");
    }
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cockpit-plan.md");
    std::fs::write(&shot, &md).unwrap();
    for absent in [
        "float_column",
        "zero_dates",
        "enum_ordering",
        "large_table",
        "default_current_timestamp",
    ] {
        assert!(!md.contains(absent), "{absent} reported:\n{md}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binary_runs_the_cockpit_and_stops_it_on_sigterm() {
    let db = servers::mariadb().create_database("cockpit_bin");
    let (port, admin_port) = (servers::free_port(), servers::free_port());
    let dir = tempfile::tempdir().unwrap();
    let text = super::common::config::TestConfig::new(&db)
        .port(port)
        .admin_listen(&format!("127.0.0.1:{admin_port}"))
        .toml();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin = format!("127.0.0.1:{admin_port}");
    // The timeline fills at the default period (5 s) once serve runs.
    let start = Instant::now();
    let samples = loop {
        if let Ok((200, body)) = tandem::cockpit::http::request(&admin, "GET", "/timeline").await {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let n = v["samples"].as_array().map_or(0, |a| a.len());
            if n > 0 {
                break v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no timeline sample from tandem serve"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(samples["samples"][0]["phase"], "primary_only");
    assert_eq!(samples["ramp"]["configured"], false);
    let (code, page) = tandem::cockpit::http::request(&admin, "GET", "/")
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("<title>Tandem cockpit</title>"));
    // No [reads.ramp]: pausing is a clear error, exit 1.
    let out = tokio::task::spawn_blocking({
        let admin = admin.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
                .args(["ramp", "pause", "--admin", &admin])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [reads.ramp]"));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "tandem serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    // And a status command against a stopped proxy says what is wrong.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["status", "--admin", &admin])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the admin endpoint"));
}
