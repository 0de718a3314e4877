//! Identities at other providers (OpenID Connect, OAuth 2.0) linked to local accounts: what a
//! provider vouched for ([`ProviderIdentity`]), the link as stored ([`LinkedIdentity`]), and
//! where links live ([`IdentityStore`], `MemoryIdentityStore`; SQL in auth-oauth).

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::{Result, UserId, async_trait};

/// What a provider vouched for after a successful sign-in there: its name for the provider
/// (`google`, `github`…), the stable subject, and the email with whether the provider
/// verified it.
///
/// ```
/// let id = auth_core::ProviderIdentity::new("google", "1234567890").with_email("ada@example.com", true);
/// assert!(id.email_verified);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderIdentity {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's stable id of the user (`sub`).
    pub subject: String,
    /// The email the provider gave, if any.
    pub email: Option<String>,
    /// Whether the provider says it verified that email.
    pub email_verified: bool,
}

impl ProviderIdentity {
    /// An identity without email.
    ///
    /// ```
    /// let id = auth_core::ProviderIdentity::new("github", "42");
    /// assert!(id.email.is_none());
    /// ```
    #[must_use]
    pub fn new(provider: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            subject: subject.into(),
            email: None,
            email_verified: false,
        }
    }

    /// With an email and whether the provider verified it.
    ///
    /// ```
    /// let id = auth_core::ProviderIdentity::new("github", "42").with_email("a@b.c", false);
    /// assert_eq!(id.email.as_deref(), Some("a@b.c"));
    /// ```
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }
}

/// A provider identity linked to a local account.
///
/// ```
/// let l = auth_core::LinkedIdentity::new("id_1".into(), auth_core::UserId::new("7"), "google".into(), "s".into(), None, time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(l.provider, "google");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LinkedIdentity {
    /// Public id.
    pub id: String,
    /// The local account.
    #[serde(skip)]
    pub user_id: UserId,
    /// The provider's configured name.
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// The email the provider gave when the link was made.
    pub email: Option<String>,
    /// When it was linked.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl LinkedIdentity {
    /// A link never used.
    ///
    /// ```
    /// let _ = auth_core::LinkedIdentity::new("i".into(), auth_core::UserId::new("1"), "p".into(), "s".into(), None, time::OffsetDateTime::UNIX_EPOCH);
    /// ```
    #[must_use]
    pub fn new(
        id: String,
        user_id: UserId,
        provider: String,
        subject: String,
        email: Option<String>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            user_id,
            provider,
            subject,
            email,
            created_at,
            last_used_at: None,
        }
    }
}

/// Where links live. `(provider, subject)` is unique: `insert` answers `false` when that
/// identity is linked already (to anyone).
///
/// ```
/// use auth_service::{IdentityStore, LinkedIdentity, MemoryIdentityStore, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryIdentityStore::new();
/// let link = LinkedIdentity::new("i1".into(), UserId::new("1"), "google".into(), "s".into(), None, time::OffsetDateTime::UNIX_EPOCH);
/// assert!(store.insert(&link).await?);
/// assert!(!store.insert(&link).await?);
/// assert!(store.find("google", "s").await?.is_some());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// The link of `(provider, subject)`.
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<LinkedIdentity>>;
    /// Stores a new link; `false` when `(provider, subject)` is linked already.
    async fn insert(&self, identity: &LinkedIdentity) -> Result<bool>;
    /// The account's links, oldest first.
    async fn by_user(&self, user: &UserId) -> Result<Vec<LinkedIdentity>>;
    /// Records a sign-in.
    async fn touch(&self, id: &str, at: OffsetDateTime) -> Result<()>;
    /// Deletes one of `user`'s links; `false` when it is not theirs.
    async fn delete(&self, user: &UserId, id: &str) -> Result<bool>;
    /// Deletes every link of `user`; returns how many.
    async fn delete_user(&self, user: &UserId) -> Result<u64>;
}

#[async_trait]
impl<T: IdentityStore + ?Sized> IdentityStore for Arc<T> {
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<LinkedIdentity>> {
        (**self).find(provider, subject).await
    }
    async fn insert(&self, identity: &LinkedIdentity) -> Result<bool> {
        (**self).insert(identity).await
    }
    async fn by_user(&self, user: &UserId) -> Result<Vec<LinkedIdentity>> {
        (**self).by_user(user).await
    }
    async fn touch(&self, id: &str, at: OffsetDateTime) -> Result<()> {
        (**self).touch(id, at).await
    }
    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        (**self).delete(user, id).await
    }
    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        (**self).delete_user(user).await
    }
}
