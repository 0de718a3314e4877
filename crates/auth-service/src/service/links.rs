//! What the link flows (email change, sign-in links) share: a MAC under the signing secret,
//! the single-use records they spend, and base64 fields.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AuthService;
use crate::AuthUser;
use crate::ephemeral::ChallengeStore;
use crate::{ConfigError, Error, Result};

impl<U: AuthUser> AuthService<U> {
    /// HMAC-SHA256 (base64url) of `purpose` and `fields` under the signing secret: a
    /// purpose-bound, length-prefixed message, so no field can spill into another.
    pub(super) fn link_mac(&self, purpose: &str, fields: &[&str]) -> Result<String> {
        let key =
            self.config
                .signing_secret()
                .ok_or(Error::Configuration(ConfigError::Missing {
                    var: "AUTH_SIGNING_SECRET",
                }))?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose_secret());
        let mut message = format!("auth-core/link/v1|{purpose}");
        for f in fields {
            message.push_str(&format!("|{}:{f}", f.len()));
        }
        Ok(URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, message.as_bytes()).as_ref()))
    }

    /// Whether `mac` is the MAC of `purpose` and `fields` (constant time).
    pub(super) fn link_mac_ok(&self, mac: &str, purpose: &str, fields: &[&str]) -> Result<bool> {
        let expected = self.link_mac(purpose, fields)?;
        Ok(crate::constant_time_eq(expected.as_bytes(), mac.as_bytes()))
    }

    /// The key a link's single-use record is stored under: the SHA-256 of a MAC, so nobody
    /// without the signing secret can name it (not even through another flow's store).
    pub(super) fn record_key(&self, purpose: &str, fields: &[&str]) -> Result<String> {
        Ok(crate::random::sha256_hex(
            &self.link_mac(&format!("record:{purpose}"), fields)?,
        ))
    }

    /// The single-use record store, or `Unsupported`.
    pub(super) fn challenge_store(&self) -> Result<&Arc<dyn ChallengeStore>> {
        self.challenges.as_ref().ok_or(Error::Unsupported(
            "email change and sign-in links need a challenge store (AuthService::with_challenge_store)"
                .into(),
        ))
    }
}

/// Base64url of a field.
pub(super) fn b64(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

/// A base64url field back, or `TokenInvalid`.
pub(super) fn unb64(value: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(value)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Error::TokenInvalid)
}
