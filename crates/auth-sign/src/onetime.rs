//! State-bound one-time tokens, in the manner of Django's password-reset token generator.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthUser, Clock, MAX_TOKEN_LENGTH, SecretKey, SharedClock, SystemClock, UserId,
    constant_time_eq,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::SignError;
use crate::signer::Signer;

/// Tokens that die with the state they were made for, with no database row: the signature covers
/// the purpose, the user id, the current password hash, the last login time, the email and the
/// active flag (and, when asked, the verified flag). Setting a new password or logging in makes
/// every earlier token invalid; so does changing the email or deactivating the account.
///
/// Format: `<base64url user id>.<base64url timestamp>.<signature>` — URL-safe as it is.
///
/// ```
/// use std::time::Duration;
/// use auth_core::{User, UserId};
/// use auth_sign::OneTimeTokens;
///
/// let tokens = OneTimeTokens::new("0123456789abcdef0123456789abcdef", "password-reset", Duration::from_secs(3600))?;
/// let mut user = User::new(UserId::new("42"), "alice@example.com").with_password_hash("hash-1");
/// let token = tokens.make(&user);
/// assert_eq!(tokens.user_id(&token)?, UserId::new("42"));
/// assert!(tokens.check(&token, &user).is_ok());
///
/// user.password_hash = Some("hash-2".into()); // the password changed: the token is dead
/// assert!(tokens.check(&token, &user).is_err());
/// # Ok::<(), auth_sign::SignError>(())
/// ```
#[derive(Clone)]
pub struct OneTimeTokens {
    signer: Signer,
    max_age: Duration,
    bind_verified: bool,
    clock: SharedClock,
}

impl OneTimeTokens {
    /// Tokens for one purpose (the salt), valid `max_age`.
    ///
    /// # Errors
    ///
    /// [`SignError::WeakSecret`] when the secret is shorter than 32 bytes.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "purpose", Duration::from_secs(60))?;
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn new(
        secret: impl AsRef<[u8]>,
        purpose: impl Into<Cow<'static, str>>,
        max_age: Duration,
    ) -> Result<Self, SignError> {
        Ok(Self::from_signer(
            Signer::new(secret)?.with_salt(purpose),
            max_age,
        ))
    }

    /// Tokens from a validated key.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let key = auth_core::SecretKey::new([1u8; 32]).unwrap();
    /// let _ = auth_sign::OneTimeTokens::from_key(key, "purpose", Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn from_key(
        key: SecretKey,
        purpose: impl Into<Cow<'static, str>>,
        max_age: Duration,
    ) -> Self {
        Self::from_signer(Signer::from_key(key).with_salt(purpose), max_age)
    }

    /// Tokens signed by `signer` (give it a purpose salt and any fallback keys).
    ///
    /// ```
    /// # use std::time::Duration;
    /// use auth_sign::{OneTimeTokens, Signer};
    /// let signer = Signer::new("0123456789abcdef0123456789abcdef")?.with_salt("p");
    /// let _ = OneTimeTokens::from_signer(signer, Duration::from_secs(60));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn from_signer(signer: Signer, max_age: Duration) -> Self {
        Self {
            signer,
            max_age,
            bind_verified: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// Also binds the verified flag, so a token dies once the email is verified.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use auth_core::{User, UserId};
    /// let t = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "verify", Duration::from_secs(60))?
    ///     .binding_verified();
    /// let mut u = User::new(UserId::new("1"), "a@b.c");
    /// let token = t.make(&u);
    /// u.is_verified = true;
    /// assert!(t.check(&token, &u).is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn binding_verified(mut self) -> Self {
        self.bind_verified = true;
        self
    }

    /// Sets how long tokens stay valid.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let t = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "p", Duration::from_secs(60))?
    ///     .with_max_age(Duration::from_secs(5));
    /// assert_eq!(t.max_age(), Duration::from_secs(5));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "p", Duration::from_secs(60))?
    ///     .with_clock(auth_core::FixedClock::from_unix(0));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long tokens stay valid.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let t = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "p", Duration::from_secs(60))?;
    /// assert_eq!(t.max_age(), Duration::from_secs(60));
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The message the signature covers: every field length-prefixed, so no two states collide.
    fn message<U: AuthUser>(&self, user: &U, timestamp: i64) -> String {
        let last_login = user
            .last_login()
            .map(|t| t.unix_timestamp_nanos().to_string())
            .unwrap_or_default();
        let mut fields = vec![
            user.id().as_str().to_owned(),
            timestamp.to_string(),
            user.password_hash().unwrap_or_default().to_owned(),
            last_login,
            user.email().to_owned(),
            user.is_active().to_string(),
        ];
        if self.bind_verified {
            fields.push(user.is_verified().to_string());
        }
        let mut message = String::from("auth-sign/one-time/v1");
        for f in fields {
            message.push_str(&format!("|{}:{f}", f.len()));
        }
        message
    }

    /// A token for the user's current state.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use auth_core::{User, UserId};
    /// let t = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "p", Duration::from_secs(60))?;
    /// assert_eq!(t.make(&User::new(UserId::new("1"), "a@b.c")).split('.').count(), 3);
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn make<U: AuthUser>(&self, user: &U) -> String {
        let ts = self.clock.now().unix_timestamp();
        let signature = self.signer.signature(&self.message(user, ts));
        format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(user.id().as_str()),
            URL_SAFE_NO_PAD.encode(ts.to_string())
        )
    }

    fn parse(token: &str) -> Result<(UserId, i64, &str), SignError> {
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(SignError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(uid), Some(ts), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SignError::Malformed("expected three parts"));
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        };
        let uid = decode(uid).ok_or(SignError::Malformed("invalid user id"))?;
        let ts = decode(ts)
            .and_then(|s| s.parse().ok())
            .ok_or(SignError::Malformed("invalid timestamp"))?;
        Ok((UserId::new(uid), ts, sig))
    }

    /// The user a token names (to load the user before [`check`](Self::check)). Proves nothing.
    ///
    /// # Errors
    ///
    /// [`SignError::Malformed`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// let t = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "p", Duration::from_secs(60))?;
    /// assert!(t.user_id("garbage").is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn user_id(&self, token: &str) -> Result<UserId, SignError> {
        Self::parse(token).map(|(uid, _, _)| uid)
    }

    /// Checks a token against the user's current state and the maximum age.
    ///
    /// # Errors
    ///
    /// [`SignError::BadSignature`] (forged, another purpose, or the state changed: used, stale),
    /// [`SignError::Expired`], [`SignError::NotYetValid`], [`SignError::Malformed`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// use auth_core::{User, UserId};
    /// let t = auth_sign::OneTimeTokens::new("0123456789abcdef0123456789abcdef", "p", Duration::from_secs(60))?;
    /// let alice = User::new(UserId::new("1"), "alice@b.c");
    /// let bob = User::new(UserId::new("2"), "bob@b.c");
    /// assert!(t.check(&t.make(&alice), &bob).is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn check<U: AuthUser>(&self, token: &str, user: &U) -> Result<(), SignError> {
        let (uid, ts, signature) = Self::parse(token)?;
        let genuine = self
            .signer
            .verify_signature(&self.message(user, ts), signature);
        let same_user = constant_time_eq(uid.as_str().as_bytes(), user.id().as_str().as_bytes());
        if !(genuine && same_user) {
            return Err(SignError::BadSignature);
        }
        let age = self.clock.now().unix_timestamp().saturating_sub(ts);
        if age < 0 {
            return Err(SignError::NotYetValid);
        }
        let age = Duration::from_secs(age.unsigned_abs());
        if age > self.max_age {
            return Err(SignError::Expired {
                expired_for: age - self.max_age,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for OneTimeTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneTimeTokens")
            .field("signer", &self.signer)
            .field("max_age", &self.max_age)
            .field("bind_verified", &self.bind_verified)
            .finish_non_exhaustive()
    }
}
