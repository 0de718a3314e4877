use std::sync::Arc;
use time::OffsetDateTime;

use crate::ephemeral::*;
use crate::*;

/// A [`ChallengeStore`] in process memory (one instance; tests and small deployments).
///
/// ```
/// use auth_service::ephemeral::{ChallengeRecord, ChallengeStore, MemoryChallengeStore};
/// use auth_service::UserId;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryChallengeStore::new();
/// let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
/// store.create(&ChallengeRecord::new("h".into(), UserId::new("1"), later)).await?;
/// let now = time::OffsetDateTime::now_utc();
/// assert_eq!(store.attempt("h", now, 1).await?, Some(UserId::new("1")));
/// assert_eq!(store.attempt("h", now, 1).await?, None); // attempts used up
/// assert!(store.consume("h").await?);
/// assert!(!store.consume("h").await?);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryChallengeStore {
    records: Arc<std::sync::Mutex<std::collections::HashMap<String, (ChallengeRecord, u32)>>>,
}

impl MemoryChallengeStore {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_service::ephemeral::MemoryChallengeStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashMap<String, (ChallengeRecord, u32)>>>
    {
        self.records.lock().map_err(|_| {
            crate::Error::Backend(crate::BackendError::message(
                "challenge store lock poisoned",
            ))
        })
    }
}

#[async_trait]
impl ChallengeStore for MemoryChallengeStore {
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()> {
        self.lock()?
            .insert(challenge.token_hash.clone(), (challenge.clone(), 0));
        Ok(())
    }

    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        let mut records = self.lock()?;
        Ok(match records.get_mut(token_hash) {
            Some((record, attempts)) if record.expires_at > now && *attempts < max_attempts => {
                *attempts += 1;
                Some(record.user_id.clone())
            }
            _ => None,
        })
    }

    async fn consume(&self, token_hash: &str) -> Result<bool> {
        Ok(self.lock()?.remove(token_hash).is_some())
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut records = self.lock()?;
        let before = records.len();
        records.retain(|_, (r, _)| r.expires_at > now);
        Ok((before - records.len()) as u64)
    }
}

/// A [`CeremonyStore`] in process memory (one instance; tests and small deployments).
///
/// ```
/// let _ = auth_service::ephemeral::MemoryCeremonyStore::new();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryCeremonyStore {
    records: Arc<std::sync::Mutex<std::collections::HashMap<String, CeremonyRecord>>>,
}

impl MemoryCeremonyStore {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_service::ephemeral::MemoryCeremonyStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::HashMap<String, CeremonyRecord>>> {
        self.records.lock().map_err(|_| {
            crate::Error::Backend(crate::BackendError::message("ceremony store lock poisoned"))
        })
    }
}

#[async_trait]
impl CeremonyStore for MemoryCeremonyStore {
    async fn put(&self, record: &CeremonyRecord) -> Result<()> {
        self.lock()?.insert(record.key_hash.clone(), record.clone());
        Ok(())
    }

    async fn take(&self, key_hash: &str, now: OffsetDateTime) -> Result<Option<CeremonyRecord>> {
        Ok(self.lock()?.remove(key_hash).filter(|r| r.expires_at > now))
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut records = self.lock()?;
        let before = records.len();
        records.retain(|_, r| r.expires_at > now);
        Ok((before - records.len()) as u64)
    }
}
