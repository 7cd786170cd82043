//! caching_sha2_password, MySQL 8's default login, on both sides of the proxy.
//!
//! The client proves it knows the password with
//! `XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) || nonce))`. A server that has
//! `SHA256(SHA256(pw))` cached checks that at once ("fast auth"); otherwise it
//! asks for the password itself ("full auth"), which the client sends in clear
//! over TLS, or, on a plaintext connection, encrypted with the server's RSA
//! public key (RSA-OAEP with SHA-1, after XOR with the nonce; the client may
//! first ask for the key with the byte 0x02). Like MySQL, the proxy's cache
//! starts empty and is filled by a successful full authentication.

use std::collections::HashMap;
use std::sync::Mutex;

use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// AuthMoreData status bytes.
pub const REQUEST_PUBLIC_KEY: u8 = 0x02;
pub const FAST_AUTH_SUCCESS: u8 = 0x03;
pub const PERFORM_FULL_AUTH: u8 = 0x04;

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// What the fast path compares against: SHA256(SHA256(password)).
pub fn double_sha256(password: &[u8]) -> [u8; 32] {
    sha256(&[&sha256(&[password])])
}

/// The client's scramble for `password` and `nonce` (empty password: empty).
pub fn scramble(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = sha256(&[password]);
    let h2 = sha256(&[&sha256(&[&h1]), nonce]);
    h1.iter().zip(h2).map(|(a, b)| a ^ b).collect()
}

/// Checks a scramble against a cached SHA256(SHA256(password)).
pub fn scramble_matches(cached: &[u8; 32], nonce: &[u8], scramble: &[u8]) -> bool {
    if scramble.len() != 32 {
        return false;
    }
    let h = sha256(&[cached, nonce]);
    let h1: Vec<u8> = scramble.iter().zip(h).map(|(a, b)| a ^ b).collect();
    let candidate = sha256(&[&h1]);
    candidate
        .iter()
        .zip(cached)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn xor_nonce(data: &[u8], nonce: &[u8]) -> Vec<u8> {
    if nonce.is_empty() {
        return data.to_vec();
    }
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ nonce[i % nonce.len()])
        .collect()
}

/// The backend side of full authentication without TLS: the password (with
/// its NUL) XORed with the nonce, encrypted with the server's PEM public key.
pub fn encrypt_password(
    public_pem: &[u8],
    password: &str,
    nonce: &[u8],
) -> Result<Vec<u8>, String> {
    let pem = std::str::from_utf8(public_pem)
        .map_err(|_| "the server's public key is not PEM text".to_string())?;
    let key = RsaPublicKey::from_public_key_pem(pem.trim_end_matches('\0').trim())
        .map_err(|e| format!("cannot read the server's RSA public key: {e}"))?;
    let mut clear = password.as_bytes().to_vec();
    clear.push(0);
    key.encrypt(
        &mut rand::thread_rng(),
        Oaep::new::<sha1::Sha1>(),
        &xor_nonce(&clear, nonce),
    )
    .map_err(|e| format!("RSA encryption failed: {e}"))
}

/// The proxy's server side: the fast-auth cache and the RSA key pair
/// (generated at first use, kept for the process).
#[derive(Default)]
pub struct Sha2Server {
    cache: Mutex<HashMap<String, [u8; 32]>>,
    rsa: tokio::sync::OnceCell<(RsaPrivateKey, String)>,
}

impl Sha2Server {
    pub fn cached(&self, user: &str) -> Option<[u8; 32]> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied()
    }

    pub fn remember(&self, user: &str, password: &[u8]) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user.to_string(), double_sha256(password));
    }

    pub fn forget(&self, user: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }

    async fn keys(&self) -> Result<&(RsaPrivateKey, String), String> {
        self.rsa
            .get_or_try_init(|| async {
                // Key generation takes a while: off the async workers.
                tokio::task::spawn_blocking(|| {
                    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
                        .map_err(|e| format!("RSA key generation failed: {e}"))?;
                    let pem = RsaPublicKey::from(&key)
                        .to_public_key_pem(LineEnding::LF)
                        .map_err(|e| format!("RSA public key encoding failed: {e}"))?;
                    Ok((key, pem))
                })
                .await
                .map_err(|e| format!("RSA key generation task failed: {e}"))?
            })
            .await
    }

    /// The public key as PEM, for a client's 0x02 request.
    pub async fn public_pem(&self) -> Result<String, String> {
        Ok(self.keys().await?.1.clone())
    }

    /// The password a client sent RSA-encrypted (None when it does not
    /// decrypt: wrong key, garbage, or a clear password on plaintext).
    pub async fn decrypt_password(&self, data: &[u8], nonce: &[u8]) -> Option<Vec<u8>> {
        let (key, _) = self.keys().await.ok()?;
        let clear = key.decrypt(Oaep::new::<sha1::Sha1>(), data).ok()?;
        let mut pw = xor_nonce(&clear, nonce);
        if pw.last() == Some(&0) {
            pw.pop();
        }
        Some(pw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scramble_round_trip() {
        let nonce = b"0123456789abcdefghij";
        let s = scramble(b"secret", nonce);
        assert!(scramble_matches(&double_sha256(b"secret"), nonce, &s));
        assert!(!scramble_matches(&double_sha256(b"other"), nonce, &s));
        assert!(!scramble_matches(
            &double_sha256(b"secret"),
            b"another nonce......",
            &s
        ));
        // mysql_common computes the same token.
        let theirs = mysql_common::scramble::scramble_sha256(nonce, b"secret").unwrap();
        assert_eq!(s, theirs.to_vec());
    }

    #[tokio::test]
    async fn rsa_round_trip() {
        let server = Sha2Server::default();
        let pem = server.public_pem().await.unwrap();
        let nonce = b"0123456789abcdefghij";
        let sealed = encrypt_password(pem.as_bytes(), "pässword", nonce).unwrap();
        let opened = server.decrypt_password(&sealed, nonce).await.unwrap();
        assert_eq!(opened, "pässword".as_bytes());
        assert!(server
            .decrypt_password(b"password\0", nonce)
            .await
            .is_none());
    }
}
