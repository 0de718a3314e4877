//! Time, read through a [`Clock`](crate::Clock) so that expiry is tested without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time.
///
/// Every component of the workspace that reads time takes a clock through a `with_clock(...)`
/// method, so tests can move time forward with a [`FixedClock`] instead of sleeping.
///
/// ```
/// use auth_core::{Clock, FixedClock};
///
/// let clock = FixedClock::from_unix(1_700_000_000);
/// assert_eq!(clock.now().unix_timestamp(), 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// A shared, type-erased clock, as components store it.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
///
/// ```
/// use auth_core::{Clock, SystemClock};
///
/// assert!(SystemClock.now().unix_timestamp() > 1_600_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move; clones share the same instant.
///
/// Give a clone to the component under test and keep one to [`advance`](FixedClock::advance) it.
///
/// ```
/// use std::time::Duration;
/// use auth_core::{Clock, FixedClock};
///
/// let clock = FixedClock::from_unix(1_000);
/// let seen_by_component = clock.clone();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(seen_by_component.now().unix_timestamp(), 1_060);
/// ```
#[derive(Clone)]
pub struct FixedClock {
    /// Nanoseconds since the Unix epoch; `i64` covers the years 1678 to 2262.
    nanos: Arc<AtomicI64>,
}

impl FixedClock {
    /// A clock standing at `secs` seconds after the Unix epoch.
    ///
    /// ```
    /// # use auth_core::{Clock, FixedClock};
    /// assert_eq!(FixedClock::from_unix(0).now().year(), 1970);
    /// ```
    #[must_use]
    pub fn from_unix(secs: i64) -> Self {
        Self {
            nanos: Arc::new(AtomicI64::new(secs.saturating_mul(1_000_000_000))),
        }
    }

    /// A clock standing at the given instant.
    ///
    /// ```
    /// # use auth_core::{Clock, FixedClock};
    /// let at = time::OffsetDateTime::from_unix_timestamp(42).unwrap();
    /// assert_eq!(FixedClock::at(at).now(), at);
    /// ```
    #[must_use]
    pub fn at(instant: OffsetDateTime) -> Self {
        let nanos = i64::try_from(instant.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        Self {
            nanos: Arc::new(AtomicI64::new(nanos)),
        }
    }

    /// Moves the clock (and every clone of it) forward.
    ///
    /// ```
    /// # use auth_core::{Clock, FixedClock};
    /// let clock = FixedClock::from_unix(10);
    /// clock.advance(std::time::Duration::from_millis(1_500));
    /// assert_eq!(clock.now().unix_timestamp(), 11);
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock (and every clone of it) to `secs` seconds after the Unix epoch.
    ///
    /// ```
    /// # use auth_core::{Clock, FixedClock};
    /// let clock = FixedClock::from_unix(10);
    /// clock.set_unix(5);
    /// assert_eq!(clock.now().unix_timestamp(), 5);
    /// ```
    pub fn set_unix(&self, secs: i64) {
        self.nanos
            .store(secs.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.nanos.load(Ordering::SeqCst)))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Debug for FixedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FixedClock").field(&self.now()).finish()
    }
}

/// An instant truncated to whole microseconds: what SQL databases store, so what a store writes
/// and reads back compare equal.
///
/// ```
/// let t = time::OffsetDateTime::from_unix_timestamp_nanos(1_000_000_123_456_789).unwrap();
/// assert_eq!(auth_core::truncate_to_micros(t).nanosecond() % 1_000, 0);
/// ```
#[must_use]
pub fn truncate_to_micros(instant: OffsetDateTime) -> OffsetDateTime {
    instant
        .replace_nanosecond(instant.nanosecond() / 1_000 * 1_000)
        .unwrap_or(instant)
}

/// An instant as microseconds since the Unix epoch (saturating): how stores that keep integers
/// (Redis, the API key tables) write time, and what their scripts compare.
///
/// ```
/// let t = time::OffsetDateTime::from_unix_timestamp(2).unwrap();
/// assert_eq!(auth_core::unix_micros(t), 2_000_000);
/// assert_eq!(auth_core::from_unix_micros(2_000_000), t);
/// ```
#[must_use]
pub fn unix_micros(instant: OffsetDateTime) -> i64 {
    i64::try_from(instant.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// The instant `us` microseconds after the Unix epoch (the epoch itself when out of range).
///
/// ```
/// assert_eq!(auth_core::from_unix_micros(0), time::OffsetDateTime::UNIX_EPOCH);
/// ```
#[must_use]
pub fn from_unix_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `instant + duration`, saturating at the end of time instead of overflowing (a lifetime too
/// long to represent never expires early).
///
/// ```
/// let t = time::OffsetDateTime::UNIX_EPOCH;
/// assert_eq!(auth_core::add_saturating(t, std::time::Duration::from_secs(1)).unix_timestamp(), 1);
/// assert!(auth_core::add_saturating(t, std::time::Duration::MAX) > t);
/// ```
#[must_use]
pub fn add_saturating(instant: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    add(instant, duration)
}

/// `instant + duration`, saturating instead of overflowing.
pub(crate) fn add(instant: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    let d = time::Duration::try_from(duration).unwrap_or(time::Duration::MAX);
    instant.checked_add(d).unwrap_or(OffsetDateTime::new_utc(
        time::Date::MAX,
        time::Time::MIDNIGHT,
    ))
}
