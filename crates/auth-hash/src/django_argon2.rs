//! Django's `Argon2PasswordHasher` format.

use auth_core::{HashError, PasswordHasher};

use crate::argon2::{Argon2Hasher, Argon2Params, parse_phc, verify_phc};

/// Django's `Argon2PasswordHasher`: `argon2` followed by a PHC string,
/// `argon2$argon2id$v=19$m=102400,t=2,p=8$<salt>$<hash>`.
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::DjangoArgon2Hasher;
/// let hasher = DjangoArgon2Hasher::default();
/// let hash = hasher.hash("pw").unwrap();
/// assert!(hash.starts_with("argon2$argon2id$v=19$m=102400,t=2,p=8$"));
/// assert!(hasher.verify("pw", &hash).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct DjangoArgon2Hasher {
    inner: Argon2Hasher,
}

impl DjangoArgon2Hasher {
    /// Django 5.1's parameters: m = 102,400 KiB, t = 2, p = 8.
    pub const DJANGO_PARAMS: Argon2Params = Argon2Params::trusted(102_400, 2, 8);

    /// A hasher making new hashes with `params`.
    ///
    /// ```
    /// let _ = auth_hash::DjangoArgon2Hasher::new(auth_hash::Argon2Params::DEFAULT);
    /// ```
    #[must_use]
    pub fn new(params: Argon2Params) -> Self {
        Self {
            inner: Argon2Hasher::new(params),
        }
    }
}

impl Default for DjangoArgon2Hasher {
    fn default() -> Self {
        Self::new(Self::DJANGO_PARAMS)
    }
}

impl PasswordHasher for DjangoArgon2Hasher {
    fn algorithm(&self) -> &'static str {
        "argon2"
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        self.inner.hash(password).map(|phc| format!("argon2{phc}"))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        let phc = encoded
            .strip_prefix("argon2$")
            .ok_or(HashError::UnknownFormat)?;
        verify_phc(password, &parse_phc(&format!("${phc}"))?)
    }

    fn identifies(&self, encoded: &str) -> bool {
        encoded.starts_with("argon2$")
    }

    fn needs_update(&self, encoded: &str) -> bool {
        encoded
            .strip_prefix("argon2")
            .is_none_or(|phc| self.inner.needs_update(phc))
    }
}
