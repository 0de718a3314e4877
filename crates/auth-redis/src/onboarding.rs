//! `RedisSessionStore`: onboarding sessions in Redis.

use std::collections::HashMap;
use std::fmt;

use auth_service::ephemeral::{SessionRecord, SessionStore};
use auth_service::{Error, Result, UserId, async_trait};
use redis::Script;
use time::OffsetDateTime;

use crate::connection::{Redis, backend, digest, from_micros, micros};

/// Writes a session if its stored version is ARGV[1]. KEYS: the session. ARGV: expected
/// version, ttl (ms), then field/value pairs. Returns 1 when written.
const SAVE: &str = r"
local v = redis.call('HGET', KEYS[1], 'version')
if not v or v ~= ARGV[1] then return 0 end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Invalidates one session of an email unless it is the kept one or already over.
/// KEYS: the session. ARGV: the kept session id. Returns 1 when it invalidated it, 0 when it
/// left it, -1 when the session is gone.
const INVALIDATE: &str = r"
local s = redis.call('HMGET', KEYS[1], 'id', 'completed', 'invalidated')
if not s[1] then return -1 end
if s[1] ~= ARGV[1] and s[2] == '0' and s[3] == '0' then
  redis.call('HSET', KEYS[1], 'invalidated', '1')
  redis.call('HINCRBY', KEYS[1], 'version', 1)
  return 1
end
return 0
";

/// Onboarding sessions in Redis, shared by every instance: a flow started on one instance
/// continues on any other. Each session is one hash (`onb:s:<token hash>`, the token itself is
/// never stored); `save` is a compare-and-set on the version in one script, so of two
/// concurrent `advance` calls one applies and the other gets a conflict, as on SQL. An email's
/// sessions are indexed in a set so a new start invalidates the older ones, each by a
/// compare-and-set of its own (a session and the index live in different cluster slots). Expiry
/// is read from the stored `expires_at` (the clock decides); Redis drops a session an hour after
/// it.
///
/// ```no_run
/// use auth_service::ephemeral::{SessionRecord, SessionStore};
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// let store = auth_redis::RedisSessionStore::new(redis);
/// let now = time::OffsetDateTime::now_utc();
/// let record = SessionRecord::new("id".into(), "ab".repeat(32), "a@example.com".into(),
///     now, now + time::Duration::hours(1));
/// store.create(&record).await?;
/// assert_eq!(store.find(&record.token_hash).await?.map(|r| r.id), Some("id".into()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisSessionStore {
    redis: Redis,
    save: Script,
    invalidate: Script,
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisSessionStore {
    /// Sessions in `redis`.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let store = auth_redis::RedisSessionStore::new(redis);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            save: Script::new(SAVE),
            invalidate: Script::new(INVALIDATE),
        }
    }

    fn key(&self, token_hash: &str) -> String {
        self.redis.key(&["onb", "s", &digest(token_hash)])
    }

    fn email_key(&self, email: &str) -> String {
        self.redis.key(&["onb", "e", &digest(email)])
    }

    /// The record's fields as stored (the version last, for the compare-and-set).
    fn fields(record: &SessionRecord) -> Result<Vec<(&'static str, String)>> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| Error::backend("encoding onboarding state", e))?;
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        Ok(vec![
            ("id", record.id.clone()),
            ("token_hash", record.token_hash.clone()),
            ("email", record.email.clone()),
            (
                "user",
                record
                    .user_id
                    .as_ref()
                    .map_or_else(String::new, |u| u.as_str().to_owned()),
            ),
            ("step", record.step_index.to_string()),
            ("data", data),
            ("completed", flag(record.completed)),
            ("invalidated", flag(record.invalidated)),
            ("created", micros(record.created_at).to_string()),
            ("exp", micros(record.expires_at).to_string()),
            (
                "lease",
                record
                    .lease_until
                    .map_or_else(String::new, |l| micros(l).to_string()),
            ),
            ("version", record.version.to_string()),
        ])
    }

    fn record(mut h: HashMap<String, String>) -> Result<Option<SessionRecord>> {
        let Some(id) = h.remove("id") else {
            return Ok(None);
        };
        let corrupt = || {
            Error::Backend(auth_service::BackendError::message(
                "reading an onboarding session: corrupt entry in Redis",
            ))
        };
        let mut take = |k: &str| h.remove(k).ok_or_else(corrupt);
        let num = |v: String| v.parse::<i64>().map_err(|_| corrupt());
        let mut r = SessionRecord::new(
            id,
            take("token_hash")?,
            take("email")?,
            from_micros(num(take("created")?)?),
            from_micros(num(take("exp")?)?),
        );
        let user = take("user")?;
        r.user_id = (!user.is_empty()).then(|| UserId::new(user));
        r.step_index = i32::try_from(num(take("step")?)?).map_err(|_| corrupt())?;
        r.data = serde_json::from_str(&take("data")?).map_err(|_| corrupt())?;
        r.completed = take("completed")? == "1";
        r.invalidated = take("invalidated")? == "1";
        let lease = take("lease")?;
        r.lease_until = if lease.is_empty() {
            None
        } else {
            Some(from_micros(num(lease)?))
        };
        r.version = num(take("version")?)?;
        Ok(Some(r))
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &SessionRecord) -> Result<()> {
        let key = self.key(&record.token_hash);
        let email = self.email_key(&record.email);
        let ttl = self.redis.ttl_ms(micros(record.expires_at));
        let mut conn = self.redis.conn.clone();
        // Indexed first (another slot): a later start always finds this session to invalidate.
        let mut indexed = redis::pipe();
        indexed.cmd("SADD").arg(&email).arg(&key).ignore();
        // The index lives as long as its longest-lived session.
        indexed
            .cmd("PEXPIRE")
            .arg(&email)
            .arg(ttl)
            .arg("GT")
            .ignore();
        indexed
            .cmd("PEXPIRE")
            .arg(&email)
            .arg(ttl)
            .arg("NX")
            .ignore();
        indexed
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing an onboarding session in Redis"))?;
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        let hset = pipe.cmd("HSET").arg(&key);
        for (field, value) in Self::fields(record)? {
            hset.arg(field).arg(value);
        }
        hset.ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing an onboarding session in Redis"))
    }

    async fn find(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let mut conn = self.redis.conn.clone();
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key(token_hash))
            .query_async(&mut conn)
            .await
            .map_err(backend("reading an onboarding session in Redis"))?;
        Self::record(h)
    }

    async fn save(&self, record: &SessionRecord) -> Result<bool> {
        let mut invocation = self.save.key(self.key(&record.token_hash));
        invocation
            .arg((record.version - 1).to_string())
            .arg(self.redis.ttl_ms(micros(record.expires_at)));
        for (field, value) in Self::fields(record)? {
            invocation.arg(field).arg(value);
        }
        let mut conn = self.redis.conn.clone();
        let written: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(backend("saving an onboarding session in Redis"))?;
        Ok(written == 1)
    }

    async fn invalidate_email(&self, email: &str, except_id: &str) -> Result<u64> {
        let index = self.email_key(email);
        let mut conn = self.redis.conn.clone();
        let sessions: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .map_err(backend("invalidating onboarding sessions in Redis"))?;
        let mut invalidated = 0;
        let mut gone = Vec::new();
        for session in sessions {
            let n: i64 = self
                .invalidate
                .key(&session)
                .arg(except_id)
                .invoke_async(&mut conn)
                .await
                .map_err(backend("invalidating onboarding sessions in Redis"))?;
            match n {
                1 => invalidated += 1,
                -1 => gone.push(session),
                _ => {}
            }
        }
        if !gone.is_empty() {
            redis::cmd("SREM")
                .arg(&index)
                .arg(&gone)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(backend("invalidating onboarding sessions in Redis"))?;
        }
        Ok(invalidated)
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        self.redis
            .delete_expired("onb:s:*", "exp", micros(now))
            .await
    }
}
