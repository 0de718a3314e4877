//! The claims on the wire: tortoise-auth's names, plus what revocation and families need.

use auth_core::{Claims, ExtraClaims, TokenKind};
use serde::{Deserialize, Serialize};

/// `aud` may be a string or a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireClaims {
    pub(crate) sub: String,
    pub(crate) token_type: TokenKind,
    pub(crate) jti: String,
    pub(crate) iat: i64,
    /// The issue instant in Unix microseconds: per-user revocation cut-offs compare at this
    /// precision, so a token issued right after a logout everywhere is not refused by it.
    /// Tokens without it (older ones, other issuers) count as issued at the start of `iat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iat_us: Option<i64>,
    pub(crate) exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) extra: Option<ExtraClaims>,
    /// The session (refresh family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) family: Option<String>,
    /// When the family must end (Unix seconds): refresh never extends past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fexp: Option<i64>,
    /// On a refresh token: the jti of the access token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ajti: Option<String>,
    /// On a refresh token: when that access token expires (Unix seconds), so that rotating
    /// revokes it only as long as it could verify (tokens without it: the refresh's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aexp: Option<i64>,
}

impl WireClaims {
    pub(crate) fn to_claims(&self) -> Claims {
        let mut c = Claims::new(
            self.sub.clone(),
            self.token_type,
            self.jti.clone(),
            self.iat,
            self.exp,
        );
        c.extra = self.extra.clone().filter(|e| !e.is_empty());
        c.family = self.family.clone();
        c
    }

    /// When the token was issued, in Unix microseconds.
    pub(crate) fn issued_at_micros(&self) -> i64 {
        self.iat_us
            .filter(|us| us.div_euclid(1_000_000) == self.iat)
            .unwrap_or_else(|| self.iat.saturating_mul(1_000_000))
    }

    /// The family for revocation: tortoise-auth tokens have none, so their jti stands in.
    pub(crate) fn family_or_jti(&self) -> &str {
        self.family.as_deref().unwrap_or(&self.jti)
    }
}
