//! The signing algorithm a backend is pinned to.

/// The signing algorithm, pinned by configuration: a token whose header names another one is
/// refused, whatever it contains (`alg: none` cannot even be expressed).
///
/// ```
/// use auth_tokens_jwt::Algorithm;
/// assert!(Algorithm::HS256.is_hmac());
/// assert!(!Algorithm::EdDSA.is_hmac());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256 (tortoise-auth's default).
    HS256,
    /// HMAC-SHA384.
    HS384,
    /// HMAC-SHA512.
    HS512,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// ECDSA P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
}

impl Algorithm {
    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
            Self::HS384 => jsonwebtoken::Algorithm::HS384,
            Self::HS512 => jsonwebtoken::Algorithm::HS512,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::ES384 => jsonwebtoken::Algorithm::ES384,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::RS384 => jsonwebtoken::Algorithm::RS384,
            Self::RS512 => jsonwebtoken::Algorithm::RS512,
        }
    }

    /// Whether this is an HMAC algorithm (shared secret).
    ///
    /// ```
    /// assert!(auth_tokens_jwt::Algorithm::HS512.is_hmac());
    /// ```
    #[must_use]
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// The shortest HMAC secret accepted by [`JwtBackend::try_hmac`]: the hash output size.
    pub(crate) fn min_secret(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }

    /// The name JWT headers and JWKs use (`"EdDSA"`, `"ES256"`, ...).
    ///
    /// ```
    /// assert_eq!(auth_tokens_jwt::Algorithm::EdDSA.name(), "EdDSA");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
        }
    }

    /// The algorithm named `name` (as in a JWT header), ignoring case.
    ///
    /// ```
    /// use auth_tokens_jwt::Algorithm;
    /// assert_eq!(Algorithm::from_name("eddsa"), Some(Algorithm::EdDSA));
    /// assert_eq!(Algorithm::from_name("none"), None);
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::HS256,
            Self::HS384,
            Self::HS512,
            Self::ES256,
            Self::ES384,
            Self::EdDSA,
            Self::RS256,
            Self::RS384,
            Self::RS512,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}
