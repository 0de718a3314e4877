//! Trusted devices: after a second factor, a browser (or app) the user chose to trust skips the
//! second factor at its next sign-ins for a while. The credential is 256 random bits the client
//! keeps (a cookie); the store keeps its SHA-256 digest, to whom it belongs, and until when.
//! `AuthService::with_trusted_devices` turns it on.

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::Result;
use crate::token::SessionMeta;
use crate::user::UserId;

/// One trusted device, as listed to its owner (never its credential).
///
/// ```
/// use auth_core::{SessionMeta, TrustedDevice, UserId};
/// let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
/// let d = TrustedDevice::new("dev-1", UserId::new("7"), now, now + time::Duration::days(30), SessionMeta::default());
/// assert!(d.is_live(now) && !d.is_live(d.expires_at));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrustedDevice {
    /// Its id (for listing and revoking).
    pub id: String,
    /// Whose it is.
    #[serde(skip)]
    pub user_id: UserId,
    /// When the user trusted it.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the trust ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The client it was trusted from.
    #[serde(flatten)]
    pub meta: SessionMeta,
}

impl TrustedDevice {
    /// A device record.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        user_id: UserId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        meta: SessionMeta,
    ) -> Self {
        Self {
            id: id.into(),
            user_id,
            created_at,
            expires_at,
            meta,
        }
    }

    /// Whether it is still trusted at `now`.
    #[must_use]
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}

/// Where trusted devices are kept: by the digest of their credential, per user.
///
/// ```
/// use auth_service::{MemoryTrustedDevices, SessionMeta, TrustedDevice, TrustedDeviceStore, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryTrustedDevices::new();
/// let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
/// let user = UserId::new("7");
/// let device = TrustedDevice::new("d1", user.clone(), now, now + time::Duration::days(30), SessionMeta::default());
/// store.insert(&device, "digest-1").await?;
/// assert_eq!(store.find("digest-1").await?.unwrap().id, "d1");
/// assert_eq!(store.list(&user).await?.len(), 1);
/// assert!(store.remove(&user, "d1").await?);
/// assert!(store.find("digest-1").await?.is_none());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait TrustedDeviceStore: Send + Sync + 'static {
    /// Keeps `device` under the digest of its credential.
    async fn insert(&self, device: &TrustedDevice, digest: &str) -> Result<()>;
    /// The device whose credential has this digest, expired or not.
    async fn find(&self, digest: &str) -> Result<Option<TrustedDevice>>;
    /// The user's devices, newest first (expired ones too, until cleaned up).
    async fn list(&self, user_id: &UserId) -> Result<Vec<TrustedDevice>>;
    /// Forgets one of the user's devices: `true` if it was there.
    async fn remove(&self, user_id: &UserId, id: &str) -> Result<bool>;
    /// Forgets every device of the user: how many.
    async fn remove_all(&self, user_id: &UserId) -> Result<u64>;
    /// Deletes devices whose trust ended at or before `now`: how many.
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64>;
}

#[async_trait]
impl<T: TrustedDeviceStore + ?Sized> TrustedDeviceStore for std::sync::Arc<T> {
    async fn insert(&self, device: &TrustedDevice, digest: &str) -> Result<()> {
        (**self).insert(device, digest).await
    }
    async fn find(&self, digest: &str) -> Result<Option<TrustedDevice>> {
        (**self).find(digest).await
    }
    async fn list(&self, user_id: &UserId) -> Result<Vec<TrustedDevice>> {
        (**self).list(user_id).await
    }
    async fn remove(&self, user_id: &UserId, id: &str) -> Result<bool> {
        (**self).remove(user_id, id).await
    }
    async fn remove_all(&self, user_id: &UserId) -> Result<u64> {
        (**self).remove_all(user_id).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        (**self).cleanup_expired(now).await
    }
}
