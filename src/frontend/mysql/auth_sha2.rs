//! Clients whose `[[users]]` entry says `plugin = "caching_sha2_password"`:
//! the server side of MySQL 8's login (see `auth::sha2` for the exchange).
//! Fast auth when the user's hash is cached, else full auth: the password in
//! clear when the client is on TLS, or RSA-encrypted (the client may ask for
//! the proxy's public key first). A clear password on a plaintext connection
//! is refused, as MySQL refuses it.

use crate::auth::sha2::{
    double_sha256, scramble_matches, FAST_AUTH_SUCCESS, PERFORM_FULL_AUTH, REQUEST_PUBLIC_KEY,
};
use crate::state::AppState;
use crate::wire::handshake::{HandshakeResponse, CACHING_SHA2};
use crate::wire::io::PacketIo;
use crate::wire::packets::auth_switch_request;

/// The configured password of `user` when it logs in with caching_sha2.
pub fn sha2_password(state: &AppState, user: &str) -> Option<String> {
    let snapshot = state.snapshot.load();
    let u = snapshot.config.users.iter().find(|u| u.name == user)?;
    (u.plugin.as_deref() == Some("caching_sha2_password"))
        .then(|| u.password.clone().unwrap_or_default())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 0x01 + data: an AuthMoreData packet.
fn more(data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + data.len());
    p.push(0x01);
    p.extend_from_slice(data);
    p
}

/// Runs the exchange after the handshake response. Returns whether the
/// client proved the password and the sequence id for the final OK/ERR;
/// None when the client went away.
pub async fn authenticate(
    client: &mut PacketIo,
    mut seq: u8,
    nonce: &[u8],
    response: &HandshakeResponse,
    user: &str,
    password: &str,
    state: &AppState,
) -> Option<(bool, u8)> {
    let mut token = response.auth_response.clone();
    if response.auth_plugin.as_deref() != Some(CACHING_SHA2) {
        client
            .write_and_flush(seq, &auth_switch_request(CACHING_SHA2, nonce))
            .await
            .ok()?;
        let reply = client.read_packet().await.ok()?;
        token = reply.payload.to_vec();
        seq = reply.seq.wrapping_add(1);
    }
    if token.is_empty() || password.is_empty() {
        return Some((token.is_empty() && password.is_empty(), seq));
    }
    let expected = double_sha256(password.as_bytes());
    let cache = &state.sha2;
    match cache.cached(user) {
        // Fast path: the cache entry still matches the configured password.
        Some(hash) if hash == expected => {
            if !scramble_matches(&hash, nonce, &token) {
                return Some((false, seq));
            }
            client
                .write_and_flush(seq, &more(&[FAST_AUTH_SUCCESS]))
                .await
                .ok()?;
            return Some((true, seq.wrapping_add(1)));
        }
        // The password changed in the config since: start over.
        Some(_) => cache.forget(user),
        None => {}
    }
    client
        .write_and_flush(seq, &more(&[PERFORM_FULL_AUTH]))
        .await
        .ok()?;
    let mut reply = client.read_packet().await.ok()?;
    let given = if client.tls().is_tls() {
        let p = &reply.payload[..];
        p.strip_suffix(&[0]).unwrap_or(p).to_vec()
    } else {
        if reply.payload[..] == [REQUEST_PUBLIC_KEY] {
            let pem = match cache.public_pem().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "no RSA key for caching_sha2_password");
                    return Some((false, reply.seq.wrapping_add(1)));
                }
            };
            client
                .write_and_flush(reply.seq.wrapping_add(1), &more(pem.as_bytes()))
                .await
                .ok()?;
            reply = client.read_packet().await.ok()?;
        }
        cache
            .decrypt_password(&reply.payload, nonce)
            .await
            .unwrap_or_default()
    };
    let next = reply.seq.wrapping_add(1);
    let ok = !given.is_empty() && same(&given, password.as_bytes());
    if ok {
        cache.remember(user, password.as_bytes());
    }
    Some((ok, next))
}
