//! The connection phase as the server: greet with the backend's identity,
//! authenticate the client against the configured users, then log the leased
//! backend connection in with the client's options and pass its OK on.
//! What passthrough logins share with it is in `login.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use super::login::{access_denied, lease_or_refuse, new_session, read_response};
use crate::auth::verify_native;
use crate::backend::mysql::{
    negotiate, BackendConn, SessionOpts, SUPPORTED_MARIADB_CAPS, UNSUPPORTED_CAPS,
};
use crate::backend::pool::{Checkout, LeasePermit};
use crate::backend::BackendError;
use crate::metrics::Metrics;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::handshake::{random_salt, Greeting, HandshakeResponse, NATIVE_PASSWORD};
use crate::wire::io::PacketIo;
use crate::wire::packets::auth_switch_request;
use crate::wire::CapabilityFlags as Caps;

/// Runs the handshake (`users` mode here; passthrough logins are relayed by
/// `passthrough::accept`). On failure the client has been sent an ERR packet
/// (when it is still there) and `None` is returned.
pub async fn accept(
    client: &mut PacketIo,
    id: u64,
    peer: SocketAddr,
    state: &Arc<AppState>,
) -> Option<(Session, BackendConn, LeasePermit)> {
    if state.old.passthrough() {
        return super::passthrough::accept(client, id, peer, state).await;
    }
    // The backend connection comes first: its greeting (version, connection
    // id, status, charset) is what the client must see.
    let pool = &state.old;
    let mut lease = lease_or_refuse(client, state).await?;
    let backend_greeting = lease.get().checkout.greeting().clone();
    let salt = random_salt();
    let advertised =
        (backend_greeting.capabilities.bits() & !UNSUPPORTED_CAPS) | super::tls::tls_cap(state);
    let greeting = Greeting {
        salt: salt.clone(),
        capabilities: Caps::from_bits_truncate(advertised),
        mariadb_caps: backend_greeting.mariadb_caps & SUPPORTED_MARIADB_CAPS,
        auth_plugin: NATIVE_PASSWORD.to_vec(),
        ..backend_greeting.clone()
    };
    client.write_and_flush(0, &greeting.encode()).await.ok()?;

    let (response, seq, user) = login(client, &salt, peer, state).await?;

    let client_caps = response.capabilities & (advertised | Caps::CLIENT_LONG_PASSWORD.bits());
    let opts = SessionOpts {
        capabilities: client_caps,
        mariadb_caps: response.mariadb_caps,
        collation: response.collation,
        // A client without a database gets none, as directly; the backend
        // URL's database is only the proxy's own default.
        database: response.database.clone(),
        max_packet: response.max_packet,
    };
    let wanted = negotiate(opts.clone(), &backend_greeting).shape();
    pool.note_shape(wanted);
    if matches!(&lease.get().checkout, Checkout::Idle(c) if c.opts.shape() != wanted) {
        // The idle connection speaks a different protocol dialect: open one
        // that matches. The greeting's connection id is then stale (rare: only
        // when clients with different capabilities share the pool).
        if let Err(e) = pool.replace(lease.get()).await {
            let _ = client
                .write_and_flush(seq, &e.to_mysql_error().encode())
                .await;
            return None;
        }
    }
    let (checkout, permit) = lease.take().into_parts();
    let login = match checkout {
        Checkout::Idle(mut conn) => conn
            .change_user(&pool.target, opts.collation, opts.database.clone())
            .await
            .map(|ok| (conn, ok)),
        Checkout::Fresh(greeted) => greeted.authenticate(&pool.target, opts).await,
    };
    let (backend, ok) = match login {
        Ok(x) => x,
        Err(e) => {
            // A server error (unknown database, …) reaches the client as is.
            if !matches!(e, BackendError::Server(_)) {
                Metrics::incr(&state.metrics.backend_errors);
                tracing::warn!(error = %e, "backend login failed");
            }
            let _ = client
                .write_and_flush(seq, &e.to_mysql_error().encode())
                .await;
            return None;
        }
    };
    client.write_and_flush(seq, &ok.payload).await.ok()?;
    let status = crate::wire::packets::OkInfo::parse(&ok.payload)
        .map(|o| o.status)
        .unwrap_or(backend_greeting.status);
    let session = new_session(id, peer, user, client_caps, salt, &response, status);
    Some((session, backend, permit))
}

/// Reads the client's handshake response, switches it to
/// mysql_native_password when it started with another plugin, and checks its
/// answer against the configured users. On failure the client got its ERR
/// packet and `None` is returned. Returns the response, the next sequence id
/// and the user name.
pub async fn login(
    client: &mut PacketIo,
    salt: &[u8],
    peer: SocketAddr,
    state: &AppState,
) -> Option<(HandshakeResponse, u8, String)> {
    let (response, mut seq, user) = read_response(client, peer, state).await?;
    if let Some(password) = super::auth_sha2::sha2_password(state, &user) {
        let (ok, next) =
            super::auth_sha2::authenticate(client, seq, salt, &response, &user, &password, state)
                .await?;
        if !ok {
            Metrics::incr(&state.metrics.auth_failures);
            tracing::warn!(user, "authentication failed");
            let _ = client
                .write_and_flush(next, &access_denied(&user, peer, true).encode())
                .await;
            return None;
        }
        return Some((response, next, user));
    }
    let mut token = response.auth_response.clone();
    if response
        .auth_plugin
        .as_deref()
        .is_some_and(|p| p != NATIVE_PASSWORD)
    {
        client
            .write_and_flush(seq, &auth_switch_request(NATIVE_PASSWORD, salt))
            .await
            .ok()?;
        let reply = client.read_packet().await.ok()?;
        token = reply.payload.to_vec();
        seq = reply.seq.wrapping_add(1);
    }
    let authorized = state
        .snapshot
        .load()
        .users
        .get(&user)
        .is_some_and(|cred| verify_native(cred, salt, &token));
    if !authorized {
        Metrics::incr(&state.metrics.auth_failures);
        tracing::warn!(user, "authentication failed");
        let _ = client
            .write_and_flush(seq, &access_denied(&user, peer, !token.is_empty()).encode())
            .await;
        return None;
    }
    Some((response, seq, user))
}
