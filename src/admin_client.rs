//! The client side of the admin endpoint (what `tandem cutover-check` and
//! the fleet controller ask a running proxy), apart from the server in
//! `crate::admin`: the commands that ask sit below the proxy state the server
//! reads, so the client must not pull the server in.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asks a running proxy's admin endpoint for `path` (what `tandem
/// cutover-check` does), with the token and TLS its config asks for. TLS here
/// encrypts without verifying: the address and the certificate come from the
/// same file. Returns the body of a 200 answer.
pub async fn get(config: &crate::config::Config, path: &str) -> Option<String> {
    let addr = &config.admin.listen;
    let auth = config
        .admin
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: tandem\r\n{auth}Connection: close\r\n\r\n");
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut out = Vec::new();
    if config.admin.tls {
        let target = crate::tls::TlsTarget {
            mode: crate::tls::SslMode::Require,
            ca: None,
        };
        let tls_config = crate::tls::client_config(&target).ok()??;
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let name = crate::tls::server_name(host.trim_matches(['[', ']'])).ok()?;
        let mut s = tokio_rustls::TlsConnector::from(tls_config)
            .connect(name, tcp)
            .await
            .ok()?;
        s.write_all(request.as_bytes()).await.ok()?;
        // A server closing without close_notify still gave us the body.
        let _ = s.read_to_end(&mut out).await;
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes()).await.ok()?;
        s.read_to_end(&mut out).await.ok()?;
    }
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}
