//! SHA-crypt (`$5$`, `$6$`), as written by glibc's crypt(3) and passlib.

use auth_core::{HashError, PasswordHasher};
use sha_crypt::PasswordVerifier as _;

/// The most SHA-crypt rounds a stored hash may ask for (the format allows 999,999,999).
pub const MAX_SHA_CRYPT_ROUNDS: u32 = 10_000_000;

/// `sha256_crypt` (`$5$`) and `sha512_crypt` (`$6$`) hashes, verify only: Linux `/etc/shadow`
/// entries and passlib's `CryptHasher` users (starlette-auth-toolkit) log in once and are then
/// upgraded to Argon2id by [`crate::MultiHasher`]. [`hash`](PasswordHasher::hash) returns
/// [`HashError::Unsupported`].
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::ShaCryptHasher;
/// // `openssl passwd -5 -salt saltsalt hello`
/// let hash = "$5$saltsalt$kfE3pS1dKPPHrilLCLWxLECEVLX8Au49cWIQg7GMQ05";
/// assert!(ShaCryptHasher.identifies(hash));
/// assert!(ShaCryptHasher.verify("hello", hash).unwrap());
/// assert!(!ShaCryptHasher.verify("hullo", hash).unwrap());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShaCryptHasher;

fn rounds_of(encoded: &str) -> Option<u32> {
    let params = encoded.get(3..)?.split('$').next()?;
    params.strip_prefix("rounds=")?.parse().ok()
}

impl PasswordHasher for ShaCryptHasher {
    fn algorithm(&self) -> &'static str {
        "sha_crypt"
    }

    fn hash(&self, _password: &str) -> Result<String, HashError> {
        Err(HashError::Unsupported(
            "sha-crypt is supported for verification only",
        ))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        if !self.identifies(encoded) {
            return Err(HashError::UnknownFormat);
        }
        if rounds_of(encoded).is_some_and(|r| r > MAX_SHA_CRYPT_ROUNDS) {
            return Err(HashError::Unsupported(
                "sha-crypt rounds beyond the verification limit",
            ));
        }
        match sha_crypt::ShaCrypt::SHA512.verify_password(password.as_bytes(), encoded) {
            Ok(()) => Ok(true),
            Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(HashError::Malformed),
        }
    }

    fn identifies(&self, encoded: &str) -> bool {
        encoded.starts_with("$5$") || encoded.starts_with("$6$")
    }

    fn needs_update(&self, _encoded: &str) -> bool {
        true
    }
}
