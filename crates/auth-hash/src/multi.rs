//! `MultiHasher`: the first hasher hashes, every hasher verifies its own formats.

use std::fmt;
use std::sync::Arc;

use auth_core::{HashError, PasswordHasher, is_password_usable};

use crate::{
    Argon2Hasher, BcryptHasher, DjangoArgon2Hasher, DjangoBcryptHasher, DjangoBcryptSha256Hasher,
    DjangoPbkdf2Hasher, ShaCryptHasher, TortoisePbkdf2Hasher,
};

/// A chain of hashers: the first (primary) makes new hashes; each stored hash is verified by the
/// first hasher that identifies its format; `needs_update` is true for any format the primary
/// does not identify, and for the primary's own hashes with other parameters.
///
/// With `AuthService`, a successful login with a legacy hash stores a
/// fresh primary hash in the same flow and emits `PasswordRehashed`; a failed login rewrites
/// nothing. No migration script is needed.
///
/// [`MultiHasher::default`] hashes with Argon2id (OWASP parameters) and verifies: Argon2
/// (id/i/d, any parameters), Django's `pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`, `bcrypt_sha256`
/// and `bcrypt`, tortoise-auth's PBKDF2, plain bcrypt (`$2a$`/`$2b$`/`$2x$`/`$2y$`) and
/// SHA-crypt (`$5$`/`$6$`). Unusable passwords (`!...`, empty) never verify.
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::MultiHasher;
///
/// let hasher = MultiHasher::default();
/// // A Django hash (1,000 iterations, salt "abcdefghijkl"):
/// let django = "pbkdf2_sha256$1000$abcdefghijkl$/kbMgJ7UhtmCvMuhdoGhoD586zaCxS3MuYTC1Q0EXuk=";
/// assert!(hasher.verify("correct horse battery staple", django).unwrap());
/// assert!(hasher.needs_update(django));
/// let fresh = hasher.hash("correct horse battery staple").unwrap();
/// assert!(fresh.starts_with("$argon2id$"));
/// assert!(!hasher.needs_update(&fresh));
/// assert!(!hasher.verify("anything", "!unusable").unwrap());
/// ```
#[derive(Clone)]
pub struct MultiHasher {
    hashers: Vec<Arc<dyn PasswordHasher>>,
}

impl MultiHasher {
    /// A chain whose primary is `primary`.
    ///
    /// ```
    /// use auth_hash::{Argon2Hasher, BcryptHasher, MultiHasher};
    /// let h = MultiHasher::new(Argon2Hasher::default()).with(BcryptHasher::default());
    /// assert_eq!(h.len(), 2);
    /// ```
    #[must_use]
    pub fn new(primary: impl PasswordHasher) -> Self {
        Self {
            hashers: vec![Arc::new(primary)],
        }
    }

    /// Adds a hasher that verifies (and never hashes) its formats.
    ///
    /// ```
    /// use auth_hash::{Argon2Hasher, MultiHasher, ShaCryptHasher};
    /// let h = MultiHasher::new(Argon2Hasher::default()).with(ShaCryptHasher);
    /// assert_eq!(h.len(), 2);
    /// ```
    #[must_use]
    pub fn with(mut self, hasher: impl PasswordHasher) -> Self {
        self.hashers.push(Arc::new(hasher));
        self
    }

    /// How many hashers are in the chain.
    ///
    /// ```
    /// assert_eq!(auth_hash::MultiHasher::default().len(), 9);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.hashers.len()
    }

    /// Always false: a chain has a primary.
    ///
    /// ```
    /// assert!(!auth_hash::MultiHasher::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hashers.is_empty()
    }

    fn primary(&self) -> &dyn PasswordHasher {
        self.hashers[0].as_ref()
    }

    fn find(&self, encoded: &str) -> Option<&dyn PasswordHasher> {
        self.hashers
            .iter()
            .find(|h| h.identifies(encoded))
            .map(AsRef::as_ref)
    }
}

impl MultiHasher {
    /// The default set with new hashes made by Argon2id with `params` (to match the costs of
    /// existing hashes, or this hardware); every other format still verifies.
    ///
    /// ```
    /// use auth_hash::{Argon2Params, MultiHasher};
    /// use auth_core::PasswordHasher;
    /// let hasher = MultiHasher::with_argon2(Argon2Params::new(65_536, 3, 1)?);
    /// assert!(hasher.hash("pw")?.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_argon2(params: crate::Argon2Params) -> Self {
        Self::new(Argon2Hasher::new(params))
            .with(DjangoPbkdf2Hasher::sha256())
            .with(DjangoPbkdf2Hasher::sha1())
            .with(DjangoArgon2Hasher::default())
            .with(DjangoBcryptSha256Hasher::default())
            .with(DjangoBcryptHasher::default())
            .with(TortoisePbkdf2Hasher::default())
            .with(BcryptHasher::default())
            .with(ShaCryptHasher)
    }
}

impl Default for MultiHasher {
    fn default() -> Self {
        Self::with_argon2(crate::Argon2Params::DEFAULT)
    }
}

impl fmt::Debug for MultiHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.hashers.iter().map(|h| h.algorithm()))
            .finish()
    }
}

impl PasswordHasher for MultiHasher {
    fn algorithm(&self) -> &'static str {
        self.primary().algorithm()
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.primary().hash(password)
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        if !is_password_usable(Some(encoded)) {
            return Ok(false);
        }
        self.find(encoded)
            .ok_or(HashError::UnknownFormat)?
            .verify(password, encoded)
    }

    fn identifies(&self, encoded: &str) -> bool {
        self.find(encoded).is_some()
    }

    fn needs_update(&self, encoded: &str) -> bool {
        let primary = self.primary();
        !primary.identifies(encoded) || primary.needs_update(encoded)
    }
}
