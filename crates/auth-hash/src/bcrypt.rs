//! bcrypt, plain and in Django's formats.

use auth_core::{HashError, PasswordHasher};
use sha2::{Digest, Sha256};

/// bcrypt reads at most 72 bytes of a password.
pub const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

/// The highest bcrypt cost a stored hash may ask for (cost 20 is about a minute).
pub const MAX_BCRYPT_COST: u32 = 20;

fn is_bcrypt(encoded: &str) -> bool {
    let b = encoded.as_bytes();
    b.len() == 60
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

fn cost_of(encoded: &str) -> Option<u32> {
    encoded.get(4..6)?.parse().ok()
}

/// Verifies `password` (bytes as given; bcrypt itself reads the first 72) against a `$2?$` hash.
fn verify_bcrypt(password: &[u8], encoded: &str) -> Result<bool, HashError> {
    if !is_bcrypt(encoded) {
        return Err(HashError::Malformed);
    }
    if cost_of(encoded).is_none_or(|c| c > MAX_BCRYPT_COST) {
        return Err(HashError::Unsupported(
            "bcrypt cost beyond the verification limit",
        ));
    }
    bcrypt::verify(password, encoded).map_err(|_| HashError::Malformed)
}

/// Plain bcrypt: `$2a$`, `$2b$`, `$2x$` and `$2y$` hashes (passlib, pyca/bcrypt, PHP, Devise,
/// tortoise-auth's fallback).
///
/// **Passwords over 72 bytes.** bcrypt reads only the first 72 bytes. Stored hashes were made
/// that way by the libraries that wrote them, so verification reads the same 72 bytes (and a
/// successful login then replaces the hash with Argon2id through [`crate::MultiHasher`]). New
/// hashes are never silently truncated: [`hash`](PasswordHasher::hash) refuses a password over
/// 72 bytes with [`HashError::Unsupported`]. Use `bcrypt_sha256` (Django) or Argon2id for
/// long passwords.
///
/// ```
/// use auth_core::{HashError, PasswordHasher};
/// use auth_hash::BcryptHasher;
///
/// let hasher = BcryptHasher::new(4);
/// let hash = hasher.hash("correct horse battery staple").unwrap();
/// assert!(hash.starts_with("$2b$04$"));
/// assert!(hasher.verify("correct horse battery staple", &hash).unwrap());
/// assert_eq!(hasher.hash(&"x".repeat(73)), Err(HashError::Unsupported("bcrypt reads at most 72 bytes; use Argon2id or bcrypt_sha256 for longer passwords")));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BcryptHasher {
    cost: u32,
}

impl BcryptHasher {
    /// The usual cost (tortoise-auth's and Django's).
    pub const DEFAULT_COST: u32 = 12;

    /// A hasher making new hashes with `cost` (clamped to 4..=20).
    ///
    /// ```
    /// let _ = auth_hash::BcryptHasher::new(12);
    /// ```
    #[must_use]
    pub fn new(cost: u32) -> Self {
        Self {
            cost: cost.clamp(4, MAX_BCRYPT_COST),
        }
    }
}

impl Default for BcryptHasher {
    fn default() -> Self {
        Self::new(Self::DEFAULT_COST)
    }
}

impl PasswordHasher for BcryptHasher {
    fn algorithm(&self) -> &'static str {
        "bcrypt"
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        if password.len() > BCRYPT_MAX_PASSWORD_BYTES {
            return Err(HashError::Unsupported(
                "bcrypt reads at most 72 bytes; use Argon2id or bcrypt_sha256 for longer passwords",
            ));
        }
        bcrypt::hash(password, self.cost).map_err(|e| HashError::Failed(e.to_string()))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        if !encoded.starts_with("$2") {
            return Err(HashError::UnknownFormat);
        }
        verify_bcrypt(password.as_bytes(), encoded)
    }

    fn identifies(&self, encoded: &str) -> bool {
        is_bcrypt(encoded)
    }

    fn needs_update(&self, encoded: &str) -> bool {
        !encoded.starts_with("$2b$") || cost_of(encoded).is_none_or(|c| c < self.cost)
    }
}

/// Django's `BCryptSHA256PasswordHasher`: `bcrypt_sha256$$2b$<cost>$...`, bcrypt over the hex
/// SHA-256 of the password, so long passwords are not truncated.
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::DjangoBcryptSha256Hasher;
///
/// let hasher = DjangoBcryptSha256Hasher::new(4);
/// let long = "z".repeat(200);
/// let hash = hasher.hash(&long).unwrap();
/// assert!(hash.starts_with("bcrypt_sha256$$2b$04$"));
/// assert!(hasher.verify(&long, &hash).unwrap());
/// assert!(!hasher.verify(&"z".repeat(199), &hash).unwrap());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DjangoBcryptSha256Hasher {
    cost: u32,
}

impl DjangoBcryptSha256Hasher {
    /// A hasher making new hashes with `cost` (clamped to 4..=20).
    ///
    /// ```
    /// let _ = auth_hash::DjangoBcryptSha256Hasher::new(12);
    /// ```
    #[must_use]
    pub fn new(cost: u32) -> Self {
        Self {
            cost: cost.clamp(4, MAX_BCRYPT_COST),
        }
    }

    fn prehash(password: &str) -> String {
        let digest = Sha256::digest(password.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    }
}

impl Default for DjangoBcryptSha256Hasher {
    fn default() -> Self {
        Self::new(BcryptHasher::DEFAULT_COST)
    }
}

impl PasswordHasher for DjangoBcryptSha256Hasher {
    fn algorithm(&self) -> &'static str {
        "bcrypt_sha256"
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        bcrypt::hash(Self::prehash(password), self.cost)
            .map(|h| format!("bcrypt_sha256${h}"))
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        let inner = encoded
            .strip_prefix("bcrypt_sha256$")
            .ok_or(HashError::UnknownFormat)?;
        verify_bcrypt(Self::prehash(password).as_bytes(), inner)
    }

    fn identifies(&self, encoded: &str) -> bool {
        encoded.starts_with("bcrypt_sha256$")
    }

    fn needs_update(&self, encoded: &str) -> bool {
        encoded
            .strip_prefix("bcrypt_sha256$")
            .and_then(cost_of)
            .is_none_or(|c| c < self.cost)
    }
}

/// Django's `BCryptPasswordHasher`: `bcrypt$$2b$<cost>$...`, plain bcrypt (72-byte limit, see
/// [`BcryptHasher`]).
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::DjangoBcryptHasher;
/// let hasher = DjangoBcryptHasher::new(4);
/// let hash = hasher.hash("pw").unwrap();
/// assert!(hash.starts_with("bcrypt$$2b$04$"));
/// assert!(hasher.verify("pw", &hash).unwrap());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DjangoBcryptHasher {
    inner: BcryptHasher,
}

impl DjangoBcryptHasher {
    /// A hasher making new hashes with `cost` (clamped to 4..=20).
    ///
    /// ```
    /// let _ = auth_hash::DjangoBcryptHasher::new(12);
    /// ```
    #[must_use]
    pub fn new(cost: u32) -> Self {
        Self {
            inner: BcryptHasher::new(cost),
        }
    }
}

impl Default for DjangoBcryptHasher {
    fn default() -> Self {
        Self::new(BcryptHasher::DEFAULT_COST)
    }
}

impl PasswordHasher for DjangoBcryptHasher {
    fn algorithm(&self) -> &'static str {
        "bcrypt"
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.inner.hash(password).map(|h| format!("bcrypt${h}"))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        let inner = encoded
            .strip_prefix("bcrypt$")
            .ok_or(HashError::UnknownFormat)?;
        verify_bcrypt(password.as_bytes(), inner)
    }

    fn identifies(&self, encoded: &str) -> bool {
        encoded.starts_with("bcrypt$")
    }

    fn needs_update(&self, encoded: &str) -> bool {
        encoded
            .strip_prefix("bcrypt$")
            .is_none_or(|inner| self.inner.needs_update(inner))
    }
}
