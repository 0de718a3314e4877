use async_trait::async_trait;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::*;

/// The bookkeeping of a feed: its subscribers, whether it is live, what it delivered. A feed
/// implementation calls [`deliver`](Self::deliver) with what arrives, [`down`](Self::down)
/// when it may miss changes and [`up`](Self::up) when it delivers again.
///
/// ```
/// use auth_service::ChangeHub;
/// let hub = ChangeHub::new("log-poll", false);
/// assert!(!hub.status().live);
/// hub.up();
/// assert!(hub.status().live);
/// hub.down("poll failed");
/// assert_eq!(hub.status().detail.as_deref(), Some("poll failed"));
/// ```
pub struct ChangeHub {
    channel: &'static str,
    subscribers: RwLock<Vec<Arc<dyn ChangeSubscriber>>>,
    live: AtomicBool,
    detail: Mutex<Option<String>>,
    delivered: AtomicU64,
}

impl ChangeHub {
    /// A hub for a feed carried by `channel`, live or not at first.
    ///
    /// ```
    /// assert!(auth_service::ChangeHub::new("in-process", true).status().live);
    /// ```
    #[must_use]
    pub fn new(channel: &'static str, live: bool) -> Self {
        Self {
            channel,
            subscribers: RwLock::default(),
            live: AtomicBool::new(live),
            detail: Mutex::new((!live).then(|| "starting".to_owned())),
            delivered: AtomicU64::new(0),
        }
    }

    fn subscribers(&self) -> Vec<Arc<dyn ChangeSubscriber>> {
        self.subscribers
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Adds a subscriber.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use auth_service::{Change, ChangeHub, ChangeSubscriber};
    /// # struct Nothing;
    /// # impl ChangeSubscriber for Nothing { fn apply(&self, _: &[Change]) {} fn suspend(&self) {} fn resume(&self) {} }
    /// ChangeHub::new("in-process", true).subscribe(Arc::new(Nothing));
    /// ```
    pub fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>) {
        if let Ok(mut s) = self.subscribers.write() {
            s.retain(|s| !s.is_closed());
            s.push(subscriber);
        }
    }

    /// Hands changes to every subscriber.
    ///
    /// ```
    /// # use auth_service::{Change, ChangeHub, UserId};
    /// let hub = ChangeHub::new("in-process", true);
    /// hub.deliver(&[Change::UserChanged { user: UserId::new("1") }]);
    /// assert_eq!(hub.status().delivered, 1);
    /// ```
    pub fn deliver(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        for s in self.subscribers() {
            s.apply(changes);
        }
        self.delivered
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
    }

    /// The feed may miss changes: subscribers fall back to the store. Logged once per outage.
    ///
    /// ```
    /// # use auth_service::ChangeHub;
    /// let hub = ChangeHub::new("postgres-notify", true);
    /// hub.down("connection lost");
    /// assert!(!hub.status().live);
    /// ```
    pub fn down(&self, why: impl fmt::Display) {
        let why = why.to_string();
        let was_live = self.live.swap(false, Ordering::SeqCst);
        if let Ok(mut d) = self.detail.lock() {
            *d = Some(why.clone());
        }
        if was_live {
            tracing::warn!(
                channel = self.channel,
                reason = %why,
                "change feed down: revocation checks and user loads query the database until it is back"
            );
        }
        // Always suspend: a subscriber may have resumed from an earlier `up` meanwhile.
        for s in self.subscribers() {
            s.suspend();
        }
    }

    /// The feed delivers again: subscribers reload and trust their state.
    ///
    /// ```
    /// # use auth_service::ChangeHub;
    /// let hub = ChangeHub::new("log-poll", false);
    /// hub.up();
    /// assert!(hub.status().detail.is_none());
    /// ```
    pub fn up(&self) {
        if self.live.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut d) = self.detail.lock() {
            *d = None;
        }
        tracing::info!(channel = self.channel, "change feed live");
        for s in self.subscribers() {
            s.resume();
        }
    }

    /// Whether the feed is live.
    ///
    /// ```
    /// assert!(!auth_service::ChangeHub::new("log-poll", false).is_live());
    /// ```
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// The feed's health.
    ///
    /// ```
    /// assert_eq!(auth_service::ChangeHub::new("log-poll", true).status().delivered, 0);
    /// ```
    #[must_use]
    pub fn status(&self) -> FeedStatus {
        FeedStatus::new(
            self.channel,
            self.is_live(),
            self.detail.lock().ok().and_then(|d| d.clone()),
            self.delivered.load(Ordering::Relaxed),
        )
    }
}

impl fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeHub")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

/// The in-process feed: publishing hands the changes to this process's subscribers at once.
/// Right for one process per store (the memory stores, an SQLite file served by one process);
/// several instances need a feed that crosses processes.
///
/// ```
/// use auth_service::{ChangeFeed, LocalFeed};
/// let feed = LocalFeed::new();
/// assert!(feed.status().live);
/// ```
#[derive(Clone, Debug)]
pub struct LocalFeed {
    hub: Arc<ChangeHub>,
}

impl LocalFeed {
    /// A live in-process feed.
    ///
    /// ```
    /// let _ = auth_service::LocalFeed::new();
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            hub: Arc::new(ChangeHub::new("in-process", true)),
        }
    }

    /// The hub, for tests that simulate an outage (`hub().down(..)`, `hub().up()`).
    ///
    /// ```
    /// # use auth_service::{ChangeFeed, LocalFeed};
    /// let feed = LocalFeed::new();
    /// feed.hub().down("simulated outage");
    /// assert!(!feed.status().live);
    /// ```
    #[must_use]
    pub fn hub(&self) -> &ChangeHub {
        &self.hub
    }
}

impl Default for LocalFeed {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ChangeFeed for LocalFeed {
    async fn publish(&self, changes: &[Change]) -> Result<()> {
        self.hub.deliver(changes);
        Ok(())
    }

    fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>) {
        self.hub.subscribe(subscriber);
    }

    fn status(&self) -> FeedStatus {
        self.hub.status()
    }
}

/// How long a subscriber keeps vouching for its memory after its feed went down
/// ([`RevocationMirror::with_outage_grace`](crate::RevocationMirror::with_outage_grace),
/// [`UserCache::with_outage_grace`](crate::UserCache::with_outage_grace)): the feed may miss
/// changes made on other instances, so the bound is how late such a change may be honoured here.
#[derive(Debug, Default)]
pub(crate) struct Grace {
    period: std::time::Duration,
    /// The end of the current outage's grace, while it runs.
    until: Mutex<Option<tokio::time::Instant>>,
}

/// What a subscriber does when its feed goes down ([`Grace::begin`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OnDown {
    /// Stop answering from memory now.
    Suspend,
    /// Keep answering: the grace already runs.
    Keep,
    /// Keep answering until this instant, then call [`Grace::expired`] with it.
    Until(tokio::time::Instant),
}

impl Grace {
    pub(crate) fn new(period: std::time::Duration) -> Self {
        Self {
            period,
            until: Mutex::default(),
        }
    }

    pub(crate) fn period(&self) -> std::time::Duration {
        self.period
    }

    /// The feed went down (feeds say so again on every failed attempt). `vouching`: the
    /// subscriber holds a complete state it may answer from.
    pub(crate) fn begin(&self, vouching: bool) -> OnDown {
        let Ok(mut until) = self.until.lock() else {
            return OnDown::Suspend;
        };
        if self.period.is_zero() || !vouching || tokio::runtime::Handle::try_current().is_err() {
            *until = None;
            return OnDown::Suspend;
        }
        let now = tokio::time::Instant::now();
        match *until {
            None => {
                let end = now + self.period;
                *until = Some(end);
                OnDown::Until(end)
            }
            Some(end) if now >= end => {
                *until = None;
                OnDown::Suspend
            }
            Some(_) => OnDown::Keep,
        }
    }

    /// The grace that ends at `end` is over: whether the subscriber must suspend now (the feed
    /// did not come back meanwhile).
    pub(crate) fn expired(&self, end: tokio::time::Instant) -> bool {
        let Ok(mut until) = self.until.lock() else {
            return true;
        };
        if *until == Some(end) {
            *until = None;
            true
        } else {
            false
        }
    }

    /// The feed is back: no grace runs.
    pub(crate) fn end(&self) {
        if let Ok(mut until) = self.until.lock() {
            *until = None;
        }
    }

    /// Whether a grace runs now.
    pub(crate) fn running(&self) -> bool {
        self.until.lock().is_ok_and(|u| u.is_some())
    }
}
