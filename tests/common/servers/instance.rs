//! Instance directories under the temp dir: created per server, removed at
//! exit, and those of killed runs cleaned up at the next start.

#![allow(dead_code)]

use super::*;

/// A `tandem-it-<kind>-XXXXXX` directory under the temp dir, stamped with our
/// pid (and its start time, against pid reuse) in `owner.pid`. Removed on
/// drop unless `keep()` is called.
pub(super) struct InstanceDir(Option<tempfile::TempDir>);

impl InstanceDir {
    pub(super) fn create(kind: &str) -> Result<InstanceDir, String> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_stale_dirs);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{kind}-"))
            .tempdir()
            .map_err(|e| {
                format!(
                    "cannot create a temp dir in {}: {e}",
                    std::env::temp_dir().display()
                )
            })?;
        let me = std::process::id();
        let stamp = format!("{me} {}\n", process_start_time(me).unwrap_or_default());
        fs::write(dir.path().join(OWNER_FILE), stamp).map_err(|e| {
            format!(
                "cannot write {}: {e}",
                dir.path().join(OWNER_FILE).display()
            )
        })?;
        Ok(InstanceDir(Some(dir)))
    }

    pub(super) fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map(|d| d.path())
            .unwrap_or_else(|| Path::new(""))
    }

    pub(super) fn keep(mut self) -> PathBuf {
        self.0.take().map(|d| d.keep()).unwrap_or_default()
    }
}

impl Drop for InstanceDir {
    fn drop(&mut self) {
        // On a failed start, leave the evidence when asked to.
        if let Some(dir) = self.0.take() {
            if keep_dirs() {
                let _ = dir.keep();
            }
        }
    }
}

pub(super) fn keep_dirs() -> bool {
    std::env::var_os("TANDEM_IT_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

pub(super) fn remove_instance_dir(dir: &Path) {
    if keep_dirs() {
        eprintln!("tandem-it: keeping {}", dir.display());
    } else if !dir.as_os_str().is_empty() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Start time (field 22 of /proc/PID/stat, clock ticks since boot) of a
/// running process; `None` if there is no such process or it is a zombie
/// (containers whose init never reaps keep dead test binaries as zombies).
pub(super) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; it ends at the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    if matches!(fields.next()?, "Z" | "X") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Deletes `tandem-it-*` directories whose owning test process is gone
/// (killed runs never get to clean up after themselves).
pub(super) fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(DIR_PREFIX) {
            continue;
        }
        // No owner file: a template (kept on purpose) or a dir being created.
        let Ok(stamp) = fs::read_to_string(entry.path().join(OWNER_FILE)) else {
            continue;
        };
        let mut fields = stamp.split_whitespace();
        let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let recorded_start = fields.next().and_then(|s| s.parse::<u64>().ok());
        let alive = match process_start_time(pid) {
            None => false,
            Some(start) => recorded_start.is_none_or(|r| r == start),
        };
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
