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
                if let Some(until) = r.locked_until.filter(|u| *u > now) {
                    return limited(now, until);
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

    async fn record(&self, key: &str) -> Result<RateLimitStatus> {
        let key = Self::stored_key(key);
        let now = self.now();
        let window_floor = now - Self::span(self.policy.window());
        let unlocked = || {
            Expr::col(AuthRateLimits::LockedUntil)
                .is_null()
                .or(Expr::col(AuthRateLimits::LockedUntil).lte(now))
        };
        // A row to update; a duplicate means another caller made it first.
        let insert = Query::insert()
            .into_table(AuthRateLimits::Table)
            .columns([
                AuthRateLimits::Key,
                AuthRateLimits::Failures,
                AuthRateLimits::WindowStart,
            ])
            .values_panic([key.as_str().into(), 0.into(), now.into()])
            .to_owned();
        match self.db.execute(&insert).await {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
            Err(e) => return Err(Error::backend("recording a failure", e)),
        }
        // Count the failure inside the current window...
        let counted = self
            .update(
                Query::update()
                    .table(AuthRateLimits::Table)
                    .value(
                        AuthRateLimits::Failures,
                        Expr::col(AuthRateLimits::Failures).add(1),
                    )
                    .and_where(Expr::col(AuthRateLimits::Key).eq(key.as_str()))
                    .and_where(unlocked())
                    .and_where(Expr::col(AuthRateLimits::WindowStart).gt(window_floor))
                    .to_owned(),
            )
            .await?;
        // ...or start a new window when the last one has passed.
        if counted == 0 {
            self.update(
                Query::update()
                    .table(AuthRateLimits::Table)
                    .value(AuthRateLimits::Failures, 1)
                    .value(AuthRateLimits::WindowStart, now)
                    .value(AuthRateLimits::LockedUntil, Option::<OffsetDateTime>::None)
                    .and_where(Expr::col(AuthRateLimits::Key).eq(key.as_str()))
                    .and_where(unlocked())
                    .and_where(Expr::col(AuthRateLimits::WindowStart).lte(window_floor))
                    .to_owned(),
            )
            .await?;
        }
        let row = self.row(&key).await?;
        let reached = row.as_ref().is_some_and(|r| {
            r.locked_until.is_none_or(|u| u <= now)
                && u32::try_from(r.failures).unwrap_or(0) >= self.policy.max_attempts()
        });
        if reached {
            // Exactly one caller moves the row from unlocked to locked.
            let until = now + Self::span(self.policy.lockout());
            self.update(
                Query::update()
                    .table(AuthRateLimits::Table)
                    .value(AuthRateLimits::LockedUntil, Some(until))
                    .value(AuthRateLimits::Failures, 0)
                    .value(AuthRateLimits::WindowStart, now)
                    .and_where(Expr::col(AuthRateLimits::Key).eq(key.as_str()))
                    .and_where(unlocked())
                    .to_owned(),
            )
            .await?;
            let row = self.row(&key).await?;
            return Ok(self.status(row.as_ref(), now));
        }
        Ok(self.status(row.as_ref(), now))
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
