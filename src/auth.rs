//! mysql_native_password: checking a client's answer against a configured
//! credential, and computing our own answer for a backend.

pub mod mode;
pub mod sha2;

use sha1::{Digest, Sha1};

/// What the proxy knows about a client user's password.
#[derive(Clone)]
pub enum Credential {
    Plain(String),
    /// SHA1(SHA1(password)), as stored by the server (`*HEX`).
    NativeHash([u8; 20]),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

impl Credential {
    pub fn is_empty_password(&self) -> bool {
        matches!(self, Credential::Plain(p) if p.is_empty())
    }
}

/// Parses `*` + 40 hex digits.
pub fn parse_native_hash(s: &str) -> Option<[u8; 20]> {
    let hex = s.strip_prefix('*')?;
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The client's answer: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))). Empty for an
/// empty password, as clients send.
pub fn native_token(salt: &[u8], password: &str) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha1(&[password.as_bytes()]);
    let stage2 = sha1(&[&stage1]);
    let mix = sha1(&[salt, &stage2]);
    stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

/// Checks a client's mysql_native_password answer. Works from the stored hash
/// too: XOR the answer with SHA1(salt + stage2) to recover stage1, then
/// SHA1(stage1) must equal stage2.
pub fn verify_native(cred: &Credential, salt: &[u8], token: &[u8]) -> bool {
    match cred {
        Credential::Plain(p) if p.is_empty() => token.is_empty(),
        Credential::Plain(p) => {
            let stage2 = sha1(&[&sha1(&[p.as_bytes()])]);
            check_against_stage2(&stage2, salt, token)
        }
        Credential::NativeHash(stage2) => check_against_stage2(stage2, salt, token),
    }
}

fn check_against_stage2(stage2: &[u8; 20], salt: &[u8], token: &[u8]) -> bool {
    if token.len() != 20 {
        return false;
    }
    let mix = sha1(&[salt, stage2]);
    let mut stage1 = [0u8; 20];
    for i in 0..20 {
        stage1[i] = token[i] ^ mix[i];
    }
    let candidate = sha1(&[&stage1]);
    // Constant-time comparison.
    candidate
        .iter()
        .zip(stage2)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &[u8] = b"abcdefghijklmnopqrst";

    #[test]
    fn plain_and_hash_accept_the_right_password_only() {
        let stage2 = sha1(&[&sha1(&[b"apppass"])]);
        let plain = Credential::Plain("apppass".into());
        let token = native_token(SALT, "apppass");
        assert!(verify_native(&plain, SALT, &token));
        assert!(verify_native(&Credential::NativeHash(stage2), SALT, &token));
        assert!(!verify_native(&plain, SALT, &native_token(SALT, "wrong")));
        assert!(!verify_native(&plain, b"another salt 1234567", &token));
        assert!(!verify_native(&plain, SALT, &[]));
        assert!(!verify_native(&plain, SALT, &token[..19]));
    }

    #[test]
    fn empty_password() {
        let cred = Credential::Plain(String::new());
        assert!(verify_native(&cred, SALT, &[]));
        assert!(!verify_native(&cred, SALT, &native_token(SALT, "x")));
        assert!(native_token(SALT, "").is_empty());
    }

    #[test]
    fn hash_parsing() {
        assert!(parse_native_hash("*00").is_none());
        assert!(parse_native_hash("D1E48DD4E7B4E4DE1AF2A9F70F9B5AB0BC6E26A6").is_none());
        assert!(parse_native_hash("*ZZE48DD4E7B4E4DE1AF2A9F70F9B5AB0BC6E26A6").is_none());
    }
}
