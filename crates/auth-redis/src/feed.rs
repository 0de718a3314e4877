//! `RedisFeed`: the change feed over Redis pub/sub.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use auth_service::{
    Change, ChangeFeed, ChangeHub, ChangeSubscriber, FeedStatus, Result, async_trait,
};
use futures_util::StreamExt as _;

use crate::connection::{Redis, backend};

/// How often the subscriber proves it still receives.
const HEARTBEAT: Duration = Duration::from_secs(1);

struct Inner {
    redis: Redis,
    channel: String,
    hub: ChangeHub,
    /// Dropped with the feed: the receiving task sees it and ends.
    _stop: tokio::sync::watch::Sender<()>,
}

/// A [`ChangeFeed`] over Redis pub/sub (channel `<prefix>changes`): publishing is one
/// `PUBLISH`; each instance subscribes on a connection of its own and sends itself a heartbeat
/// every second. The feed is down — mirrors and caches ask their stores — when the
/// subscription drops or three heartbeats go unheard (pub/sub delivers at most once: a message
/// sent while a subscriber reconnects is lost, which is why mirrors reload after every
/// outage). It reconnects by itself.
///
/// ```no_run
/// use auth_service::ChangeFeed;
/// # async fn f(redis: auth_redis::Redis) {
/// let feed = auth_redis::RedisFeed::start(&redis);
/// assert_eq!(feed.status().channel, "redis-pubsub");
/// # }
/// ```
#[derive(Clone)]
pub struct RedisFeed {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFeed")
            .field("status", &self.inner.hub.status())
            .finish_non_exhaustive()
    }
}

impl RedisFeed {
    /// Starts receiving (needs a Tokio runtime); the task ends when the last clone is dropped.
    ///
    /// ```no_run
    /// # async fn f(redis: auth_redis::Redis) {
    /// let feed = auth_redis::RedisFeed::start(&redis);
    /// # }
    /// ```
    #[must_use]
    pub fn start(redis: &Redis) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let inner = Arc::new(Inner {
            redis: redis.clone(),
            channel: redis.key(&["changes"]),
            hub: ChangeHub::new("redis-pubsub", false),
            _stop: stop,
        });
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(listen(Arc::downgrade(&inner), stopped));
            }
            Err(_) => inner
                .hub
                .down("started outside a Tokio runtime: nothing is received"),
        }
        Self { inner }
    }
}

impl RedisFeed {
    /// A feed that only publishes: for management commands and other short-lived writers. It
    /// is never live (nothing is received), so a mirror or cache over it asks its store.
    ///
    /// ```no_run
    /// use auth_service::ChangeFeed;
    /// # async fn f(redis: auth_redis::Redis) {
    /// let feed = auth_redis::RedisFeed::publisher(&redis);
    /// assert!(!feed.status().live);
    /// # }
    /// ```
    #[must_use]
    pub fn publisher(redis: &Redis) -> Self {
        let (stop, _) = tokio::sync::watch::channel(());
        let hub = ChangeHub::new("publish-only", false);
        hub.down("publish-only: this process receives nothing");
        Self {
            inner: Arc::new(Inner {
                redis: redis.clone(),
                channel: redis.key(&["changes"]),
                hub,
                _stop: stop,
            }),
        }
    }
}

#[async_trait]
impl ChangeFeed for RedisFeed {
    async fn publish(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let payload = changes
            .iter()
            .map(Change::encode)
            .collect::<Vec<_>>()
            .join("\n");
        let mut conn = self.inner.redis.conn.clone();
        redis::cmd("PUBLISH")
            .arg(&self.inner.channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(backend("publishing a change to Redis"))?;
        Ok(())
    }

    fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>) {
        self.inner.hub.subscribe(subscriber);
    }

    fn status(&self) -> FeedStatus {
        self.inner.hub.status()
    }
}

fn deliver(hub: &ChangeHub, payload: &str) {
    let changes: Vec<Change> = payload
        .lines()
        .filter(|l| *l != "ping")
        .filter_map(|line| {
            let c = Change::decode(line);
            if c.is_none() {
                tracing::warn!(
                    length = line.len(),
                    "skipped a change this version cannot read"
                );
            }
            c
        })
        .collect();
    hub.deliver(&changes);
}

async fn pause(stopped: &mut tokio::sync::watch::Receiver<()>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        r = stopped.changed() => r.is_ok(),
    }
}

async fn listen(weak: Weak<Inner>, mut stopped: tokio::sync::watch::Receiver<()>) {
    let mut backoff = Duration::from_millis(100);
    // On a cluster, each seed node in turn: a message published on any node reaches them all.
    let mut node = 0usize;
    // The revocation epoch at subscription: if it changes or disappears, Redis lost its data.
    let mut epoch: Option<i64>;
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let nodes = &inner.redis.subscribe_to;
        let Some(client) = nodes.get(node % nodes.len().max(1)).cloned() else {
            inner.hub.down("no Redis node to subscribe to");
            return;
        };
        node = node.wrapping_add(1);
        let subscribed = tokio::time::timeout(Duration::from_secs(3), async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&inner.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match subscribed {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                inner.hub.down(format!("cannot subscribe: {e}"));
                drop(inner);
                if !pause(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {
                inner.hub.down("cannot subscribe: timed out");
                drop(inner);
                if !pause(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let mut messages = pubsub.into_on_message();
        // The revocation epoch the subscribers will load with (started now if Redis has
        // none): a later heartbeat that finds it gone or changed knows Redis lost its data.
        epoch = match inner.redis.ensure_epoch().await {
            Ok(e) => Some(e),
            Err(e) => {
                inner
                    .hub
                    .down(format!("cannot read the revocation epoch: {e}"));
                drop(inner);
                if !pause(&mut stopped, backoff).await {
                    return;
                }
                continue;
            }
        };
        // Subscribed: what is published from now on arrives; subscribers reload the rest.
        inner.hub.up();
        let mut last_heard = Instant::now();
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                r = stopped.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                message = messages.next() => match message {
                    Some(m) => {
                        last_heard = Instant::now();
                        if let Ok(payload) = m.get_payload::<String>() {
                            deliver(&inner.hub, &payload);
                        }
                    }
                    None => break "subscription lost".to_owned(),
                },
                _ = beat.tick() => {
                    if last_heard.elapsed() > HEARTBEAT * 3 {
                        break format!("no message for {} ms", last_heard.elapsed().as_millis());
                    }
                    // Redis lost its data (restarted empty, flushed): what any mirror holds
                    // may be more than Redis now knows, and less than it must refuse. Down,
                    // so that every subscriber reloads, with the new epoch as its floor.
                    match inner.redis.read_epoch().await {
                        Ok(now) if now != epoch => {
                            break "Redis lost its data (its revocation epoch changed): reloading".to_owned();
                        }
                        Ok(_) => {}
                        Err(e) => break format!("heartbeat failed: {e}"),
                    }
                    let mut conn = inner.redis.conn.clone();
                    if let Err(e) = redis::cmd("PUBLISH")
                        .arg(&inner.channel)
                        .arg("ping")
                        .query_async::<i64>(&mut conn)
                        .await
                    {
                        break format!("heartbeat failed: {e}");
                    }
                }
            }
        };
        inner.hub.down(reason);
        drop(inner);
        if !pause(&mut stopped, backoff).await {
            return;
        }
    }
}
