use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

use crate::*;

#[derive(Default)]
struct MemoryState {
    keys: HashMap<String, ApiKeyRecord>,
    /// hash -> (key id, graced until)
    secrets: HashMap<String, (String, Option<OffsetDateTime>)>,
    windows: HashMap<(String, i64), u32>,
    services: HashMap<String, OffsetDateTime>,
}

/// API keys in process memory: for tests and single-process services. Clones share them.
///
/// ```
/// use auth_service::{ApiKeyOwner, ApiKeyRecord, ApiKeyStore, MemoryApiKeyStore, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryApiKeyStore::new();
/// let r = ApiKeyRecord::new("k1", ApiKeyOwner::User(UserId::new("1")), "ci", vec![], "ak_live_Ab12",
///     time::OffsetDateTime::UNIX_EPOCH);
/// store.create(&r, "hash").await?;
/// assert_eq!(store.find_by_secret("hash").await?.unwrap().record.id, "k1");
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MemoryApiKeyStore {
    state: Arc<Mutex<MemoryState>>,
}

impl fmt::Debug for MemoryApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryApiKeyStore").finish_non_exhaustive()
    }
}

impl MemoryApiKeyStore {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_service::MemoryApiKeyStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn create(&self, record: &ApiKeyRecord, secret_hash: &str) -> Result<()> {
        let mut s = self.lock();
        if s.keys.contains_key(&record.id) || s.secrets.contains_key(secret_hash) {
            return Err(Error::Backend(crate::BackendError::message(
                "an API key with this id or secret exists",
            )));
        }
        s.keys.insert(record.id.clone(), record.clone());
        s.secrets
            .insert(secret_hash.to_owned(), (record.id.clone(), None));
        Ok(())
    }

    async fn find_by_secret(&self, secret_hash: &str) -> Result<Option<FoundApiKey>> {
        let s = self.lock();
        Ok(s.secrets
            .get(secret_hash)
            .and_then(|(id, until)| s.keys.get(id).map(|r| FoundApiKey::new(r.clone(), *until))))
    }

    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self.lock().keys.get(id).cloned())
    }

    async fn list(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>> {
        let mut keys: Vec<ApiKeyRecord> = self
            .lock()
            .keys
            .values()
            .filter(|r| &r.owner == owner)
            .cloned()
            .collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn roll(&self, id: &str, new_hash: &str, previous_until: OffsetDateTime) -> Result<bool> {
        let mut s = self.lock();
        if !s.keys.contains_key(id) {
            return Ok(false);
        }
        for (key_id, until) in s.secrets.values_mut() {
            if key_id == id {
                *until = Some(until.map_or(previous_until, |u| u.min(previous_until)));
            }
        }
        s.secrets.insert(new_hash.to_owned(), (id.to_owned(), None));
        Ok(true)
    }

    async fn delete(&self, id: &str) -> Result<bool> {
        let mut s = self.lock();
        s.secrets.retain(|_, (key_id, _)| key_id != id);
        s.windows.retain(|(key_id, _), _| key_id != id);
        Ok(s.keys.remove(id).is_some())
    }

    async fn set_enabled(&self, id: &str, enabled: bool) -> Result<bool> {
        Ok(self
            .lock()
            .keys
            .get_mut(id)
            .map(|r| r.enabled = enabled)
            .is_some())
    }

    async fn touch(
        &self,
        id: &str,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<bool> {
        let mut s = self.lock();
        let Some(r) = s.keys.get_mut(id) else {
            return Ok(false);
        };
        if r.last_used_at.is_some_and(|t| t > not_before) {
            return Ok(false);
        }
        r.last_used_at = Some(now);
        r.last_ip = ip.map(str::to_owned);
        Ok(true)
    }

    async fn reserve(&self, id: &str, window_start: i64, limit: u32) -> Result<bool> {
        let mut s = self.lock();
        let n = s.windows.entry((id.to_owned(), window_start)).or_insert(0);
        if *n >= limit {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }

    async fn create_service_account(&self, name: &str, now: OffsetDateTime) -> Result<bool> {
        let mut s = self.lock();
        if s.services.contains_key(name) {
            return Ok(false);
        }
        s.services.insert(name.to_owned(), now);
        Ok(true)
    }

    async fn service_account_exists(&self, name: &str) -> Result<bool> {
        Ok(self.lock().services.contains_key(name))
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut s = self.lock();
        let before = s.secrets.len() + s.windows.len() + s.keys.len();
        let expired: Vec<String> = s
            .keys
            .values()
            .filter(|r| r.expires_at.is_some_and(|e| e <= now))
            .map(|r| r.id.clone())
            .collect();
        for id in &expired {
            s.keys.remove(id);
        }
        let keys: std::collections::HashSet<String> = s.keys.keys().cloned().collect();
        s.secrets
            .retain(|_, (id, until)| keys.contains(id) && until.is_none_or(|u| u > now));
        let day = now.unix_timestamp() - 86_400;
        s.windows
            .retain(|(id, start), _| keys.contains(id) && *start > day);
        let after = s.secrets.len() + s.windows.len() + s.keys.len();
        Ok((before - after) as u64)
    }
}
