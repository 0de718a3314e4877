//! `RedisChallengeStore`: second-factor login challenges in Redis.

use std::fmt;

use auth_service::ephemeral::{ChallengeRecord, ChallengeStore};
use auth_service::{Result, UserId, async_trait};
use redis::Script;
use time::OffsetDateTime;

use crate::connection::{Redis, backend, micros};

/// Counts one attempt on a live challenge. KEYS: the challenge. ARGV: now (us), max attempts.
/// Returns the user, or nil when it is unknown, expired or out of attempts.
const ATTEMPT: &str = r"
local c = redis.call('HMGET', KEYS[1], 'user', 'exp', 'attempts')
if not c[1] then return false end
if tonumber(c[2]) <= tonumber(ARGV[1]) then return false end
if tonumber(c[3]) >= tonumber(ARGV[2]) then return false end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return c[1]
";

/// Second-factor login challenges (between the password and the code) in Redis, shared by
/// every instance: a challenge opened on one is answered on any other. Give it to
/// `auth_mfa::Mfa::with_challenge_store` (TOTP secrets and recovery codes stay in SQL) and to
/// `AuthService::with_challenge_store` (single-use link records).
///
/// Each challenge is one hash under the prefix (`mfa:ch:<digest of the token hash>`): an
/// attempt is one script that checks expiry (by the clock the caller passes) and the attempt
/// limit and counts the attempt, so concurrent guesses on one challenge get exactly
/// `max_attempts` tries between them; consuming deletes it, so exactly one caller consumes it.
/// Redis drops a challenge an hour after it expires.
///
/// ```no_run
/// use auth_service::ephemeral::{ChallengeRecord, ChallengeStore};
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// let store = auth_redis::RedisChallengeStore::new(redis);
/// let expires = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
/// let challenge = ChallengeRecord::new("ab".repeat(32), auth_service::UserId::new("7"), expires);
/// store.create(&challenge).await?;
/// assert!(store.consume(&challenge.token_hash).await?);
/// assert!(!store.consume(&challenge.token_hash).await?, "single use");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisChallengeStore {
    redis: Redis,
    attempt: Script,
}

impl fmt::Debug for RedisChallengeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisChallengeStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisChallengeStore {
    /// Challenges in `redis`.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let store = auth_redis::RedisChallengeStore::new(redis);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            attempt: Script::new(ATTEMPT),
        }
    }

    fn key(&self, token_hash: &str) -> String {
        // The hash comes from the client's token: digested again so a crafted value can
        // neither grow keys nor reach another namespace.
        self.redis
            .key(&["mfa", "ch", &crate::connection::digest(token_hash)])
    }
}

#[async_trait]
impl ChallengeStore for RedisChallengeStore {
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()> {
        let exp = micros(challenge.expires_at);
        let key = self.key(&challenge.token_hash);
        let mut conn = self.redis.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .cmd("HSET")
            .arg(&key)
            .arg("user")
            .arg(challenge.user_id.as_str())
            .arg("exp")
            .arg(exp)
            .arg("attempts")
            .arg(0)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.redis.ttl_ms(exp))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing a second-factor challenge in Redis"))
    }

    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        let mut conn = self.redis.conn.clone();
        let user: Option<String> = self
            .attempt
            .key(self.key(token_hash))
            .arg(micros(now))
            .arg(max_attempts)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("counting a second-factor attempt in Redis"))?;
        Ok(user.map(UserId::new))
    }

    async fn consume(&self, token_hash: &str) -> Result<bool> {
        let mut conn = self.redis.conn.clone();
        let deleted: i64 = redis::cmd("DEL")
            .arg(self.key(token_hash))
            .query_async(&mut conn)
            .await
            .map_err(backend("consuming a second-factor challenge in Redis"))?;
        Ok(deleted == 1)
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        self.redis
            .delete_expired("mfa:ch:*", "exp", micros(now))
            .await
    }
}
