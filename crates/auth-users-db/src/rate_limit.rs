//! `DbRateLimiter`: failure counts and enforced lockouts in SQL, shared by every instance.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Clock, Error, RateLimitPolicy, RateLimitStatus, RateLimiter, Result, SharedClock, SystemClock,
    async_trait, random,
};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, SqlErr};
use time::OffsetDateTime;

use crate::migration::AuthRateLimits;

/// A [`RateLimiter`] on sea-orm, with the same semantics as `auth_core::MemoryRateLimiter`
/// (failures counted in a window from the first one; reaching the maximum locks the key for the
/// whole lockout; `retry_after` is exact) and atomic without locks: every change is one
/// conditional `UPDATE`, so concurrent failures are all counted and exactly one caller sets a
/// lockout. Keys over 100 bytes are stored as their SHA-256.
///
/// ```
/// use auth_core::{RateLimitPolicy, RateLimiter};
/// use auth_users_db::DbRateLimiter;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// # let manager = sea_orm_migration::SchemaManager::new(&db);
/// # for m in auth_users_db::migrations() { m.up(&manager).await.unwrap(); }
/// let limiter = DbRateLimiter::new(db, RateLimitPolicy::default());
/// for _ in 0..5 {
///     limiter.record("alice@example.com").await?;
/// }
/// assert!(!limiter.check("alice@example.com").await?.is_allowed());
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbRateLimiter {
    db: DatabaseConnection,
    policy: RateLimitPolicy,
    clock: SharedClock,
}

struct Row {
    failures: i32,
    window_start: OffsetDateTime,
    locked_until: Option<OffsetDateTime>,
}

impl DbRateLimiter {
    /// A limiter on `db` (migrated) with `policy`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let limiter = auth_users_db::DbRateLimiter::new(db, auth_core::RateLimitPolicy::default());
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection, policy: RateLimitPolicy) -> Self {
        Self {
            db,
            policy,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time from `clock`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let limiter = auth_users_db::DbRateLimiter::new(db, auth_core::RateLimitPolicy::default())
    ///     .with_clock(auth_core::FixedClock::from_unix(0));
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    fn now(&self) -> OffsetDateTime {
        auth_core::truncate_to_micros(self.clock.now())
    }

    fn span(d: Duration) -> time::Duration {
        time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
    }

    fn stored_key(key: &str) -> String {
        if key.len() <= 100 {
            key.to_owned()
        } else {
            format!("sha256:{}", random::sha256_hex(key))
        }
    }

    async fn row(&self, key: &str) -> Result<Option<Row>> {
        let select = Query::select()
            .columns([
                AuthRateLimits::Failures,
                AuthRateLimits::WindowStart,
                AuthRateLimits::LockedUntil,
            ])
            .from(AuthRateLimits::Table)
            .and_where(Expr::col(AuthRateLimits::Key).eq(key))
            .to_owned();
        let Some(r) = self
            .db
            .query_one(&select)
            .await
            .map_err(db("reading a rate limit"))?
        else {
            return Ok(None);
        };
        Ok(Some(Row {
            failures: r
                .try_get("", "failures")
                .map_err(db("reading a rate limit"))?,
            window_start: r
                .try_get("", "window_start")
                .map_err(db("reading a rate limit"))?,
            locked_until: r
                .try_get("", "locked_until")
                .map_err(db("reading a rate limit"))?,
        }))
    }

    fn status(&self, row: Option<&Row>, now: OffsetDateTime) -> RateLimitStatus {
        let max = self.policy.max_attempts();
        match row {
            None => RateLimitStatus::Allowed { remaining: max },
            Some(r) => {
                match r.locked_until {
                    Some(until) if until > now => return limited(now, until),
                    // An ended lockout starts the key afresh.
                    Some(_) => return RateLimitStatus::Allowed { remaining: max },
                    None => {}
                }
                if r.window_start <= now - Self::span(self.policy.window()) {
                    return RateLimitStatus::Allowed { remaining: max };
                }
                let used = u32::try_from(r.failures).unwrap_or(0);
                RateLimitStatus::Allowed {
                    remaining: max.saturating_sub(used),
                }
            }
        }
    }

    async fn update(&self, update: sea_orm::sea_query::UpdateStatement) -> Result<u64> {
        Ok(self
            .db
            .execute(&update)
            .await
            .map_err(db("updating a rate limit"))?
            .rows_affected())
    }
}

/// An attempt granted with `remaining` left after it (at least one unless it was the last).
fn allowed(remaining: i32) -> RateLimitStatus {
    RateLimitStatus::Allowed {
        remaining: u32::try_from(remaining).unwrap_or(0),
    }
}

fn limited(now: OffsetDateTime, until: OffsetDateTime) -> RateLimitStatus {
    let wait = Duration::try_from(until - now).unwrap_or(Duration::ZERO);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    RateLimitStatus::Limited {
        retry_after: Duration::from_secs(Ord::max(secs, 1)),
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

impl fmt::Debug for DbRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbRateLimiter")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RateLimiter for DbRateLimiter {
    async fn check(&self, key: &str) -> Result<RateLimitStatus> {
        let key = Self::stored_key(key);
        let row = self.row(&key).await?;
        Ok(self.status(row.as_ref(), self.now()))
    }

    async fn acquire(&self, key: &str) -> Result<RateLimitStatus> {
        let key = Self::stored_key(key);
        let now = self.now();
        let window_floor = now - Self::span(self.policy.window());
        let max = i32::try_from(self.policy.max_attempts()).unwrap_or(i32::MAX);
        let lock_at = now + Self::span(self.policy.lockout());
        // The row is read first, and each write is conditional on what was read, so a locked
        // key is refused by a read alone (a flood of refused attempts takes no write lock, which
        // on SQLite every other writer would wait for), and an attempt costs one write. A few
        // rounds at most: a write that finds the row changed under it reads again.
        for _ in 0..6 {
            let Some(r) = self.row(&key).await? else {
                // No row: the first attempt creates it; a duplicate means another caller made
                // it first, so read again.
                let last = max <= 1;
                let insert = Query::insert()
                    .into_table(AuthRateLimits::Table)
                    .columns([
                        AuthRateLimits::Key,
                        AuthRateLimits::Failures,
                        AuthRateLimits::WindowStart,
                        AuthRateLimits::LockedUntil,
                    ])
                    .values_panic([
                        key.as_str().into(),
                        1.into(),
                        now.into(),
                        last.then_some(lock_at).into(),
                    ])
                    .to_owned();
                match self.db.execute(&insert).await {
                    Ok(_) => return Ok(allowed(max - 1)),
                    Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                        continue;
                    }
                    Err(e) => return Err(Error::backend("reserving an attempt", e)),
                }
            };
            if let Some(until) = r.locked_until.filter(|u| *u > now) {
                return Ok(limited(now, until));
            }
            if r.locked_until.is_some() || r.window_start <= window_floor {
                // An ended lockout or window: this attempt is the first of a new one.
                // Conditional on the state just read, so concurrent callers roll the key over
                // once.
                let fresh = Query::update()
                    .table(AuthRateLimits::Table)
                    .value(AuthRateLimits::Failures, 1)
                    .value(AuthRateLimits::WindowStart, now)
                    .value(AuthRateLimits::LockedUntil, (max <= 1).then_some(lock_at))
                    .and_where(Expr::col(AuthRateLimits::Key).eq(key.as_str()))
                    .and_where(
                        Expr::col(AuthRateLimits::LockedUntil)
                            .lte(now)
                            .or(Expr::col(AuthRateLimits::LockedUntil)
                                .is_null()
                                .and(Expr::col(AuthRateLimits::WindowStart).lte(window_floor))),
                    )
                    .to_owned();
                if self.update(fresh).await? == 1 {
                    return Ok(allowed(max - 1));
                }
                continue;
            }
            // A live window: an attempt that is not the key's last while at least one more
            // would be left after it (whatever others take meanwhile: the condition is on the
            // count at the time of the write) ...
            let live = |q: &mut sea_orm::sea_query::UpdateStatement| {
                q.table(AuthRateLimits::Table)
                    .and_where(Expr::col(AuthRateLimits::Key).eq(key.as_str()))
                    .and_where(Expr::col(AuthRateLimits::LockedUntil).is_null())
                    .and_where(Expr::col(AuthRateLimits::WindowStart).gt(window_floor));
            };
            if r.failures + 1 < max {
                let mut take = Query::update();
                live(&mut take);
                take.value(
                    AuthRateLimits::Failures,
                    Expr::col(AuthRateLimits::Failures).add(1),
                )
                .and_where(Expr::col(AuthRateLimits::Failures).add(1).lt(max));
                if self.update(take).await? == 1 {
                    // At least one is left, whatever others took since the read.
                    return Ok(allowed(max - r.failures - 1));
                }
                continue;
            }
            // ... or the last attempt, which locks the key: exactly one caller takes it, so
            // one lockout is reported once (one event, one mail). A row whose attempts are
            // used up but which is not locked (written by an older version) is locked here too.
            let mut last = Query::update();
            live(&mut last);
            last.value(AuthRateLimits::LockedUntil, Some(lock_at))
                .value(
                    AuthRateLimits::Failures,
                    Expr::col(AuthRateLimits::Failures).add(1),
                )
                .and_where(Expr::col(AuthRateLimits::Failures).add(1).eq(max));
            if self.update(last).await? == 1 {
                return Ok(RateLimitStatus::Allowed { remaining: 0 });
            }
            if r.failures >= max {
                self.update(
                    Query::update()
                        .table(AuthRateLimits::Table)
                        .value(AuthRateLimits::LockedUntil, Some(lock_at))
                        .and_where(Expr::col(AuthRateLimits::Key).eq(key.as_str()))
                        .and_where(Expr::col(AuthRateLimits::LockedUntil).is_null())
                        .to_owned(),
                )
                .await?;
            }
        }
        // Still undecided after several rounds of contention: refuse rather than guess.
        Ok(limited(now, now + time::Duration::SECOND))
    }

    async fn release(&self, key: &str) -> Result<()> {
        let max = i32::try_from(self.policy.max_attempts()).unwrap_or(i32::MAX);
        // One statement; `locked_until` first so that it sees the old count everywhere.
        self.update(
            Query::update()
                .table(AuthRateLimits::Table)
                .value(
                    AuthRateLimits::LockedUntil,
                    Expr::case(
                        Expr::col(AuthRateLimits::Failures).sub(1).lt(max),
                        Expr::val(Option::<OffsetDateTime>::None),
                    )
                    .finally(Expr::col(AuthRateLimits::LockedUntil)),
                )
                .value(
                    AuthRateLimits::Failures,
                    Expr::col(AuthRateLimits::Failures).sub(1),
                )
                .and_where(Expr::col(AuthRateLimits::Key).eq(Self::stored_key(key)))
                .and_where(Expr::col(AuthRateLimits::Failures).gt(0))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    fn policy(&self) -> RateLimitPolicy {
        self.policy
    }

    async fn reset(&self, key: &str) -> Result<()> {
        let delete = Query::delete()
            .from_table(AuthRateLimits::Table)
            .and_where(Expr::col(AuthRateLimits::Key).eq(Self::stored_key(key)))
            .to_owned();
        self.db
            .execute(&delete)
            .await
            .map_err(db("resetting a rate limit"))?;
        Ok(())
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.now();
        let window_floor = now - Self::span(self.policy.window());
        let delete = Query::delete()
            .from_table(AuthRateLimits::Table)
            .and_where(
                Expr::col(AuthRateLimits::LockedUntil)
                    .is_null()
                    .or(Expr::col(AuthRateLimits::LockedUntil).lte(now)),
            )
            .and_where(Expr::col(AuthRateLimits::WindowStart).lte(window_floor))
            .to_owned();
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("deleting idle rate limits"))?
            .rows_affected())
    }
}
