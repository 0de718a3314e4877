use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

use crate::*;

/// An [`IdentityStore`] in process memory.
///
/// ```
/// let _ = auth_service::MemoryIdentityStore::new();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryIdentityStore {
    /// By `(provider, subject)`.
    rows: Arc<Mutex<HashMap<(String, String), LinkedIdentity>>>,
}

impl MemoryIdentityStore {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_service::MemoryIdentityStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<(String, String), LinkedIdentity>>> {
        self.rows
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("identity store lock poisoned")))
    }
}

#[async_trait]
impl IdentityStore for MemoryIdentityStore {
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<LinkedIdentity>> {
        Ok(self
            .lock()?
            .get(&(provider.to_owned(), subject.to_owned()))
            .cloned())
    }

    async fn insert(&self, identity: &LinkedIdentity) -> Result<bool> {
        let mut rows = self.lock()?;
        let key = (identity.provider.clone(), identity.subject.clone());
        if rows.contains_key(&key) {
            return Ok(false);
        }
        rows.insert(key, identity.clone());
        Ok(true)
    }

    async fn by_user(&self, user: &UserId) -> Result<Vec<LinkedIdentity>> {
        let mut found: Vec<LinkedIdentity> = self
            .lock()?
            .values()
            .filter(|i| &i.user_id == user)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn touch(&self, id: &str, at: OffsetDateTime) -> Result<()> {
        if let Some(row) = self.lock()?.values_mut().find(|i| i.id == id) {
            row.last_used_at = Some(at);
        }
        Ok(())
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        let mut rows = self.lock()?;
        let before = rows.len();
        rows.retain(|_, i| !(i.id == id && &i.user_id == user));
        Ok(rows.len() < before)
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        let mut rows = self.lock()?;
        let before = rows.len();
        rows.retain(|_, i| &i.user_id != user);
        Ok((before - rows.len()) as u64)
    }
}
