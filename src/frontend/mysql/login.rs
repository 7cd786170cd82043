//! Pieces both logins share (the proxy's own users in `handshake`, relayed
//! passthrough logins in `passthrough`), so neither imports the other: the
//! session a login opens, reading the client's handshake response, leasing
//! the backend connection and the access-denied wording.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::backend::pool::{Lease, MysqlPool};
use crate::metrics::Metrics;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::handshake::HandshakeResponse;
use crate::wire::io::PacketIo;
use crate::wire::packets::ServerError;
use crate::wire::CapabilityFlags as Caps;

/// The session state right after a successful login.
pub(super) fn new_session(
    id: u64,
    peer: SocketAddr,
    user: String,
    client_caps: u32,
    salt: Vec<u8>,
    response: &HandshakeResponse,
    status: u16,
) -> Session {
    Session {
        id,
        peer,
        user,
        client_caps: Caps::from_bits_truncate(client_caps),
        salt,
        collation: response.collation,
        status,
        prepared: Default::default(),
        protocol_changed: false,
        mirror: None,
        mirror_txn_open: false,
        auto_increment_increment: None,
        mariadb_caps: response.mariadb_caps,
        database: response
            .database
            .as_deref()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .unwrap_or_default(),
        last_insert_id: 0,
        reads: 0,
        read_pg: None,
        stream_wrote: false,
        sql_prepared: std::collections::HashMap::new(),
    }
}

/// Reads the client's handshake response, upgrading to TLS first when the
/// client asks, and refuses a plaintext client under `[tls] require`. On
/// failure the client got its ERR packet and `None` is returned. Returns the
/// response, the next sequence id and the user name.
pub(super) async fn read_response(
    client: &mut PacketIo,
    peer: SocketAddr,
    state: &AppState,
) -> Option<(HandshakeResponse, u8, String)> {
    let mut pkt = client.read_packet().await.ok()?;
    let bad = |msg: &'static str| ServerError::new(1043, b"08S01", msg);
    if HandshakeResponse::is_ssl_request(&pkt.payload) {
        // The real handshake response follows inside TLS.
        if !super::tls::upgrade(client, state).await {
            let err = bad("Bad handshake: TLS is not configured on tandem ([tls] cert, key)");
            let _ = client
                .write_and_flush(pkt.seq.wrapping_add(1), &err.encode())
                .await;
            return None;
        }
        pkt = client.read_packet().await.ok()?;
    }
    let Ok(response) = HandshakeResponse::parse(&pkt.payload) else {
        let _ = client
            .write_and_flush(pkt.seq.wrapping_add(1), &bad("Bad handshake").encode())
            .await;
        return None;
    };
    let seq = pkt.seq.wrapping_add(1);
    let user = String::from_utf8_lossy(&response.user).into_owned();
    if super::tls::refused_plaintext(client, state) {
        // As MariaDB under require_secure_transport: 1045, nothing more.
        tracing::warn!(user, "plaintext login refused ([tls] require)");
        let with_password = !response.auth_response.is_empty();
        let _ = client
            .write_and_flush(seq, &access_denied(&user, peer, with_password).encode())
            .await;
        return None;
    }
    Some((response, seq, user))
}

/// Hands a lease back to the pool unless the session took it, whatever way
/// `accept` returns.
/// A backend connection for a new client, or `None` once the client has been
/// told why there is none (the pool's error, as MySQL words it).
pub(super) async fn lease_or_refuse<'a>(
    client: &mut PacketIo,
    state: &'a Arc<AppState>,
) -> Option<UnusedLease<'a>> {
    match state.old.lease().await {
        Ok(lease) => Some(UnusedLease(Some(lease), &state.old)),
        Err(e) => {
            Metrics::incr(&state.metrics.backend_errors);
            tracing::warn!(error = %e, "no backend connection for new client");
            let _ = client
                .write_and_flush(0, &e.to_mysql_error().encode())
                .await;
            None
        }
    }
}

pub(super) struct UnusedLease<'a>(pub(super) Option<Lease>, pub(super) &'a Arc<MysqlPool>);

impl UnusedLease<'_> {
    pub(super) fn get(&mut self) -> &mut Lease {
        // Present until `take`, which is the last use.
        self.0.as_mut().expect("lease taken twice")
    }

    pub(super) fn take(&mut self) -> Lease {
        self.0.take().expect("lease taken twice")
    }
}

impl Drop for UnusedLease<'_> {
    fn drop(&mut self) {
        if let Some(lease) = self.0.take() {
            self.1.recycle(lease);
        }
    }
}

/// The server's wording for a failed login (ERROR 1045, SQLSTATE 28000).
pub fn access_denied(user: &str, peer: SocketAddr, with_password: bool) -> ServerError {
    ServerError::new(
        1045,
        b"28000",
        format!(
            "Access denied for user '{user}'@'{}' (using password: {})",
            peer.ip(),
            if with_password { "YES" } else { "NO" }
        ),
    )
}
