//! mysql_async connections (migrate commands, shadow comparisons) opened from
//! a backend URL, with the same `ssl-mode`/`ssl-ca` meaning as the proxy's own
//! MySQL connections (`backend::mysql`): one place maps the URL onto
//! mysql_async's options, so no caller can forget TLS.
//!
//! Why two MySQL clients: `backend::mysql` relays packets verbatim (the
//! client's own capabilities, charset and sequence ids, the backend's real
//! greeting shown before login), which a typed driver cannot do; this one
//! decodes rows into typed values (binary protocol, column metadata) for the
//! commands that compare or copy data, which the relay client does not do.
//! Both read the URL's TLS settings the same way.

use std::time::Duration;

use crate::config::BackendTarget;
use crate::tls::SslMode;

#[derive(Debug, thiserror::Error)]
pub enum AsyncConnectError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Mysql(#[from] mysql_async::Error),
    /// mysql_async 0.37 cannot skip only the host-name check with this rustls
    /// (it matches an error text rustls no longer prints), so VERIFY_CA is
    /// stricter here: it fails closed, and says so.
    #[error(
        "{0} (this connection checks the host name even under VERIFY_CA: put the name the \
         certificate carries in the URL, or use VERIFY_IDENTITY)"
    )]
    NameChecked(mysql_async::Error),
}

/// mysql_async options for `target`, logging in to `database`. `tls` false
/// leaves TLS off whatever the URL says (the plaintext retry of PREFERRED).
fn opts(target: &BackendTarget, database: Option<String>, tls: bool) -> mysql_async::OptsBuilder {
    let builder = mysql_async::OptsBuilder::default()
        .ip_or_hostname(target.host.clone())
        .tcp_port(target.port)
        .user(Some(target.user.clone()))
        .pass(Some(target.password.clone()))
        .db_name(database)
        // Otherwise mysql_async switches to the server's unix socket.
        .prefer_socket(false);
    if !tls || target.tls.mode == SslMode::Disable {
        return builder;
    }
    let mut ssl = mysql_async::SslOpts::default();
    if let Some(ca) = &target.tls.ca {
        ssl = ssl
            .with_root_certs(vec![ca.clone().into()])
            // Only the configured CA is trusted, not a built-in bundle.
            .with_disable_built_in_roots(true);
    }
    ssl = match target.tls.mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => ssl
            .with_danger_accept_invalid_certs(true)
            .with_danger_skip_domain_validation(true),
        SslMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
        SslMode::VerifyFull => ssl,
    };
    builder.ssl_opts(Some(ssl))
}

/// Connects within `timeout`. PREFERRED retries in plaintext only when the
/// server does not offer TLS at all; every other mode fails as configured.
pub async fn connect(
    target: &BackendTarget,
    database: Option<String>,
    timeout: Duration,
) -> Result<mysql_async::Conn, AsyncConnectError> {
    crate::tls::install_default_provider();
    let attempt = |tls| {
        tokio::time::timeout(
            timeout,
            mysql_async::Conn::new(opts(target, database.clone(), tls)),
        )
    };
    match attempt(true)
        .await
        .map_err(|_| AsyncConnectError::Timeout)?
    {
        Ok(conn) => Ok(conn),
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if target.tls.mode == SslMode::Prefer =>
        {
            Ok(attempt(false)
                .await
                .map_err(|_| AsyncConnectError::Timeout)??)
        }
        Err(e)
            if target.tls.mode == SslMode::VerifyCa
                && e.to_string().contains("not valid for name") =>
        {
            Err(AsyncConnectError::NameChecked(e))
        }
        Err(e) => Err(e.into()),
    }
}
