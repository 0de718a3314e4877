//! Errors of this crate.

/// A JWT backend that cannot be built.
///
/// ```
/// use auth_tokens_jwt::{Algorithm, JwtBackend, JwtError};
/// let err = JwtBackend::try_hmac(Algorithm::HS256, "short").unwrap_err();
/// assert!(matches!(err, JwtError::WeakSecret { .. }));
/// let core: auth_core::Error = err.into();
/// assert!(matches!(core, auth_core::Error::Configuration(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// An HMAC secret shorter than the hash output (RFC 7518 section 3.2).
    #[error("the JWT HMAC secret must be at least {min} bytes for this algorithm")]
    WeakSecret {
        /// The minimum length in bytes.
        min: usize,
    },
    /// A key could not be read for the algorithm (wrong type, bad PEM).
    #[error("invalid JWT key: {0}")]
    InvalidKey(String),
    /// The algorithm does not fit the key kind (an HMAC algorithm with a public key, ...).
    #[error("algorithm {0} does not fit this key")]
    AlgorithmMismatch(&'static str),
}

impl From<JwtError> for auth_core::Error {
    fn from(err: JwtError) -> Self {
        auth_core::Error::Configuration(auth_core::ConfigError::invalid("JWT key", err.to_string()))
    }
}
