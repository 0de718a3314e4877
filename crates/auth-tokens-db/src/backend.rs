//! `DbTokenBackend`: opaque tokens in SQL with refresh families.

use std::fmt;
use std::sync::Arc;

use auth_core::{
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
/// use auth_core::{IssueRequest, TokenBackend, TokenKind, UserId};
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
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbTokenBackend {
    db: DatabaseConnection,
    clock: SharedClock,
    /// The key successors are derived from (see [`with_successor_key`](Self::with_successor_key)).
    successor_key: Option<Arc<[u8]>>,
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

    /// Reads time from `clock`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let backend = auth_tokens_db::DbTokenBackend::new(db).with_clock(auth_core::FixedClock::from_unix(0));
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
        auth_core::truncate_to_micros(self.clock.now())
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
