//! Randomness (from the operating system, through getrandom) and digests for tokens (ring).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `n_bytes` random bytes from the operating system, as unpadded base64url.
///
/// ```
/// let t = auth_core::random::token(32);
/// assert_eq!(t.len(), 43);
/// assert_ne!(t, auth_core::random::token(32));
/// ```
#[must_use]
pub fn token(n_bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(bytes(n_bytes))
}

/// `n_bytes` random bytes from the operating system.
///
/// # Panics
///
/// Only when the operating system's random source fails, which is unrecoverable: issuing a
/// predictable token instead would be worse.
///
/// ```
/// assert_eq!(auth_core::random::bytes(16).len(), 16);
/// ```
#[must_use]
pub fn bytes(n_bytes: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n_bytes];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source failed"); // ok: no safe fallback exists
    buf
}

/// A token derived from `parts` under `key` (HMAC-SHA256, as unpadded base64url: 43
/// characters, like [`token`]`(32)`): the same inputs give the same token, and without the key
/// it cannot be told from a random one. How an opaque token backend gives a refresh token's
/// racing client the same successor.
///
/// ```
/// let a = auth_core::random::keyed_token(b"server key", &["successor", "refresh-1"]);
/// assert_eq!(a, auth_core::random::keyed_token(b"server key", &["successor", "refresh-1"]));
/// assert_ne!(a, auth_core::random::keyed_token(b"other key", &["successor", "refresh-1"]));
/// assert_eq!(a.len(), 43);
/// ```
#[cfg(feature = "full")]
#[must_use]
pub fn keyed_token(key: &[u8], parts: &[&str]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

/// SHA-256 of a token, as 64 lowercase hex characters: how stores keep opaque tokens, so a
/// leaked table yields nothing usable.
///
/// ```
/// assert_eq!(
///     auth_core::random::sha256_hex("abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
#[cfg(feature = "full")]
#[must_use]
pub fn sha256_hex(value: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(feature = "full")]
const HEX: &[u8; 16] = b"0123456789abcdef";
