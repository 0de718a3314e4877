//! `DbTokenBackend`: opaque tokens in SQL with refresh families.

use std::fmt;
use std::sync::{Arc, OnceLock};

use auth_service::{
    Claims, Clock, Error, IssueRequest, MAX_TOKEN_LENGTH, RefreshGuard, Result, RotateOutcome,
    RotateRequest, SecretString, SessionInfo, SessionMeta, SharedClock, SystemClock, TokenBackend,
    TokenKind, TokenLifetimes, TokenPair, UserId, async_trait, random,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use time::OffsetDateTime;

use crate::entity::{family, token};
use crate::group::GroupCommit;

/// Random bytes per token (256 bits).
pub const TOKEN_BYTES: usize = 32;

/// How many expired rows `cleanup_expired` deletes per statement.
pub const CLEANUP_BATCH: u64 = 1_000;

/// A [`TokenBackend`] on sea-orm with opaque tokens (256 random bits, stored only as SHA-256),
/// refresh families (sessions) with reuse detection, session listing and cleanup.
///
/// - `verify` is one query: the token joined with its session.
/// - `rotate` consumes the refresh token with one conditional `UPDATE … WHERE consumed_at IS
///   NULL AND revoked_at IS NULL` inside the transaction that inserts the next pair: of
///   concurrent rotations exactly one changes a row; the others see a consumed token, which is
///   reuse, and end the session.
/// - Rows reference `auth_users(id)` with `ON DELETE CASCADE`; user ids are integers.
///
/// ```
/// use auth_service::{IssueRequest, TokenBackend, TokenKind, UserId};
/// use auth_tokens_db::DbTokenBackend;
/// use sea_orm::ConnectionTrait;
/// use sea_orm_migration::MigratorTrait;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// # struct M; impl MigratorTrait for M { fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
/// #   let mut m = auth_users_db::migrations(); m.extend(auth_tokens_db::migrations()); m } }
/// # M::up(&db, None).await.unwrap();
/// # db.execute_unprepared("INSERT INTO auth_users (id, email, is_active, is_verified, created_at, updated_at) VALUES (42, 'a@b.c', true, false, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')").await.unwrap();
/// let backend = DbTokenBackend::new(db);
/// let pair = backend.issue(&IssueRequest::new(UserId::new("42"))).await?;
/// let claims = backend.verify(pair.access_token.expose_secret(), TokenKind::Access).await?;
/// assert_eq!(claims.sub, "42");
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbTokenBackend {
    db: DatabaseConnection,
    clock: SharedClock,
    /// The key successors are derived from (see [`with_successor_key`](Self::with_successor_key)).
    successor_key: Option<Arc<[u8]>>,
    /// SQLite: the task that commits concurrent rotations together (started on first use).
    rotations: Arc<OnceLock<Option<RotationCommit>>>,
}

impl DbTokenBackend {
    /// A backend on `db` (migrated: users first, then this crate's migration).
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let backend = auth_tokens_db::DbTokenBackend::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Arc::new(SystemClock),
            successor_key: None,
            rotations: Arc::default(),
        }
    }

    /// Derives each rotation's successor pair from the refresh token it replaces under `key`
    /// (a server secret of at least 32 bytes; `auth-server` uses its signing secret), so that
    /// the same refresh token presented again within the reuse window
    /// ([`RotateRequest::reuse_window`]) yields the same, working successor instead of
    /// counting as reuse. Without a key every second use is reuse. The key never leaves the
    /// server: knowing a refresh token does not tell its successor.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let backend = auth_tokens_db::DbTokenBackend::new(db)
    ///     .with_successor_key(b"a-server-secret-of-at-least-32-bytes!!");
    /// # }
    /// ```
    #[must_use]
    pub fn with_successor_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.successor_key = Some(Arc::from(key.as_ref()));
        self
    }

    /// The successor pair of the refresh token `presented`: derived under the key, or random.
    fn successors(&self, presented: &str) -> (String, String) {
        match &self.successor_key {
            Some(key) => (
                random::keyed_token(key, &["auth-tokens-db successor", "access", presented]),
                random::keyed_token(key, &["auth-tokens-db successor", "refresh", presented]),
            ),
            None => (random::token(TOKEN_BYTES), random::token(TOKEN_BYTES)),
        }
    }

    /// A consumed refresh token presented again: its own client racing, within the window
    /// and before the successor was used or the session ended, gets the same successor;
    /// anything else is reuse.
    async fn presented_again(
        &self,
        presented: &str,
        t: &token::Model,
        f: &family::Model,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        if let Some(pair) = self.same_successor(presented, t, f, request).await? {
            let previous = Self::claims(t, f);
            guard.allow(&previous).await?;
            tracing::debug!("refresh token presented again within the reuse window");
            return Ok(RotateOutcome::Rotated { previous, pair });
        }
        self.reused(t).await
    }

    async fn same_successor(
        &self,
        presented: &str,
        t: &token::Model,
        f: &family::Model,
        request: &RotateRequest,
    ) -> Result<Option<TokenPair>> {
        let (Some(_), Some(consumed)) = (&self.successor_key, t.consumed_at) else {
            return Ok(None);
        };
        let window = time::Duration::try_from(request.reuse_window).unwrap_or(time::Duration::MAX);
        if window.is_zero() || f.revoked_at.is_some() || self.now() - consumed > window {
            return Ok(None);
        }
        let (access, refresh) = self.successors(presented);
        let Some((next, next_family)) = self.lookup(&self.db, &refresh).await? else {
            return Ok(None);
        };
        if next.family_id != t.family_id
            || next.consumed_at.is_some()
            || next.revoked_at.is_some()
            || next_family.revoked_at.is_some()
        {
            return Ok(None);
        }
        let Some((next_access, _)) = self.lookup(&self.db, &access).await? else {
            return Ok(None);
        };
        if next_access.revoked_at.is_some() {
            return Ok(None);
        }
        Ok(Some(TokenPair::new(
            SecretString::new(access),
            next_access.expires_at,
            SecretString::new(refresh),
            next.expires_at,
        )))
    }

    /// The group committer of rotations on SQLite (inside a Tokio runtime); `None` elsewhere.
    fn rotation_commit(&self) -> Option<&RotationCommit> {
        self.rotations
            .get_or_init(|| {
                let db = self.db.clone();
                #[cfg(feature = "sqlite")]
                if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
                    return GroupCommit::start(Box::new(move |batch: &[Rotation]| {
                        let db = db.clone();
                        Box::pin(async move { Rotation::commit_scripts(&db, batch).await })
                    }));
                }
                let _ = db;
                None
            })
            .as_ref()
    }

    /// Reads time from `clock`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let backend = auth_tokens_db::DbTokenBackend::new(db).with_clock(auth_service::FixedClock::from_unix(0));
    /// # }
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The connection.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let backend = auth_tokens_db::DbTokenBackend::new(db);
    /// let _db = backend.connection();
    /// # }
    /// ```
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        auth_service::truncate_to_micros(self.clock.now())
    }

    /// The token row and its session, in one query.
    async fn lookup(
        &self,
        conn: &impl ConnectionTrait,
        token: &str,
    ) -> Result<Option<(token::Model, family::Model)>> {
        if token.is_empty() || token.len() > MAX_TOKEN_LENGTH {
            return Ok(None);
        }
        let found = token::Entity::find_by_id(random::sha256_hex(token))
            .find_also_related(family::Entity)
            .one(conn)
            .await
            .map_err(db("looking up a token"))?;
        Ok(found.and_then(|(t, f)| f.map(|f| (t, f))))
    }

    fn claims(t: &token::Model, f: &family::Model) -> Claims {
        let kind = if t.kind == "refresh" {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        };
        let mut c = Claims::new(
            t.user_id.to_string(),
            kind,
            t.jti.clone(),
            t.created_at.unix_timestamp(),
            t.expires_at.unix_timestamp(),
        )
        .with_family(f.id.clone());
        if let Some(serde_json::Value::Object(extra)) = &f.extra
            && !extra.is_empty()
        {
            c.extra = Some(extra.clone());
        }
        c
    }

    /// Inserts the access/refresh pair `(access, refresh)` into `family_id` (which exists)
    /// and returns it.
    #[allow(clippy::too_many_arguments)]
    async fn insert_pair(
        conn: &impl ConnectionTrait,
        user_id: i64,
        family_id: &str,
        absolute: OffsetDateTime,
        now: OffsetDateTime,
        lifetimes: &TokenLifetimes,
        (access, refresh): (String, String),
        meta: Option<&SessionMeta>,
    ) -> Result<TokenPair> {
        let access_exp = Ord::min(add(now, lifetimes.access()), absolute);
        let refresh_exp = Ord::min(add(now, lifetimes.refresh()), absolute);
        let access_hash = random::sha256_hex(&access);
        let row =
            |hash: String, kind: &str, expires_at, paired: Option<String>| token::ActiveModel {
                token_hash: Set(hash),
                kind: Set(kind.to_owned()),
                jti: Set(random::token(16)),
                family_id: Set(family_id.to_owned()),
                user_id: Set(user_id),
                created_at: Set(now),
                expires_at: Set(expires_at),
                revoked_at: Set(None),
                consumed_at: Set(None),
                paired_access_hash: Set(paired),
            };
        token::Entity::insert_many([
            row(access_hash.clone(), "access", access_exp, None),
            row(
                random::sha256_hex(&refresh),
                "refresh",
                refresh_exp,
                Some(access_hash),
            ),
        ])
        .exec(conn)
        .await
        .map_err(db("storing tokens"))?;
        // One statement for the session: its new refresh expiry, last use and, on a
        // rotation from another client, where it is now.
        let mut update = family::Entity::update_many()
            .col_expr(family::Column::RefreshExpiresAt, Expr::value(refresh_exp))
            .col_expr(family::Column::LastUsedAt, Expr::value(Some(now)));
        if let Some(meta) = meta {
            update = update
                .col_expr(
                    family::Column::Ip,
                    Expr::value(meta.ip.map(|ip| ip.to_string())),
                )
                .col_expr(
                    family::Column::UserAgent,
                    Expr::value(meta.user_agent.clone()),
                );
        }
        update
            .filter(family::Column::Id.eq(family_id))
            .exec(conn)
            .await
            .map_err(db("updating a session"))?;
        Ok(TokenPair::new(
            SecretString::new(access),
            access_exp,
            SecretString::new(refresh),
            refresh_exp,
        ))
    }

    /// Ends a session: the family and every token in it.
    async fn revoke_family(&self, conn: &impl ConnectionTrait, family_id: &str) -> Result<u64> {
        let now = self.now();
        let ended = family::Entity::update_many()
            .col_expr(family::Column::RevokedAt, Expr::value(Some(now)))
            .filter(family::Column::Id.eq(family_id))
            .filter(family::Column::RevokedAt.is_null())
            .exec(conn)
            .await
            .map_err(db("revoking a session"))?
            .rows_affected;
        token::Entity::update_many()
            .col_expr(token::Column::RevokedAt, Expr::value(Some(now)))
            .filter(token::Column::FamilyId.eq(family_id))
            .filter(token::Column::RevokedAt.is_null())
            .exec(conn)
            .await
            .map_err(db("revoking a session's tokens"))?;
        Ok(ended)
    }

    async fn reused(&self, t: &token::Model) -> Result<RotateOutcome> {
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        self.revoke_family(&txn, &t.family_id).await?;
        txn.commit().await.map_err(db("committing"))?;
        tracing::warn!(family = %t.family_id, "refresh token reuse: session revoked");
        Ok(RotateOutcome::Reused {
            user_id: UserId::from(t.user_id),
            family: t.family_id.clone(),
        })
    }

    /// Why a refresh token cannot rotate, or `None` if it can (given it is not consumed).
    fn refusal(t: &token::Model, f: &family::Model, now: OffsetDateTime) -> Option<Error> {
        if t.kind != "refresh" {
            return Some(Error::TokenInvalid);
        }
        if t.revoked_at.is_some() || f.revoked_at.is_some() {
            return Some(Error::TokenRevoked);
        }
        if t.expires_at <= now || f.absolute_expires_at <= now {
            return Some(Error::TokenExpired);
        }
        None
    }
}

fn add(t: OffsetDateTime, d: std::time::Duration) -> OffsetDateTime {
    t.checked_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        .unwrap_or(t)
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

impl fmt::Debug for DbTokenBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbTokenBackend")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenBackend for DbTokenBackend {
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair> {
        let user_id = request.user_id.to_row_id()?;
        let now = self.now();
        let absolute = add(now, request.lifetimes.absolute());
        let family_id = random::token(16);
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        family::ActiveModel {
            id: Set(family_id.clone()),
            user_id: Set(user_id),
            created_at: Set(now),
            absolute_expires_at: Set(absolute),
            refresh_expires_at: Set(now),
            last_used_at: Set(None),
            ip: Set(request.meta.ip.map(|ip| ip.to_string())),
            user_agent: Set(request.meta.user_agent.clone()),
            extra: Set((!request.extra.is_empty())
                .then(|| serde_json::Value::Object(request.extra.clone()))),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(db("storing a session"))?;
        let pair = Self::insert_pair(
            &txn,
            user_id,
            &family_id,
            absolute,
            now,
            &request.lifetimes,
            (random::token(TOKEN_BYTES), random::token(TOKEN_BYTES)),
            None,
        )
        .await?;
        txn.commit().await.map_err(db("committing"))?;
        Ok(pair)
    }

    async fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        let (t, f) = self
            .lookup(&self.db, token)
            .await?
            .ok_or(Error::TokenInvalid)?;
        if t.kind != kind.as_str() {
            return Err(Error::TokenInvalid);
        }
        if t.revoked_at.is_some() || f.revoked_at.is_some() {
            return Err(Error::TokenRevoked);
        }
        if t.expires_at <= self.now() {
            return Err(Error::TokenExpired);
        }
        Ok(Self::claims(&t, &f))
    }

    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        let now = self.now();
        let (t, f) = self
            .lookup(&self.db, refresh_token)
            .await?
            .ok_or(Error::TokenInvalid)?;
        if t.kind != "refresh" {
            return Err(Error::TokenInvalid);
        }
        if t.consumed_at.is_some() {
            return self
                .presented_again(refresh_token, &t, &f, request, guard)
                .await;
        }
        if let Some(refusal) = Self::refusal(&t, &f, now) {
            return Err(refusal);
        }
        let previous = Self::claims(&t, &f);
        guard.allow(&previous).await?;

        let rotation = Rotation {
            refresh_hash: t.token_hash.clone(),
            paired: t.paired_access_hash.clone(),
            family: f.id.clone(),
            user_id: t.user_id,
            absolute: f.absolute_expires_at,
            now,
            lifetimes: request.lifetimes,
            meta: (request.meta != SessionMeta::default()).then(|| request.meta.clone()),
            tokens: self.successors(refresh_token),
        };
        let won = match self.rotation_commit() {
            Some(group) => group.submit(rotation, "rotating a refresh token").await?,
            // One statement, so its own transaction: one round trip.
            None if self.db.get_database_backend() == sea_orm::DatabaseBackend::Postgres => {
                rotation.apply_postgres(&self.db).await?
            }
            None => {
                let txn = self
                    .db
                    .begin()
                    .await
                    .map_err(db("starting a transaction"))?;
                let won = rotation.apply(&txn).await?;
                if won.is_some() {
                    txn.commit().await.map_err(db("committing"))?;
                } else {
                    txn.rollback().await.map_err(db("rolling back"))?;
                }
                won
            }
        };
        let Some(pair) = won else {
            // Someone else consumed it first (reuse), or it was revoked meanwhile.
            return match self.lookup(&self.db, refresh_token).await? {
                Some((t, f)) if t.consumed_at.is_some() => {
                    self.presented_again(refresh_token, &t, &f, request, guard)
                        .await
                }
                _ => Err(Error::TokenRevoked),
            };
        };
        Ok(RotateOutcome::Rotated { previous, pair })
    }

    async fn revoke(&self, token: &str) -> Result<()> {
        let Some((t, _)) = self.lookup(&self.db, token).await? else {
            return Ok(());
        };
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        self.revoke_family(&txn, &t.family_id).await?;
        txn.commit().await.map_err(db("committing"))
    }

    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        let Ok(uid) = user_id.to_row_id() else {
            return Ok(0);
        };
        let now = self.now();
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        let mut families = family::Entity::update_many()
            .col_expr(family::Column::RevokedAt, Expr::value(Some(now)))
            .filter(family::Column::UserId.eq(uid))
            .filter(family::Column::RevokedAt.is_null());
        let mut tokens = token::Entity::update_many()
            .col_expr(token::Column::RevokedAt, Expr::value(Some(now)))
            .filter(token::Column::UserId.eq(uid))
            .filter(token::Column::RevokedAt.is_null());
        if let Some(keep) = keep {
            families = families.filter(family::Column::Id.ne(keep));
            tokens = tokens.filter(token::Column::FamilyId.ne(keep));
        }
        let ended = families
            .exec(&txn)
            .await
            .map_err(db("revoking sessions"))?
            .rows_affected;
        tokens.exec(&txn).await.map_err(db("revoking tokens"))?;
        txn.commit().await.map_err(db("committing"))?;
        Ok(ended)
    }

    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        let Ok(uid) = user_id.to_row_id() else {
            return Ok(Vec::new());
        };
        let rows = family::Entity::find()
            .filter(family::Column::UserId.eq(uid))
            .filter(family::Column::RevokedAt.is_null())
            .filter(family::Column::RefreshExpiresAt.gt(self.now()))
            .order_by_desc(family::Column::CreatedAt)
            .order_by_asc(family::Column::Id)
            .all(&self.db)
            .await
            .map_err(db("listing sessions"))?;
        Ok(rows
            .into_iter()
            .map(|f| {
                let mut s = SessionInfo::new(f.id, f.created_at, f.refresh_expires_at);
                s.last_used_at = f.last_used_at;
                let mut meta = SessionMeta::new();
                if let Some(ip) = f.ip.and_then(|ip| ip.parse().ok()) {
                    meta = meta.with_ip(ip);
                }
                if let Some(ua) = f.user_agent {
                    meta = meta.with_user_agent(ua);
                }
                s.meta = meta;
                s
            })
            .collect())
    }

    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        let Ok(uid) = user_id.to_row_id() else {
            return Ok(false);
        };
        let owned = family::Entity::find_by_id(session_id.to_owned())
            .filter(family::Column::UserId.eq(uid))
            .filter(family::Column::RevokedAt.is_null())
            .one(&self.db)
            .await
            .map_err(db("finding a session"))?
            .is_some();
        if owned {
            let txn = self
                .db
                .begin()
                .await
                .map_err(db("starting a transaction"))?;
            self.revoke_family(&txn, session_id).await?;
            txn.commit().await.map_err(db("committing"))?;
        }
        Ok(owned)
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        let now = self.now();
        let mut removed = 0u64;
        // Expired tokens, in bounded batches so a large backlog never holds long locks.
        loop {
            let batch: Vec<String> = token::Entity::find()
                .select_only()
                .column(token::Column::TokenHash)
                .filter(token::Column::ExpiresAt.lte(now))
                .limit(CLEANUP_BATCH)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(db("finding expired tokens"))?;
            if batch.is_empty() {
                break;
            }
            let n = token::Entity::delete_many()
                .filter(token::Column::TokenHash.is_in(batch))
                .exec(&self.db)
                .await
                .map_err(db("deleting expired tokens"))?
                .rows_affected;
            removed += n;
            tracing::info!(deleted = n, total = removed, "expired tokens deleted");
        }
        // Sessions that can no longer refresh (their remaining tokens go by cascade).
        let sessions = family::Entity::delete_many()
            .filter(ExprTrait::or(
                family::Column::RefreshExpiresAt.lte(now),
                family::Column::AbsoluteExpiresAt.lte(now),
            ))
            .exec(&self.db)
            .await
            .map_err(db("deleting expired sessions"))?
            .rows_affected;
        removed += sessions;
        tracing::info!(tokens_and_sessions = removed, "token cleanup finished");
        Ok(removed)
    }
}

/// Rotations committed together: each answers its successor pair, or `None` when it lost.
type RotationCommit = GroupCommit<Rotation, Option<TokenPair>>;

/// One rotation's writes: consume the refresh token (the conditional `UPDATE` that decides the
/// single winner), end the access token issued with it, insert the successor pair and move
/// the session on.
struct Rotation {
    refresh_hash: String,
    paired: Option<String>,
    family: String,
    user_id: i64,
    absolute: OffsetDateTime,
    now: OffsetDateTime,
    lifetimes: TokenLifetimes,
    meta: Option<SessionMeta>,
    tokens: (String, String),
}

impl Rotation {
    /// When the successor pair expires: its lifetimes from now, never past the session's end.
    fn expiries(&self) -> (OffsetDateTime, OffsetDateTime) {
        (
            Ord::min(add(self.now, self.lifetimes.access()), self.absolute),
            Ord::min(add(self.now, self.lifetimes.refresh()), self.absolute),
        )
    }

    /// SQLite: the rotation as one script of statements, each applied only if the statement
    /// before it changed exactly one row (`changes() = 1`, which counts the last *completed*
    /// statement): the conditional consumption decides, and a loser writes nothing. Its
    /// `SELECT changes()` answers 1 when this rotation won. The same writes as
    /// [`apply`](Self::apply), in one hand-over to the driver instead of four.
    #[cfg(feature = "sqlite")]
    fn script(&self) -> Result<(String, Vec<sea_orm::Value>, TokenPair)> {
        use sea_orm::sea_query::{Query, SqliteQueryBuilder};
        let chained = || Expr::cust("changes() = 1");
        let (access, refresh) = &self.tokens;
        let (access_exp, refresh_exp) = self.expiries();
        let access_hash = random::sha256_hex(access);
        let insert = |hash: String, kind: &str, expires: OffsetDateTime, paired: Option<String>| {
            let values = Query::select()
                .exprs([
                    Expr::val(hash),
                    Expr::val(kind),
                    Expr::val(random::token(16)),
                    Expr::val(self.family.clone()),
                    Expr::val(self.user_id),
                    Expr::val(self.now),
                    Expr::val(expires),
                    Expr::val(paired),
                ])
                .and_where(chained())
                .to_owned();
            Query::insert()
                .into_table(token::Entity)
                .columns([
                    token::Column::TokenHash,
                    token::Column::Kind,
                    token::Column::Jti,
                    token::Column::FamilyId,
                    token::Column::UserId,
                    token::Column::CreatedAt,
                    token::Column::ExpiresAt,
                    token::Column::PairedAccessHash,
                ])
                .select_from(values)
                .map(|q| q.to_owned())
                .map_err(|e| Error::backend("building a rotation", e))
        };
        let consume = Query::update()
            .table(token::Entity)
            .value(token::Column::ConsumedAt, Some(self.now))
            .value(token::Column::RevokedAt, Some(self.now))
            .and_where(token::Column::TokenHash.eq(self.refresh_hash.clone()))
            .and_where(token::Column::ConsumedAt.is_null())
            .and_where(token::Column::RevokedAt.is_null())
            .to_owned();
        let mut session = Query::update()
            .table(family::Entity)
            .value(family::Column::RefreshExpiresAt, refresh_exp)
            .value(family::Column::LastUsedAt, Some(self.now))
            .and_where(family::Column::Id.eq(self.family.clone()))
            .and_where(chained())
            .to_owned();
        if let Some(meta) = &self.meta {
            session
                .value(family::Column::Ip, meta.ip.map(|ip| ip.to_string()))
                .value(family::Column::UserAgent, meta.user_agent.clone());
        }
        let mut parts = vec![
            consume.build(SqliteQueryBuilder),
            insert(access_hash.clone(), "access", access_exp, None)?.build(SqliteQueryBuilder),
            insert(
                random::sha256_hex(refresh),
                "refresh",
                refresh_exp,
                Some(access_hash),
            )?
            .build(SqliteQueryBuilder),
            session.build(SqliteQueryBuilder),
            (
                "SELECT changes()".to_owned(),
                sea_orm::sea_query::Values(Vec::new()),
            ),
        ];
        if let Some(previous) = &self.paired {
            parts.push(
                Query::update()
                    .table(token::Entity)
                    .value(token::Column::RevokedAt, Some(self.now))
                    .and_where(token::Column::TokenHash.eq(previous.clone()))
                    .and_where(token::Column::RevokedAt.is_null())
                    .and_where(chained())
                    .to_owned()
                    .build(SqliteQueryBuilder),
            );
        }
        let mut sql = String::new();
        let mut values = Vec::new();
        for (statement, bound) in parts {
            sql.push_str(&statement);
            sql.push_str(";\n");
            values.extend(bound.0);
        }
        let pair = TokenPair::new(
            SecretString::new(access.clone()),
            access_exp,
            SecretString::new(refresh.clone()),
            refresh_exp,
        );
        Ok((sql, values, pair))
    }

    /// SQLite: commits `batch` in one transaction written as one script (`BEGIN IMMEDIATE`
    /// … `COMMIT`), so one hand-over to the driver and one sync for all of them; each
    /// rotation's successor pair, or `None` for a rotation that lost its token to another.
    /// The script runs on a connection of its own from the pool; if it fails, that
    /// connection is closed rather than returned, so no transaction it opened survives.
    #[cfg(feature = "sqlite")]
    async fn commit_scripts(
        conn: &DatabaseConnection,
        batch: &[Rotation],
    ) -> Result<Vec<Option<TokenPair>>> {
        use sea_orm::sqlx::{Acquire as _, Row as _};
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        let mut values = Vec::new();
        let mut pairs = Vec::with_capacity(batch.len());
        for rotation in batch {
            let (script, bound, pair) = rotation.script()?;
            sql.push_str(&script);
            values.extend(bound);
            pairs.push(pair);
        }
        sql.push_str("COMMIT;");
        let failed = |e: sea_orm::sqlx::Error| Error::backend("rotating refresh tokens", e);
        let mut own = conn
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .map_err(failed)?;
        let ran = sea_orm::sqlx::query_with(
            sea_orm::sqlx::AssertSqlSafe(sql),
            sea_query_sqlx::SqlxValues(sea_orm::sea_query::Values(values)),
        )
        .fetch_all(own.acquire().await.map_err(failed)?)
        .await;
        let rows = match ran {
            Ok(rows) if rows.len() == batch.len() => rows,
            other => {
                // Whatever the script left open ends with its connection.
                let _ = own.close().await;
                return Err(match other {
                    Err(e) => failed(e),
                    Ok(rows) => Error::Backend(auth_service::BackendError::message(format!(
                        "a rotation script answered {} rows for {} rotations",
                        rows.len(),
                        batch.len()
                    ))),
                });
            }
        };
        let mut won = Vec::with_capacity(batch.len());
        for (row, pair) in rows.iter().zip(pairs) {
            let changed: i64 = row.try_get(0).map_err(failed)?;
            won.push((changed == 1).then_some(pair));
        }
        Ok(won)
    }

    /// PostgreSQL: the rotation as one statement (data-modifying `WITH` clauses), so one round
    /// trip and its own transaction: the successor pair and the session's move happen only if
    /// the conditional consumption changed the row; under concurrent rotations of one token
    /// the second waits for the first's row lock, then finds it consumed and writes nothing.
    async fn apply_postgres(&self, conn: &DatabaseConnection) -> Result<Option<TokenPair>> {
        use sea_orm::Value;
        let (access, refresh) = &self.tokens;
        let (access_exp, refresh_exp) = self.expiries();
        let access_hash = random::sha256_hex(access);
        let mut values: Vec<Value> = vec![
            self.now.into(),                    // $1
            self.refresh_hash.clone().into(),   // $2
            access_hash.into(),                 // $3
            random::token(16).into(),           // $4
            self.family.clone().into(),         // $5
            self.user_id.into(),                // $6
            access_exp.into(),                  // $7
            random::sha256_hex(refresh).into(), // $8
            random::token(16).into(),           // $9
            refresh_exp.into(),                 // $10
        ];
        let mut session = String::from("refresh_expires_at = $10, last_used_at = $1");
        if let Some(meta) = &self.meta {
            values.push(meta.ip.map(|ip| ip.to_string()).into());
            values.push(meta.user_agent.clone().into());
            session.push_str(&format!(
                ", ip = ${}, user_agent = ${}",
                values.len() - 1,
                values.len()
            ));
        }
        let previous = match &self.paired {
            Some(paired) => {
                values.push(paired.clone().into());
                format!(
                    ", previous AS (UPDATE auth_tokens SET revoked_at = $1 \
                     WHERE token_hash = ${} AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM consumed))",
                    values.len()
                )
            }
            None => String::new(),
        };
        let sql = format!(
            "WITH consumed AS (UPDATE auth_tokens SET consumed_at = $1, revoked_at = $1 \
               WHERE token_hash = $2 AND consumed_at IS NULL AND revoked_at IS NULL RETURNING 1), \
             successors AS (INSERT INTO auth_tokens \
               (token_hash, kind, jti, family_id, user_id, created_at, expires_at, paired_access_hash) \
               SELECT $3, 'access', $4, $5, $6, $1, $7, NULL::text FROM consumed \
               UNION ALL SELECT $8, 'refresh', $9, $5, $6, $1, $10, $3 FROM consumed), \
             session AS (UPDATE auth_token_families SET {session} \
               WHERE id = $5 AND EXISTS (SELECT 1 FROM consumed)){previous} \
             SELECT count(*) FROM consumed"
        );
        let row = conn
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                sql,
                values,
            ))
            .await
            .map_err(db("rotating a refresh token"))?;
        let won = row
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()
            .map_err(db("reading a rotation's outcome"))?
            == Some(1);
        Ok(won.then(|| {
            TokenPair::new(
                SecretString::new(access.clone()),
                access_exp,
                SecretString::new(refresh.clone()),
                refresh_exp,
            )
        }))
    }

    /// Applies the rotation in `conn` (a transaction): the successor pair, or `None` when
    /// another rotation consumed the token first (then nothing was written).
    async fn apply(&self, conn: &impl ConnectionTrait) -> Result<Option<TokenPair>> {
        let consumed = token::Entity::update_many()
            .col_expr(token::Column::ConsumedAt, Expr::value(Some(self.now)))
            .col_expr(token::Column::RevokedAt, Expr::value(Some(self.now)))
            .filter(token::Column::TokenHash.eq(self.refresh_hash.clone()))
            .filter(token::Column::ConsumedAt.is_null())
            .filter(token::Column::RevokedAt.is_null())
            .exec(conn)
            .await
            .map_err(db("consuming a refresh token"))?
            .rows_affected;
        if consumed != 1 {
            return Ok(None);
        }
        if let Some(access) = &self.paired {
            token::Entity::update_many()
                .col_expr(token::Column::RevokedAt, Expr::value(Some(self.now)))
                .filter(token::Column::TokenHash.eq(access.clone()))
                .filter(token::Column::RevokedAt.is_null())
                .exec(conn)
                .await
                .map_err(db("revoking the previous access token"))?;
        }
        let pair = DbTokenBackend::insert_pair(
            conn,
            self.user_id,
            &self.family,
            self.absolute,
            self.now,
            &self.lifetimes,
            self.tokens.clone(),
            self.meta.as_ref(),
        )
        .await?;
        Ok(Some(pair))
    }
}
