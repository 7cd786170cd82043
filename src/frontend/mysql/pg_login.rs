//! The login of a session PostgreSQL answers from its first command
//! (`new_primary`, `new_only`): a MariaDB-looking greeting, the client
//! checked against the proxy's users, and its own PostgreSQL connection.
//! Sessions that start on MySQL reach PostgreSQL by `handover` instead.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::backend::pg_mysql::PgSession;
use crate::metrics::Metrics;
use crate::proxy::session::Session;
use crate::state::AppState;
use crate::wire::handshake::{random_salt, Greeting, NATIVE_PASSWORD};
use crate::wire::io::PacketIo;
use crate::wire::packets::{ok_packet, OkInfo, ServerError};
use crate::wire::{CapabilityFlags as Caps, StatusFlags};

/// What the proxy offers when it answers for PostgreSQL: no multi-statements
/// (one PostgreSQL statement per command), no session tracking.
const OFFERED: u32 = Caps::CLIENT_LONG_PASSWORD.bits()
    | Caps::CLIENT_FOUND_ROWS.bits()
    | Caps::CLIENT_LONG_FLAG.bits()
    | Caps::CLIENT_CONNECT_WITH_DB.bits()
    | Caps::CLIENT_PROTOCOL_41.bits()
    | Caps::CLIENT_INTERACTIVE.bits()
    | Caps::CLIENT_TRANSACTIONS.bits()
    | Caps::CLIENT_SECURE_CONNECTION.bits()
    | Caps::CLIENT_MULTI_RESULTS.bits()
    | Caps::CLIENT_PS_MULTI_RESULTS.bits()
    | Caps::CLIENT_PLUGIN_AUTH.bits()
    | Caps::CLIENT_CONNECT_ATTRS.bits()
    | Caps::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
    | Caps::CLIENT_DEPRECATE_EOF.bits();

const AUTOCOMMIT: u16 = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();

/// Handshake and login for a PostgreSQL-served session. The greeting shows
/// the old backend's identity as last seen (clients adapt to the server
/// version), else a MariaDB-compatible default.
pub async fn accept(
    client: &mut PacketIo,
    id: u64,
    peer: SocketAddr,
    state: &Arc<AppState>,
) -> Option<(Session, PgSession, OwnedSemaphorePermit)> {
    let snapshot = state.snapshot.load_full();
    let new = snapshot.config.backends.new.as_ref()?;
    let permit = match tokio::time::timeout(
        new.acquire_timeout(),
        Arc::clone(&state.pg_slots).acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => p,
        _ => {
            let err = ServerError::new(1040, b"08004", "Too many connections");
            let _ = client.write_and_flush(0, &err.encode()).await;
            return None;
        }
    };
    let salt = random_salt();
    let identity = state.old.last_greeting();
    let greeting = Greeting {
        server_version: identity
            .as_ref()
            .map(|g| g.server_version.clone())
            .unwrap_or_else(|| b"5.5.5-10.11.0-MariaDB-tandem".to_vec()),
        connection_id: (id & 0xffff_ffff) as u32,
        salt: salt.clone(),
        capabilities: Caps::from_bits_truncate(OFFERED | super::tls::tls_cap(state)),
        mariadb_caps: 0,
        collation: identity.as_ref().map_or(45, |g| g.collation),
        status: AUTOCOMMIT,
        auth_plugin: NATIVE_PASSWORD.to_vec(),
    };
    client.write_and_flush(0, &greeting.encode()).await.ok()?;
    let (response, seq, user) = super::handshake::login(client, &salt, peer, state).await?;
    let target = new.target().ok()?;
    let role = state
        .snapshot
        .load()
        .config
        .auth
        .role_for(&user)
        .map(str::to_owned);
    let pg = match super::reads::connect_as(&target, new.connect_timeout(), role.as_deref()).await {
        Ok(pg) => pg,
        Err(e) => {
            Metrics::incr(&state.metrics.backend_errors);
            tracing::warn!(error = %e, "cannot reach PostgreSQL for a new session");
            let err = ServerError::new(
                2003,
                b"HY000",
                format!("Can't connect to the backend through tandem: {e}"),
            );
            let _ = client.write_and_flush(seq, &err.encode()).await;
            return None;
        }
    };
    client
        .write_and_flush(
            seq,
            &ok_packet(OkInfo {
                status: AUTOCOMMIT,
                ..Default::default()
            }),
        )
        .await
        .ok()?;
    let database = response
        .database
        .as_deref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .or_else(|| state.old.target.database.clone())
        .unwrap_or_default();
    Some((
        Session {
            id,
            peer,
            user,
            client_caps: Caps::from_bits_truncate(response.capabilities & OFFERED),
            salt,
            collation: response.collation,
            status: AUTOCOMMIT,
            prepared: Default::default(),
            protocol_changed: false,
            mirror: None,
            mirror_txn_open: false,
            auto_increment_increment: Some(1),
            mariadb_caps: 0,
            database,
            last_insert_id: 0,
            reads: 0,
            read_pg: None,
            stream_wrote: false,
            sql_prepared: std::collections::HashMap::new(),
        },
        pg,
        permit,
    ))
}
