//! `RevocationMirror`: the live revocations in memory, kept exact by a change feed, so checking
//! a token costs no I/O.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::Result;
use crate::UserId;
use crate::hub::{Grace, OnDown};
use crate::{Change, ChangeFeed, ChangeSubscriber, FeedStatus};
use crate::{Consumption, Cutoff, RevocationQuery, RevocationStore};
use crate::{SessionInfo, SessionMeta};
use crate::{SharedClock, SystemClock};

/// How often expired entries are swept out of memory, at most.
const SWEEP_EVERY_SECS: i64 = 30;

/// After an overflow, the first retry of a load; it doubles up to [`OVERFLOW_RETRY_MAX`].
/// The default most entries a mirror holds: see [`RevocationMirror::with_max_entries`].
const DEFAULT_MAX_ENTRIES: usize = 12_000_000;

const OVERFLOW_RETRY: Duration = Duration::from_secs(60);
const OVERFLOW_RETRY_MAX: Duration = Duration::from_secs(900);

/// A token id or family as the mirror holds it: 128 bits of two keyed SipHash digests, so an
/// entry costs 24 bytes in its table whatever the id's length (the table's own overhead comes
/// to about 30–60 bytes an entry in all). The keys are random per mirror; a collision, which
/// would refuse one valid token, has a chance of about n / 2^128 per check.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digest([u64; 2]);

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already uniformly random: the table's hash is its first half.
        state.write_u64(self.0[0]);
    }
}

/// Hashes a [`Digest`] to itself.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type DigestMap = HashMap<Digest, i64, std::hash::BuildHasherDefault<PassThrough>>;

/// The two random keys of a mirror's digests.
struct Keys(std::hash::RandomState, std::hash::RandomState);

impl Keys {
    fn new() -> Self {
        Self(std::hash::RandomState::new(), std::hash::RandomState::new())
    }

    fn digest(&self, id: &str) -> Digest {
        use std::hash::BuildHasher as _;
        Digest([self.0.hash_one(id), self.1.hash_one(id)])
    }
}

struct Mirrored {
    keys: Keys,
    /// Revoked (not consumed) token ids -> expiry, Unix seconds.
    jtis: DigestMap,
    /// Revoked families -> expiry.
    families: DigestMap,
    /// Per-user cut-offs, combined as the stores combine them, and their expiry.
    users: HashMap<UserId, (Cutoff, i64)>,
    /// More live revocations than the mirror may hold: it holds none, merges none, and the
    /// store answers every check until a load fits again.
    overflowed: bool,
    /// Tokens issued before this instant (Unix µs) are revoked: the store's
    /// [`RevocationStore::revoked_before`], read with every load.
    floor_us: i64,
    next_sweep: i64,
}

impl Default for Mirrored {
    fn default() -> Self {
        Self {
            keys: Keys::new(),
            jtis: DigestMap::default(),
            families: DigestMap::default(),
            users: HashMap::new(),
            overflowed: false,
            floor_us: i64::MIN,
            next_sweep: 0,
        }
    }
}

impl Mirrored {
    fn len(&self) -> usize {
        self.jtis.len() + self.families.len() + self.users.len()
    }

    fn merge(&mut self, change: &Change) {
        if self.overflowed {
            return;
        }
        let extend = |map: &mut DigestMap, key: Digest, until: i64| {
            let e = map.entry(key).or_insert(until);
            *e = (*e).max(until);
        };
        match change {
            Change::TokenRevoked { jti, until } => {
                let key = self.keys.digest(jti);
                extend(&mut self.jtis, key, until.unix_timestamp());
            }
            Change::FamilyRevoked { family, until } => {
                let key = self.keys.digest(family);
                extend(&mut self.families, key, until.unix_timestamp());
            }
            Change::UserCutoff {
                user,
                not_before_us,
                keep,
                until,
            } => {
                let until = until.unix_timestamp();
                match self.users.get_mut(user) {
                    None => {
                        self.users.insert(
                            user.clone(),
                            (Cutoff::new(*not_before_us, keep.as_deref()), until),
                        );
                    }
                    Some((cutoff, held)) => {
                        cutoff.join(*not_before_us, keep.as_deref());
                        *held = (*held).max(until);
                    }
                }
            }
            Change::UserChanged { .. } | Change::SigningKeysChanged { .. } => {}
        }
    }

    /// Forgets everything and merges nothing more until [`restart`](Self::restart).
    fn overflow(&mut self) {
        self.overflowed = true;
        self.jtis = DigestMap::default();
        self.families = DigestMap::default();
        self.users = HashMap::new();
    }

    /// Merges again, from empty, for a new load.
    fn restart(&mut self) {
        self.overflow();
        self.overflowed = false;
    }

    fn sweep(&mut self, now: i64) {
        self.jtis.retain(|_, until| *until > now);
        self.families.retain(|_, until| *until > now);
        self.users.retain(|_, (_, until)| *until > now);
        self.next_sweep = now.saturating_add(SWEEP_EVERY_SECS);
    }

    fn is_revoked(&self, q: &RevocationQuery) -> bool {
        q.issued_at_us < self.floor_us
            || (!q.jti.is_empty() && self.jtis.contains_key(&self.keys.digest(&q.jti)))
            || q.family
                .as_deref()
                .is_some_and(|f| self.families.contains_key(&self.keys.digest(f)))
            || self
                .users
                .get(&q.user_id)
                .is_some_and(|(cutoff, _)| cutoff.revokes(q.issued_at_us, q.family.as_deref()))
    }
}

/// What a [`RevocationMirror`] holds and how it answers, for `/ready` and metrics.
///
/// ```
/// use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new());
/// mirror.wait_ready(std::time::Duration::from_secs(5)).await;
/// let status = mirror.status();
/// assert!(status.ready);
/// assert_eq!(status.entries, 0);
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStatus {
    /// Whether checks are answered from memory (loaded, feed live, under capacity).
    pub ready: bool,
    /// Entries held: revoked ids, families and per-user cut-offs.
    pub entries: usize,
    /// The most entries it holds before it stops answering from memory.
    pub max_entries: usize,
    /// Checks answered by the store since the start (while loading, while the feed was down,
    /// over capacity, and for consumable ids it does not hold).
    pub store_checks: u64,
    /// The feed's health.
    pub feed: FeedStatus,
    /// The feed is down and memory still answers, for the outage grace
    /// ([`RevocationMirror::with_outage_grace`]).
    pub in_outage_grace: bool,
}

struct Inner {
    store: Arc<dyn RevocationStore>,
    feed: Arc<dyn ChangeFeed>,
    clock: SharedClock,
    user_retention: time::Duration,
    max_entries: usize,
    /// How long memory still answers after the feed went down.
    grace: Grace,
    state: RwLock<Mirrored>,
    /// Loaded since the feed last (re)started and the feed is live.
    ready: AtomicBool,
    /// More entries than `max_entries`: answer from the store until a sweep makes room.
    over_capacity: AtomicBool,
    /// Bumped by every suspend and resume, so a load that an outage overtook is not trusted.
    epoch: AtomicU64,
    store_checks: AtomicU64,
    ready_tx: tokio::sync::watch::Sender<bool>,
    this: Weak<Inner>,
}

/// A [`RevocationStore`] that answers from memory: it wraps the store that holds the truth
/// (SQL, Redis) and a [`ChangeFeed`] that tells every instance of every revocation.
///
/// - **Checks** (`is_revoked`) read a map under a read lock: no I/O. An id that may have been
///   consumed (a refresh token, [`RevocationQuery::consumable`]) and is not held is asked of the
///   store, since consumed ids are not mirrored (they live as long as refresh tokens).
/// - **Writes** go to the store first, then into memory, then to the feed, which delivers them
///   to the other instances' mirrors.
/// - **Fail closed.** Until it has loaded the store's live revocations, while its feed is down
///   (it may have missed a revocation) past the outage grace
///   ([`with_outage_grace`](Self::with_outage_grace), default 0), and above `max_entries`,
///   every check asks the store.
///   When the feed is back the mirror reloads, then answers from memory again. `/ready` can
///   show [`status`](Self::status).
/// - **Bounded.** Entries leave memory when what they revoke has expired (swept at most every
///   30 s); [`status`](Self::status) reports the count.
///
/// Give it the same per-user retention as the store
/// ([`with_user_retention`](Self::with_user_retention)).
///
/// ```
/// use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror, RevocationQuery, RevocationStore, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new());
/// mirror.wait_ready(std::time::Duration::from_secs(5)).await;
/// let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(15);
/// mirror.revoke("access-1", later).await?;
/// let q = RevocationQuery::new("access-1", UserId::new("7"), 0).with_consumable(false);
/// assert!(mirror.is_revoked(&q).await?);
/// assert_eq!(mirror.status().store_checks, 0, "answered from memory");
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct RevocationMirror {
    inner: Arc<Inner>,
}

impl RevocationMirror {
    /// A mirror of `store` kept by `feed`. It subscribes at once and, if the feed is live,
    /// loads the store's live revocations in the background (a Tokio runtime must be running
    /// for that); until then checks ask the store.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new());
    /// # let _ = mirror;
    /// # });
    /// ```
    #[must_use]
    pub fn new(store: impl RevocationStore, feed: impl ChangeFeed) -> Self {
        Self::from_arcs(Arc::new(store), Arc::new(feed))
    }

    /// Like [`new`](Self::new), from shared parts.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use auth_service::{ChangeFeed, LocalFeed, MemoryRevocationStore, RevocationMirror, RevocationStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let feed: Arc<dyn ChangeFeed> = Arc::new(LocalFeed::new());
    /// let store: Arc<dyn RevocationStore> = Arc::new(MemoryRevocationStore::new());
    /// let mirror = RevocationMirror::from_arcs(store, Arc::clone(&feed));
    /// # let _ = mirror;
    /// # });
    /// ```
    #[must_use]
    pub fn from_arcs(store: Arc<dyn RevocationStore>, feed: Arc<dyn ChangeFeed>) -> Self {
        Self::build(
            store,
            feed,
            Arc::new(SystemClock),
            time::Duration::days(31),
            DEFAULT_MAX_ENTRIES,
            Duration::ZERO,
        )
    }

    fn build(
        store: Arc<dyn RevocationStore>,
        feed: Arc<dyn ChangeFeed>,
        clock: SharedClock,
        user_retention: time::Duration,
        max_entries: usize,
        grace: Duration,
    ) -> Self {
        let inner = Arc::new_cyclic(|this| Inner {
            store,
            feed,
            clock,
            user_retention,
            max_entries,
            grace: Grace::new(grace),
            state: RwLock::default(),
            ready: AtomicBool::new(false),
            over_capacity: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            store_checks: AtomicU64::new(0),
            ready_tx: tokio::sync::watch::Sender::new(false),
            this: this.clone(),
        });
        inner
            .feed
            .subscribe(Arc::new(Subscriber(Arc::downgrade(&inner))));
        if inner.feed.status().live {
            inner.resume();
        }
        Self { inner }
    }

    fn rebuild(self, f: impl FnOnce(&mut (SharedClock, time::Duration, usize, Duration))) -> Self {
        let mut parts = (
            Arc::clone(&self.inner.clock),
            self.inner.user_retention,
            self.inner.max_entries,
            self.inner.grace.period(),
        );
        f(&mut parts);
        // The first mirror's subscription ends with it (the feed holds it weakly), and its load
        // stops: a chain of options makes one load, not one per option.
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        Self::build(
            Arc::clone(&self.inner.store),
            Arc::clone(&self.inner.feed),
            parts.0,
            parts.1,
            parts.2,
            parts.3,
        )
    }

    /// Reads time from `clock` (for cut-off expiry and sweeps).
    ///
    /// ```
    /// # use auth_service::{FixedClock, LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new())
    ///     .with_clock(FixedClock::from_unix(1_700_000_000));
    /// # let _ = mirror;
    /// # });
    /// ```
    #[must_use]
    pub fn with_clock(self, clock: impl crate::Clock) -> Self {
        self.rebuild(|p| p.0 = Arc::new(clock))
    }

    /// How long per-user cut-offs are kept: the same as the store's (default 31 days).
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new())
    ///     .with_user_retention(std::time::Duration::from_secs(8 * 86_400));
    /// # let _ = mirror;
    /// # });
    /// ```
    #[must_use]
    pub fn with_user_retention(self, retention: Duration) -> Self {
        self.rebuild(|p| p.1 = time::Duration::try_from(retention).unwrap_or(time::Duration::MAX))
    }

    /// The most entries held in memory (default 12,000,000: at most about 500 MB, each entry a
    /// 16-byte digest and an expiry); above it every check
    /// asks the store until expired entries are swept out.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new())
    ///     .with_max_entries(100_000);
    /// assert_eq!(mirror.status().max_entries, 100_000);
    /// # });
    /// ```
    #[must_use]
    pub fn with_max_entries(self, max: usize) -> Self {
        self.rebuild(|p| p.2 = max.max(1))
    }

    /// Keeps answering checks from memory for `grace` after the feed went down (default 0:
    /// every check asks the store at once). A database or Redis that cannot be reached then
    /// does not stop authenticated requests that memory can answer; the price is that a
    /// revocation made meanwhile on another instance, which the feed could not deliver, is
    /// honoured here up to `grace` late. Past it, or once the feed is back (the mirror then
    /// reloads), the store answers again: fail closed.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new())
    ///     .with_outage_grace(std::time::Duration::from_secs(30));
    /// assert_eq!(mirror.outage_grace(), std::time::Duration::from_secs(30));
    /// # });
    /// ```
    #[must_use]
    pub fn with_outage_grace(self, grace: Duration) -> Self {
        self.rebuild(|p| p.3 = grace)
    }

    /// How long memory still answers after the feed went down
    /// ([`with_outage_grace`](Self::with_outage_grace)).
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new());
    /// assert!(mirror.outage_grace().is_zero());
    /// # });
    /// ```
    #[must_use]
    pub fn outage_grace(&self) -> Duration {
        self.inner.grace.period()
    }

    /// Health and size.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new());
    /// assert_eq!(mirror.status().feed.channel, "in-process");
    /// # });
    /// ```
    #[must_use]
    pub fn status(&self) -> MirrorStatus {
        MirrorStatus {
            ready: self.inner.answers_from_memory(),
            entries: self.inner.state.read().map_or(0, |s| s.len()),
            max_entries: self.inner.max_entries,
            store_checks: self.inner.store_checks.load(Ordering::Relaxed),
            feed: self.inner.feed.status(),
            in_outage_grace: self.inner.grace.running(),
        }
    }

    /// Waits until checks are answered from memory, at most `timeout`; says whether they are.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, MemoryRevocationStore, RevocationMirror};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mirror = RevocationMirror::new(MemoryRevocationStore::new(), LocalFeed::new());
    /// assert!(mirror.wait_ready(std::time::Duration::from_secs(5)).await);
    /// # });
    /// ```
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.ready_tx.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|ready| *ready)).await;
        self.inner.answers_from_memory()
    }
}

impl fmt::Debug for RevocationMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationMirror")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn answers_from_memory(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.over_capacity.load(Ordering::Acquire)
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        self.ready_tx.send_replace(ready);
    }

    fn apply(&self, changes: &[Change]) {
        let now = self.clock.now().unix_timestamp();
        let Ok(mut state) = self.state.write() else {
            return;
        };
        for c in changes {
            state.merge(c);
        }
        if now >= state.next_sweep {
            state.sweep(now);
        }
        if state.len() > self.max_entries {
            self.overflow(&mut state, OVERFLOW_RETRY);
        }
    }

    /// More live revocations than it may hold: forget them all (memory stays bounded), let
    /// the store answer (one indexed lookup a check), and try a load again later.
    fn overflow(&self, state: &mut Mirrored, retry_in: Duration) {
        let entries = state.len();
        state.overflow();
        let was_over = self.over_capacity.swap(true, Ordering::AcqRel);
        self.ready_tx.send_replace(false);
        if !was_over {
            tracing::error!(
                entries,
                max = self.max_entries,
                retry_in_s = retry_in.as_secs(),
                "revocation mirror over capacity: it holds nothing and every check queries the store (one indexed lookup) until a load fits again"
            );
        }
        self.reload_later(retry_in);
    }

    /// A new load after `delay` (a later suspend, resume or load supersedes it).
    fn reload_later(&self, delay: Duration) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let this = Weak::clone(&self.this);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(this) = this.upgrade() {
                    this.reload(epoch, delay).await;
                }
            });
        }
    }

    fn suspend(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.set_ready(false);
    }

    fn resume(&self) {
        self.grace.end();
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        self.set_ready(false);
        // Held weakly until the load begins: a mirror dropped (or superseded by an option)
        // before then never loads.
        let this = Weak::clone(&self.this);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Some(this) = this.upgrade() {
                        this.reload(epoch, Duration::ZERO).await;
                    }
                });
            }
            Err(_) => tracing::warn!(
                "revocation mirror created outside a Tokio runtime: it cannot load, every check queries the store"
            ),
        }
    }

    /// Loads the store's live revocations batch by batch into a fresh state. `waited` is how
    /// long this load waited after an overflow (the next one waits twice as long).
    async fn reload(self: Arc<Self>, epoch: u64, waited: Duration) {
        let mut delay = Duration::from_millis(100);
        loop {
            if self.epoch.load(Ordering::SeqCst) != epoch {
                return;
            }
            // What the store can vouch for: a store that lost revocations refuses what came
            // before (read before the scan, so nothing lost after it goes unnoticed).
            let floor = match self.store.revoked_before().await {
                Ok(floor) => floor,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis(), "loading revocations failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if self.epoch.load(Ordering::SeqCst) != epoch {
                return;
            }
            if let Ok(mut state) = self.state.write() {
                state.restart();
                state.floor_us = floor.unwrap_or(i64::MIN);
            }
            let mut over = false;
            let mut merge = |batch: &[Change]| {
                let Ok(mut state) = self.state.write() else {
                    return false;
                };
                for c in batch {
                    state.merge(c);
                }
                over = state.len() > self.max_entries;
                !over && self.epoch.load(Ordering::SeqCst) == epoch
            };
            match self.store.scan_revocations(&mut merge).await {
                Ok(true) if over => {
                    let retry_in = (waited * 2).clamp(OVERFLOW_RETRY, OVERFLOW_RETRY_MAX);
                    if let Ok(mut state) = self.state.write()
                        && self.epoch.load(Ordering::SeqCst) == epoch
                    {
                        self.overflow(&mut state, retry_in);
                    }
                    return;
                }
                Ok(true) => {
                    let now = self.clock.now().unix_timestamp();
                    let entries = self.state.write().map_or(0, |mut s| {
                        s.sweep(now);
                        s.len()
                    });
                    // Trusted only if no outage (or overflow) overtook the load.
                    if self.epoch.load(Ordering::SeqCst) == epoch {
                        if self.over_capacity.swap(false, Ordering::AcqRel) {
                            tracing::info!(entries, "revocation mirror back under capacity");
                        }
                        self.set_ready(true);
                        tracing::info!(
                            entries,
                            "revocation mirror loaded: checks answered from memory"
                        );
                    }
                    return;
                }
                Ok(false) => {
                    tracing::warn!(
                        "the revocation store cannot list its revocations: every check queries it"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis(), "loading revocations failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn publish(&self, changes: Vec<Change>) -> Result<()> {
        self.apply(&changes);
        self.feed.publish(&changes).await
    }

    /// The paired access token ends whatever the outcome of a consumption: it belongs to the
    /// presented refresh token, which is either rotated now or being reused (its session then
    /// ends). So the announcement need not wait for the write: both go out at once, and a
    /// rotation costs one round trip of latency, not two. Announcing a revocation before it is
    /// stored errs on the safe side.
    async fn announce_paired(&self, jti: &str, until: OffsetDateTime) -> Result<()> {
        self.publish(vec![Change::TokenRevoked {
            jti: jti.to_owned(),
            until,
        }])
        .await
    }

    fn user_until(&self) -> OffsetDateTime {
        crate::add_saturating(
            self.clock.now(),
            Duration::try_from(self.user_retention).unwrap_or_default(),
        )
    }
}

/// The feed holds its subscribers; this one holds the mirror weakly, so dropping the mirror
/// ends it.
struct Subscriber(Weak<Inner>);

impl ChangeSubscriber for Subscriber {
    fn apply(&self, changes: &[Change]) {
        if let Some(inner) = self.0.upgrade() {
            inner.apply(changes);
        }
    }

    fn suspend(&self) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        match inner.grace.begin(inner.answers_from_memory()) {
            OnDown::Suspend => inner.suspend(),
            OnDown::Keep => {}
            OnDown::Until(end) => {
                tracing::warn!(
                    grace_s = inner.grace.period().as_secs_f64(),
                    "change feed down: revocation checks still answered from memory for the outage grace"
                );
                let this = Weak::clone(&self.0);
                tokio::spawn(async move {
                    tokio::time::sleep_until(end).await;
                    if let Some(inner) = this.upgrade()
                        && inner.grace.expired(end)
                    {
                        tracing::warn!(
                            "outage grace over: revocation checks query the store until the feed is back"
                        );
                        inner.suspend();
                    }
                });
            }
        }
    }

    fn resume(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.resume();
        }
    }

    fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

#[async_trait]
impl RevocationStore for RevocationMirror {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        self.inner.store.revoke(jti, expires_at).await?;
        self.inner
            .publish(vec![Change::TokenRevoked {
                jti: jti.to_owned(),
                until: expires_at,
            }])
            .await
    }

    async fn consume(&self, jti: &str, expires_at: OffsetDateTime) -> Result<bool> {
        // Consumed ids stay in the store only: a later check of this id asks it.
        self.inner.store.consume(jti, expires_at).await
    }

    async fn consume_with(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
    ) -> Result<bool> {
        let Some((paired_jti, until)) = paired else {
            return self.inner.store.consume(jti, expires_at).await;
        };
        let (won, published) = tokio::join!(
            self.inner.store.consume_with(jti, expires_at, paired),
            self.inner.announce_paired(paired_jti, until),
        );
        published?;
        won
    }

    async fn consume_at(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
        at: OffsetDateTime,
    ) -> Result<Consumption> {
        let Some((paired_jti, until)) = paired else {
            return self.inner.store.consume_at(jti, expires_at, None, at).await;
        };
        let (outcome, published) = tokio::join!(
            self.inner.store.consume_at(jti, expires_at, paired, at),
            self.inner.announce_paired(paired_jti, until),
        );
        published?;
        outcome
    }

    async fn revoke_family(&self, family: &str, expires_at: OffsetDateTime) -> Result<()> {
        self.inner.store.revoke_family(family, expires_at).await?;
        self.inner
            .publish(vec![Change::FamilyRevoked {
                family: family.to_owned(),
                until: expires_at,
            }])
            .await
    }

    async fn revoke_user(
        &self,
        user_id: &UserId,
        not_before: OffsetDateTime,
        keep: Option<&str>,
    ) -> Result<()> {
        self.inner
            .store
            .revoke_user(user_id, not_before, keep)
            .await?;
        self.inner
            .publish(vec![Change::UserCutoff {
                user: user_id.clone(),
                not_before_us: i64::try_from(not_before.unix_timestamp_nanos() / 1_000)
                    .unwrap_or(i64::MAX),
                keep: keep.map(str::to_owned),
                until: self.inner.user_until(),
            }])
            .await
    }

    async fn is_revoked(&self, query: &RevocationQuery) -> Result<bool> {
        if self.inner.answers_from_memory() {
            let held = self
                .inner
                .state
                .read()
                .map(|s| s.is_revoked(query))
                .unwrap_or(false);
            if held {
                return Ok(true);
            }
            if !query.consumable {
                return Ok(false);
            }
        }
        self.inner.store_checks.fetch_add(1, Ordering::Relaxed);
        self.inner.store.is_revoked(query).await
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let removed = self.inner.store.cleanup_expired().await?;
        let now = self.inner.clock.now().unix_timestamp();
        let overflowed = self.inner.state.write().is_ok_and(|mut s| {
            s.sweep(now);
            s.overflowed
        });
        // The store has just forgotten what expired: the moment to try a load again.
        if overflowed && removed > 0 {
            self.inner.reload_later(Duration::ZERO);
        }
        Ok(removed)
    }

    async fn live_revocations(&self) -> Result<Option<Vec<Change>>> {
        self.inner.store.live_revocations().await
    }

    async fn scan_revocations(
        &self,
        each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
    ) -> Result<bool> {
        self.inner.store.scan_revocations(each).await
    }

    async fn revoked_before(&self) -> Result<Option<i64>> {
        self.inner.store.revoked_before().await
    }

    async fn track_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        self.inner
            .store
            .track_session(user, family, expires_at)
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
        self.inner
            .store
            .start_session(user, family, expires_at, meta, at)
            .await
    }

    async fn touch_session(
        &self,
        family: &str,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        self.inner.store.touch_session(family, meta, at).await
    }

    async fn list_sessions(&self, user: &UserId) -> Result<Option<Vec<SessionInfo>>> {
        self.inner.store.list_sessions(user).await
    }

    async fn end_session(&self, family: &str) -> Result<()> {
        self.inner.store.end_session(family).await
    }

    async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<Option<u64>> {
        self.inner.store.end_sessions(user, keep).await
    }
}
