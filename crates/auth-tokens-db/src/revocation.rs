//! `DbRevocationStore`: JWT revocations in SQL, shared by every instance.

use std::fmt;
use std::sync::{Arc, OnceLock};

use auth_service::{
    Change, Clock, Consumption, Cutoff, Error, Result, RevocationQuery, RevocationStore,
    SessionInfo, SessionMeta, SharedClock, SystemClock, UserId, async_trait,
};
use sea_orm::sea_query::{DynIden, Expr, ExprTrait, IntoIden, Query, UnionType};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, SqlErr, TransactionTrait,
};
use time::OffsetDateTime;

use crate::group::GroupCommit;
use crate::migration::{
    AuthJwtSessions, AuthRevokedFamilies, AuthRevokedTokens, AuthUserNotBefore,
};
use crate::scan::{scan_ids, scan_pages, scan_sqlite};

/// A [`RevocationStore`] on sea-orm: revoked JWT ids, revoked families and per-user "not
/// before" instants, shared by every application instance. `is_revoked` is one query;
/// `consume` is one insert whose primary key decides the single winner.
///
/// ```
/// use auth_service::{RevocationQuery, RevocationStore, UserId};
/// use auth_tokens_db::DbRevocationStore;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// # let manager = sea_orm_migration::SchemaManager::new(&db);
/// # for m in auth_tokens_db::migrations().into_iter().skip(1) { m.up(&manager).await.unwrap(); }
/// let store = DbRevocationStore::new(db);
/// let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
/// assert!(store.consume("jti-1", later).await?);
/// assert!(!store.consume("jti-1", later).await?, "single use");
/// assert!(store.is_revoked(&RevocationQuery::new("jti-1", UserId::new("7"), 0)).await?);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbRevocationStore {
    db: DatabaseConnection,
    clock: SharedClock,
    user_retention: time::Duration,
    /// SQLite: the task that commits concurrent rotations together (started on first use).
    group: Arc<OnceLock<Option<GroupCommit<Job, Consumption>>>>,
}

impl DbRevocationStore {
    /// A store on `db` (migrated with this crate's migrations).
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_tokens_db::DbRevocationStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Arc::new(SystemClock),
            user_retention: time::Duration::days(31),
            group: Arc::default(),
        }
    }

    /// Reads time from `clock`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_tokens_db::DbRevocationStore::new(db).with_clock(auth_service::FixedClock::from_unix(0));
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long per-user not-before entries are kept (the longest token lifetime; default 31 days).
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_tokens_db::DbRevocationStore::new(db).with_user_retention(std::time::Duration::from_secs(86_400));
    /// # }
    /// ```
    #[must_use]
    pub fn with_user_retention(mut self, retention: std::time::Duration) -> Self {
        self.user_retention = time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
        self
    }

    fn now(&self) -> OffsetDateTime {
        auth_service::truncate_to_micros(self.clock.now())
    }

    /// The per-user cut-offs, page by page (few: one row per user who logged out everywhere).
    async fn scan_cutoffs(
        &self,
        now: OffsetDateTime,
        each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
    ) -> Result<bool> {
        let read = |what| db(what);
        let users = Query::select()
            .columns([
                AuthUserNotBefore::UserId,
                AuthUserNotBefore::NotBefore,
                AuthUserNotBefore::KeepFamily,
                AuthUserNotBefore::NotBeforeAll,
                AuthUserNotBefore::ExpiresAt,
            ])
            .from(AuthUserNotBefore::Table)
            .and_where(Expr::col(AuthUserNotBefore::ExpiresAt).gt(now))
            .to_owned();
        scan_pages(
            &self.db,
            users,
            AuthUserNotBefore::UserId.into_iden(),
            |row| {
                let read = read("reading a cut-off");
                let user: String = row.try_get_by_index(0).map_err(&read)?;
                let top: i64 = row.try_get_by_index(1).map_err(&read)?;
                let keep: Option<String> = row.try_get_by_index(2).map_err(&read)?;
                let all: i64 = row.try_get_by_index(3).map_err(&read)?;
                let until: OffsetDateTime = row.try_get_by_index(4).map_err(&read)?;
                let mut cutoff = Cutoff::new(top, keep.as_deref());
                if all > 0 {
                    cutoff.join(all, None);
                }
                let changes = cutoff.to_changes(&UserId::new(user.clone()), until);
                Ok((user, changes))
            },
            each,
        )
        .await
    }

    /// The group committer on SQLite (inside a Tokio runtime); `None` elsewhere.
    fn group_commit(&self) -> Option<&GroupCommit<Job, Consumption>> {
        self.group
            .get_or_init(|| {
                (self.db.get_database_backend() == DatabaseBackend::Sqlite)
                    .then(|| start_group_commit(self.db.clone()))
                    .flatten()
            })
            .as_ref()
    }
}

/// How a token id enters `auth_revoked_tokens`.
#[derive(Clone, Copy)]
enum Mark {
    /// Revoked.
    Revoked,
    /// Consumed at this instant, Unix microseconds.
    ConsumedAt(i64),
}

impl Mark {
    fn columns(self) -> [sea_orm::Value; 2] {
        match self {
            Self::Revoked => [false.into(), Option::<i64>::None.into()],
            Self::ConsumedAt(us) => [true.into(), Some(us).into()],
        }
    }
}

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// Inserts `(key, expires_at)` (and how, for token ids) into a revocation table;
/// `Ok(false)` when the key exists.
async fn insert_key(
    conn: &impl ConnectionTrait,
    table: DynIden,
    key_col: DynIden,
    exp_col: DynIden,
    key: &str,
    expires_at: OffsetDateTime,
    mark: Option<Mark>,
) -> Result<bool> {
    let mut insert = Query::insert().into_table(table).to_owned();
    match mark {
        Some(mark) => {
            let [consumed, consumed_us] = mark.columns();
            insert
                .columns([
                    key_col,
                    exp_col,
                    AuthRevokedTokens::Consumed.into_iden(),
                    AuthRevokedTokens::ConsumedUs.into_iden(),
                ])
                .values_panic([
                    key.into(),
                    expires_at.into(),
                    consumed.into(),
                    consumed_us.into(),
                ])
        }
        None => insert
            .columns([key_col, exp_col])
            .values_panic([key.into(), expires_at.into()]),
    };
    match conn.execute(&insert).await {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(Error::backend("recording a revocation", e)),
    }
}

/// Records a revocation until `expires_at`, or extends an existing one to the later expiry.
/// A token id revoked after it was consumed counts as revoked (a mirror loads it).
async fn record(
    conn: &impl ConnectionTrait,
    table: DynIden,
    key_col: DynIden,
    exp_col: DynIden,
    key: &str,
    expires_at: OffsetDateTime,
    token: bool,
) -> Result<()> {
    if !insert_key(
        conn,
        table.clone(),
        key_col.clone(),
        exp_col.clone(),
        key,
        expires_at,
        token.then_some(Mark::Revoked),
    )
    .await?
    {
        let later = Expr::case(
            Expr::col(exp_col.clone()).lt(expires_at),
            Expr::val(expires_at),
        )
        .finally(Expr::col(exp_col.clone()));
        let mut update = Query::update()
            .table(table)
            .value(exp_col, later)
            .and_where(Expr::col(key_col).eq(key))
            .to_owned();
        if token {
            // Revoked after it was consumed (a logout): no racing client may use it again.
            update.value(AuthRevokedTokens::Consumed, false);
            update.value(AuthRevokedTokens::ConsumedUs, Option::<i64>::None);
        }
        conn.execute(&update)
            .await
            .map_err(db("extending a revocation"))?;
    }
    Ok(())
}

/// Consumes `jti` at `at` and, for the one caller that wins, revokes `paired`: one statement
/// when neither exists (the rotation's single write). A loser reads when `jti` was consumed.
async fn consume_pair(
    conn: &impl ConnectionTrait,
    jti: &str,
    expires_at: OffsetDateTime,
    paired: Option<(&str, OffsetDateTime)>,
    at: i64,
) -> Result<Consumption> {
    let consume = |conn| {
        insert_key(
            conn,
            AuthRevokedTokens::Table.into_iden(),
            AuthRevokedTokens::Jti.into_iden(),
            AuthRevokedTokens::ExpiresAt.into_iden(),
            jti,
            expires_at,
            Some(Mark::ConsumedAt(at)),
        )
    };
    let won = if let Some((paired, until)) = paired {
        let [consumed, consumed_us] = Mark::ConsumedAt(at).columns();
        let [revoked, no_time] = Mark::Revoked.columns();
        let insert = Query::insert()
            .into_table(AuthRevokedTokens::Table)
            .columns([
                AuthRevokedTokens::Jti,
                AuthRevokedTokens::ExpiresAt,
                AuthRevokedTokens::Consumed,
                AuthRevokedTokens::ConsumedUs,
            ])
            .values_panic([
                jti.into(),
                expires_at.into(),
                consumed.into(),
                consumed_us.into(),
            ])
            .values_panic([paired.into(), until.into(), revoked.into(), no_time.into()])
            .to_owned();
        match conn.execute(&insert).await {
            Ok(_) => true,
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                // Usually another rotation consumed `jti` first. If instead the paired token
                // was already revoked (a logout racing the rotation), consume alone.
                let won = consume(conn).await?;
                if won {
                    record(
                        conn,
                        AuthRevokedTokens::Table.into_iden(),
                        AuthRevokedTokens::Jti.into_iden(),
                        AuthRevokedTokens::ExpiresAt.into_iden(),
                        paired,
                        until,
                        true,
                    )
                    .await?;
                }
                won
            }
            Err(e) => return Err(Error::backend("consuming a refresh token", e)),
        }
    } else {
        consume(conn).await?
    };
    if won {
        return Ok(Consumption::Won);
    }
    // Lost: when was it consumed (none if it was revoked instead)?
    let select = Query::select()
        .column(AuthRevokedTokens::ConsumedUs)
        .from(AuthRevokedTokens::Table)
        .and_where(Expr::col(AuthRevokedTokens::Jti).eq(jti))
        .and_where(Expr::col(AuthRevokedTokens::Consumed).eq(true))
        .to_owned();
    let row = conn
        .query_one(&select)
        .await
        .map_err(db("reading when a refresh token was consumed"))?;
    let at = row
        .and_then(|row| row.try_get_by_index::<Option<i64>>(0).ok().flatten())
        .and_then(|us| OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).ok());
    Ok(Consumption::Taken { at })
}

/// One rotation waiting for its commit.
struct Job {
    jti: String,
    expires_at: OffsetDateTime,
    paired: Option<(String, OffsetDateTime)>,
    at: i64,
}

/// SQLite: concurrent rotations share a transaction ([`GroupCommit`]), each still decided by
/// its own insert (the primary key picks one winner per token id).
fn start_group_commit(db: DatabaseConnection) -> Option<GroupCommit<Job, Consumption>> {
    GroupCommit::start(Box::new(move |batch: &[Job]| {
        let db = db.clone();
        Box::pin(async move { commit_rotations(&db, batch).await })
    }))
}

async fn commit_rotations(conn: &DatabaseConnection, batch: &[Job]) -> Result<Vec<Consumption>> {
    if let [job] = batch {
        // Alone: its own statement is its own transaction, without BEGIN and COMMIT.
        return Ok(vec![job.consume(conn).await?]);
    }
    let txn = conn.begin().await.map_err(db("starting a transaction"))?;
    let mut wins = Vec::with_capacity(batch.len());
    for job in batch {
        wins.push(job.consume(&txn).await?);
    }
    txn.commit().await.map_err(db("committing rotations"))?;
    Ok(wins)
}

impl Job {
    async fn consume(&self, conn: &impl ConnectionTrait) -> Result<Consumption> {
        let paired = self.paired.as_ref().map(|(p, until)| (p.as_str(), *until));
        consume_pair(conn, &self.jti, self.expires_at, paired, self.at).await
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

impl fmt::Debug for DbRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbRevocationStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RevocationStore for DbRevocationStore {
    async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
        record(
            &self.db,
            AuthRevokedTokens::Table.into_iden(),
            AuthRevokedTokens::Jti.into_iden(),
            AuthRevokedTokens::ExpiresAt.into_iden(),
            jti,
            expires_at,
            true,
        )
        .await
    }

    async fn consume(&self, jti: &str, expires_at: OffsetDateTime) -> Result<bool> {
        insert_key(
            &self.db,
            AuthRevokedTokens::Table.into_iden(),
            AuthRevokedTokens::Jti.into_iden(),
            AuthRevokedTokens::ExpiresAt.into_iden(),
            jti,
            expires_at,
            Some(Mark::ConsumedAt(micros(self.now()))),
        )
        .await
    }

    async fn consume_with(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        paired: Option<(&str, OffsetDateTime)>,
    ) -> Result<bool> {
        let at = self.now();
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
        // SQLite commits one rotation per fsync; concurrent rotations share one transaction.
        if let Some(group) = self.group_commit() {
            let job = Job {
                jti: jti.to_owned(),
                expires_at,
                paired: paired.map(|(p, until)| (p.to_owned(), until)),
                at,
            };
            return group.submit(job, "consuming a refresh token").await;
        }
        consume_pair(&self.db, jti, expires_at, paired, at).await
    }

    async fn revoke_family(&self, family: &str, expires_at: OffsetDateTime) -> Result<()> {
        record(
            &self.db,
            AuthRevokedFamilies::Table.into_iden(),
            AuthRevokedFamilies::Family.into_iden(),
            AuthRevokedFamilies::ExpiresAt.into_iden(),
            family,
            expires_at,
            false,
        )
        .await
    }

    async fn revoke_user(
        &self,
        user_id: &UserId,
        not_before: OffsetDateTime,
        keep: Option<&str>,
    ) -> Result<()> {
        // Unix microseconds (see the NotBeforeMicros migration).
        let nb = i64::try_from(not_before.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        let keep_until = self.now() + self.user_retention;
        // The first cut-off of a user is an insert; a duplicate is expected under concurrency
        // (and a failed statement would abort a PostgreSQL transaction, so there is none).
        let insert = Query::insert()
            .into_table(AuthUserNotBefore::Table)
            .columns([
                AuthUserNotBefore::UserId,
                AuthUserNotBefore::NotBefore,
                AuthUserNotBefore::KeepFamily,
                AuthUserNotBefore::ExpiresAt,
                AuthUserNotBefore::NotBeforeAll,
            ])
            .values_panic([
                user_id.as_str().into(),
                nb.into(),
                keep.map(str::to_owned).into(),
                keep_until.into(),
                0_i64.into(),
            ])
            .to_owned();
        match self.db.execute(&insert).await {
            Ok(_) => return Ok(()),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {}
            Err(e) => return Err(Error::backend("recording a logout everywhere", e)),
        }
        // Later ones combine with it in one conditional statement (auth_service::Cutoff::join):
        //   all  = keep differs ? max(all, min(top, nb)) : all
        //   keep = nb > top ? new keep : keep
        //   top  = max(top, nb)
        // MySQL evaluates SET assignments left to right, each seeing the ones before, so the
        // columns that read `top` and `keep` are assigned before those two change.
        let keep_differs = match keep {
            None => Expr::col(AuthUserNotBefore::KeepFamily).is_not_null(),
            Some(k) => Expr::col(AuthUserNotBefore::KeepFamily)
                .is_null()
                .or(Expr::col(AuthUserNotBefore::KeepFamily).ne(k)),
        };
        let later = Expr::col(AuthUserNotBefore::NotBefore).lt(nb);
        let min_top_nb = Expr::case(later.clone(), Expr::col(AuthUserNotBefore::NotBefore))
            .finally(Expr::val(nb));
        let all = Expr::case(
            keep_differs.and(Expr::col(AuthUserNotBefore::NotBeforeAll).lt(min_top_nb.clone())),
            min_top_nb,
        )
        .finally(Expr::col(AuthUserNotBefore::NotBeforeAll));
        let keep_col = Expr::case(later.clone(), Expr::val(keep.map(str::to_owned)))
            .finally(Expr::col(AuthUserNotBefore::KeepFamily));
        let top = Expr::case(later, Expr::val(nb)).finally(Expr::col(AuthUserNotBefore::NotBefore));
        let expires = Expr::case(
            Expr::col(AuthUserNotBefore::ExpiresAt).lt(keep_until),
            Expr::val(keep_until),
        )
        .finally(Expr::col(AuthUserNotBefore::ExpiresAt));
        let update = Query::update()
            .table(AuthUserNotBefore::Table)
            .value(AuthUserNotBefore::NotBeforeAll, all)
            .value(AuthUserNotBefore::KeepFamily, keep_col)
            .value(AuthUserNotBefore::NotBefore, top)
            .value(AuthUserNotBefore::ExpiresAt, expires)
            .and_where(Expr::col(AuthUserNotBefore::UserId).eq(user_id.as_str()))
            .to_owned();
        self.db
            .execute(&update)
            .await
            .map_err(db("recording a logout everywhere"))?;
        Ok(())
    }

    async fn is_revoked(&self, q: &RevocationQuery) -> Result<bool> {
        // One round trip: any row from any of the three tables means revoked.
        let family = q.family.clone().unwrap_or_default();
        let by_jti = Query::select()
            .column(AuthRevokedTokens::Jti)
            .from(AuthRevokedTokens::Table)
            .and_where(Expr::col(AuthRevokedTokens::Jti).eq(q.jti.as_str()))
            .to_owned();
        let by_family = Query::select()
            .column(AuthRevokedFamilies::Family)
            .from(AuthRevokedFamilies::Table)
            .and_where(Expr::col(AuthRevokedFamilies::Family).eq(family.as_str()))
            .to_owned();
        // auth_service::Cutoff::revokes: issued up to `all`, or up to `top` outside `keep`.
        let by_user = Query::select()
            .column(AuthUserNotBefore::UserId)
            .from(AuthUserNotBefore::Table)
            .and_where(Expr::col(AuthUserNotBefore::UserId).eq(q.user_id.as_str()))
            .and_where(
                Expr::col(AuthUserNotBefore::NotBeforeAll)
                    .gte(q.issued_at_us)
                    .or(Expr::col(AuthUserNotBefore::NotBefore)
                        .gte(q.issued_at_us)
                        .and(
                            Expr::col(AuthUserNotBefore::KeepFamily)
                                .is_null()
                                .or(Expr::col(AuthUserNotBefore::KeepFamily).ne(family.as_str())),
                        )),
            )
            .to_owned();
        let query = by_jti
            .clone()
            .union(UnionType::All, by_family)
            .union(UnionType::All, by_user)
            .to_owned();
        let row = self
            .db
            .query_one(&query)
            .await
            .map_err(db("checking a revocation"))?;
        Ok(row.is_some())
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.now();
        let mut removed = 0;
        for (table, col) in [
            (
                AuthRevokedTokens::Table.into_iden(),
                AuthRevokedTokens::ExpiresAt.into_iden(),
            ),
            (
                AuthRevokedFamilies::Table.into_iden(),
                AuthRevokedFamilies::ExpiresAt.into_iden(),
            ),
            (
                AuthUserNotBefore::Table.into_iden(),
                AuthUserNotBefore::ExpiresAt.into_iden(),
            ),
            (
                AuthJwtSessions::Table.into_iden(),
                AuthJwtSessions::ExpiresAt.into_iden(),
            ),
        ] {
            let delete = Query::delete()
                .from_table(table)
                .and_where(Expr::col(col).lte(now))
                .to_owned();
            removed += self
                .db
                .execute(&delete)
                .await
                .map_err(db("deleting expired revocations"))?
                .rows_affected();
        }
        Ok(removed)
    }

    async fn live_revocations(&self) -> Result<Option<Vec<Change>>> {
        let now = self.now();
        let mut live = Vec::new();
        let tokens = Query::select()
            .columns([AuthRevokedTokens::Jti, AuthRevokedTokens::ExpiresAt])
            .from(AuthRevokedTokens::Table)
            .and_where(Expr::col(AuthRevokedTokens::ExpiresAt).gt(now))
            .and_where(Expr::col(AuthRevokedTokens::Consumed).eq(false))
            .to_owned();
        for row in self
            .db
            .query_all(&tokens)
            .await
            .map_err(db("listing revoked tokens"))?
        {
            live.push(Change::TokenRevoked {
                jti: row
                    .try_get_by_index(0)
                    .map_err(db("reading a revoked token"))?,
                until: row
                    .try_get_by_index(1)
                    .map_err(db("reading a revoked token"))?,
            });
        }
        let families = Query::select()
            .columns([AuthRevokedFamilies::Family, AuthRevokedFamilies::ExpiresAt])
            .from(AuthRevokedFamilies::Table)
            .and_where(Expr::col(AuthRevokedFamilies::ExpiresAt).gt(now))
            .to_owned();
        for row in self
            .db
            .query_all(&families)
            .await
            .map_err(db("listing revoked sessions"))?
        {
            live.push(Change::FamilyRevoked {
                family: row
                    .try_get_by_index(0)
                    .map_err(db("reading a revoked session"))?,
                until: row
                    .try_get_by_index(1)
                    .map_err(db("reading a revoked session"))?,
            });
        }
        let users = Query::select()
            .columns([
                AuthUserNotBefore::UserId,
                AuthUserNotBefore::NotBefore,
                AuthUserNotBefore::KeepFamily,
                AuthUserNotBefore::NotBeforeAll,
                AuthUserNotBefore::ExpiresAt,
            ])
            .from(AuthUserNotBefore::Table)
            .and_where(Expr::col(AuthUserNotBefore::ExpiresAt).gt(now))
            .to_owned();
        for row in self
            .db
            .query_all(&users)
            .await
            .map_err(db("listing cut-offs"))?
        {
            let read = db("reading a cut-off");
            let user = UserId::new(row.try_get_by_index::<String>(0).map_err(&read)?);
            let top: i64 = row.try_get_by_index(1).map_err(&read)?;
            let keep: Option<String> = row.try_get_by_index(2).map_err(&read)?;
            let all: i64 = row.try_get_by_index(3).map_err(&read)?;
            let until: OffsetDateTime = row.try_get_by_index(4).map_err(&read)?;
            let mut cutoff = Cutoff::new(top, keep.as_deref());
            if all > 0 {
                cutoff.join(all, None);
            }
            live.extend(cutoff.to_changes(&user, until));
        }
        Ok(Some(live))
    }

    async fn scan_revocations(
        &self,
        each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
    ) -> Result<bool> {
        let now = self.now();
        if self.db.get_database_backend() == DatabaseBackend::Sqlite {
            let more = scan_sqlite(
                &self.db,
                "auth_revoked_tokens",
                "jti",
                "AND consumed = 0",
                now,
                |jti, until| Change::TokenRevoked { jti, until },
                each,
            )
            .await?;
            if !more {
                return Ok(true);
            }
            let more = scan_sqlite(
                &self.db,
                "auth_revoked_families",
                "family",
                "",
                now,
                |family, until| Change::FamilyRevoked { family, until },
                each,
            )
            .await?;
            if !more {
                return Ok(true);
            }
            return self.scan_cutoffs(now, each).await.map(|_| true);
        }
        let tokens = Query::select()
            .columns([AuthRevokedTokens::Jti, AuthRevokedTokens::ExpiresAt])
            .from(AuthRevokedTokens::Table)
            .and_where(Expr::col(AuthRevokedTokens::ExpiresAt).gt(now))
            .and_where(Expr::col(AuthRevokedTokens::Consumed).eq(false))
            .to_owned();
        let more = scan_ids(
            &self.db,
            tokens,
            AuthRevokedTokens::Jti.into_iden(),
            |jti, until| Change::TokenRevoked { jti, until },
            each,
        )
        .await?;
        if !more {
            return Ok(true);
        }
        let families = Query::select()
            .columns([AuthRevokedFamilies::Family, AuthRevokedFamilies::ExpiresAt])
            .from(AuthRevokedFamilies::Table)
            .and_where(Expr::col(AuthRevokedFamilies::ExpiresAt).gt(now))
            .to_owned();
        let more = scan_ids(
            &self.db,
            families,
            AuthRevokedFamilies::Family.into_iden(),
            |family, until| Change::FamilyRevoked { family, until },
            each,
        )
        .await?;
        if !more {
            return Ok(true);
        }
        self.scan_cutoffs(now, each).await?;
        Ok(true)
    }

    async fn track_session(
        &self,
        user: &UserId,
        family: &str,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let now = self.now();
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
        let insert = Query::insert()
            .into_table(AuthJwtSessions::Table)
            .columns([
                AuthJwtSessions::Family,
                AuthJwtSessions::UserId,
                AuthJwtSessions::ExpiresAt,
                AuthJwtSessions::CreatedAt,
                AuthJwtSessions::Ip,
                AuthJwtSessions::UserAgent,
            ])
            .values_panic([
                family.into(),
                user.as_str().into(),
                auth_service::truncate_to_micros(expires_at).into(),
                auth_service::truncate_to_micros(at).into(),
                meta.ip.map(|ip| ip.to_string()).into(),
                meta.user_agent.clone().into(),
            ])
            .to_owned();
        self.db
            .execute(&insert)
            .await
            .map_err(db("recording a session"))?;
        Ok(())
    }

    async fn touch_session(
        &self,
        family: &str,
        meta: &SessionMeta,
        at: OffsetDateTime,
    ) -> Result<()> {
        let update = Query::update()
            .table(AuthJwtSessions::Table)
            .value(
                AuthJwtSessions::LastUsedAt,
                auth_service::truncate_to_micros(at),
            )
            .value(AuthJwtSessions::Ip, meta.ip.map(|ip| ip.to_string()))
            .value(AuthJwtSessions::UserAgent, meta.user_agent.clone())
            .and_where(Expr::col(AuthJwtSessions::Family).eq(family))
            .to_owned();
        self.db
            .execute(&update)
            .await
            .map_err(db("recording a session's use"))?;
        Ok(())
    }

    async fn list_sessions(&self, user: &UserId) -> Result<Option<Vec<SessionInfo>>> {
        let revoked = Query::select()
            .column(AuthRevokedFamilies::Family)
            .from(AuthRevokedFamilies::Table)
            .to_owned();
        let query = Query::select()
            .columns([
                AuthJwtSessions::Family,
                AuthJwtSessions::CreatedAt,
                AuthJwtSessions::LastUsedAt,
                AuthJwtSessions::ExpiresAt,
                AuthJwtSessions::Ip,
                AuthJwtSessions::UserAgent,
            ])
            .from(AuthJwtSessions::Table)
            .and_where(Expr::col(AuthJwtSessions::UserId).eq(user.as_str()))
            .and_where(Expr::col(AuthJwtSessions::ExpiresAt).gt(self.now()))
            .and_where(Expr::col(AuthJwtSessions::Family).not_in_subquery(revoked))
            .to_owned();
        let rows = self
            .db
            .query_all(&query)
            .await
            .map_err(db("listing sessions"))?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in rows {
            let read = db("reading a session");
            let family: String = row.try_get_by_index(0).map_err(&read)?;
            let created: Option<OffsetDateTime> = row.try_get_by_index(1).map_err(&read)?;
            let last_used: Option<OffsetDateTime> = row.try_get_by_index(2).map_err(&read)?;
            let expires: OffsetDateTime = row.try_get_by_index(3).map_err(&read)?;
            let ip: Option<String> = row.try_get_by_index(4).map_err(&read)?;
            let user_agent: Option<String> = row.try_get_by_index(5).map_err(&read)?;
            // Sessions started before starts were recorded (an earlier version) show the
            // moment they are listed.
            let mut info = SessionInfo::new(family, created.unwrap_or_else(|| self.now()), expires);
            info.last_used_at = last_used;
            info.meta.ip = ip.and_then(|ip| ip.parse().ok());
            info.meta.user_agent = user_agent;
            sessions.push(info);
        }
        sessions.sort_by_key(|s| s.created_at);
        Ok(Some(sessions))
    }

    async fn end_session(&self, family: &str) -> Result<()> {
        let delete = Query::delete()
            .from_table(AuthJwtSessions::Table)
            .and_where(Expr::col(AuthJwtSessions::Family).eq(family))
            .to_owned();
        self.db
            .execute(&delete)
            .await
            .map_err(db("ending a session"))?;
        Ok(())
    }

    async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<Option<u64>> {
        // Live sessions are counted by the delete that ends them (atomic: a concurrent logout
        // of one of them is counted at most once); the user's expired rows go too.
        let mut live = Query::delete()
            .from_table(AuthJwtSessions::Table)
            .and_where(Expr::col(AuthJwtSessions::UserId).eq(user.as_str()))
            .and_where(Expr::col(AuthJwtSessions::ExpiresAt).gt(self.now()))
            .to_owned();
        if let Some(keep) = keep {
            live.and_where(Expr::col(AuthJwtSessions::Family).ne(keep));
        }
        let ended = self
            .db
            .execute(&live)
            .await
            .map_err(db("ending sessions"))?
            .rows_affected();
        let stale = Query::delete()
            .from_table(AuthJwtSessions::Table)
            .and_where(Expr::col(AuthJwtSessions::UserId).eq(user.as_str()))
            .and_where(Expr::col(AuthJwtSessions::ExpiresAt).lte(self.now()))
            .to_owned();
        self.db
            .execute(&stale)
            .await
            .map_err(db("ending sessions"))?;
        Ok(Some(ended))
    }
}
