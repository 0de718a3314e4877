//! `RedisCeremonyStore`: passkey ceremonies in Redis.

use std::fmt;

use auth_service::ephemeral::{CeremonyRecord, CeremonyStore};
use auth_service::{Result, UserId, async_trait, from_unix_micros};
use redis::Script;
use time::OffsetDateTime;

use crate::connection::{Redis, backend, micros};

/// Takes a ceremony: reads and deletes it in one step. KEYS: the ceremony. ARGV: now (us).
/// Returns `{user, state, exp}`, or nil when it is unknown or expired.
const TAKE: &str = r"
local c = redis.call('HMGET', KEYS[1], 'user', 'state', 'exp')
if not c[2] then return false end
redis.call('DEL', KEYS[1])
if tonumber(c[3]) <= tonumber(ARGV[1]) then return false end
return {c[1], c[2], c[3]}
";

/// Passkey ceremonies (between the options and the authenticator's answer) in Redis, shared
/// by every instance: a ceremony started on one is finished on any other. Each is one hash
/// under the prefix (`wa:cer:<digest of the key hash>`); taking it is one script that reads
/// and deletes, so of N concurrent answers exactly one is checked. Redis drops a ceremony an
/// hour after it expires.
///
/// ```no_run
/// use auth_service::ephemeral::{CeremonyRecord, CeremonyStore};
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// let store = auth_redis::RedisCeremonyStore::new(redis);
/// let now = time::OffsetDateTime::now_utc();
/// store.put(&CeremonyRecord::new("ab".repeat(32), None, "{}".into(), now + time::Duration::minutes(5))).await?;
/// assert!(store.take(&"ab".repeat(32), now).await?.is_some());
/// assert!(store.take(&"ab".repeat(32), now).await?.is_none(), "single use");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisCeremonyStore {
    redis: Redis,
    take: Script,
}

impl fmt::Debug for RedisCeremonyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCeremonyStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisCeremonyStore {
    /// Ceremonies in `redis`.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let store = auth_redis::RedisCeremonyStore::new(redis);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            take: Script::new(TAKE),
        }
    }

    fn key(&self, key_hash: &str) -> String {
        self.redis
            .key(&["wa", "cer", &crate::connection::digest(key_hash)])
    }
}

#[async_trait]
impl CeremonyStore for RedisCeremonyStore {
    async fn put(&self, record: &CeremonyRecord) -> Result<()> {
        let exp = micros(record.expires_at);
        let key = self.key(&record.key_hash);
        let mut conn = self.redis.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .cmd("HSET")
            .arg(&key)
            .arg("user")
            .arg(record.user_id.as_ref().map_or("", UserId::as_str))
            .arg("state")
            .arg(&record.state)
            .arg("exp")
            .arg(exp)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(self.redis.ttl_ms(exp))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing a passkey ceremony in Redis"))
    }

    async fn take(&self, key_hash: &str, now: OffsetDateTime) -> Result<Option<CeremonyRecord>> {
        let mut conn = self.redis.conn.clone();
        let taken: Option<(String, String, i64)> = self
            .take
            .key(self.key(key_hash))
            .arg(micros(now))
            .invoke_async(&mut conn)
            .await
            .map_err(backend("taking a passkey ceremony in Redis"))?;
        Ok(taken.map(|(user, state, exp)| {
            CeremonyRecord::new(
                key_hash.to_owned(),
                (!user.is_empty()).then(|| UserId::new(user)),
                state,
                from_unix_micros(exp),
            )
        }))
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        self.redis
            .delete_expired("wa:cer:*", "exp", micros(now))
            .await
    }
}
