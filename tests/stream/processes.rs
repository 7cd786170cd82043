//! `tandem mirror` as real processes: SIGKILLed mid-stream, restarted, two
//! of them racing for the lease. A table without a key is the witness of
//! exactly-once: a row applied twice would be a second identical row.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::e2e::{pair, Pair};
use crate::common::{self, servers};

/// A `tandem mirror` process, killed when dropped.
struct Mirror {
    child: Child,
    name: &'static str,
}

impl Mirror {
    fn start(p: &Pair, name: &'static str) -> Mirror {
        let config = p.dir.join("proxy.toml");
        std::fs::write(&config, &p.toml).unwrap();
        let log = std::fs::File::create(p.dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["mirror", "--config"])
            .arg(&config)
            .env("TANDEM_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tandem mirror starts");
        Mirror { child, name }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no last commit.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("killed {} (pid {})", self.name, self.pid());
    }

    /// SIGTERM; returns whether it exited 0.
    fn terminate(mut self) -> bool {
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn holder(p: &Pair) -> String {
    servers::postgres()
        .try_sql(&p.pg, "SELECT holder FROM tandem_stream_lease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn wait_holder(p: &Pair, m: &Mirror) {
    let want = format!(":{}", m.pid());
    for _ in 0..300 {
        if holder(p).ends_with(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} (pid {}) never took the lease; holder {:?}\n{}",
        m.name,
        m.pid(),
        holder(p),
        std::fs::read_to_string(p.dir.join(format!("{}.log", m.name))).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mirror_processes_resume_and_hand_over_without_loss_or_duplicates() {
    let p = pair("stream_proc", 103);
    // `tandem check` says the binlog can be used.
    let config = p.dir.join("proxy.toml");
    std::fs::write(&config, &p.toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("mirror.source: binlog") && text.contains("binlog: ok: binlog_format=ROW"),
        "{text}"
    );
    let a = Mirror::start(&p, "a");
    wait_holder(&p, &a).await;
    let b = Mirror::start(&p, "b");
    // Tables created after the stream started arrive through it.
    let mut d = common::direct(&p.my).await;
    d.query_drop("CREATE TABLE events (n int NOT NULL, w varchar(10))")
        .await
        .unwrap();
    d.query_drop("CREATE TABLE counters (id int NOT NULL PRIMARY KEY, v bigint NOT NULL)")
        .await
        .unwrap();
    d.query_drop("INSERT INTO counters VALUES (1, 0), (2, 0)")
        .await
        .unwrap();

    // Four unthrottled writers straight on MariaDB, 5-row transactions.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let stop = stop.clone();
        let opts = common::direct_opts(&p.my);
        writers.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let mut n = 0u32;
            while !stop.is_cancelled() {
                let values: Vec<String> = (0..5)
                    .map(|i| format!("({}, 'w{w}')", (n * 5 + i) * 4 + w))
                    .collect();
                conn.query_drop("START TRANSACTION").await.unwrap();
                conn.query_drop(format!("INSERT INTO events VALUES {}", values.join(", ")))
                    .await
                    .unwrap();
                conn.exec_drop("UPDATE counters SET v = v + 5 WHERE id = ?", (w % 2 + 1,))
                    .await
                    .unwrap();
                conn.query_drop("COMMIT").await.unwrap();
                n += 1;
            }
            n * 5
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.kill();
    let t = Instant::now();
    wait_holder(&p, &b).await;
    eprintln!("b took over {:?} after a was killed", t.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = Mirror::start(&p, "a2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    b.kill();
    let t = Instant::now();
    wait_holder(&p, &a).await;
    eprintln!("a2 took over {:?} after b was killed", t.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    // Killed once more while catching up, then restarted alone.
    a.kill();
    let last = Mirror::start(&p, "last");
    let deadline = Instant::now() + Duration::from_secs(90);
    let want = format!("{total}|{total}");
    loop {
        let got = servers::postgres()
            .try_sql(&p.pg, "SELECT count(*), count(DISTINCT n) FROM events")
            .unwrap_or_default();
        if got.trim() == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events on PostgreSQL: {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let it pass the last transaction, then nothing more may arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("{total} rows written by 4 unthrottled writers; events on PostgreSQL: {want}");
    assert_eq!(
        servers::postgres()
            .sql(&p.pg, "SELECT count(*), count(DISTINCT n) FROM events")
            .trim(),
        want,
        "a row applied twice (or lost)"
    );
    p.assert_identical().await;
    assert!(last.terminate(), "tandem mirror exits 0 on SIGTERM");
}
