//! Short-lived state that any instance of a service must be able to pick up: onboarding
//! sessions (a sign-up flow in progress), second-factor login challenges (between the
//! password and the code) and passkey ceremonies (between the options and the authenticator's
//! answer). The records and store traits live here so that storage crates (SQL in
//! `auth-onboarding` / `auth-mfa` / `auth-webauthn`, Redis in `auth-redis`) implement them
//! without depending on each other; `auth-onboarding` and `auth-mfa` re-export them.

use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::{Result, UserId, async_trait};

/// One onboarding session as stored. The token is kept only as its SHA-256.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Public id (events, logs).
    pub id: String,
    /// SHA-256 (hex) of the session token.
    pub token_hash: String,
    /// Normalized email the flow started with.
    pub email: String,
    /// The user, once a step created or found it.
    pub user_id: Option<UserId>,
    /// Index of the current step in the pipeline (the pipeline's length when completed).
    pub step_index: i32,
    /// Step-private state (codes' hashes, attempts...), by step name.
    pub data: Map<String, Value>,
    /// Completed.
    pub completed: bool,
    /// Invalidated by a newer start for the same email.
    pub invalidated: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// While a request works on the session: others get a conflict until then.
    pub lease_until: Option<OffsetDateTime>,
    /// Optimistic-concurrency version: every save must name the version it read.
    pub version: i64,
}

impl SessionRecord {
    /// A fresh session at step 0.
    ///
    /// ```
    /// let r = auth_core::ephemeral::SessionRecord::new("id".into(), "h".into(), "a@b.c".into(),
    ///     time::OffsetDateTime::UNIX_EPOCH, time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!((r.step_index, r.version), (0, 0));
    /// ```
    #[must_use]
    pub fn new(
        id: String,
        token_hash: String,
        email: String,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            token_hash,
            email,
            user_id: None,
            step_index: 0,
            data: Map::new(),
            completed: false,
            invalidated: false,
            created_at,
            expires_at,
            lease_until: None,
            version: 0,
        }
    }
}

/// Storage for onboarding sessions. `save` is a compare-and-set on `version`, so two
/// concurrent `advance` calls on one session cannot both apply: the second gets a conflict.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    async fn create(&self, record: &SessionRecord) -> Result<()>;
    /// The session whose token hashes to `token_hash`.
    async fn find(&self, token_hash: &str) -> Result<Option<SessionRecord>>;
    /// Writes `record` if the stored version is still `record.version - 1`; false otherwise.
    async fn save(&self, record: &SessionRecord) -> Result<bool>;
    /// Invalidates the email's other open sessions; returns how many.
    async fn invalidate_email(&self, email: &str, except_id: &str) -> Result<u64>;
    /// Deletes sessions expired at `now`; returns how many.
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64>;
}

#[async_trait]
impl<T: SessionStore + ?Sized> SessionStore for Arc<T> {
    async fn create(&self, record: &SessionRecord) -> Result<()> {
        (**self).create(record).await
    }
    async fn find(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        (**self).find(token_hash).await
    }
    async fn save(&self, record: &SessionRecord) -> Result<bool> {
        (**self).save(record).await
    }
    async fn invalidate_email(&self, email: &str, except_id: &str) -> Result<u64> {
        (**self).invalidate_email(email, except_id).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        (**self).cleanup_expired(now).await
    }
}

/// Storage for short-lived single-use challenges: the two-step login's (auth-mfa's `Mfa` keeps
/// them in its store, or in the one given to `Mfa::with_challenge_store`, Redis's
/// `auth_redis::RedisChallengeStore` say) and the orchestrator's single-use link records. Each
/// method that decides something under concurrency is one atomic step, so concurrent guesses
/// share `max_attempts` and exactly one caller consumes.
#[async_trait]
pub trait ChallengeStore: Send + Sync + 'static {
    /// Stores a login challenge.
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()>;
    /// Counts one attempt on a live challenge and returns its user, or `None` when the
    /// challenge is unknown, expired, used, or has had `max_attempts` attempts already.
    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>>;
    /// Ends a challenge; true for the one caller that ended it.
    async fn consume(&self, token_hash: &str) -> Result<bool>;
    /// Deletes challenges expired at `now`; returns how many.
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64>;
}

#[async_trait]
impl<T: ChallengeStore + ?Sized> ChallengeStore for Arc<T> {
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()> {
        (**self).create(challenge).await
    }
    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        (**self).attempt(token_hash, now, max_attempts).await
    }
    async fn consume(&self, token_hash: &str) -> Result<bool> {
        (**self).consume(token_hash).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        (**self).cleanup_expired(now).await
    }
}

/// A pending second login step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChallengeRecord {
    /// SHA-256 (hex) of the challenge token; the token itself is never stored.
    pub token_hash: String,
    /// Whose login it is.
    pub user_id: UserId,
    /// It dies then.
    pub expires_at: OffsetDateTime,
}

impl ChallengeRecord {
    /// A challenge row.
    ///
    /// ```
    /// let c = auth_core::ephemeral::ChallengeRecord::new("ab".into(), auth_core::UserId::new("1"), time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!(c.token_hash, "ab");
    /// ```
    #[must_use]
    pub fn new(token_hash: String, user_id: UserId, expires_at: OffsetDateTime) -> Self {
        Self {
            token_hash,
            user_id,
            expires_at,
        }
    }
}

/// One passkey ceremony in progress: the relying party's state between the options it sent
/// and the authenticator's answer (webauthn-rs's registration or authentication state, as
/// JSON). Single use: [`CeremonyStore::take`] hands it to one caller, once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CeremonyRecord {
    /// SHA-256 (hex) of the ceremony's key; the key itself is never stored.
    pub key_hash: String,
    /// The account the ceremony is for (registration, second factor), if known.
    pub user_id: Option<UserId>,
    /// The relying party's state, opaque to the store.
    pub state: String,
    /// It dies then.
    pub expires_at: OffsetDateTime,
}

impl CeremonyRecord {
    /// A ceremony row.
    ///
    /// ```
    /// let c = auth_core::ephemeral::CeremonyRecord::new("ab".into(), None, "{}".into(), time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(c.user_id.is_none());
    /// ```
    #[must_use]
    pub fn new(
        key_hash: String,
        user_id: Option<UserId>,
        state: String,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            key_hash,
            user_id,
            state,
            expires_at,
        }
    }
}

/// Where passkey ceremonies wait for their answer, shared by every instance: memory
/// (`MemoryCeremonyStore`), SQL (`auth_webauthn::db::DbCeremonyStore`), Redis
/// (`auth_redis::RedisCeremonyStore`). `take` is atomic: of N concurrent callers with the same
/// key, one gets the record, so an answer is checked against a challenge once.
///
/// ```
/// use auth_service::ephemeral::{CeremonyRecord, CeremonyStore, MemoryCeremonyStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryCeremonyStore::new();
/// let now = time::OffsetDateTime::now_utc();
/// store.put(&CeremonyRecord::new("h".into(), None, "{}".into(), now + time::Duration::minutes(5))).await?;
/// assert!(store.take("h", now).await?.is_some());
/// assert!(store.take("h", now).await?.is_none()); // once
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait CeremonyStore: Send + Sync + 'static {
    /// Stores a ceremony, replacing one with the same key.
    async fn put(&self, record: &CeremonyRecord) -> Result<()>;
    /// Removes and returns the live ceremony with this key hash: `None` when unknown, already
    /// taken or expired at `now`.
    async fn take(&self, key_hash: &str, now: OffsetDateTime) -> Result<Option<CeremonyRecord>>;
    /// Deletes ceremonies expired at `now`; returns how many.
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64>;
}

#[async_trait]
impl<T: CeremonyStore + ?Sized> CeremonyStore for Arc<T> {
    async fn put(&self, record: &CeremonyRecord) -> Result<()> {
        (**self).put(record).await
    }
    async fn take(&self, key_hash: &str, now: OffsetDateTime) -> Result<Option<CeremonyRecord>> {
        (**self).take(key_hash, now).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        (**self).cleanup_expired(now).await
    }
}
