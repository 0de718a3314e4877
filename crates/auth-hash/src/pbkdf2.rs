//! PBKDF2 in Django's format, and tortoise-auth's variant of it.

use auth_core::{HashError, PasswordHasher, constant_time_eq};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The most PBKDF2 iterations a stored hash may ask for: a damaged or hostile row cannot make
/// a login spin for minutes.
pub const MAX_PBKDF2_ITERATIONS: u32 = 20_000_000;

/// The digest of a PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pbkdf2Digest {
    /// `pbkdf2_sha256`, Django's default.
    Sha256,
    /// `pbkdf2_sha1`, Django's legacy variant.
    Sha1,
}

impl Pbkdf2Digest {
    fn prefix(self) -> &'static str {
        match self {
            Self::Sha256 => "pbkdf2_sha256",
            Self::Sha1 => "pbkdf2_sha1",
        }
    }

    fn derive(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Self::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

struct Parts<'a> {
    iterations: u32,
    salt: &'a str,
    hash: &'a str,
}

fn split<'a>(encoded: &'a str, prefix: &str) -> Result<Parts<'a>, HashError> {
    let mut fields = encoded.splitn(4, '$');
    if fields.next() != Some(prefix) {
        return Err(HashError::UnknownFormat);
    }
    let (Some(iterations), Some(salt), Some(hash)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(HashError::Malformed);
    };
    let iterations: u32 = iterations.parse().map_err(|_| HashError::Malformed)?;
    if iterations == 0 {
        return Err(HashError::Malformed);
    }
    if iterations > MAX_PBKDF2_ITERATIONS {
        return Err(HashError::Unsupported(
            "PBKDF2 iterations beyond the verification limit",
        ));
    }
    if hash.is_empty() || salt.contains('$') {
        return Err(HashError::Malformed);
    }
    Ok(Parts {
        iterations,
        salt,
        hash,
    })
}

/// tortoise-auth writes `pbkdf2_sha256$<iter>$<base64 of 16 salt bytes>$<base64 hash>`, with the
/// same prefix as Django, whose salt is literal text (alphanumeric, never `=`). A salt field that
/// ends in base64 padding and decodes is tortoise-auth's; anything else is Django's. Sixteen bytes
/// always encode to 24 characters ending in `==`, so no tortoise-auth salt is mistaken for Django's,
/// and Django's generated salts never contain `=`.
fn is_tortoise_salt(salt: &str) -> bool {
    salt.ends_with('=') && STANDARD.decode(salt).is_ok()
}

fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in auth_core::random::bytes(len * 2) {
            // 248 = 4 * 62: rejecting larger bytes keeps the choice uniform.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// Django's `PBKDF2PasswordHasher` and `PBKDF2SHA1PasswordHasher`, byte-exact:
/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`, where the salt is used as literal text.
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::DjangoPbkdf2Hasher;
///
/// // Made by Django 5.1: make_password("correct horse battery staple", "abcdefghijkl", "pbkdf2_sha256")
/// // with 1,000 iterations.
/// let django = "pbkdf2_sha256$1000$abcdefghijkl$/kbMgJ7UhtmCvMuhdoGhoD586zaCxS3MuYTC1Q0EXuk=";
/// let hasher = DjangoPbkdf2Hasher::sha256();
/// assert!(hasher.identifies(django));
/// assert!(hasher.verify("correct horse battery staple", django).unwrap());
/// assert!(!hasher.verify("wrong", django).unwrap());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DjangoPbkdf2Hasher {
    digest: Pbkdf2Digest,
    iterations: u32,
}

impl DjangoPbkdf2Hasher {
    /// Django 5.1's iteration count for `pbkdf2_sha256`.
    pub const DJANGO_ITERATIONS: u32 = 870_000;

    /// `pbkdf2_sha256` with Django 5.1's 870,000 iterations.
    ///
    /// ```
    /// use auth_core::PasswordHasher;
    /// assert_eq!(auth_hash::DjangoPbkdf2Hasher::sha256().algorithm(), "pbkdf2_sha256");
    /// ```
    #[must_use]
    pub fn sha256() -> Self {
        Self {
            digest: Pbkdf2Digest::Sha256,
            iterations: Self::DJANGO_ITERATIONS,
        }
    }

    /// `pbkdf2_sha1` (legacy; verify only in practice).
    ///
    /// ```
    /// use auth_core::PasswordHasher;
    /// assert_eq!(auth_hash::DjangoPbkdf2Hasher::sha1().algorithm(), "pbkdf2_sha1");
    /// ```
    #[must_use]
    pub fn sha1() -> Self {
        Self {
            digest: Pbkdf2Digest::Sha1,
            iterations: Self::DJANGO_ITERATIONS,
        }
    }

    /// Sets the iteration count for new hashes (and the threshold of `needs_update`).
    ///
    /// ```
    /// use auth_core::PasswordHasher;
    /// let h = auth_hash::DjangoPbkdf2Hasher::sha256().with_iterations(1000);
    /// assert!(h.hash("pw").unwrap().starts_with("pbkdf2_sha256$1000$"));
    /// ```
    #[must_use]
    pub fn with_iterations(mut self, iterations: u32) -> Self {
        self.iterations = iterations.clamp(1, MAX_PBKDF2_ITERATIONS);
        self
    }
}

impl PasswordHasher for DjangoPbkdf2Hasher {
    fn algorithm(&self) -> &'static str {
        self.digest.prefix()
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = random_alphanumeric(22);
        let dk = self
            .digest
            .derive(password.as_bytes(), salt.as_bytes(), self.iterations);
        Ok(format!(
            "{}${}${salt}${}",
            self.digest.prefix(),
            self.iterations,
            STANDARD.encode(dk)
        ))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        let parts = split(encoded, self.digest.prefix())?;
        if self.digest == Pbkdf2Digest::Sha256 && is_tortoise_salt(parts.salt) {
            return Err(HashError::UnknownFormat);
        }
        let expected = STANDARD
            .decode(parts.hash)
            .map_err(|_| HashError::Malformed)?;
        let actual =
            self.digest
                .derive(password.as_bytes(), parts.salt.as_bytes(), parts.iterations);
        Ok(constant_time_eq(&actual, &expected))
    }

    fn identifies(&self, encoded: &str) -> bool {
        match split(encoded, self.digest.prefix()) {
            Ok(parts) => self.digest == Pbkdf2Digest::Sha1 || !is_tortoise_salt(parts.salt),
            Err(HashError::UnknownFormat) => false,
            // Ours, but damaged: claim it so the error says "malformed", not "unknown".
            Err(_) => encoded.starts_with(&format!("{}$", self.digest.prefix())),
        }
    }

    fn needs_update(&self, encoded: &str) -> bool {
        split(encoded, self.digest.prefix()).map_or(true, |p| p.iterations < self.iterations)
    }
}

/// tortoise-auth's own PBKDF2-SHA256 format: `pbkdf2_sha256$<iterations>$<base64 salt>$<base64
/// hash>`. Its salt field is base64 of random bytes, unlike Django's; see [`DjangoPbkdf2Hasher`]
/// for how the two layouts are told apart.
///
/// ```
/// use auth_core::PasswordHasher;
/// use auth_hash::{DjangoPbkdf2Hasher, TortoisePbkdf2Hasher};
///
/// let tortoise = TortoisePbkdf2Hasher::new(1000);
/// let hash = tortoise.hash("pw").unwrap();
/// assert!(tortoise.identifies(&hash));
/// assert!(!DjangoPbkdf2Hasher::sha256().identifies(&hash));
/// assert!(tortoise.verify("pw", &hash).unwrap());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TortoisePbkdf2Hasher {
    iterations: u32,
}

impl TortoisePbkdf2Hasher {
    /// tortoise-auth's default iteration count.
    pub const DEFAULT_ITERATIONS: u32 = 600_000;

    /// A hasher making new hashes with `iterations`.
    ///
    /// ```
    /// let _ = auth_hash::TortoisePbkdf2Hasher::new(600_000);
    /// ```
    #[must_use]
    pub fn new(iterations: u32) -> Self {
        Self {
            iterations: iterations.clamp(1, MAX_PBKDF2_ITERATIONS),
        }
    }
}

impl Default for TortoisePbkdf2Hasher {
    fn default() -> Self {
        Self::new(Self::DEFAULT_ITERATIONS)
    }
}

impl PasswordHasher for TortoisePbkdf2Hasher {
    fn algorithm(&self) -> &'static str {
        "tortoise_pbkdf2_sha256"
    }

    fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = auth_core::random::bytes(16);
        let dk = Pbkdf2Digest::Sha256.derive(password.as_bytes(), &salt, self.iterations);
        Ok(format!(
            "pbkdf2_sha256${}${}${}",
            self.iterations,
            STANDARD.encode(salt),
            STANDARD.encode(dk)
        ))
    }

    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
        let parts = split(encoded, "pbkdf2_sha256")?;
        if !is_tortoise_salt(parts.salt) {
            return Err(HashError::UnknownFormat);
        }
        let salt = STANDARD
            .decode(parts.salt)
            .map_err(|_| HashError::Malformed)?;
        let expected = STANDARD
            .decode(parts.hash)
            .map_err(|_| HashError::Malformed)?;
        let actual = Pbkdf2Digest::Sha256.derive(password.as_bytes(), &salt, parts.iterations);
        Ok(constant_time_eq(&actual, &expected))
    }

    fn identifies(&self, encoded: &str) -> bool {
        split(encoded, "pbkdf2_sha256").is_ok_and(|p| is_tortoise_salt(p.salt))
    }

    fn needs_update(&self, encoded: &str) -> bool {
        split(encoded, "pbkdf2_sha256").map_or(true, |p| p.iterations != self.iterations)
    }
}
