//! TLS between a MySQL client and the proxy: whether CLIENT_SSL is offered,
//! the upgrade after an SSLRequest, and `[tls] require`. The certificate and
//! its reloading are `tls::server`'s.

use crate::state::AppState;
use crate::wire::io::PacketIo;
use crate::wire::CapabilityFlags as Caps;

/// CLIENT_SSL when a certificate is configured and loaded, else 0.
pub fn tls_cap(state: &AppState) -> u32 {
    let snapshot = state.snapshot.load();
    let cfg = &snapshot.config.tls;
    if state
        .tls
        .acceptor(cfg.cert.as_deref(), cfg.key.as_deref())
        .is_some()
    {
        Caps::CLIENT_SSL.bits()
    } else {
        0
    }
}

/// Runs the TLS handshake after a client's SSLRequest. False when TLS is not
/// configured (the caller answers with an error) or the handshake failed
/// (the connection is then unusable; the reason is logged).
pub async fn upgrade(client: &mut PacketIo, state: &AppState) -> bool {
    let acceptor = {
        let snapshot = state.snapshot.load();
        let cfg = &snapshot.config.tls;
        state.tls.acceptor(cfg.cert.as_deref(), cfg.key.as_deref())
    };
    let Some(acceptor) = acceptor else {
        return false;
    };
    match client.accept_tls(&acceptor).await {
        Ok(()) => true,
        Err(e) => {
            tracing::info!(error = %e, "client TLS handshake failed");
            false
        }
    }
}

/// True when `[tls] require` is on and this client did not upgrade.
pub fn refused_plaintext(client: &PacketIo, state: &AppState) -> bool {
    state.snapshot.load().config.tls.require && !client.tls().is_tls()
}
