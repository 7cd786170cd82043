//! Loading `proxy.toml`: parse, expand `${VAR}`, deserialize, validate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{invalid, BackendKind, Config, ConfigError, Phase, ShadowConfig};

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, |k| std::env::var(k).ok())
    }

    /// Parses and validates; `env` resolves `${VAR}` references.
    pub fn from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        expand_env(&mut value, &mut String::new(), &env)?;
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            invalid(
                if key == "." { "config".into() } else { key },
                e.into_inner().to_string(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Only `[shadow] log`, for commands that need nothing else (`tandem
    /// mismatches`): an operator may be mid-edit on an unrelated key while
    /// the proxy keeps serving the last good config. The whole file is
    /// validated first; when that fails the error is returned alongside as a
    /// warning and the log path is still taken from the file (with `${VAR}`
    /// expanded in that one value). Unreadable TOML, or an invalid
    /// `[shadow] log` itself, is an error.
    pub fn shadow_log_lenient(path: &Path) -> Result<(PathBuf, Option<ConfigError>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::shadow_log_from_toml(&text, |k| std::env::var(k).ok())
    }

    /// [`Config::shadow_log_lenient`] on a file's text.
    pub fn shadow_log_from_toml(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(PathBuf, Option<ConfigError>), ConfigError> {
        let warning = match Self::from_toml(text, &env) {
            Ok(config) => return Ok((config.shadow.log, None)),
            Err(ConfigError::Syntax(e)) => return Err(ConfigError::Syntax(e)),
            Err(e) => e,
        };
        let value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let log = match value.get("shadow").map(|s| s.get("log")) {
            None | Some(None) => ShadowConfig::default().log,
            Some(Some(toml::Value::String(s))) => {
                PathBuf::from(expand_str(s, &env).map_err(|m| invalid("shadow.log", m))?)
            }
            Some(Some(other)) => {
                return Err(invalid(
                    "shadow.log",
                    format!("expected a path string, found {}", other.type_str()),
                ))
            }
        };
        Ok((log, Some(warning)))
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| {
            invalid(
                "listen",
                format!("`{}` is not an address:port ({e})", self.listen),
            )
        })
    }

    /// The effective `[auth] mode`.
    pub fn auth_mode(&self) -> crate::auth::mode::AuthMode {
        self.auth.effective(!self.users.is_empty())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let serves_pg = matches!(self.phase, Phase::NewPrimary | Phase::NewOnly);
        crate::auth::mode::validate(
            &self.auth,
            !self.users.is_empty(),
            serves_pg,
            self.phase.as_str(),
        )
        .map_err(|(key, message)| invalid(key, message))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err(invalid("tls.key", "[tls] cert is set without its key")),
            (None, Some(_)) => return Err(invalid("tls.cert", "[tls] key is set without a cert")),
            (None, None) if self.tls.require => {
                return Err(invalid(
                    "tls.require",
                    "clients cannot use TLS without [tls] cert and key",
                ))
            }
            _ => {}
        }
        if self.admin.tls {
            let own = self.admin.cert.is_some() && self.admin.key.is_some();
            let shared = self.tls.cert.is_some() && self.tls.key.is_some();
            if !own && !shared {
                return Err(invalid(
                    "admin.tls",
                    "needs [admin] cert and key, or [tls] cert and key",
                ));
            }
        }
        if self.admin.token.as_deref() == Some("") {
            return Err(invalid("admin.token", "must not be empty"));
        }
        match self.phase {
            Phase::PrimaryOnly => {}
            Phase::DualWrite => {
                if self.backends.new.is_none() {
                    return Err(invalid(
                        "phase",
                        "`dual_write` mirrors writes to [backends.new], which is not configured",
                    ));
                }
            }
            Phase::NewPrimary | Phase::NewOnly => match &self.backends.new {
                Some(b) if b.kind == BackendKind::Postgres => {}
                Some(_) => {
                    return Err(invalid(
                        "phase",
                        format!(
                            "phase `{}` needs a PostgreSQL [backends.new] in this version (MySQL-to-MySQL moves stop at dual_write)",
                            self.phase.as_str()
                        ),
                    ))
                }
                None => {
                    return Err(invalid(
                        "phase",
                        format!("phase `{}` serves from [backends.new], which is not configured", self.phase.as_str()),
                    ))
                }
            },
        }
        if !(0.0..=100.0).contains(&self.reads.new_percent) {
            return Err(invalid("reads.new_percent", "must be between 0 and 100"));
        }
        if let Some(ramp) = &self.reads.ramp {
            ramp.validate().map_err(|(k, m)| invalid(k, m))?;
        }
        if !(0.0..=100.0).contains(&self.shadow.sample_percent) {
            return Err(invalid(
                "shadow.sample_percent",
                "must be between 0 and 100",
            ));
        }
        if self.shadow.sample_percent > 0.0 && self.backends.new.is_none() {
            return Err(invalid(
                "shadow.sample_percent",
                "shadow reads run on [backends.new], which is not configured",
            ));
        }
        for (key, v) in [
            ("shadow.workers", u64::from(self.shadow.workers)),
            (
                "shadow.queue_capacity",
                u64::from(self.shadow.queue_capacity),
            ),
            ("shadow.max_rows", u64::from(self.shadow.max_rows)),
            ("shadow.timeout_ms", self.shadow.timeout_ms),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.shadow.workers > 64 {
            return Err(invalid("shadow.workers", "at most 64"));
        }
        if self.mirror.queue_capacity == 0 {
            return Err(invalid("mirror.queue_capacity", "must be at least 1"));
        }
        if self.mirror.apply_workers == 0 || self.mirror.apply_workers > 64 {
            return Err(invalid("mirror.apply_workers", "must be between 1 and 64"));
        }
        if self.mirror.server_id == 0 {
            return Err(invalid(
                "mirror.server_id",
                "must be at least 1 (a primary refuses replicas with server id 0)",
            ));
        }
        self.validate_auth()?;
        let mut seen = std::collections::HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            let key = format!("users[{i}]");
            match u.plugin.as_deref() {
                None | Some("mysql_native_password") => {}
                Some("caching_sha2_password") if u.password.is_some() => {}
                Some("caching_sha2_password") => return Err(invalid(
                    format!("{key}.plugin"),
                    "caching_sha2_password needs `password` (a password_sha1 hash cannot check it)",
                )),
                Some(other) => {
                    return Err(invalid(
                        format!("{key}.plugin"),
                        format!(
                            "`{other}`: expected mysql_native_password or caching_sha2_password"
                        ),
                    ))
                }
            }
            if u.name.is_empty() {
                return Err(invalid(format!("{key}.name"), "must not be empty"));
            }
            if !seen.insert(&u.name) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("duplicate user `{}`", u.name),
                ));
            }
            match (&u.password, &u.password_sha1) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        &key,
                        "set either `password` or `password_sha1`, not both",
                    ))
                }
                (None, None) => return Err(invalid(&key, "needs `password` or `password_sha1`")),
                (None, Some(h)) if crate::auth::parse_native_hash(h).is_none() => {
                    return Err(invalid(
                        format!("{key}.password_sha1"),
                        "expected `*` followed by 40 hex digits (as SELECT PASSWORD('…') prints)",
                    ))
                }
                _ => {}
            }
        }
        for (name, b) in [
            ("old", Some(&self.backends.old)),
            ("new", self.backends.new.as_ref()),
        ] {
            let Some(b) = b else { continue };
            let key = format!("backends.{name}");
            b.target().map_err(|m| invalid(format!("{key}.url"), m))?;
            if b.pool_size == 0 {
                return Err(invalid(format!("{key}.pool_size"), "must be at least 1"));
            }
        }
        if self.backends.old.kind != BackendKind::Mysql {
            return Err(invalid(
                "backends.old.kind",
                "the old (authoritative) backend must be `mysql` in this version",
            ));
        }
        if self.limits.max_clients == 0 {
            return Err(invalid("limits.max_clients", "must be at least 1"));
        }
        if self.limits.max_packet_bytes < 1024 {
            return Err(invalid("limits.max_packet_bytes", "must be at least 1024"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", format!("not a valid filter: {e}")))?;
        Ok(())
    }
}

/// Replaces `${VAR}` in every string value; `$$` stands for a literal `$`.
fn expand_env(
    value: &mut toml::Value,
    path: &mut String,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains('$') => {
            *s = expand_str(s, env).map_err(|m| invalid(path.clone(), m))?;
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                expand_env(v, path, env)?;
                path.truncate(len);
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_env(v, path, env)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn expand_str(s: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or("unterminated `${` (write `$$` for a literal `$`)")?;
            let name = &r[..end];
            let val =
                env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
            out.push_str(&val);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
