//! One MariaDB database and one PostgreSQL database made for a test, with a
//! scratch directory, and the proxy configuration that joins them: the
//! stream, reverse-stream and fleet tests all start this way, and used to
//! each format the same TOML by hand.

use std::path::PathBuf;

use super::config::TestConfig;
use super::servers;

/// A fresh database on each shared server, and a scratch directory
/// (removed on drop) for drift logs and config files.
pub struct DbPair {
    pub my: String,
    pub pg: String,
    pub dir: PathBuf,
}

impl DbPair {
    /// Creates `prefix`-named databases on both servers.
    pub fn new(prefix: &str) -> Self {
        let my = servers::mariadb().create_database(prefix);
        let pg = servers::postgres().create_database(prefix);
        let dir = std::env::temp_dir().join(format!("tandem-{prefix}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Self { my, pg, dir }
    }

    /// A proxy in `phase` over the two, mirroring through the binlog change
    /// stream (drift log in the scratch directory, admin listener off).
    pub fn binlog_config(&self, phase: &str, max_backoff_ms: u64) -> TestConfig {
        TestConfig::new(&self.my)
            .phase(phase)
            .new_backend(&servers::postgres().url(&self.pg))
            .drift_log(&self.dir.join("drift.jsonl"))
            .mirror("source", "\"binlog\"")
            .mirror("max_backoff_ms", &max_backoff_ms.to_string())
            .admin(false)
    }

    /// The names and the directory, which the caller now removes.
    pub fn into_parts(self) -> (String, String, PathBuf) {
        let me = std::mem::ManuallyDrop::new(self);
        (me.my.clone(), me.pg.clone(), me.dir.clone())
    }
}

impl Drop for DbPair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
