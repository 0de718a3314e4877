//! The change feed: how every instance learns of revocations and user changes written by any
//! other, so that checking a token needs no database round trip.
//!
//! The database (or Redis) stays the source of truth. A writer stores a change first, then
//! [`publish`](ChangeFeed::publish)es it; every instance's subscribers (the
//! `RevocationMirror`, the `UserCache`) apply it.
//! When a feed cannot vouch that nothing was missed (its connection dropped, a poll failed), it
//! says so with [`ChangeSubscriber::suspend`]: subscribers then ask the store on every check
//! (fail closed) until [`resume`](ChangeSubscriber::resume) tells them to reload.
//!
//! `LocalFeed` is the in-process feed (one process per store). `auth_tokens_db::DbChangeFeed`
//! speaks PostgreSQL `LISTEN/NOTIFY` or polls an append-only log (MySQL/MariaDB, SQLite); a
//! Redis pub/sub feed implements the same trait.

use std::sync::Arc;

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
/// use auth_service::{ChangeFeed, LocalFeed};
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

impl FeedStatus {
    /// A feed's status on `channel`.
    ///
    /// ```
    /// let s = auth_core::FeedStatus::new("log-poll", false, Some("poll failed".into()), 0);
    /// assert!(!s.live);
    /// ```
    #[must_use]
    pub fn new(channel: &'static str, live: bool, detail: Option<String>, delivered: u64) -> Self {
        Self {
            live,
            channel,
            detail,
            delivered,
        }
    }
}

/// Carries [`Change`]s between the instances that share a store.
///
/// Writers publish after the change is durably stored; every instance's subscribers apply it.
/// A feed that may have lost changes suspends its subscribers (they fall back to the store)
/// and resumes them once it delivers again. `auth_service::ChangeHub` does the bookkeeping for
/// implementations.
///
/// ```
/// use std::sync::Arc;
/// use auth_service::{Change, ChangeFeed, LocalFeed, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let feed: Arc<dyn ChangeFeed> = Arc::new(LocalFeed::new());
/// feed.publish(&[Change::UserChanged { user: UserId::new("7") }]).await?;
/// assert_eq!(feed.status().delivered, 1);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
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
