//! Whose identity a client session carries on the backends. `[auth] mode`
//! chooses between relaying each client's own login to the MySQL server
//! (`passthrough`: the server decides who gets in and with which privileges)
//! and proxy-checked `[[users]]` that all run as the `[backends.old] url`
//! account (`users`). `[auth.roles]` maps MySQL accounts to PostgreSQL roles.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// The client logs in to the MySQL backend itself, through the proxy.
    Passthrough,
    /// The proxy checks `[[users]]`; sessions run as the backend URL account.
    Users,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Passthrough => "passthrough",
            AuthMode::Users => "users",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Unset: `passthrough` when no `[[users]]` is configured, else `users`.
    pub mode: Option<AuthMode>,
    /// MySQL user name → PostgreSQL role that PostgreSQL-served statements of
    /// that user run as (`SET ROLE`). Users without an entry are never served
    /// by PostgreSQL while MySQL is authoritative (their reads stay on MySQL).
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
}

impl AuthConfig {
    /// The effective mode for a config with `users_configured` `[[users]]`.
    pub fn effective(&self, users_configured: bool) -> AuthMode {
        self.mode.unwrap_or(if users_configured {
            AuthMode::Users
        } else {
            AuthMode::Passthrough
        })
    }

    /// The PostgreSQL role for a MySQL user, if mapped.
    pub fn role_for(&self, user: &str) -> Option<&str> {
        self.roles.get(user).map(String::as_str)
    }
}

/// Checks a role name before it is spliced into `SET ROLE`: a plain
/// identifier (letters, digits, `_`, `$`, not starting with a digit).
pub fn valid_role(role: &str) -> bool {
    let mut chars = role.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && role.len() <= 63
}

/// Checks `[auth]` against the rest of the config; the error is (key,
/// message). `serves_pg`: the phase (`phase`) has PostgreSQL answer clients.
pub fn validate(
    auth: &AuthConfig,
    users_configured: bool,
    serves_pg: bool,
    phase: &str,
) -> Result<(), (String, String)> {
    let fail = |key: &str, message: String| Err((key.to_string(), message));
    match auth.effective(users_configured) {
        AuthMode::Users if !users_configured => {
            return fail(
                "users",
                "[auth] mode = \"users\" needs at least one [[users]] entry".into(),
            )
        }
        AuthMode::Passthrough if users_configured => {
            return fail(
                "users",
                "[[users]] are not used with [auth] mode = \"passthrough\" (the MySQL server checks logins): remove them or set mode = \"users\"".into(),
            )
        }
        AuthMode::Passthrough if serves_pg => {
            return fail(
                "auth.mode",
                format!("phase `{phase}` is served by PostgreSQL, which cannot check MySQL logins: use [auth] mode = \"users\" with [[users]]"),
            )
        }
        _ => {}
    }
    for (user, role) in &auth.roles {
        if !valid_role(role) {
            return fail(
                &format!("auth.roles.{user}"),
                format!("`{role}` is not a plain PostgreSQL role name (letters, digits, _ and $)"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mode_follows_users() {
        let c = AuthConfig::default();
        assert_eq!(c.effective(false), AuthMode::Passthrough);
        assert_eq!(c.effective(true), AuthMode::Users);
        let forced = AuthConfig {
            mode: Some(AuthMode::Users),
            ..Default::default()
        };
        assert_eq!(forced.effective(false), AuthMode::Users);
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        assert!(valid_role("reporting_ro"));
        assert!(!valid_role("x; DROP TABLE t"));
        assert!(!valid_role("1abc"));
        assert!(!valid_role(""));
    }
}
