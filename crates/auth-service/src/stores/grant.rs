use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::*;

/// Grants in memory (tests, single-process apps).
///
/// ```
/// use auth_service::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryGrantStore::new();
/// let at = time::OffsetDateTime::UNIX_EPOCH;
/// assert!(store.grant(&RoleGrant::new(UserId::new("1"), Role::Admin, "operator", at)).await?);
/// assert_eq!(store.revoke_unless_last(&UserId::new("1"), Role::Admin).await?, Revoked::Last);
/// assert_eq!(store.holders(Role::Admin).await?, vec![UserId::new("1")]);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryGrantStore {
    grants: Mutex<BTreeMap<(UserId, Role), RoleGrant>>,
}

impl MemoryGrantStore {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_service::MemoryGrantStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<(UserId, Role), RoleGrant>>> {
        self.grants
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("grant store lock poisoned")))
    }
}

#[async_trait]
impl GrantStore for MemoryGrantStore {
    async fn grants_of(&self, user_id: &UserId) -> Result<Vec<RoleGrant>> {
        Ok(self
            .lock()?
            .values()
            .filter(|g| &g.user_id == user_id)
            .cloned()
            .collect())
    }

    async fn grant(&self, grant: &RoleGrant) -> Result<bool> {
        let mut map = self.lock()?;
        let key = (grant.user_id.clone(), grant.role);
        if map.contains_key(&key) {
            return Ok(false);
        }
        map.insert(key, grant.clone());
        Ok(true)
    }

    async fn revoke_unless_last(&self, user_id: &UserId, role: Role) -> Result<Revoked> {
        let mut map = self.lock()?;
        if !map.contains_key(&(user_id.clone(), role)) {
            return Ok(Revoked::NotHeld);
        }
        if map.keys().filter(|(_, r)| *r == role).count() <= 1 {
            return Ok(Revoked::Last);
        }
        map.remove(&(user_id.clone(), role));
        Ok(Revoked::Yes)
    }

    async fn revoke_all(&self, user_id: &UserId) -> Result<u64> {
        let mut map = self.lock()?;
        let before = map.len();
        map.retain(|(u, _), _| u != user_id);
        Ok((before - map.len()) as u64)
    }

    async fn holders(&self, role: Role) -> Result<Vec<UserId>> {
        Ok(self
            .lock()?
            .keys()
            .filter(|(_, r)| *r == role)
            .map(|(u, _)| u.clone())
            .collect())
    }
}
