//! `Redis`: a connection manager (reconnecting by itself), the key prefix and the clock the
//! stores share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Clock, Error, Result, SharedClock, SystemClock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A handle on one Redis server: cheap to clone, shared by every store of a service.
///
/// ```no_run
/// # async fn f() -> auth_core::Result<()> {
/// let redis = auth_redis::Redis::connect("redis://127.0.0.1:6379/").await?.with_prefix("shop:auth:");
/// assert_eq!(redis.prefix(), "shop:auth:");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Redis {
    pub(crate) client: redis::Client,
    pub(crate) conn: ConnectionManager,
    prefix: Arc<str>,
    pub(crate) clock: SharedClock,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: only the prefix is shown.
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How long a command may take before it fails (Redis down, network partition).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) fn backend(context: &'static str) -> impl Fn(redis::RedisError) -> Error {
    move |e| Error::backend(context, e)
}

impl Redis {
    /// Connects to `url` (`redis://[:password@]host:port/db`, `rediss://` for TLS is not
    /// compiled in). Commands time out after one second, so an outage fails requests fast
    /// instead of piling them up; the connection is re-established in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the URL is invalid or the server cannot be reached now.
    ///
    /// ```no_run
    /// # async fn f() -> auth_core::Result<()> {
    /// let redis = auth_redis::Redis::connect("redis://127.0.0.1:6379/").await?;
    /// # let _ = redis;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::backend("parsing the Redis URL (check AUTH_REDIS_URL)", e))?;
        let conn = tokio::time::timeout(
            RESPONSE_TIMEOUT * 3,
            ConnectionManager::new_with_config(client.clone(), Self::config()),
        )
        .await
        .map_err(|_| {
            Error::Backend(auth_core::BackendError::message(
                "connecting to Redis timed out (check AUTH_REDIS_URL)",
            ))
        })?
        .map_err(|e| Error::backend("connecting to Redis (check AUTH_REDIS_URL)", e))?;
        Ok(Self {
            client,
            conn,
            prefix: Arc::from("auth:"),
            clock: Arc::new(SystemClock),
        })
    }

    /// Like [`connect`](Self::connect), without waiting for the server: the first command
    /// connects (for constructors that cannot wait; a wrong URL is still an error now).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the URL is invalid.
    ///
    /// [`Error::Backend`] as well outside a Tokio runtime (the connection's task needs one).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let redis = auth_redis::Redis::open("redis://127.0.0.1:6379/").unwrap();
    /// assert!(auth_redis::Redis::open("http://not-redis").is_err());
    /// # let _ = redis;
    /// # });
    /// assert!(auth_redis::Redis::open("redis://127.0.0.1:6379/").is_err(), "no runtime here");
    /// ```
    pub fn open(url: &str) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Backend(auth_core::BackendError::message(
                "Redis::open needs a running Tokio runtime",
            )));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Error::backend("parsing the Redis URL (check AUTH_REDIS_URL)", e))?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), Self::config())
            .map_err(|e| Error::backend("preparing the Redis connection", e))?;
        Ok(Self {
            client,
            conn,
            prefix: Arc::from("auth:"),
            clock: Arc::new(SystemClock),
        })
    }

    fn config() -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1))
    }

    /// Puts every key under `prefix` (default `auth:`).
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let tenant = redis.with_prefix("tenant-a:auth:");
    /// # }
    /// ```
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// Reads time from `clock` (what the scripts compare; Redis's own expiry only collects
    /// garbage).
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let redis = redis.with_clock(auth_core::FixedClock::from_unix(1_700_000_000));
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The key prefix.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// assert!(redis.prefix().ends_with(':'));
    /// # }
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether Redis answers now (`PING`), for `/ready`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when it does not.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) -> auth_core::Result<()> {
    /// redis.ping().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend("pinging Redis"))
    }

    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 48);
        key.push_str(&self.prefix);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            key.push_str(p);
        }
        key
    }

    pub(crate) fn now_us(&self) -> i64 {
        i64::try_from(self.clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
    }

    /// Keys matching `pattern` (under the prefix), by `SCAN` (never `KEYS`).
    pub(crate) async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let mut conn = self.conn.clone();
        let pattern = format!("{}{pattern}", escape_glob(&self.prefix));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut conn)
                .await
                .map_err(backend("scanning Redis keys"))?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

/// A prefix used literally inside a `SCAN MATCH` pattern.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A key component from arbitrary input: hashed, so a crafted value can neither grow keys
/// nor reach another namespace.
pub(crate) fn digest(value: &str) -> String {
    auth_core::random::sha256_hex(value)[..32].to_owned()
}

pub(crate) use auth_core::{from_unix_micros as from_micros, unix_micros as micros};

/// Deletes the hash KEYS[1] if its field ARGV[1] (microseconds) is at or before ARGV[2]:
/// checked and deleted in one step, so an entry rewritten meanwhile survives.
const DELETE_IF_EXPIRED: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and tonumber(v) <= tonumber(ARGV[2]) then return redis.call('DEL', KEYS[1]) end
return 0
";

impl Redis {
    /// Milliseconds Redis keeps an entry that expires at `us` by the clock: an hour past it
    /// (Redis expiry only collects garbage; the expiry that counts is stored in the entry).
    pub(crate) fn ttl_ms(&self, us: i64) -> i64 {
        (us.saturating_sub(self.now_us()) / 1_000).max(0) + 3_600_000
    }

    /// Deletes the hashes matching `pattern` whose `field` is at or before `now_us`; returns
    /// how many went.
    pub(crate) async fn delete_expired(
        &self,
        pattern: &str,
        field: &str,
        now_us: i64,
    ) -> Result<u64> {
        let script = redis::Script::new(DELETE_IF_EXPIRED);
        let mut conn = self.conn.clone();
        let mut removed = 0u64;
        for key in self.scan(pattern).await? {
            let n: i64 = script
                .key(&key)
                .arg(field)
                .arg(now_us)
                .invoke_async(&mut conn)
                .await
                .map_err(backend("deleting expired entries in Redis"))?;
            removed += u64::try_from(n).unwrap_or(0);
        }
        if removed > 0 {
            tracing::info!(deleted = removed, pattern, "expired Redis entries deleted");
        }
        Ok(removed)
    }
}
