//! `RedisTokenBackend`: opaque tokens in Redis, with refresh families (sessions).

use std::collections::HashMap;
use std::fmt;

use auth_service::{
    Claims, Error, IssueRequest, MAX_TOKEN_LENGTH, RefreshGuard, Result, RotateOutcome,
    RotateRequest, SecretString, SessionInfo, SessionMeta, TokenBackend, TokenKind, TokenPair,
    UserId, async_trait, random,
};
use redis::Script;
use time::OffsetDateTime;

use auth_service::add_saturating as add;

use crate::connection::{Redis, backend, digest, from_micros, micros};

/// Random bytes in a token's secret part (256 bits).
const SECRET_BYTES: usize = 32;

/// Consumes a refresh token and writes the next pair, if the token is still live.
/// KEYS: the old refresh token, its family, its paired access token, the new access token,
/// the new refresh token. ARGV: now, access jti, access expiry, access ttl (ms), refresh jti,
/// refresh expiry, refresh ttl (ms), the new access token's hash, '1' to update the client,
/// address, user agent. Returns 'ok', or the state that stopped it ('c' consumed, 'r' revoked,
/// 'gone').
const ROTATE: &str = r"
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'gone' end
if st ~= '' then return st end
if redis.call('HGET', KEYS[2], 'revoked') ~= '0' then return 'r' end
redis.call('HSET', KEYS[1], 'state', 'c', 'consumed', ARGV[1])
if KEYS[3] ~= KEYS[1] and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'state', 'r')
end
redis.call('HSET', KEYS[4], 'kind', 'access', 'jti', ARGV[2], 'created', ARGV[1], 'exp', ARGV[3], 'state', '', 'paired', '')
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('HSET', KEYS[5], 'kind', 'refresh', 'jti', ARGV[5], 'created', ARGV[1], 'exp', ARGV[6], 'state', '', 'paired', ARGV[8])
redis.call('PEXPIRE', KEYS[5], ARGV[7])
redis.call('HSET', KEYS[2], 'refresh_exp', ARGV[6], 'last_used', ARGV[1])
if ARGV[9] == '1' then redis.call('HSET', KEYS[2], 'ip', ARGV[10], 'ua', ARGV[11]) end
return 'ok'
";

/// Ends a live session. KEYS: the family, a token that must exist (or the family again).
/// ARGV: 'owner' to require the owner ARGV[2], or 'any'. Returns 1 when it ended it.
const END_FAMILY: &str = r"
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'user', 'revoked')
if not f[1] then return 0 end
if ARGV[1] == 'owner' and f[1] ~= ARGV[2] then return 0 end
if f[2] ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
return 1
";

/// A [`TokenBackend`] in Redis with opaque tokens, for services that keep sessions out of SQL
/// (Better Auth's "secondary storage"): 256 random bits per token, stored only as SHA-256,
/// refresh families with reuse detection, per-user session lists and cleanup.
///
/// - A token is `<family>.<secret>`: the family id tells which Redis hash slot holds it, so a
///   token, its family and the rotation script's keys share a hash tag (`{family}`). Keep `{`
///   and `}` out of the prefix.
/// - `verify` is one pipelined round trip (the token and its session).
/// - `rotate` reads the token, runs the [`RefreshGuard`], then one script consumes the token,
///   revokes its paired access token and writes the next pair, only if the token is still
///   live: of concurrent rotations exactly one wins; the others find it consumed, which is
///   reuse, and the session ends.
/// - A user's sessions are indexed in a sorted set (scored by their absolute expiry), not a
///   serialized list, so listing and ending them never rewrites a blob.
/// - Time comes from the clock given to [`Redis::with_clock`]; Redis drops an entry an hour
///   after it expires, [`cleanup_expired`](TokenBackend::cleanup_expired) as soon as it does.
///
/// ```no_run
/// use auth_service::{IssueRequest, TokenBackend, TokenKind, UserId};
/// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
/// let backend = auth_redis::RedisTokenBackend::new(redis);
/// let pair = backend.issue(&IssueRequest::new(UserId::new("42"))).await?;
/// let claims = backend.verify(pair.access_token.expose_secret(), TokenKind::Access).await?;
/// assert_eq!(claims.sub, "42");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTokenBackend {
    redis: Redis,
    rotate: Script,
    end_family: Script,
    /// The key successors are derived from (see [`with_successor_key`](Self::with_successor_key)).
    successor_key: Option<std::sync::Arc<[u8]>>,
}

impl fmt::Debug for RedisTokenBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenBackend")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

/// A token as stored, with its session.
struct Found {
    family: String,
    kind: String,
    jti: String,
    created: i64,
    exp: i64,
    state: String,
    paired: String,
    /// When it was consumed (µs), 0 if it was not.
    consumed: i64,
    user: String,
    absolute: i64,
    revoked: bool,
    extra: String,
}

/// The family id at the front of a token, if the token is well formed.
fn family_of(token: &str) -> Option<&str> {
    if token.is_empty() || token.len() > MAX_TOKEN_LENGTH {
        return None;
    }
    let (family, secret) = token.split_once('.')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (ok(family) && ok(secret)).then_some(family)
}

impl RedisTokenBackend {
    /// A backend on `redis`.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let backend = auth_redis::RedisTokenBackend::new(redis);
    /// # }
    /// ```
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            rotate: Script::new(ROTATE),
            end_family: Script::new(END_FAMILY),
            successor_key: None,
        }
    }

    /// Derives each rotation's successor pair from the refresh token it replaces under `key`
    /// (a server secret of at least 32 bytes; `auth-server` uses its JWT secret), so that the
    /// same refresh token presented again within the reuse window
    /// ([`RotateRequest::reuse_window`]) yields the same, working successor instead of
    /// counting as reuse. Without a key every second use is reuse.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let backend = auth_redis::RedisTokenBackend::new(redis)
    ///     .with_successor_key(b"a-server-secret-of-at-least-32-bytes!!");
    /// # }
    /// ```
    #[must_use]
    pub fn with_successor_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.successor_key = Some(std::sync::Arc::from(key.as_ref()));
        self
    }

    /// The successor access and refresh token of `presented` in `family`: derived under the
    /// key, or random; with their hashes.
    fn successors(&self, family: &str, presented: &str) -> ((String, String), (String, String)) {
        let Some(key) = &self.successor_key else {
            return (Self::new_token(family), Self::new_token(family));
        };
        let derive = |kind: &str| {
            let secret = random::keyed_token(key, &["auth-redis successor", kind, presented]);
            let token = format!("{family}.{secret}");
            let hash = random::sha256_hex(&token);
            (token, hash)
        };
        (derive("access"), derive("refresh"))
    }

    /// A consumed refresh token presented again: its own client racing, within the window
    /// and before the successor was used or the session ended, gets the same successor;
    /// anything else is reuse.
    async fn presented_again(
        &self,
        presented: &str,
        found: &Found,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        if let Some(pair) = self.same_successor(presented, found, request).await? {
            let previous = Self::claims(found);
            guard.allow(&previous).await?;
            tracing::debug!("refresh token presented again within the reuse window");
            return Ok(RotateOutcome::Rotated { previous, pair });
        }
        self.reused(found).await
    }

    async fn same_successor(
        &self,
        presented: &str,
        found: &Found,
        request: &RotateRequest,
    ) -> Result<Option<TokenPair>> {
        let window = i64::try_from(request.reuse_window.as_micros()).unwrap_or(i64::MAX);
        if self.successor_key.is_none()
            || window == 0
            || found.consumed == 0
            || found.revoked
            || micros(self.now()).saturating_sub(found.consumed) > window
        {
            return Ok(None);
        }
        let ((access, _), (refresh, _)) = self.successors(&found.family, presented);
        let (Some(next), Some(next_access)) =
            (self.lookup(&refresh).await?, self.lookup(&access).await?)
        else {
            return Ok(None);
        };
        if next.kind != "refresh"
            || !next.state.is_empty()
            || next.revoked
            || !next_access.state.is_empty()
        {
            return Ok(None);
        }
        Ok(Some(TokenPair::new(
            SecretString::new(access),
            from_micros(next_access.exp),
            SecretString::new(refresh),
            from_micros(next.exp),
        )))
    }

    fn now(&self) -> OffsetDateTime {
        auth_service::truncate_to_micros(self.redis.clock.now())
    }

    fn token_key(&self, family: &str, hash: &str) -> String {
        self.redis.key(&["tk", &format!("{{{family}}}"), hash])
    }

    fn family_key(&self, family: &str) -> String {
        self.redis.key(&["tf", &format!("{{{family}}}")])
    }

    fn index_key(&self, user: &UserId) -> String {
        self.redis.key(&["tu", &digest(user.as_str())])
    }

    async fn lookup(&self, token: &str) -> Result<Option<Found>> {
        let Some(family) = family_of(token) else {
            return Ok(None);
        };
        let hash = random::sha256_hex(token);
        let mut conn = self.redis.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(self.token_key(family, &hash)).arg(&[
            "kind", "jti", "created", "exp", "state", "paired", "consumed",
        ]);
        pipe.cmd("HMGET")
            .arg(self.family_key(family))
            .arg(&["user", "absolute", "revoked", "extra"]);
        let (t, f): (Vec<Option<String>>, Vec<Option<String>>) = pipe
            .query_async(&mut conn)
            .await
            .map_err(backend("looking up a token in Redis"))?;
        let field = |v: &[Option<String>], i: usize| v.get(i).cloned().flatten();
        let num = |v: &[Option<String>], i: usize| {
            field(v, i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0)
        };
        let (Some(kind), Some(user)) = (field(&t, 0), field(&f, 0)) else {
            return Ok(None);
        };
        Ok(Some(Found {
            family: family.to_owned(),
            kind,
            jti: field(&t, 1).unwrap_or_default(),
            created: num(&t, 2),
            exp: num(&t, 3),
            state: field(&t, 4).unwrap_or_default(),
            paired: field(&t, 5).unwrap_or_default(),
            consumed: num(&t, 6),
            user,
            absolute: num(&f, 1),
            revoked: field(&f, 2).as_deref() != Some("0"),
            extra: field(&f, 3).unwrap_or_default(),
        }))
    }

    fn claims(found: &Found) -> Claims {
        let kind = if found.kind == "refresh" {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        };
        let mut claims = Claims::new(
            found.user.clone(),
            kind,
            found.jti.clone(),
            from_micros(found.created).unix_timestamp(),
            from_micros(found.exp).unix_timestamp(),
        )
        .with_family(found.family.clone());
        if let Ok(serde_json::Value::Object(extra)) =
            serde_json::from_str::<serde_json::Value>(&found.extra)
            && !extra.is_empty()
        {
            claims.extra = Some(extra);
        }
        claims
    }

    /// Ends a session; `owner` requires it to be theirs, `token` to still exist.
    async fn end_family(
        &self,
        family: &str,
        token: Option<&str>,
        owner: Option<&UserId>,
    ) -> Result<bool> {
        let family_key = self.family_key(family);
        let must_exist = token.map_or_else(|| family_key.clone(), str::to_owned);
        let mut conn = self.redis.conn.clone();
        let ended: i64 = self
            .end_family
            .key(&family_key)
            .key(must_exist)
            .arg(if owner.is_some() { "owner" } else { "any" })
            .arg(owner.map_or("", UserId::as_str))
            .invoke_async(&mut conn)
            .await
            .map_err(backend("ending a session in Redis"))?;
        Ok(ended == 1)
    }

    async fn reused(&self, found: &Found) -> Result<RotateOutcome> {
        self.end_family(&found.family, None, None).await?;
        tracing::warn!(family = %found.family, "refresh token reuse: session revoked");
        Ok(RotateOutcome::Reused {
            user_id: UserId::new(found.user.clone()),
            family: found.family.clone(),
        })
    }

    /// A new token of `family` and its hash.
    fn new_token(family: &str) -> (String, String) {
        let token = format!("{family}.{}", random::token(SECRET_BYTES));
        let hash = random::sha256_hex(&token);
        (token, hash)
    }
}

#[async_trait]
impl TokenBackend for RedisTokenBackend {
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair> {
        let now = self.now();
        let absolute = add(now, request.lifetimes.absolute());
        let access_exp = Ord::min(add(now, request.lifetimes.access()), absolute);
        let refresh_exp = Ord::min(add(now, request.lifetimes.refresh()), absolute);
        let family = random::token(16);
        let (access, access_hash) = Self::new_token(&family);
        let (refresh, refresh_hash) = Self::new_token(&family);
        let (now_us, abs_us) = (micros(now), micros(absolute));
        let (a_us, r_us) = (micros(access_exp), micros(refresh_exp));
        let extra = if request.extra.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&request.extra)
                .map_err(|e| Error::backend("encoding extra claims", e))?
        };
        let family_key = self.family_key(&family);
        let index = self.index_key(&request.user_id);
        let family_ttl = self.redis.ttl_ms(abs_us);
        let mut conn = self.redis.conn.clone();
        // The user's index first (its own cluster slot): a session exists only once listed, so
        // "sign out everywhere" can never miss one; an entry whose session was not written
        // is dropped by the next listing.
        let mut listed = redis::pipe();
        listed
            .cmd("ZADD")
            .arg(&index)
            .arg(abs_us)
            .arg(&family)
            .ignore();
        listed
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(family_ttl)
            .arg("GT")
            .ignore();
        listed
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(family_ttl)
            .arg("NX")
            .ignore();
        listed
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing tokens in Redis"))?;
        // Then the session and its two tokens, in one transaction (one slot: `{family}`).
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("HSET")
            .arg(&family_key)
            .arg("user")
            .arg(request.user_id.as_str())
            .arg("created")
            .arg(now_us)
            .arg("absolute")
            .arg(abs_us)
            .arg("refresh_exp")
            .arg(r_us)
            .arg("last_used")
            .arg(now_us)
            .arg("ip")
            .arg(request.meta.ip.map(|ip| ip.to_string()).unwrap_or_default())
            .arg("ua")
            .arg(request.meta.user_agent.clone().unwrap_or_default())
            .arg("extra")
            .arg(extra)
            .arg("revoked")
            .arg("0")
            .ignore();
        pipe.cmd("PEXPIRE")
            .arg(&family_key)
            .arg(family_ttl)
            .ignore();
        for (hash, kind, jti, exp, paired) in [
            (&access_hash, "access", random::token(16), a_us, ""),
            (
                &refresh_hash,
                "refresh",
                random::token(16),
                r_us,
                access_hash.as_str(),
            ),
        ] {
            let key = self.token_key(&family, hash);
            pipe.cmd("HSET")
                .arg(&key)
                .arg("kind")
                .arg(kind)
                .arg("jti")
                .arg(jti)
                .arg("created")
                .arg(now_us)
                .arg("exp")
                .arg(exp)
                .arg("state")
                .arg("")
                .arg("paired")
                .arg(paired)
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(self.redis.ttl_ms(exp))
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(backend("storing tokens in Redis"))?;
        Ok(TokenPair::new(
            SecretString::new(access),
            access_exp,
            SecretString::new(refresh),
            refresh_exp,
        ))
    }

    async fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        let found = self.lookup(token).await?.ok_or(Error::TokenInvalid)?;
        if found.kind != kind.as_str() {
            return Err(Error::TokenInvalid);
        }
        if !found.state.is_empty() || found.revoked {
            return Err(Error::TokenRevoked);
        }
        if found.exp <= micros(self.now()) {
            return Err(Error::TokenExpired);
        }
        Ok(Self::claims(&found))
    }

    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        let now = self.now();
        let now_us = micros(now);
        let found = self
            .lookup(refresh_token)
            .await?
            .ok_or(Error::TokenInvalid)?;
        if found.kind != "refresh" {
            return Err(Error::TokenInvalid);
        }
        if found.state == "c" {
            return self
                .presented_again(refresh_token, &found, request, guard)
                .await;
        }
        if !found.state.is_empty() || found.revoked {
            return Err(Error::TokenRevoked);
        }
        if found.exp <= now_us || found.absolute <= now_us {
            return Err(Error::TokenExpired);
        }
        let previous = Self::claims(&found);
        guard.allow(&previous).await?;

        let absolute = from_micros(found.absolute);
        let access_exp = Ord::min(add(now, request.lifetimes.access()), absolute);
        let refresh_exp = Ord::min(add(now, request.lifetimes.refresh()), absolute);
        let ((access, access_hash), (refresh, refresh_hash)) =
            self.successors(&found.family, refresh_token);
        let (a_us, r_us) = (micros(access_exp), micros(refresh_exp));
        let old_key = self.token_key(&found.family, &random::sha256_hex(refresh_token));
        let paired_key = if found.paired.is_empty() {
            old_key.clone()
        } else {
            self.token_key(&found.family, &found.paired)
        };
        let update_client = request.meta != SessionMeta::default();
        let mut conn = self.redis.conn.clone();
        // The atomic step: the script decides which concurrent rotation wins.
        let outcome: String = self
            .rotate
            .key(&old_key)
            .key(self.family_key(&found.family))
            .key(paired_key)
            .key(self.token_key(&found.family, &access_hash))
            .key(self.token_key(&found.family, &refresh_hash))
            .arg(now_us)
            .arg(random::token(16))
            .arg(a_us)
            .arg(self.redis.ttl_ms(a_us))
            .arg(random::token(16))
            .arg(r_us)
            .arg(self.redis.ttl_ms(r_us))
            .arg(&access_hash)
            .arg(if update_client { "1" } else { "0" })
            .arg(request.meta.ip.map(|ip| ip.to_string()).unwrap_or_default())
            .arg(request.meta.user_agent.clone().unwrap_or_default())
            .invoke_async(&mut conn)
            .await
            .map_err(backend("rotating a refresh token in Redis"))?;
        match outcome.as_str() {
            "ok" => Ok(RotateOutcome::Rotated {
                previous,
                pair: TokenPair::new(
                    SecretString::new(access),
                    access_exp,
                    SecretString::new(refresh),
                    refresh_exp,
                ),
            }),
            // Another rotation consumed it first: its racing client, or reuse.
            "c" => match self.lookup(refresh_token).await? {
                Some(again) => {
                    self.presented_again(refresh_token, &again, request, guard)
                        .await
                }
                None => self.reused(&found).await,
            },
            "gone" => Err(Error::TokenInvalid),
            _ => Err(Error::TokenRevoked),
        }
    }

    async fn revoke(&self, token: &str) -> Result<()> {
        let Some(family) = family_of(token) else {
            return Ok(());
        };
        let key = self.token_key(family, &random::sha256_hex(token));
        self.end_family(family, Some(&key), None).await?;
        Ok(())
    }

    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        let index = self.index_key(user_id);
        let mut conn = self.redis.conn.clone();
        let families: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(backend("listing sessions in Redis"))?;
        let mut ended = 0;
        for family in families.iter().filter(|f| Some(f.as_str()) != keep) {
            if self.end_family(family, None, Some(user_id)).await? {
                ended += 1;
            }
            redis::cmd("ZREM")
                .arg(&index)
                .arg(family)
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("listing sessions in Redis"))?;
        }
        Ok(ended)
    }

    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        let index = self.index_key(user_id);
        let mut conn = self.redis.conn.clone();
        let families: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(backend("listing sessions in Redis"))?;
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for family in &families {
            pipe.cmd("HGETALL").arg(self.family_key(family));
        }
        let rows: Vec<HashMap<String, String>> = self
            .redis
            .batch(&pipe)
            .await
            .map_err(backend("listing sessions in Redis"))?;
        let now = micros(self.now());
        let num = |row: &HashMap<String, String>, k: &str| {
            row.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
        };
        let mut gone = Vec::new();
        let mut sessions = Vec::new();
        for (family, row) in families.into_iter().zip(rows) {
            if row.get("user").map(String::as_str) != Some(user_id.as_str()) {
                gone.push(family);
                continue;
            }
            if row.get("revoked").map(String::as_str) != Some("0")
                || num(&row, "refresh_exp") <= now
            {
                continue;
            }
            let mut s = SessionInfo::new(
                family,
                from_micros(num(&row, "created")),
                from_micros(num(&row, "refresh_exp")),
            );
            s.last_used_at = row
                .contains_key("last_used")
                .then(|| from_micros(num(&row, "last_used")));
            let mut meta = SessionMeta::new();
            if let Some(ip) = row.get("ip").and_then(|ip| ip.parse().ok()) {
                meta = meta.with_ip(ip);
            }
            if let Some(ua) = row.get("ua").filter(|ua| !ua.is_empty()) {
                meta = meta.with_user_agent(ua.clone());
            }
            s.meta = meta;
            sessions.push(s);
        }
        if !gone.is_empty() {
            redis::cmd("ZREM")
                .arg(&index)
                .arg(&gone)
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("listing sessions in Redis"))?;
        }
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(sessions)
    }

    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        if family_of(&format!("{session_id}.x")).is_none() {
            return Ok(false);
        }
        self.end_family(session_id, None, Some(user_id)).await
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = micros(self.now());
        let tokens = self.redis.delete_expired("tk:*", "exp", now).await?;
        let sessions = self
            .redis
            .delete_expired("tf:*", "refresh_exp", now)
            .await?;
        let mut conn = self.redis.conn.clone();
        for index in self.redis.scan("tu:*").await? {
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(now)
                .query_async::<()>(&mut conn)
                .await
                .map_err(backend("cleaning up session lists in Redis"))?;
        }
        tracing::info!(tokens, sessions, "Redis token cleanup finished");
        Ok(tokens + sessions)
    }
}
