//! The operator's cockpit against real MariaDB (old) and PostgreSQL (new) in
//! dual_write: the read ramp climbs on a clean workload and steps back within
//! one hold window once PostgreSQL's data is changed behind the proxy's back;
//! a hand edit of `new_percent` pauses it; the dashboard renders live numbers
//! and plots in headless Chromium; `tandem status` / `tandem ramp` read the
//! same admin endpoint.

mod common;
#[path = "cockpit/plan_cli.rs"]
mod plan_cli;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mysql_async::prelude::*;

const HOLD_S: u64 = 3;

fn config(old_db: &str, pg_url: &str, dir: &Path, new_percent: f64) -> String {
    common::config::TestConfig::new(old_db)
        .phase("dual_write")
        .new_backend(pg_url)
        .mirror("source", "\"statements\"")
        .drift_log(&dir.join("drift.jsonl"))
        .table(&format!(
            "[reads]\nnew_percent = {new_percent:.1}\n\
             [reads.ramp]\nsteps = [20, 60, 100]\nhold = \"{HOLD_S}s\"\nmax_mismatch_rate = 0.01\n\
             max_error_rate_increase = 0.05\nmax_p95_ms = 2000\nmin_samples = 20\n\
             [shadow]\nsample_percent = 100\nlog = \"{}\"",
            dir.join("mismatches.jsonl").display(),
        ))
        .toml()
}

struct Rig {
    proxy: Proxy,
    old: String,
    new: String,
    admin: SocketAddr,
    cockpit: tokio_util::task::TaskTracker,
    stop_load: Arc<AtomicBool>,
    load: Vec<tokio::task::JoinHandle<u64>>,
    dir: tempfile::TempDir,
}

/// A dual_write proxy with the cockpit and admin listener running, a table of
/// 50 rows on both sides, and four sessions reading it in a loop.
async fn rig(prefix: &str) -> Rig {
    let m = servers::mariadb();
    let pg = tokio::task::spawn_blocking(servers::postgres)
        .await
        .unwrap();
    let old = m.create_database(prefix);
    let new = pg.create_database(prefix);
    let dir = tempfile::tempdir().unwrap();
    let toml = config(&old, &pg.url(&new), dir.path(), 0.0);
    std::fs::write(dir.path().join("proxy.toml"), &toml).unwrap();
    let proxy = start_proxy_with(&toml).await;
    let mut c = via(&proxy, &old).await;
    c.query_drop("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL)")
        .await
        .unwrap();
    for i in 0..50 {
        c.query_drop(format!("INSERT INTO t VALUES ({i}, 'row {i}')"))
            .await
            .unwrap();
    }
    wait_mirrored(&proxy).await;
    drop(c);
    let opts = tandem::cockpit::Options {
        sample_every: Duration::from_secs(1),
    };
    let cockpit = tandem::cockpit::start(&proxy.state, proxy.shutdown.clone(), opts);
    let admin = tandem::admin::start("127.0.0.1:0", proxy.state.clone(), proxy.shutdown.clone())
        .await
        .unwrap();
    let stop_load = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for s in 0..4u64 {
        let opts = proxy_opts(&proxy, &old);
        let stop = stop_load.clone();
        load.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = (n * 7 + s) % 50;
                let _: Vec<(i32, String)> = conn
                    .query(format!("SELECT id, name FROM t WHERE id = {id}"))
                    .await
                    .unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        }));
    }
    Rig {
        proxy,
        old,
        new,
        admin,
        cockpit,
        stop_load,
        load,
        dir,
    }
}

impl Rig {
    async fn stop(self) -> u64 {
        self.stop_load.store(true, Ordering::Relaxed);
        let mut reads = 0;
        for l in self.load {
            reads += l.await.unwrap();
        }
        self.proxy.stop().await;
        tokio::time::timeout(Duration::from_secs(5), self.cockpit.wait())
            .await
            .expect("cockpit tasks stop at shutdown");
        reads
    }

    fn ramp(&self) -> tandem::cockpit::ramp::RampView {
        let snap = self.proxy.state.snapshot.load();
        self.proxy
            .state
            .cockpit
            .ramp
            .view(snap.config.reads.ramp.as_ref())
    }

    async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        f: impl Fn(&tandem::cockpit::ramp::RampView) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let v = self.ramp();
            if f(&v) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{what}: not reached in {limit:?}; ramp: {}",
                serde_json::to_string_pretty(&v).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_advances_on_clean_reads_and_steps_back_on_a_mismatch() {
    let rig = rig("ramp").await;
    assert_eq!(rig.ramp().share_percent, 0.0, "the ramp starts at 0%");
    // 0 -> 20 -> 60: two full clean hold windows at least.
    let start = Instant::now();
    rig.wait_for("advance to 60%", Duration::from_secs(60), |v| {
        v.position >= 2
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_secs(2 * HOLD_S),
        "advanced twice in {:?}, faster than two holds",
        start.elapsed()
    );
    let v = rig.ramp();
    assert_eq!(v.share_percent, 60.0);
    let advances: Vec<_> = v.history.iter().filter(|m| m.kind == "advance").collect();
    assert_eq!(advances.len(), 2, "{:?}", v.history);
    assert_eq!(
        (advances[0].from_percent, advances[0].to_percent),
        (0.0, 20.0)
    );
    assert_eq!(
        (advances[1].from_percent, advances[1].to_percent),
        (20.0, 60.0)
    );
    // The numbers that caused each move are kept.
    let w = advances[0].window.expect("window recorded");
    assert!(
        w.compared >= 20 && w.mismatches == 0 && w.elapsed_s >= HOLD_S as f64,
        "{w:?}"
    );
    let w = advances[1].window.unwrap();
    assert!(w.routed >= 20 && w.new_failures == 0, "{w:?}");
    // The read path routes by the ramp's share: PostgreSQL answers reads.
    let answered_new = rig.proxy.state.cockpit.new_reads.answered.get();
    assert!(answered_new >= 20, "new side answered {answered_new} reads");

    // PostgreSQL's copy drifts: every compared read now differs.
    let pg = servers::postgres();
    pg.sql(&rig.new, "UPDATE t SET name = 'tampered'");
    let injected = Instant::now();
    rig.wait_for("step back", Duration::from_secs(30), |v| {
        v.history.iter().any(|m| m.kind == "step_back")
    })
    .await;
    let took = injected.elapsed();
    eprintln!("cockpit: stepped back {took:?} after the mismatch was injected (hold {HOLD_S}s)");
    assert!(
        took <= Duration::from_secs(HOLD_S),
        "stepped back {took:?} after the mismatch, more than one hold ({HOLD_S}s)"
    );
    let v = rig.ramp();
    let back = v.history.iter().find(|m| m.kind == "step_back").unwrap();
    assert_eq!(back.from_percent, 60.0);
    assert_eq!(back.to_percent, 20.0, "previous step");
    assert!(back.reason.contains("max_mismatch_rate"), "{}", back.reason);
    assert!(back.window.unwrap().mismatches > 0);
    // With the mismatch persisting it keeps going down, to 0, and stays.
    rig.wait_for("back to 0%", Duration::from_secs(30), |v| {
        v.share_percent == 0.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(HOLD_S + 1)).await;
    assert_eq!(
        rig.ramp().share_percent,
        0.0,
        "no advance while mismatching"
    );

    // A hand edit of new_percent wins and pauses the ramp.
    let path = rig.dir.path().join("proxy.toml");
    let pg_url = pg.url(&rig.new);
    std::fs::write(&path, config(&rig.old, &pg_url, rig.dir.path(), 30.0)).unwrap();
    tandem::reload::apply(&path, &rig.proxy.state)
        .await
        .unwrap();
    rig.wait_for("manual pause", Duration::from_secs(5), |v| {
        v.paused.is_some()
    })
    .await;
    assert_eq!(rig.ramp().share_percent, 30.0);
    let snap = rig.proxy.state.snapshot.load();
    assert_eq!(rig.proxy.state.cockpit.read_share(&snap.config), 30.0);
    tokio::time::sleep(Duration::from_secs(HOLD_S + 1)).await;
    assert_eq!(
        rig.ramp().share_percent,
        30.0,
        "a paused ramp does not move"
    );

    // `tandem ramp resume` over the admin endpoint: from the highest step
    // not above 30% (20%); the mismatch then sends it back down.
    let out = tandem_cli(&["ramp", "resume", "--admin", &rig.admin.to_string()]);
    assert!(out.contains("done") && out.contains("ramp: 20%"), "{out}");
    rig.wait_for("step back after resume", Duration::from_secs(10), |v| {
        v.paused.is_none() && v.share_percent == 0.0
    })
    .await;
    let out = tandem_cli(&["ramp", "pause", "--admin", &rig.admin.to_string()]);
    assert!(out.contains("PAUSED (paused by the operator)"), "{out}");
    let out = tandem_cli(&["ramp", "status", "--admin", &rig.admin.to_string()]);
    assert!(
        out.contains("max_mismatch_rate") && out.contains("fail"),
        "{out}"
    );
    let kinds: Vec<&str> = rig.ramp().history.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            "advance",
            "advance",
            "step_back",
            "step_back",
            "manual",
            "resume",
            "step_back",
            "pause"
        ]
    );
    for kind in ["step_back", "manual", "resume", "pause"] {
        assert!(out.contains(kind), "{kind} missing from:\n{out}");
    }
    let reads = rig.stop().await;
    assert!(reads > 100, "{reads} reads");
}

/// Runs the built binary and returns its stdout (it must succeed).
fn tandem_cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tandem {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The opening tag of the element with `id` in a serialized DOM.
fn tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} missing from the DOM"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

fn attr(dom: &str, id: &str, name: &str) -> Option<String> {
    let t = tag(dom, id);
    let k = format!("{name}=\"");
    let at = t.find(&k)? + k.len();
    Some(t[at..at + t[at..].find('"')?].to_string())
}

/// Text inside the element `id` up to its first child tag or end.
fn text(dom: &str, id: &str) -> String {
    let t = tag(dom, id);
    let at = dom.find(t).unwrap() + t.len();
    dom[at..at + dom[at..].find("</").unwrap()].to_string()
}

fn chromium(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium runs (scripts/install-prereqs.sh installs it)");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_live_numbers_and_plots_in_chromium() {
    let rig = rig("dash").await;
    let cfg = rig.dir.path().join("proxy.toml");
    let cfg = cfg.to_str().unwrap();
    // Real facts for the slow sections: a backfill checkpoint, a verify run.
    let (b, v) = tokio::task::spawn_blocking({
        let cfg = cfg.to_string();
        move || {
            let run = |args: &[&str]| {
                std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
                    .args(args)
                    .output()
                    .unwrap()
            };
            (run(&["backfill", "-c", &cfg]), run(&["verify", "-c", &cfg]))
        }
    })
    .await
    .unwrap();
    assert!(
        b.status.success(),
        "backfill: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(
        v.status.success(),
        "verify: {}",
        String::from_utf8_lossy(&v.stdout)
    );
    // Some samples under load, then a row PostgreSQL has wrong.
    tokio::time::sleep(Duration::from_secs(4)).await;
    servers::postgres().sql(&rig.new, "UPDATE t SET name = 'wrong' WHERE id = 3");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let samples = rig.proxy.state.cockpit.timeline.since(0);
    assert!(samples.len() >= 5, "{} samples", samples.len());
    let stmts = samples.last().unwrap().statements_per_s;
    assert!(stmts > 10.0, "{stmts} statements/s");

    let url = format!("http://{}/", rig.admin);
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            chromium(&[
                "--virtual-time-budget=6000".into(),
                "--dump-dom".into(),
                url,
            ])
        }
    })
    .await
    .unwrap();
    let body = dom
        .find("<body")
        .map(|i| &dom[i..i + dom[i..].find('>').unwrap()])
        .unwrap();
    let draws: u32 = body
        .split("data-rendered=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(draws >= 1, "the script drew nothing: {body}");
    assert_eq!(text(&dom, "phase"), "dual_write");
    assert!(
        text(&dom, "share").ends_with('%'),
        "{}",
        text(&dom, "share")
    );
    let shown: f64 = text(&dom, "stmts")
        .parse()
        .expect("statements/s is a number");
    assert!(shown > 10.0, "dashboard shows {shown} statements/s");
    assert!(
        text(&dom, "old").contains(" ms"),
        "old p95 shown: {}",
        text(&dom, "old")
    );
    for id in [
        "plot-share",
        "plot-shadow",
        "plot-p95",
        "plot-stmts",
        "plot-lag",
        "plot-errors",
    ] {
        let points: usize = attr(&dom, id, "data-points")
            .unwrap_or_else(|| panic!("{id} was never drawn"))
            .parse()
            .unwrap();
        assert!(points >= 5, "{id} drew {points} points");
    }
    let backfill = dom[dom.find("id=\"backfill\"").unwrap()..]
        .split("</table>")
        .next()
        .unwrap()
        .to_string();
    assert!(
        backfill.contains(">t<") && backfill.contains("100.0%"),
        "{backfill}"
    );
    assert!(
        dom.contains("class=\"good\">clean"),
        "last verify shown as clean"
    );
    let mism = dom[dom.find("id=\"mismatches\"").unwrap()..]
        .split("</table>")
        .next()
        .unwrap()
        .to_string();
    assert!(
        mism.to_lowercase()
            .contains("select id, name from t where id ="),
        "{mism}"
    );
    assert!(
        dom.contains("id=\"history\"><table>") && dom.contains(">advance<"),
        "ramp moves listed"
    );

    // The screenshot is kept as an artifact.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cockpit-dashboard.png");
    let _ = std::fs::remove_file(&shot);
    tokio::task::spawn_blocking({
        let shot = shot.clone();
        move || {
            chromium(&[
                "--virtual-time-budget=6000".into(),
                "--window-size=1400,1500".into(),
                format!("--screenshot={}", shot.display()),
                url,
            ])
        }
    })
    .await
    .unwrap();
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    eprintln!("cockpit: dashboard screenshot at {}", shot.display());

    // `tandem status` reads the same endpoint.
    let admin = rig.admin.to_string();
    let out = tandem_cli(&["status", "--admin", &admin]);
    assert!(out.starts_with("phase dual_write"), "{out}");
    assert!(out.contains("backfill: 1/1 tables complete"), "{out}");
    assert!(out.contains("clean (0 differences)"), "{out}");
    assert!(
        out.contains("  old reads") && out.contains("  new reads"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(tandem_cli(&["status", "--json", "--admin", &admin]).trim()).unwrap();
    assert_eq!(json["phase"], "dual_write");
    assert!(
        json["shadow_outcomes"]["mismatch"].as_u64().unwrap() >= 1,
        "{json}"
    );
    // Latency per statement on both sides, with the text to EXPLAIN on new.
    let row = json["slow_on_new"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["fingerprint"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .starts_with("select id, name from t")
        })
        .unwrap_or_else(|| panic!("statement latencies missing: {json}"))
        .clone();
    assert!(row["compared"].as_u64().unwrap() >= 20, "{row}");
    assert!(
        row["old_p95_ms"].as_f64().unwrap() > 0.0 && row["new_p95_ms"].as_f64().unwrap() > 0.0,
        "{row}"
    );
    assert!(
        row["translated"].as_str().unwrap().contains("FROM t"),
        "{row}"
    );
    assert!(
        dom.contains("id=\"slow\"><table>"),
        "statement latency table rendered"
    );
    // Prometheus series in base units, with build info.
    let (code, metrics) = tandem::cockpit::http::request(&admin, "GET", "/metrics")
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains(&format!(
            "tandem_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing"))
    };
    assert!(value("tandem_read_duration_seconds_count{backend=\"old\"}") > 100.0);
    assert!(value("tandem_reads_total{backend=\"old\"}") > 100.0);
    assert!(
        value("tandem_mirror_lag_max_seconds") > 0.0
            && value("tandem_mirror_lag_max_seconds") < 60.0
    );
    let share = value("tandem_read_share_ratio");
    assert!((0.0..=1.0).contains(&share));
    assert!(!metrics.contains("microseconds"), "no non-base units");
    rig.stop().await;
}
