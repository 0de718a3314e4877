//! Rate limiting with an enforced lockout.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{ConfigError, Result};

/// When to lock a key: `max_attempts` failures within `window` lock it for `lockout`.
///
/// Unlike tortoise-auth, the lockout is enforced for its full length whatever the window, and
/// the reported `retry_after` is exactly the time until it ends.
///
/// ```
/// use std::time::Duration;
/// use auth_core::RateLimitPolicy;
/// let p = RateLimitPolicy::default();
/// assert_eq!(p.max_attempts(), 5);
/// assert_eq!(p.window(), Duration::from_secs(300));
/// assert_eq!(p.lockout(), Duration::from_secs(600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitPolicy {
    max_attempts: u32,
    window: Duration,
    lockout: Duration,
}

impl RateLimitPolicy {
    /// The default sign-up throttle per client address: 10 sign-ups an hour, then an hour's
    /// wait.
    ///
    /// ```
    /// use auth_core::RateLimitPolicy;
    /// assert_eq!(RateLimitPolicy::SIGNUP.max_attempts(), 10);
    /// assert_eq!(RateLimitPolicy::SIGNUP.window().as_secs(), 3600);
    /// ```
    pub const SIGNUP: Self = Self {
        max_attempts: 10,
        window: Duration::from_secs(3600),
        lockout: Duration::from_secs(3600),
    };

    /// Successful logins one client address may make, across accounts: 300 in five minutes,
    /// then five minutes' wait. Generous for a household or an office behind one address; a
    /// flood of valid logins from one address stops there.
    ///
    /// ```
    /// assert_eq!(auth_core::RateLimitPolicy::LOGINS.max_attempts(), 300);
    /// ```
    pub const LOGINS: Self = Self {
        max_attempts: 300,
        window: Duration::from_secs(300),
        lockout: Duration::from_secs(300),
    };

    /// Mail a client may make the service send, across addresses (sign-in links, resets,
    /// verifications, email changes): 20 an hour, then an hour's wait.
    ///
    /// ```
    /// assert_eq!(auth_core::RateLimitPolicy::MAIL.max_attempts(), 20);
    /// ```
    pub const MAIL: Self = Self {
        max_attempts: 20,
        window: Duration::from_secs(3600),
        lockout: Duration::from_secs(3600),
    };

    /// Validated policy.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`](crate::ConfigError::Invalid) when any value is zero.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use auth_core::RateLimitPolicy;
    /// assert!(RateLimitPolicy::new(0, Duration::from_secs(1), Duration::from_secs(1)).is_err());
    /// assert!(RateLimitPolicy::new(3, Duration::from_secs(60), Duration::from_secs(60)).is_ok());
    /// ```
    pub fn new(
        max_attempts: u32,
        window: Duration,
        lockout: Duration,
    ) -> Result<Self, ConfigError> {
        if max_attempts == 0 {
            return Err(ConfigError::invalid(
                "rate_limit_max_attempts",
                "must be positive",
            ));
        }
        if window.is_zero() {
            return Err(ConfigError::invalid(
                "rate_limit_window",
                "must be positive",
            ));
        }
        if lockout.is_zero() {
            return Err(ConfigError::invalid(
                "rate_limit_lockout",
                "must be positive",
            ));
        }
        Ok(Self {
            max_attempts,
            window,
            lockout,
        })
    }

    /// Failures allowed within the window before the lockout.
    ///
    /// ```
    /// # use auth_core::RateLimitPolicy;
    /// assert_eq!(RateLimitPolicy::default().max_attempts(), 5);
    /// ```
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The window failures are counted in.
    ///
    /// ```
    /// # use auth_core::RateLimitPolicy;
    /// assert_eq!(RateLimitPolicy::default().window().as_secs(), 300);
    /// ```
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long a lockout lasts.
    ///
    /// ```
    /// # use auth_core::RateLimitPolicy;
    /// assert_eq!(RateLimitPolicy::default().lockout().as_secs(), 600);
    /// ```
    #[must_use]
    pub fn lockout(&self) -> Duration {
        self.lockout
    }
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            window: Duration::from_secs(300),
            lockout: Duration::from_secs(600),
        }
    }
}

/// Whether a key may try again.
///
/// ```
/// use auth_core::RateLimitStatus;
/// let s = RateLimitStatus::Allowed { remaining: 3 };
/// assert!(s.is_allowed());
/// assert!(s.retry_after().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitStatus {
    /// The key may try; `remaining` failures are left before a lockout.
    Allowed {
        /// Failures left before the lockout.
        remaining: u32,
    },
    /// The key is locked out.
    Limited {
        /// Time until the lockout ends (at least one second).
        retry_after: Duration,
    },
}

impl RateLimitStatus {
    /// Whether the key may try.
    ///
    /// ```
    /// # use auth_core::RateLimitStatus;
    /// assert!(!RateLimitStatus::Limited { retry_after: std::time::Duration::from_secs(1) }.is_allowed());
    /// ```
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }

    /// The wait, when limited.
    ///
    /// ```
    /// # use auth_core::RateLimitStatus;
    /// let d = std::time::Duration::from_secs(9);
    /// assert_eq!(RateLimitStatus::Limited { retry_after: d }.retry_after(), Some(d));
    /// ```
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Limited { retry_after } => Some(*retry_after),
            Self::Allowed { .. } => None,
        }
    }
}

/// Counts failures per key (an email, an IP) and enforces lockouts. Implementations run
/// `auth_testkit::conformance::rate_limiter`; the check-and-record of SQL and Redis ones are atomic.
///
/// ```
/// use auth_service::{MemoryRateLimiter, RateLimitPolicy, RateLimiter};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let limiter = MemoryRateLimiter::new(RateLimitPolicy::default());
/// for _ in 0..5 {
///     limiter.record("alice@example.com").await?;
/// }
/// assert!(!limiter.check("alice@example.com").await?.is_allowed());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// The key's status, without recording anything.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn check(&self, key: &str) -> Result<RateLimitStatus>;

    /// Records one failure and returns the status after it (limited when this failure reached
    /// the maximum). The same as [`acquire`](Self::acquire) with the attempt kept, for callers
    /// that learn of a failure after the fact.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn record(&self, key: &str) -> Result<RateLimitStatus> {
        Ok(match self.acquire(key).await? {
            RateLimitStatus::Allowed { remaining: 0 } => RateLimitStatus::Limited {
                retry_after: self.policy().lockout(),
            },
            status => status,
        })
    }

    /// Reserves one attempt *before* the work it guards, atomically: the attempt counts as a
    /// failure from this moment, so N concurrent callers get at most `max_attempts` grants
    /// between them, however they interleave. Answers [`RateLimitStatus::Limited`] (nothing
    /// reserved) when the key is locked or its attempts are used up, else
    /// [`RateLimitStatus::Allowed`] with the attempts left after this one; the grant that
    /// uses the last attempt also locks the key. After a success give the attempt back with
    /// [`release`](Self::release), or forget the key with [`reset`](Self::reset).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_service::{MemoryRateLimiter, RateLimitPolicy, RateLimiter, RateLimitStatus};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let limiter = MemoryRateLimiter::new(RateLimitPolicy::default()); // 5 attempts
    /// for left in (0..5).rev() {
    ///     assert_eq!(limiter.acquire("login:bob@example.com").await?, RateLimitStatus::Allowed { remaining: left });
    /// }
    /// assert!(!limiter.acquire("login:bob@example.com").await?.is_allowed());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    async fn acquire(&self, key: &str) -> Result<RateLimitStatus>;

    /// Gives back one attempt reserved by [`acquire`](Self::acquire) whose work succeeded; a
    /// lockout that attempt set is lifted when the key is below the maximum again.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// use auth_service::{MemoryRateLimiter, RateLimitPolicy, RateLimiter, RateLimitStatus};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let limiter = MemoryRateLimiter::new(RateLimitPolicy::default());
    /// limiter.acquire("ip:192.0.2.1").await?;
    /// limiter.release("ip:192.0.2.1").await?;
    /// assert_eq!(limiter.check("ip:192.0.2.1").await?, RateLimitStatus::Allowed { remaining: 5 });
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    async fn release(&self, key: &str) -> Result<()>;

    /// The policy this limiter enforces.
    ///
    /// ```
    /// use auth_service::{MemoryRateLimiter, RateLimitPolicy, RateLimiter};
    /// assert_eq!(MemoryRateLimiter::new(RateLimitPolicy::default()).policy(), RateLimitPolicy::default());
    /// ```
    fn policy(&self) -> RateLimitPolicy;

    /// Forgets the key's failures and any lockout (after a success).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn reset(&self, key: &str) -> Result<()>;

    /// Forgets keys with nothing left to enforce; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn cleanup_expired(&self) -> Result<u64>;
}

#[async_trait]
impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    async fn check(&self, key: &str) -> Result<RateLimitStatus> {
        (**self).check(key).await
    }
    async fn record(&self, key: &str) -> Result<RateLimitStatus> {
        (**self).record(key).await
    }
    async fn acquire(&self, key: &str) -> Result<RateLimitStatus> {
        (**self).acquire(key).await
    }
    async fn release(&self, key: &str) -> Result<()> {
        (**self).release(key).await
    }
    fn policy(&self) -> RateLimitPolicy {
        (**self).policy()
    }
    async fn reset(&self, key: &str) -> Result<()> {
        (**self).reset(key).await
    }
    async fn cleanup_expired(&self) -> Result<u64> {
        (**self).cleanup_expired().await
    }
}
