use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use time::OffsetDateTime;

use crate::*;

/// [`TrustedDeviceStore`] in process memory (tests, one process).
#[derive(Default)]
pub struct MemoryTrustedDevices {
    devices: Mutex<HashMap<String, TrustedDevice>>,
}

impl fmt::Debug for MemoryTrustedDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTrustedDevices")
            .finish_non_exhaustive()
    }
}

impl MemoryTrustedDevices {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_service::MemoryTrustedDevices::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, TrustedDevice>>> {
        self.devices
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("device store lock poisoned")))
    }
}

#[async_trait]
impl TrustedDeviceStore for MemoryTrustedDevices {
    async fn insert(&self, device: &TrustedDevice, digest: &str) -> Result<()> {
        self.lock()?.insert(digest.to_owned(), device.clone());
        Ok(())
    }
    async fn find(&self, digest: &str) -> Result<Option<TrustedDevice>> {
        Ok(self.lock()?.get(digest).cloned())
    }
    async fn list(&self, user_id: &UserId) -> Result<Vec<TrustedDevice>> {
        let mut out: Vec<TrustedDevice> = self
            .lock()?
            .values()
            .filter(|d| &d.user_id == user_id)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }
    async fn remove(&self, user_id: &UserId, id: &str) -> Result<bool> {
        let mut devices = self.lock()?;
        let before = devices.len();
        devices.retain(|_, d| !(&d.user_id == user_id && d.id == id));
        Ok(devices.len() < before)
    }
    async fn remove_all(&self, user_id: &UserId) -> Result<u64> {
        let mut devices = self.lock()?;
        let before = devices.len();
        devices.retain(|_, d| &d.user_id != user_id);
        Ok((before - devices.len()) as u64)
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut devices = self.lock()?;
        let before = devices.len();
        devices.retain(|_, d| d.is_live(now));
        Ok((before - devices.len()) as u64)
    }
}
