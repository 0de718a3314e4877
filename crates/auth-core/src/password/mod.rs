//! Passwords: the hasher and validator contracts, unusable passwords, breached-password ranges.
//! Hashing off the async runtime and the policy are the orchestrator's (`auth-service`).

#[cfg(feature = "full")]
mod breach;
mod validation;

#[cfg(feature = "full")]
pub use breach::{BreachSourceFailure, MAX_RANGE_LINES, PwnedPasswords, PwnedRange};
pub use validation::{PasswordContext, PasswordValidator};

use std::fmt;

/// The default maximum password length in bytes, checked before any hashing (a DoS guard).
pub const DEFAULT_MAX_PASSWORD_LENGTH: usize = 4096;

/// The prefix of an unusable password hash, as in Django: no password ever verifies against it.
pub const UNUSABLE_PASSWORD_PREFIX: &str = "!";

/// A password hashing algorithm, synchronous like RustCrypto's traits.
///
/// Implementations are CPU-bound and may take tens of milliseconds; the library never calls them
/// on the async runtime's worker threads but through `PasswordHashing`, which runs them on
/// blocking threads with bounded concurrency.
///
/// ```
/// use auth_core::{HashError, PasswordHasher};
///
/// /// A toy hasher (reversal) to show the contract; never use it for real.
/// #[derive(Debug)]
/// struct Reverse;
///
/// impl PasswordHasher for Reverse {
///     fn algorithm(&self) -> &'static str { "reverse" }
///     fn hash(&self, password: &str) -> Result<String, HashError> {
///         Ok(format!("reverse${}", password.chars().rev().collect::<String>()))
///     }
///     fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError> {
///         let body = encoded.strip_prefix("reverse$").ok_or(HashError::UnknownFormat)?;
///         Ok(auth_core::constant_time_eq(
///             body.as_bytes(),
///             password.chars().rev().collect::<String>().as_bytes(),
///         ))
///     }
///     fn identifies(&self, encoded: &str) -> bool { encoded.starts_with("reverse$") }
///     fn needs_update(&self, _encoded: &str) -> bool { false }
/// }
///
/// let h = Reverse.hash("pw").unwrap();
/// assert!(Reverse.verify("pw", &h).unwrap());
/// assert!(!Reverse.verify("other", &h).unwrap());
/// ```
pub trait PasswordHasher: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and events, such as `argon2id`.
    fn algorithm(&self) -> &'static str;

    /// Hashes a password with a fresh salt into a self-describing encoded string.
    ///
    /// # Errors
    ///
    /// [`HashError`] when the password cannot be hashed (for example, over an algorithm limit).
    fn hash(&self, password: &str) -> Result<String, HashError>;

    /// Checks a password against an encoded hash. A wrong password is `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`HashError::UnknownFormat`] when this hasher does not handle the format,
    /// [`HashError::Malformed`] when the hash is damaged. Never a panic.
    fn verify(&self, password: &str, encoded: &str) -> Result<bool, HashError>;

    /// Whether this hasher handles the encoded format.
    fn identifies(&self, encoded: &str) -> bool;

    /// Whether a hash that verified should be replaced (another algorithm, weaker parameters).
    fn needs_update(&self, encoded: &str) -> bool;
}

/// Why a hash could not be made or checked. Holds no password and no hash.
///
/// ```
/// use auth_core::HashError;
/// assert_eq!(HashError::UnknownFormat.to_string(), "unknown password hash format");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// No configured hasher handles this format.
    #[error("unknown password hash format")]
    UnknownFormat,
    /// The hash is truncated or damaged.
    #[error("malformed password hash")]
    Malformed,
    /// The password cannot be hashed with this algorithm (the reason says why).
    #[error("password cannot be hashed: {0}")]
    Unsupported(&'static str),
    /// The algorithm failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl From<HashError> for crate::Error {
    fn from(err: HashError) -> Self {
        crate::Error::backend("password hashing", err)
    }
}

/// An encoded hash that no password verifies, for accounts that must not log in with a password
/// (Django's `make_password(None)`): the prefix plus 40 random characters.
///
/// ```
/// use auth_core::{is_password_usable, make_unusable_password};
/// let h = make_unusable_password();
/// assert!(h.starts_with('!'));
/// assert!(!is_password_usable(Some(&h)));
/// ```
#[must_use]
pub fn make_unusable_password() -> String {
    format!("{UNUSABLE_PASSWORD_PREFIX}{}", crate::random::token(30))
}

/// Whether an encoded hash could verify some password: present, non-empty, not unusable.
///
/// ```
/// use auth_core::is_password_usable;
/// assert!(is_password_usable(Some("argon2$...")));
/// assert!(!is_password_usable(Some("")));
/// assert!(!is_password_usable(Some("!abc")));
/// assert!(!is_password_usable(None));
/// ```
#[must_use]
pub fn is_password_usable(encoded: Option<&str>) -> bool {
    encoded.is_some_and(|h| !h.is_empty() && !h.starts_with(UNUSABLE_PASSWORD_PREFIX))
}

/// The outcome of `PasswordHashing::verify`.
///
/// ```
/// use auth_core::Verified;
/// let v = Verified::default();
/// assert!(!v.valid && !v.needs_update);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The password matched.
    pub valid: bool,
    /// It matched and the hash should be replaced with a fresh one from the primary hasher.
    pub needs_update: bool,
}

impl Verified {
    /// The outcome of one verification.
    ///
    /// ```
    /// let v = auth_core::Verified::new(true, false);
    /// assert!(v.valid && !v.needs_update);
    /// ```
    #[must_use]
    pub fn new(valid: bool, needs_update: bool) -> Self {
        Self {
            valid,
            needs_update,
        }
    }
}
