//! `RedisRevocationStore`: revoked and consumed token ids, revoked sessions, per-user cut-offs
//! and tracked JWT sessions in Redis.

use std::fmt;

use auth_service::{
    Change, Consumption, Cutoff, Result, RevocationQuery, RevocationStore, SessionInfo,
    SessionMeta, UserId, async_trait,
};
use redis::Script;
use time::OffsetDateTime;

use crate::connection::{Redis, backend, from_micros, micros};

/// Shared by the scripts: exact integers as strings, and a value's expiry.
const LIB: &str = r"
local function s(x) return string.format('%.0f', x) end
local function exp_of(v) return tonumber(string.match(v, '(%-?%d+)$')) or 0 end
";

/// Revokes (or consumes) an id or a family. KEYS: the key. ARGV: expiry (us), ttl (ms),
/// mode: 'r' revoke (extend to the later expiry, a consumed id becomes revoked),
/// 'c' consume (only if absent), then for 'c' the instant of consumption (us).
/// Returns 1 when written as asked; a 'c' that finds the id returns its value
/// (`c:<consumed us>:<expiry us>` for a consumed id, `r:<expiry us>` for a revoked one).
const MARK: &str = r"
local cur = redis.call('GET', KEYS[1])
local exp = tonumber(ARGV[1])
if ARGV[3] == 'c' then
  if cur then return cur end
  redis.call('SET', KEYS[1], 'c:' .. ARGV[4] .. ':' .. s(exp), 'PX', ARGV[2])
  return 1
end
if cur and exp_of(cur) > exp then exp = exp_of(cur) end
redis.call('SET', KEYS[1], 'r:' .. s(exp), 'PX', ARGV[2])
return 1
";

/// Consumes KEYS[1] and, for the winner, revokes KEYS[2], atomically.
/// ARGV: expiry and ttl of the first, then of the second, then the instant of consumption.
/// Returns 1 for the winner, else the first key's value (as `MARK`).
const CONSUME_WITH: &str = r"
local taken = redis.call('GET', KEYS[1])
if taken then return taken end
redis.call('SET', KEYS[1], 'c:' .. ARGV[5] .. ':' .. ARGV[1], 'PX', ARGV[2])
local cur = redis.call('GET', KEYS[2])
local exp = tonumber(ARGV[3])
if cur and exp_of(cur) > exp then exp = exp_of(cur) end
redis.call('SET', KEYS[2], 'r:' .. s(exp), 'PX', ARGV[4])
return 1
";

/// Joins a per-user cut-off (`auth_service::Cutoff::join`). KEYS: the user's hash.
/// ARGV: not-before (us), kept family ('' for none), until (us), ttl (ms).
const CUTOFF: &str = r"
local nb = tonumber(ARGV[1])
local keep = ARGV[2]
local top = redis.call('HGET', KEYS[1], 'top')
if not top then
  redis.call('HSET', KEYS[1], 'top', ARGV[1], 'keep', keep, 'all', '0', 'until', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
top = tonumber(top)
local held = redis.call('HGET', KEYS[1], 'keep') or ''
local all = tonumber(redis.call('HGET', KEYS[1], 'all') or '0')
if held ~= keep then all = math.max(all, math.min(top, nb)) end
if nb > top then top = nb; held = keep end
local until_us = math.max(tonumber(redis.call('HGET', KEYS[1], 'until') or '0'), tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'top', s(top), 'keep', held, 'all', s(all), 'until', s(until_us))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
";

/// Takes every tracked session of a user but one out of the index; returns how many were
/// live, then the families taken (whose hashes the caller deletes: they live in other cluster
/// slots). KEYS: the user's session index. ARGV: now (us), the kept family ('').
const END_SESSIONS: &str = r"
local now = tonumber(ARGV[1])
local out = {0}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local family = members[i]
  local expires = tonumber(members[i + 1])
  if family ~= ARGV[2] then
    if expires > now then out[1] = out[1] + 1 end
    redis.call('ZREM', KEYS[1], family)
    out[#out + 1] = family
  end
end
return out
";

/// What a consuming script answered: 1 for the winner, else the id's value, which for a
/// consumed id carries when (`c:<consumed us>:<expiry us>`; ids consumed before that format,
/// `c:<expiry us>`, and revoked ids, `r:…`, carry none).
fn consumption(answer: &redis::Value) -> Consumption {
    let value = match answer {
        redis::Value::Int(1) => return Consumption::Won,
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    let at = value
        .strip_prefix("c:")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(at, _)| at.parse::<i64>().ok())
        .map(from_micros);
    Consumption::Taken { at }
}

/// A [`RevocationStore`] in Redis, shared by every instance: `is_revoked` is one pipelined
/// round trip (on a cluster, its three reads go to their slots concurrently), `consume` one
/// atomic script and `consume_with` one too (on a cluster, two: consume, then revoke the pair), per-user cut-offs combine by
/// [`Cutoff`]'s order-independent rule inside a script. Entries carry the expiry of what they
/// revoke (read from the clock given to [`Redis::with_clock`]); Redis drops them an hour after
/// it, [`cleanup_expired`](RevocationStore::cleanup_expired) as soon as it passes. Sessions
/// (refresh families) are tracked with their client, so JWT sessions can be listed and ended.
/// `live_revocations` lets a [`RevocationMirror`](auth_service::RevocationMirror) load them.
///
/// ```no_run
/// use auth_service::{RevocationQuery, RevocationStore, UserId};
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// let store = auth_redis::RedisRevocationStore::new(redis);
/// let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
/// assert!(store.consume("jti-1", later).await?);
/// assert!(!store.consume("jti-1", later).await?, "single use");
/// assert!(store.is_revoked(&RevocationQuery::new("jti-1", UserId::new("7"), 0)).await?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRevocationStore {
    redis: Redis,
    /// Whether this process has made sure the revocation epoch exists (before its first
    /// write, so that what it writes is never older than the epoch).
    epoch_known: std::sync::Arc<std::sync::atomic::AtomicBool>,
    user_retention: time::Duration,
    mark: Script,
    consume_with: Script,
    cutoff: Script,
    end_sessions: Script,
}

impl fmt::Debug for RedisRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocationStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

/// The expiry at the end of a stored value (`<kind>:<micros>` or `<micros>`).
fn expiry(value: &str) -> i64 {
    value
        .rsplit(':')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl RedisRevocationStore {
    /// A store on `redis` (per-user cut-offs kept 31 days: set the longest token lifetime with
    /// [`with_user_retention`](Self::with_user_retention)).
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let store = auth_redis::RedisRevocationStore::new(redis);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            epoch_known: std::sync::Arc::default(),
            user_retention: time::Duration::days(31),
            mark: Script::new(&format!("{LIB}{MARK}")),
            consume_with: Script::new(&format!("{LIB}{CONSUME_WITH}")),
            cutoff: Script::new(&format!("{LIB}{CUTOFF}")),
            end_sessions: Script::new(END_SESSIONS),
        }
    }

    /// How long per-user cut-offs are kept (the longest token lifetime; default 31 days).
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let store = auth_redis::RedisRevocationStore::new(redis)
    ///     .with_user_retention(std::time::Duration::from_secs(8 * 86_400));
    /// # }
    /// ```
    #[must_use]
    pub fn with_user_retention(mut self, retention: std::time::Duration) -> Self {
        self.user_retention = time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
        self
    }

    fn ttl_ms(&self, us: i64) -> i64 {
        self.redis.ttl_ms(us)
    }

    /// Makes sure the revocation epoch exists before this process first writes: a token it
    /// issued is then never older than the epoch (unless Redis later loses its data).
    async fn epoch_first(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        if !self.epoch_known.load(Ordering::Acquire) {
            self.redis.ensure_epoch().await?;
            self.epoch_known.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn mark(&self, key: &str, until: OffsetDateTime, mode: &str) -> Result<bool> {
        self.epoch_first().await?;
        let us = micros(until);
        let mut conn = self.redis.conn.clone();
        let written: i64 = self
            .mark
            .key(key)
            .arg(us)
            .arg(self.ttl_ms(us))
            .arg(mode)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("recording a revocation in Redis"))?;
        Ok(written == 1)
    }

    /// Consumes an id at `at`: one atomic script.
    async fn consume_key(&self, key: &str, until: OffsetDateTime, at: i64) -> Result<Consumption> {
        self.epoch_first().await?;
        let us = micros(until);
        let mut conn = self.redis.conn.clone();
        let answer: redis::Value = self
            .mark
            .key(key)
            .arg(us)
            .arg(self.ttl_ms(us))
            .arg("c")
            .arg(at)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("consuming a refresh token in Redis"))?;
        Ok(consumption(&answer))
    }

    fn token_key(&self, jti: &str) -> String {
        self.redis.key(&["rev", "t", jti])
    }

    fn family_key(&self, family: &str) -> String {
        self.redis.key(&["rev", "f", family])
    }

    fn user_key(&self, user: &UserId) -> String {
        self.redis.key(&["rev", "u", user.as_str()])
    }

    fn session_key(&self, family: &str) -> String {
        self.redis.key(&["rev", "s", family])
    }

    fn sessions_of(&self, user: &UserId) -> String {
        self.redis.key(&["rev", "us", user.as_str()])
    }

    fn cutoff_of(fields: &[Option<String>]) -> Option<Cutoff> {
        let top: i64 = fields.first()?.as_ref()?.parse().ok()?;
        let keep = fields.get(1).cloned().flatten().filter(|k| !k.is_empty());
        let all: i64 = fields
            .get(2)
            .cloned()
            .flatten()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let mut cutoff = Cutoff::new(top, keep.as_deref());
        if all > 0 {
            cutoff.join(all, None);
        }
        Some(cutoff)
    }
}

#[async_trait]
impl RevocationStore for RedisRevocationStore {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        self.mark(&self.token_key(jti), expires_at, "r").await?;
        Ok(())
    }

    async fn consume(&self, jti: &str, expires_at: OffsetDateTime) -> Result<bool> {
        let at = self.redis.now_us();
        Ok(self
            .consume_key(&self.token_key(jti), expires_at, at)
            .await?
            .won())
    }

    async fn consume_with(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
    ) -> Result<bool> {
        let at = self.redis.clock.now();
        Ok(self.consume_at(jti, expires_at, paired, at).await?.won())
    }

    async fn consume_at(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
        at: OffsetDateTime,
    ) -> Result<Consumption> {
        let at = micros(at);
        let Some((paired, until)) = paired else {
            return self.consume_key(&self.token_key(jti), expires_at, at).await;
        };
        self.epoch_first().await?;
        let (a, b) = (micros(expires_at), micros(until));
        if self.redis.is_cluster() {
            // Two ids, two slots: consuming decides the winner (one key, atomic), then the
            // winner revokes the pair. A crash between the two leaves the old access token
            // valid until its own expiry, as it was before the rotation.
            let outcome = self
                .consume_key(&self.token_key(jti), expires_at, at)
                .await?;
            if outcome.won() {
                self.mark(&self.token_key(paired), until, "r").await?;
            }
            return Ok(outcome);
        }
        let mut conn = self.redis.conn.clone();
        let answer: redis::Value = self
            .consume_with
            .key(self.token_key(jti))
            .key(self.token_key(paired))
            .arg(a)
            .arg(self.ttl_ms(a))
            .arg(b)
            .arg(self.ttl_ms(b))
            .arg(at)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("consuming a refresh token in Redis"))?;
        Ok(consumption(&answer))
    }

    async fn revoke_family(&self, family: &str, expires_at: OffsetDateTime) -> Result<()> {
        self.mark(&self.family_key(family), expires_at, "r").await?;
        Ok(())
    }

    async fn revoke_user(
        &self,
        user_id: &UserId,
        not_before: OffsetDateTime,
        keep: Option<&str>,
    ) -> Result<()> {
        let until = micros(self.redis.clock.now() + self.user_retention);
        let mut conn = self.redis.conn.clone();
        self.cutoff
            .key(self.user_key(user_id))
            .arg(micros(not_before))
            .arg(keep.unwrap_or(""))
            .arg(until)
            .arg(self.ttl_ms(until))
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(backend("recording a logout everywhere in Redis"))?;
        Ok(())
    }

    async fn is_revoked(&self, q: &RevocationQuery) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(self.redis.epoch_key());
        pipe.cmd("EXISTS").arg(self.token_key(&q.jti));
        pipe.cmd("EXISTS")
            .arg(self.family_key(q.family.as_deref().unwrap_or("")));
        pipe.cmd("HMGET")
            .arg(self.user_key(&q.user_id))
            .arg("top")
            .arg("keep")
            .arg("all");
        let (epoch, token, family, cutoff): (Option<String>, i64, i64, Vec<Option<String>>) = self
            .redis
            .batch(&pipe)
            .await
            .map_err(backend("checking a revocation in Redis"))?;
        // Issued before the epoch: what revoked it may be lost (a Redis that came back empty).
        let epoch = match epoch.and_then(|e| e.parse::<i64>().ok()) {
            Some(epoch) => epoch,
            None => self.redis.ensure_epoch().await?,
        };
        Ok(q.issued_at_us < epoch
            || token == 1
            || (q.family.is_some() && family == 1)
            || Self::cutoff_of(&cutoff)
                .is_some_and(|c| c.revokes(q.issued_at_us, q.family.as_deref())))
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.redis.now_us();
        let mut conn = self.redis.conn.clone();
        let mut removed = 0;
        for pattern in ["rev:t:*", "rev:f:*"] {
            for key in self.redis.scan(pattern).await? {
                let value: Option<String> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend("cleaning up revocations in Redis"))?;
                if value.is_some_and(|v| expiry(&v) <= now) {
                    let n: i64 = redis::cmd("DEL")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .map_err(backend("cleaning up revocations in Redis"))?;
                    removed += u64::try_from(n).unwrap_or(0);
                }
            }
        }
        for key in self.redis.scan("rev:u:*").await? {
            let until: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg("until")
                .query_async(&mut conn)
                .await
                .map_err(backend("cleaning up cut-offs in Redis"))?;
            if until
                .and_then(|u| u.parse::<i64>().ok())
                .is_some_and(|u| u <= now)
            {
                let n: i64 = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend("cleaning up cut-offs in Redis"))?;
                removed += u64::try_from(n).unwrap_or(0);
            }
        }
        for index in self.redis.scan("rev:us:*").await? {
            let ended: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(now)
                .query_async(&mut conn)
                .await
                .map_err(backend("cleaning up sessions in Redis"))?;
            for family in ended {
                let mut pipe = redis::pipe();
                pipe.cmd("ZREM").arg(&index).arg(&family);
                pipe.cmd("DEL").arg(self.session_key(&family));
                self.redis
                    .batch::<(i64, i64)>(&pipe)
                    .await
                    .map_err(backend("cleaning up sessions in Redis"))?;
            }
        }
        Ok(removed)
    }

    async fn revoked_before(&self) -> Result<Option<i64>> {
        self.redis.ensure_epoch().await.map(Some)
    }

    async fn live_revocations(&self) -> Result<Option<Vec<Change>>> {
        let now = self.redis.now_us();
        let mut conn = self.redis.conn.clone();
        let mut live = Vec::new();
        let token_prefix = self.redis.key(&["rev", "t", ""]);
        let family_prefix = self.redis.key(&["rev", "f", ""]);
        for (pattern, prefix) in [("rev:t:*", &token_prefix), ("rev:f:*", &family_prefix)] {
            let keys = self.redis.scan(pattern).await?;
            for chunk in keys.chunks(500) {
                let values: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(chunk)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend("listing revocations in Redis"))?;
                for (key, value) in chunk.iter().zip(values) {
                    let Some(value) = value else { continue };
                    let until = expiry(&value);
                    // Consumed ids stay out of mirrors (they live as long as refresh tokens).
                    if until <= now || value.starts_with("c:") {
                        continue;
                    }
                    let Some(id) = key.strip_prefix(prefix.as_str()) else {
                        continue;
                    };
                    live.push(if prefix == &token_prefix {
                        Change::TokenRevoked {
                            jti: id.to_owned(),
                            until: from_micros(until),
                        }
                    } else {
                        Change::FamilyRevoked {
                            family: id.to_owned(),
                            until: from_micros(until),
                        }
                    });
                }
            }
        }
        let user_prefix = self.redis.key(&["rev", "u", ""]);
        for key in self.redis.scan("rev:u:*").await? {
            let fields: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&key)
                .arg("top")
                .arg("keep")
                .arg("all")
                .arg("until")
                .query_async(&mut conn)
                .await
                .map_err(backend("listing cut-offs in Redis"))?;
            let until = fields
                .get(3)
                .cloned()
                .flatten()
                .and_then(|u| u.parse::<i64>().ok())
                .unwrap_or(0);
            if until <= now {
                continue;
            }
            if let (Some(cutoff), Some(user)) = (
                Self::cutoff_of(&fields),
                key.strip_prefix(user_prefix.as_str()),
            ) {
                live.extend(cutoff.to_changes(&UserId::new(user), from_micros(until)));
            }
        }
        Ok(Some(live))
    }

    async fn track_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let now = self.redis.clock.now();
        self.start_session(user, family, expires_at, &SessionMeta::default(), now)
            .await
    }

    async fn start_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        // A session starts with its tokens: they must not predate the epoch.
        self.epoch_first().await?;
        let expires = micros(expires_at);
        let ttl = self.ttl_ms(expires);
        let session = self.session_key(family);
        let index = self.sessions_of(user);
        // The index and the session live in different cluster slots: listed first, so a
        // session is never unlisted; an index entry without its session is skipped.
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD").arg(&index).arg(expires).arg(family);
        pipe.cmd("PEXPIRE").arg(&index).arg(ttl).arg("GT");
        // A new index has no expiry for GT to compare with.
        pipe.cmd("PEXPIRE").arg(&index).arg(ttl).arg("NX");
        pipe.cmd("HSET")
            .arg(&session)
            .arg("user")
            .arg(user.as_str())
            .arg("created")
            .arg(micros(at))
            .arg("expires")
            .arg(expires)
            .arg("ip")
            .arg(meta.ip.map(|ip| ip.to_string()).unwrap_or_default())
            .arg("ua")
            .arg(meta.user_agent.clone().unwrap_or_default());
        pipe.cmd("PEXPIRE").arg(&session).arg(ttl);
        self.redis
            .batch::<Vec<i64>>(&pipe)
            .await
            .map(drop)
            .map_err(backend("recording a session in Redis"))
    }

    async fn touch_session(
        &self,
        family: &str,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        let session = self.session_key(family);
        let mut conn = self.redis.conn.clone();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&session)
            .query_async(&mut conn)
            .await
            .map_err(backend("recording a session's use in Redis"))?;
        if exists == 1 {
            redis::cmd("HSET")
                .arg(&session)
                .arg("last")
                .arg(micros(at))
                .arg("ip")
                .arg(meta.ip.map(|ip| ip.to_string()).unwrap_or_default())
                .arg("ua")
                .arg(meta.user_agent.clone().unwrap_or_default())
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("recording a session's use in Redis"))?;
        }
        Ok(())
    }

    async fn list_sessions(&self, user: &UserId) -> Result<Option<Vec<SessionInfo>>> {
        let now = self.redis.now_us();
        let mut conn = self.redis.conn.clone();
        let families: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.sessions_of(user))
            .arg(format!("({now}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(backend("listing sessions in Redis"))?;
        let mut sessions = Vec::with_capacity(families.len());
        for family in families {
            let mut pipe = redis::pipe();
            pipe.cmd("HMGET")
                .arg(self.session_key(&family))
                .arg("created")
                .arg("last")
                .arg("expires")
                .arg("ip")
                .arg("ua");
            pipe.cmd("EXISTS").arg(self.family_key(&family));
            let (fields, revoked): (Vec<Option<String>>, i64) = self
                .redis
                .batch(&pipe)
                .await
                .map_err(backend("listing sessions in Redis"))?;
            let field = |i: usize| fields.get(i).cloned().flatten().filter(|v| !v.is_empty());
            let number = |i: usize| field(i).and_then(|v| v.parse::<i64>().ok());
            let (Some(created), Some(expires)) = (number(0), number(2)) else {
                continue;
            };
            if revoked == 1 {
                continue;
            }
            let mut info = SessionInfo::new(family, from_micros(created), from_micros(expires));
            info.last_used_at = number(1).map(from_micros);
            info.meta.ip = field(3).and_then(|ip| ip.parse().ok());
            info.meta.user_agent = field(4);
            sessions.push(info);
        }
        sessions.sort_by_key(|s| s.created_at);
        Ok(Some(sessions))
    }

    async fn end_session(&self, family: &str) -> Result<()> {
        let session = self.session_key(family);
        let mut conn = self.redis.conn.clone();
        let user: Option<String> = redis::cmd("HGET")
            .arg(&session)
            .arg("user")
            .query_async(&mut conn)
            .await
            .map_err(backend("ending a session in Redis"))?;
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(&session);
        if let Some(user) = user {
            pipe.cmd("ZREM")
                .arg(self.sessions_of(&UserId::new(user)))
                .arg(family);
        }
        self.redis
            .batch::<Vec<i64>>(&pipe)
            .await
            .map(drop)
            .map_err(backend("ending a session in Redis"))
    }

    async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<Option<u64>> {
        let mut conn = self.redis.conn.clone();
        let (live, families): (i64, Vec<String>) = self
            .end_sessions
            .key(self.sessions_of(user))
            .arg(self.redis.now_us())
            .arg(keep.unwrap_or(""))
            .invoke_async::<Vec<redis::Value>>(&mut conn)
            .await
            .and_then(|mut answer| {
                let families = answer.split_off(answer.len().min(1));
                let live = answer.pop().map_or(Ok(0), redis::from_redis_value::<i64>)?;
                Ok((
                    live,
                    redis::from_redis_value(redis::Value::Array(families))?,
                ))
            })
            .map_err(backend("ending sessions in Redis"))?;
        // The sessions' hashes, each in its own slot (out of the index already: unlisted).
        for chunk in families.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|f| self.session_key(f)).collect();
            redis::cmd("DEL")
                .arg(&keys)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(backend("ending sessions in Redis"))?;
        }
        Ok(Some(u64::try_from(live).unwrap_or(0)))
    }
}
