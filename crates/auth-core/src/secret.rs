//! Secret values: never printed, zeroized on drop, compared in constant time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A string that must not leak: a password, a token, a key, a code.
///
/// `Debug` prints `[REDACTED]`, there is no `Display`, the bytes are zeroized on drop, and
/// equality is constant-time. Serializing exposes the value on purpose (a token must reach the
/// client); deserializing wraps it.
///
/// ```
/// use auth_core::SecretString;
///
/// let token = SecretString::new("s3cr3t-token");
/// assert_eq!(format!("{token:?}"), "SecretString([REDACTED])");
/// assert_eq!(token.expose_secret(), "s3cr3t-token");
/// assert_eq!(token, SecretString::new("s3cr3t-token"));
/// ```
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a value.
    ///
    /// ```
    /// # use auth_core::SecretString;
    /// let s = SecretString::new(String::from("x"));
    /// assert_eq!(s.len(), 1);
    /// ```
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call it only where the value must leave the process (a response body,
    /// an email); never to log it.
    ///
    /// ```
    /// # use auth_core::SecretString;
    /// assert_eq!(SecretString::new("abc").expose_secret(), "abc");
    /// ```
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The length in bytes.
    ///
    /// ```
    /// # use auth_core::SecretString;
    /// assert_eq!(SecretString::new("abcd").len(), 4);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    ///
    /// ```
    /// # use auth_core::SecretString;
    /// assert!(SecretString::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

impl PartialEq for SecretString {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for SecretString {}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// ```
/// use auth_core::constant_time_eq;
///
/// assert!(constant_time_eq(b"abc", b"abc"));
/// assert!(!constant_time_eq(b"abc", b"abd"));
/// assert!(!constant_time_eq(b"abc", b"abcd"));
/// ```
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Key material for signing: at least [`SecretKey::MIN_LEN`] bytes, never printed.
///
/// ```
/// use auth_core::SecretKey;
///
/// assert!(SecretKey::new("too short").is_err());
/// let key = SecretKey::new("0123456789abcdef0123456789abcdef").unwrap();
/// assert_eq!(format!("{key:?}"), "SecretKey([REDACTED])");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// The shortest key accepted, in bytes (256 bits, the HMAC-SHA256 output size).
    pub const MIN_LEN: usize = 32;

    /// Wraps key material after checking its length.
    ///
    /// # Errors
    ///
    /// [`crate::ConfigError::WeakSecret`] when the key is shorter than [`SecretKey::MIN_LEN`] bytes.
    ///
    /// ```
    /// # use auth_core::SecretKey;
    /// assert!(SecretKey::new(vec![7u8; 32]).is_ok());
    /// ```
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, crate::ConfigError> {
        let key = key.into();
        if key.len() < Self::MIN_LEN {
            return Err(crate::ConfigError::WeakSecret {
                name: "secret key",
                min: Self::MIN_LEN,
            });
        }
        Ok(Self(key))
    }

    /// The key bytes, for the signing primitive.
    ///
    /// ```
    /// # use auth_core::SecretKey;
    /// let key = SecretKey::new([1u8; 32]).unwrap();
    /// assert_eq!(key.expose_secret().len(), 32);
    /// ```
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for SecretKey {}
