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

/// Storage for second factors. Every method that decides something under concurrency is one
/// atomic step (a conditional update on SQL), so two requests cannot both use one TOTP step,
/// one recovery code or one challenge.
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
    /// Stores a login challenge.
    async fn create_challenge(&self, challenge: &ChallengeRecord) -> Result<()>;
    /// Counts one attempt on a live challenge and returns its user, or `None` when the
    /// challenge is unknown, expired, used, or has had `max_attempts` attempts already.
    async fn attempt_challenge(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>>;
    /// Ends a challenge; true for the one caller that ended it.
    async fn consume_challenge(&self, token_hash: &str) -> Result<bool>;
    /// Deletes challenges expired at `now`; returns how many.
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64>;
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
    async fn create_challenge(&self, challenge: &ChallengeRecord) -> Result<()> {
        (**self).create_challenge(challenge).await
    }
    async fn attempt_challenge(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        (**self)
            .attempt_challenge(token_hash, now, max_attempts)
            .await
    }
    async fn consume_challenge(&self, token_hash: &str) -> Result<bool> {
        (**self).consume_challenge(token_hash).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        (**self).cleanup_expired(now).await
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

    async fn create_challenge(&self, challenge: &ChallengeRecord) -> Result<()> {
        self.lock()
            .challenges
            .insert(challenge.token_hash.clone(), (challenge.clone(), 0));
        Ok(())
    }

    async fn attempt_challenge(
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

    async fn consume_challenge(&self, token_hash: &str) -> Result<bool> {
        Ok(self.lock().challenges.remove(token_hash).is_some())
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut s = self.lock();
        let before = s.challenges.len();
        s.challenges.retain(|_, (c, _)| c.expires_at > now);
        Ok((before - s.challenges.len()) as u64)
    }
}

/// An [`MfaStore`] whose login challenges live in a separate [`ChallengeStore`] (Redis, say:
/// `auth_redis::RedisChallengeStore`) while enrolments and recovery codes stay in `store`
/// (usually SQL). `cleanup_expired` cleans both.
///
/// ```
/// # use auth_mfa::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Any ChallengeStore will do; here, the challenges of a second memory store.
/// struct Elsewhere(MemoryMfaStore);
/// #[auth_service::async_trait]
/// impl ChallengeStore for Elsewhere {
///     async fn create(&self, c: &ChallengeRecord) -> auth_service::Result<()> { self.0.create_challenge(c).await }
///     async fn attempt(&self, h: &str, now: time::OffsetDateTime, max: u32) -> auth_service::Result<Option<auth_service::UserId>> {
///         self.0.attempt_challenge(h, now, max).await
///     }
///     async fn consume(&self, h: &str) -> auth_service::Result<bool> { self.0.consume_challenge(h).await }
///     async fn cleanup_expired(&self, now: time::OffsetDateTime) -> auth_service::Result<u64> { self.0.cleanup_expired(now).await }
/// }
/// let store = WithChallengeStore::new(MemoryMfaStore::new(), Elsewhere(MemoryMfaStore::new()));
/// let c = ChallengeRecord::new("ab".into(), auth_service::UserId::new("1"), time::OffsetDateTime::UNIX_EPOCH);
/// store.create_challenge(&c).await?;
/// assert!(store.consume_challenge("ab").await?);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct WithChallengeStore<S, C> {
    store: S,
    challenges: C,
}

impl<S: MfaStore, C: ChallengeStore> WithChallengeStore<S, C> {
    /// Enrolments and codes in `store`, challenges in `challenges`.
    ///
    /// ```
    /// # use auth_mfa::*;
    /// # fn f<C: ChallengeStore>(challenges: C) {
    /// let store = WithChallengeStore::new(MemoryMfaStore::new(), challenges);
    /// # }
    /// ```
    #[must_use]
    pub fn new(store: S, challenges: C) -> Self {
        Self { store, challenges }
    }
}

#[async_trait]
impl<S: MfaStore, C: ChallengeStore> MfaStore for WithChallengeStore<S, C> {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>> {
        self.store.totp(user).await
    }
    async fn save_pending(&self, user: &UserId, record: &TotpRecord) -> Result<bool> {
        self.store.save_pending(user, record).await
    }
    async fn confirm(&self, user: &UserId, step: i64) -> Result<bool> {
        self.store.confirm(user, step).await
    }
    async fn accept_step(&self, user: &UserId, step: i64) -> Result<bool> {
        self.store.accept_step(user, step).await
    }
    async fn reseal(
        &self,
        user: &UserId,
        expected_key_id: &str,
        secret: &EncryptedSecret,
    ) -> Result<bool> {
        self.store.reseal(user, expected_key_id, secret).await
    }
    async fn delete(&self, user: &UserId) -> Result<bool> {
        self.store.delete(user).await
    }
    async fn replace_recovery_codes(&self, user: &UserId, hashes: &[String]) -> Result<()> {
        self.store.replace_recovery_codes(user, hashes).await
    }
    async fn use_recovery_code(&self, user: &UserId, hash: &str) -> Result<bool> {
        self.store.use_recovery_code(user, hash).await
    }
    async fn recovery_codes_left(&self, user: &UserId) -> Result<u64> {
        self.store.recovery_codes_left(user).await
    }
    async fn create_challenge(&self, challenge: &ChallengeRecord) -> Result<()> {
        self.challenges.create(challenge).await
    }
    async fn attempt_challenge(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        self.challenges.attempt(token_hash, now, max_attempts).await
    }
    async fn consume_challenge(&self, token_hash: &str) -> Result<bool> {
        self.challenges.consume(token_hash).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(self.challenges.cleanup_expired(now).await? + self.store.cleanup_expired(now).await?)
    }
}

/// An [`MfaStore`]'s challenge table as a plain [`ChallengeStore`], for `AuthService`'s
/// single-use link records (email change, sign-in links) in SQL without another table. Their
/// keys are MACs under the signing secret, so no second-factor challenge can ever name one.
///
/// ```
/// use auth_service::ephemeral::{ChallengeRecord, ChallengeStore};
/// use auth_mfa::{ChallengesOf, MemoryMfaStore};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = ChallengesOf::new(MemoryMfaStore::new());
/// let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
/// store.create(&ChallengeRecord::new("k".into(), auth_service::UserId::new("1"), later)).await?;
/// assert!(store.consume("k").await?);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ChallengesOf<S>(S);

impl<S: MfaStore> ChallengesOf<S> {
    /// The challenge table of `store`.
    ///
    /// ```
    /// let _ = auth_mfa::ChallengesOf::new(auth_mfa::MemoryMfaStore::new());
    /// ```
    pub fn new(store: S) -> Self {
        Self(store)
    }
}

#[async_trait]
impl<S: MfaStore> ChallengeStore for ChallengesOf<S> {
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()> {
        self.0.create_challenge(challenge).await
    }
    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        self.0
            .attempt_challenge(token_hash, now, max_attempts)
            .await
    }
    async fn consume(&self, token_hash: &str) -> Result<bool> {
        self.0.consume_challenge(token_hash).await
    }
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        MfaStore::cleanup_expired(&self.0, now).await
    }
}
