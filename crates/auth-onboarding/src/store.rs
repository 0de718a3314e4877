//! Onboarding sessions in memory. The record and the `SessionStore` trait live in
//! `auth_service::ephemeral` (so stores such as auth-redis implement them without this crate)
//! and are re-exported here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub use auth_service::ephemeral::{SessionRecord, SessionStore};
use auth_service::{Result, async_trait};
use time::OffsetDateTime;

/// Sessions in process memory. Clones share them.
///
/// ```
/// # use auth_onboarding::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemorySessionStore::new();
/// assert!(store.find("nope").await?.is_none());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
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
