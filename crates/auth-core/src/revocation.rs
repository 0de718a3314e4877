//! Revocation of stateless tokens: revoked ids, revoked families, per-user "not before".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::change::Change;
use crate::clock::{SharedClock, SystemClock};
use crate::error::{BackendError, Error, Result};
use crate::token::{SessionInfo, SessionMeta};
use crate::user::UserId;

/// What to check about one token, in one round trip.
///
/// ```
/// use auth_core::{RevocationQuery, UserId};
/// let q = RevocationQuery::new("jti-1", UserId::new("7"), 1_700_000_000).with_family("fam");
/// assert_eq!(q.family.as_deref(), Some("fam"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RevocationQuery {
    /// The token id.
    pub jti: String,
    /// Its family, if it has one.
    pub family: Option<String>,
    /// Its user.
    pub user_id: UserId,
    /// When it was issued, Unix seconds.
    pub issued_at: i64,
    /// When it was issued, Unix microseconds: what per-user cut-offs compare (the start of
    /// `issued_at` unless set with [`with_issued_at_micros`](Self::with_issued_at_micros)).
    pub issued_at_us: i64,
    /// Whether the id may have been consumed ([`RevocationStore::consume`]: a single-use
    /// refresh token). A `RevocationMirror` keeps revoked ids in
    /// memory but not consumed ones (they live as long as refresh tokens), so it asks its store
    /// about a consumable id it does not hold. `true` unless set with
    /// [`with_consumable`](Self::with_consumable): an access token is never consumed.
    pub consumable: bool,
}

impl RevocationQuery {
    /// A query without a family.
    ///
    /// ```
    /// # use auth_core::{RevocationQuery, UserId};
    /// assert!(RevocationQuery::new("j", UserId::new("1"), 0).family.is_none());
    /// ```
    #[must_use]
    pub fn new(jti: impl Into<String>, user_id: UserId, issued_at: i64) -> Self {
        Self {
            jti: jti.into(),
            family: None,
            user_id,
            issued_at,
            issued_at_us: issued_at.saturating_mul(1_000_000),
            consumable: true,
        }
    }

    /// Says whether the id may have been consumed (`false` for access tokens, which a mirror
    /// then answers from memory alone).
    ///
    /// ```
    /// # use auth_core::{RevocationQuery, UserId};
    /// assert!(!RevocationQuery::new("j", UserId::new("1"), 0).with_consumable(false).consumable);
    /// ```
    #[must_use]
    pub fn with_consumable(mut self, consumable: bool) -> Self {
        self.consumable = consumable;
        self
    }

    /// Sets the issue instant to the microsecond.
    ///
    /// ```
    /// # use auth_core::{RevocationQuery, UserId};
    /// let q = RevocationQuery::new("j", UserId::new("1"), 1).with_issued_at_micros(1_500_000);
    /// assert_eq!(q.issued_at_us, 1_500_000);
    /// ```
    #[must_use]
    pub fn with_issued_at_micros(mut self, micros: i64) -> Self {
        self.issued_at_us = micros;
        self
    }

    /// Sets the family.
    ///
    /// ```
    /// # use auth_core::{RevocationQuery, UserId};
    /// assert!(RevocationQuery::new("j", UserId::new("1"), 0).with_family("f").family.is_some());
    /// ```
    #[must_use]
    pub fn with_family(mut self, family: impl Into<String>) -> Self {
        self.family = Some(family.into());
        self
    }
}

/// What became of a consumption ([`RevocationStore::consume_at`]).
///
/// ```
/// use auth_core::Consumption;
/// assert!(Consumption::Won.won());
/// assert!(!Consumption::Taken { at: None }.won());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consumption {
    /// This caller consumed the id (and revoked its pair).
    Won,
    /// The id was already consumed or revoked: `at` is when it was consumed, where the store
    /// knows (`None` for an id revoked rather than consumed, or a store that keeps no time).
    /// A rotation uses it to tell its own racing client from a replay.
    Taken {
        /// When the id was consumed, to the microsecond.
        at: Option<OffsetDateTime>,
    },
}

impl Consumption {
    /// Whether this caller won.
    #[must_use]
    pub fn won(self) -> bool {
        matches!(self, Self::Won)
    }
}

/// Remembers which stateless tokens no longer count. Entries carry the expiry of what they
/// revoke, so [`cleanup_expired`](RevocationStore::cleanup_expired) can forget them once the
/// tokens could not verify anyway. Implementations run `auth_testkit::conformance::revocation_store`.
///
/// ```
/// use auth_core::{MemoryRevocationStore, RevocationQuery, RevocationStore, UserId};
/// use time::OffsetDateTime;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryRevocationStore::new();
/// let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
/// store.revoke("jti-1", later).await?;
/// let q = RevocationQuery::new("jti-1", UserId::new("7"), 0);
/// assert!(store.is_revoked(&q).await?);
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Marks a token id revoked until `expires_at`. Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()>;

    /// Marks a token id used, atomically: `true` for exactly one caller, however many race.
    /// A consumed id is also revoked. This is what makes refresh tokens single-use.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn consume(&self, jti: &str, expires_at: OffsetDateTime) -> Result<bool>;

    /// [`consume`](Self::consume), and for the one caller that wins also revoke `paired`
    /// (the access token issued with a refresh token), in one step where the store allows it
    /// (one statement in SQL: a rotation then costs one write, not two).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_core::{MemoryRevocationStore, RevocationQuery, RevocationStore, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryRevocationStore::new();
    /// let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    /// assert!(store.consume_with("refresh-1", later, Some(("access-1", later))).await?);
    /// assert!(!store.consume_with("refresh-1", later, Some(("access-1", later))).await?);
    /// assert!(store.is_revoked(&RevocationQuery::new("access-1", UserId::new("7"), 0)).await?);
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    async fn consume_with(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
    ) -> Result<bool> {
        let won = self.consume(jti, expires_at).await?;
        if won && let Some((paired, until)) = paired {
            self.revoke(paired, until).await?;
        }
        Ok(won)
    }

    /// [`consume_with`](Self::consume_with) at the instant `at` (truncated to the
    /// microsecond), which the store keeps with the consumed id: a caller that loses learns
    /// when the id was consumed ([`Consumption::Taken`]), so a rotation can give its own
    /// racing client the successor it just issued at that instant. The default consumes
    /// with [`consume_with`](Self::consume_with) and keeps no time (`Taken { at: None }`:
    /// every second use is reuse).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_core::{Consumption, MemoryRevocationStore, RevocationStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryRevocationStore::new();
    /// let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    /// let later = now + time::Duration::days(7);
    /// assert_eq!(store.consume_at("refresh-1", later, None, now).await?, Consumption::Won);
    /// let again = store.consume_at("refresh-1", later, None, now + time::Duration::seconds(1)).await?;
    /// assert_eq!(again, Consumption::Taken { at: Some(now) });
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    async fn consume_at(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
        at: OffsetDateTime,
    ) -> Result<Consumption> {
        let _ = at;
        Ok(if self.consume_with(jti, expires_at, paired).await? {
            Consumption::Won
        } else {
            Consumption::Taken { at: None }
        })
    }

    /// Revokes every token of a family until `expires_at`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn revoke_family(&self, family: &str, expires_at: OffsetDateTime) -> Result<()>;

    /// Revokes every token of the user issued at or before `not_before`, compared to the
    /// microsecond (logout everywhere, in O(1)): a token issued after the cut-off is never
    /// refused by it, one issued in the same microsecond is (the safe side),
    /// except the tokens of the session family `keep` (the session changing its password).
    ///
    /// Cut-offs combine whatever order they arrive in (two instances, a late message): the
    /// latest instant keeps its exemption, and a cut-off that names another session (or none)
    /// still revokes everything up to its own instant. Two cut-offs combine exactly; more are
    /// approximated on the safe side (a token is never spared that one of them revokes).
    /// [`Cutoff`] is the rule; stores and mirrors apply it alike.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn revoke_user(
        &self,
        user_id: &UserId,
        not_before: OffsetDateTime,
        keep: Option<&str>,
    ) -> Result<()>;

    /// Whether the token is revoked by id, by family or by its user's not-before instant.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn is_revoked(&self, query: &RevocationQuery) -> Result<bool>;

    /// Forgets entries whose expiry has passed; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn cleanup_expired(&self) -> Result<u64>;

    /// Every live revocation — revoked ids (not consumed ones), revoked families and per-user
    /// cut-offs — as changes, so a `RevocationMirror` can load them
    /// at start and after an outage of its feed. `None` (the default) for a store that cannot
    /// list them: a mirror over it asks the store on every check.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_core::{Change, MemoryRevocationStore, RevocationStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryRevocationStore::new();
    /// let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    /// store.revoke_family("fam-1", later).await?;
    /// let live = store.live_revocations().await?.unwrap();
    /// assert!(matches!(&live[0], Change::FamilyRevoked { family, .. } if family == "fam-1"));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    async fn live_revocations(&self) -> Result<Option<Vec<Change>>> {
        Ok(None)
    }

    /// Tokens issued before this instant (Unix microseconds) count as revoked, whatever else
    /// the store holds: a store that may have lost revocations (a Redis restarted without
    /// persistence, or flushed) says from when it can vouch for them again, so nothing it
    /// forgot is accepted. `None` (the default, and every durable store): no such floor.
    /// A `RevocationMirror` reads it with every load.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_core::{MemoryRevocationStore, RevocationStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert_eq!(MemoryRevocationStore::new().revoked_before().await?, None);
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    async fn revoked_before(&self) -> Result<Option<i64>> {
        Ok(None)
    }

    /// Hands every live revocation to `each`, batch by batch, until `each` returns `false`
    /// (a mirror stops a load that would not fit); `Ok(false)` for a store that cannot list
    /// them. What a `RevocationMirror` loads with: a store with
    /// millions of rows overrides it to read them in pages (the SQL store reads 10,000 rows at
    /// a time by primary key), so a load never holds them all at once. The default hands over
    /// [`live_revocations`](Self::live_revocations) in one batch.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_core::{MemoryRevocationStore, RevocationStore};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryRevocationStore::new();
    /// let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    /// store.revoke("jti-1", later).await?;
    /// let mut seen = 0;
    /// assert!(store.scan_revocations(&mut |batch| { seen += batch.len(); true }).await?);
    /// assert_eq!(seen, 1);
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    async fn scan_revocations(
        &self,
        each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
    ) -> Result<bool> {
        match self.live_revocations().await? {
            Some(all) => {
                each(&all);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Remembers a new session (refresh family) of `user` that can live until `expires_at`
    /// (its absolute end), so that ending every session can say how many ended. The default
    /// keeps nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn track_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let _ = (user, family, expires_at);
        Ok(())
    }

    /// Remembers a new session like [`track_session`](Self::track_session), with the
    /// client's metadata and its start, so that sessions can be listed
    /// ([`list_sessions`](Self::list_sessions)). The default tracks it without them.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn start_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        let _ = (meta, at);
        self.track_session(user, family, expires_at).await
    }

    /// Records that a tracked session was used (refreshed) at `at` by a client with `meta`.
    /// The default keeps nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn touch_session(
        &self,
        family: &str,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        let _ = (family, meta, at);
        Ok(())
    }

    /// The live tracked sessions of `user` (not ended, not expired, not revoked), oldest
    /// first; `None` for a store that cannot list them.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_core::{MemoryRevocationStore, RevocationStore, SessionMeta, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryRevocationStore::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// let meta = SessionMeta::new().with_user_agent("phone/1.0");
    /// store.start_session(&UserId::new("7"), "fam-1", now + time::Duration::days(7), &meta, now).await?;
    /// let sessions = store.list_sessions(&UserId::new("7")).await?.unwrap();
    /// assert_eq!(sessions[0].meta.user_agent.as_deref(), Some("phone/1.0"));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    async fn list_sessions(&self, user: &UserId) -> Result<Option<Vec<SessionInfo>>> {
        let _ = user;
        Ok(None)
    }

    /// Forgets one tracked session (it was logged out, or its refresh token reused).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn end_session(&self, family: &str) -> Result<()> {
        let _ = family;
        Ok(())
    }

    /// Forgets every tracked session of `user` but `keep` that had not ended, and says how
    /// many there were; `None` for a store that does not track sessions.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<Option<u64>> {
        let _ = (user, keep);
        Ok(None)
    }
}

struct Tracked {
    user: UserId,
    info: SessionInfo,
}

#[derive(Default)]
struct RevocationState {
    jtis: HashMap<String, OffsetDateTime>,
    /// Consumed ids (also in `jtis`) -> when they were consumed.
    consumed: HashMap<String, OffsetDateTime>,
    families: HashMap<String, OffsetDateTime>,
    /// Per user: the combined cut-off, and when the entry may be forgotten.
    users: HashMap<UserId, (Cutoff, OffsetDateTime)>,
    /// Tracked sessions: family -> the session.
    sessions: HashMap<String, Tracked>,
}

/// A [`RevocationStore`] in process memory, for tests and single-process deployments.
///
/// ```
/// use auth_core::{FixedClock, MemoryRevocationStore};
/// let store = MemoryRevocationStore::new().with_clock(FixedClock::from_unix(0));
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MemoryRevocationStore {
    state: Arc<Mutex<RevocationState>>,
    clock: SharedClock,
    /// How long a per-user not-before entry is kept: tokens issued before it are at most this old.
    user_retention: time::Duration,
}

impl MemoryRevocationStore {
    /// An empty store on the system clock.
    ///
    /// ```
    /// let _ = auth_core::MemoryRevocationStore::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            clock: Arc::new(SystemClock),
            user_retention: time::Duration::days(31),
        }
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use auth_core::{FixedClock, MemoryRevocationStore};
    /// let _ = MemoryRevocationStore::new().with_clock(FixedClock::from_unix(5));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long per-user not-before entries are kept (set it to the longest token lifetime;
    /// default 31 days).
    ///
    /// ```
    /// # use auth_core::MemoryRevocationStore;
    /// let _ = MemoryRevocationStore::new().with_user_retention(std::time::Duration::from_secs(86_400));
    /// ```
    #[must_use]
    pub fn with_user_retention(mut self, retention: std::time::Duration) -> Self {
        self.user_retention = time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
        self
    }

    fn lock(&self) -> Result<MutexGuard<'_, RevocationState>> {
        self.state
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("revocation store lock poisoned")))
    }
}

impl Default for MemoryRevocationStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRevocationStore")
            .finish_non_exhaustive()
    }
}

fn extend(map: &mut HashMap<String, OffsetDateTime>, key: &str, expires_at: OffsetDateTime) {
    map.entry(key.to_owned())
        .and_modify(|e| *e = (*e).max(expires_at))
        .or_insert(expires_at);
}

#[async_trait]
impl RevocationStore for MemoryRevocationStore {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        let mut state = self.lock()?;
        extend(&mut state.jtis, jti, expires_at);
        // Revoked after it was consumed (a logout): no racing client may use it again.
        state.consumed.remove(jti);
        Ok(())
    }

    async fn consume(&self, jti: &str, expires_at: OffsetDateTime) -> Result<bool> {
        let at = self.clock.now();
        Ok(self.consume_at(jti, expires_at, None, at).await?.won())
    }

    async fn consume_with(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
    ) -> Result<bool> {
        let at = self.clock.now();
        Ok(self.consume_at(jti, expires_at, paired, at).await?.won())
    }

    async fn consume_at(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
        at: OffsetDateTime,
    ) -> Result<Consumption> {
        let mut state = self.lock()?;
        if state.jtis.contains_key(jti) {
            return Ok(Consumption::Taken {
                at: state.consumed.get(jti).copied(),
            });
        }
        state.jtis.insert(jti.to_owned(), expires_at);
        state
            .consumed
            .insert(jti.to_owned(), crate::truncate_to_micros(at));
        if let Some((paired, until)) = paired {
            extend(&mut state.jtis, paired, until);
        }
        Ok(Consumption::Won)
    }

    async fn revoke_family(&self, family: &str, expires_at: OffsetDateTime) -> Result<()> {
        extend(&mut self.lock()?.families, family, expires_at);
        Ok(())
    }

    async fn revoke_user(
        &self,
        user_id: &UserId,
        not_before: OffsetDateTime,
        keep: Option<&str>,
    ) -> Result<()> {
        let keep_until = crate::clock::add(
            self.clock.now(),
            std::time::Duration::try_from(self.user_retention).unwrap_or_default(),
        );
        let nb = micros(not_before);
        let mut state = self.lock()?;
        match state.users.get_mut(user_id) {
            Some((cutoff, until)) => {
                cutoff.join(nb, keep);
                *until = (*until).max(keep_until);
            }
            None => {
                state
                    .users
                    .insert(user_id.clone(), (Cutoff::new(nb, keep), keep_until));
            }
        }
        Ok(())
    }

    async fn is_revoked(&self, q: &RevocationQuery) -> Result<bool> {
        let state = self.lock()?;
        Ok(state.jtis.contains_key(&q.jti)
            || q.family
                .as_ref()
                .is_some_and(|f| state.families.contains_key(f))
            || state
                .users
                .get(&q.user_id)
                .is_some_and(|(cutoff, _)| cutoff.revokes(q.issued_at_us, q.family.as_deref())))
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let before = state.jtis.len() + state.families.len() + state.users.len();
        state.jtis.retain(|_, exp| *exp > now);
        let RevocationState { jtis, consumed, .. } = &mut *state;
        consumed.retain(|jti, _| jtis.contains_key(jti));
        state.families.retain(|_, exp| *exp > now);
        state.users.retain(|_, (_, until)| *until > now);
        state.sessions.retain(|_, t| t.info.expires_at > now);
        let after = state.jtis.len() + state.families.len() + state.users.len();
        Ok((before - after) as u64)
    }

    async fn live_revocations(&self) -> Result<Option<Vec<Change>>> {
        let now = self.clock.now();
        let state = self.lock()?;
        let mut live =
            Vec::with_capacity(state.jtis.len() + state.families.len() + state.users.len());
        live.extend(
            state
                .jtis
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(jti, until)| Change::TokenRevoked {
                    jti: jti.clone(),
                    until: *until,
                }),
        );
        live.extend(
            state
                .families
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(family, until)| Change::FamilyRevoked {
                    family: family.clone(),
                    until: *until,
                }),
        );
        for (user, (cutoff, until)) in &state.users {
            if *until > now {
                live.extend(cutoff.to_changes(user, *until));
            }
        }
        Ok(Some(live))
    }

    async fn track_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let now = self.clock.now();
        self.start_session(user, family, expires_at, &SessionMeta::default(), now)
            .await
    }

    async fn start_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        let mut info = SessionInfo::new(family, at, expires_at);
        info.meta = meta.clone();
        self.lock()?.sessions.insert(
            family.to_owned(),
            Tracked {
                user: user.clone(),
                info,
            },
        );
        Ok(())
    }

    async fn touch_session(
        &self,
        family: &str,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        if let Some(t) = self.lock()?.sessions.get_mut(family) {
            t.info.last_used_at = Some(at);
            t.info.meta = meta.clone();
        }
        Ok(())
    }

    async fn list_sessions(&self, user: &UserId) -> Result<Option<Vec<SessionInfo>>> {
        let now = self.clock.now();
        let state = self.lock()?;
        let mut list: Vec<SessionInfo> = state
            .sessions
            .values()
            .filter(|t| {
                t.user == *user
                    && t.info.expires_at > now
                    && !state.families.contains_key(&t.info.id)
            })
            .map(|t| t.info.clone())
            .collect();
        list.sort_by_key(|s| s.created_at);
        Ok(Some(list))
    }

    async fn end_session(&self, family: &str) -> Result<()> {
        self.lock()?.sessions.remove(family);
        Ok(())
    }

    async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<Option<u64>> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let mut live = 0u64;
        state.sessions.retain(|family, t| {
            if t.user != *user || keep == Some(family.as_str()) {
                return true;
            }
            if t.info.expires_at > now {
                live += 1;
            }
            false
        });
        Ok(Some(live))
    }
}

use crate::clock::unix_micros as micros;

/// One user's combined cut-offs: what [`RevocationStore::revoke_user`] keeps, in the same way in
/// memory, in SQL and in a mirror, so that all of them agree whatever order cut-offs arrive in.
///
/// It holds the latest cut-off (`top`) with its exempt session (`keep`), and `all`: the latest
/// instant up to which every session is revoked (from the cut-offs that did not exempt `keep`).
/// A token is revoked when it was issued at or before `all`, or at or before `top` in a session
/// other than `keep`.
///
/// ```
/// use auth_core::Cutoff;
/// // A password change at t=20 keeping session "x", and a logout everywhere at t=10 arriving
/// // late: x's tokens from before 10 end, its later ones stay.
/// let mut c = Cutoff::new(20, Some("x"));
/// c.join(10, None);
/// assert!(c.revokes(9, Some("x")));
/// assert!(!c.revokes(15, Some("x")));
/// assert!(c.revokes(15, Some("y")));
/// // The same two in the other order give the same answers.
/// let mut d = Cutoff::new(10, None);
/// d.join(20, Some("x"));
/// assert_eq!(c, d);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cutoff {
    /// Every session issued at or before this instant (Unix microseconds) is revoked.
    pub all: i64,
    /// The latest cut-off, Unix microseconds.
    pub top: i64,
    /// The session `top` spares.
    pub keep: Option<String>,
}

impl Cutoff {
    /// One cut-off.
    ///
    /// ```
    /// let c = auth_core::Cutoff::new(5, None);
    /// assert!(c.revokes(5, None) && !c.revokes(6, None));
    /// ```
    #[must_use]
    pub fn new(not_before_us: i64, keep: Option<&str>) -> Self {
        Self {
            all: i64::MIN,
            top: not_before_us,
            keep: keep.map(str::to_owned),
        }
    }

    /// Combines another cut-off with this one.
    ///
    /// ```
    /// let mut c = auth_core::Cutoff::new(20, Some("x"));
    /// c.join(20, None); // the same instant without the exemption ends it
    /// assert!(c.revokes(15, Some("x")));
    /// ```
    pub fn join(&mut self, not_before_us: i64, keep: Option<&str>) {
        if self.keep.as_deref() != keep {
            // The cut-off that does not spare the held session revokes it up to its instant
            // (or up to the held one's, when it is the later and takes over the exemption).
            self.all = self.all.max(self.top.min(not_before_us));
        }
        if not_before_us > self.top {
            self.top = not_before_us;
            self.keep = keep.map(str::to_owned);
        }
    }

    /// Whether a token issued at `issued_at_us` in `family` is revoked.
    ///
    /// ```
    /// let c = auth_core::Cutoff::new(10, Some("x"));
    /// assert!(!c.revokes(5, Some("x")));
    /// assert!(c.revokes(5, Some("y")));
    /// ```
    #[must_use]
    pub fn revokes(&self, issued_at_us: i64, family: Option<&str>) -> bool {
        issued_at_us <= self.all
            || (issued_at_us <= self.top && (self.keep.is_none() || self.keep.as_deref() != family))
    }

    /// The changes that rebuild this cut-off when applied to an empty one, for a mirror
    /// loading a store's state.
    ///
    /// ```
    /// use auth_core::{Cutoff, UserId};
    /// let mut c = Cutoff::new(20, Some("x"));
    /// c.join(10, None);
    /// let until = time::OffsetDateTime::UNIX_EPOCH;
    /// assert_eq!(c.to_changes(&UserId::new("1"), until).len(), 2);
    /// ```
    #[must_use]
    pub fn to_changes(&self, user: &UserId, until: OffsetDateTime) -> Vec<Change> {
        let change = |nb: i64, keep: Option<String>| Change::UserCutoff {
            user: user.clone(),
            not_before_us: nb,
            keep,
            until,
        };
        let mut out = vec![change(self.top, self.keep.clone())];
        if self.keep.is_some() && self.all > i64::MIN {
            out.push(change(self.all, None));
        }
        out
    }
}
