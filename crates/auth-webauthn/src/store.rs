//! Where passkeys are kept: [`PasskeyStore`], and [`MemoryPasskeyStore`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use auth_core::{BackendError, Error, PasskeyInfo, Result, UserId, async_trait};
use time::OffsetDateTime;

/// One registered passkey as stored: the credential (webauthn-rs's `Passkey` as JSON: public
/// key, counter, flags) and what the account page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredPasskey {
    /// Public id (`pk_…`), what routes and events name.
    pub id: String,
    /// The owner.
    pub user_id: UserId,
    /// The WebAuthn user handle given to the authenticator (random, one per account).
    pub user_handle: String,
    /// The credential id, base64url (unique across accounts).
    pub credential_id: String,
    /// The owner's name for it.
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON.
    pub credential: String,
    /// The signature counter last seen (0 for authenticators that keep none).
    pub counter: u32,
    /// Backup eligible (a synced passkey).
    pub backup_eligible: bool,
    /// Backed up now.
    pub backed_up: bool,
    /// Registered then.
    pub created_at: OffsetDateTime,
    /// Last sign-in.
    pub last_used_at: Option<OffsetDateTime>,
}

impl StoredPasskey {
    /// What its owner sees.
    ///
    /// ```
    /// # let p = auth_webauthn::StoredPasskey::example();
    /// assert_eq!(p.info().name, p.name);
    /// ```
    #[must_use]
    pub fn info(&self) -> PasskeyInfo {
        let mut info = PasskeyInfo::new(self.id.clone(), self.name.clone(), self.created_at);
        info.last_used_at = self.last_used_at;
        info.backup_eligible = self.backup_eligible;
        info.backed_up = self.backed_up;
        info
    }

    /// A made-up row, for examples and store tests.
    ///
    /// ```
    /// let p = auth_webauthn::StoredPasskey::example();
    /// assert_eq!(p.user_id.as_str(), "1");
    /// ```
    #[must_use]
    pub fn example() -> Self {
        Self {
            id: "pk_example".into(),
            user_id: UserId::new("1"),
            user_handle: "00000000-0000-4000-8000-000000000001".into(),
            credential_id: "Y3JlZA".into(),
            name: "Laptop".into(),
            credential: "{}".into(),
            counter: 0,
            backup_eligible: false,
            backed_up: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            last_used_at: None,
        }
    }
}

/// The credential after a sign-in: its new state, written only if the stored counter is
/// still below `counter` (or both are 0), so two concurrent answers of a cloned authenticator
/// cannot both pass.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyUse {
    /// The passkey's public id.
    pub id: String,
    /// webauthn-rs's updated `Passkey`, as JSON.
    pub credential: String,
    /// The counter the authenticator sent.
    pub counter: u32,
    /// Backed up now.
    pub backed_up: bool,
    /// When.
    pub used_at: OffsetDateTime,
}

impl PasskeyUse {
    /// A use.
    ///
    /// ```
    /// let u = auth_webauthn::PasskeyUse::new("pk".into(), "{}".into(), 3, false, time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!(u.counter, 3);
    /// ```
    #[must_use]
    pub fn new(
        id: String,
        credential: String,
        counter: u32,
        backed_up: bool,
        used_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            credential,
            counter,
            backed_up,
            used_at,
        }
    }
}

/// Where passkeys live. Credential ids are unique across accounts: `insert` answers `false`
/// for one already registered (to anyone).
///
/// ```
/// use auth_webauthn::{MemoryPasskeyStore, PasskeyStore, StoredPasskey};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryPasskeyStore::new();
/// let p = StoredPasskey::example();
/// assert!(store.insert(&p).await?);
/// assert!(!store.insert(&p).await?); // the credential id is taken
/// assert_eq!(store.by_user(&p.user_id).await?.len(), 1);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Stores a new passkey; `false` when its credential id is registered already.
    async fn insert(&self, passkey: &StoredPasskey) -> Result<bool>;
    /// The account's passkeys, oldest first.
    async fn by_user(&self, user: &UserId) -> Result<Vec<StoredPasskey>>;
    /// The passkey with this credential id (base64url).
    async fn by_credential(&self, credential_id: &str) -> Result<Option<StoredPasskey>>;
    /// Records a sign-in if the stored counter is below `used.counter` or both are 0;
    /// `false` otherwise (a concurrent or replayed answer of a cloned authenticator).
    async fn record_use(&self, used: &PasskeyUse) -> Result<bool>;
    /// Renames one of `user`'s passkeys; `false` when it is not theirs.
    async fn rename(&self, user: &UserId, id: &str, name: &str) -> Result<bool>;
    /// Deletes one of `user`'s passkeys; `false` when it is not theirs.
    async fn delete(&self, user: &UserId, id: &str) -> Result<bool>;
    /// Deletes every passkey of `user`; returns how many.
    async fn delete_user(&self, user: &UserId) -> Result<u64>;
}

#[async_trait]
impl<T: PasskeyStore + ?Sized> PasskeyStore for Arc<T> {
    async fn insert(&self, passkey: &StoredPasskey) -> Result<bool> {
        (**self).insert(passkey).await
    }
    async fn by_user(&self, user: &UserId) -> Result<Vec<StoredPasskey>> {
        (**self).by_user(user).await
    }
    async fn by_credential(&self, credential_id: &str) -> Result<Option<StoredPasskey>> {
        (**self).by_credential(credential_id).await
    }
    async fn record_use(&self, used: &PasskeyUse) -> Result<bool> {
        (**self).record_use(used).await
    }
    async fn rename(&self, user: &UserId, id: &str, name: &str) -> Result<bool> {
        (**self).rename(user, id, name).await
    }
    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        (**self).delete(user, id).await
    }
    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        (**self).delete_user(user).await
    }
}

/// A [`PasskeyStore`] in process memory (tests, single-process tools).
///
/// ```
/// let _ = auth_webauthn::MemoryPasskeyStore::new();
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryPasskeyStore {
    /// By credential id.
    rows: Arc<Mutex<HashMap<String, StoredPasskey>>>,
}

impl MemoryPasskeyStore {
    /// An empty store.
    ///
    /// ```
    /// let _ = auth_webauthn::MemoryPasskeyStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, StoredPasskey>>> {
        self.rows
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("passkey store lock poisoned")))
    }
}

#[async_trait]
impl PasskeyStore for MemoryPasskeyStore {
    async fn insert(&self, passkey: &StoredPasskey) -> Result<bool> {
        let mut rows = self.lock()?;
        if rows.contains_key(&passkey.credential_id) {
            return Ok(false);
        }
        rows.insert(passkey.credential_id.clone(), passkey.clone());
        Ok(true)
    }

    async fn by_user(&self, user: &UserId) -> Result<Vec<StoredPasskey>> {
        let mut found: Vec<StoredPasskey> = self
            .lock()?
            .values()
            .filter(|p| &p.user_id == user)
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(found)
    }

    async fn by_credential(&self, credential_id: &str) -> Result<Option<StoredPasskey>> {
        Ok(self.lock()?.get(credential_id).cloned())
    }

    async fn record_use(&self, used: &PasskeyUse) -> Result<bool> {
        let mut rows = self.lock()?;
        let Some(row) = rows.values_mut().find(|p| p.id == used.id) else {
            return Ok(false);
        };
        if !(row.counter < used.counter || (row.counter == 0 && used.counter == 0)) {
            return Ok(false);
        }
        row.credential.clone_from(&used.credential);
        row.counter = used.counter;
        row.backed_up = used.backed_up;
        row.last_used_at = Some(used.used_at);
        Ok(true)
    }

    async fn rename(&self, user: &UserId, id: &str, name: &str) -> Result<bool> {
        let mut rows = self.lock()?;
        match rows.values_mut().find(|p| p.id == id && &p.user_id == user) {
            Some(row) => {
                name.clone_into(&mut row.name);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        let mut rows = self.lock()?;
        let before = rows.len();
        rows.retain(|_, p| !(p.id == id && &p.user_id == user));
        Ok(rows.len() < before)
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        let mut rows = self.lock()?;
        let before = rows.len();
        rows.retain(|_, p| &p.user_id != user);
        Ok((before - rows.len()) as u64)
    }
}
