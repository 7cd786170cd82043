//! Passthrough authentication: the client logs in to the MySQL server itself,
//! through the proxy, so the server decides who gets in and with which
//! privileges. The client is greeted with the scramble of a backend connection
//! opened for it; its handshake response and every later auth packet (auth
//! switch, caching_sha2 fast/full authentication, RSA key exchange) are relayed
//! both ways until the server's OK or ERR, which the client gets verbatim.
//! COM_CHANGE_USER is relayed the same way. The proxy never learns a password
//! and never relays one in clear onto a plaintext backend hop.

use std::net::SocketAddr;
use std::sync::Arc;

use super::login::{lease_or_refuse, new_session, read_response};
use super::reply::{reply_error, Flow};
use crate::backend::mysql::{
    negotiate, start_tls, use_tls, BackendConn, SessionOpts, SUPPORTED_MARIADB_CAPS,
    UNSUPPORTED_CAPS,
};
use crate::backend::pool::{Checkout, LeasePermit};
use crate::backend::BackendError;
use crate::frontend::mysql::relay::RelayError;
use crate::metrics::Metrics;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::buf::Reader;
use crate::wire::handshake::{ChangeUser, Greeting, HandshakeResponse};
use crate::wire::io::{Packet, PacketIo, WireError};
use crate::wire::packets::{self, ServerError};
use crate::wire::CapabilityFlags as Caps;

/// Auth plugins whose client answer is the password itself.
const CLEAR_TEXT_PLUGINS: [&[u8]; 2] = [b"mysql_clear_password", b"dialog"];

/// caching_sha2_password status bytes after `0x01`.
const FAST_AUTH_SUCCESS: u8 = 0x03;
const PERFORM_FULL_AUTH: u8 = 0x04;
/// The client's "send me your RSA public key" request.
const REQUEST_PUBLIC_KEY: u8 = 0x02;

/// How a relayed authentication exchange ended.
enum AuthEnd {
    /// The server's OK, already passed to the client.
    Ok(Packet),
    /// The server's ERR, already passed to the client.
    Denied,
    /// The proxy stopped it and told the client why.
    Refused,
}

#[derive(Debug, thiserror::Error)]
enum AuthRelayError {
    #[error("client: {0}")]
    Client(WireError),
    #[error("backend: {0}")]
    Backend(WireError),
    #[error("unexpected packet from the backend during authentication")]
    Unexpected,
}

/// Runs a new client's login against a backend connection opened for it. On
/// failure the client has been told (the server's ERR, or ours) and `None` is
/// returned.
pub async fn accept(
    client: &mut PacketIo,
    id: u64,
    peer: SocketAddr,
    state: &Arc<AppState>,
) -> Option<(Session, BackendConn, LeasePermit)> {
    let pool = &state.old;
    let mut lease = lease_or_refuse(client, state).await?;
    let backend_greeting = lease.get().checkout.greeting().clone();
    let advertised =
        (backend_greeting.capabilities.bits() & !UNSUPPORTED_CAPS) | super::tls::tls_cap(state);
    // The server's own scramble and default plugin: the client's answer is
    // computed for the server, not for the proxy.
    let greeting = Greeting {
        capabilities: Caps::from_bits_truncate(advertised),
        mariadb_caps: backend_greeting.mariadb_caps & SUPPORTED_MARIADB_CAPS,
        ..backend_greeting.clone()
    };
    client.write_and_flush(0, &greeting.encode()).await.ok()?;
    let (response, seq, user) = read_response(client, peer, state).await?;

    let backend_tls = match use_tls(&pool.target, &backend_greeting) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "backend TLS");
            let _ = client
                .write_and_flush(seq, &e.to_mysql_error().encode())
                .await;
            return None;
        }
    };
    if is_clear_text(response.auth_plugin.as_deref()) && !backend_tls {
        let _ = client
            .write_and_flush(seq, &clear_text_refused().encode())
            .await;
        return None;
    }
    let client_caps = response.capabilities & (advertised | Caps::CLIENT_LONG_PASSWORD.bits());
    let opts = negotiate(
        SessionOpts {
            capabilities: client_caps,
            mariadb_caps: response.mariadb_caps,
            collation: response.collation,
            database: response.database.clone(),
            max_packet: response.max_packet,
        },
        &backend_greeting,
    );
    pool.note_shape(opts.shape());
    let (checkout, permit) = lease.take().into_parts();
    let Checkout::Fresh(greeted) = checkout else {
        // The pool never hands out idle connections in passthrough mode.
        tracing::error!("passthrough login got a pooled connection; refusing");
        let err = ServerError::new(1045, b"28000", "tandem: no fresh backend connection");
        let _ = client.write_and_flush(seq, &err.encode()).await;
        return None;
    };
    let (io, _, home) = greeted.into_parts();
    let mut caps = opts.capabilities;
    if backend_tls {
        caps |= Caps::CLIENT_SSL.bits();
    }
    let relayed = HandshakeResponse {
        capabilities: caps,
        max_packet: opts.max_packet,
        collation: opts.collation,
        mariadb_caps: opts.mariadb_caps,
        user: response.user.clone(),
        auth_response: response.auth_response.clone(),
        database: response.database.clone(),
        auth_plugin: response.auth_plugin.clone(),
        attributes: response
            .attributes
            .clone()
            .filter(|_| caps & Caps::CLIENT_CONNECT_ATTRS.bits() != 0),
    };
    let encoded = relayed.encode();
    let sent = send_response(io, &encoded, backend_tls, &pool.target).await;
    let mut io = match sent {
        Ok(io) => io,
        Err(e) => {
            Metrics::incr(&state.metrics.backend_errors);
            tracing::warn!(error = %e, "relaying the login to the backend failed");
            let _ = client
                .write_and_flush(seq, &e.to_mysql_error().encode())
                .await;
            return None;
        }
    };
    let ok = match relay_auth(client, &mut io, seq, backend_tls).await {
        Ok(AuthEnd::Ok(ok)) => ok,
        Ok(AuthEnd::Denied) => {
            Metrics::incr(&state.metrics.auth_failures);
            tracing::info!(user, "the server refused the login");
            return None;
        }
        Ok(AuthEnd::Refused) => return None,
        Err(e) => {
            tracing::warn!(user, error = %e, "relayed login failed");
            if let AuthRelayError::Backend(_) | AuthRelayError::Unexpected = e {
                Metrics::incr(&state.metrics.backend_errors);
                let err = ServerError::new(
                    2013,
                    b"HY000",
                    "Lost connection to the backend during login",
                );
                let _ = client.write_and_flush(seq, &err.encode()).await;
            }
            return None;
        }
    };
    let status = packets::OkInfo::parse(&ok.payload)
        .map(|o| o.status)
        .unwrap_or(backend_greeting.status);
    let salt = backend_greeting.salt.clone();
    let backend = BackendConn::logged_in(io, backend_greeting, opts, home);
    let session = new_session(id, peer, user, client_caps, salt, &response, status);
    Some((session, backend, permit))
}

/// Sends the relayed handshake response, behind an SSLRequest and the TLS
/// handshake when the backend hop uses TLS.
async fn send_response(
    mut io: PacketIo,
    encoded: &[u8],
    tls: bool,
    target: &crate::config::BackendTarget,
) -> Result<PacketIo, BackendError> {
    let mut seq = 1;
    if tls {
        // The SSLRequest is the response's first 32 bytes.
        io.write_and_flush(seq, encoded.get(..32).unwrap_or(encoded))
            .await?;
        io = start_tls(io, target).await?;
        seq += 1;
    }
    io.write_and_flush(seq, encoded).await?;
    Ok(io)
}

/// COM_CHANGE_USER in passthrough mode: relayed to the server, which checks
/// the new account (with this connection's scramble, as directly) and resets
/// the session; its answer, auth switch included, is relayed back.
pub(super) async fn change_user(
    client: &mut PacketIo,
    backend: &mut BackendConn,
    session: &mut Session,
    state: &Arc<AppState>,
    payload: &[u8],
) -> Result<Flow, RelayError> {
    let Ok(mut request) = ChangeUser::parse(payload, session.client_caps) else {
        let err = ServerError::new(1047, b"08S01", "Malformed COM_CHANGE_USER");
        reply_error(client, 1, &err).await?;
        return Ok(Flow::Quit);
    };
    let backend_tls = backend.io.tls().is_tls();
    if is_clear_text(request.auth_plugin.as_deref()) && !backend_tls {
        reply_error(client, 1, &clear_text_refused()).await?;
        return Ok(Flow::Quit);
    }
    let backend_caps = backend.opts.capabilities;
    if backend_caps & Caps::CLIENT_CONNECT_ATTRS.bits() == 0 {
        request.attributes = None;
    }
    if backend_caps & Caps::CLIENT_PLUGIN_AUTH.bits() == 0 {
        request.auth_plugin = None;
    }
    let collation = request
        .collation
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(session.collation);
    request.collation = Some(u16::from(collation));
    backend
        .io
        .write_and_flush(0, &request.encode())
        .await
        .map_err(RelayError::Backend)?;
    let user = String::from_utf8_lossy(&request.user).into_owned();
    match relay_auth(client, &mut backend.io, 1, backend_tls).await {
        Ok(AuthEnd::Ok(ok)) => {
            tracing::info!(
                from = session.user,
                to = user,
                "COM_CHANGE_USER accepted by the server"
            );
            session.user = user;
            session.collation = collation;
            session.database = request
                .database
                .as_deref()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .unwrap_or_default();
            session.prepared.clear();
            session.sql_prepared.clear();
            // A routed-read connection runs as the previous user's role.
            session.read_pg = None;
            session.note_status(packets::OkInfo::parse(&ok.payload).map(|o| o.status));
            backend.opts.collation = collation;
            backend.opts.database = request.database;
            tracing::Span::current().record("user", session.user.as_str());
            Ok(Flow::Continue)
        }
        Ok(AuthEnd::Denied) => {
            Metrics::incr(&state.metrics.auth_failures);
            tracing::info!(user, "the server refused COM_CHANGE_USER");
            // The connection's identity is now undefined: end the session.
            Ok(Flow::Quit)
        }
        Ok(AuthEnd::Refused) => Ok(Flow::Quit),
        Err(AuthRelayError::Client(e)) => Err(RelayError::Client(e)),
        Err(AuthRelayError::Backend(e)) => Err(RelayError::Backend(e)),
        Err(AuthRelayError::Unexpected) => Err(RelayError::Backend(WireError::Malformed(
            "unexpected packet during COM_CHANGE_USER",
        ))),
    }
}

/// Relays the server's authentication packets to the client and the client's
/// answers back until the server's OK or ERR. `cseq` is the sequence id of the
/// next packet to the client. A clear-text password is never sent onto a
/// plaintext backend hop: the exchange is refused instead.
async fn relay_auth(
    client: &mut PacketIo,
    backend: &mut PacketIo,
    mut cseq: u8,
    backend_tls: bool,
) -> Result<AuthEnd, AuthRelayError> {
    // Bounded: a server needs a handful of rounds (switch, full auth, key).
    for _ in 0..16 {
        let pkt = backend
            .read_packet()
            .await
            .map_err(AuthRelayError::Backend)?;
        let payload = &pkt.payload;
        let mut clear_next = false;
        match payload.first().copied() {
            Some(packets::OK) | Some(packets::ERR) => {
                client
                    .write_and_flush(cseq, payload)
                    .await
                    .map_err(AuthRelayError::Client)?;
                return Ok(if payload.first() == Some(&packets::OK) {
                    AuthEnd::Ok(pkt)
                } else {
                    AuthEnd::Denied
                });
            }
            Some(packets::EOF) => {
                // AuthSwitchRequest: plugin name, NUL, challenge.
                let plugin = Reader::new(payload.get(1..).unwrap_or_default()).null_terminated();
                if is_clear_text(Some(plugin)) && !backend_tls {
                    refuse(client, cseq).await?;
                    return Ok(AuthEnd::Refused);
                }
            }
            Some(0x01) => match payload.get(1).copied() {
                Some(FAST_AUTH_SUCCESS) if payload.len() == 2 => {
                    // The OK follows; the client expects no answer.
                    client
                        .write_and_flush(cseq, payload)
                        .await
                        .map_err(AuthRelayError::Client)?;
                    cseq = cseq.wrapping_add(1);
                    continue;
                }
                Some(PERFORM_FULL_AUTH) if payload.len() == 2 => clear_next = true,
                _ => {} // more data: an RSA key, a dialog prompt, …
            },
            _ => return Err(AuthRelayError::Unexpected),
        }
        client
            .write_and_flush(cseq, payload)
            .await
            .map_err(AuthRelayError::Client)?;
        let reply = client.read_packet().await.map_err(AuthRelayError::Client)?;
        // After "perform full authentication" the client sends either a key
        // request or its password in clear (it does that only over TLS).
        if clear_next && reply.payload.as_ref() != [REQUEST_PUBLIC_KEY] && !backend_tls {
            refuse(client, reply.seq.wrapping_add(1)).await?;
            return Ok(AuthEnd::Refused);
        }
        backend
            .write_and_flush(pkt.seq.wrapping_add(1), &reply.payload)
            .await
            .map_err(AuthRelayError::Backend)?;
        cseq = reply.seq.wrapping_add(1);
    }
    Err(AuthRelayError::Unexpected)
}

fn is_clear_text(plugin: Option<&[u8]>) -> bool {
    plugin.is_some_and(|p| CLEAR_TEXT_PLUGINS.contains(&p))
}

fn clear_text_refused() -> ServerError {
    ServerError::new(
        1045,
        b"28000",
        "tandem refuses to relay a clear-text password (caching_sha2 full authentication or a clear-text plugin) to the backend over a plaintext connection: set ssl-mode=REQUIRED (or stronger) in [backends.old] url",
    )
}

async fn refuse(client: &mut PacketIo, seq: u8) -> Result<(), AuthRelayError> {
    tracing::warn!("clear-text password exchange refused: the backend hop is not TLS");
    client
        .write_and_flush(seq, &clear_text_refused().encode())
        .await
        .map(|_| ())
        .map_err(AuthRelayError::Client)
}
