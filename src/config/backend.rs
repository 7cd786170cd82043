//! Backend URLs taken apart: credentials, TLS parameters, the redacted form
//! shown to people.

use std::time::Duration;

use super::{BackendConfig, BackendKind};

/// A URL with its password replaced by `***`, for anything shown to people.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".into(),
    }
}

/// A backend URL taken apart. Its Debug output leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
    /// `sslmode`/`sslrootcert` (PostgreSQL) or `ssl-mode`/`ssl-ca` (MySQL).
    pub tls: crate::tls::TlsTarget,
}

impl std::fmt::Debug for BackendTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish()
    }
}

impl BackendTarget {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl BackendConfig {
    pub fn target(&self) -> Result<BackendTarget, String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("not a URL: {e}"))?;
        let (scheme, default_port) = match self.kind {
            BackendKind::Mysql => ("mysql", 3306),
            BackendKind::Postgres => ("postgres", 5432),
        };
        if url.scheme() != scheme && !(scheme == "postgres" && url.scheme() == "postgresql") {
            return Err(format!(
                "scheme `{}` does not match kind (expected {scheme}://)",
                url.scheme()
            ));
        }
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "bad percent-encoding in URL credentials".to_string())
        };
        let host = url.host_str().ok_or("URL has no host")?.to_string();
        let database = url.path().trim_start_matches('/');
        Ok(BackendTarget {
            host,
            port: url.port().unwrap_or(default_port),
            user: decode(url.username())?,
            password: decode(url.password().unwrap_or(""))?,
            database: (!database.is_empty()).then(|| database.to_string()),
            tls: url_tls(&url, self.kind)?,
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

/// The TLS parameters of a backend URL, spelled as each engine's own client
/// spells them. Any other parameter is an error (a typo must not silently
/// mean "no TLS").
fn url_tls(url: &url::Url, kind: BackendKind) -> Result<crate::tls::TlsTarget, String> {
    use crate::tls::SslMode;
    let mut mode = None;
    let mut ca = None;
    for (key, value) in url.query_pairs() {
        match (kind, key.as_ref()) {
            (BackendKind::Postgres, "sslmode") => {
                mode = Some(SslMode::from_libpq(&value).ok_or_else(|| {
                    format!(
                        "sslmode `{value}`: expected disable, prefer, require, verify-ca or verify-full"
                    )
                })?)
            }
            (BackendKind::Postgres, "sslrootcert") | (BackendKind::Mysql, "ssl-ca" | "ssl_ca") => {
                ca = Some(std::path::PathBuf::from(value.as_ref()))
            }
            (BackendKind::Mysql, "ssl-mode" | "ssl_mode") => {
                mode = Some(SslMode::from_mysql(&value).ok_or_else(|| {
                    format!(
                        "ssl-mode `{value}`: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                    )
                })?)
            }
            (BackendKind::Postgres, other) => {
                return Err(format!(
                    "unknown URL parameter `{other}` (supported: sslmode, sslrootcert)"
                ))
            }
            (BackendKind::Mysql, other) => {
                return Err(format!(
                    "unknown URL parameter `{other}` (supported: ssl-mode, ssl-ca)"
                ))
            }
        }
    }
    let mode = match (kind, mode, &ca) {
        // libpq: with a root certificate, `require` verifies the chain.
        (BackendKind::Postgres, Some(SslMode::Require), Some(_)) => SslMode::VerifyCa,
        // The MySQL client: --ssl-ca without --ssl-mode means VERIFY_CA.
        (BackendKind::Mysql, None, Some(_)) => SslMode::VerifyCa,
        (_, mode, _) => mode.unwrap_or_default(),
    };
    if mode.verifies() && ca.is_none() {
        return Err(format!(
            "{mode:?} needs the CA file: add {}",
            match kind {
                BackendKind::Postgres => "sslrootcert=/path/ca.pem",
                BackendKind::Mysql => "ssl-ca=/path/ca.pem",
            }
        ));
    }
    Ok(crate::tls::TlsTarget { mode, ca })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
