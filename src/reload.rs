//! Hot reload of proxy.toml: on a file change (inotify) or SIGHUP the file is
//! parsed, validated, checked against the running phase, and swapped in
//! atomically. Statements in flight keep the snapshot they loaded; the next
//! ones see the new one. A bad file changes nothing: the old config keeps
//! serving and the log says why.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Phase};
use crate::metrics::Metrics;
use crate::state::{mirror_for, AppState, Snapshot};

/// Watches `path` until `shutdown`. Returns once the watcher is set up.
pub fn spawn(path: PathBuf, state: Arc<AppState>, shutdown: CancellationToken) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let name = path.file_name().map(|n| n.to_os_string());
    let watch_tx = tx.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // A Kubernetes ConfigMap volume never writes the file itself:
            // it renames a new `..data` symlink over the old one.
            let ours = ev.paths.iter().any(|p| {
                let f = p.file_name().map(|n| n.to_os_string());
                f == name || f.as_deref() == Some(std::ffi::OsStr::new("..data"))
            });
            if ours && !matches!(ev.kind, notify::EventKind::Access(_)) {
                let _ = watch_tx.try_send(());
            }
        }
    });
    // Watch the directory: editors replace the file by renaming over it.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let watcher = match watcher {
        Ok(mut w) => match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the config directory; reload with SIGHUP");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; reload with SIGHUP");
            None
        }
    };
    tokio::spawn(async move {
        let _keep = watcher;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = rx.recv() => {}
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading config");
                }
            }
            // Editors write in several steps: let the file settle.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
            let _ = apply(&path, &state).await;
        }
    });
}

/// Loads `path` and swaps it in. Returns the changes applied, or why nothing
/// was.
pub async fn apply(path: &Path, state: &Arc<AppState>) -> Result<Vec<String>, String> {
    let result = load_checked(path, state).await;
    match &result {
        Ok(changes) if changes.is_empty() => {
            tracing::debug!("config file touched; nothing changed")
        }
        Ok(changes) => {
            Metrics::incr(&state.metrics.reloads);
            let version = state.config_version.fetch_add(1, Ordering::Relaxed) + 1;
            for c in changes {
                tracing::info!(version, "config: {c}");
            }
        }
        Err(e) => {
            Metrics::incr(&state.metrics.reload_failures);
            tracing::error!("config reload rejected, keeping the running config: {e}");
        }
    }
    result
}

async fn load_checked(path: &Path, state: &Arc<AppState>) -> Result<Vec<String>, String> {
    let mut new = Config::load(path).map_err(|e| e.to_string())?;
    let old = state.snapshot.load_full();
    // The stream source was chosen at start (`auto` resolved): restart to change.
    if new.mirror.source != old.config.mirror.source {
        tracing::warn!("mirror.source takes effect on restart");
        new.mirror.source = old.config.mirror.source;
    }
    crate::fleet::reload::check(&state.fleet, old.config.phase, &mut new).await?;
    check_transition(old.config.phase, new.phase)?;
    if new.auth_mode() != old.config.auth_mode() {
        // The pool was built for one mode (relayed logins are never pooled).
        return Err(format!(
            "[auth] mode `{}` -> `{}` takes a restart",
            old.config.auth_mode().as_str(),
            new.auth_mode().as_str()
        ));
    }
    if old.config.phase == Phase::DualWrite
        && new.phase == Phase::NewPrimary
        && crate::stream::reverse::applies(&new)
    {
        // A lone proxy's hand edit: the reverse stream must start before the
        // first write reaches PostgreSQL, or MySQL misses it.
        crate::stream::reverse::setup::prepare_flip(&new)
            .await
            .map_err(|e| format!("phase new_primary: cannot start the reverse stream ({e}); fix it (see `tandem check`) or set [mirror] source = \"statements\""))?;
    }
    if new == old.config {
        return Ok(Vec::new());
    }
    let mut changes = diff(&old.config, &new);
    if changes.is_empty() {
        changes.push("(settings without a diff line changed)".into());
    }
    let mut notes = Vec::new();
    if new.listen != old.config.listen {
        notes.push("listen takes effect on restart".to_string());
    }
    if new.backends.old != old.config.backends.old {
        notes.push(
            "backends.old takes effect on restart (sessions are pinned to their connections)"
                .to_string(),
        );
    }
    if new.shadow.workers != old.config.shadow.workers
        || new.shadow.queue_capacity != old.config.shadow.queue_capacity
    {
        notes.push("shadow.workers and shadow.queue_capacity take effect on restart".to_string());
    }
    if new.runtime != old.config.runtime {
        notes.push("runtime takes effect on restart".to_string());
    }
    let mirror_changed = new.phase != old.config.phase
        || new.backends.new != old.config.backends.new
        || new.mirror != old.config.mirror;
    if mirror_changed {
        // Before the first write is mirrored: ids are pinned from it.
        match state.read_schema().await {
            Ok(schema) => state.schema.store(Arc::new(schema)),
            Err(e) => tracing::warn!(error = %e, "cannot read the schema for mirroring yet"),
        }
        let mirror = mirror_for(&new, &state.schema, &state.background)?;
        state.mirror.store(mirror);
    }
    state.snapshot.store(Arc::new(Snapshot::new(new)));
    Ok(changes.into_iter().chain(notes).collect())
}

/// Refuses phase changes that would lose data: a backend can only become
/// authoritative if it has been receiving every write.
pub fn check_transition(from: Phase, to: Phase) -> Result<(), String> {
    use Phase::*;
    let ok = match (from, to) {
        (a, b) if a == b => true,
        (PrimaryOnly, DualWrite) | (DualWrite, PrimaryOnly) => true,
        (DualWrite, NewPrimary) | (NewPrimary, DualWrite) => true,
        (NewPrimary, NewOnly) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "phase change {} -> {} refused: the backend that would become authoritative has not received every write \
             (go through dual_write and new_primary one step at a time)",
            from.as_str(),
            to.as_str()
        ))
    }
}

/// Changed keys as `key old -> new`, secrets masked.
pub fn diff(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(a), Ok(b)) = (
        toml::Value::try_from(Flat(old)),
        toml::Value::try_from(Flat(new)),
    ) else {
        return vec!["(config changed)".into()];
    };
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    out
}

fn walk(path: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (None, Some(y)) => out.push(format!("{p} (unset) -> {}", show(&p, y))),
                    (Some(x), None) => out.push(format!("{p} {} -> (unset)", show(&p, x))),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(format!("{path} {} -> {}", show(path, a), show(path, b))),
        _ => {}
    }
}

fn show(path: &str, v: &toml::Value) -> String {
    if path.contains("password") || path.ends_with("url") || path == "users" {
        return "***".into();
    }
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Serializable view of the config for diffing.
struct Flat<'a>(&'a Config);

impl serde::Serialize for Flat<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("listen", &c.listen)?;
        m.serialize_entry("phase", c.phase.as_str())?;
        let users: Vec<String> = c
            .users
            .iter()
            .map(|u| format!("{}:{:?}{:?}", u.name, u.password, u.password_sha1))
            .collect();
        m.serialize_entry("users", &users)?;
        m.serialize_entry("backends.old.url", &c.backends.old.url)?;
        m.serialize_entry("backends.old.pool_size", &c.backends.old.pool_size)?;
        if let Some(n) = &c.backends.new {
            m.serialize_entry("backends.new.url", &n.url)?;
            m.serialize_entry("backends.new.pool_size", &n.pool_size)?;
        }
        m.serialize_entry(
            "mirror.mode",
            &format!("{:?}", c.mirror.mode).to_lowercase(),
        )?;
        m.serialize_entry("mirror.queue_capacity", &c.mirror.queue_capacity)?;
        m.serialize_entry(
            "mirror.overflow",
            &format!("{:?}", c.mirror.overflow).to_lowercase(),
        )?;
        m.serialize_entry(
            "mirror.drift_log",
            &c.mirror.drift_log.display().to_string(),
        )?;
        m.serialize_entry("limits.max_clients", &c.limits.max_clients)?;
        m.serialize_entry(
            "limits.statement_cache_size",
            &c.limits.statement_cache_size,
        )?;
        m.serialize_entry("log.level", &c.log.level)?;
        m.serialize_entry("reads.new_percent", &c.reads.new_percent)?;
        m.serialize_entry(
            "reads.sticky",
            &format!("{:?}", c.reads.sticky).to_lowercase(),
        )?;
        m.serialize_entry("reads.seed", &c.reads.seed)?;
        if let Some(r) = &c.reads.ramp {
            m.serialize_entry(
                "reads.ramp",
                &format!(
                    "steps={:?} hold={} max_mismatch_rate={} max_error_rate_increase={} max_p95_ms={} min_samples={} step_back={:?}",
                    r.steps, r.hold, r.max_mismatch_rate, r.max_error_rate_increase, r.max_p95_ms, r.min_samples, r.step_back
                ),
            )?;
        }
        m.serialize_entry("admin.listen", &c.admin.listen)?;
        m.serialize_entry("shadow.sample_percent", &c.shadow.sample_percent)?;
        m.serialize_entry("shadow.log", &c.shadow.log.display().to_string())?;
        m.serialize_entry("shadow.workers", &c.shadow.workers)?;
        m.serialize_entry("shadow.queue_capacity", &c.shadow.queue_capacity)?;
        m.serialize_entry("shadow.capture_bytes", &c.shadow.capture_bytes)?;
        m.serialize_entry("shadow.max_rows", &c.shadow.max_rows)?;
        m.serialize_entry("shadow.sample_rows", &c.shadow.sample_rows)?;
        m.serialize_entry("shadow.recheck", &c.shadow.recheck)?;
        m.serialize_entry("shadow.timeout_ms", &c.shadow.timeout_ms)?;
        m.serialize_entry(
            "shadow.max_logged_per_minute",
            &c.shadow.max_logged_per_minute,
        )?;
        m.serialize_entry("mirror.max_backoff_ms", &c.mirror.max_backoff_ms)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_transitions() {
        use Phase::*;
        assert!(check_transition(PrimaryOnly, DualWrite).is_ok());
        assert!(check_transition(DualWrite, PrimaryOnly).is_ok());
        assert!(check_transition(NewPrimary, DualWrite).is_ok());
        assert!(check_transition(PrimaryOnly, NewPrimary)
            .unwrap_err()
            .contains("primary_only -> new_primary"));
        assert!(check_transition(NewOnly, PrimaryOnly).is_err());
        assert!(check_transition(NewOnly, NewPrimary).is_err());
    }

    #[test]
    fn diff_names_keys_and_masks_secrets() {
        let base = "[[users]]\nname = \"app\"\npassword = \"a\"\n[backends.old]\nkind = \"mysql\"\nurl = \"mysql://u:p@h/d\"\n[backends.new]\nkind = \"postgres\"\nurl = \"postgres://u:p@h/d\"\n";
        let a = Config::from_toml(base, |_| None).unwrap();
        let b = Config::from_toml(
            &format!(
                "phase = \"dual_write\"\n{}",
                base.replace("password = \"a\"", "password = \"b\"")
            ),
            |_| None,
        )
        .unwrap();
        let d = diff(&a, &b);
        assert!(
            d.contains(&"phase primary_only -> dual_write".to_string()),
            "{d:?}"
        );
        assert!(d.iter().any(|l| l.starts_with("users *** -> ***")), "{d:?}");
        assert!(d.iter().all(|l| !l.contains("\"b\"")));
        assert!(diff(&a, &a).is_empty());
    }
}
