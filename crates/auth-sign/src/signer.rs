//! `Signer` and `TimestampSigner`: tortoise-auth's wire format, with purpose salts and key rotation.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Clock, MAX_TOKEN_LENGTH, SecretKey, SharedClock, SystemClock, constant_time_eq};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::SignError;

/// The default separator between a value, its timestamp and its signature (tortoise-auth's);
/// [`Signer::with_separator`] sets another.
pub const SEPARATOR: char = ':';

/// Derives the key for a purpose: HMAC-SHA256(secret, "auth-sign/v1/salt:" + salt). Without a
/// salt the secret itself is the key, as in tortoise-auth, so its links stay valid.
fn derive(secret: &SecretKey, salt: Option<&str>) -> hmac::Key {
    match salt {
        None => hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret()),
        Some(salt) => {
            let master = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret());
            let purpose = format!("auth-sign/v1/salt:{salt}");
            let derived = hmac::sign(&master, purpose.as_bytes());
            hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
        }
    }
}

fn key_from(secret: impl AsRef<[u8]>) -> Result<SecretKey, SignError> {
    SecretKey::new(secret.as_ref().to_vec()).map_err(|_| SignError::WeakSecret {
        min: SecretKey::MIN_LEN,
    })
}

/// Signs strings with HMAC-SHA256: `value:signature`, the signature in unpadded base64url.
///
/// Without a salt the output is byte-identical to tortoise-auth's `Signer` with the same secret,
/// so links it mailed keep working. With [`with_salt`](Self::with_salt) the key is derived for that
/// purpose, and a value signed for one purpose never verifies for another. Verification is
/// constant-time; a value may itself contain `:`.
///
/// ```
/// use auth_sign::Signer;
/// let signer = Signer::new("0123456789abcdef0123456789abcdef")?;
/// let signed = signer.sign("user:42");
/// assert_eq!(signer.unsign(&signed)?, "user:42");
/// assert!(signer.unsign(&signed.replace("42", "43")).is_err());
///
/// let unsubscribe = signer.clone().with_salt("unsubscribe");
/// assert!(unsubscribe.unsign(&signed).is_err(), "another purpose");
/// # Ok::<(), auth_sign::SignError>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    secrets: Arc<Vec<SecretKey>>,
    salt: Option<Cow<'static, str>>,
    /// Between value and signature (and timestamp); [`SEPARATOR`] unless set.
    separator: Cow<'static, str>,
    /// Derived keys: the current one first, then fallbacks.
    keys: Arc<Vec<hmac::Key>>,
}

impl Signer {
    /// A signer with one key (at least 32 bytes; a `&str` works).
    ///
    /// # Errors
    ///
    /// [`SignError::WeakSecret`] when the secret is shorter than 32 bytes.
    ///
    /// ```
    /// use auth_sign::{SignError, Signer};
    /// assert!(matches!(Signer::new("short"), Err(SignError::WeakSecret { min: 32 })));
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SignError> {
        Ok(Self::from_key(key_from(secret)?))
    }

    /// A signer with a validated key (for example `AuthConfig::signing_secret()`).
    ///
    /// ```
    /// let key = auth_core::SecretKey::new([7u8; 32]).unwrap();
    /// let signer = auth_sign::Signer::from_key(key);
    /// assert!(signer.unsign(&signer.sign("x")).is_ok());
    /// ```
    #[must_use]
    pub fn from_key(secret: SecretKey) -> Self {
        let mut signer = Self {
            secrets: Arc::new(vec![secret]),
            salt: None,
            separator: Cow::Borrowed(":"),
            keys: Arc::new(Vec::new()),
        };
        signer.rederive();
        signer
    }

    /// Uses another separator, as tortoise-auth's `Signer(secret, separator=".")` does, so the
    /// values it signed verify (and new ones match byte for byte). [`TimestampSigner`] uses the
    /// same separator before its timestamp.
    ///
    /// # Errors
    ///
    /// [`SignError::Malformed`] for an empty separator, one longer than 8 bytes, or one with a
    /// base64url character (`A-Z a-z 0-9 - _`), which signatures and timestamps are made of.
    ///
    /// ```
    /// use auth_sign::Signer;
    /// let s = Signer::new("0123456789abcdef0123456789abcdef-secret")?.with_separator(".")?;
    /// // Made by tortoise-auth's Signer(secret, separator=".").
    /// assert_eq!(s.unsign("hello.XGTFfsI47jRRqTlxb92gK_GxO7BCUo1ypMOgKrLwqE8")?, "hello");
    /// assert!(Signer::new("0123456789abcdef0123456789abcdef-secret")?.with_separator("x").is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn with_separator(
        mut self,
        separator: impl Into<Cow<'static, str>>,
    ) -> Result<Self, SignError> {
        let separator = separator.into();
        if separator.is_empty()
            || separator.len() > 8
            || separator
                .bytes()
                .any(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SignError::Malformed(
                "a separator is 1 to 8 bytes, none of them base64url characters",
            ));
        }
        self.separator = separator;
        Ok(self)
    }

    /// The separator between value and signature.
    ///
    /// ```
    /// # use auth_sign::Signer;
    /// assert_eq!(Signer::new("0123456789abcdef0123456789abcdef")?.separator(), ":");
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// Signs for one purpose only (`password-reset`, `email-verification`, ...).
    ///
    /// ```
    /// use auth_sign::Signer;
    /// let base = Signer::new("0123456789abcdef0123456789abcdef")?;
    /// let a = base.clone().with_salt("a");
    /// assert!(base.clone().with_salt("b").unsign(&a.sign("v")).is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_salt(mut self, salt: impl Into<Cow<'static, str>>) -> Self {
        self.salt = Some(salt.into());
        self.rederive();
        self
    }

    /// Adds keys that still verify (old keys during a rotation); new values use the current key.
    ///
    /// # Errors
    ///
    /// [`SignError::WeakSecret`] when a fallback is shorter than 32 bytes.
    ///
    /// ```
    /// use auth_sign::Signer;
    /// let old = Signer::new("old-key-0123456789abcdef0123456789")?;
    /// let signed_long_ago = old.sign("v");
    /// let rotated = Signer::new("new-key-0123456789abcdef0123456789")?
    ///     .with_fallback_keys(["old-key-0123456789abcdef0123456789"])?;
    /// assert_eq!(rotated.unsign(&signed_long_ago)?, "v");
    /// assert!(old.unsign(&rotated.sign("v")).is_err(), "new values use the new key");
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn with_fallback_keys<K: AsRef<[u8]>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Self, SignError> {
        let mut secrets = (*self.secrets).clone();
        for k in keys {
            secrets.push(key_from(k)?);
        }
        self.secrets = Arc::new(secrets);
        self.rederive();
        Ok(self)
    }

    /// The purpose salt, if any.
    ///
    /// ```
    /// # use auth_sign::Signer;
    /// let s = Signer::new("0123456789abcdef0123456789abcdef")?.with_salt("invite");
    /// assert_eq!(s.salt(), Some("invite"));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn salt(&self) -> Option<&str> {
        self.salt.as_deref()
    }

    fn rederive(&mut self) {
        self.keys = Arc::new(
            self.secrets
                .iter()
                .map(|s| derive(s, self.salt.as_deref()))
                .collect(),
        );
    }

    fn signature_with(key: &hmac::Key, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(key, value.as_bytes()))
    }

    /// The signature of `value` with the current key (unpadded base64url of HMAC-SHA256).
    ///
    /// ```
    /// # use auth_sign::Signer;
    /// let s = Signer::new("0123456789abcdef0123456789abcdef")?;
    /// assert_eq!(s.signature("v").len(), 43);
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn signature(&self, value: &str) -> String {
        // `keys` always holds the current key: `from_key` derives it and nothing removes it.
        self.keys
            .first()
            .map(|k| Self::signature_with(k, value))
            .unwrap_or_default()
    }

    /// `value:signature`.
    ///
    /// ```
    /// # use auth_sign::Signer;
    /// let s = Signer::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(s.sign("hello").starts_with("hello:"));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn sign(&self, value: &str) -> String {
        format!("{value}{}{}", self.separator, self.signature(value))
    }

    /// Checks `value:signature` and returns the value.
    ///
    /// # Errors
    ///
    /// [`SignError::Malformed`] without a separator or over 8,192 bytes;
    /// [`SignError::BadSignature`] when no key made that signature.
    ///
    /// ```
    /// # use auth_sign::{SignError, Signer};
    /// let s = Signer::new("0123456789abcdef0123456789abcdef")?;
    /// assert_eq!(s.unsign("no separator"), Err(SignError::Malformed("no separator")));
    /// # Ok::<(), SignError>(())
    /// ```
    pub fn unsign(&self, signed: &str) -> Result<String, SignError> {
        if signed.len() > MAX_TOKEN_LENGTH {
            return Err(SignError::Malformed("too long"));
        }
        let (value, signature) = signed
            .rsplit_once(&*self.separator)
            .ok_or(SignError::Malformed("no separator"))?;
        if self.verify_signature(value, signature) {
            Ok(value.to_owned())
        } else {
            Err(SignError::BadSignature)
        }
    }

    /// Whether `signature` is the signature of `value` under the current key or a fallback,
    /// compared in constant time over the canonical encoding, every key checked.
    ///
    /// ```
    /// # use auth_sign::Signer;
    /// let s = Signer::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(s.verify_signature("v", &s.signature("v")));
    /// assert!(!s.verify_signature("w", &s.signature("v")));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn verify_signature(&self, value: &str, signature: &str) -> bool {
        let mut valid = false;
        for key in self.keys.iter() {
            valid |= constant_time_eq(
                Self::signature_with(key, value).as_bytes(),
                signature.as_bytes(),
            );
        }
        valid
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.secrets.len())
            .field("salt", &self.salt)
            .finish()
    }
}

/// A [`Signer`] whose values carry the time they were signed: `value:timestamp:signature`, the
/// timestamp being unpadded base64url of the decimal Unix seconds — byte-identical to
/// tortoise-auth's `TimestampSigner` (and `make_token`) when no salt is set.
///
/// ```
/// use std::time::Duration;
/// use auth_core::FixedClock;
/// use auth_sign::{SignError, TimestampSigner};
///
/// let clock = FixedClock::from_unix(1_795_345_084);
/// let signer = TimestampSigner::new("0123456789abcdef0123456789abcdef-secret")?.with_clock(clock.clone());
/// let token = signer.sign("hello");
/// assert_eq!(token, "hello:MTc5NTM0NTA4NA:JSP7to8V_1igZF3LCWQqyDxzLSrJKNs-zIbZIbLQSFY"); // as tortoise-auth
/// assert_eq!(signer.unsign(&token, Some(Duration::from_secs(60)))?, "hello");
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(
///     signer.unsign(&token, Some(Duration::from_secs(60))),
///     Err(SignError::Expired { expired_for: Duration::from_secs(30) })
/// );
/// # Ok::<(), SignError>(())
/// ```
#[derive(Clone)]
pub struct TimestampSigner {
    signer: Signer,
    clock: SharedClock,
}

impl TimestampSigner {
    /// A timestamp signer with one key (at least 32 bytes) on the system clock.
    ///
    /// # Errors
    ///
    /// [`SignError::WeakSecret`] when the secret is shorter than 32 bytes.
    ///
    /// ```
    /// assert!(auth_sign::TimestampSigner::new("0123456789abcdef0123456789abcdef").is_ok());
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SignError> {
        Ok(Self::from_signer(Signer::new(secret)?))
    }

    /// Wraps a configured [`Signer`] (salt and fallback keys included).
    ///
    /// ```
    /// use auth_sign::{Signer, TimestampSigner};
    /// let t = TimestampSigner::from_signer(Signer::new("0123456789abcdef0123456789abcdef")?.with_salt("invite"));
    /// assert_eq!(t.signer().salt(), Some("invite"));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn from_signer(signer: Signer) -> Self {
        Self {
            signer,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?.with_clock(auth_core::FixedClock::from_unix(0));
    /// assert!(t.sign("v").starts_with("v:MA:"));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Signs for one purpose only.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?.with_salt("password-reset");
    /// assert_eq!(t.signer().salt(), Some("password-reset"));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_salt(mut self, salt: impl Into<Cow<'static, str>>) -> Self {
        self.signer = self.signer.with_salt(salt);
        self
    }

    /// Adds fallback keys (see [`Signer::with_fallback_keys`]).
    ///
    /// # Errors
    ///
    /// [`SignError::WeakSecret`] when a key is shorter than 32 bytes.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?
    ///     .with_fallback_keys(["fedcba9876543210fedcba9876543210"])?;
    /// # let _ = t;
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn with_fallback_keys<K: AsRef<[u8]>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Self, SignError> {
        self.signer = self.signer.with_fallback_keys(keys)?;
        Ok(self)
    }

    /// The inner signer.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(t.signer().salt().is_none());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// `value:timestamp:signature`, stamped with the clock's current second.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?;
    /// assert_eq!(t.sign("a:b").split(':').count(), 4);
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn sign(&self, value: &str) -> String {
        let ts = URL_SAFE_NO_PAD.encode(self.clock.now().unix_timestamp().to_string());
        self.signer
            .sign(&format!("{value}{}{ts}", self.signer.separator()))
    }

    /// Checks the signature, then the age when `max_age` is given, and returns the value.
    ///
    /// # Errors
    ///
    /// [`SignError::BadSignature`], [`SignError::Malformed`], and with `max_age`:
    /// [`SignError::Expired`] (saying how long ago) or [`SignError::NotYetValid`].
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?;
    /// assert_eq!(t.unsign(&t.sign("v"), None)?, "v");
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn unsign(&self, token: &str, max_age: Option<Duration>) -> Result<String, SignError> {
        self.unsign_with_time(token, max_age)
            .map(|(value, _)| value)
    }

    /// Like [`unsign`](Self::unsign), also returning when the value was signed (Unix seconds).
    ///
    /// # Errors
    ///
    /// As [`unsign`](Self::unsign).
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?.with_clock(auth_core::FixedClock::from_unix(7));
    /// assert_eq!(t.unsign_with_time(&t.sign("v"), None)?, ("v".to_owned(), 7));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn unsign_with_time(
        &self,
        token: &str,
        max_age: Option<Duration>,
    ) -> Result<(String, i64), SignError> {
        let value_ts = self.signer.unsign(token)?;
        let (value, ts) = value_ts
            .rsplit_once(self.signer.separator())
            .ok_or(SignError::Malformed("no timestamp"))?;
        let ts: i64 = URL_SAFE_NO_PAD
            .decode(ts)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or(SignError::Malformed("invalid timestamp"))?;
        if let Some(max_age) = max_age {
            let now = self.clock.now().unix_timestamp();
            let age = now.saturating_sub(ts);
            if age < 0 {
                return Err(SignError::NotYetValid);
            }
            let age = Duration::from_secs(age.unsigned_abs());
            if age > max_age {
                return Err(SignError::Expired {
                    expired_for: age - max_age,
                });
            }
        }
        Ok((value.to_owned(), ts))
    }

    /// Signs a serializable payload: JSON, base64url-encoded, timestamped and signed.
    ///
    /// # Errors
    ///
    /// [`SignError::Malformed`] when the payload cannot be serialized.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?.with_salt("invite");
    /// let token = t.sign_payload(&("team-7", 42))?;
    /// let back: (String, u32) = t.unsign_payload(&token, None)?;
    /// assert_eq!(back, ("team-7".to_owned(), 42));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn sign_payload<T: Serialize>(&self, payload: &T) -> Result<String, SignError> {
        let json = serde_json::to_vec(payload)
            .map_err(|_| SignError::Malformed("unserializable payload"))?;
        Ok(self.sign(&URL_SAFE_NO_PAD.encode(json)))
    }

    /// Verifies a token from [`sign_payload`](Self::sign_payload) and decodes the payload.
    ///
    /// # Errors
    ///
    /// As [`unsign`](Self::unsign); [`SignError::Malformed`] when the payload does not decode.
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(t.unsign_payload::<u32>(&t.sign("not base64 json!"), None).is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn unsign_payload<T: DeserializeOwned>(
        &self,
        token: &str,
        max_age: Option<Duration>,
    ) -> Result<T, SignError> {
        let encoded = self.unsign(token, max_age)?;
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SignError::Malformed("payload is not base64url"))?;
        serde_json::from_slice(&json)
            .map_err(|_| SignError::Malformed("payload is not the expected JSON"))
    }

    /// tortoise-auth's name for [`sign`](Self::sign).
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?;
    /// assert_eq!(t.verify_token(&t.make_token("42"), Some(std::time::Duration::from_secs(60)))?, "42");
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn make_token(&self, value: &str) -> String {
        self.sign(value)
    }

    /// tortoise-auth's name for [`unsign`](Self::unsign).
    ///
    /// # Errors
    ///
    /// As [`unsign`](Self::unsign).
    ///
    /// ```
    /// # use auth_sign::TimestampSigner;
    /// let t = TimestampSigner::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(t.verify_token("42:MA:nope", None).is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn verify_token(
        &self,
        token: &str,
        max_age: Option<Duration>,
    ) -> Result<String, SignError> {
        self.unsign(token, max_age)
    }
}

impl fmt::Debug for TimestampSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimestampSigner")
            .field("signer", &self.signer)
            .field("clock", &self.clock)
            .finish()
    }
}

/// tortoise-auth's `make_token(value, secret)`: a timestamped signature with no salt.
///
/// # Errors
///
/// [`SignError::WeakSecret`] when the secret is shorter than 32 bytes.
///
/// ```
/// let token = auth_sign::make_token("0123456789abcdef0123456789abcdef", "42")?;
/// let value = auth_sign::verify_token("0123456789abcdef0123456789abcdef", &token, Some(std::time::Duration::from_secs(3600)))?;
/// assert_eq!(value, "42");
/// # Ok::<(), auth_sign::SignError>(())
/// ```
pub fn make_token(secret: impl AsRef<[u8]>, value: &str) -> Result<String, SignError> {
    Ok(TimestampSigner::new(secret)?.sign(value))
}

/// tortoise-auth's `verify_token(token, max_age, secret)`.
///
/// # Errors
///
/// As [`TimestampSigner::unsign`], plus [`SignError::WeakSecret`].
///
/// ```
/// assert!(auth_sign::verify_token("0123456789abcdef0123456789abcdef", "42:MA:bad", None).is_err());
/// ```
pub fn verify_token(
    secret: impl AsRef<[u8]>,
    token: &str,
    max_age: Option<Duration>,
) -> Result<String, SignError> {
    TimestampSigner::new(secret)?.unsign(token, max_age)
}
