//! The change feed: how every instance learns of revocations and user changes written by any
//! other, so that checking a token needs no database round trip.
//!
//! The database (or Redis) stays the source of truth. A writer stores a change first, then
//! [`publish`](ChangeFeed::publish)es it; every instance's subscribers (the
//! [`RevocationMirror`](crate::RevocationMirror), the [`UserCache`](crate::UserCache)) apply it.
//! When a feed cannot vouch that nothing was missed (its connection dropped, a poll failed), it
//! says so with [`ChangeSubscriber::suspend`]: subscribers then ask the store on every check
//! (fail closed) until [`resume`](ChangeSubscriber::resume) tells them to reload.
//!
//! [`LocalFeed`] is the in-process feed (one process per store). `auth_tokens_db::DbChangeFeed`
//! speaks PostgreSQL `LISTEN/NOTIFY` or polls an append-only log (MySQL/MariaDB, SQLite); a
//! Redis pub/sub feed implements the same trait.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::user::UserId;

/// One change every instance must learn of.
///
/// ```
/// use auth_core::{Change, UserId};
/// let c = Change::UserChanged { user: UserId::new("7") };
/// assert_eq!(Change::decode(&c.encode()).unwrap(), c);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A token id is revoked until `until`.
    TokenRevoked {
        /// The token id.
        jti: String,
        /// When the entry may be forgotten (the token's expiry).
        until: OffsetDateTime,
    },
    /// Every token of a family (a session) is revoked until `until`.
    FamilyRevoked {
        /// The family id.
        family: String,
        /// When the entry may be forgotten.
        until: OffsetDateTime,
    },
    /// Every token of `user` issued at or before `not_before_us` is revoked, but those of the
    /// `keep` family.
    UserCutoff {
        /// The user.
        user: UserId,
        /// The cut-off, Unix microseconds.
        not_before_us: i64,
        /// The session that stays.
        keep: Option<String>,
        /// When the entry may be forgotten.
        until: OffsetDateTime,
    },
    /// Something about the user changed (active flag, password, email, verification, profile,
    /// last login): cached copies are stale.
    UserChanged {
        /// The user.
        user: UserId,
    },
    /// The signing key set `name` (`jwt`) was replaced (a rotation, an import): instances
    /// that sign or verify with it load it again.
    ///
    /// ```
    /// use auth_core::Change;
    /// let c = Change::SigningKeysChanged { name: "jwt".into() };
    /// assert_eq!(c.encode(), "k jwt");
    /// assert_eq!(Change::decode("k jwt"), Some(c));
    /// ```
    SigningKeysChanged {
        /// Which key set.
        name: String,
    },
}

/// Characters escaped in encoded fields: the separator, the line break and the escape itself.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ' ' => out.push_str("%20"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "20" => ' ',
            "0A" => '\n',
            "0D" => '\r',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

use crate::clock::unix_micros as micros;

fn from_micros(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).ok()
}

impl Change {
    /// One line of text (no line break inside), for channels that carry text: a PostgreSQL
    /// notification, a log row, a Redis message. Expiries keep microseconds.
    ///
    /// ```
    /// use auth_core::Change;
    /// let until = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    /// let c = Change::TokenRevoked { jti: "a b%".into(), until };
    /// assert_eq!(c.encode(), "t 1800000000000000 a%20b%25");
    /// ```
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Self::TokenRevoked { jti, until } => format!("t {} {}", micros(*until), escape(jti)),
            Self::FamilyRevoked { family, until } => {
                format!("f {} {}", micros(*until), escape(family))
            }
            Self::UserCutoff {
                user,
                not_before_us,
                keep,
                until,
            } => format!(
                "u {not_before_us} {} {} {}",
                micros(*until),
                keep.as_deref()
                    .map_or_else(|| "-".to_owned(), |k| format!("+{}", escape(k))),
                escape(user.as_str())
            ),
            Self::UserChanged { user } => format!("c {}", escape(user.as_str())),
            Self::SigningKeysChanged { name } => format!("k {}", escape(name)),
        }
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` for anything else (a newer writer's
    /// change kind, a damaged line), which a feed skips with a warning.
    ///
    /// ```
    /// use auth_core::{Change, UserId};
    /// let c = Change::UserCutoff { user: UserId::new("a b"), not_before_us: 5, keep: Some("fam".into()),
    ///     until: time::OffsetDateTime::from_unix_timestamp(9).unwrap() };
    /// assert_eq!(Change::decode(&c.encode()), Some(c));
    /// assert_eq!(Change::decode("x 1 2"), None);
    /// ```
    #[must_use]
    pub fn decode(line: &str) -> Option<Self> {
        let mut parts = line.split(' ');
        let kind = parts.next()?;
        let change = match kind {
            "t" | "f" => {
                let until = from_micros(parts.next()?.parse().ok()?)?;
                let key = unescape(parts.next()?)?;
                if kind == "t" {
                    Self::TokenRevoked { jti: key, until }
                } else {
                    Self::FamilyRevoked { family: key, until }
                }
            }
            "u" => {
                let not_before_us = parts.next()?.parse().ok()?;
                let until = from_micros(parts.next()?.parse().ok()?)?;
                let keep = match parts.next()? {
                    "-" => None,
                    k => Some(unescape(k.strip_prefix('+')?)?),
                };
                Self::UserCutoff {
                    user: UserId::new(unescape(parts.next()?)?),
                    not_before_us,
                    keep,
                    until,
                }
            }
            "c" => Self::UserChanged {
                user: UserId::new(unescape(parts.next()?)?),
            },
            "k" => Self::SigningKeysChanged {
                name: unescape(parts.next()?)?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(change)
    }
}

/// What receives a feed's changes: a revocation mirror, a user cache.
///
/// ```
/// use std::sync::Mutex;
/// use auth_core::{Change, ChangeSubscriber};
/// #[derive(Default)]
/// struct Counter(Mutex<usize>);
/// impl ChangeSubscriber for Counter {
///     fn apply(&self, changes: &[Change]) { *self.0.lock().unwrap() += changes.len(); }
///     fn suspend(&self) {}
///     fn resume(&self) {}
/// }
/// ```
pub trait ChangeSubscriber: Send + Sync + 'static {
    /// Changes written by some instance (possibly this one, possibly again).
    fn apply(&self, changes: &[Change]);

    /// The feed may have missed changes (it lost its connection, a poll failed): stop trusting
    /// what you hold and ask the store, until [`resume`](Self::resume).
    fn suspend(&self);

    /// The feed delivers again, everything from now on: reload what you hold from the store,
    /// then trust it again.
    fn resume(&self);

    /// Whether the subscriber is gone (what it fed was dropped); the feed then forgets it.
    /// The default: never.
    fn is_closed(&self) -> bool {
        false
    }
}

/// A feed's health, for `/ready` and the log.
///
/// ```
/// use auth_core::{ChangeFeed, LocalFeed};
/// let status = LocalFeed::new().status();
/// assert!(status.live);
/// assert_eq!(status.channel, "in-process");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedStatus {
    /// Whether the feed can vouch that no change was missed.
    pub live: bool,
    /// What carries the changes (`in-process`, `postgres-notify`, `log-poll`, ...).
    pub channel: &'static str,
    /// Why it is not live, when it is not.
    pub detail: Option<String>,
    /// Changes delivered to subscribers since the start.
    pub delivered: u64,
}

/// Carries [`Change`]s between the instances that share a store.
///
/// Writers publish after the change is durably stored; every instance's subscribers apply it.
/// A feed that may have lost changes suspends its subscribers (they fall back to the store)
/// and resumes them once it delivers again. [`ChangeHub`] does the bookkeeping for
/// implementations.
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{Change, ChangeFeed, LocalFeed, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let feed: Arc<dyn ChangeFeed> = Arc::new(LocalFeed::new());
/// feed.publish(&[Change::UserChanged { user: UserId::new("7") }]).await?;
/// assert_eq!(feed.status().delivered, 1);
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells every instance about changes already written to the store.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) when the channel cannot take them: the change is stored, but other
    /// instances may not know of it until they reload.
    async fn publish(&self, changes: &[Change]) -> Result<()>;

    /// Registers a subscriber for every change from now on. A subscriber that registers while
    /// the feed is live loads its state itself.
    fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>);

    /// The feed's health.
    fn status(&self) -> FeedStatus;
}

#[async_trait]
impl<T: ChangeFeed + ?Sized> ChangeFeed for Arc<T> {
    async fn publish(&self, changes: &[Change]) -> Result<()> {
        (**self).publish(changes).await
    }
    fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>) {
        (**self).subscribe(subscriber);
    }
    fn status(&self) -> FeedStatus {
        (**self).status()
    }
}

/// The bookkeeping of a feed: its subscribers, whether it is live, what it delivered. A feed
/// implementation calls [`deliver`](Self::deliver) with what arrives, [`down`](Self::down)
/// when it may miss changes and [`up`](Self::up) when it delivers again.
///
/// ```
/// use auth_core::ChangeHub;
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
    /// assert!(auth_core::ChangeHub::new("in-process", true).status().live);
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
    /// # use auth_core::{Change, ChangeHub, ChangeSubscriber};
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
    /// # use auth_core::{Change, ChangeHub, UserId};
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
    /// # use auth_core::ChangeHub;
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
    /// # use auth_core::ChangeHub;
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
    /// assert!(!auth_core::ChangeHub::new("log-poll", false).is_live());
    /// ```
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// The feed's health.
    ///
    /// ```
    /// assert_eq!(auth_core::ChangeHub::new("log-poll", true).status().delivered, 0);
    /// ```
    #[must_use]
    pub fn status(&self) -> FeedStatus {
        FeedStatus {
            live: self.is_live(),
            channel: self.channel,
            detail: self.detail.lock().ok().and_then(|d| d.clone()),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
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
/// use auth_core::{ChangeFeed, LocalFeed};
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
    /// let _ = auth_core::LocalFeed::new();
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
    /// # use auth_core::{ChangeFeed, LocalFeed};
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
