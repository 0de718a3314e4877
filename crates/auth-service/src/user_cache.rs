//! `UserCache`: the users `authenticate` loads, kept in memory and invalidated by the change
//! feed, so an authenticated request costs no user query.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::Result;
use crate::hub::{Grace, OnDown};
use crate::{AuthUser, NewUser, UserId, UserStore};
use crate::{Change, ChangeFeed, ChangeSubscriber};
use crate::{SharedClock, SystemClock};

/// What a [`UserCache`] holds and how often it answered.
///
/// ```
/// use auth_service::{LocalFeed, User, UserCache};
/// let cache = UserCache::<User>::new(LocalFeed::new());
/// let status = cache.status();
/// assert!(status.live);
/// assert_eq!((status.entries, status.hits, status.misses), (0, 0, 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserCacheStatus {
    /// Whether the cache answers (its feed is live).
    pub live: bool,
    /// Users held.
    pub entries: usize,
    /// Most users held.
    pub capacity: usize,
    /// Loads answered from memory.
    pub hits: u64,
    /// Loads that went to the store.
    pub misses: u64,
}

struct Entry<U> {
    user: U,
    /// Unix milliseconds after which the entry is not used.
    fresh_until: i64,
}

#[derive(Default)]
struct Slots<U> {
    map: HashMap<UserId, Entry<U>>,
    /// Insertion order, for eviction (first in, first out); may hold ids already removed.
    order: VecDeque<UserId>,
}

struct Inner<U> {
    feed: Arc<dyn ChangeFeed>,
    clock: SharedClock,
    capacity: usize,
    max_age_ms: i64,
    /// How long memory still answers after the feed went down.
    grace: Grace,
    slots: Mutex<Slots<U>>,
    /// Bumped by every invalidation: a load that started before one is not cached.
    epoch: AtomicU64,
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A bounded cache of users for [`AuthService::authenticate`](crate::AuthService::authenticate)
/// and refresh, kept exact by a [`ChangeFeed`]: every change to a user through the service
/// (deactivation, password, email, verification, profile, login) invalidates it here and, through
/// the feed, on every other instance. Set it with
/// [`AuthService::with_user_cache`](crate::AuthService::with_user_cache).
///
/// - While the feed is down (past the outage grace, [`with_outage_grace`](Self::with_outage_grace),
///   default 0) the cache answers nothing (every load queries the store); when it is back the
///   cache starts empty.
/// - Entries older than `max_age` (default 60 s) are not used: the bound on staleness for a
///   change made behind the service's back (SQL by hand).
/// - A load that raced an invalidation is not cached, so a stale user is never put back.
/// - Flows that check a credential (login, password change) always read the store.
///
/// ```
/// use auth_service::{AuthConfig, AuthService, LocalFeed, MemoryTokenBackend, MemoryUserStore, UserCache};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let feed = LocalFeed::new();
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
///     .with_user_cache(UserCache::new(feed.clone()));
/// let user = auth.register("cy@example.com", "violet-otter-sings-42").await?;
/// let login = auth.login("cy@example.com", "violet-otter-sings-42").await?;
/// auth.authenticate(login.access_token()).await?; // loads and caches
/// auth.authenticate(login.access_token()).await?; // from memory
/// auth.set_active(&user.id, false).await?;         // invalidated everywhere
/// assert!(auth.authenticate(login.access_token()).await.is_err());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
pub struct UserCache<U: AuthUser> {
    inner: Arc<Inner<U>>,
}

impl<U: AuthUser> Clone for UserCache<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<U: AuthUser> fmt::Debug for UserCache<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCache")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> UserCache<U> {
    /// A cache of 10,000 users for at most 60 s each, invalidated through `feed`.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, User, UserCache};
    /// let cache = UserCache::<User>::new(LocalFeed::new());
    /// assert_eq!(cache.status().capacity, 10_000);
    /// ```
    #[must_use]
    pub fn new(feed: impl ChangeFeed) -> Self {
        Self::from_arc(Arc::new(feed))
    }

    /// Like [`new`](Self::new), with a shared feed.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use auth_service::{ChangeFeed, LocalFeed, User, UserCache};
    /// let feed: Arc<dyn ChangeFeed> = Arc::new(LocalFeed::new());
    /// let cache = UserCache::<User>::from_arc(feed);
    /// # let _ = cache;
    /// ```
    #[must_use]
    pub fn from_arc(feed: Arc<dyn ChangeFeed>) -> Self {
        Self::build(feed, Arc::new(SystemClock), 10_000, 60_000, Duration::ZERO)
    }

    fn build(
        feed: Arc<dyn ChangeFeed>,
        clock: SharedClock,
        capacity: usize,
        max_age_ms: i64,
        grace: Duration,
    ) -> Self {
        let live = feed.status().live;
        let inner = Arc::new(Inner {
            feed,
            clock,
            capacity,
            max_age_ms,
            grace: Grace::new(grace),
            slots: Mutex::new(Slots {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        let subscriber: Arc<dyn ChangeSubscriber> = Arc::new(Subscriber(Arc::downgrade(&inner)));
        inner.feed.subscribe(subscriber);
        Self { inner }
    }

    fn rebuild(self, clock: SharedClock, capacity: usize, max_age_ms: i64) -> Self {
        let grace = self.inner.grace.period();
        Self::build(
            Arc::clone(&self.inner.feed),
            clock,
            capacity,
            max_age_ms,
            grace,
        )
    }

    /// Keeps answering from memory for `grace` after the feed went down (default 0: every
    /// load queries the store at once), so authenticated requests keep working while the
    /// database cannot be reached. A change made meanwhile on another instance, which the feed
    /// could not deliver, is seen here up to `grace` late (and never later than `max_age`
    /// after the entry was loaded). Pair it with
    /// [`RevocationMirror::with_outage_grace`](crate::RevocationMirror::with_outage_grace).
    ///
    /// ```
    /// # use auth_service::{LocalFeed, User, UserCache};
    /// let cache = UserCache::<User>::new(LocalFeed::new())
    ///     .with_outage_grace(std::time::Duration::from_secs(30));
    /// assert_eq!(cache.outage_grace(), std::time::Duration::from_secs(30));
    /// ```
    #[must_use]
    pub fn with_outage_grace(self, grace: Duration) -> Self {
        let inner = &self.inner;
        let (feed, clock) = (Arc::clone(&inner.feed), Arc::clone(&inner.clock));
        let (capacity, age) = (inner.capacity, inner.max_age_ms);
        Self::build(feed, clock, capacity, age, grace)
    }

    /// How long memory still answers after the feed went down.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, User, UserCache};
    /// assert!(UserCache::<User>::new(LocalFeed::new()).outage_grace().is_zero());
    /// ```
    #[must_use]
    pub fn outage_grace(&self) -> Duration {
        self.inner.grace.period()
    }

    /// Holds at most `capacity` users (the oldest leave first).
    ///
    /// ```
    /// # use auth_service::{LocalFeed, User, UserCache};
    /// assert_eq!(UserCache::<User>::new(LocalFeed::new()).with_capacity(500).status().capacity, 500);
    /// ```
    #[must_use]
    pub fn with_capacity(self, capacity: usize) -> Self {
        let (clock, age) = (Arc::clone(&self.inner.clock), self.inner.max_age_ms);
        self.rebuild(clock, capacity.max(1), age)
    }

    /// Uses an entry for at most `max_age`.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, User, UserCache};
    /// let _ = UserCache::<User>::new(LocalFeed::new()).with_max_age(std::time::Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn with_max_age(self, max_age: Duration) -> Self {
        let (clock, capacity) = (Arc::clone(&self.inner.clock), self.inner.capacity);
        let ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        self.rebuild(clock, capacity, ms)
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use auth_service::{FixedClock, LocalFeed, User, UserCache};
    /// let _ = UserCache::<User>::new(LocalFeed::new()).with_clock(FixedClock::from_unix(0));
    /// ```
    #[must_use]
    pub fn with_clock(self, clock: impl crate::Clock) -> Self {
        let (capacity, age) = (self.inner.capacity, self.inner.max_age_ms);
        self.rebuild(Arc::new(clock), capacity, age)
    }

    /// Size, hits and misses.
    ///
    /// ```
    /// # use auth_service::{LocalFeed, User, UserCache};
    /// assert_eq!(UserCache::<User>::new(LocalFeed::new()).status().entries, 0);
    /// ```
    #[must_use]
    pub fn status(&self) -> UserCacheStatus {
        UserCacheStatus {
            live: self.inner.live.load(Ordering::Acquire),
            entries: self.inner.slots.lock().map_or(0, |s| s.map.len()),
            capacity: self.inner.capacity,
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.inner.clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
    }

    /// The user `id` from memory, or from `store` (then remembered).
    pub(crate) async fn load(
        &self,
        store: &dyn UserStore<User = U>,
        id: &UserId,
    ) -> Result<Option<U>> {
        let inner = &self.inner;
        let live = inner.live.load(Ordering::Acquire);
        if live {
            let now = self.now_ms();
            if let Ok(slots) = inner.slots.lock()
                && let Some(e) = slots.map.get(id)
                && e.fresh_until > now
            {
                inner.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(e.user.clone()));
            }
        }
        inner.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = inner.epoch.load(Ordering::Acquire);
        let user = store.find_by_id(id).await?;
        if let Some(user) = &user
            && live
        {
            self.remember(user.clone(), epoch);
        }
        Ok(user)
    }

    fn remember(&self, user: U, epoch: u64) {
        let inner = &self.inner;
        let fresh_until = self.now_ms().saturating_add(inner.max_age_ms);
        let Ok(mut slots) = inner.slots.lock() else {
            return;
        };
        // Checked under the lock that invalidation takes: no invalidation can slip between.
        if inner.epoch.load(Ordering::Acquire) != epoch || !inner.live.load(Ordering::Acquire) {
            return;
        }
        let id = user.id().clone();
        if slots
            .map
            .insert(id.clone(), Entry { user, fresh_until })
            .is_none()
        {
            slots.order.push_back(id);
        }
        while slots.map.len() > inner.capacity {
            match slots.order.pop_front() {
                Some(old) => {
                    slots.map.remove(&old);
                }
                None => break,
            }
        }
        if slots.order.len() > inner.capacity.saturating_mul(2) {
            // Ids removed by invalidation linger in the queue; drop them now and then.
            let Slots { map, order } = &mut *slots;
            order.retain(|id| map.contains_key(id));
        }
    }

    fn invalidate(&self, id: &UserId) {
        self.inner.invalidate(id);
    }

    /// Forgets `id` here, then tells every instance.
    async fn changed(&self, id: &UserId) -> Result<()> {
        self.invalidate(id);
        self.inner
            .feed
            .publish(&[Change::UserChanged { user: id.clone() }])
            .await
    }
}

impl<U> Inner<U> {
    fn invalidate(&self, id: &UserId) {
        if let Ok(mut slots) = self.slots.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            slots.map.remove(id);
        }
    }

    fn suspend(&self) {
        self.live.store(false, Ordering::Release);
        self.clear();
    }

    fn clear(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            slots.map.clear();
            slots.order.clear();
        }
    }
}

struct Subscriber<U>(Weak<Inner<U>>);

impl<U: AuthUser> ChangeSubscriber for Subscriber<U> {
    fn apply(&self, changes: &[Change]) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        for c in changes {
            if let Change::UserChanged { user } = c {
                inner.invalidate(user);
            }
        }
    }

    fn suspend(&self) {
        let Some(inner) = self.0.upgrade() else {
            return;
        };
        match inner.grace.begin(inner.live.load(Ordering::Acquire)) {
            OnDown::Suspend => inner.suspend(),
            OnDown::Keep => {}
            OnDown::Until(end) => {
                let this = Weak::clone(&self.0);
                tokio::spawn(async move {
                    tokio::time::sleep_until(end).await;
                    if let Some(inner) = this.upgrade()
                        && inner.grace.expired(end)
                    {
                        inner.suspend();
                    }
                });
            }
        }
    }

    fn resume(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.grace.end();
            inner.clear();
            inner.live.store(true, Ordering::Release);
        }
    }

    fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// The service's user store once a cache is set: reads pass through, every write invalidates
/// the user here and on every instance.
pub(crate) struct CachingUserStore<U: AuthUser> {
    pub(crate) inner: Arc<dyn UserStore<User = U>>,
    pub(crate) cache: UserCache<U>,
}

#[async_trait]
impl<U: AuthUser> UserStore for CachingUserStore<U> {
    type User = U;

    async fn find_by_email(&self, email: &str) -> Result<Option<U>> {
        self.inner.find_by_email(email).await
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<U>> {
        self.inner.find_by_id(id).await
    }

    async fn create(&self, user: NewUser) -> Result<U> {
        // A new id is in no cache.
        self.inner.create(user).await
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<()> {
        self.inner.set_password_hash(id, hash).await?;
        self.cache.changed(id).await
    }

    async fn replace_password_hash(
        &self,
        id: &UserId,
        expected: Option<&str>,
        new_hash: &str,
    ) -> Result<bool> {
        let replaced = self
            .inner
            .replace_password_hash(id, expected, new_hash)
            .await?;
        if replaced {
            self.cache.changed(id).await?;
        }
        Ok(replaced)
    }

    async fn record_login(&self, id: &UserId, at: OffsetDateTime) -> Result<()> {
        self.inner.record_login(id, at).await?;
        // Only the last-login instant changed: a missed announcement leaves it stale for at
        // most the cache's max age, so it does not fail the login.
        if let Err(e) = self.cache.changed(id).await {
            tracing::warn!(error = %e, "announcing a login to other instances failed");
        }
        Ok(())
    }

    async fn set_active(&self, id: &UserId, active: bool) -> Result<()> {
        self.inner.set_active(id, active).await?;
        self.cache.changed(id).await
    }

    async fn set_verified(&self, id: &UserId, verified: bool) -> Result<()> {
        self.inner.set_verified(id, verified).await?;
        self.cache.changed(id).await
    }

    async fn update_profile(
        &self,
        id: &UserId,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        self.inner.update_profile(id, values).await?;
        self.cache.changed(id).await
    }

    async fn list(&self, query: &crate::UserQuery) -> Result<Vec<U>> {
        self.inner.list(query).await
    }

    async fn delete(&self, id: &UserId) -> Result<bool> {
        let deleted = self.inner.delete(id).await?;
        self.cache.changed(id).await?;
        Ok(deleted)
    }

    async fn replace_email(&self, id: &UserId, expected: &str, new_email: &str) -> Result<bool> {
        let replaced = self.inner.replace_email(id, expected, new_email).await?;
        if replaced {
            self.cache.changed(id).await?;
        }
        Ok(replaced)
    }
}
