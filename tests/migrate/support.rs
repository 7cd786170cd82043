//! Helpers for the migrate tests: a MariaDB database and a PostgreSQL
//! database per test, a proxy.toml naming them, and the real `tandem` binary.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::servers;

pub struct Env {
    pub my: String,
    pub pg: String,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Env {
    pub fn new(prefix: &str) -> Env {
        let my = servers::mariadb().create_database(prefix);
        let pg = servers::postgres().create_database(prefix);
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("proxy.toml");
        std::fs::write(
            &config,
            format!(
                "[[users]]\nname = \"app\"\npassword = \"x\"\n\
                 [backends.old]\nkind = \"mysql\"\nurl = \"{}\"\n\
                 [backends.new]\nkind = \"postgres\"\nurl = \"{}\"\n\
                 [mirror]\nsource = \"statements\"\n",
                servers::mariadb().url(&my),
                servers::postgres().url(&pg)
            ),
        )
        .expect("write proxy.toml");
        Env {
            my,
            pg,
            config,
            _dir: dir,
        }
    }

    /// SQL on the old side (root, this test's database, UTC).
    pub fn my(&self, sql: &str) -> String {
        servers::mariadb().root_sql(&format!(
            "USE `{}`; SET time_zone = '+00:00';\n{sql}",
            self.my
        ))
    }

    /// SQL on the new side.
    pub fn pg(&self, sql: &str) -> String {
        servers::postgres().sql(&self.pg, sql)
    }

    pub fn my_url(&self) -> String {
        servers::mariadb().url(&self.my)
    }

    pub fn pg_url(&self) -> String {
        servers::postgres().url(&self.pg)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("TANDEM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `tandem <args> --config …` to completion (at most 5 minutes).
    pub fn tandem(&self, args: &[&str]) -> Run {
        let child = self.command(args).spawn().expect("start tandem");
        wait(child, Duration::from_secs(300), args)
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn wait(mut child: Child, limit: Duration, what: &[&str]) -> Run {
    let started = Instant::now();
    // Drain the pipes on threads so a chatty child cannot block on them.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("tandem {what:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// The verify report's per-table entry for `table`.
pub fn table_report<'a>(report: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == table))
        .unwrap_or_else(|| panic!("no report for {table}: {report}"))
}

pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Rows of a `-N -B` (tab) or psql (`|`) listing, each field a column.
pub fn split_rows(text: &str, sep: char) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(sep).map(str::to_string).collect())
        .collect()
}

/// Decimal text without trailing fractional zeros (`1.500` → `1.5`).
pub fn trim_decimal(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Rows the checkpoint says are copied (0 before the backfill created it).
pub fn checkpoint_rows(env: &Env, table: &str) -> u64 {
    servers::postgres()
        .try_sql(
            &env.pg,
            &format!(
                "SELECT rows_copied FROM tandem_backfill_checkpoint WHERE table_name = '{table}'"
            ),
        )
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

pub fn fingerprint_my(env: &Env) -> String {
    env.my(
        "SET SESSION group_concat_max_len = 1073741824; \
         SELECT COUNT(*), COUNT(DISTINCT id), SUM(id), MD5(GROUP_CONCAT(id, ':', v ORDER BY id SEPARATOR ',')) FROM big",
    )
    .trim()
    .replace('\t', "|")
}

pub fn fingerprint_pg(env: &Env) -> String {
    env.pg("SELECT count(*), count(DISTINCT id), sum(id), md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM big")
        .trim()
        .to_string()
}
