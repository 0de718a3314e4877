use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;

use crate::add_saturating as add;
use crate::*;

/// The non-negative time from `now` until `later`, zero if `later` has passed.
fn until(now: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - now).unwrap_or(Duration::ZERO)
}

#[derive(Debug, Default)]
struct KeyState {
    failures: Vec<OffsetDateTime>,
    locked_until: Option<OffsetDateTime>,
}

/// A [`RateLimiter`] in process memory.
///
/// ```
/// use auth_service::{FixedClock, MemoryRateLimiter, RateLimitPolicy};
/// let _ = MemoryRateLimiter::new(RateLimitPolicy::default()).with_clock(FixedClock::from_unix(0));
/// ```
#[derive(Clone)]
pub struct MemoryRateLimiter {
    policy: RateLimitPolicy,
    keys: Arc<Mutex<HashMap<String, KeyState>>>,
    clock: SharedClock,
}

impl MemoryRateLimiter {
    /// A limiter with this policy on the system clock.
    ///
    /// ```
    /// # use auth_service::{MemoryRateLimiter, RateLimitPolicy};
    /// let _ = MemoryRateLimiter::new(RateLimitPolicy::default());
    /// ```
    #[must_use]
    pub fn new(policy: RateLimitPolicy) -> Self {
        Self {
            policy,
            keys: Arc::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use auth_service::{FixedClock, MemoryRateLimiter, RateLimitPolicy};
    /// let _ = MemoryRateLimiter::new(RateLimitPolicy::default()).with_clock(FixedClock::from_unix(1));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, KeyState>>> {
        self.keys
            .lock()
            .map_err(|_| Error::Backend(BackendError::message("rate limiter lock poisoned")))
    }

    /// Brings one key's state up to `now` and reports it.
    fn status(&self, state: &mut KeyState, now: OffsetDateTime) -> RateLimitStatus {
        if let Some(until_at) = state.locked_until {
            if until_at > now {
                return limited(now, until_at);
            }
            // The lockout is over: start counting afresh.
            state.locked_until = None;
            state.failures.clear();
        }
        let window_start =
            now - time::Duration::try_from(self.policy.window()).unwrap_or(time::Duration::MAX);
        state.failures.retain(|t| *t > window_start);
        let used = u32::try_from(state.failures.len()).unwrap_or(u32::MAX);
        RateLimitStatus::Allowed {
            remaining: self.policy.max_attempts().saturating_sub(used),
        }
    }
}

fn limited(now: OffsetDateTime, until_at: OffsetDateTime) -> RateLimitStatus {
    // Round up to whole seconds (HTTP's Retry-After is in seconds), and never report zero.
    let wait = until(now, until_at);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    RateLimitStatus::Limited {
        retry_after: Duration::from_secs(secs.max(1)),
    }
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str) -> Result<RateLimitStatus> {
        let now = self.clock.now();
        let mut keys = self.lock()?;
        Ok(match keys.get_mut(key) {
            Some(state) => self.status(state, now),
            None => RateLimitStatus::Allowed {
                remaining: self.policy.max_attempts(),
            },
        })
    }

    async fn acquire(&self, key: &str) -> Result<RateLimitStatus> {
        let now = self.clock.now();
        let mut keys = self.lock()?;
        let state = keys.entry(key.to_owned()).or_default();
        if let limited @ RateLimitStatus::Limited { .. } = self.status(state, now) {
            return Ok(limited);
        }
        state.failures.push(now);
        let used = u32::try_from(state.failures.len()).unwrap_or(u32::MAX);
        if used >= self.policy.max_attempts() {
            state.locked_until = Some(add(now, self.policy.lockout()));
        }
        Ok(RateLimitStatus::Allowed {
            remaining: self.policy.max_attempts().saturating_sub(used),
        })
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut keys = self.lock()?;
        if let Some(state) = keys.get_mut(key) {
            state.failures.pop();
            if (state.failures.len() as u64) < u64::from(self.policy.max_attempts()) {
                state.locked_until = None;
            }
        }
        Ok(())
    }

    fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    async fn reset(&self, key: &str) -> Result<()> {
        self.lock()?.remove(key);
        Ok(())
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut keys = self.lock()?;
        let before = keys.len();
        keys.retain(|_, state| {
            let _ = self.status(state, now);
            state.locked_until.is_some() || !state.failures.is_empty()
        });
        Ok((before - keys.len()) as u64)
    }
}
