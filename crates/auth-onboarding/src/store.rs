//! Onboarding sessions: the record, the `SessionStore` trait and its memory implementation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use auth_core::{Result, UserId, async_trait};
use serde_json::{Map, Value};
use time::OffsetDateTime;

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
    /// let r = auth_onboarding::SessionRecord::new("id".into(), "h".into(), "a@b.c".into(),
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

/// Sessions in process memory. Clones share them.
///
/// ```
/// # use auth_onboarding::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemorySessionStore::new();
/// assert!(store.find("nope").await?.is_none());
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MemorySessionStore {
    sessions: Arc<Mutex<HashMap<String, SessionRecord>>>,
}

impl std::fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySessionStore").finish_non_exhaustive()
    }
}

impl MemorySessionStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SessionRecord>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, record: &SessionRecord) -> Result<()> {
        self.lock()
            .insert(record.token_hash.clone(), record.clone());
        Ok(())
    }

    async fn find(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        Ok(self.lock().get(token_hash).cloned())
    }

    async fn save(&self, record: &SessionRecord) -> Result<bool> {
        let mut map = self.lock();
        match map.get_mut(&record.token_hash) {
            Some(stored) if stored.version == record.version - 1 => {
                *stored = record.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn invalidate_email(&self, email: &str, except_id: &str) -> Result<u64> {
        let mut n = 0;
        for r in self.lock().values_mut() {
            if r.email == email && r.id != except_id && !r.completed && !r.invalidated {
                r.invalidated = true;
                r.version += 1;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, r| r.expires_at > now);
        Ok((before - map.len()) as u64)
    }
}
