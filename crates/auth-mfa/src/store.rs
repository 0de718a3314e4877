//! Where second-factor state lives: the `MfaStore` trait and its in-memory implementation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use auth_service::{Result, UserId, async_trait};
use time::OffsetDateTime;

pub use auth_service::ephemeral::{ChallengeRecord, ChallengeStore};

use crate::cipher::EncryptedSecret;
use crate::totp::TotpSettings;

/// A user's TOTP enrolment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpRecord {
    /// The secret, sealed by [`crate::SecretCipher`].
    pub secret: EncryptedSecret,
    /// The settings it was enrolled with (kept per user, so changing defaults breaks nobody).
    pub settings: TotpSettings,
    /// Whether a code confirmed it; a pending enrolment is not a second factor yet.
    pub confirmed: bool,
    /// The last accepted time step: that step and older ones are refused (replay protection).
    pub last_step: Option<i64>,
    /// When the enrolment began.
    pub created_at: OffsetDateTime,
}

impl TotpRecord {
    /// A pending enrolment.
    ///
    /// ```
    /// # use auth_mfa::*;
    /// let c = SecretCipher::new("k", &[3u8; 32]).unwrap();
    /// let r = TotpRecord::pending(c.encrypt(b"s", b"1").unwrap(), TotpSettings::default(),
    ///     time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(!r.confirmed && r.last_step.is_none());
    /// ```
    #[must_use]
    pub fn pending(
        secret: EncryptedSecret,
        settings: TotpSettings,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            secret,
            settings,
            confirmed: false,
            last_step: None,
            created_at,
        }
    }
}

/// Storage for second factors: enrolments and recovery codes. Every method that decides
/// something under concurrency is one atomic step (a conditional update on SQL), so two
/// requests cannot both use one TOTP step or one recovery code.
///
/// The two-step login's challenges are not here: they live in the contract's
/// [`ChallengeStore`], which [`MemoryMfaStore`] and `DbMfaStore` also implement (and Redis's
/// `RedisChallengeStore`, through [`Mfa::with_challenge_store`](crate::Mfa::with_challenge_store)).
///
/// Implementations: [`MemoryMfaStore`], and `DbMfaStore` (feature `db`). Both pass the same
/// conformance tests (`crates/auth-mfa/tests`).
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    /// The user's TOTP enrolment, pending or confirmed.
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>>;
    /// Saves a pending enrolment, replacing an earlier pending one. Returns false (and changes
    /// nothing) when the user already has a confirmed one.
    async fn save_pending(&self, user: &UserId, record: &TotpRecord) -> Result<bool>;
    /// Confirms the pending enrolment and records `step` as used. False when there is no
    /// pending enrolment (or it was confirmed meanwhile).
    async fn confirm(&self, user: &UserId, step: i64) -> Result<bool>;
    /// Records `step` as used if it is newer than the last used one, on a confirmed
    /// enrolment. False means a replay (or no enrolment): refuse the code.
    async fn accept_step(&self, user: &UserId, step: i64) -> Result<bool>;
    /// Replaces the sealed secret (key rotation) if it is still `expected_key_id`'s.
    async fn reseal(
        &self,
        user: &UserId,
        expected_key_id: &str,
        secret: &EncryptedSecret,
    ) -> Result<bool>;
    /// Removes the enrolment and the recovery codes. True when there was an enrolment.
    async fn delete(&self, user: &UserId) -> Result<bool>;
    /// Replaces the user's recovery codes (hashes) with `hashes`, atomically.
    async fn replace_recovery_codes(&self, user: &UserId, hashes: &[String]) -> Result<()>;
    /// Spends the recovery code with hash `hash`; true exactly once per code.
    async fn use_recovery_code(&self, user: &UserId, hash: &str) -> Result<bool>;
    /// Unused recovery codes left.
    async fn recovery_codes_left(&self, user: &UserId) -> Result<u64>;
}

#[async_trait]
impl<T: MfaStore + ?Sized> MfaStore for Arc<T> {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>> {
        (**self).totp(user).await
    }
    async fn save_pending(&self, user: &UserId, record: &TotpRecord) -> Result<bool> {
        (**self).save_pending(user, record).await
    }
    async fn confirm(&self, user: &UserId, step: i64) -> Result<bool> {
        (**self).confirm(user, step).await
    }
    async fn accept_step(&self, user: &UserId, step: i64) -> Result<bool> {
        (**self).accept_step(user, step).await
    }
    async fn reseal(
        &self,
        user: &UserId,
        expected_key_id: &str,
        secret: &EncryptedSecret,
    ) -> Result<bool> {
        (**self).reseal(user, expected_key_id, secret).await
    }
    async fn delete(&self, user: &UserId) -> Result<bool> {
        (**self).delete(user).await
    }
    async fn replace_recovery_codes(&self, user: &UserId, hashes: &[String]) -> Result<()> {
        (**self).replace_recovery_codes(user, hashes).await
    }
    async fn use_recovery_code(&self, user: &UserId, hash: &str) -> Result<bool> {
        (**self).use_recovery_code(user, hash).await
    }
    async fn recovery_codes_left(&self, user: &UserId) -> Result<u64> {
        (**self).recovery_codes_left(user).await
    }
}

#[derive(Default)]
struct State {
    totp: HashMap<UserId, TotpRecord>,
    codes: HashMap<UserId, Vec<String>>,
    challenges: HashMap<String, (ChallengeRecord, u32)>,
}

/// Second factors in process memory: for tests and single-process services. Clones share
/// the state.
///
/// ```
/// # use auth_mfa::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryMfaStore::new();
/// let user = auth_service::UserId::new("1");
/// assert!(store.totp(&user).await?.is_none());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct MemoryMfaStore {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryMfaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryMfaStore").finish_non_exhaustive()
    }
}

impl MemoryMfaStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MfaStore for MemoryMfaStore {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>> {
        Ok(self.lock().totp.get(user).cloned())
    }

    async fn save_pending(&self, user: &UserId, record: &TotpRecord) -> Result<bool> {
        let mut s = self.lock();
        if s.totp.get(user).is_some_and(|r| r.confirmed) {
            return Ok(false);
        }
        let mut record = record.clone();
        record.confirmed = false;
        s.totp.insert(user.clone(), record);
        Ok(true)
    }

    async fn confirm(&self, user: &UserId, step: i64) -> Result<bool> {
        let mut s = self.lock();
        match s.totp.get_mut(user) {
            Some(r) if !r.confirmed => {
                r.confirmed = true;
                r.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn accept_step(&self, user: &UserId, step: i64) -> Result<bool> {
        let mut s = self.lock();
        match s.totp.get_mut(user) {
            Some(r) if r.confirmed && r.last_step.is_none_or(|last| last < step) => {
                r.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn reseal(
        &self,
        user: &UserId,
        expected_key_id: &str,
        secret: &EncryptedSecret,
    ) -> Result<bool> {
        let mut s = self.lock();
        match s.totp.get_mut(user) {
            Some(r) if r.secret.key_id == expected_key_id => {
                r.secret = secret.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, user: &UserId) -> Result<bool> {
        let mut s = self.lock();
        s.codes.remove(user);
        Ok(s.totp.remove(user).is_some())
    }

    async fn replace_recovery_codes(&self, user: &UserId, hashes: &[String]) -> Result<()> {
        self.lock().codes.insert(user.clone(), hashes.to_vec());
        Ok(())
    }

    async fn use_recovery_code(&self, user: &UserId, hash: &str) -> Result<bool> {
        let mut s = self.lock();
        let Some(codes) = s.codes.get_mut(user) else {
            return Ok(false);
        };
        let before = codes.len();
        codes.retain(|h| !auth_service::constant_time_eq(h.as_bytes(), hash.as_bytes()));
        Ok(codes.len() < before)
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<u64> {
        Ok(self.lock().codes.get(user).map_or(0, |c| c.len() as u64))
    }
}

/// The login challenges: the same store serves as the [`ChallengeStore`] of
/// [`Mfa::new`](crate::Mfa::new) unless another is given.
#[async_trait]
impl ChallengeStore for MemoryMfaStore {
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()> {
        self.lock()
            .challenges
            .insert(challenge.token_hash.clone(), (challenge.clone(), 0));
        Ok(())
    }

    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        let mut s = self.lock();
        match s.challenges.get_mut(token_hash) {
            Some((c, attempts)) if c.expires_at > now && *attempts < max_attempts => {
                *attempts += 1;
                Ok(Some(c.user_id.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn consume(&self, token_hash: &str) -> Result<bool> {
        Ok(self.lock().challenges.remove(token_hash).is_some())
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut s = self.lock();
        let before = s.challenges.len();
        s.challenges.retain(|_, (c, _)| c.expires_at > now);
        Ok((before - s.challenges.len()) as u64)
    }
}
