//! Identity: who a user is and where users are stored.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// The longest email accepted, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A user's identifier: an opaque string, and what goes into a token's `sub` claim.
///
/// Integer, UUID and any other keys are all carried as their string form.
///
/// ```
/// use auth_core::UserId;
/// let id = UserId::new("42");
/// assert_eq!(id.as_str(), "42");
/// assert_eq!(id.to_string(), "42");
/// assert_eq!(UserId::from(42_i64), id);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Wraps an identifier.
    ///
    /// ```
    /// # use auth_core::UserId;
    /// assert_eq!(UserId::new(String::from("u1")).as_str(), "u1");
    /// ```
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    ///
    /// ```
    /// # use auth_core::UserId;
    /// assert_eq!(UserId::new("7").as_str(), "7");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as the integer primary key of `auth_users`, for the SQL stores (which all keep
    /// integer ids).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Validation`] (`invalid_user_id`) for an id that is not an integer.
    ///
    /// ```
    /// # use auth_core::UserId;
    /// assert_eq!(UserId::new("42").to_row_id()?, 42);
    /// assert!(UserId::new("ada").to_row_id().is_err());
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    pub fn to_row_id(&self) -> crate::Result<i64> {
        self.0.parse().map_err(|_| {
            crate::Error::invalid(
                "user_id",
                "invalid_user_id",
                "the SQL stores keep integer user ids (auth_users.id)",
            )
        })
    }

    /// Consumes the id, returning the string.
    ///
    /// ```
    /// # use auth_core::UserId;
    /// assert_eq!(UserId::new("7").into_string(), "7");
    /// ```
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for UserId {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for UserId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<i64> for UserId {
    fn from(value: i64) -> Self {
        Self(value.to_string())
    }
}

/// What the library needs to know about a user. Applications may use their own type.
///
/// ```
/// use auth_core::{AuthUser, User, UserId};
/// let user = User::new(UserId::new("1"), "alice@example.com");
/// assert_eq!(user.email(), "alice@example.com");
/// assert!(user.is_active());
/// assert!(!user.is_verified());
/// assert!(user.password_hash().is_none());
/// ```
pub trait AuthUser: Clone + Send + Sync + fmt::Debug + 'static {
    /// The user's identifier.
    fn id(&self) -> &UserId;
    /// The normalized email address (see `normalize_email`).
    fn email(&self) -> &str;
    /// The encoded password hash, if a password was ever set.
    fn password_hash(&self) -> Option<&str>;
    /// Whether the account may log in and use tokens.
    fn is_active(&self) -> bool;
    /// Whether the email address has been confirmed.
    fn is_verified(&self) -> bool;
    /// The last successful login.
    fn last_login(&self) -> Option<OffsetDateTime>;
}

/// The user record this workspace's own stores keep.
///
/// Its `Debug` never prints the password hash.
///
/// ```
/// use auth_core::{User, UserId};
/// let user = User::new(UserId::new("1"), "bob@example.com").with_password_hash("hash");
/// assert!(!format!("{user:?}").contains("hash\""));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// Identifier.
    pub id: UserId,
    /// Normalized email, unique.
    pub email: String,
    /// Encoded password hash; `None` before a password is set.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    /// May log in.
    pub is_active: bool,
    /// Email confirmed.
    pub is_verified: bool,
    /// Last successful login.
    pub last_login: Option<OffsetDateTime>,
    /// When the account was created.
    pub joined_at: Option<OffsetDateTime>,
    /// Profile fields collected by the application (onboarding, settings), as a JSON object.
    pub profile: serde_json::Map<String, serde_json::Value>,
}

impl User {
    /// An active, unverified user with no password.
    ///
    /// ```
    /// # use auth_core::{User, UserId};
    /// assert!(User::new(UserId::new("1"), "a@b.c").is_active);
    /// ```
    #[must_use]
    pub fn new(id: UserId, email: impl Into<String>) -> Self {
        Self {
            id,
            email: email.into(),
            password_hash: None,
            is_active: true,
            is_verified: false,
            last_login: None,
            joined_at: None,
            profile: serde_json::Map::new(),
        }
    }

    /// Sets the password hash.
    ///
    /// ```
    /// # use auth_core::{AuthUser, User, UserId};
    /// let u = User::new(UserId::new("1"), "a@b.c").with_password_hash("h");
    /// assert_eq!(u.password_hash(), Some("h"));
    /// ```
    #[must_use]
    pub fn with_password_hash(mut self, hash: impl Into<String>) -> Self {
        self.password_hash = Some(hash.into());
        self
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[REDACTED]"),
            )
            .field("is_active", &self.is_active)
            .field("is_verified", &self.is_verified)
            .field("last_login", &self.last_login)
            .field("joined_at", &self.joined_at)
            .finish_non_exhaustive()
    }
}

impl AuthUser for User {
    fn id(&self) -> &UserId {
        &self.id
    }
    fn email(&self) -> &str {
        &self.email
    }
    fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }
    fn is_active(&self) -> bool {
        self.is_active
    }
    fn is_verified(&self) -> bool {
        self.is_verified
    }
    fn last_login(&self) -> Option<OffsetDateTime> {
        self.last_login
    }
}

/// What [`UserStore::create`] needs. The email must already be normalized.
///
/// ```
/// use auth_core::NewUser;
/// let new = NewUser::new("carol@example.com").with_password_hash("h").verified(true);
/// assert!(new.is_active);
/// assert!(new.is_verified);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUser {
    /// Normalized email.
    pub email: String,
    /// Encoded password hash, or `None` for an account without a password yet.
    pub password_hash: Option<String>,
    /// May log in (default true).
    pub is_active: bool,
    /// Email confirmed (default false).
    pub is_verified: bool,
    /// Profile fields.
    pub profile: serde_json::Map<String, serde_json::Value>,
}

impl NewUser {
    /// An active, unverified user with this (normalized) email.
    ///
    /// ```
    /// # use auth_core::NewUser;
    /// assert!(NewUser::new("a@b.c").password_hash.is_none());
    /// ```
    #[must_use]
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            password_hash: None,
            is_active: true,
            is_verified: false,
            profile: serde_json::Map::new(),
        }
    }

    /// Sets the encoded password hash.
    ///
    /// ```
    /// # use auth_core::NewUser;
    /// assert_eq!(NewUser::new("a@b.c").with_password_hash("h").password_hash.as_deref(), Some("h"));
    /// ```
    #[must_use]
    pub fn with_password_hash(mut self, hash: impl Into<String>) -> Self {
        self.password_hash = Some(hash.into());
        self
    }

    /// Sets whether the account is active.
    ///
    /// ```
    /// # use auth_core::NewUser;
    /// assert!(!NewUser::new("a@b.c").active(false).is_active);
    /// ```
    #[must_use]
    pub fn active(mut self, active: bool) -> Self {
        self.is_active = active;
        self
    }

    /// Sets whether the email is already verified.
    ///
    /// ```
    /// # use auth_core::NewUser;
    /// assert!(NewUser::new("a@b.c").verified(true).is_verified);
    /// ```
    #[must_use]
    pub fn verified(mut self, verified: bool) -> Self {
        self.is_verified = verified;
        self
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[REDACTED]"),
            )
            .field("is_active", &self.is_active)
            .field("is_verified", &self.is_verified)
            .finish_non_exhaustive()
    }
}

/// Where users live. Every implementation runs `auth_testkit::conformance::user_store`.
///
/// Emails given to it are already normalized by the caller (`normalize_email`); stores
/// compare them exactly, which makes lookups case-insensitive end to end.
///
/// ```
/// use auth_service::{MemoryUserStore, NewUser, UserStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryUserStore::new();
/// let user = store.create(NewUser::new("dan@example.com")).await?;
/// assert_eq!(store.find_by_email("dan@example.com").await?.unwrap().id, user.id);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// The user type this store returns.
    type User: AuthUser;

    /// Finds a user by normalized email.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn find_by_email(&self, email: &str) -> Result<Option<Self::User>>;

    /// Finds a user by id.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn find_by_id(&self, id: &UserId) -> Result<Option<Self::User>>;

    /// Creates a user; the email must be unique, atomically (two concurrent creates of one email
    /// give one user and one [`Error::EmailTaken`](crate::Error::EmailTaken)).
    ///
    /// # Errors
    ///
    /// [`Error::EmailTaken`](crate::Error::EmailTaken) when the email exists; [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn create(&self, user: NewUser) -> Result<Self::User>;

    /// Replaces the password hash.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`](crate::Error::UserNotFound) for an unknown id; [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<()>;

    /// Replaces the password hash only if it is still `expected` (`None`: no hash set), atomically;
    /// returns whether it was replaced. One-time flows (password reset) and hash upgrades use it,
    /// so two concurrent confirmations of one reset token cannot both succeed, and an upgrade
    /// never overwrites a password changed in the meantime.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`](crate::Error::UserNotFound) for an unknown id; [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn replace_password_hash(
        &self,
        id: &UserId,
        expected: Option<&str>,
        new_hash: &str,
    ) -> Result<bool>;

    /// Records a successful login at `at`.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`](crate::Error::UserNotFound) for an unknown id; [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn record_login(&self, id: &UserId, at: OffsetDateTime) -> Result<()>;

    /// Activates or deactivates the account.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`](crate::Error::UserNotFound) for an unknown id; [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn set_active(&self, id: &UserId, active: bool) -> Result<()>;

    /// Marks the email verified or not.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`](crate::Error::UserNotFound) for an unknown id; [`Error::Backend`](crate::Error::Backend) when the store fails.
    async fn set_verified(&self, id: &UserId, verified: bool) -> Result<()>;

    /// Merges `values` into the user's profile (keys given replace, others stay). Stores
    /// without profiles answer [`Error::Unsupported`](crate::Error::Unsupported).
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`](crate::Error::UserNotFound); [`Error::Unsupported`](crate::Error::Unsupported); [`Error::Backend`](crate::Error::Backend).
    async fn update_profile(
        &self,
        id: &UserId,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let _ = (id, values);
        Err(Error::Unsupported(
            "this user store keeps no profile fields".into(),
        ))
    }

    /// One page of users matching `query`, in id order (for administration).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) (the default) for a store that cannot list; [`Error::Backend`](crate::Error::Backend).
    async fn list(&self, query: &UserQuery) -> Result<Vec<Self::User>> {
        let _ = query;
        Err(Error::Unsupported(
            "this user store cannot list users".into(),
        ))
    }

    /// Deletes a user; `false` when there was none. The store's own rows that reference the
    /// user (second factors, API keys) go with it where the schema cascades; sessions are
    /// ended by the caller first (`AuthService::delete_user`).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) (the default); [`Error::Backend`](crate::Error::Backend).
    async fn delete(&self, id: &UserId) -> Result<bool> {
        let _ = id;
        Err(Error::Unsupported(
            "this user store cannot delete users".into(),
        ))
    }

    /// Replaces the email of `id` with `new_email` (normalized) if it is still `expected`:
    /// a compare-and-set, so a confirmation link made for one address cannot apply after the
    /// address changed. `false` when the current email is not `expected`.
    ///
    /// # Errors
    ///
    /// [`Error::EmailTaken`](crate::Error::EmailTaken) when another account has `new_email` (the database's unique
    /// constraint decides, so two confirmations racing for one address cannot both win);
    /// [`Error::UserNotFound`](crate::Error::UserNotFound); [`Error::Unsupported`](crate::Error::Unsupported) (the default); [`Error::Backend`](crate::Error::Backend).
    async fn replace_email(&self, id: &UserId, expected: &str, new_email: &str) -> Result<bool> {
        let _ = (id, expected, new_email);
        Err(Error::Unsupported(
            "this user store cannot change emails".into(),
        ))
    }
}

/// Which users [`UserStore::list`] returns: filters and a page.
///
/// ```
/// use auth_core::UserQuery;
/// let q = UserQuery::new().email_prefix("ali").active(true).page(2, 20);
/// assert_eq!(q.offset, 20);
/// assert_eq!(q.limit, 20);
/// assert!(q.matches_email("alice@example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserQuery {
    /// Only emails starting with this (already lower-case; compared exactly).
    pub email_prefix: Option<String>,
    /// Only active (`true`) or inactive (`false`) accounts.
    pub active: Option<bool>,
    /// Only verified (`true`) or unverified (`false`) accounts.
    pub verified: Option<bool>,
    /// How many matching users to skip.
    pub offset: u64,
    /// How many to return (at most [`UserQuery::MAX_LIMIT`]).
    pub limit: u64,
}

impl Default for UserQuery {
    fn default() -> Self {
        Self {
            email_prefix: None,
            active: None,
            verified: None,
            offset: 0,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl UserQuery {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: u64 = 50;
    /// The largest page.
    pub const MAX_LIMIT: u64 = 200;

    /// Every user, first page.
    ///
    /// ```
    /// assert_eq!(auth_core::UserQuery::new().limit, 50);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Only emails starting with `prefix` (lower-cased and trimmed here; empty means all).
    ///
    /// ```
    /// assert_eq!(auth_core::UserQuery::new().email_prefix(" Bo").email_prefix.as_deref(), Some("bo"));
    /// ```
    #[must_use]
    pub fn email_prefix(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim().to_lowercase();
        self.email_prefix = (!prefix.is_empty()).then_some(prefix);
        self
    }

    /// Only active or inactive accounts.
    ///
    /// ```
    /// assert_eq!(auth_core::UserQuery::new().active(false).active, Some(false));
    /// ```
    #[must_use]
    pub fn active(mut self, active: bool) -> Self {
        self.active = Some(active);
        self
    }

    /// Only verified or unverified accounts.
    ///
    /// ```
    /// assert_eq!(auth_core::UserQuery::new().verified(true).verified, Some(true));
    /// ```
    #[must_use]
    pub fn verified(mut self, verified: bool) -> Self {
        self.verified = Some(verified);
        self
    }

    /// Page `page` (from 1) of `per_page` users (clamped to 1..=[`Self::MAX_LIMIT`]).
    ///
    /// ```
    /// let q = auth_core::UserQuery::new().page(3, 1000);
    /// assert_eq!((q.offset, q.limit), (400, 200));
    /// ```
    #[must_use]
    pub fn page(mut self, page: u64, per_page: u64) -> Self {
        self.limit = per_page.clamp(1, Self::MAX_LIMIT);
        self.offset = page.max(1).saturating_sub(1).saturating_mul(self.limit);
        self
    }

    /// Whether `email` passes the prefix filter.
    ///
    /// ```
    /// assert!(!auth_core::UserQuery::new().email_prefix("x").matches_email("a@b.c"));
    /// ```
    #[must_use]
    pub fn matches_email(&self, email: &str) -> bool {
        self.email_prefix
            .as_deref()
            .is_none_or(|p| email.starts_with(p))
    }

    /// Whether `user` passes every filter (for stores that filter in memory).
    ///
    /// ```
    /// use auth_core::{User, UserId, UserQuery};
    /// let user = User::new(UserId::new("1"), "a@b.c");
    /// assert!(UserQuery::new().active(true).matches(&user));
    /// assert!(!UserQuery::new().verified(true).matches(&user));
    /// ```
    #[must_use]
    pub fn matches(&self, user: &impl AuthUser) -> bool {
        self.matches_email(user.email())
            && self.active.is_none_or(|a| a == user.is_active())
            && self.verified.is_none_or(|v| v == user.is_verified())
    }
}
