//! `RedisRateLimiter`: failures in a sorted set per key (a sliding window), the lockout in a
//! second key, every decision in one Lua script.

use std::fmt;
use std::time::Duration;

use auth_service::{RateLimitPolicy, RateLimitStatus, RateLimiter, Result, async_trait};
use redis::Script;

use crate::connection::{Redis, backend, digest};

/// Reserves (or only reads, with ARGV[6] = 1) one attempt.
/// KEYS: failures (sorted set, score = instant), lock (the lockout's end).
/// ARGV: now, window, max, lockout (microseconds), a unique member, check only, ttl (ms).
/// Returns {remaining, 0} when allowed, {-1, locked_until} when not.
const ACQUIRE: &str = r"
-- Numbers reach Redis as exact integers (microseconds exceed what %.14g keeps).
local function s(x) return string.format('%.0f', x) end
local now = tonumber(ARGV[1])
local lock = redis.call('GET', KEYS[2])
if lock then
  local until_us = tonumber(lock)
  if until_us > now then return {-1, until_us} end
  -- The lockout is over: counting starts afresh.
  redis.call('DEL', KEYS[1], KEYS[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', s(now - tonumber(ARGV[2])))
local used = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[3])
if ARGV[6] == '1' then return {math.max(max - used, 0), 0} end
if used >= max then
  local until_us = now + tonumber(ARGV[4])
  redis.call('SET', KEYS[2], s(until_us), 'PX', ARGV[7])
  return {-1, until_us}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
used = used + 1
if used >= max then
  redis.call('SET', KEYS[2], s(now + tonumber(ARGV[4])), 'PX', ARGV[7])
end
return {max - used, 0}
";

/// Gives back the latest reservation; lifts a lockout once under the maximum.
const RELEASE: &str = r"
redis.call('ZPOPMAX', KEYS[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then redis.call('DEL', KEYS[2]) end
return 1
";

/// Forgets a key with nothing left to enforce; 1 when it did.
const CLEANUP: &str = r"
local now = tonumber(ARGV[1])
local lock = redis.call('GET', KEYS[2])
if lock then
  if tonumber(lock) > now then return 0 end
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - tonumber(ARGV[2])))
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// A [`RateLimiter`] in Redis, shared by every instance: failures of each key in a sorted set
/// (a sliding window), the lockout beside it, and every reservation one atomic script, so N
/// concurrent callers on any number of instances get at most `max_attempts` grants between
/// them. Keys are `<prefix>rl:<policy>:<sha-256 of the key>:f` / `:l`: raw input never shapes
/// a key.
///
/// ```no_run
/// use auth_service::{RateLimitPolicy, RateLimiter};
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// let limiter = auth_redis::RedisRateLimiter::new(redis, RateLimitPolicy::default());
/// assert!(limiter.acquire("login:*|alice@example.com").await?.is_allowed());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRateLimiter {
    redis: Redis,
    policy: RateLimitPolicy,
    acquire: Script,
    release: Script,
    cleanup: Script,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("policy", &self.policy)
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl RedisRateLimiter {
    /// A limiter enforcing `policy`.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let limiter = auth_redis::RedisRateLimiter::new(redis, auth_service::RateLimitPolicy::SIGNUP);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis, policy: RateLimitPolicy) -> Self {
        Self {
            redis,
            policy,
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
            cleanup: Script::new(CLEANUP),
        }
    }

    /// Limiters with different policies keep their keys apart (cleanup applies the policy's
    /// window to the keys it scans).
    fn namespace(&self) -> String {
        format!(
            "rl:{}-{}-{}",
            self.policy.max_attempts(),
            self.policy.window().as_secs(),
            self.policy.lockout().as_secs()
        )
    }

    fn keys(&self, key: &str) -> (String, String) {
        // A hash tag: a key's two entries share a cluster slot (the scripts touch both).
        let tag = format!("{{{}}}", digest(key));
        let ns = self.namespace();
        (
            self.redis.key(&[&ns, &tag, "f"]),
            self.redis.key(&[&ns, &tag, "l"]),
        )
    }

    /// How long Redis keeps a key that nobody touches: past the window and the lockout.
    fn ttl_ms(&self) -> i64 {
        let longest = self.policy.window().max(self.policy.lockout()) + Duration::from_secs(60);
        i64::try_from(longest.as_millis()).unwrap_or(i64::MAX)
    }

    async fn run(&self, key: &str, check_only: bool) -> Result<RateLimitStatus> {
        let (failures, lock) = self.keys(key);
        let now = self.redis.now_us();
        let member = format!("{now}:{}", auth_service::random::token(6));
        let mut conn = self.redis.conn.clone();
        let (remaining, until): (i64, i64) = self
            .acquire
            .key(&failures)
            .key(&lock)
            .arg(now)
            .arg(micros(self.policy.window()))
            .arg(self.policy.max_attempts())
            .arg(micros(self.policy.lockout()))
            .arg(member)
            .arg(if check_only { "1" } else { "0" })
            .arg(self.ttl_ms())
            .invoke_async(&mut conn)
            .await
            .map_err(backend("reserving a rate-limit attempt in Redis"))?;
        if remaining < 0 {
            // Round up to whole seconds, never zero (HTTP's Retry-After).
            let wait_us = until.saturating_sub(now).max(0);
            let secs = u64::try_from(wait_us).unwrap_or(0).div_ceil(1_000_000);
            return Ok(RateLimitStatus::Limited {
                retry_after: Duration::from_secs(secs.max(1)),
            });
        }
        Ok(RateLimitStatus::Allowed {
            remaining: u32::try_from(remaining).unwrap_or(0),
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str) -> Result<RateLimitStatus> {
        self.run(key, true).await
    }

    async fn acquire(&self, key: &str) -> Result<RateLimitStatus> {
        self.run(key, false).await
    }

    async fn release(&self, key: &str) -> Result<()> {
        let (failures, lock) = self.keys(key);
        let mut conn = self.redis.conn.clone();
        self.release
            .key(&failures)
            .key(&lock)
            .arg(self.policy.max_attempts())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(backend("releasing a rate-limit attempt in Redis"))?;
        Ok(())
    }

    fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    async fn reset(&self, key: &str) -> Result<()> {
        let (failures, lock) = self.keys(key);
        let mut conn = self.redis.conn.clone();
        redis::cmd("DEL")
            .arg(&failures)
            .arg(&lock)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(backend("resetting a rate-limit key in Redis"))?;
        Ok(())
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        // Redis forgets idle keys by itself; this forgets, by the clock, those with nothing
        // left to enforce (what the other limiters' cleanup does).
        let now = self.redis.now_us();
        let mut removed = 0;
        let mut conn = self.redis.conn.clone();
        for failures in self
            .redis
            .scan(&format!("{}:*:f", self.namespace()))
            .await?
        {
            let Some(base) = failures.strip_suffix(":f") else {
                continue;
            };
            let lock = format!("{base}:l");
            let gone: i64 = self
                .cleanup
                .key(&failures)
                .key(&lock)
                .arg(now)
                .arg(micros(self.policy.window()))
                .invoke_async(&mut conn)
                .await
                .map_err(backend("cleaning up rate-limit keys in Redis"))?;
            removed += u64::try_from(gone).unwrap_or(0);
        }
        Ok(removed)
    }
}
