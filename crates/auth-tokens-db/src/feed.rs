//! `DbChangeFeed`: revocations and user changes pushed to every instance that shares a
//! database — PostgreSQL `LISTEN/NOTIFY`, or an append-only log polled by id (MySQL/MariaDB;
//! SQLite, where the serving process publishes in-process and management commands write the
//! log).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use auth_service::{
    BackendError, Change, ChangeFeed, ChangeHub, ChangeSubscriber, Clock, Error, FeedStatus,
    Result, SharedClock, SystemClock, async_trait,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::migration::AuthChangeLog;

/// Log rows older than this are deleted: an instance away for longer reloads everything anyway.
const LOG_RETENTION: Duration = Duration::from_secs(600);
/// A gap in the log's ids (a transaction that took its id but had not committed when polled)
/// is looked for again for this long; then it is taken for a rollback.
const GAP_WAIT: Duration = Duration::from_secs(5);
/// Rows read per poll at most; a full page is followed by another poll at once.
const PAGE: u64 = 1_000;
/// PostgreSQL payloads are limited to 8,000 bytes; changes are sent in chunks below that.
const NOTIFY_CHUNK: usize = 7_000;

/// How a [`DbChangeFeed`] carries changes and how quickly it notices trouble.
///
/// ```
/// use std::time::Duration;
/// use auth_tokens_db::DbFeedOptions;
/// let options = DbFeedOptions::default().with_poll_interval(Duration::from_millis(100));
/// assert_eq!(options.poll_interval(), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct DbFeedOptions {
    poll_interval: Duration,
    heartbeat: Duration,
    channel: String,
    clock: SharedClock,
}

impl Default for DbFeedOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            heartbeat: Duration::from_secs(1),
            channel: "auth_changes".to_owned(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl DbFeedOptions {
    /// How often the log is polled (MySQL/MariaDB, SQLite; default 250 ms): the bound on how
    /// late another instance learns of a revocation.
    ///
    /// ```
    /// # use auth_tokens_db::DbFeedOptions;
    /// let _ = DbFeedOptions::default().with_poll_interval(std::time::Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The poll interval.
    ///
    /// ```
    /// # use auth_tokens_db::DbFeedOptions;
    /// assert_eq!(DbFeedOptions::default().poll_interval().as_millis(), 250);
    /// ```
    #[must_use]
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// PostgreSQL: how often the listener proves it still receives (default 1 s); after three
    /// silent heartbeats the feed is down and checks query the database.
    ///
    /// ```
    /// # use auth_tokens_db::DbFeedOptions;
    /// let _ = DbFeedOptions::default().with_heartbeat(std::time::Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(50));
        self
    }

    /// The PostgreSQL channel (default `auth_changes`; notifications stay within one database).
    ///
    /// ```
    /// # use auth_tokens_db::DbFeedOptions;
    /// let _ = DbFeedOptions::default().with_channel("tenant_a_auth");
    /// ```
    #[must_use]
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }

    /// Reads time from `clock` (log rows' instants, for their retention).
    ///
    /// ```
    /// # use auth_tokens_db::DbFeedOptions;
    /// let _ = DbFeedOptions::default().with_clock(auth_service::FixedClock::from_unix(0));
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// `pg_notify`.
    Notify,
    /// A row in `auth_change_log`.
    Log,
    /// To this process's subscribers only (the SQLite file's serving process).
    InProcess,
}

struct Inner {
    db: DatabaseConnection,
    options: DbFeedOptions,
    publish: Publish,
    /// Coalesces concurrent publications into one notification or insert.
    outbox: Option<Outbox>,
    hub: ChangeHub,
    /// Dropped with the feed: the background task sees it and ends.
    _stop: tokio::sync::watch::Sender<()>,
}

/// A [`ChangeFeed`] over the database every instance shares, so each instance's
/// [`RevocationMirror`](auth_service::RevocationMirror) and [`UserCache`](auth_service::UserCache)
/// learn of every revocation and user change:
///
/// | database | publish | receive | down when |
/// |---|---|---|---|
/// | PostgreSQL | `pg_notify` | `LISTEN` on a connection of its own | the connection drops, or three heartbeats go unheard |
/// | MySQL / MariaDB | a row in `auth_change_log` | polling the log by id (default every 250 ms) | a poll fails or takes over 2 s |
/// | SQLite | to this process (one serving process per file) | polling the log that management commands write | a poll fails |
///
/// While it is down, mirrors and caches ask the database on every check (fail closed); when
/// it is back they reload. A writer that dies between its write and its publish leaves the
/// others unaware until their next reload, which is why publishing comes right after the write.
///
/// [`start`](Self::start) is for serving processes (it spawns the receiving task, which ends
/// when the last clone is dropped); [`publisher`](Self::publisher) is for short-lived writers
/// such as management commands (it only publishes, through the database on every backend).
///
/// ```
/// use auth_service::{ChangeFeed, RevocationMirror};
/// use auth_tokens_db::{DbChangeFeed, DbRevocationStore};
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// # let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// # let manager = sea_orm_migration::SchemaManager::new(&db);
/// # for m in auth_tokens_db::migrations().into_iter().skip(1) { m.up(&manager).await.unwrap(); }
/// let feed = DbChangeFeed::start(db.clone());
/// let mirror = RevocationMirror::new(DbRevocationStore::new(db), feed.clone());
/// assert!(mirror.wait_ready(std::time::Duration::from_secs(5)).await);
/// assert_eq!(feed.status().channel, "in-process+log-poll");
/// # });
/// ```
#[derive(Clone)]
pub struct DbChangeFeed {
    inner: Arc<Inner>,
}

impl fmt::Debug for DbChangeFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbChangeFeed")
            .field("status", &self.inner.hub.status())
            .finish_non_exhaustive()
    }
}

impl DbChangeFeed {
    /// Starts the feed of a serving instance with default options. Needs a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let feed = auth_tokens_db::DbChangeFeed::start(db);
    /// # }
    /// ```
    #[must_use]
    pub fn start(db: DatabaseConnection) -> Self {
        Self::start_with(db, DbFeedOptions::default())
    }

    /// Starts the feed of a serving instance. Needs a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// use auth_tokens_db::{DbChangeFeed, DbFeedOptions};
    /// let feed = DbChangeFeed::start_with(db, DbFeedOptions::default()
    ///     .with_poll_interval(std::time::Duration::from_millis(100)));
    /// # }
    /// ```
    #[must_use]
    pub fn start_with(db: DatabaseConnection, options: DbFeedOptions) -> Self {
        let backend = db.get_database_backend();
        let (publish, channel) = match backend {
            DatabaseBackend::Postgres => (Publish::Notify, "postgres-notify"),
            DatabaseBackend::Sqlite => (Publish::InProcess, "in-process+log-poll"),
            _ => (Publish::Log, "log-poll"),
        };
        let (stop, stopped) = tokio::sync::watch::channel(());
        let outbox = Outbox::start(&db, &options, publish);
        let inner = Arc::new(Inner {
            db,
            options,
            publish,
            outbox,
            hub: ChangeHub::new(channel, false),
            _stop: stop,
        });
        let weak = Arc::downgrade(&inner);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                if publish == Publish::Notify {
                    #[cfg(feature = "postgres")]
                    handle.spawn(listen(weak, stopped));
                    // Without the driver's listener the feed would hear nothing: it stays down,
                    // so mirrors and caches keep asking the database.
                    #[cfg(not(feature = "postgres"))]
                    {
                        drop((weak, stopped, handle));
                        inner
                            .hub
                            .down("PostgreSQL needs auth-tokens-db's `postgres` feature to listen");
                    }
                } else {
                    handle.spawn(poll(weak, stopped));
                }
            }
            Err(_) => inner
                .hub
                .down("started outside a Tokio runtime: nothing is received"),
        }
        Self { inner }
    }

    /// A feed that only publishes, through the database (a `NOTIFY` or a log row on every
    /// backend, SQLite included): for management commands and other short-lived writers, so the
    /// serving instances learn of what they change.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let feed = auth_tokens_db::DbChangeFeed::publisher(db);
    /// # }
    /// ```
    #[must_use]
    pub fn publisher(db: DatabaseConnection) -> Self {
        let publish = if db.get_database_backend() == DatabaseBackend::Postgres {
            Publish::Notify
        } else {
            Publish::Log
        };
        let (stop, _) = tokio::sync::watch::channel(());
        let options = DbFeedOptions::default();
        Self {
            inner: Arc::new(Inner {
                outbox: Outbox::start(&db, &options, publish),
                db,
                options,
                publish,
                // Never live: nothing is received, so a mirror or cache over it asks the
                // database (a command has no use for loading every revocation), while what it
                // writes is still published.
                hub: {
                    let hub = ChangeHub::new("publish-only", false);
                    hub.down("publish-only: this process receives nothing");
                    hub
                },
                _stop: stop,
            }),
        }
    }
}

#[async_trait]
impl ChangeFeed for DbChangeFeed {
    async fn publish(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        if inner.publish == Publish::InProcess {
            inner.hub.deliver(changes);
            return Ok(());
        }
        match &inner.outbox {
            Some(outbox) => outbox.publish(changes).await,
            None => send(&inner.db, &inner.options, inner.publish, changes).await,
        }
    }

    fn subscribe(&self, subscriber: Arc<dyn ChangeSubscriber>) {
        self.inner.hub.subscribe(subscriber);
    }

    fn status(&self) -> FeedStatus {
        self.inner.hub.status()
    }
}

/// Sends changes through the database: notifications in chunks, or one multi-row insert.
async fn send(
    db: &DatabaseConnection,
    options: &DbFeedOptions,
    publish: Publish,
    changes: &[Change],
) -> Result<()> {
    match publish {
        Publish::InProcess => Ok(()),
        Publish::Notify => {
            for chunk in chunks(changes) {
                notify(db, &options.channel, &chunk).await?;
            }
            Ok(())
        }
        Publish::Log => {
            let now = micros(options.clock.as_ref());
            let mut insert = Query::insert()
                .into_table(AuthChangeLog::Table)
                .columns([AuthChangeLog::Body, AuthChangeLog::CreatedUs])
                .to_owned();
            for c in changes {
                insert.values_panic([c.encode().into(), now.into()]);
            }
            db.execute(&insert)
                .await
                .map_err(|e| Error::backend("publishing a change", e))?;
            Ok(())
        }
    }
}

/// One caller's changes waiting to be sent.
type Letter = (
    Vec<Change>,
    tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
);

/// Concurrent publications go out together: while one notification (or insert) is in flight,
/// the next ones queue and leave in a single one. Each caller is answered once its changes
/// were accepted by the database.
struct Outbox {
    letters: tokio::sync::mpsc::UnboundedSender<Letter>,
}

impl Outbox {
    /// Most changes per send.
    const MAX_BATCH: usize = 512;

    fn start(db: &DatabaseConnection, options: &DbFeedOptions, publish: Publish) -> Option<Self> {
        if publish == Publish::InProcess {
            return None;
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let (letters, mut queue) = tokio::sync::mpsc::unbounded_channel::<Letter>();
        let (db, options) = (db.clone(), options.clone());
        handle.spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut changes = first.0;
                let mut waiting = vec![first.1];
                while changes.len() < Self::MAX_BATCH {
                    match queue.try_recv() {
                        Ok((more, done)) => {
                            changes.extend(more);
                            waiting.push(done);
                        }
                        Err(_) => break,
                    }
                }
                let outcome = send(&db, &options, publish, &changes)
                    .await
                    .map_err(|e| e.to_string());
                for done in waiting {
                    let _ = done.send(outcome.clone());
                }
            }
        });
        Some(Self { letters })
    }

    async fn publish(&self, changes: &[Change]) -> Result<()> {
        let failed =
            |m: String| Error::Backend(BackendError::message(format!("publishing a change: {m}")));
        let (done, answer) = tokio::sync::oneshot::channel();
        self.letters
            .send((changes.to_vec(), done))
            .map_err(|_| failed("the publishing task has stopped".into()))?;
        answer
            .await
            .map_err(|_| failed("the publishing task has stopped".into()))?
            .map_err(failed)
    }
}

fn micros(clock: &dyn Clock) -> i64 {
    i64::try_from(clock.now().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Encoded changes, one per line, in payloads below PostgreSQL's limit.
fn chunks(changes: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in changes {
        let line = c.encode();
        if !current.is_empty() && current.len() + line.len() + 1 > NOTIFY_CHUNK {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

async fn notify(db: &DatabaseConnection, channel: &str, payload: &str) -> Result<()> {
    // A notifying transaction takes a global lock and, having an id, syncs its commit record:
    // NOTIFYs would serialize on the disk. A notification is not durable anyway (listeners get
    // it at commit, a crash loses it either way), so this one statement's transaction commits
    // without waiting for the sync.
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
        [channel.into(), payload.into()],
    );
    db.execute_raw(statement)
        .await
        .map_err(|e| Error::backend("publishing a change", e))?;
    Ok(())
}

fn decode(hub: &ChangeHub, payload: &str) {
    let mut changes = Vec::new();
    for line in payload.lines() {
        if line.starts_with("ping") {
            continue;
        }
        match Change::decode(line) {
            Some(c) => changes.push(c),
            None => tracing::warn!(
                length = line.len(),
                "skipped a change this version cannot read (a newer instance's?)"
            ),
        }
    }
    hub.deliver(&changes);
}

/// Sleeps `d`, or less if the feed is dropped; `false` once it is.
async fn pause(stopped: &mut tokio::sync::watch::Receiver<()>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        r = stopped.changed() => r.is_ok(),
    }
}

#[cfg(feature = "postgres")]
/// PostgreSQL: LISTEN on a connection of its own, forwarded by a task that owns it, with a
/// heartbeat through the pool proving the path works end to end.
async fn listen(weak: Weak<Inner>, mut stopped: tokio::sync::watch::Receiver<()>) {
    use sea_orm::sqlx::postgres::PgListener;

    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let channel = inner.options.channel.clone();
        let heartbeat = inner.options.heartbeat;
        let pool = inner.db.get_postgres_connection_pool().clone();
        let connected = tokio::time::timeout(Duration::from_secs(5), async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        })
        .await;
        let mut listener = match connected {
            Ok(Ok(listener)) => listener,
            Ok(Err(e)) => {
                inner.hub.down(format!("cannot listen: {e}"));
                drop(inner);
                if !pause(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {
                inner.hub.down("cannot listen: timed out");
                drop(inner);
                if !pause(&mut stopped, backoff).await {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // The listener lives in a task of its own: a receive cannot be cancelled halfway.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<String>>(1_024);
        let receiver = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if tx.send(Some(n.payload().to_owned())).await.is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = tx.send(None).await;
                        return;
                    }
                }
            }
        });
        // Listening: what is committed from now on arrives; subscribers reload the rest.
        inner.hub.up();
        let mut last_heard = Instant::now();
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                r = stopped.changed() => {
                    if r.is_err() {
                        receiver.abort();
                        return;
                    }
                }
                message = rx.recv() => match message {
                    Some(Some(payload)) => {
                        last_heard = Instant::now();
                        decode(&inner.hub, &payload);
                    }
                    _ => break "connection lost".to_owned(),
                },
                _ = beat.tick() => {
                    if last_heard.elapsed() > heartbeat * 3 {
                        break format!("no notification for {} ms", last_heard.elapsed().as_millis());
                    }
                    if let Err(e) = notify(&inner.db, &channel, "ping").await {
                        break format!("heartbeat failed: {e}");
                    }
                }
            }
        };
        receiver.abort();
        inner.hub.down(reason);
        drop(inner);
        if !pause(&mut stopped, backoff).await {
            return;
        }
    }
}

/// The log: rows after the last id seen, with ids skipped by transactions not yet committed
/// looked for again for a while.
struct Cursor {
    last: i64,
    gaps: BTreeMap<i64, Instant>,
}

impl Cursor {
    fn floor(&self) -> i64 {
        self.gaps
            .keys()
            .next()
            .map_or(self.last, |first| Ord::min(first - 1, self.last))
    }

    /// Whether row `id` is new, recording the ids it skipped.
    fn take(&mut self, id: i64) -> bool {
        if id > self.last {
            let now = Instant::now();
            for missing in (self.last + 1)..id {
                self.gaps.insert(missing, now + GAP_WAIT);
                if self.gaps.len() > 10_000 {
                    break;
                }
            }
            self.last = id;
            true
        } else {
            self.gaps.remove(&id).is_some()
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        self.gaps.retain(|_, until| *until > now);
    }
}

async fn max_id(db: &DatabaseConnection) -> std::result::Result<i64, sea_orm::DbErr> {
    let q = Query::select()
        .expr(Func::coalesce([
            Func::max(Expr::col(AuthChangeLog::Id)).into(),
            Expr::val(0_i64),
        ]))
        .from(AuthChangeLog::Table)
        .to_owned();
    match db.query_one(&q).await? {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Ok(0),
    }
}

async fn read_page(
    inner: &Inner,
    cursor: &mut Cursor,
) -> std::result::Result<usize, sea_orm::DbErr> {
    let q = Query::select()
        .columns([AuthChangeLog::Id, AuthChangeLog::Body])
        .from(AuthChangeLog::Table)
        .and_where(Expr::col(AuthChangeLog::Id).gt(cursor.floor()))
        .order_by(AuthChangeLog::Id, Order::Asc)
        .limit(PAGE)
        .to_owned();
    let rows = inner.db.query_all(&q).await?;
    let mut payload = String::new();
    for row in &rows {
        let id: i64 = row.try_get_by_index(0)?;
        let body: String = row.try_get_by_index(1)?;
        if cursor.take(id) {
            payload.push_str(&body);
            payload.push('\n');
        }
    }
    cursor.expire();
    decode(&inner.hub, &payload);
    Ok(rows.len())
}

async fn trim_log(inner: &Inner) -> std::result::Result<u64, sea_orm::DbErr> {
    let cutoff = micros(inner.options.clock.as_ref())
        .saturating_sub(i64::try_from(LOG_RETENTION.as_micros()).unwrap_or(i64::MAX));
    let delete = Query::delete()
        .from_table(AuthChangeLog::Table)
        .and_where(Expr::col(AuthChangeLog::CreatedUs).lt(cutoff))
        .to_owned();
    Ok(inner.db.execute(&delete).await?.rows_affected())
}

/// MySQL/MariaDB and SQLite: poll the log.
async fn poll(weak: Weak<Inner>, mut stopped: tokio::sync::watch::Receiver<()>) {
    const POLL_TIMEOUT: Duration = Duration::from_secs(2);
    let mut cursor: Option<Cursor> = None;
    let mut last_trim = Instant::now();
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let interval = inner.options.poll_interval;
        let outcome = tokio::time::timeout(POLL_TIMEOUT, async {
            if cursor.is_none() {
                // Start from what exists now: subscribers load the state itself on `up`.
                cursor = Some(Cursor {
                    last: max_id(&inner.db).await?,
                    gaps: BTreeMap::new(),
                });
            }
            let Some(c) = cursor.as_mut() else {
                return Ok(0);
            };
            read_page(&inner, c).await
        })
        .await;
        let full = match outcome {
            Ok(Ok(n)) => {
                inner.hub.up();
                n as u64 >= PAGE
            }
            Ok(Err(e)) => {
                inner
                    .hub
                    .down(format!("polling the change log failed: {e}"));
                false
            }
            Err(_) => {
                inner.hub.down("polling the change log took over 2 s");
                false
            }
        };
        if last_trim.elapsed() > Duration::from_secs(60) {
            last_trim = Instant::now();
            match trim_log(&inner).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "trimmed the change log"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "trimming the change log failed"),
            }
        }
        drop(inner);
        if !full && !pause(&mut stopped, interval).await {
            return;
        }
    }
}
