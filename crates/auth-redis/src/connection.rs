//! `Redis`: a connection (one server through a connection manager, or a cluster), the key
//! prefix and the clock the stores share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_service::{Clock, Error, Result, SharedClock, SystemClock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Value};

/// The connection the stores send through: one server, or a cluster (feature `cluster`).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A handle on one Redis server or on a Redis Cluster: cheap to clone, shared by every store
/// of a service.
///
/// On a cluster (feature `cluster`, `Redis::connect_cluster`) every store works unchanged:
/// the keys a script or a transaction touches together share a hash tag (`{…}`), so they live
/// in one slot; reads that span slots are sent to their nodes concurrently; cleanup scans
/// every primary. Keep `{` and `}` out of the prefix.
///
/// ```no_run
/// # async fn f() -> auth_service::Result<()> {
/// let redis = auth_redis::Redis::connect("redis://127.0.0.1:6379/").await?.with_prefix("shop:auth:");
/// assert_eq!(redis.prefix(), "shop:auth:");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Redis {
    /// Where the change feed subscribes: the server, or each seed node of a cluster in turn
    /// (a message published on any node of a cluster reaches the subscribers of every node).
    pub(crate) subscribe_to: Arc<[redis::Client]>,
    pub(crate) conn: Conn,
    prefix: Arc<str>,
    pub(crate) clock: SharedClock,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: only the prefix is shown.
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("cluster", &self.is_cluster())
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
    /// # async fn f() -> auth_service::Result<()> {
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
            Error::Backend(auth_service::BackendError::message(
                "connecting to Redis timed out (check AUTH_REDIS_URL)",
            ))
        })?
        .map_err(|e| Error::backend("connecting to Redis (check AUTH_REDIS_URL)", e))?;
        Ok(Self::new(vec![client], Conn::Single(conn)))
    }

    fn new(subscribe_to: Vec<redis::Client>, conn: Conn) -> Self {
        Self {
            subscribe_to: subscribe_to.into(),
            conn,
            prefix: Arc::from("auth:"),
            clock: Arc::new(SystemClock),
        }
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
            return Err(Error::Backend(auth_service::BackendError::message(
                "Redis::open needs a running Tokio runtime",
            )));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Error::backend("parsing the Redis URL (check AUTH_REDIS_URL)", e))?;
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), Self::config())
            .map_err(|e| Error::backend("preparing the Redis connection", e))?;
        Ok(Self::new(vec![client], Conn::Single(conn)))
    }

    /// Connects to a Redis Cluster through `seeds` (one or more nodes' URLs; the others are
    /// found from them), the way [`connect`](Self::connect) does to one server. Commands time
    /// out after a second per attempt and three in all, retries included (a primary's
    /// failover: the slots move to its replica and the commands follow them).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when a URL is invalid, when `seeds` is empty or when no node can be
    /// reached now.
    ///
    /// ```no_run
    /// # async fn f() -> auth_service::Result<()> {
    /// let redis = auth_redis::Redis::connect_cluster(&[
    ///     "redis://10.0.0.1:6379/",
    ///     "redis://10.0.0.2:6379/",
    /// ])
    /// .await?
    /// .with_prefix("shop:auth:");
    /// assert!(redis.is_cluster());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "cluster")]
    pub async fn connect_cluster<S: AsRef<str>>(seeds: &[S]) -> Result<Self> {
        let (client, subscribe_to) = Self::cluster_client(seeds)?;
        let conn = tokio::time::timeout(RESPONSE_TIMEOUT * 3, client.get_async_connection())
            .await
            .map_err(|_| {
                Error::Backend(auth_service::BackendError::message(
                    "connecting to the Redis Cluster timed out (check AUTH_REDIS_URL)",
                ))
            })?
            .map_err(|e| {
                Error::backend("connecting to the Redis Cluster (check AUTH_REDIS_URL)", e)
            })?;
        Ok(Self::new(subscribe_to, Conn::Cluster(conn)))
    }

    /// Like [`connect_cluster`](Self::connect_cluster), without waiting for the nodes: the
    /// first command connects.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when a URL is invalid or `seeds` is empty, and outside a Tokio
    /// runtime.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let redis = auth_redis::Redis::open_cluster(&["redis://127.0.0.1:7001/"]).unwrap();
    /// assert!(redis.is_cluster());
    /// assert!(auth_redis::Redis::open_cluster::<&str>(&[]).is_err());
    /// # });
    /// ```
    #[cfg(feature = "cluster")]
    pub fn open_cluster<S: AsRef<str>>(seeds: &[S]) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Backend(auth_service::BackendError::message(
                "Redis::open_cluster needs a running Tokio runtime",
            )));
        }
        let (client, subscribe_to) = Self::cluster_client(seeds)?;
        let conn = client.get_pending_async_connection_with_config(
            redis::cluster::ClusterConfig::new()
                .set_connection_timeout(RESPONSE_TIMEOUT)
                .set_response_timeout(RESPONSE_TIMEOUT),
        );
        Ok(Self::new(subscribe_to, Conn::Cluster(conn)))
    }

    #[cfg(feature = "cluster")]
    fn cluster_client<S: AsRef<str>>(
        seeds: &[S],
    ) -> Result<(redis::cluster::ClusterClient, Vec<redis::Client>)> {
        if seeds.is_empty() {
            return Err(Error::Backend(auth_service::BackendError::message(
                "a Redis Cluster needs at least one seed node (check AUTH_REDIS_URL)",
            )));
        }
        let subscribe_to = seeds
            .iter()
            .map(|url| redis::Client::open(url.as_ref()))
            .collect::<redis::RedisResult<Vec<_>>>()
            .map_err(|e| Error::backend("parsing a Redis URL (check AUTH_REDIS_URL)", e))?;
        let client = redis::cluster::ClusterClientBuilder::new(
            subscribe_to.iter().map(|c| c.get_connection_info().clone()),
        )
        .connection_timeout(RESPONSE_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .overall_response_timeout(Some(RESPONSE_TIMEOUT * 3))
        .retries(8)
        .min_retry_wait(20)
        .max_retry_wait(400)
        .build()
        .map_err(|e| Error::backend("configuring the Redis Cluster (check AUTH_REDIS_URL)", e))?;
        Ok((client, subscribe_to))
    }

    /// Whether this is a Redis Cluster (`connect_cluster`, feature `cluster`).
    ///
    /// ```no_run
    /// # async fn f() -> auth_service::Result<()> {
    /// let redis = auth_redis::Redis::connect("redis://127.0.0.1:6379/").await?;
    /// assert!(!redis.is_cluster());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        !matches!(self.conn, Conn::Single(_))
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
    /// let redis = redis.with_clock(auth_service::FixedClock::from_unix(1_700_000_000));
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
    /// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
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

    /// The key holding this prefix's epoch: when (Unix µs) the revocations kept under it
    /// started. It has no expiry; it is missing only when Redis lost its data (restarted
    /// without persistence, flushed, or evicted it) or before the first start.
    pub(crate) fn epoch_key(&self) -> String {
        self.key(&["epoch"])
    }

    /// The epoch (see [`epoch_key`](Self::epoch_key)), read; `None` when it is missing.
    pub(crate) async fn read_epoch(&self) -> Result<Option<i64>> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.epoch_key())
            .query_async(&mut conn)
            .await
            .map_err(backend("reading the revocation epoch in Redis"))?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// The epoch, starting one now if it is missing (whoever sets it first wins): from then
    /// on, tokens issued before it are refused, since what Redis held before may be lost.
    pub(crate) async fn ensure_epoch(&self) -> Result<i64> {
        if let Some(epoch) = self.read_epoch().await? {
            return Ok(epoch);
        }
        let now = self.now_us();
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.epoch_key())
            .arg(now)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(backend("starting the revocation epoch in Redis"))?;
        if set.is_some() {
            tracing::warn!(
                "no revocation epoch in Redis (its first start, or Redis lost its data: restarted without persistence, flushed or evicted): \
                 every token issued before now is refused, so no logout it may have forgotten is undone"
            );
            return Ok(now);
        }
        Ok(self.read_epoch().await?.unwrap_or(now))
    }

    /// Whether this Redis keeps its data on disk (`appendonly yes` or a `save` schedule):
    /// `Some(false)` when it keeps nothing (a restart loses every revocation, which the epoch
    /// then turns into "sign in again"), `None` when it will not say (`CONFIG` disabled, as on
    /// managed services). Asks the first node of a cluster.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when Redis cannot be reached.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) -> auth_service::Result<()> {
    /// if redis.keeps_data().await? == Some(false) {
    ///     eprintln!("Redis keeps nothing on disk: a restart signs everyone out");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn keeps_data(&self) -> Result<Option<bool>> {
        let mut conn = self.conn.clone();
        let config = |name: &'static str| redis::cmd("CONFIG").arg("GET").arg(name).clone();
        let aof: redis::RedisResult<Vec<String>> =
            config("appendonly").query_async(&mut conn).await;
        let save: redis::RedisResult<Vec<String>> = config("save").query_async(&mut conn).await;
        match (aof, save) {
            (Ok(aof), Ok(save)) => {
                let aof = aof.get(1).is_some_and(|v| v == "yes");
                let save = save.get(1).is_some_and(|v| !v.trim().is_empty());
                Ok(Some(aof || save))
            }
            _ => {
                self.ping().await?;
                Ok(None)
            }
        }
    }

    pub(crate) fn now_us(&self) -> i64 {
        i64::try_from(self.clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
    }

    /// Keys matching `pattern` (under the prefix), by `SCAN` (never `KEYS`), on every
    /// primary of a cluster.
    pub(crate) async fn scan(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = format!("{}{pattern}", escape_glob(&self.prefix));
        let mut keys = Vec::new();
        for node in self.primaries().await? {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1_000);
                let (next, batch): (u64, Vec<String>) = redis::from_redis_value(
                    self.send_to(node.as_ref(), cmd)
                        .await
                        .map_err(backend("scanning Redis keys"))?,
                )
                .map_err(|e| backend("scanning Redis keys")(e.into()))?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        if self.is_cluster() {
            // A key being migrated between two nodes can be listed by both.
            keys.sort_unstable();
            keys.dedup();
        }
        Ok(keys)
    }

    /// The nodes a scan visits: `None` for the one server, each primary's address on a
    /// cluster.
    async fn primaries(&self) -> Result<Vec<Option<(String, u16)>>> {
        match &self.conn {
            Conn::Single(_) => Ok(vec![None]),
            #[cfg(feature = "cluster")]
            Conn::Cluster(_) => {
                let mut conn = self.conn.clone();
                let slots: Value = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut conn)
                    .await
                    .map_err(backend("listing the Redis Cluster's nodes"))?;
                let mut nodes = cluster_primaries(&slots);
                if nodes.is_empty() {
                    return Err(Error::Backend(auth_service::BackendError::message(
                        "the Redis Cluster reported no primary",
                    )));
                }
                nodes.sort_unstable();
                nodes.dedup();
                Ok(nodes.into_iter().map(Some).collect())
            }
        }
    }

    /// Sends `cmd` to `node` (`None`: wherever the connection routes it).
    async fn send_to(&self, node: Option<&(String, u16)>, cmd: Cmd) -> redis::RedisResult<Value> {
        let mut conn = self.conn.clone();
        match (node, &mut conn) {
            #[cfg(feature = "cluster")]
            (Some((host, port)), Conn::Cluster(c)) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                c.route_command(
                    cmd,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    }),
                )
                .await
            }
            _ => cmd.query_async(&mut conn).await,
        }
    }

    /// Runs the commands of a plain (non-atomic) pipeline: in one round trip on one server; on
    /// a cluster, where they may live in different slots, one pipeline per slot (keeping the
    /// order of the commands on each key), the slots concurrently. The answer is the
    /// pipeline's: one value per command, so no `ignore()` and one key per command here.
    pub(crate) async fn batch<T: FromRedisValue>(&self, pipe: &Pipeline) -> redis::RedisResult<T> {
        let mut conn = self.conn.clone();
        match &self.conn {
            Conn::Single(_) => pipe.query_async(&mut conn).await,
            #[cfg(feature = "cluster")]
            Conn::Cluster(_) => {
                use redis::cluster_routing::Slot;
                let cmds: Vec<&Cmd> = pipe.cmd_iter().collect();
                let mut groups: Vec<(Slot, Vec<usize>)> = Vec::new();
                for (i, cmd) in cmds.iter().enumerate() {
                    let slot = match cmd.args_iter().nth(1) {
                        Some(redis::Arg::Simple(key)) => Slot::for_key(key),
                        _ => Slot::for_key(b""),
                    };
                    match groups.iter_mut().find(|(s, _)| *s == slot) {
                        Some((_, members)) => members.push(i),
                        None => groups.push((slot, vec![i])),
                    }
                }
                let answers =
                    futures_util::future::try_join_all(groups.iter().map(|(_, members)| {
                        let mut group = redis::pipe();
                        for &i in members {
                            if let Some(cmd) = cmds.get(i) {
                                group.add_command((*cmd).clone());
                            }
                        }
                        let mut conn = conn.clone();
                        async move { group.query_async::<Vec<Value>>(&mut conn).await }
                    }))
                    .await?;
                let mut values = vec![Value::Nil; cmds.len()];
                for ((_, members), answer) in groups.iter().zip(answers) {
                    for (&i, value) in members.iter().zip(answer) {
                        if let Some(slot) = values.get_mut(i) {
                            *slot = value;
                        }
                    }
                }
                Ok(redis::from_redis_value(Value::Array(values))?)
            }
        }
    }
}

/// The primaries' addresses in a `CLUSTER SLOTS` answer: per slot range, its start, its end,
/// then the primary `[host, port, id, …]`, then the replicas.
#[cfg(feature = "cluster")]
fn cluster_primaries(slots: &Value) -> Vec<(String, u16)> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let Value::Array(ranges) = slots else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter_map(|range| {
            let Value::Array(range) = range else {
                return None;
            };
            let Value::Array(primary) = range.get(2)? else {
                return None;
            };
            let host = text(primary.first()?)?;
            let Value::Int(port) = primary.get(1)? else {
                return None;
            };
            Some((host, u16::try_from(*port).ok()?))
        })
        .collect()
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
    auth_service::random::sha256_hex(value)[..32].to_owned()
}

pub(crate) use auth_service::{from_unix_micros as from_micros, unix_micros as micros};

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
