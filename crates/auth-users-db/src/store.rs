//! `DbUserStore`: `auth_core::UserStore` over the `auth_users` table.

use std::fmt;
use std::sync::Arc;

use auth_core::{
    Clock, Error, NewUser, Result, SharedClock, SystemClock, User, UserId, UserQuery, UserStore,
    async_trait,
};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use time::OffsetDateTime;

use crate::entity::user;

/// A [`UserStore`] on sea-orm: SQLite, PostgreSQL or MySQL/MariaDB, whichever the connection
/// is. Every method is one statement (a missing row on an update costs one more look, to tell
/// "unchanged" from "unknown" on MySQL); uniqueness and the conditional password update are
/// enforced by the database, so they hold across application instances.
///
/// ```
/// use auth_core::{NewUser, UserStore};
/// use auth_users_db::{DbUserStore, Migrator};
/// use sea_orm_migration::MigratorTrait;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// Migrator::up(&db, None).await.unwrap();
/// let store = DbUserStore::new(db);
/// let user = store.create(NewUser::new("alice@example.com")).await?;
/// assert_eq!(store.find_by_email("alice@example.com").await?.unwrap().id, user.id);
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbUserStore {
    db: DatabaseConnection,
    clock: SharedClock,
}

impl DbUserStore {
    /// A store on `db` (migrated with [`crate::Migrator`] or the umbrella's migrator).
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_users_db::DbUserStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time (created/updated/joined) from `clock`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_users_db::DbUserStore::new(db).with_clock(auth_core::FixedClock::from_unix(0));
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
    /// let store = auth_users_db::DbUserStore::new(db);
    /// let _db = store.connection();
    /// # }
    /// ```
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Updates one user; an unknown id is [`Error::UserNotFound`].
    async fn update(
        &self,
        id: &UserId,
        apply: impl FnOnce(sea_orm::UpdateMany<user::Entity>) -> sea_orm::UpdateMany<user::Entity>,
    ) -> Result<()> {
        let Some(pk) = parse_id(id) else {
            return Err(Error::UserNotFound);
        };
        let result = apply(user::Entity::update_many())
            .col_expr(user::Column::UpdatedAt, Expr::value(self.now()))
            .filter(user::Column::Id.eq(pk))
            .exec(&self.db)
            .await
            .map_err(db_error("updating a user"))?;
        if result.rows_affected == 0 && !self.exists(pk).await? {
            return Err(Error::UserNotFound);
        }
        Ok(())
    }

    async fn exists(&self, pk: i64) -> Result<bool> {
        Ok(user::Entity::find_by_id(pk)
            .one(&self.db)
            .await
            .map_err(db_error("loading a user"))?
            .is_some())
    }

    fn now(&self) -> OffsetDateTime {
        auth_core::truncate_to_micros(self.clock.now())
    }
}

impl fmt::Debug for DbUserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbUserStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

fn parse_id(id: &UserId) -> Option<i64> {
    id.as_str().parse().ok()
}

fn db_error(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

fn to_user(m: user::Model) -> User {
    let mut u = User::new(UserId::from(m.id), m.email);
    u.password_hash = m.password_hash;
    u.is_active = m.is_active;
    u.is_verified = m.is_verified;
    u.last_login = m.last_login;
    u.joined_at = m.joined_at;
    u.profile = match m.profile {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    u
}

#[async_trait]
impl UserStore for DbUserStore {
    type User = User;

    async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await
            .map_err(db_error("finding a user by email"))?
            .map(to_user))
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<User>> {
        let Some(pk) = parse_id(id) else {
            return Ok(None);
        };
        Ok(user::Entity::find_by_id(pk)
            .one(&self.db)
            .await
            .map_err(db_error("finding a user by id"))?
            .map(to_user))
    }

    async fn create(&self, new: NewUser) -> Result<User> {
        let now = self.now();
        let row = user::ActiveModel {
            email: Set(new.email),
            password_hash: Set(new.password_hash),
            is_active: Set(new.is_active),
            is_verified: Set(new.is_verified),
            last_login: Set(None),
            joined_at: Set(Some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            profile: Set(Some(serde_json::Value::Object(new.profile))),
            ..Default::default()
        };
        match row.insert(&self.db).await {
            Ok(model) => Ok(to_user(model)),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::EmailTaken)
            }
            Err(e) => Err(Error::backend("creating a user", e)),
        }
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<()> {
        let hash = hash.to_owned();
        self.update(id, |u| {
            u.col_expr(user::Column::PasswordHash, Expr::value(hash))
        })
        .await
    }

    async fn replace_password_hash(
        &self,
        id: &UserId,
        expected: Option<&str>,
        new_hash: &str,
    ) -> Result<bool> {
        let Some(pk) = parse_id(id) else {
            return Err(Error::UserNotFound);
        };
        // One conditional UPDATE: the database decides which concurrent caller wins.
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(new_hash.to_owned()))
            .col_expr(user::Column::UpdatedAt, Expr::value(self.now()))
            .filter(user::Column::Id.eq(pk));
        update = match expected {
            Some(h) => update.filter(user::Column::PasswordHash.eq(h)),
            None => update.filter(user::Column::PasswordHash.is_null()),
        };
        let result = update
            .exec(&self.db)
            .await
            .map_err(db_error("replacing a password hash"))?;
        if result.rows_affected == 1 {
            return Ok(true);
        }
        if self.exists(pk).await? {
            Ok(false)
        } else {
            Err(Error::UserNotFound)
        }
    }

    async fn record_login(&self, id: &UserId, at: OffsetDateTime) -> Result<()> {
        self.update(id, |u| {
            u.col_expr(user::Column::LastLogin, Expr::value(Some(at)))
        })
        .await
    }

    async fn set_active(&self, id: &UserId, active: bool) -> Result<()> {
        self.update(id, |u| {
            u.col_expr(user::Column::IsActive, Expr::value(active))
        })
        .await
    }

    async fn set_verified(&self, id: &UserId, verified: bool) -> Result<()> {
        self.update(id, |u| {
            u.col_expr(user::Column::IsVerified, Expr::value(verified))
        })
        .await
    }

    async fn update_profile(
        &self,
        id: &UserId,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let Some(pk) = parse_id(id) else {
            return Err(Error::UserNotFound);
        };
        // Read, merge and write in one transaction, so concurrent merges do not lose keys on
        // databases that lock the row (PostgreSQL, MariaDB) and serialize on SQLite.
        let txn = self
            .db
            .begin()
            .await
            .map_err(db_error("starting a transaction"))?;
        let row = user::Entity::find_by_id(pk)
            .lock_exclusive()
            .one(&txn)
            .await
            .map_err(db_error("loading a user"))?
            .ok_or(Error::UserNotFound)?;
        let mut profile = match row.profile {
            Some(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        profile.extend(values);
        user::Entity::update_many()
            .col_expr(
                user::Column::Profile,
                Expr::value(Some(serde_json::Value::Object(profile))),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(self.now()))
            .filter(user::Column::Id.eq(pk))
            .exec(&txn)
            .await
            .map_err(db_error("updating a profile"))?;
        txn.commit().await.map_err(db_error("updating a profile"))
    }

    async fn list(&self, query: &UserQuery) -> Result<Vec<User>> {
        let mut select = user::Entity::find();
        if let Some(prefix) = &query.email_prefix {
            // LIKE with the prefix's own wildcards escaped: `a_b` matches only `a_b…`.
            let escaped: String = prefix
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '!' => vec!['!', c],
                    c => vec![c],
                })
                .collect();
            select = select.filter(
                Expr::col(user::Column::Email)
                    .like(LikeExpr::new(format!("{escaped}%")).escape('!')),
            );
        }
        if let Some(active) = query.active {
            select = select.filter(user::Column::IsActive.eq(active));
        }
        if let Some(verified) = query.verified {
            select = select.filter(user::Column::IsVerified.eq(verified));
        }
        let rows = select
            .order_by_asc(user::Column::Id)
            .offset(query.offset)
            .limit(Ord::min(query.limit, UserQuery::MAX_LIMIT))
            .all(&self.db)
            .await
            .map_err(db_error("listing users"))?;
        Ok(rows.into_iter().map(to_user).collect())
    }

    async fn delete(&self, id: &UserId) -> Result<bool> {
        let Some(pk) = parse_id(id) else {
            return Ok(false);
        };
        let result = user::Entity::delete_by_id(pk)
            .exec(&self.db)
            .await
            .map_err(db_error("deleting a user"))?;
        Ok(result.rows_affected > 0)
    }

    async fn replace_email(&self, id: &UserId, expected: &str, new_email: &str) -> Result<bool> {
        let Some(pk) = parse_id(id) else {
            return Err(Error::UserNotFound);
        };
        if new_email == expected {
            return Ok(self.find_by_id(id).await?.ok_or(Error::UserNotFound)?.email == expected);
        }
        let result = user::Entity::update_many()
            .col_expr(user::Column::Email, Expr::value(new_email.to_owned()))
            .col_expr(user::Column::UpdatedAt, Expr::value(self.now()))
            .filter(user::Column::Id.eq(pk))
            .filter(user::Column::Email.eq(expected))
            .exec(&self.db)
            .await;
        match result {
            Ok(r) if r.rows_affected > 0 => Ok(true),
            Ok(_) if self.exists(pk).await? => Ok(false),
            Ok(_) => Err(Error::UserNotFound),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::EmailTaken)
            }
            Err(e) => Err(Error::backend("changing an email", e)),
        }
    }
}
