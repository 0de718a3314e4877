//! The one error type callers branch on, and the configuration and validation errors inside it.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// A result whose error is [`Error`](crate::Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the terms a caller branches on.
///
/// Nothing secret is ever inside: no password, token, key or code, and no hint about which part
/// of a login failed. The HTTP layer maps every credential and token variant to the same 401.
///
/// ```
/// use auth_core::Error;
///
/// let err = Error::InvalidCredentials;
/// assert_eq!(err.to_string(), "invalid credentials");
/// assert!(err.is_auth_failure());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The email/password pair (or other credential) was not accepted. Login says only this,
    /// whether the account is missing, inactive, has no usable password or the password is wrong.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The token was genuine but has expired.
    #[error("token expired")]
    TokenExpired,
    /// The token is malformed, forged, unknown, of the wrong kind, or names no existing user.
    #[error("token invalid")]
    TokenInvalid,
    /// The token was revoked (logout, rotation, logout everywhere, password change).
    #[error("token revoked")]
    TokenRevoked,
    /// The token is valid but its user has been deactivated.
    #[error("user is inactive")]
    InactiveUser,
    /// An operation named a user that does not exist (administrative calls only; login never says this).
    #[error("user not found")]
    UserNotFound,
    /// Registration with an email that already has an account.
    #[error("email already registered")]
    EmailTaken,
    /// The password was right, but the account has a second factor: `AuthService::login`
    /// issues no tokens for it. Use the second-factor flow (auth-mfa's `Mfa::login`), which
    /// answers with a challenge instead.
    #[error("a second factor is required")]
    MfaRequired,
    /// Too many failed attempts; try again after `retry_after`.
    #[error("too many attempts; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// How long until the lockout ends.
        retry_after: Duration,
    },
    /// The input was rejected: every problem, per field, with a message for the user.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// The configuration is incomplete or invalid; the message says what to set.
    #[error(transparent)]
    Configuration(#[from] ConfigError),
    /// The operation is not available with this setup; the message says why.
    #[error("not supported: {0}")]
    Unsupported(Cow<'static, str>),
    /// The service is at capacity for this work (the password hasher's queue is full, or this
    /// client holds its fair share of it): try again after `retry_after`. Nothing was done.
    #[error("overloaded; retry after {} s", retry_after.as_secs())]
    Overloaded {
        /// When to try again.
        retry_after: Duration,
    },
    /// The caller is known but may not do this: an action on an administrator by someone who
    /// is not an owner, the last holder of a role, a scope the caller does not hold, a lasting
    /// credential on an account whose address nobody has proven. The message says which.
    #[error("forbidden: {0}")]
    Forbidden(Cow<'static, str>),
    /// The caller is signed in, but this action (a new credential, a change to the ways in)
    /// needs a password or second-factor entry within the last `max_age`: sign in again.
    /// `AuthService::authenticate_fresh` answers it.
    #[error("a recent sign-in is required (within {} s)", max_age.as_secs())]
    ReauthenticationRequired {
        /// How recent the sign-in must be.
        max_age: Duration,
    },
    /// A store, hasher or other backend failed. The cause is in [`std::error::Error::source`].
    #[error("backend error: {0}")]
    Backend(#[source] BackendError),
}

impl Error {
    /// Whether this is a credential or token failure, which a client must not be able to tell
    /// apart from any other credential or token failure.
    ///
    /// ```
    /// use auth_core::Error;
    /// assert!(Error::TokenRevoked.is_auth_failure());
    /// assert!(!Error::EmailTaken.is_auth_failure());
    /// ```
    #[must_use]
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::TokenExpired
                | Self::TokenInvalid
                | Self::TokenRevoked
                | Self::InactiveUser
        )
    }

    /// Whether this is a [`BackendError`](crate::BackendError) that is a storage failure
    /// ([`BackendError::is_storage_failure`](crate::BackendError::is_storage_failure)): a full disk or a read-only database.
    ///
    /// ```
    /// use auth_core::Error;
    /// let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
    /// assert!(Error::backend("saving a user", full).is_storage_failure());
    /// assert!(!Error::EmailTaken.is_storage_failure());
    /// ```
    #[must_use]
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, Self::Backend(e) if e.is_storage_failure())
    }

    /// Wraps a backend failure with a short description of what was being done.
    ///
    /// ```
    /// use auth_core::Error;
    /// let io = std::io::Error::other("disk on fire");
    /// let err = Error::backend("loading a user", io);
    /// assert_eq!(err.to_string(), "backend error: loading a user");
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn backend(
        context: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend(BackendError::new(context, source))
    }

    /// A validation error on one field.
    ///
    /// ```
    /// use auth_core::Error;
    /// let err = Error::invalid("email", "invalid_email", "Enter a valid email address.");
    /// assert_eq!(err.to_string(), "validation failed: email: Enter a valid email address.");
    /// ```
    pub fn invalid(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Validation(ValidationErrors::single(field, code, message))
    }
}

/// A failure of a storage or computing backend, with its cause as [`std::error::Error::source`].
///
/// ```
/// use auth_core::BackendError;
/// let err = BackendError::new("saving a token", std::io::Error::other("gone"));
/// assert_eq!(err.to_string(), "saving a token");
/// ```
#[derive(Debug)]
pub struct BackendError {
    context: Cow<'static, str>,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl BackendError {
    /// Wraps `source`, which happened while doing `context`.
    ///
    /// ```
    /// # use auth_core::BackendError;
    /// let _ = BackendError::new("x", std::io::Error::other("y"));
    /// ```
    pub fn new(
        context: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let err = Self {
            context: context.into(),
            source: Box::new(source),
        };
        if err.is_storage_failure() {
            storage::note_failure(&err.context);
        }
        err
    }

    /// Whether storage refused a write for lack of space or permission: a full disk or
    /// quota, a read-only file or file system, a database in read-only mode (SQLite
    /// `SQLITE_FULL`/`SQLITE_READONLY`, PostgreSQL `53100`/`25006`, MariaDB `1021`/`1114`/`1290`,
    /// `ENOSPC`/`EROFS`/`EDQUOT`). Such a failure lasts until an operator acts, unlike a
    /// database that is briefly unreachable; HTTP answers it 503 `storage_unavailable`, and
    /// [`storage::recent_failure`] reports it to readiness probes.
    ///
    /// ```
    /// use auth_core::BackendError;
    /// let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
    /// assert!(BackendError::new("writing", full).is_storage_failure());
    /// let sqlite = std::io::Error::other("error returned from database: (code: 13) database or disk is full");
    /// assert!(BackendError::new("writing", sqlite).is_storage_failure());
    /// let gone = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert!(!BackendError::new("reading", gone).is_storage_failure());
    /// ```
    #[must_use]
    pub fn is_storage_failure(&self) -> bool {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(self.source.as_ref());
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && (matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::QuotaExceeded
                ) || matches!(io.raw_os_error(), Some(28 | 30 | 122)))
            {
                return true;
            }
            let text = e.to_string().to_ascii_lowercase();
            if STORAGE_FAILURES.iter().any(|m| text.contains(m)) {
                return true;
            }
            next = e.source();
        }
        false
    }

    /// A backend failure with only a description (for example a lock poisoned by a panic).
    ///
    /// ```
    /// # use auth_core::BackendError;
    /// assert_eq!(BackendError::message("store unavailable").to_string(), "store unavailable");
    /// ```
    pub fn message(context: impl Into<Cow<'static, str>>) -> Self {
        let context = context.into();
        Self {
            source: Box::new(Plain(context.to_string())),
            context,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

#[derive(Debug)]
struct Plain(String);

impl fmt::Display for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Plain {}

/// A configuration that cannot work. Every message says what to set.
///
/// ```
/// use auth_core::ConfigError;
/// let err = ConfigError::Missing { var: "AUTH_SIGNING_SECRET" };
/// assert!(err.to_string().contains("AUTH_SIGNING_SECRET"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("configuration error: set the environment variable {var}")]
    Missing {
        /// The variable to set.
        var: &'static str,
    },
    /// A setting has a value that cannot work.
    #[error("configuration error: {name} {reason}")]
    Invalid {
        /// The setting (or environment variable).
        name: Cow<'static, str>,
        /// What is wrong and what is expected.
        reason: Cow<'static, str>,
    },
    /// A secret is too short to be safe.
    #[error(
        "configuration error: {name} must be at least {min} bytes; generate one with 32+ random bytes"
    )]
    WeakSecret {
        /// Which secret.
        name: &'static str,
        /// The minimum length in bytes.
        min: usize,
    },
}

impl ConfigError {
    /// An invalid setting.
    ///
    /// ```
    /// use auth_core::ConfigError;
    /// let err = ConfigError::invalid("access_token_lifetime", "must be positive");
    /// assert_eq!(err.to_string(), "configuration error: access_token_lifetime must be positive");
    /// ```
    pub fn invalid(
        name: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Invalid {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// One rejected field: which, a stable machine code, and a message for people.
///
/// ```
/// use auth_core::FieldError;
/// let e = FieldError::new("password", "password_too_short", "This password is too short.");
/// assert_eq!(e.code, "password_too_short");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct FieldError {
    /// The field name, as in the request body.
    pub field: String,
    /// A stable code to branch on, such as `password_too_common`.
    pub code: String,
    /// A sentence for the user.
    pub message: String,
}

impl FieldError {
    /// A field error.
    ///
    /// ```
    /// # use auth_core::FieldError;
    /// let e = FieldError::new("email", "required", "This field is required.");
    /// assert_eq!(e.field, "email");
    /// ```
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one input, reported together.
///
/// ```
/// use auth_core::{FieldError, ValidationErrors};
/// let mut errors = ValidationErrors::default();
/// errors.push(FieldError::new("password", "password_too_short", "Too short."));
/// errors.push(FieldError::new("password", "password_entirely_numeric", "Numeric."));
/// assert_eq!(errors.len(), 2);
/// assert_eq!(errors.to_string(), "password: Too short.; password: Numeric.");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// Errors holding one field error.
    ///
    /// ```
    /// # use auth_core::ValidationErrors;
    /// assert_eq!(ValidationErrors::single("a", "b", "c").len(), 1);
    /// ```
    pub fn single(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            errors: vec![FieldError::new(field, code, message)],
        }
    }

    /// Adds one error.
    ///
    /// ```
    /// # use auth_core::{FieldError, ValidationErrors};
    /// let mut e = ValidationErrors::default();
    /// e.push(FieldError::new("a", "b", "c"));
    /// assert!(!e.is_empty());
    /// ```
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// The errors, in the order found.
    ///
    /// ```
    /// # use auth_core::ValidationErrors;
    /// assert_eq!(ValidationErrors::single("a", "b", "c").errors()[0].field, "a");
    /// ```
    #[must_use]
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// How many errors.
    ///
    /// ```
    /// # use auth_core::ValidationErrors;
    /// assert_eq!(ValidationErrors::default().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are none.
    ///
    /// ```
    /// # use auth_core::ValidationErrors;
    /// assert!(ValidationErrors::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(())` when empty, otherwise [`Error::Validation`](crate::Error::Validation).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) holding these errors when there is at least one.
    ///
    /// ```
    /// # use auth_core::ValidationErrors;
    /// assert!(ValidationErrors::default().into_result().is_ok());
    /// ```
    pub fn into_result(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self))
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// How databases word a write refused for space or permission (their codes are not reachable
/// from here without their drivers; these messages are what the drivers print with them).
const STORAGE_FAILURES: &[&str] = &[
    // SQLite: SQLITE_FULL, SQLITE_READONLY (and its extended codes)
    "database or disk is full",
    "attempt to write a readonly database",
    // PostgreSQL 53100 (disk_full) and the file-extension failure behind it; 25006
    "no space left on device",
    "could not extend file",
    "read-only transaction",
    // MariaDB / MySQL 1021, 1114, 1290 (--read-only), errno 28 from the engine
    "disk full",
    "' is full",
    "--read-only option",
    "got error 28 from storage engine",
    "disk quota exceeded",
];

/// A process-wide record of the last storage failure ([`BackendError::is_storage_failure`](crate::BackendError::is_storage_failure)),
/// for readiness probes: a full disk or a read-only database makes every write fail until an
/// operator acts, while reads (and a ping) keep working.
pub mod storage {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    static LAST: Mutex<Option<(Instant, String)>> = Mutex::new(None);

    pub(crate) fn note_failure(context: &str) {
        if let Ok(mut last) = LAST.lock() {
            *last = Some((Instant::now(), context.to_owned()));
        }
    }

    /// The last storage failure if it happened within `within`: what was being done, and how
    /// long ago. Once none has happened for `within`, the record is gone (the condition has
    /// cleared, or nothing tried to write since).
    ///
    /// ```
    /// use std::time::Duration;
    /// use auth_core::{BackendError, storage};
    /// let _ = BackendError::new("saving a user", std::io::Error::from(std::io::ErrorKind::StorageFull));
    /// let (what, ago) = storage::recent_failure(Duration::from_secs(15)).unwrap();
    /// assert_eq!(what, "saving a user");
    /// assert!(ago < Duration::from_secs(15));
    /// ```
    #[must_use]
    pub fn recent_failure(within: Duration) -> Option<(String, Duration)> {
        let mut last = LAST.lock().ok()?;
        match last.as_ref() {
            Some((at, what)) if at.elapsed() < within => Some((what.clone(), at.elapsed())),
            Some(_) => {
                *last = None;
                None
            }
            None => None,
        }
    }
}
