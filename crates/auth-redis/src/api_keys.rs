//! `RedisApiKeyStore`: API keys in Redis.

use std::collections::HashMap;
use std::fmt;

use auth_service::{
    ApiKeyOwner, ApiKeyRecord, ApiKeyStore, Error, FoundApiKey, Result, async_trait,
};
use redis::Script;
use time::OffsetDateTime;

use crate::connection::{Redis, backend, digest, from_micros, micros};

/// The key a secret names, in one round trip, on one server (a cluster keeps the two in
/// different slots: two reads). KEYS: the secret. ARGV: the prefix of key hashes (ids are
/// checked before they name a key). Returns the secret's `until` ('' for none) followed by the
/// key hash's fields, or nil.
const FIND: &str = r"
local s = redis.call('HMGET', KEYS[1], 'id', 'until')
if not s[1] then return false end
local k = redis.call('HGETALL', ARGV[1] .. '{' .. s[1] .. '}')
if #k == 0 then return false end
table.insert(k, 1, s[2] or '')
return k
";

/// Adds a secret to a key's set. KEYS: the key hash, its secret set (one slot: `{id}`).
/// ARGV: the new secret's hash. Returns the earlier secrets' hashes, or nil without the key.
const ROLL: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local earlier = redis.call('SMEMBERS', KEYS[2])
redis.call('SADD', KEYS[2], ARGV[1])
return earlier
";

/// Ends a secret's life at `until` at the latest (never later than it was). KEYS: the
/// secret. ARGV: until (us), its ttl (ms). Returns 0 when the secret is gone.
const GRACE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], 'until')
if not cur or tonumber(cur) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'until', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// Deletes a key and its secret set. KEYS: the key hash, its secret set (one slot). Returns
/// whether the key existed, then the secrets' hashes (whose entries the caller deletes).
const DELETE: &str = r"
local existed = redis.call('DEL', KEYS[1])
local secrets = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
table.insert(secrets, 1, tostring(existed))
return secrets
";

/// Records a use unless one was recorded after `not_before`. KEYS: the key hash.
/// ARGV: now (us), not before (us), address.
const TOUCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'last_used')
if last and last ~= '' and tonumber(last) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'last_used', ARGV[1], 'last_ip', ARGV[3])
return 1
";

/// Counts one request in a window. KEYS: the window's counter. ARGV: limit, ttl (ms).
const RESERVE: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return 1
";

/// API keys in Redis, for services that keep credentials out of SQL or share them between
/// instances without a database round trip on the primary: a verification is one script
/// (the secret's hash, then its key; two reads on a cluster), the per-key limit one `INCR`
/// per request in a window counter. Keys expire in Redis an hour after their expiry (or their
/// grace period, for a rolled secret); `cleanup_expired` removes them at once by the clock.
///
/// On a cluster a key's record, its secret set and its window counters share the hash tag
/// `{id}`; each secret and each owner's index live in slots of their own. The record decides:
/// a secret whose key is gone finds nothing, so the steps of a creation, a roll or a deletion
/// never leave a key usable that should not be (each step's order is chosen for that).
///
/// ```no_run
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
///     .with_api_keys(auth_redis::RedisApiKeyStore::new(redis));
/// # let _ = auth;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisApiKeyStore {
    redis: Redis,
    find: Script,
    roll: Script,
    grace: Script,
    delete: Script,
    touch: Script,
    reserve: Script,
}

impl fmt::Debug for RedisApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisApiKeyStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisApiKeyStore {
    /// Keys in `redis`.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let store = auth_redis::RedisApiKeyStore::new(redis);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            find: Script::new(FIND),
            roll: Script::new(ROLL),
            grace: Script::new(GRACE),
            delete: Script::new(DELETE),
            touch: Script::new(TOUCH),
            reserve: Script::new(RESERVE),
        }
    }

    /// Where key hashes start (`<prefix>ak:k:`), for the lookup script.
    fn key_prefix(&self) -> String {
        self.redis.key(&["ak", "k", ""])
    }

    fn secret(&self, hash: &str) -> String {
        self.redis.key(&["ak", "s", hash])
    }

    fn key(&self, id: &str) -> String {
        self.redis.key(&["ak", "k", &format!("{{{id}}}")])
    }

    fn secrets_of(&self, id: &str) -> String {
        self.redis.key(&["ak", "ks", &format!("{{{id}}}")])
    }

    fn owner_index(&self, owner: &ApiKeyOwner) -> String {
        self.redis.key(&["ak", "o", &digest(&owner.to_string())])
    }

    fn window(&self, id: &str, start: i64) -> String {
        self.redis
            .key(&["ak", "w", &format!("{{{id}}}"), &start.to_string()])
    }

    /// Milliseconds Redis keeps what lives as long as `record` (-1: no expiry).
    /// A verification on a cluster: the secret, then the key it names (two slots, two reads;
    /// a key deleted between them is not found).
    async fn find_in_cluster(&self, secret_hash: &str) -> Result<Option<FoundApiKey>> {
        let mut conn = self.redis.conn.clone();
        let named: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.secret(secret_hash))
            .arg("id")
            .arg("until")
            .query_async(&mut conn)
            .await
            .map_err(backend("looking up an API key in Redis"))?;
        let Some(id) = named.first().cloned().flatten().filter(|id| valid_id(id)) else {
            return Ok(None);
        };
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key(&id))
            .query_async(&mut conn)
            .await
            .map_err(backend("looking up an API key in Redis"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let until = named
            .get(1)
            .cloned()
            .flatten()
            .and_then(|u| u.parse::<i64>().ok())
            .map(from_micros);
        Ok(Some(FoundApiKey::new(Self::record_of(fields)?, until)))
    }

    fn record_ttl(&self, record: &ApiKeyRecord) -> i64 {
        record
            .expires_at
            .map_or(-1, |e| self.redis.ttl_ms(micros(e)))
    }

    fn record_of(mut fields: HashMap<String, String>) -> Result<ApiKeyRecord> {
        let json = fields.remove("rec").ok_or_else(corrupt)?;
        let mut record: ApiKeyRecord = serde_json::from_str(&json).map_err(|_| corrupt())?;
        record.enabled = fields.get("enabled").is_none_or(|e| e == "1");
        record.last_used_at = fields
            .get("last_used")
            .and_then(|v| v.parse::<i64>().ok())
            .map(from_micros);
        record.last_ip = fields.get("last_ip").filter(|v| !v.is_empty()).cloned();
        Ok(record)
    }
}

/// Ids as this crate's callers make them (`auth_service::random::token`): anything else names no
/// key, so it can neither grow keys nor reach another namespace.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn corrupt() -> Error {
    Error::Backend(auth_service::BackendError::message(
        "reading an API key: corrupt entry in Redis",
    ))
}

fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

#[async_trait]
impl ApiKeyStore for RedisApiKeyStore {
    async fn create(&self, record: &ApiKeyRecord, secret_hash: &str) -> Result<()> {
        if !valid_id(&record.id) || secret_hash.len() > 128 {
            return Err(Error::invalid(
                "id",
                "invalid_id",
                "API key ids are 1 to 64 characters of A-Z a-z 0-9 - _",
            ));
        }
        let key = self.key(&record.id);
        let secret = self.secret(secret_hash);
        let secrets = self.secrets_of(&record.id);
        let index = self.owner_index(&record.owner);
        let json =
            serde_json::to_string(record).map_err(|e| Error::backend("encoding an API key", e))?;
        let ttl = self.record_ttl(record);
        let mut conn = self.redis.conn.clone();
        let mut claim = redis::pipe();
        claim.cmd("HSETNX").arg(&key).arg("id").arg(&record.id);
        claim.cmd("HSETNX").arg(&secret).arg("id").arg(&record.id);
        let (fresh_key, fresh_secret): (bool, bool) = self
            .redis
            .batch(&claim)
            .await
            .map_err(backend("storing an API key in Redis"))?;
        if !(fresh_key && fresh_secret) {
            return Err(Error::Backend(auth_service::BackendError::message(
                "an API key with this id or secret exists",
            )));
        }
        // Listed before it works, so its owner can always see (and revoke) a working key.
        let mut listed = redis::pipe();
        listed
            .cmd("ZADD")
            .arg(&index)
            .arg(micros(record.created_at))
            .arg(&record.id);
        if ttl > 0 {
            listed.cmd("PEXPIRE").arg(&secret).arg(ttl);
        }
        self.redis
            .batch::<Vec<i64>>(&listed)
            .await
            .map_err(backend("storing an API key in Redis"))?;
        // The record (what a verification reads) and its secret set: one slot, one transaction.
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("rec")
            .arg(json)
            .arg("enabled")
            .arg(if record.enabled { "1" } else { "0" })
            .ignore();
        if let Some(exp) = record.expires_at {
            pipe.cmd("HSET")
                .arg(&key)
                .arg("exp")
                .arg(micros(exp))
                .ignore();
        }
        pipe.cmd("SADD").arg(&secrets).arg(secret_hash).ignore();
        if ttl > 0 {
            for k in [&key, &secrets] {
                pipe.cmd("PEXPIRE").arg(k).arg(ttl).ignore();
            }
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing an API key in Redis"))
    }

    async fn find_by_secret(&self, secret_hash: &str) -> Result<Option<FoundApiKey>> {
        if secret_hash.len() > 128 {
            return Ok(None);
        }
        if self.redis.is_cluster() {
            return self.find_in_cluster(secret_hash).await;
        }
        let mut conn = self.redis.conn.clone();
        let found: Option<Vec<String>> = self
            .find
            .key(self.secret(secret_hash))
            .arg(self.key_prefix())
            .invoke_async(&mut conn)
            .await
            .map_err(backend("looking up an API key in Redis"))?;
        let Some(mut flat) = found else {
            return Ok(None);
        };
        if flat.is_empty() {
            return Ok(None);
        }
        let until = flat.remove(0).parse::<i64>().ok().map(from_micros);
        Ok(Some(FoundApiKey::new(Self::record_of(pairs(flat))?, until)))
    }

    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let mut conn = self.redis.conn.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key(id))
            .query_async(&mut conn)
            .await
            .map_err(backend("reading an API key in Redis"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        Self::record_of(fields).map(Some)
    }

    async fn list(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>> {
        let index = self.owner_index(owner);
        let mut conn = self.redis.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(backend("listing API keys in Redis"))?;
        let mut keys = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for id in ids {
            match self.get(&id).await? {
                Some(r) if &r.owner == owner => keys.push(r),
                _ => gone.push(id),
            }
        }
        if !gone.is_empty() {
            redis::cmd("ZREM")
                .arg(&index)
                .arg(&gone)
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("listing API keys in Redis"))?;
        }
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    async fn roll(&self, id: &str, new_hash: &str, previous_until: OffsetDateTime) -> Result<bool> {
        let Some(record) = self.get(id).await? else {
            return Ok(false);
        };
        let until = micros(previous_until);
        let mut conn = self.redis.conn.clone();
        // The new secret first (its own slot), naming the key; then the key's set, which
        // decides (a key deleted meanwhile takes the new secret with it); then the earlier
        // secrets' grace, each in its slot. Until the last step both secrets work, as they do
        // through the grace period anyway.
        let secret = self.secret(new_hash);
        let fresh: bool = redis::cmd("HSETNX")
            .arg(&secret)
            .arg("id")
            .arg(id)
            .query_async(&mut conn)
            .await
            .map_err(backend("rolling an API key in Redis"))?;
        let ttl = self.record_ttl(&record);
        if fresh && ttl > 0 {
            redis::cmd("PEXPIRE")
                .arg(&secret)
                .arg(ttl)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(backend("rolling an API key in Redis"))?;
        }
        if !fresh {
            return Err(Error::Backend(auth_service::BackendError::message(
                "an API key with this secret exists",
            )));
        }
        let earlier: Option<Vec<String>> = self
            .roll
            .key(self.key(id))
            .key(self.secrets_of(id))
            .arg(new_hash)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("rolling an API key in Redis"))?;
        let Some(earlier) = earlier else {
            redis::cmd("DEL")
                .arg(&secret)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(backend("rolling an API key in Redis"))?;
            return Ok(false);
        };
        let mut gone = Vec::new();
        for hash in earlier {
            let live: i64 = self
                .grace
                .key(self.secret(&hash))
                .arg(until)
                .arg(self.redis.ttl_ms(until))
                .invoke_async(&mut conn)
                .await
                .map_err(backend("rolling an API key in Redis"))?;
            if live == 0 {
                gone.push(hash);
            }
        }
        if !gone.is_empty() {
            redis::cmd("SREM")
                .arg(self.secrets_of(id))
                .arg(&gone)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(backend("rolling an API key in Redis"))?;
        }
        Ok(true)
    }

    async fn delete(&self, id: &str) -> Result<bool> {
        let Some(record) = self.get(id).await? else {
            return Ok(false);
        };
        let mut conn = self.redis.conn.clone();
        // The record first: from then on no secret of it verifies. Then its secrets and its
        // place in the owner's list, in their own slots.
        let mut answer: Vec<String> = self
            .delete
            .key(self.key(id))
            .key(self.secrets_of(id))
            .invoke_async(&mut conn)
            .await
            .map_err(backend("deleting an API key in Redis"))?;
        let secrets = answer.split_off(answer.len().min(1));
        let mut rest = redis::pipe();
        for hash in &secrets {
            rest.cmd("DEL").arg(self.secret(hash));
        }
        rest.cmd("ZREM")
            .arg(self.owner_index(&record.owner))
            .arg(id);
        self.redis
            .batch::<Vec<i64>>(&rest)
            .await
            .map_err(backend("deleting an API key in Redis"))?;
        Ok(answer.first().map(String::as_str) == Some("1"))
    }

    async fn set_enabled(&self, id: &str, enabled: bool) -> Result<bool> {
        if !valid_id(id) {
            return Ok(false);
        }
        let key = self.key(id);
        let mut conn = self.redis.conn.clone();
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(backend("updating an API key in Redis"))?;
        if exists {
            redis::cmd("HSET")
                .arg(&key)
                .arg("enabled")
                .arg(if enabled { "1" } else { "0" })
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("updating an API key in Redis"))?;
        }
        Ok(exists)
    }

    async fn touch(
        &self,
        id: &str,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<bool> {
        if !valid_id(id) {
            return Ok(false);
        }
        let mut conn = self.redis.conn.clone();
        let wrote: i64 = self
            .touch
            .key(self.key(id))
            .arg(micros(now))
            .arg(micros(not_before))
            .arg(ip.unwrap_or(""))
            .invoke_async(&mut conn)
            .await
            .map_err(backend("recording an API key's use in Redis"))?;
        Ok(wrote == 1)
    }

    async fn reserve(&self, id: &str, window_start: i64, limit: u32) -> Result<bool> {
        if !valid_id(id) {
            return Ok(false);
        }
        // Kept a day past the window's start (cleanup's horizon for windows).
        let ttl_ms = (window_start + 86_400)
            .saturating_sub(self.redis.clock.now().unix_timestamp())
            .max(1)
            * 1_000;
        let mut conn = self.redis.conn.clone();
        let allowed: i64 = self
            .reserve
            .key(self.window(id, window_start))
            .arg(limit)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(backend("counting an API key request in Redis"))?;
        Ok(allowed == 1)
    }

    async fn create_service_account(&self, name: &str, now: OffsetDateTime) -> Result<bool> {
        let mut conn = self.redis.conn.clone();
        redis::cmd("SET")
            .arg(self.redis.key(&["ak", "sa", &digest(name)]))
            .arg(micros(now))
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map(|ok| ok.is_some())
            .map_err(backend("creating a service account in Redis"))
    }

    async fn service_account_exists(&self, name: &str) -> Result<bool> {
        let mut conn = self.redis.conn.clone();
        redis::cmd("EXISTS")
            .arg(self.redis.key(&["ak", "sa", &digest(name)]))
            .query_async(&mut conn)
            .await
            .map_err(backend("reading a service account in Redis"))
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let now_us = micros(now);
        let mut removed = self.redis.delete_expired("ak:k:*", "exp", now_us).await?;
        removed += self.redis.delete_expired("ak:s:*", "until", now_us).await?;
        let mut conn = self.redis.conn.clone();
        // Secrets whose key is gone (expired or deleted).
        for secret in self.redis.scan("ak:s:*").await? {
            let id: Option<String> = redis::cmd("HGET")
                .arg(&secret)
                .arg("id")
                .query_async(&mut conn)
                .await
                .map_err(backend("cleaning up API keys in Redis"))?;
            let orphan = match id {
                Some(id) => !redis::cmd("EXISTS")
                    .arg(self.key(&id))
                    .query_async::<bool>(&mut conn)
                    .await
                    .map_err(backend("cleaning up API keys in Redis"))?,
                None => true,
            };
            if orphan {
                let n: u64 = redis::cmd("DEL")
                    .arg(&secret)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend("cleaning up API keys in Redis"))?;
                removed += n;
            }
        }
        // Windows older than a day.
        let horizon = now.unix_timestamp() - 86_400;
        for window in self.redis.scan("ak:w:*").await? {
            let start = window
                .rsplit(':')
                .next()
                .and_then(|s| s.parse::<i64>().ok());
            if start.is_some_and(|s| s <= horizon) {
                let n: u64 = redis::cmd("DEL")
                    .arg(&window)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend("cleaning up API keys in Redis"))?;
                removed += n;
            }
        }
        Ok(removed)
    }
}
