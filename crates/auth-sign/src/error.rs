//! Why a signed value was refused.

use std::time::Duration;

/// Why signing could not be set up, or a signed value was refused. Never holds the value, the
/// signature or the secret.
///
/// ```
/// use auth_sign::{SignError, Signer};
/// let signer = Signer::new("0123456789abcdef0123456789abcdef")?;
/// assert_eq!(signer.unsign("hello:forged"), Err(SignError::BadSignature));
/// let core: auth_core::Error = SignError::BadSignature.into();
/// assert!(matches!(core, auth_core::Error::TokenInvalid));
/// # Ok::<(), SignError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signature does not match (tampered, another key, another purpose).
    #[error("bad signature")]
    BadSignature,
    /// The signature is genuine but older than the maximum age.
    #[error("signature expired {} s ago", expired_for.as_secs())]
    Expired {
        /// How long ago it expired.
        expired_for: Duration,
    },
    /// The signature is genuine but its timestamp is later than now.
    #[error("signature timestamp is in the future")]
    NotYetValid,
    /// The input does not have the expected shape.
    #[error("malformed signed value: {0}")]
    Malformed(&'static str),
    /// The secret is too short to be safe.
    #[error(
        "the signing secret must be at least {min} bytes; set AUTH_SIGNING_SECRET to 32+ random bytes"
    )]
    WeakSecret {
        /// The minimum length in bytes.
        min: usize,
    },
}

impl From<SignError> for auth_core::Error {
    fn from(err: SignError) -> Self {
        match err {
            SignError::Expired { .. } => auth_core::Error::TokenExpired,
            SignError::WeakSecret { min } => {
                auth_core::Error::Configuration(auth_core::ConfigError::WeakSecret {
                    name: "AUTH_SIGNING_SECRET",
                    min,
                })
            }
            SignError::BadSignature | SignError::NotYetValid | SignError::Malformed(_) => {
                auth_core::Error::TokenInvalid
            }
        }
    }
}
